from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.models import LibraryEvent, Region


def history(session: Session, enterprise_id: int, program: str) -> Sequence[LibraryEvent]:
    return session.scalars(
        select(LibraryEvent)
        .where(LibraryEvent.enterprise_id == enterprise_id, LibraryEvent.program == program)
        .order_by(LibraryEvent.id)
    ).all()


def region_ancestors(session: Session, code: str) -> list[str]:
    """The region and every parent up to the province."""
    chain, current = [], code
    while current and current not in chain:
        chain.append(current)
        current = session.scalar(select(Region.parent_code).where(Region.code == current)) or ""
    return chain
