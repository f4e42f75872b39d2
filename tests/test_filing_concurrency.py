"""SKD filing under real parallel connections (PostgreSQL): the enterprise and quota
locks make SKD-F3 and SKD-F6 hold however many filings race."""

from __future__ import annotations

import threading
from collections import Counter
from datetime import UTC, date, datetime
from typing import Any

import pytest
from sqlalchemy import Engine, delete, select
from sqlalchemy.orm import Session

from app.auth.principal import Principal
from app.errors import AppError
from app.loans import service
from app.loans.schemas import LoanFile
from app.models import ProgramQuota, User
from tests.factories import member_enterprise

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
    with Session(pg_engine) as s, s.begin():
        s.execute(delete(ProgramQuota).where(ProgramQuota.year == 2026))
        user = s.scalars(select(User).where(User.username == "province")).one()
        # room for exactly one 5,000,000 loan beyond what is already filed in 2026
        from app.loans import repository as repo

        used = repo.principal_filed_in(s, "SKD", 2026)
        s.add(
            ProgramQuota(
                program="SKD",
                year=2026,
                amount_fen=used + 5_000_000_00,
                used_fen=used,
                set_by_id=user.id,
            )
        )
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
