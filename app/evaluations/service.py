"""Quarter-end evaluation: a run per programme and quarter, refused before the quarter
ends; the programme stores its per-bank results on it (SKD-Q3: the NPL ratio decides
suspension, `app/programs/sukedai/program.py`; XB-Q1: the limit basis per bank and
sub-fund, `app/programs/xinbao/limits.py`). The NPL figures per bank are here, shared."""

from __future__ import annotations

import calendar
import functools
from dataclasses import dataclass, replace
from datetime import date
from typing import Any, Protocol

from sqlalchemy import BindParameter, Select, bindparam, case, func, select
from sqlalchemy.orm import Session

from app.auth.principal import Principal
from app.errors import Conflict, NotFound, RoleNotAllowed, Unprocessable, Violation
from app.kit.money import format_fen, percent
from app.loans.arrears import LATE_AS_OF, LATE_BANK, late_loans_params, late_loans_statement
from app.loans.repository import repaid_as_of
from app.models import (
    Agreement,
    AgreementEvent,
    Fund,
    Loan,
    LoanDayTotal,
    QuarterBankResult,
    QuarterEvaluation,
)
from app.programs.base import ArrearsRule, get_program


class QuarterNotEnded(Unprocessable):
    """The quarter has not ended yet (its last day is after today's business date): a
    quarter-end evaluation runs once the quarter is over (SKD-Q3, XB-Q1)."""

    code = "quarter_not_ended"
    title, title_zh = "Quarter not ended", "该季度尚未结束"


class QuarterSuperseded(Conflict):
    """The programme was already evaluated for a later quarter end; an earlier quarter
    cannot overrule it (SKD-Q3, XB-Q1)."""

    code = "quarter_superseded"
    title, title_zh = "A later quarter was evaluated", "已有更晚季度的评价"


class EvaluationNotFound(NotFound):
    title, title_zh = "Evaluation not found", "季末评价不存在"


class NotTheRunner(RoleNotAllowed):
    title, title_zh = "Run by the programme's evaluator", "须由该项目的评价角色执行"


class NplPolicy(Protocol):
    """How many days past due make a loan non-performing (SKD-Q3's 90)."""

    @property
    def npl_days_past_due(self) -> int: ...


def quarter_end(year: int, quarter: int) -> date:
    month = quarter * 3
    return date(year, month, calendar.monthrange(year, month)[1])


@dataclass(frozen=True)
class BankRatio:
    outstanding_fen: int
    npl_fen: int

    def breaches(self, threshold_bp: int) -> bool:
        """npl / outstanding ≥ threshold, compared exactly in integers."""
        return (
            self.outstanding_fen > 0
            and self.npl_fen * 10_000 >= threshold_bp * self.outstanding_fen
        )

    def ratio_text(self) -> str:
        if not self.outstanding_fen:
            return "no principal outstanding"
        bp = self.npl_fen * 10_000 // self.outstanding_fen
        return f"{percent(bp)} ({format_fen(self.npl_fen)} of {format_fen(self.outstanding_fen)})"


def bank_ratios(
    session: Session,
    program: str,
    as_of: date,
    policy: NplPolicy,
    *,
    bank_code: str | None = None,
) -> dict[str, BankRatio]:
    """Per bank, principal outstanding and the part ≥ `npl_days_past_due` days past due
    as of the date (SPEC M-6: by the repayment schedules, interest arrears too where the
    programme's NPL rule counts them, the bank's reported arrears where worse;
    `app.loans.arrears.late_loans`). Outstanding is Σ disbursed − Σ repaid over the bank's day
    totals up to the date (a repayment is never dated before its loan's disbursement).
    The past-due part sums the outstanding principal of the loans that late."""
    rule = replace(get_program(program).policy.arrears_rule("npl"), days=policy.npl_days_past_due)
    npl_stmt, outstanding = _ratio_statements(program, rule, bank_code is not None)
    params = late_loans_params(as_of, rule, bank_code)
    npl = {str(bank): int(fen or 0) for bank, fen in session.execute(npl_stmt, params)}
    return {
        str(bank): BankRatio(int(out or 0), npl.get(str(bank), 0))
        for bank, out in session.execute(outstanding, params)
    }


_Rows = Select[*tuple[Any, ...]]


