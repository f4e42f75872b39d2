"""Loan day totals and settled dates, kept by the database (migrations 0012, 0017, 0025):
they equal what they sum, per bank, programme, fund, product, security and day, whichever
path wrote the loans and repayments (a filing, a batch, a repayment, a renewal); the loan
terms they sum (the fund and the security included) cannot change afterwards; and the
figures built on them (SKD-Q1's cap sums, SKD-Q3's NPL ratio, XB-Q1's basis per sub-fund,
the quarterly report's outstanding per XB sub-fund × security) agree with loan-by-loan
sums, including a loan that was past due on one date and settled after it."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from datetime import date
from typing import Any

import pytest
from sqlalchemy import Connection, Engine, select, text
from sqlalchemy.orm import Session, sessionmaker

from app.claims import repository as claims_repo
from app.config import Settings
from app.evaluations.service import bank_ratios
from app.models import Loan, LoanDayTotal, LoanRepayment
from app.programs.sukedai.policy import QUARTER_END
from app.programs.xinbao import limits
from tests.fixtures.api import Api, api_fixture
from tests.fixtures.factories import GUARANTOR, member_enterprise, xb_enterprise
from tests.fixtures.ledger import raw_refused

Key = tuple[str, str, str, str, str, date]  # programme, bank, fund, product, security, day


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
        row = want[
            (x.program, x.bank_code, x.fund_code or "", x.product or "", x.security, x.disbursed_on)
        ]
        row[0] += 1
        row[1] += x.principal_fen
        row[2] += x.principal_fen * (x.maturity_on - x.disbursed_on).days
    for r in session.scalars(select(LoanRepayment)):
        x = loans[r.loan_id]
        key = (x.program, x.bank_code, x.fund_code or "", x.product or "", x.security, r.paid_on)
        want[key][3] += r.principal_fen
    return dict(want)


def _kept(session: Session) -> dict[Key, list[int]]:
    return {
        (t.program, t.bank_code, t.fund_code, t.product, t.security, t.day): [
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


def _xb_loan(
    api: Api,
    session: Session,
    sub_fund: str,
    principal: str,
    day: str,
    *,
    guaranteed: bool = False,
    maturity: str = "2026-07-05",
) -> int:
    """An XB credit loan, or (`guaranteed`) one guaranteed with the guarantor's consent
    dated on the disbursement (XB-F2)."""
    code = xb_enterprise(session).credit_code
    security: dict[str, Any] = {"rate": 380}
    if guaranteed:
        security = {
            "security": "guaranteed",
            "guarantor": GUARANTOR,
            "rate": 330,
            "guarantor_consent": {"reference": f"连信担确〔2026〕{principal}号", "dated_on": day},
        }
    return int(
        api.file_loan(
            "bank_lyg", code, principal, day, maturity, program="XB", sub_fund=sub_fund, **security
        )
    )


def test_day_totals_and_settled_dates_equal_what_they_sum(api: Api, session: Session) -> None:
    """A batch, single filings (one bank under two city funds on one day, XB under both
    sub-funds, credit and guaranteed), a renewal, partial and full repayments through the
    API: every day row — one per fund and security — and every settled date equals the
    recomputation from the loans and repayments themselves."""
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
    nanjing, suzhou = (
        api.file_loan(
            "bank_jsb",
            member_enterprise(session, region=region).credit_code,
            "1500000.00",
            "2026-03-02",
            "2026-08-31",
        )
        for region in ("320100", "320500")
    )
    _xb_loan(api, session, "XB_ZQCZD", "800000.00", "2026-01-05")
    kcd = _xb_loan(api, session, "XB_KCD", "600000.00", "2026-01-05")
    guaranteed = _xb_loan(api, session, "XB_ZQCZD", "700000.00", "2026-01-05", guaranteed=True)
    api.repay("bank_ccb", first, "2026-05-20", "400000.00")
    api.repay("bank_ccb", first, "2026-06-01", "600000.00")  # settled
    api.repay("bank_ccb", single, "2026-06-01", "1.00")  # not settled
    api.repay("bank_jsb", nanjing, "2026-03-20", "500000.00")
    api.repay("bank_lyg", kcd, "2026-03-20", "600000.00")  # settled
    api.repay("bank_lyg", guaranteed, "2026-03-20", "200000.00")
    api.call(
        "2026-08-31",
        "bank_jsb",
        "POST",
        f"/loans/{suzhou}/renewal",
        201,
        json={
            "contract_no": "DT-RENEW-1",
            "principal": "1500000.00",
            "annual_rate_bp": 340,
            "disbursed_on": "2026-08-31",
            "maturity_on": "2027-08-31",
            "security": "credit",
            "controller_guarantee": True,
        },
    )
    session.expire_all()

    kept = _kept(session)
    assert kept == _summed_from_rows(session)
    jsb_day = {k[2] for k in kept if k[1] == "JSB" and k[5] == date(2026, 3, 2)}
    assert jsb_day == {"SKD_CITY_320100", "SKD_CITY_320500"}  # one row per fund
    xb_day = {(k[2], k[4]) for k in kept if k[0] == "XB" and k[5] == date(2026, 1, 5)}
    # one row per sub-fund and security
    assert xb_day == {("XB_ZQCZD", "credit"), ("XB_ZQCZD", "guaranteed"), ("XB_KCD", "credit")}
    xb_paid = {k[4]: v[3] for k, v in kept.items() if k[0] == "XB" and k[5] == date(2026, 3, 20)}
    assert xb_paid == {"credit": 600_000_00, "guaranteed": 200_000_00}
    assert all(k[2] for k in kept)  # every filed loan names its fund
    settled = _settled(session)
    assert settled == _settled_from_rows(session)
    assert settled[first] == date(2026, 6, 1) and settled[single] is None
    assert settled[kcd] == date(2026, 3, 20) and settled[suzhou] == date(2026, 8, 31)


def test_loan_terms_and_repayments_cannot_change(
    api: Api, session: Session, connection: Connection
) -> None:
    """The rows the day totals sum are fixed once written (the fund and the security
    included); other loan columns are not."""
    code = member_enterprise(session, region="320500").credit_code
    loan_id = api.file_loan("bank_ccb", code, "1000000.00", "2026-03-02", "2026-09-02")
    api.repay("bank_ccb", loan_id, "2026-03-20", "1.00")
    for sql in (
        f"UPDATE loans SET principal_fen = principal_fen + 1 WHERE id = {loan_id}",
        f"UPDATE loans SET disbursed_on = maturity_on - 1 WHERE id = {loan_id}",
        f"UPDATE loans SET bank_code = 'ICBC_JS' WHERE id = {loan_id}",
        f"UPDATE loans SET fund_code = 'SKD_CITY_320100' WHERE id = {loan_id}",
        f"UPDATE loans SET fund_code = NULL WHERE id = {loan_id}",
        f"UPDATE loans SET security = 'collateral' WHERE id = {loan_id}",
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


def test_cap_sums_from_day_totals_match_the_loans(api: Api, session: Session) -> None:
    """SKD-Q1's Σ principal and Σ principal × days per product, from the day rows (one per
    fund, summed over the funds), equal the sums over the bank's loans, on dates inside
    and at the edge of the range."""
    for region, revenue, principal, day, maturity in (
        ("320100", 18_000_000, "1000000.00", "2026-01-12", "2027-01-12"),
        ("320500", 18_000_000, "2000000.00", "2026-03-02", "2026-12-02"),
        ("320500", 30_000_000, "5000000.00", "2026-03-02", "2026-09-02"),  # SKD2
        ("320100", 30_000_000, "3000000.00", "2026-02-02", "2026-08-03"),  # SKD2
    ):
        code = member_enterprise(session, region=region, revenue_yuan=revenue).credit_code
        api.file_loan("bank_jsb", code, principal, day, maturity, filed_on=day)
    code = member_enterprise(session, region="320500").credit_code
    api.file_loan("bank_ccb", code, "1200000.00", "2026-03-02", "2026-09-02")
    session.expire_all()
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
    assert {"SKD1", "SKD2"} <= products  # the loans above were summed, not nothing


def test_xb_q1_basis_per_sub_fund_from_day_totals_matches_the_loans(
    api: Api, session: Session
) -> None:
    """XB-Q1's basis per bank and sub-fund (principal outstanding at a date), read from
    the day totals by `loans.fund_code`, and its ≥ 90-days-past-due part equal the
    loan-by-loan sums over each sub-fund's loans, on dates before, between and after the
    disbursements and repayments; a pair with nothing owing has no position."""
    zq = _xb_loan(api, session, "XB_ZQCZD", "800000.00", "2026-01-05")
    _xb_loan(api, session, "XB_ZQCZD", "500000.00", "2026-02-02")
    kcd = _xb_loan(api, session, "XB_KCD", "600000.00", "2026-01-05")
    api.repay("bank_lyg", zq, "2026-03-20", "300000.00")
    api.repay("bank_lyg", kcd, "2026-03-20", "600000.00")  # settled
    session.expire_all()
    loans = list(session.scalars(select(Loan).where(Loan.program == "XB")))
    paid: dict[int, list[LoanRepayment]] = defaultdict(list)
    for r in session.scalars(select(LoanRepayment)):
        paid[r.loan_id].append(r)
    seen = set()
    for as_of in (date(2025, 12, 31), date(2026, 1, 31), date(2026, 3, 31), date(2026, 12, 31)):
        want: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0, 0])
        for x in loans:
            if x.disbursed_on > as_of:
                continue
            left = x.principal_fen - sum(r.principal_fen for r in paid[x.id] if r.paid_on <= as_of)
            if left > 0:
                assert x.fund_code is not None
                row = want[(x.bank_code, x.fund_code)]
                row[0] += left
                row[1] += left if (as_of - x.maturity_on).days >= 90 else 0
        got = limits.positions(session, as_of)
        assert {k: [p.outstanding_fen, p.npl_fen] for k, p in got.items()} == dict(want), as_of
        seen |= set(want)
    assert {("LYG_RCB", "XB_ZQCZD"), ("LYG_RCB", "XB_KCD")} <= seen
    late = limits.positions(session, date(2026, 12, 31), bank_code="LYG_RCB")
    assert ("LYG_RCB", "XB_KCD") not in late  # repaid in full: nothing owing
    assert late[("LYG_RCB", "XB_ZQCZD")].npl_fen == 1_000_000_00  # 500,000 + 500,000 left
