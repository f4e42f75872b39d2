"""XB-Q1 figures from the books (第十六条): per bank and sub-fund, the principal
outstanding at a quarter end (the limit basis), the compensation approved in a year, and
the XB quarter-end evaluation that stores both with the warning and suspension state.

The committee's decision reads the basis stored by the evaluation of the most recent
quarter end (its id goes on the claim); only when no evaluation of that quarter end is
stored is the basis computed from the loans, and the claim says so."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import date, timedelta
from typing import Any

from sqlalchemy import BindParameter, ColumnElement, Select, bindparam, case, func, select
from sqlalchemy.orm import Session

from app.loans.arrears import LATE_AS_OF, LATE_BANK, late_loans_params, late_loans_statement
from app.loans.repository import repaid_as_of
from app.models import (
    Agreement,
    Claim,
    Fund,
    Loan,
    LoanDayTotal,
    QuarterBankResult,
    QuarterEvaluation,
)
from app.programs.xinbao.claims import BankLimit
from app.programs.xinbao.policy import (
    BASE_SUB_FUND,
    LIMITS,
    PROGRAM_POLICY,
    LimitPolicy,
    limit_policy,
)

PROGRAM = "XB"


@dataclass(frozen=True)
class Position:
    outstanding_fen: int
    npl_fen: int  # of which ≥ 90 days past due (SPEC M-6)


def percent(bp: int) -> str:
    """Basis points as a percentage, exactly: 5000 → "50 %", 350 → "3.5 %"."""
    whole, frac = divmod(bp, 100)
    return f"{whole}.{frac:02d}".rstrip("0").rstrip(".") + " %"


def sub_fund_expr() -> ColumnElement[str]:
    """A loan's XB sub-fund, as SQL (`loans.fund_code`; the base for a loan without one)."""
    return func.coalesce(Loan.fund_code, BASE_SUB_FUND)


def positions(
    session: Session, as_of: date, *, bank_code: str | None = None
) -> dict[tuple[str, str], Position]:
    """Per (bank, sub-fund): principal outstanding as of the date and the part of the
    loans ≥ 90 days past due (SPEC M-6, the programme's NPL rule: `late_loans`).
    Outstanding is Σ disbursed − Σ repaid over the XB day totals of the bank and sub-fund
    up to the date (kept per fund by the database; a repayment is never dated before its
    loan's disbursement) — Σ principal − Σ repaid by the date over the loans disbursed
    by then."""
    rule = PROGRAM_POLICY.arrears_rule("npl")
    npl_stmt, totals = _position_statements(bank_code is not None)
    params = late_loans_params(as_of, rule, bank_code)
    npl = {
        (str(bank), str(fund)): int(fen or 0)
        for bank, fund, fen in session.execute(npl_stmt, params)
    }
    out: dict[tuple[str, str], int] = {}
    for bank, fund, fen in session.execute(totals, params):
        key = (str(bank), str(fund) or BASE_SUB_FUND)  # "": a loan without a fund
        out[key] = out.get(key, 0) + int(fen or 0)
    # the pairs with principal still owing (nothing owing: no position, as before)
    return {key: Position(fen, npl.get(key, 0)) for key, fen in out.items() if fen > 0}


_Rows = Select[*tuple[Any, ...]]


@functools.cache
def _position_statements(by_bank: bool) -> tuple[_Rows, _Rows]:
    """`positions`' two statements (the NPL part, the outstanding), built once each way:
    the date and the bank are the parameters of `late_loans_params`."""
    as_of: BindParameter[Any] = bindparam(LATE_AS_OF)
    bank: BindParameter[Any] = bindparam(LATE_BANK)
    totals = (
        select(
            LoanDayTotal.bank_code,
            LoanDayTotal.fund_code,
            func.sum(LoanDayTotal.disbursed_fen - LoanDayTotal.repaid_fen),
        )
        .where(LoanDayTotal.program == PROGRAM, LoanDayTotal.day <= as_of)
        .group_by(LoanDayTotal.bank_code, LoanDayTotal.fund_code)
    )
    late = late_loans_statement(PROGRAM, PROGRAM_POLICY.arrears_rule("npl"), by_bank)
    owing = select(
        Loan.id.label("id"),
        Loan.bank_code.label("bank_code"),
        sub_fund_expr().label("fund_code"),
        Loan.principal_fen.label("principal_fen"),
    ).where(Loan.id.in_(late))
    if by_bank:
        totals = totals.where(LoanDayTotal.bank_code == bank)
        owing = owing.where(Loan.bank_code == bank)
    bad = owing.subquery()
    repaid = repaid_as_of(select(bad.c.id), as_of)
    left = bad.c.principal_fen - func.coalesce(repaid.c.repaid, 0)
    npl = (
        select(bad.c.bank_code, bad.c.fund_code, func.sum(case((left > 0, left), else_=0)))
        .outerjoin(repaid, repaid.c.loan_id == bad.c.id)
        .group_by(bad.c.bank_code, bad.c.fund_code)
    )
    return npl, totals


