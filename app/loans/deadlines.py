"""A loan's filing deadline (SKD-F2, XB-F2) on the working calendar, and its recompute
when the deadline's calendar year is published (SPEC M-3)."""

from __future__ import annotations

from datetime import date

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from app.calendar.service import DeadlineChange, Recompute, working_calendar
from app.kit.calendar import CalendarUnavailable, Deadline
from app.models import Loan, LoanEvent
from app.programs.base import (
    bars_compensation_for_good,
    get_program,
    is_late_filing_flag,
    late_filing_flag,
)

OPEN_STATUSES = ("active", "claimed")


def filing_deadline(session: Session, program: str, disbursed_on: date) -> Deadline:
    days = get_program(program).policy.filing_deadline_working_days  # SKD-F2, XB-F2
    return working_calendar(session).add_working_days(disbursed_on, days)


def recompute_filing_deadlines(session: Session, ctx: Recompute) -> list[DeadlineChange]:
    """Loans whose filing window (disbursement, deadline] reaches into the published year
    get their deadline recomputed: open ones always, closed ones (repaid, renewed,
    compensated) only to settle a provisional deadline. An open loan that turns out filed
    late is flagged, and where the programme accepts late filings as non-compensable
    (XB-N7) it becomes so; one that turns out on time loses that flag. Each change is a
    loan event. (The publication holds the calendar lock: no write runs beside it.)"""
    start, end = date(ctx.year, 1, 1), date(ctx.year, 12, 31)
    which = or_(Loan.status.in_(OPEN_STATUSES), Loan.filing_deadline_provisional.is_(True))
    if ctx.first:  # before, the year was provisional: only provisional deadlines can move
        which = Loan.filing_deadline_provisional.is_(True)
    loans = session.scalars(
        select(Loan)
        .where(which, Loan.disbursed_on < end, Loan.filing_deadline >= start)
        .order_by(Loan.id)
    ).all()
    changes = []
    for loan in loans:
        days = get_program(loan.program).policy.filing_deadline_working_days
        try:
            new = ctx.calendar.add_working_days(loan.disbursed_on, days)
        except CalendarUnavailable:
            continue  # reaches into a year still refused: stays as it was
        old = Deadline(loan.filing_deadline, loan.filing_deadline_provisional)
        if new == old:
            continue
        if loan.status in OPEN_STATUSES:
            consequence = _refile(loan, new)
        else:
            loan.filing_deadline, loan.filing_deadline_provisional = new.on, new.provisional
            consequence = ""
        comment = (
            f"filing deadline {old.on}{' (provisional)' if old.provisional else ''} → "
            f"{new.on}{' (provisional)' if new.provisional else ''}: {ctx.reason()}"
            + (f"; {consequence}" if consequence else "")
        )
        session.add(
            LoanEvent(
                loan_id=loan.id,
                action="deadline_recomputed",
                comment=comment,
                details={
                    "deadline": "filing",
                    "old": old.on.isoformat(),
                    "new": new.on.isoformat(),
                    "old_provisional": old.provisional,
                    "new_provisional": new.provisional,
                    "publication_id": ctx.publication.id,
                },
                actor_id=ctx.actor_id,
                business_date=ctx.today,
                at=ctx.now,
            )
        )
        changes.append(
            DeadlineChange(
                "loan",
                loan.id,
                "filing",
                old.on,
                new.on,
                old.provisional,
                new.provisional,
                consequence,
            )
        )
    session.flush()
    return changes


def _refile(loan: Loan, new: Deadline) -> str:
    """Set the new deadline; the consequence for the loan, in words ('' for none). A loan
    the deadline does not bind (a guaranteed XB loan, XB-F2) is never made late by it."""
    loan.filing_deadline, loan.filing_deadline_provisional = new.on, new.provisional
    binds = loan.filing_deadline_applies
    late = binds and loan.filed_on > new.on
    program = get_program(loan.program).policy
    rule = program.late_filing_rule
    kept = [f for f in loan.flags if not is_late_filing_flag(program, f)]
    if late:
        kept.append(late_filing_flag(program, new.on, new.provisional))
    loan.flags = kept
    if late == loan.filed_late:
        return "" if binds else "the deadline does not bind a guaranteed loan (XB-F2)"
    loan.filed_late = late
    if program.late_filing != "not_compensable":
        return f"filed after the published deadline ({rule})" if late else "filed on time"
    others_bar = any(bars_compensation_for_good(f) for f in loan.flags)
    loan.compensable = not late and not others_bar
    return (
        f"filed after the published deadline: not compensable ({rule})"
        if late
        else "filed on time under the published calendar: compensable again"
    )
