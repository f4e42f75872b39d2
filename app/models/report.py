"""Regulators' reports (SKD-Q3, SKD-A1, SKD-R2, XB-Rep): stored runs of closed periods and
the record of refused filings the annual assessment counts. Both append-only."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    CheckConstraint,
    ForeignKey,
    Index,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import Base, BigIntPK, CreatedAt, utcnow


class ReportRun(CreatedAt, Base):
    """One run of a report for a closed period: its canonical content (JSON text, the
    bytes a re-pull returns), that content's SHA-256, the cut-off (rows recorded up to it)
    and the ledger entry range it covers. A re-run is a new version listing what changed
    against the previous one."""

    __tablename__ = "report_runs"
    __table_args__ = (
        UniqueConstraint("kind", "program", "period", "scope", "version"),
        CheckConstraint("kind IN ('quarterly', 'monthly', 'annual')", name="kind"),
    )

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(String(16))
    program: Mapped[str] = mapped_column(String(8), ForeignKey("programs.code"))
    period: Mapped[str] = mapped_column(String(16))  # 2026-Q3, 2026-11, 2026
    # what the run covers within the programme: "" for all, else e.g. a bank code
    scope: Mapped[str] = mapped_column(String(64), default="")
    version: Mapped[int]
    period_end: Mapped[date]
    cutoff_at: Mapped[datetime]
    ledger_first_entry_id: Mapped[int | None] = mapped_column(BigInteger)
    ledger_last_entry_id: Mapped[int | None] = mapped_column(BigInteger)
    content: Mapped[str] = mapped_column(Text)
    content_sha256: Mapped[str] = mapped_column(String(64))
    changes: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    created_by_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)


class ReportSubmission(Base):
    """A run marked as submitted, e.g. the XB fund manager's quarterly report to the
    领导小组办公室 (due Jan 15 / Apr 15 / Jul 15 / Oct 15, XB-Rep)."""

    __tablename__ = "report_submissions"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("report_runs.id"), index=True)
    submitted_to: Mapped[str] = mapped_column(String(100))
    due_on: Mapped[date | None]
    late: Mapped[bool] = mapped_column(default=False)
    comment: Mapped[str] = mapped_column(Text, default="")
    submitted_by_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    at: Mapped[datetime] = mapped_column(default=utcnow)


class FilingRefusal(Base):
    """A well-formed filing refused by the programme's rules (SKD-A1 counts them): who,
    what, which rules. Written in its own transaction beside the refused request, which
    writes nothing else; the loan and the ledger are untouched."""

    __tablename__ = "filing_refusals"
    __table_args__ = (
        Index("ix_filing_refusals_bank_program_date", "bank_code", "program", "business_date"),
    )

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    bank_code: Mapped[str] = mapped_column(ForeignKey("banks.code"))
    program: Mapped[str] = mapped_column(String(8), ForeignKey("programs.code"))
    enterprise_credit_code: Mapped[str] = mapped_column(String(18))
    enterprise_id: Mapped[int | None] = mapped_column(ForeignKey("enterprises.id"), index=True)
    contract_no: Mapped[str] = mapped_column(String(64))
    principal_fen: Mapped[int] = mapped_column(BigInteger)
    disbursed_on: Mapped[date]
    rules: Mapped[list[str]] = mapped_column(JSON, default=list)
    codes: Mapped[list[str]] = mapped_column(JSON, default=list)
    business_date: Mapped[date]
    refused_by_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    at: Mapped[datetime] = mapped_column(default=utcnow)
