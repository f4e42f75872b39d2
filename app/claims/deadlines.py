"""A claim's stored deadlines (XB-C2 opinion and payment, XB-R1 distributions) on the
working calendar, and their recompute when a calendar year is published (SPEC M-3)."""

from __future__ import annotations

import logging
from datetime import date
from typing import NamedTuple

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.calendar.service import DeadlineChange, Recompute, working_calendar
from app.claims.workflow import ClaimDeadline
from app.kit.calendar import CalendarUnavailable, Deadline, WorkingCalendar
from app.models import Claim, ClaimRecovery, ClaimReturn, ClaimTransition
from app.programs.base import get_program, registered_programs

log = logging.getLogger("app.calendar")


def deadlines_of(claim: Claim) -> dict[str, ClaimDeadline]:
    """The deadlines the claim's programme stores on its claims (XB-C2: the manager's
    opinion and the payment)."""
    return dict(get_program(claim.program).workflow.deadlines)


def set_deadline(session: Session, claim: Claim, name: str) -> Deadline:
    """Compute and store the claim's deadline `name` from its base date."""
    d = deadlines_of(claim)[name]
    deadline = working_calendar(session).add_working_days(getattr(claim, d.base), d.days)
    _store(claim, name, deadline)
    return deadline


def set_deadlines_for_status(session: Session, claim: Claim) -> None:
    """Store the deadline of the step the claim now waits for, if its programme sets one."""
    for name, d in deadlines_of(claim).items():
        if d.status == claim.status:
            set_deadline(session, claim, name)


def recovery_due(session: Session, recovered_on: date, days: int) -> Deadline:
    """XB-R1: a collection's share is due to the fund within `days` working days."""
    return working_calendar(session).add_working_days(recovered_on, days)


# --- pauses while a claim is returned for correction (退回补正, SKD-C1, XB-C2) -------------
Pause = tuple[date, date | None]  # (returned on, resubmitted on; None while returned)


def pauses(session: Session, claim_id: int, name: str) -> list[Pause]:
    """The claim's returns that paused deadline `name`, each with the date of the bank's
    resubmission that ended it (returns and resubmissions alternate in the history)."""
    returns = session.scalars(
        select(ClaimReturn).where(ClaimReturn.claim_id == claim_id).order_by(ClaimReturn.id)
    ).all()
    resubmitted = session.scalars(
        select(ClaimTransition.business_date)
        .where(
            ClaimTransition.claim_id == claim_id,
            ClaimTransition.action.startswith("resubmit_", autoescape=True),
        )
        .order_by(ClaimTransition.id)
    ).all()
    return [
        (r.returned_on, resubmitted[i] if i < len(resubmitted) else None)
        for i, r in enumerate(returns)
        if r.paused_deadline == name
    ]


def working_days_left(
    calendar: WorkingCalendar, base: date, days: int, paused: list[Pause]
) -> tuple[int, date | None, bool]:
    """How many of the `days` working days after `base` are left once the pauses are
    taken out, the date they count on from (None while the last pause is open), and
    whether a provisional calendar day was counted. A return day counts as used, a
    resubmission day does not; a claim returned after its deadline has none left."""
    left, cursor, provisional = days, base, False
    for returned, resubmitted in paused:
        used = calendar.working_days_between(cursor, returned)
        left, provisional = max(left - used.days, 0), provisional or used.provisional
        if resubmitted is None:
            return left, None, provisional
        cursor = resubmitted
    return left, cursor, provisional


def paused_deadline(
    calendar: WorkingCalendar, base: date, days: int, paused: list[Pause]
) -> Deadline:
    """The deadline `days` working days after `base`, the days the claim spent with the
    bank not counted: the remaining days continue from each resubmission date."""
    left, cursor, provisional = working_days_left(calendar, base, days, paused)
    assert cursor is not None, "the claim is still returned"
    due = calendar.add_working_days(cursor, left)
    return Deadline(due.on, provisional or due.provisional)


class Paused(NamedTuple):
    name: str
    was: date
    working_days_left: int
    provisional: bool


def pause(session: Session, claim: Claim, returned_on: date) -> Paused | None:
    """The stored deadline of the step the claim waits for stops while the claim is with
    the bank: it is no longer stored (nor flagged provisional) until the resubmission
    sets it again. None when the step has no stored deadline (SKD's reviews, XB's
    committee)."""
    known = deadlines_of(claim)
    name = next((n for n, d in known.items() if d.status == claim.status), None)
    if name is None or name not in claim.deadlines:
        return None
    d = known[name]
    paused = [*pauses(session, claim.id, name), (returned_on, None)]
    left, _cursor, provisional = working_days_left(
        working_calendar(session), getattr(claim, d.base), d.days, paused
    )
    was = date.fromisoformat(claim.deadlines[name])
    claim.deadlines = {k: v for k, v in claim.deadlines.items() if k != name}
    claim.provisional_deadlines = [n for n in (claim.provisional_deadlines or []) if n != name]
    return Paused(name, was, left, provisional)