@functools.cache
def _ratio_statements(program: str, rule: ArrearsRule, by_bank: bool) -> tuple[_Rows, _Rows]:
    """`bank_ratios`' two statements (the NPL part, the outstanding), built once per
    programme, rule and whether one bank's: the date and the bank are the parameters of
    `late_loans_params` (building them cost more than running them on one bank)."""
    as_of: BindParameter[Any] = bindparam(LATE_AS_OF)
    bank: BindParameter[Any] = bindparam(LATE_BANK)
    outstanding = (
        select(
            LoanDayTotal.bank_code,
            func.sum(LoanDayTotal.disbursed_fen - LoanDayTotal.repaid_fen),
        )
        .where(LoanDayTotal.program == program, LoanDayTotal.day <= as_of)
        .group_by(LoanDayTotal.bank_code)
    )
    owing = select(Loan.id, Loan.bank_code, Loan.principal_fen).where(
        Loan.id.in_(late_loans_statement(program, rule, by_bank))
    )
    if by_bank:
        outstanding = outstanding.where(LoanDayTotal.bank_code == bank)
        owing = owing.where(Loan.bank_code == bank)
    late = owing.subquery()
    repaid = repaid_as_of(select(late.c.id), as_of)
    left = late.c.principal_fen - func.coalesce(repaid.c.repaid, 0)
    npl = (
        select(late.c.bank_code, func.sum(case((left > 0, left), else_=0)))
        .outerjoin(repaid, repaid.c.loan_id == late.c.id)
        .group_by(late.c.bank_code)
    )
    return npl, outstanding


def last_suspension_reason(session: Session, agreement_id: int) -> str:
    event = session.scalars(
        select(AgreementEvent)
        .where(AgreementEvent.agreement_id == agreement_id, AgreementEvent.action == "suspend")
        .order_by(AgreementEvent.id.desc())
    ).first()
    return event.reason if event else ""


def suspended_agreements(session: Session, bank_code: str, program: str) -> list[int]:
    return list(session.scalars(_suspended_statement(), {"bank": bank_code, "program": program}))


@functools.cache
def _suspended_statement() -> Select[Any]:
    return select(Agreement.id).where(
        Agreement.bank_code == bindparam("bank"),
        Agreement.program == bindparam("program"),
        Agreement.status == "suspended",
    )


def check_runner(session: Session, program: str, actor: Principal) -> None:
    """The programme names who runs its quarter-end evaluation: SKD the province (SKD-Q3),
    XB the fund manager of one of its funds (XB-Q1, 第十六条 “基金管理人”)."""
    role = get_program(program).quarter_end_role
    fund = session.get(Fund, actor.fund_code) if actor.fund_code else None
    if actor.role != role or (role == "fund_manager" and (fund is None or fund.program != program)):
        whose = f"the {program} fund manager" if role == "fund_manager" else f"the {role}"
        raise NotTheRunner(f"the {program} quarter-end evaluation is run by {whose}")


def evaluate(
    session: Session,
    *,
    program: str,
    year: int,
    quarter: int,
    actor: Principal,
    today: date,
) -> QuarterEvaluation:
    """A quarter-end run of the programme: refused before the quarter ends or behind a
    later run; the programme stores its per-bank results on the run."""
    end = quarter_end(year, quarter)
    rule = get_program(program).quarter_end_rule
    if end > today:
        raise QuarterNotEnded(
            f"{year}-Q{quarter} ends on {end}, after today",
            [
                Violation(
                    msg="the quarter has not ended",
                    loc=("body", "quarter"),
                    code=QuarterNotEnded.code,
                    rule=rule,
                )
            ],
            rule=rule,
        )
    latest = session.scalar(
        select(func.max(QuarterEvaluation.quarter_end)).where(QuarterEvaluation.program == program)
    )
    if latest is not None and latest > end:
        raise QuarterSuperseded(
            f"{program} was already evaluated for the quarter ending {latest}; an earlier "
            "quarter cannot overrule it",
            rule=rule,
        )
    run = QuarterEvaluation(
        program=program, year=year, quarter=quarter, quarter_end=end, actor_id=actor.user_id
    )
    session.add(run)
    session.flush()
    get_program(program).evaluate_quarter(session, run, actor=actor, today=today)
    session.flush()
    return run


def results(session: Session, evaluation_id: int) -> list[QuarterBankResult]:
    return list(
        session.scalars(
            select(QuarterBankResult)
            .where(QuarterBankResult.evaluation_id == evaluation_id)
            .order_by(QuarterBankResult.bank_code)
        )
    )
