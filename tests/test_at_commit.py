"""Work done last before COMMIT (app.kit.at_commit): the hot row locks — a quota
counter, then the ledger's chain head — are taken there, in one order for every
transaction, and only when the transaction really commits."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime

import pytest
from sqlalchemy import create_engine, func, select, text
from sqlalchemy.orm import Session

from app.kit.at_commit import at_commit, pending
from app.ledger import service as ledger
from app.ledger.postings import credit, debit
from app.ledger.service import EntrySpec, UnbalancedEntry
from app.models import LedgerEntry


@pytest.fixture
def bare() -> Iterator[Session]:
    engine = create_engine("sqlite://")
    with Session(engine) as s:
        s.execute(text("CREATE TABLE t (x INTEGER)"))
        s.commit()
        yield s
    engine.dispose()


def test_steps_run_at_commit_last_ones_after_the_others(bare: Session) -> None:
    seen: list[str] = []
    bare.execute(text("INSERT INTO t VALUES (1)"))
    pending(bare, "chain", list, lambda s: seen.append("chain head"), last=True)
    at_commit(bare, lambda s: seen.append("quota 1"))
    at_commit(bare, lambda s: seen.append("quota 2"))
    assert seen == []  # nothing before the commit
    bare.commit()
    assert seen == ["quota 1", "quota 2", "chain head"]
    bare.commit()
    assert seen == ["quota 1", "quota 2", "chain head"]  # once


def test_steps_wait_for_the_outer_commit_and_go_with_a_rollback(bare: Session) -> None:
    seen: list[str] = []
    with bare.begin_nested():
        at_commit(bare, lambda s: seen.append("step"))
    assert seen == []  # a savepoint's release is not the commit
    bare.rollback()
    bare.commit()
    assert seen == []  # rolled back with its transaction


def test_a_failing_step_fails_the_commit_and_writes_nothing(bare: Session) -> None:
    bare.execute(text("INSERT INTO t VALUES (7)"))

    def refuse(s: Session) -> None:
        s.execute(text("INSERT INTO t VALUES (8)"))
        raise RuntimeError("no room left")

    at_commit(bare, refuse)
    with pytest.raises(RuntimeError):
        bare.commit()
    bare.rollback()
    assert bare.scalar(text("SELECT count(*) FROM t")) == 0


def test_ledger_entries_queued_for_commit_are_checked_when_queued(bare: Session) -> None:
    """L-1 refusals come where the entry is made, not at commit."""
    lopsided = EntrySpec(
        "x",
        "1",
        "k",
        date(2026, 3, 31),
        [debit("F", "exposure_memo", 100), credit("F", "exposure_contra", 99)],
    )
    with pytest.raises(UnbalancedEntry):
        ledger.post_at_commit(bare, [lopsided], now=datetime.now(UTC))
    assert not [k for k in bare.info if str(k).startswith("at_commit")]


def test_the_ledger_goes_last_whatever_the_order_of_registration(session: Session) -> None:
    """A transaction that queues a ledger entry before it counts a quota in still takes
    the chain head last, as every other transaction does (no lock-order deadlock)."""
    key = "at-commit-order"
    spec = EntrySpec(
        "test.order",
        "1",
        key,
        date(2026, 3, 31),
        [
            debit("SKD_PROV", "exposure_memo", 100, "JSB"),
            credit("SKD_PROV", "exposure_contra", 100, "JSB"),
        ],
    )
    posted = select(func.count()).select_from(LedgerEntry).where(LedgerEntry.idempotency_key == key)
    seen: list[int] = []
    ledger.post_at_commit(session, [spec], now=datetime.now(UTC))
    at_commit(session, lambda s: seen.append(int(s.scalar(posted) or 0)))
    session.commit()
    assert seen == [0]  # the quota step ran before the entry was written
    assert session.scalar(posted) == 1
