"""A claim's stored deadlines (XB-C2 opinion and payment, XB-R1 distributions) on the
working calendar, and their recompute when a calendar year is published (SPEC M-3)."""

from __future__ import annotations

import logging
from datetime import date

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.calendar.service import DeadlineChange, Recompute, working_calendar
from app.kit.calendar import CalendarUnavailable, Deadline
from app.models import Claim, ClaimRecovery, ClaimTransition
from app.programs.base import XB
from app.programs.xinbao.policy import CLAIM_DEADLINES, CLAIMS

log = logging.getLogger("app.calendar")


def set_deadline(session: Session, claim: Claim, name: str) -> Deadline:
    """Compute and store the claim's deadline `name` from its base date."""
    _status, base, days = CLAIM_DEADLINES[name]
    deadline = working_calendar(session).add_working_days(getattr(claim, base), days)
    _store(claim, name, deadline)
    return deadline


def recovery_due(session: Session, recovered_on: date) -> Deadline:
    """XB-R1: a collection's share is distributed within 10 working days."""
    return working_calendar(session).add_working_days(recovered_on, CLAIMS.recovery_working_days)


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
    waiting = {status: name for name, (status, _b, _d) in CLAIM_DEADLINES.items()}
    claims = session.scalars(select(Claim).where(Claim.program == XB.code).order_by(Claim.id)).all()
    due = [
        (claim, name)
        for claim in claims
        for name in CLAIM_DEADLINES
        if name == waiting.get(claim.status) or name in (claim.provisional_deadlines or [])
    ]
    for claim, name in due:
        raw = claim.deadlines.get(name)
        _status, base_attr, days = CLAIM_DEADLINES[name]
        base: date | None = getattr(claim, base_attr)
        if raw is None or base is None:
            continue
        old = Deadline(date.fromisoformat(raw), name in claim.provisional_deadlines)
        if base >= end or old.on < start:
            continue  # the counted days (base, deadline] do not reach into the year
        try:
            new = ctx.calendar.add_working_days(base, days)
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
        try:
            new = ctx.calendar.add_working_days(rec.recovered_on, CLAIMS.recovery_working_days)
        except CalendarUnavailable:
            continue
        old = Deadline(rec.due_on, rec.due_on_provisional)
        if new == old:
            continue
        rec.due_on, rec.due_on_provisional = new.on, new.provisional
        paid_claim = session.get(Claim, rec.claim_id)
        assert paid_claim is not None
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
