"""Servicing: repayments of principal and interest, the bank's arrears reports, and a
loan's position as of any date.

Days past due follow the loan's repayment schedule (SPEC M-6, `app.loans.arrears`): a
loan filed without one has one bullet instalment at maturity, so it is past due from
the day after maturity while principal is outstanding, as before schedules. A principal
repayment never exceeds what is outstanding, an interest payment never exceeds the
schedule's interest still unpaid; both are dated between disbursement and today, and a
principal repayment lowers the funds' guarantee exposure to their share of what remains
(so it reaches exactly zero when repaid)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy.orm import Session

from app.auth.principal import Principal
from app.errors import Conflict, NotFound, Unprocessable, Violation, refusal
from app.kit.money import format_fen
from app.loans import arrears as arr
from app.loans import repository as repo
from app.loans.schemas import DelinquencyIn, LoanFile, LoanRenewal
from app.loans.service import file_loan, post_exposure_change
from app.loans.status import LOAN_TRANSITIONS as LOAN_TRANSITIONS  # moved; re-exported
from app.loans.status import set_status
from app.models import DelinquencyReport, Enterprise, Loan, LoanInterestPayment, LoanRepayment
from app.programs.base import get_program


# --- the refusals of servicing --------------------------------------------------------
class LoanNotActive(Conflict):
    """Repayments go to active loans: this one is repaid, renewed, under a claim or
    compensated."""

    code = "loan_not_active"
    title, title_zh = "Loan not active", "贷款不在正常还款状态"


class LoanNotOwing(Conflict):
    """Arrears are reported on loans still owing (active, under a claim, compensated or
    written off): this one is repaid or renewed. In a status file (XB-Rep) the row of a
    loan settled by the month end lists nothing overdue."""

    code = "loan_not_owing"
    title, title_zh = "Loan no longer owing", "贷款已结清，不能报告逾期"


class InFuture(Unprocessable):
    """The date is after the business date: a repayment or an arrears report is of what
    has happened."""

    code = "in_future"
    title, title_zh = "Date in the future", "日期晚于当前营业日"


class BeforeDisbursement(Unprocessable):
    """The date is before the loan's disbursement."""

    code = "before_disbursement"
    title, title_zh = "Date before the disbursement", "日期早于放款日"


class Overpayment(Unprocessable):
    """The principal repaid is more than the principal outstanding."""

    code = "overpayment"
    title, title_zh = "More than is outstanding", "还款本金超过未还本金"


class InterestOverpayment(Unprocessable):
    """The interest paid is more than the repayment schedule's interest still unpaid
    (M-6)."""

    code, rule = "interest_overpayment", "M-6"
    title, title_zh = "More interest than is unpaid", "还息金额超过还款计划中尚未归还的利息"


class AfterAsOf(Unprocessable):
    """The arrears report's `overdue_since` is after its `as_of` date (M-6)."""

    code = "after_as_of"
    title, title_zh = "Overdue date after the report date", "逾期起始日晚于报告日"


class NotAfterDisbursement(Unprocessable):
    """`overdue_since` is on or before the disbursement: a loan falls into arrears after
    it is disbursed (M-6)."""

    code = "not_after_disbursement"
    title, title_zh = "Overdue date not after disbursement", "逾期起始日不晚于放款日"


class NothingOverdue(Unprocessable):
    """An overdue date with nothing overdue: give the principal or interest overdue, or
    no overdue date (M-6)."""

    code = "nothing_overdue"
    title, title_zh = "Overdue date without amounts", "有逾期起始日但逾期金额为零"


class OverdueSinceMissing(Unprocessable):
    """Amounts overdue without an overdue date: `overdue_since`, the first day in
    arrears, is required (M-6)."""

    code = "overdue_since_missing"
    title, title_zh = "Overdue amounts without a date", "有逾期金额但缺少逾期起始日"


class ExceedsPrincipal(Unprocessable):
    """An amount (principal overdue, balance outstanding) is more than the loan's
    principal."""

    code = "exceeds_principal"
    title, title_zh = "More than the loan's principal", "金额超过贷款本金"


class RenewalBeforeLoan(Unprocessable):
    """A renewal's new loan is disbursed before the loan it renews (SKD-F7)."""

    code, rule = "renewal_before_loan", "SKD-F7"
    title, title_zh = "Renewal before the loan it renews", "续贷放款日早于原贷款放款日"


REPAYMENT_REFUSALS = (BeforeDisbursement, InFuture, Overpayment, InterestOverpayment)
DELINQUENCY_REFUSALS = (
    InFuture,
    BeforeDisbursement,
    AfterAsOf,
    NotAfterDisbursement,
    NothingOverdue,
    OverdueSinceMissing,
    ExceedsPrincipal,
)


