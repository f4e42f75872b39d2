"""Stored responses of POSTs sent with an `Idempotency-Key` (per user and key, SPEC L-4)."""

from __future__ import annotations

from sqlalchemy import ForeignKey, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import Base, BigIntPK, CreatedAt


class IdempotencyRecord(CreatedAt, Base):
    __tablename__ = "idempotency_records"
    __table_args__ = (UniqueConstraint("user_id", "key"),)

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    key: Mapped[str] = mapped_column(String(255))
    request_hash: Mapped[str] = mapped_column(String(64))
    method: Mapped[str] = mapped_column(String(8))
    path: Mapped[str] = mapped_column(String(500))
    status_code: Mapped[int]
    content_type: Mapped[str] = mapped_column(String(100))
    response_body: Mapped[str] = mapped_column(Text)
    # the answer's headers a client acts on (Location, ETag, …), as a JSON object
    response_headers: Mapped[str] = mapped_column(Text, default="{}", server_default="{}")
