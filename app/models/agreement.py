"""Cooperation agreements (bank × programme [× region]) and their status history."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import JSON, CheckConstraint, ForeignKey, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import Base, BigIntPK, CreatedAt, utcnow
from app.models.reference import _in

AGREEMENT_STATUSES = ("active", "suspended", "terminated")


class Agreement(CreatedAt, Base):
    __tablename__ = "agreements"
    __table_args__ = (
        CheckConstraint(_in("status", AGREEMENT_STATUSES), name="status"),
        CheckConstraint("end_on > start_on", name="period"),
    )

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    bank_code: Mapped[str] = mapped_column(ForeignKey("banks.code"), index=True)
    program: Mapped[str] = mapped_column(String(8), ForeignKey("programs.code"))
    fund_code: Mapped[str] = mapped_column(ForeignKey("funds.code"), index=True)
    region_code: Mapped[str | None] = mapped_column(ForeignKey("regions.code"), index=True)
    start_on: Mapped[date]
    end_on: Mapped[date]
    status: Mapped[str] = mapped_column(String(16), default="active")
    terms: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class AgreementEvent(Base):
    """One row per status change: who, when, why (append-only history)."""

    __tablename__ = "agreement_events"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    agreement_id: Mapped[int] = mapped_column(ForeignKey("agreements.id"), index=True)
    action: Mapped[str] = mapped_column(String(20))
    from_status: Mapped[str | None] = mapped_column(String(16))
    to_status: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str] = mapped_column(Text)
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), index=True)
    at: Mapped[datetime] = mapped_column(default=utcnow)
