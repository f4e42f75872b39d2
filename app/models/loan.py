"""Loans filed under a programme (备案). Filing rules live in the programme packages."""

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
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import Base, BigIntPK, CreatedAt, utcnow
from app.models.reference import _in
from app.programs.base import get_program

LOAN_STATUSES = ("active", "repaid", "renewed", "claimed", "compensated", "written_off")
SECURITY_TYPES = ("credit", "guaranteed", "collateral", "ip_pledge")


class Loan(CreatedAt, Base):
    __tablename__ = "loans"
    __table_args__ = (
        UniqueConstraint("bank_code", "contract_no"),
        CheckConstraint(_in("status", LOAN_STATUSES), name="status"),
        CheckConstraint(_in("security", SECURITY_TYPES), name="security"),
        CheckConstraint("principal_fen > 0", name="principal_positive"),
        CheckConstraint("maturity_on > disbursed_on", name="term"),
        Index("ix_loans_bank_program_disbursed", "bank_code", "program", "disbursed_on"),
        # the loans an NPL figure as of a date looks at: still owing, or settled after it
        Index(
            "ix_loans_unsettled_maturity",
            "bank_code",
            "program",
            "maturity_on",
            postgresql_where=text("settled_on IS NULL"),
            sqlite_where=text("settled_on IS NULL"),
        ),
        Index("ix_loans_bank_program_settled", "bank_code", "program", "settled_on"),
    )

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    program: Mapped[str] = mapped_column(String(8), ForeignKey("programs.code"))
    product: Mapped[str | None] = mapped_column(String(16))
    bank_code: Mapped[str] = mapped_column(ForeignKey("banks.code"))
    agreement_id: Mapped[int] = mapped_column(ForeignKey("agreements.id"), index=True)
    enterprise_id: Mapped[int] = mapped_column(ForeignKey("enterprises.id"), index=True)
    contract_no: Mapped[str] = mapped_column(String(64))
    principal_fen: Mapped[int] = mapped_column(BigInteger)
    annual_rate_bp: Mapped[int]
    fee_rate_bp: Mapped[int] = mapped_column(default=0)
    disbursed_on: Mapped[date]
    maturity_on: Mapped[date]
    security: Mapped[str] = mapped_column(String(16))
    guarantor: Mapped[str | None] = mapped_column(String(200))
    # XB-F2: the guarantor's consent letter (同意担保确认函) of a guaranteed XB loan, its
    # reference and date (migration 0015); null on every other loan
    guarantor_consent_ref: Mapped[str | None] = mapped_column(String(64))
    guarantor_consent_on: Mapped[date | None]
    controller_guarantee: Mapped[bool]
    other_fiscal_support: Mapped[bool] = mapped_column(default=False)
    status: Mapped[str] = mapped_column(String(16), default="active")
    filed_on: Mapped[date]
    filing_deadline: Mapped[date]
    # a provisional calendar day went into the deadline (SPEC M-3); recomputed when the
    # year is published
    filing_deadline_provisional: Mapped[bool] = mapped_column(default=False, server_default="0")
    filed_late: Mapped[bool] = mapped_column(default=False)
    compensable: Mapped[bool] = mapped_column(default=True)
    flags: Mapped[list[str]] = mapped_column(JSON, default=list)
    renewed_from_id: Mapped[int | None] = mapped_column(ForeignKey("loans.id"), index=True)
    filed_by_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    # SKD: the city fund that pays claims; XB: the sub-fund whose ratios apply (migration
    # 0017; `extra` still carries it as city_fund / sub_fund). Fixed once filed: the day
    # totals are kept per fund.
    fund_code: Mapped[str | None] = mapped_column(ForeignKey("funds.code"), index=True)
    extra: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    closed_at: Mapped[datetime | None]
    # the business date its principal was repaid in full; kept by the database (a
    # trigger on loan_repayments, migration 0012), never written by the service
    settled_on: Mapped[date | None]

    @property
    def guarantor_consent(self) -> dict[str, Any] | None:
        """XB-F2: the consent letter as filed (guarantor, reference, date), or None."""
        if self.guarantor_consent_ref is None or self.guarantor_consent_on is None:
            return None
        return {
            "guarantor": self.guarantor,
            "reference": self.guarantor_consent_ref,
            "dated_on": self.guarantor_consent_on,
        }

    @property
    def filing_deadline_applies(self) -> bool:
        """Whether filing after `filing_deadline` makes this loan late (SKD-F2, XB-F2: not
        for a guaranteed XB loan, whose control is the guarantor's consent letter)."""
        return get_program(self.program).policy.filing_deadline_applies(self.security)


class LoanEvent(Base):
    """A loan's history besides its repayments: stored facts changed after filing, e.g. a
    filing deadline recomputed when its calendar year was published (SPEC M-3)."""

    __tablename__ = "loan_events"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    loan_id: Mapped[int] = mapped_column(ForeignKey("loans.id"), index=True)
    action: Mapped[str] = mapped_column(String(32))
    comment: Mapped[str] = mapped_column(Text, default="")
    details: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), index=True)
    business_date: Mapped[date]
    at: Mapped[datetime] = mapped_column(default=utcnow)


class LoanTransition(Base):
    """One row per loan status change (`app.loans.status.set_status`, checked against
    LOAN_TRANSITIONS): action, from → to, actor, business date, time, reason. Append-only
    (database triggers, migration 0017)."""

    __tablename__ = "loan_transitions"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    loan_id: Mapped[int] = mapped_column(ForeignKey("loans.id"), index=True)
    action: Mapped[str] = mapped_column(String(32))
    from_status: Mapped[str] = mapped_column(String(16))
    to_status: Mapped[str] = mapped_column(String(16))
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), index=True)
    reason: Mapped[str] = mapped_column(Text, default="")
    business_date: Mapped[date]  # the day the change takes effect
    at: Mapped[datetime] = mapped_column(default=utcnow)
