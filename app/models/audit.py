"""The audit trail: one row per change of a business record and per state-changing
request, append-only like the ledger (migration 0023; the capture is app/audit/capture.py)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Index, SmallInteger, String
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import Base, BigIntPK


class AuditEvent(Base):
    """Who did what, when, to which record, with the values before and after.

    `actor` is the username of the authenticated caller, or a label for work done
    outside a request (`system:seed`, `cli`, `system`); `actor_user_id`/`actor_role` are
    empty then. `method`, `path`, `operation_id` and `status` are those of the request
    (empty outside HTTP). `before`/`after` hold the changed columns only for an update,
    every column for an insert (after) or a delete (before); money in integer fen."""

    __tablename__ = "audit_events"
    __table_args__ = (
        Index("ix_audit_events_subject", "subject_type", "subject_id"),
        Index("ix_audit_events_request_id", "request_id"),
        Index("ix_audit_events_occurred_at", "occurred_at"),
    )

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    occurred_at: Mapped[datetime]
    actor: Mapped[str] = mapped_column(String(64))
    actor_user_id: Mapped[int | None] = mapped_column(BigInteger)
    actor_role: Mapped[str | None] = mapped_column(String(20))
    request_id: Mapped[str | None] = mapped_column(String(64))
    method: Mapped[str | None] = mapped_column(String(10))
    path: Mapped[str | None] = mapped_column(String(500))
    operation_id: Mapped[str | None] = mapped_column(String(100))
    action: Mapped[str] = mapped_column(String(80))
    subject_type: Mapped[str | None] = mapped_column(String(40))
    subject_id: Mapped[str | None] = mapped_column(String(64))
    before: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    after: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    status: Mapped[int | None] = mapped_column(SmallInteger)