def year_used(session: Session, bank_code: str, fund_code: str, year: int, up_to: date) -> int:
    """Compensation approved for the bank under the sub-fund in the calendar year, up to
    and including `up_to`."""
    params = {
        "bank": bank_code,
        "fund": fund_code,
        "start": date(year, 1, 1),
        "end": min(up_to, date(year, 12, 31)),
    }
    return int(session.scalar(_year_used_statement(), params) or 0)


# The per-request statements of the limit figures, built once each: the bank, sub-fund
# and dates are bound parameters.
@functools.cache
def _year_used_statement() -> Select[Any]:
    return select(func.coalesce(func.sum(Claim.approved_fen), 0)).where(
        Claim.bank_code == bindparam("bank"),
        Claim.program == PROGRAM,
        Claim.fund_code == bindparam("fund"),
        Claim.approved_fen.is_not(None),
        Claim.approved_on >= bindparam("start"),
        Claim.approved_on <= bindparam("end"),
    )


@functools.cache
def _sub_funds_statement() -> Select[Any]:
    return select(Agreement.fund_code).where(
        Agreement.bank_code == bindparam("bank"), Agreement.program == PROGRAM
    )


@functools.cache
def _suspended_statement() -> Select[Any]:
    return (
        select(Agreement.id)
        .where(
            Agreement.bank_code == bindparam("bank"),
            Agreement.program == PROGRAM,
            Agreement.fund_code == bindparam("fund"),
            Agreement.status == "suspended",
        )
        .order_by(Agreement.id)
    )


def years_used(
    session: Session, bank_code: str, fund_codes: Sequence[str], year: int, up_to: date
) -> dict[str, int]:
    """`year_used` per sub-fund of `fund_codes` (one statement; a sub-fund with nothing
    approved is absent)."""
    params = {
        "bank": bank_code,
        "funds": list(fund_codes),
        "start": date(year, 1, 1),
        "end": min(up_to, date(year, 12, 31)),
    }
    return {
        str(fund): int(fen or 0) for fund, fen in session.execute(_years_used_statement(), params)
    }


@functools.cache
def _years_used_statement() -> _Rows:
    return (
        select(Claim.fund_code, func.sum(Claim.approved_fen))
        .where(
            Claim.bank_code == bindparam("bank"),
            Claim.program == PROGRAM,
            Claim.fund_code.in_(bindparam("funds", expanding=True)),
            Claim.approved_fen.is_not(None),
            Claim.approved_on >= bindparam("start"),
            Claim.approved_on <= bindparam("end"),
        )
        .group_by(Claim.fund_code)
    )


def settings(session: Session, fund_code: str) -> LimitPolicy:
    """The sub-fund's own XB-Q1 settings (`funds.params["limits"]` over the defaults)."""
    fund = session.get(Fund, fund_code)
    return limit_policy(fund.params if fund is not None else None)


def stored_results(
    session: Session, bank_code: str, fund_codes: Sequence[str], quarter_end: date
) -> dict[str, QuarterBankResult]:
    """The row of the latest stored XB evaluation of that quarter end for the bank, per
    sub-fund of `fund_codes` that has one (one statement)."""
    params = {"quarter_end": quarter_end, "bank": bank_code, "funds": list(fund_codes)}
    out: dict[str, QuarterBankResult] = {}
    for row in session.scalars(_stored_results_statement(), params):
        out.setdefault(row.fund_code, row)  # the latest evaluation's first
    return out


@functools.cache
def _stored_results_statement() -> Select[Any]:
    return (
        select(QuarterBankResult)
        .join(QuarterEvaluation, QuarterEvaluation.id == QuarterBankResult.evaluation_id)
        .where(
            QuarterEvaluation.program == PROGRAM,
            QuarterEvaluation.quarter_end == bindparam("quarter_end"),
            QuarterBankResult.bank_code == bindparam("bank"),
            QuarterBankResult.fund_code.in_(bindparam("funds", expanding=True)),
        )
        .order_by(QuarterEvaluation.id.desc())
    )