@dataclass(frozen=True)
class Position:
    as_of: date | None
    outstanding_fen: int
    days_past_due: int  # as the programme's claim rule counts them (SKD-C2, XB-C1)
    arrears: arr.Arrears | None = None
    interest: bool = True  # the claim rule counts interest arrears too

    @property
    def overdue_since(self) -> date | None:
        return self.arrears.overdue_since(self.interest) if self.arrears else None


def position_of(loan: Loan, arrears: arr.Arrears) -> Position:
    rule = get_program(loan.program).policy.arrears_rule("claim")
    return Position(
        arrears.as_of, arrears.outstanding_fen, arrears.days_for(rule), arrears, rule.interest
    )


def position(loan: Loan, repaid_fen: int, as_of: date) -> Position:
    """A loan's position from its bullet schedule and the principal repaid (a loan just
    filed: its schedule as filed is passed to `new_position`)."""
    return position_of(
        loan, arr.compute(loan.principal_fen, arr.bullet(loan), repaid_fen, 0, as_of)
    )


def new_position(loan: Loan, schedule: Sequence[arr.Instalment], as_of: date) -> Position:
    """A loan just filed: nothing paid or reported yet."""
    return position_of(loan, arr.compute(loan.principal_fen, schedule, 0, 0, as_of))


def positions(
    session: Session, loans: list[Loan], as_of: date, facts: arr.Facts | None = None
) -> dict[int, Position]:
    at = arr.arrears_of(session, loans, as_of, facts)
    return {x.id: position_of(x, at[x.id]) for x in loans}


def repay(
    session: Session,
    *,
    loan_id: int,
    paid_on: date,
    principal_fen: int,
    actor: Principal,
    today: date,
    now: datetime,
    interest_fen: int = 0,
) -> Loan:
    loan = repo.loan_for_update(session, loan_id)
    if loan is None or not actor.can_see_bank(loan.bank_code):
        raise NotFound(f"loan {loan_id} not found")
    if loan.status != "active":
        raise LoanNotActive(f"loan {loan_id} is {loan.status}; repayments go to active loans")
    principal_paid, interest_paid = arr.paid_by(session, [loan.id], None)
    outstanding = loan.principal_fen - principal_paid.get(loan.id, 0)
    errors = []
    if paid_on < loan.disbursed_on:
        errors.append(
            BeforeDisbursement.violation("before the disbursement date", "body", "paid_on")
        )
    if paid_on > today:
        errors.append(InFuture.violation("in the future", "body", "paid_on"))
    if principal_fen > outstanding:
        errors.append(
            Overpayment.violation(
                f"only {format_fen(outstanding)} is outstanding", "body", "principal"
            )
        )
    if interest_fen:
        plan = arr.schedules(session, [loan.id]).get(loan.id) or arr.bullet(loan)
        unpaid = sum(i.interest_fen for i in plan) - interest_paid.get(loan.id, 0)
        if interest_fen > unpaid:
            errors.append(
                InterestOverpayment.violation(
                    f"the schedule has {format_fen(unpaid)} of interest unpaid",
                    "body",
                    "interest",
                )
            )
    if errors:
        raise refusal(errors, f"the repayment was refused: {len(errors)} problem(s)")
    if interest_fen:
        session.add(
            LoanInterestPayment(
                loan_id=loan.id,
                paid_on=paid_on,
                interest_fen=interest_fen,
                recorded_by_id=actor.user_id,
            )
        )
    if not principal_fen:
        session.flush()
        return loan
    session.add(
        LoanRepayment(
            loan_id=loan.id,
            paid_on=paid_on,
            principal_fen=principal_fen,
            recorded_by_id=actor.user_id,
        )
    )
    _release_exposure(
        session,
        loan,
        outstanding,
        outstanding - principal_fen,
        paid_on,
        now=now,
        actor_id=actor.user_id,
    )
    if principal_fen == outstanding:
        set_status(
            session,
            loan,
            "repay_in_full",
            actor_id=actor.user_id,
            on=paid_on,
            now=now,
            reason=f"principal repaid in full on {paid_on.isoformat()}",
        )
        loan.closed_at = now
    session.flush()
    return loan


# a report may come for a loan still owing (an active loan, or one under a claim)
REPORTABLE = ("active", "claimed", "compensated", "written_off")


def report_delinquency(
    session: Session,
    *,
    loan_id: int,
    data: DelinquencyIn,
    actor: Principal,
    today: date,
) -> DelinquencyReport:
    """The bank's arrears report (SPEC M-6), kept beside the service's own view: every
    field problem listed, nothing written on a refusal."""
    loan = repo.loan_for_update(session, loan_id)
    if loan is None or not actor.can_see_bank(loan.bank_code):
        raise NotFound(f"loan {loan_id} not found")
    if loan.status not in REPORTABLE:
        raise LoanNotOwing(
            f"loan {loan_id} is {loan.status}; arrears are reported on loans still owing"
        )
    errors = delinquency_violations(loan, data, today)
    if errors:
        raise refusal(errors, f"the arrears report was refused: {len(errors)} problem(s)")
    report = DelinquencyReport(
        loan_id=loan.id,
        as_of=data.as_of,
        overdue_since=data.overdue_since,
        principal_overdue_fen=data.principal_overdue,
        interest_overdue_fen=data.interest_overdue,
        outstanding_fen=data.outstanding,
        source="bank",
        comment=data.comment,
        reported_by_id=actor.user_id,
    )
    session.add(report)
    session.flush()
    return report


