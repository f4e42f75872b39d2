"""Quarter-end evaluations (SKD-Q3): every run and its per-bank results are kept."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import Base, BigIntPK, utcnow


class QuarterEvaluation(Base):
    __tablename__ = "quarter_evaluations"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    program: Mapped[str] = mapped_column(String(8))
    year: Mapped[int]
    quarter: Mapped[int]
    quarter_end: Mapped[date]
    actor_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    run_at: Mapped[datetime] = mapped_column(default=utcnow)


class QuarterBankResult(Base):
    __tablename__ = "quarter_bank_results"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    evaluation_id: Mapped[int] = mapped_column(ForeignKey("quarter_evaluations.id"), index=True)
    bank_code: Mapped[str] = mapped_column(ForeignKey("banks.code"), index=True)
    outstanding_fen: Mapped[int] = mapped_column(BigInteger)
    npl_fen: Mapped[int] = mapped_column(BigInteger)
    threshold_bp: Mapped[int]
    breached: Mapped[bool]
    decision: Mapped[str] = mapped_column(String(16))  # suspended / lifted / unchanged
    agreement_ids: Mapped[list[Any]] = mapped_column(JSON, default=list)
