"""SKD filing under real parallel connections (PostgreSQL): the enterprise and quota
locks make SKD-F3 and SKD-F6 hold however many filings race."""

from __future__ import annotations

import threading
from collections import Counter
from datetime import UTC, date, datetime
from typing import Any

import pytest
from sqlalchemy import Engine, delete, func, select
from sqlalchemy.orm import Session

from app.auth.principal import Principal
from app.errors import AppError
from app.loans import repository as repo
from app.loans import service
from app.loans.schemas import LoanFile
from app.models import LedgerLeg, Loan, ProgramQuota, User
from tests.fixtures.factories import member_enterprise

TODAY = date(2026, 3, 31)


def _bank(engine: Engine, username: str) -> Principal:
    with Session(engine) as s:
        u = s.scalars(select(User).where(User.username == username)).one()
        return Principal(user_id=u.id, username=u.username, role=u.role, bank_code=u.bank_code)


def _race(engine: Engine, filings: list[tuple[Principal, dict[str, Any]]]) -> Counter[str]:
    barrier = threading.Barrier(len(filings))
    outcomes: Counter[str] = Counter()
    lock = threading.Lock()

    def file(bank: Principal, body: dict[str, Any]) -> None:
        barrier.wait()
        try:
            with Session(engine) as s, s.begin():
                service.file_loan(
                    s, data=LoanFile(**body), principal=bank, today=TODAY, now=datetime.now(UTC)
                )
            outcome = "accepted"
        except AppError as exc:
            outcome = ",".join(sorted(v.code or exc.code for v in exc.errors) or [exc.code])
        with lock:
            outcomes[outcome] += 1

    threads = [threading.Thread(target=file, args=f) for f in filings]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return outcomes


def _quota_with_room(engine: Engine, room_fen: int) -> None:
    """The 2026 SKD quota set to what is already filed plus `room_fen`."""
    with Session(engine) as s, s.begin():
        s.execute(delete(ProgramQuota).where(ProgramQuota.year == 2026))
        user = s.scalars(select(User).where(User.username == "province")).one()
        used = repo.principal_filed_in(s, "SKD", 2026)
        s.add(
            ProgramQuota(
                program="SKD",
                year=2026,
                amount_fen=used + room_fen,
                used_fen=used,
                set_by_id=user.id,
            )
        )


def _loan(code: str, contract: str, principal: str, rate: int) -> dict[str, Any]:
    return {
        "program": "SKD",
        "enterprise_credit_code": code,
        "contract_no": contract,
        "principal": principal,
        "annual_rate_bp": rate,
        "disbursed_on": "2026-03-24",
        "maturity_on": "2027-03-24",
        "security": "credit",
        "controller_guarantee": True,
    }


@pytest.mark.xdist_group("pg-concurrency")
def test_skd_f3_parallel_filings_for_one_enterprise_make_one_loan(pg_engine: Engine) -> None:
    jsb, icbc = _bank(pg_engine, "bank_jsb"), _bank(pg_engine, "bank_icbc")
    with Session(pg_engine) as s:
        one = member_enterprise(s, region="320100").credit_code
    filings = [
        (jsb if i % 2 else icbc, _loan(one, f"F3-{i}", "1000000.00", 340)) for i in range(16)
    ]
    outcomes = _race(pg_engine, filings)
    assert outcomes == Counter({"accepted": 1, "enterprise_has_active_loan": 15})


@pytest.mark.xdist_group("pg-concurrency")
def test_skd_f6_parallel_filings_never_overshoot_the_quota(pg_engine: Engine) -> None:
    _quota_with_room(pg_engine, 5_000_000_00)  # exactly one 5,000,000 loan
    jsb = _bank(pg_engine, "bank_jsb")
    with Session(pg_engine) as s:
        yuntu = member_enterprise(s, region="320100", revenue_yuan=45_000_000).credit_code
        nawei = member_enterprise(s, region="320500", revenue_yuan=260_000_000).credit_code
    # two enterprises, so only the quota (not SKD-F3's enterprise lock) can stop the second
    filings = [
        (jsb, _loan(yuntu if i % 2 else nawei, f"F6-{i}", "5000000.00", 370)) for i in range(8)
    ]
    outcomes = _race(pg_engine, filings)
    assert outcomes["accepted"] == 1, outcomes
    assert any("annual_quota_exceeded" in k for k in outcomes), outcomes


@pytest.mark.xdist_group("pg-concurrency")
def test_skd_f6_singles_and_batches_racing_share_the_quota_exactly(pg_engine: Engine) -> None:
    """SKD-F6 is decided at commit under the quota's lock for single filings and whole
    batches alike, after the loans' own row locks and before the ledger's chain head: 6
    single filings and 2 batches of 3 racing for room for 4 loans fill it exactly, each
    filed loan has its exposure legs in the ledger, and every refusal is SKD-F6's, not an
    error. (The lock order itself is pinned by tests/test_at_commit.py: timing alone
    rarely shows a deadlock between two orders.)"""
    _quota_with_room(pg_engine, 4 * 5_000_000_00)
    jsb = _bank(pg_engine, "bank_jsb")
    with Session(pg_engine) as s:
        codes = [
            member_enterprise(s, region="320100", revenue_yuan=45_000_000).credit_code
            for _ in range(12)
        ]
    work: list[list[dict[str, Any]]] = [
        [_loan(codes[i], f"Q6M-{i}", "5000000.00", 370)] for i in range(6)
    ] + [
        [_loan(codes[6 + 3 * b + k], f"Q6B-{b}-{k}", "5000000.00", 370) for k in range(3)]
        for b in range(2)
    ]
    barrier = threading.Barrier(len(work))
    outcomes: list[str] = []
    lock = threading.Lock()

    def file(items: list[dict[str, Any]]) -> None:
        barrier.wait()
        try:
            with Session(pg_engine) as s, s.begin():
                now = datetime.now(UTC)
                if len(items) == 1:
                    service.file_loan(
                        s, data=LoanFile(**items[0]), principal=jsb, today=TODAY, now=now
                    )
                    outcome = "accepted"
                else:
                    res = service.file_batch(s, items=items, principal=jsb, today=TODAY, now=now)
                    outcome = "batch:" + ",".join(r.code or r.status for r in res)
        except AppError as exc:
            outcome = exc.code
        except Exception as exc:
            outcome = f"error:{type(exc).__name__}:{exc}"
        with lock:
            outcomes.append(outcome)

    threads = [threading.Thread(target=file, args=(w,)) for w in work]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not [o for o in outcomes if o.startswith("error")], outcomes
    assert all(
        o in ("accepted", "annual_quota_exceeded") or o.startswith("batch:") for o in outcomes
    ), outcomes
    with Session(pg_engine) as s:
        filed = s.scalar(select(func.count()).select_from(Loan).where(Loan.contract_no.like("Q6%")))
        quota = s.scalars(select(ProgramQuota).where(ProgramQuota.year == 2026)).one()
        assert filed == 4, outcomes
        assert quota.used_fen == quota.amount_fen
        # every filed loan's exposure is in the ledger: its own entry, or its leg pairs
        # in its batch's (docs/journal.md), the legs naming it either way
        exposed = s.scalar(
            select(func.count(func.distinct(LedgerLeg.loan_id)))
            .join(Loan, Loan.id == LedgerLeg.loan_id)
            .where(Loan.contract_no.like("Q6%"))
        )
        assert exposed == 4, outcomes
