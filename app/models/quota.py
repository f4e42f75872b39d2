"""Annual issuance quota per programme (SKD-F6, 年度投放额度上限)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, CheckConstraint, ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import Base, BigIntPK, utcnow


class ProgramQuota(Base):
    __tablename__ = "program_quotas"
    __table_args__ = (
        UniqueConstraint("program", "year"),
        CheckConstraint("amount_fen >= 0", name="amount_non_negative"),
    )

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    program: Mapped[str] = mapped_column(String(8), ForeignKey("programs.code"))
    year: Mapped[int]
    amount_fen: Mapped[int] = mapped_column(BigInteger)
    # principal filed with a disbursement in this year, kept by every filing under the
    # row's lock (SKD-F6 without summing the year's loans on each filing)
    used_fen: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    set_by_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
