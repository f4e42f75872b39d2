"""Enterprise library membership (SKD-E1) as an append-only history per enterprise;
the current state is the latest event (admitted / updated → member, removed → not)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import JSON, CheckConstraint, ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import Base, BigIntPK, utcnow
from app.models.reference import _in

LIBRARY_ACTIONS = ("admitted", "updated", "removed")


class LibraryEvent(Base):
    __tablename__ = "library_events"
    __table_args__ = (
        CheckConstraint(_in("action", LIBRARY_ACTIONS), name="action"),
        Index("ix_library_events_enterprise_program", "enterprise_id", "program", "id"),
    )

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    enterprise_id: Mapped[int] = mapped_column(ForeignKey("enterprises.id"))
    program: Mapped[str] = mapped_column(String(8), ForeignKey("programs.code"))
    action: Mapped[str] = mapped_column(String(16))
    effective_on: Mapped[date]
    comment: Mapped[str] = mapped_column(Text, default="")
    criteria: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    actor_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    at: Mapped[datetime] = mapped_column(default=utcnow)
