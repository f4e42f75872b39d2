"""The ledger's chain head is the last lock a money-moving claim step takes (the lock
order documented in RELIABILITY.md): every other change of the request — the claim, its
shares, the loan, the funds — is written before the step's ledger entries, so the chain
head is held from the posting to the commit only. After the first statement that
touches `ledger_chain_head`, a request only reads (without row locks) and writes the
ledger itself, the history rows naming its entries, the stored idempotent answer and
the audit trail. Checked on SQLite and PostgreSQL through the SPEC §6 example 1 flow
(SKD-S1, SKD-C1, SKD-R1)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from sqlalchemy import Engine, event
from sqlalchemy.orm import Session, sessionmaker

from app.config import Settings
from app.ledger import repository as ledger_repo
from tests.fixtures.api import Api, api_fixture
from tests.test_claims import overdue_loan

# what a request may still write once it holds the chain head
AFTER_THE_HEAD = {
    "ledger_entries",
    "ledger_legs",
    "ledger_accounts",
    "ledger_chain_head",
    "claim_transitions",
    "claim_recoveries",
    "idempotency_records",
    "audit_events",
}
_WRITE = re.compile(r"^\s*(?:INSERT\s+INTO|UPDATE|DELETE\s+FROM)\s+\"?(\w+)", re.IGNORECASE)
_ROW_LOCK = re.compile(r"\bFOR\s+(?:NO\s+KEY\s+)?(?:UPDATE|SHARE)\b", re.IGNORECASE)


@pytest.fixture
def api(  # type: ignore[no-untyped-def]
    settings: Settings, engine: Engine, session_factory: sessionmaker[Session], auth
) -> Iterator[Api]:
    yield from api_fixture(settings, engine, session_factory, auth)


HEAD_TAKEN = "-- the chain head is taken"


@contextmanager
def statements(engine: Engine, monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """The statements the engine runs, with a mark where the ledger takes its chain
    head (on PostgreSQL through the driver's pipeline, which the engine does not see)."""
    seen: list[str] = []

    def record(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        seen.append(" ".join(statement.split()))

    taking = ledger_repo.read_for_posting

    def marked(*args: Any, **kw: Any) -> Any:
        seen.append(HEAD_TAKEN)
        return taking(*args, **kw)

    event.listen(engine, "before_cursor_execute", record)
    try:
        with monkeypatch.context() as m:
            m.setattr(ledger_repo, "read_for_posting", marked)
            yield seen
    finally:
        event.remove(engine, "before_cursor_execute", record)


def after_the_head(seen: list[str]) -> list[str]:
    """What the request did after it first took the chain head that it should have
    done before: writes to other tables, row locks."""
    first = seen.index(HEAD_TAKEN)
    late = []
    for s in seen[first + 1 :]:
        write = _WRITE.match(s)
        other_table = write is not None and write.group(1).lower() not in AFTER_THE_HEAD
        row_lock = _ROW_LOCK.search(s) is not None and "ledger_chain_head" not in s
        if other_table or row_lock:
            late.append(s[:120])
    return late


def test_claim_steps_take_the_chain_head_last(
    api: Api, session: Session, engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    loan = overdue_loan(api, session, principal="5000000.00", unpaid_repay="2000000.00")
    c = api.claim("bank_ccb", loan, "2026-08-31")
    api.upload("bank_ccb", c["id"], "2026-08-31")
    api.review("city-review", "city_suzhou", c["id"], "2026-09-02")
    steps = [
        lambda: api.review("province-review", "province", c["id"], "2026-09-08"),
        lambda: api.pay("city-payment", "fund_suzhou", c["id"], "2026-09-10"),
        lambda: api.pay("province-reimbursement", "fund_province", c["id"], "2026-09-15"),
        lambda: api.call(
            "2026-10-20",
            "bank_ccb",
            "POST",
            f"/claims/{c['id']}/recoveries",
            201,
            json={"recovered_on": "2026-10-20", "amount": "1000000.00", "costs": "50000.00"},
        ),
    ]
    for name, step in zip(
        ("province review", "city payment", "province reimbursement", "recovery"),
        steps,
        strict=True,
    ):
        with statements(engine, monkeypatch) as seen:
            answer = step()
        entries = (
            answer["history"][-1]["ledger_entry_ids"]
            if "history" in answer
            else answer["ledger_entry_ids"]
        )
        assert entries, f"{name} posted no ledger entry"
        assert after_the_head(seen) == [], f"{name} wrote after taking the chain head"


# what the ledger itself reads while posting: its accounts and keys, and the fund and
# bank an account it opens names (its counterparty checks)
LEDGER_READS = re.compile(r"\bFROM (?:ledger_\w+|funds|banks|fund_contributors)\b")


def reads_after_the_head(seen: list[str]) -> list[str]:
    """The reads a request made while holding the chain head, other than the ledger's
    own: what keeps the hottest lock held longer."""
    first = seen.index(HEAD_TAKEN)
    return [
        s[:120]
        for s in seen[first + 1 :]
        if s.upper().startswith("SELECT") and not LEDGER_READS.search(s)
    ]


def test_a_stage_reads_its_answer_before_taking_the_chain_head(
    api: Api, session: Session, engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """#16 part 4: a money-moving stage reads the claim's view (its answer) before it
    posts, so between the chain head and the commit it only writes; the answer still
    names the entries the step posted, as `GET /claims/{id}` does after, ETag and all."""
    loan = overdue_loan(api, session, principal="5000000.00", unpaid_repay="2000000.00")
    c = api.claim("bank_ccb", loan, "2026-08-31")
    api.upload("bank_ccb", c["id"], "2026-08-31")
    api.review("city-review", "city_suzhou", c["id"], "2026-09-02")
    for stage, user, day, body in (
        ("province-review", "province", "2026-09-08", {"decision": "approve", "comment": "同意"}),
        ("city-payment", "fund_suzhou", "2026-09-10", {"paid_on": "2026-09-10"}),
        ("province-reimbursement", "fund_province", "2026-09-15", {"paid_on": "2026-09-15"}),
    ):
        client = api.on(day)
        url = f"/api/v1/claims/{c['id']}"
        with statements(engine, monkeypatch) as seen:
            r = client.post(f"{url}/{stage}", headers=api.auth(user), json=body)
        assert r.status_code == 200, r.text
        answer = r.json()
        assert answer["history"][-1]["ledger_entry_ids"], f"{stage} posted no entry"
        assert reads_after_the_head(seen) == [], f"{stage} read under the chain head"
        got = client.get(url, headers=api.auth(user))
        assert (got.json(), got.headers["etag"]) == (answer, r.headers["etag"]), stage
