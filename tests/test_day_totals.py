"""Loan day totals and settled dates, kept by the database (migration 0012): they equal
what they sum whichever path wrote the loans and repayments (a filing, a batch, a
repayment, a renewal); the loan terms they sum cannot change afterwards; and the
figures built on them (SKD-Q1's cap sums, SKD-Q3's NPL ratio) agree with loan-by-loan
sums, including a loan that was past due on one date and settled after it."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from datetime import date

import pytest
from sqlalchemy import Connection, Engine, select, text
from sqlalchemy.orm import Session, sessionmaker

from app.claims import repository as claims_repo
from app.config import Settings
from app.evaluations.service import bank_ratios
from app.models import Loan, LoanDayTotal, LoanRepayment
from app.programs.sukedai.policy import QUARTER_END
from tests.claims_helpers import Api, api_fixture
from tests.factories import member_enterprise
from tests.ledger_helpers import raw_refused

Key = tuple[str, str, str, date]


@pytest.fixture
def api(  # type: ignore[no-untyped-def]
    settings: Settings, engine: Engine, session_factory: sessionmaker[Session], auth
) -> Iterator[Api]:
    yield from api_fixture(settings, engine, session_factory, auth)


def _summed_from_rows(session: Session) -> dict[Key, list[int]]:
    """The day totals recomputed from every loan and repayment, in Python."""
    want: dict[Key, list[int]] = defaultdict(lambda: [0, 0, 0, 0])
    loans = {x.id: x for x in session.scalars(select(Loan))}
    for x in loans.values():
        row = want[(x.program, x.bank_code, x.product or "", x.disbursed_on)]
        row[0] += 1
        row[1] += x.principal_fen
        row[2] += x.principal_fen * (x.maturity_on - x.disbursed_on).days
    for r in session.scalars(select(LoanRepayment)):
        x = loans[r.loan_id]
        want[(x.program, x.bank_code, x.product or "", r.paid_on)][3] += r.principal_fen
    return dict(want)


def _kept(session: Session) -> dict[Key, list[int]]:
    return {
        (t.program, t.bank_code, t.product, t.day): [
            t.loans,
            t.disbursed_fen,
            t.disbursed_days_fen,
            t.repaid_fen,
        ]
        for t in session.scalars(select(LoanDayTotal))
    }


def _settled(session: Session) -> dict[int, date | None]:
    return {int(i): d for i, d in session.execute(select(Loan.id, Loan.settled_on))}


def _settled_from_rows(session: Session) -> dict[int, date | None]:
    paid: dict[int, list[LoanRepayment]] = defaultdict(list)
    for r in session.scalars(select(LoanRepayment)):
        paid[r.loan_id].append(r)
    out: dict[int, date | None] = {}
    for x in session.scalars(select(Loan)):
        rows = paid[x.id]
        full = sum(r.principal_fen for r in rows) >= x.principal_fen
        out[x.id] = max(r.paid_on for r in rows) if full else None
    return out


def test_day_totals_and_settled_dates_equal_what_they_sum(api: Api, session: Session) -> None:
    """Demo data (filings, renewals, repayments, claims) plus a batch, a single filing, a
    partial and a full repayment through the API: every day row and every settled date
    equals the recomputation from the loans and repayments themselves."""
    a, b, c = (member_enterprise(session, region="320500").credit_code for _ in range(3))
    body = {
        "principal": "1000000.00",
        "annual_rate_bp": 340,
        "disbursed_on": "2026-03-02",
        "maturity_on": "2026-09-02",
        "security": "credit",
        "controller_guarantee": True,
        "program": "SKD",
    }
    batch = api.call(
        "2026-03-04",
        "bank_ccb",
        "POST",
        "/loans/batch",
        json={
            "items": [
                {**body, "enterprise_credit_code": a, "contract_no": "DT-1"},
                {**body, "enterprise_credit_code": b, "contract_no": "DT-2"},
            ]
        },
    )
    assert batch["accepted"] == 2
    single = api.file_loan("bank_ccb", c, "2000000.00", "2026-03-02", "2026-12-02")
    first = batch["results"][0]["loan_id"]
    api.repay("bank_ccb", first, "2026-05-20", "400000.00")
    api.repay("bank_ccb", first, "2026-06-01", "600000.00")  # settled
    api.repay("bank_ccb", single, "2026-06-01", "1.00")  # not settled
    session.expire_all()

    assert _kept(session) == _summed_from_rows(session)
    settled = _settled(session)
    assert settled == _settled_from_rows(session)
    assert settled[first] == date(2026, 6, 1) and settled[single] is None
    assert any(v is not None for k, v in settled.items() if k != first)  # the demo's


def test_loan_terms_and_repayments_cannot_change(connection: Connection) -> None:
    """The rows the day totals sum are fixed once written; other loan columns are not."""
    loan_id = connection.scalar(text("SELECT min(id) FROM loans"))
    for sql in (
        f"UPDATE loans SET principal_fen = principal_fen + 1 WHERE id = {loan_id}",
        f"UPDATE loans SET disbursed_on = maturity_on - 1 WHERE id = {loan_id}",
        f"UPDATE loans SET bank_code = 'ICBC_JS' WHERE id = {loan_id}",
        f"DELETE FROM loans WHERE id = {loan_id}",
        "UPDATE loan_repayments SET principal_fen = principal_fen + 1",
        "DELETE FROM loan_repayments",
    ):
        assert "cannot change" in raw_refused(connection, sql), sql
    nested = connection.begin_nested()
    connection.execute(text(f"UPDATE loans SET flags = flags WHERE id = {loan_id}"))
    nested.rollback()


def test_npl_counts_a_loan_settled_after_the_date(api: Api, session: Session) -> None:
    """SKD-Q3 as of a date sums only loans still owing then: a loan 90+ days past due and
    repaid in full later is in the NPL figure before its repayment and out of it after,
    exactly as a loan-by-loan sum says."""
    code = member_enterprise(session, region="320500").credit_code
    loan = api.file_loan("bank_ccb", code, "3000000.00", "2026-03-02", "2026-06-02")
    api.repay("bank_ccb", loan, "2026-10-12", "3000000.00")  # 132 days after maturity
    session.expire_all()
    before = bank_ratios(session, "SKD", date(2026, 9, 30), QUARTER_END, bank_code="CCB_JS")
    after = bank_ratios(session, "SKD", date(2026, 10, 12), QUARTER_END, bank_code="CCB_JS")
    assert before["CCB_JS"].npl_fen - after["CCB_JS"].npl_fen == 3_000_000_00
    assert before["CCB_JS"].outstanding_fen - after["CCB_JS"].outstanding_fen == 3_000_000_00


def test_cap_sums_from_day_totals_match_the_loans(session: Session) -> None:
    """SKD-Q1's Σ principal and Σ principal × days per product, from the day rows, equal
    the sums over the bank's loans, on dates inside and at the edge of the range."""
    products = set()
    for bank in ("JSB", "ICBC_JS", "CCB_JS"):
        for start, until in (
            (date(2025, 1, 1), date(2026, 3, 31)),
            (date(2026, 3, 2), date(2026, 3, 2)),
            (date(2025, 6, 1), date(2026, 12, 31)),
        ):
            want: dict[str, list[int]] = defaultdict(lambda: [0, 0])
            for x in session.scalars(
                select(Loan).where(
                    Loan.bank_code == bank,
                    Loan.program == "SKD",
                    Loan.disbursed_on >= start,
                    Loan.disbursed_on <= until,
                )
            ):
                want[x.product or ""][0] += x.principal_fen
                want[x.product or ""][1] += x.principal_fen * (x.maturity_on - x.disbursed_on).days
            got = claims_repo.cap_sums(session, bank, "SKD", start=start, until=until)
            assert {p: [s, d] for p, s, d in got} == dict(want), (bank, start, until)
            products |= set(want)
    assert {"SKD1", "SKD2"} <= products  # the demo's loans were summed, not nothing
