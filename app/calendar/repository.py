"""Calendar queries."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.models import CalendarDay, CalendarPublication


def latest_token(session: Session) -> str | None:
    """The newest publication's token: it changes with every publication of any year."""
    return session.scalar(
        select(CalendarPublication.token).order_by(CalendarPublication.id.desc()).limit(1)
    )


def current_publications(session: Session) -> Sequence[CalendarPublication]:
    """The publication in force for each stored year (its latest)."""
    latest = (
        select(func.max(CalendarPublication.id))
        .group_by(CalendarPublication.year)
        .scalar_subquery()
    )
    return session.scalars(
        select(CalendarPublication)
        .where(CalendarPublication.id.in_(latest))
        .order_by(CalendarPublication.year)
    ).all()


def days_of(session: Session, publication_ids: Sequence[int]) -> Sequence[CalendarDay]:
    if not publication_ids:
        return []
    return session.scalars(
        select(CalendarDay)
        .where(CalendarDay.publication_id.in_(publication_ids))
        .order_by(CalendarDay.day)
    ).all()


def publications_of(session: Session, year: int) -> Sequence[CalendarPublication]:
    return session.scalars(
        select(CalendarPublication)
        .where(CalendarPublication.year == year)
        .order_by(CalendarPublication.id)
    ).all()