def bank_limit(
    session: Session, bank_code: str, fund_code: str, quarter_end: date, on: date
) -> BankLimit:
    """XB-Q1 for the bank's business under one sub-fund on `on`: the basis and settings
    stored by the evaluation of `quarter_end`, or — none stored — the basis computed
    from the loans with the sub-fund's current settings; the usage is the compensation
    approved under the sub-fund in `on`'s calendar year up to `on`."""
    return bank_limits(session, bank_code, [fund_code], quarter_end, on)[fund_code]


def bank_limits(
    session: Session, bank_code: str, fund_codes: Sequence[str], quarter_end: date, on: date
) -> dict[str, BankLimit]:
    """`bank_limit` for each of the bank's sub-funds `fund_codes`, read together: the
    usage of all in one statement, their stored rows in one, the positions (when a
    sub-fund has no stored row) once."""
    funds = sorted(set(fund_codes))
    used = years_used(session, bank_code, funds, on.year, on)
    rows = stored_results(session, bank_code, funds, quarter_end)
    at: dict[tuple[str, str], Position] | None = None
    out: dict[str, BankLimit] = {}
    for fund_code in funds:
        row = rows.get(fund_code)
        if row is not None:
            policy = replace(
                LIMITS,
                bank_limit_bp=row.threshold_bp,
                warning_share_bp=row.warning_share_bp
                if row.warning_share_bp is not None
                else LIMITS.warning_share_bp,
            )
            out[fund_code] = BankLimit(
                quarter_end,
                row.outstanding_fen,
                used.get(fund_code, 0),
                fund_code,
                policy,
                row.evaluation_id,
            )
            continue
        if at is None:
            at = positions(session, quarter_end, bank_code=bank_code)
        pos = at.get((bank_code, fund_code))
        out[fund_code] = BankLimit(
            quarter_end,
            pos.outstanding_fen if pos else 0,
            used.get(fund_code, 0),
            fund_code,
            settings(session, fund_code),
        )
    return out


def sub_funds_of(session: Session, bank_code: str) -> list[str]:
    """The sub-funds the bank has (or had) an agreement with, the base first."""
    codes = set(session.scalars(_sub_funds_statement(), {"bank": bank_code}))
    return sorted(codes, key=lambda c: (c != BASE_SUB_FUND, c))


def suspended_agreements(session: Session, bank_code: str, fund_code: str) -> list[int]:
    return list(session.scalars(_suspended_statement(), {"bank": bank_code, "fund": fund_code}))


def evaluate(session: Session, run: QuarterEvaluation, *, today: date) -> None:
    """XB quarter-end evaluation (XB-Q1, XB-Rep): per bank and sub-fund, store the
    principal outstanding at the quarter end — the basis of the limit for the decisions
    until the next quarter end — with the sub-fund's settings, the limit, the usage so
    far in the year the basis serves, and the warning and suspension state. It records;
    it suspends nothing (a suspension is made by the committee decision that reaches the
    limit) and lifts nothing (the committee lifts, XB-Q1)."""
    end = run.quarter_end
    limit_year = (end + timedelta(days=1)).year
    at = positions(session, end)
    pairs = set(at) | {
        (str(bank), str(fund))
        for bank, fund in session.execute(
            select(Agreement.bank_code, Agreement.fund_code).where(
                Agreement.program == PROGRAM, Agreement.status.in_(("active", "suspended"))
            )
        )
    }
    policies: dict[str, LimitPolicy] = {}
    for bank, fund in sorted(pairs):
        if fund not in policies:
            policies[fund] = settings(session, fund)
        policy = policies[fund]
        pos = at.get((bank, fund), Position(0, 0))
        used = year_used(session, bank, fund, limit_year, today) if today.year >= limit_year else 0
        limit = BankLimit(end, pos.outstanding_fen, used, fund, policy)
        session.add(
            QuarterBankResult(
                evaluation_id=run.id,
                bank_code=bank,
                fund_code=fund,
                outstanding_fen=pos.outstanding_fen,
                npl_fen=pos.npl_fen,
                threshold_bp=policy.bank_limit_bp,
                warning_share_bp=policy.warning_share_bp,
                breached=limit.reached(),
                decision="unchanged",
                agreement_ids=[],
                limit_year=limit_year,
                limit_fen=limit.limit_fen(),
                warning_fen=limit.warning_fen(),
                used_fen=used,
                warning=limit.warning(),
                suspended=bool(suspended_agreements(session, bank, fund)),
            )
        )
    session.flush()
