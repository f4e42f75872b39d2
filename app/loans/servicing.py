"""Servicing: repayments, outstanding principal and days past due as of any date.

Reading chosen (SKD loans are ≤ 1-year working-capital loans repaid at maturity): a loan
is past due from the day after its maturity date while principal is outstanding;
days past due as of D = D − maturity date. A repayment never exceeds what is
outstanding, is dated between disbursement and today, and lowers the funds' guarantee
exposure to their share of what remains (so it reaches exactly zero when repaid)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy.orm import Session

from app.auth.principal import Principal
from app.errors import Conflict, NotFound, Unprocessable, Violation
from app.kit.money import format_fen
from app.loans import repository as repo
from app.loans.schemas import LoanFile, LoanRenewal
from app.loans.service import file_loan, post_exposure_change
from app.loans.status import LOAN_TRANSITIONS as LOAN_TRANSITIONS  # moved; re-exported
from app.loans.status import set_status
from app.models import Enterprise, Loan, LoanRepayment


@dataclass(frozen=True)
class Position:
    as_of: date | None
    outstanding_fen: int
    days_past_due: int


def position(loan: Loan, repaid_fen: int, as_of: date) -> Position:
    outstanding = loan.principal_fen - repaid_fen
    overdue = outstanding > 0 and as_of > loan.maturity_on
    return Position(as_of, outstanding, (as_of - loan.maturity_on).days if overdue else 0)


def positions(session: Session, loans: list[Loan], as_of: date) -> dict[int, Position]:
    repaid = repo.repaid_by(session, [x.id for x in loans], as_of)
    return {x.id: position(x, repaid.get(x.id, 0), as_of) for x in loans}


def repay(
    session: Session,
    *,
    loan_id: int,
    paid_on: date,
    principal_fen: int,
    actor: Principal,
    today: date,
    now: datetime,
) -> Loan:
    loan = repo.loan_for_update(session, loan_id)
    if loan is None or not actor.can_see_bank(loan.bank_code):
        raise NotFound(f"loan {loan_id} not found")
    if loan.status != "active":
        raise Conflict(
            f"loan {loan_id} is {loan.status}; repayments go to active loans",
            code="loan_not_active",
        )
    outstanding = loan.principal_fen - repo.repaid_by(session, [loan.id], None).get(loan.id, 0)
    errors = []
    if paid_on < loan.disbursed_on:
        errors.append(Violation(loc=("body", "paid_on"), msg="before the disbursement date"))
    if paid_on > today:
        errors.append(Violation(loc=("body", "paid_on"), msg="in the future"))
    if principal_fen > outstanding:
        errors.append(
            Violation(
                loc=("body", "principal"),
                code="overpayment",
                msg=f"only {format_fen(outstanding)} is outstanding",
            )
        )
    if errors:
        raise Unprocessable("the repayment was refused", errors, code="repayment_refused")
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
        raise Unprocessable(
            "the renewal cannot start before the loan it renews",
            [
                Violation(
                    loc=("body", "disbursed_on"),
                    msg=f"before {old.disbursed_on.isoformat()}, the old loan's disbursement",
                )
            ],
            code="renewal_refused",
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