def resume(session: Session, claim: Claim, name: str, resubmitted_on: date) -> Deadline:
    """The bank resubmits on `resubmitted_on`: the remaining working days continue from
    that date (stored, with its provisional flag)."""
    d = deadlines_of(claim)[name]
    paused = pauses(session, claim.id, name)
    if paused and paused[-1][1] is None:
        paused[-1] = (paused[-1][0], resubmitted_on)
    deadline = paused_deadline(working_calendar(session), getattr(claim, d.base), d.days, paused)
    _store(claim, name, deadline)
    return deadline


def _store(claim: Claim, name: str, deadline: Deadline) -> None:
    claim.deadlines = {**claim.deadlines, name: deadline.on.isoformat()}
    others = [n for n in (claim.provisional_deadlines or []) if n != name]
    claim.provisional_deadlines = [*others, name] if deadline.provisional else others


def _mark(flag: bool) -> str:
    return " (provisional)" if flag else ""


def recompute_claim_deadlines(session: Session, ctx: Recompute) -> list[DeadlineChange]:
    """The pending step's deadline of every claim waiting for it, any deadline still
    marked provisional, and the due date of unsettled distributions on paid claims, where
    the counted days reach into the published year; each change is a history row on the
    claim (from and to its current status). Without an admin to name in the history
    (a year seeded from the package before any admin exists) claims are left as they are
    and a later publication of the year recomputes them."""
    start, end = date(ctx.year, 1, 1), date(ctx.year, 12, 31)
    changes: list[DeadlineChange] = []
    if ctx.history_actor_id is None:
        log.warning("no admin to name in claim histories: claim deadlines not recomputed")
        return changes
    with_deadlines = [p.code for p in registered_programs() if p.workflow.deadlines]
    claims = session.scalars(
        select(Claim).where(Claim.program.in_(with_deadlines)).order_by(Claim.id)
    ).all()
    due = [
        (claim, name)
        for claim in claims
        for name, d in deadlines_of(claim).items()
        if d.status == claim.status or name in (claim.provisional_deadlines or [])
    ]
    returned = set(session.scalars(select(ClaimReturn.claim_id).distinct()))
    for claim, name in due:
        raw = claim.deadlines.get(name)
        d = deadlines_of(claim)[name]
        base: date | None = getattr(claim, d.base)
        days = d.days
        if raw is None or base is None:
            continue
        old = Deadline(date.fromisoformat(raw), name in claim.provisional_deadlines)
        if base >= end or old.on < start:
            continue  # the counted days (base, deadline] do not reach into the year
        try:  # the days the claim spent with the bank for correction do not count
            paused = pauses(session, claim.id, name) if claim.id in returned else []
            new = paused_deadline(ctx.calendar, base, days, paused)
        except CalendarUnavailable:
            continue
        if new == old:
            continue
        _store(claim, name, new)
        _history(
            session,
            claim,
            ctx,
            f"{name} deadline {old.on}{_mark(old.provisional)} → {new.on}{_mark(new.provisional)}",
        )
        changes.append(
            DeadlineChange(
                "claim", claim.id, name, old.on, new.on, old.provisional, new.provisional
            )
        )
    paid = session.scalars(
        select(ClaimRecovery)
        .join(Claim, Claim.id == ClaimRecovery.claim_id)
        .where(
            Claim.status == "paid",
            ClaimRecovery.due_on.is_not(None),
            ClaimRecovery.returned_fen > 0,
            ClaimRecovery.recovered_on < end,
            ClaimRecovery.due_on >= start,
        )
        .order_by(ClaimRecovery.id)
    ).all()
    for rec in paid:
        assert rec.due_on is not None
        paid_claim = session.get(Claim, rec.claim_id)
        assert paid_claim is not None
        due_days = get_program(paid_claim.program).recovery_due_working_days
        if due_days is None:
            continue
        try:
            new = ctx.calendar.add_working_days(rec.recovered_on, due_days)
        except CalendarUnavailable:
            continue
        old = Deadline(rec.due_on, rec.due_on_provisional)
        if new == old:
            continue
        rec.due_on, rec.due_on_provisional = new.on, new.provisional
        _history(
            session,
            paid_claim,
            ctx,
            f"distribution of the {rec.recovered_on} collection due "
            f"{old.on}{_mark(old.provisional)} → {new.on}{_mark(new.provisional)}",
        )
        changes.append(
            DeadlineChange(
                "recovery", rec.id, "distribution", old.on, new.on, old.provisional, new.provisional
            )
        )
    session.flush()
    return changes


def _history(session: Session, claim: Claim, ctx: Recompute, what: str) -> None:
    assert ctx.history_actor_id is not None  # checked by the caller
    session.add(
        ClaimTransition(
            claim_id=claim.id,
            action="deadline_recomputed",
            from_status=claim.status,
            to_status=claim.status,
            actor_id=ctx.history_actor_id,
            actor_role="admin",
            comment=f"{what}: {ctx.reason()}",
            business_date=ctx.today,
            at=ctx.now,
        )
    )
