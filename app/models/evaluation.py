"""Quarter-end evaluations: every run and its per-bank results are kept. SKD (SKD-Q3):
one row per bank, its NPL ratio. XB (XB-Q1): one row per bank and sub-fund, the limit
basis (principal outstanding at the quarter end) the next quarter's committee decisions
read, the year's usage and the warning / suspension state."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import Base, BigIntPK, utcnow


class QuarterEvaluation(Base):
    __tablename__ = "quarter_evaluations"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    program: Mapped[str] = mapped_column(String(8), ForeignKey("programs.code"))
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
    # XB-Q1 only (null on SKD rows): outstanding_fen is the limit basis, threshold_bp the
    # sub-fund's limit rate, breached whether the year's compensation reached the limit
    fund_code: Mapped[str | None] = mapped_column(ForeignKey("funds.code"), index=True)
    warning_share_bp: Mapped[int | None]
    limit_year: Mapped[int | None]  # the calendar year the basis serves (after the quarter)
    limit_fen: Mapped[int | None] = mapped_column(BigInteger)
    warning_fen: Mapped[int | None] = mapped_column(BigInteger)
    used_fen: Mapped[int | None] = mapped_column(BigInteger)  # approved in limit_year so far
    warning: Mapped[bool | None]
    suspended: Mapped[bool | None]  # the bank's agreement with the sub-fund, after the run
