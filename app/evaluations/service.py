"""Quarter-end evaluation. SKD (SKD-Q3): per bank, the NPL ratio at the quarter end
decides suspension of its SKD agreements; a later quarter below the threshold lifts the
suspensions a quarter-end made (a province decision stays until the province lifts it).
XB (XB-Q1): per bank and sub-fund, the limit basis the next quarter's committee
decisions read (`app/programs/xinbao/limits.py`)."""

from __future__ import annotations

import calendar
from collections import defaultdict
from dataclasses import dataclass
from datetime import date, timedelta

from sqlalchemy import case, func, or_, select
from sqlalchemy.orm import Session

from app.auth.principal import Principal
from app.errors import Conflict, Forbidden, Unprocessable, Violation
from app.kit.money import format_fen
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
from app.programs.sukedai.library import percent
from app.programs.sukedai.policy import QUARTER_END, QuarterEndPolicy
from app.reference.service import change_agreement_status


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
    policy: QuarterEndPolicy,
    *,
    bank_code: str | None = None,
) -> dict[str, BankRatio]:
    """Per bank, principal outstanding and the part ≥ `npl_days_past_due` days past due
    as of the date (servicing's reading: past due from the day after maturity while
    principal is outstanding). Outstanding is Σ disbursed − Σ repaid over the bank's day
    totals up to the date (a repayment is never dated before its loan's disbursement).
    The past-due part sums only the loans still owing on the date — not settled, or
    settled after it — that matured by the cutoff: the few bad loans, not every loan."""
    outstanding = (
        select(
            LoanDayTotal.bank_code,
            func.sum(LoanDayTotal.disbursed_fen - LoanDayTotal.repaid_fen),
        )
        .where(LoanDayTotal.program == program, LoanDayTotal.day <= as_of)
        .group_by(LoanDayTotal.bank_code)
    )
    cutoff = as_of - timedelta(days=policy.npl_days_past_due)
    owing = select(Loan.id, Loan.bank_code, Loan.principal_fen).where(
        Loan.program == program,
        Loan.maturity_on <= cutoff,
        or_(Loan.settled_on.is_(None), Loan.settled_on > as_of),
    )
    if bank_code is not None:
        outstanding = outstanding.where(LoanDayTotal.bank_code == bank_code)
        owing = owing.where(Loan.bank_code == bank_code)
    late = owing.subquery()
    repaid = repaid_as_of(select(late.c.id), as_of)
    left = late.c.principal_fen - func.coalesce(repaid.c.repaid, 0)
    npl = {
        str(bank): int(fen or 0)
        for bank, fen in session.execute(
            select(late.c.bank_code, func.sum(case((left > 0, left), else_=0)))
            .outerjoin(repaid, repaid.c.loan_id == late.c.id)
            .group_by(late.c.bank_code)
        )
    }
    return {
        str(bank): BankRatio(int(out or 0), npl.get(str(bank), 0))
        for bank, out in session.execute(outstanding)
    }


def _last_suspension_reason(session: Session, agreement_id: int) -> str:
    event = session.scalars(
        select(AgreementEvent)
        .where(AgreementEvent.agreement_id == agreement_id, AgreementEvent.action == "suspend")
        .order_by(AgreementEvent.id.desc())
    ).first()
    return event.reason if event else ""


# who runs a programme's quarter-end evaluation: SKD the province (SKD-Q3), XB the fund
# manager of an XB fund (XB-Q1, 第十六条 “基金管理人”)
RUNNERS = {"SKD": "province_reviewer", "XB": "fund_manager"}


def check_runner(session: Session, program: str, actor: Principal) -> None:
    role = RUNNERS[program]
    fund = session.get(Fund, actor.fund_code) if actor.fund_code else None
    if actor.role != role or (role == "fund_manager" and (fund is None or fund.program != program)):
        whose = f"the {program} fund manager" if role == "fund_manager" else f"the {role}"
        raise Forbidden(
            f"the {program} quarter-end evaluation is run by {whose}", code="role_not_allowed"
        )


def evaluate(
    session: Session,
    *,
    program: str,
    year: int,
    quarter: int,
    actor: Principal,
    today: date,
    policy: QuarterEndPolicy = QUARTER_END,
) -> QuarterEvaluation:
    end = quarter_end(year, quarter)
    rule = "XB-Q1" if program == "XB" else "SKD-Q3"
    if end > today:
        raise Unprocessable(
            f"{year}-Q{quarter} ends on {end}, after today",
            [Violation(loc=("body", "quarter"), msg="the quarter has not ended")],
            code="quarter_not_ended",
            rule=rule,
        )
    latest = session.scalar(
        select(func.max(QuarterEvaluation.quarter_end)).where(QuarterEvaluation.program == program)
    )
    if latest is not None and latest > end:
        raise Conflict(
            f"{program} was already evaluated for the quarter ending {latest}; an earlier "
            "quarter cannot overrule it",
            code="quarter_superseded",
            rule=rule,
        )
    run = QuarterEvaluation(
        program=program, year=year, quarter=quarter, quarter_end=end, actor_id=actor.user_id
    )
    session.add(run)
    session.flush()
    if program == "XB":  # XB-Q1: per bank and sub-fund, the limit basis and its use
        from app.programs.xinbao import limits

        limits.evaluate(session, run, today=today)
        return run
    ratios = bank_ratios(session, program, end, policy)
    agreements = list(
        session.scalars(
            select(Agreement).where(
                Agreement.program == program, Agreement.status.in_(("active", "suspended"))
            )
        )
    )
    by_bank: dict[str, list[Agreement]] = defaultdict(list)
    for a in agreements:
        by_bank[a.bank_code].append(a)
    for bank in sorted(set(ratios) | set(by_bank)):
        ratio = ratios.get(bank, BankRatio(0, 0))
        own = by_bank.get(bank, [])
        early = any((end - a.start_on).days < policy.early_period_days for a in own)
        threshold = policy.early_threshold_bp if early else policy.threshold_bp
        breached = ratio.breaches(threshold)
        reason = (
            f"{policy.reason_prefix} {year}-Q{quarter}: NPL ratio {ratio.ratio_text()}, "
            f"threshold {percent(threshold)}"
        )
        changed: list[int] = []
        for a in own:
            if breached and a.status == "active":
                change_agreement_status(
                    session, agreement_id=a.id, action="suspend", reason=reason, actor=actor
                )
                changed.append(a.id)
            elif (
                not breached
                and a.status == "suspended"
                and _last_suspension_reason(session, a.id).startswith(policy.reason_prefix)
            ):
                change_agreement_status(
                    session, agreement_id=a.id, action="resume", reason=reason, actor=actor
                )
                changed.append(a.id)
        decision = ("suspended" if breached else "lifted") if changed else "unchanged"
        session.add(
            QuarterBankResult(
                evaluation_id=run.id,
                bank_code=bank,
                outstanding_fen=ratio.outstanding_fen,
                npl_fen=ratio.npl_fen,
                threshold_bp=threshold,
                breached=breached,
                decision=decision,
                agreement_ids=changed,
            )
        )
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
