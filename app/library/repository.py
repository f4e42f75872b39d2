from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import literal, select
from sqlalchemy.orm import Session, aliased

from app.models import LibraryEvent, Region


def history(session: Session, enterprise_id: int, program: str) -> Sequence[LibraryEvent]:
    return session.scalars(
        select(LibraryEvent)
        .where(LibraryEvent.enterprise_id == enterprise_id, LibraryEvent.program == program)
        .order_by(LibraryEvent.id)
    ).all()


def latest_action(session: Session, enterprise_id: int, program: str) -> str | None:
    """The enterprise's last library event in the programme (one indexed row)."""
    return session.scalar(
        select(LibraryEvent.action)
        .where(LibraryEvent.enterprise_id == enterprise_id, LibraryEvent.program == program)
        .order_by(LibraryEvent.id.desc())
        .limit(1)
    )


def region_ancestors(session: Session, code: str) -> list[str]:
    """The region and every parent up to the province, most specific first (one
    recursive query)."""
    up = (
        select(Region.code, Region.parent_code, literal(0).label("depth"))
        .where(Region.code == code)
        .cte("up", recursive=True)
    )
    parent = aliased(Region)
    up = up.union(
        select(parent.code, parent.parent_code, (up.c.depth + 1).label("depth")).where(
            parent.code == up.c.parent_code, up.c.depth < 10
        )
    )
    return list(session.scalars(select(up.c.code).order_by(up.c.depth)))