def delinquency_violations(loan: Loan, data: DelinquencyIn, today: date) -> list[Violation]:
    errors = []
    if data.as_of > today:
        errors.append(InFuture.violation("in the future", "body", "as_of"))
    if data.as_of < loan.disbursed_on:
        errors.append(BeforeDisbursement.violation("before the disbursement date", "body", "as_of"))
    since = data.overdue_since
    owed = data.principal_overdue + data.interest_overdue
    if since is not None:
        if since > data.as_of:
            errors.append(AfterAsOf.violation("after `as_of`", "body", "overdue_since"))
        if since <= loan.disbursed_on:
            errors.append(
                NotAfterDisbursement.violation(
                    "on or before the disbursement date", "body", "overdue_since"
                )
            )
        if owed == 0:
            errors.append(
                NothingOverdue.violation(
                    "an overdue date with nothing overdue: give the principal or "
                    "interest overdue, or no overdue date",
                    "body",
                    "principal_overdue",
                )
            )
    elif owed:
        errors.append(
            OverdueSinceMissing.violation(
                "amounts overdue without an overdue date", "body", "overdue_since"
            )
        )
    if data.principal_overdue > loan.principal_fen:
        errors.append(
            ExceedsPrincipal.violation(
                "more than the loan's principal", "body", "principal_overdue"
            )
        )
    if data.outstanding is not None and data.outstanding > loan.principal_fen:
        errors.append(
            ExceedsPrincipal.violation("more than the loan's principal", "body", "outstanding")
        )
    return errors


def _release_exposure(
    session: Session,
    loan: Loan,
    before_fen: int,
    after_fen: int,
    paid_on: date,
    *,
    now: datetime,
    actor_id: int,
    event_type: str = "loan.repaid",
    why: str = "a repayment",
) -> None:
    count = len(repo.repaid_by(session, [loan.id], None))  # unique key per repayment
    post_exposure_change(
        session,
        loan,
        before_fen,
        after_fen,
        paid_on,
        event_type=event_type,
        key=f"loan:{loan.id}:repayment:{paid_on}:{before_fen}:{count}",
        why=f"exposure released by {why}",
        now=now,
        actor_id=actor_id,
    )


def renew(
    session: Session,
    *,
    loan_id: int,
    data: LoanRenewal,
    actor: Principal,
    today: date,
    now: datetime,
) -> Loan:
    """SKD-F7 renewal (续贷, including 无还本续贷): the old loan is closed as renewed (its
    outstanding principal settled by the new loan on the new disbursement date, its
    exposure released), then the new loan is filed and checked like any filing — the
    old loan no longer counts against SKD-F3 — and linked to the old one."""
    old = repo.loan_for_update(session, loan_id)
    if old is None or not actor.can_see_bank(old.bank_code):
        raise NotFound(f"loan {loan_id} not found")
    set_status(
        session,
        old,
        "renew",
        actor_id=actor.user_id,
        on=data.disbursed_on,
        now=now,
        reason=f"renewed by contract {data.contract_no} disbursed on "
        f"{data.disbursed_on.isoformat()} (SKD-F7)",
    )
    if data.disbursed_on < old.disbursed_on:
        raise RenewalBeforeLoan(
            "the renewal cannot start before the loan it renews",
            [
                RenewalBeforeLoan.violation(
                    f"before {old.disbursed_on.isoformat()}, the old loan's disbursement",
                    "body",
                    "disbursed_on",
                )
            ],
        )
    outstanding = old.principal_fen - repo.repaid_by(session, [old.id], None).get(old.id, 0)
    if outstanding > 0:
        session.add(
            LoanRepayment(
                loan_id=old.id,
                paid_on=data.disbursed_on,
                principal_fen=outstanding,
                recorded_by_id=actor.user_id,
                kind="renewal",
            )
        )
        _release_exposure(
            session,
            old,
            outstanding,
            0,
            data.disbursed_on,
            now=now,
            actor_id=actor.user_id,
            event_type="loan.renewed",
            why="a renewal",
        )
    old.closed_at = now
    session.flush()
    enterprise = session.get(Enterprise, old.enterprise_id)
    assert enterprise is not None
    new = file_loan(
        session,
        data=LoanFile(
            program=old.program,
            enterprise_credit_code=enterprise.credit_code,
            **data.model_dump(mode="json"),
        ),
        principal=actor,
        today=today,
        now=now,
    )
    new.renewed_from_id = old.id
    session.flush()
    return new
