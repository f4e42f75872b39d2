"""A loan's repayment schedule, its interest payments and the arrears its bank reports
(SPEC M-6), and the banks' monthly loan-level status files (XB-Rep). All append-only:
the schedule is part of the filed terms (a renewal files a new loan with a new one), and
every bank report is kept, never overwritten."""

from __future__ import annotations

from datetime import date
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

from app.models.base import Base, BigIntPK, CreatedAt


class LoanInstalment(Base):
    """One instalment of a loan's schedule: due date, principal and interest due. A loan
    filed without a schedule has one: its whole principal at maturity, no interest."""

    __tablename__ = "loan_instalments"
    __table_args__ = (
        UniqueConstraint("loan_id", "seq"),
        CheckConstraint("principal_fen >= 0 AND interest_fen >= 0", name="amounts"),
        CheckConstraint("principal_fen + interest_fen > 0", name="something_due"),
        Index("ix_loan_instalments_loan_due", "loan_id", "due_on"),
    )

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    loan_id: Mapped[int] = mapped_column(ForeignKey("loans.id"))
    seq: Mapped[int]
    due_on: Mapped[date]
    principal_fen: Mapped[int] = mapped_column(BigInteger)
    interest_fen: Mapped[int] = mapped_column(BigInteger)


class LoanLateInstalment(Base):
    """An instalment not paid in full by its due date (SPEC M-6): the dates its principal
    and its interest were paid in full — with every earlier instalment's, as payments
    settle the earliest instalments first — or NULL while they are not (the due date
    itself where nothing of that kind is due). Instalments paid on time have no row; a
    loan without instalment rows is its bullet instalment at maturity (seq 0). Kept by
    the database (migration 0024): triggers on `loans`, `loan_instalments`,
    `loan_repayments` and `loan_interest_payments` recompute a loan's rows whenever one
    of them is written. `app.loans.arrears.late_loans` reads it."""

    __tablename__ = "loan_late_instalments"
    __table_args__ = (
        Index(
            "ix_loan_late_instalments_due",
            "due_on",
            "loan_id",
            "principal_paid_on",
            "interest_paid_on",
        ),
    )

    loan_id: Mapped[int] = mapped_column(ForeignKey("loans.id"), primary_key=True)
    seq: Mapped[int] = mapped_column(primary_key=True)
    due_on: Mapped[date]
    principal_paid_on: Mapped[date | None]
    interest_paid_on: Mapped[date | None]


class LoanInterestPayment(CreatedAt, Base):
    """Interest the bank reports paid (principal goes to loan_repayments)."""

    __tablename__ = "loan_interest_payments"
    __table_args__ = (
        CheckConstraint("interest_fen > 0", name="interest_positive"),
        Index("ix_loan_interest_payments_loan_paid", "loan_id", "paid_on"),
    )

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    loan_id: Mapped[int] = mapped_column(ForeignKey("loans.id"))
    paid_on: Mapped[date]
    interest_fen: Mapped[int] = mapped_column(BigInteger)
    recorded_by_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)


class DelinquencyReport(CreatedAt, Base):
    """The loan's arrears as the bank's core system reports them on a date: overdue since
    (the first day in arrears; null when current), principal and interest overdue, and
    the outstanding principal where the report gives it. Sent one by one
    (`POST /loans/{id}/delinquency`) or as a row of a monthly status file."""

    __tablename__ = "loan_delinquency_reports"
    __table_args__ = (
        CheckConstraint("principal_overdue_fen >= 0 AND interest_overdue_fen >= 0", name="amounts"),
        CheckConstraint("source IN ('bank', 'status_file')", name="source"),
        Index("ix_loan_delinquency_reports_loan_as_of", "loan_id", "as_of"),
    )

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    loan_id: Mapped[int] = mapped_column(ForeignKey("loans.id"))
    as_of: Mapped[date]
    overdue_since: Mapped[date | None]
    principal_overdue_fen: Mapped[int] = mapped_column(BigInteger)
    interest_overdue_fen: Mapped[int] = mapped_column(BigInteger)
    outstanding_fen: Mapped[int | None] = mapped_column(BigInteger)
    source: Mapped[str] = mapped_column(String(16))
    status_report_id: Mapped[int | None] = mapped_column(
        ForeignKey("status_reports.id"), index=True
    )
    comment: Mapped[str] = mapped_column(Text, default="")
    reported_by_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)


class StatusReport(CreatedAt, Base):
    """One submission of a bank's monthly loan-level status file (XB-Rep): its content's
    SHA-256 (a resubmission of the same content is the same submission), whether it came
    after the due date, and the reconciliation's counts. A corrected file is a new
    version; every version is kept."""

    __tablename__ = "status_reports"
    __table_args__ = (
        UniqueConstraint("bank_code", "year", "month", "version"),
        CheckConstraint("month BETWEEN 1 AND 12", name="month"),
    )

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    bank_code: Mapped[str] = mapped_column(ForeignKey("banks.code"), index=True)
    year: Mapped[int]
    month: Mapped[int]
    version: Mapped[int]
    content_sha256: Mapped[str] = mapped_column(String(64))
    media_type: Mapped[str] = mapped_column(String(32))
    due_on: Mapped[date]
    submitted_on: Mapped[date]
    late: Mapped[bool]
    row_count: Mapped[int]
    difference_count: Mapped[int]
    summary: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    submitted_by_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)


class StatusReportRow(Base):
    """A row of a status file as the bank sent it (amounts in fen), with the loan it
    names where the contract number is known."""

    __tablename__ = "status_report_rows"
    __table_args__ = (UniqueConstraint("report_id", "row_no"),)

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    report_id: Mapped[int] = mapped_column(ForeignKey("status_reports.id"))
    row_no: Mapped[int]
    contract_no: Mapped[str] = mapped_column(String(64))
    loan_id: Mapped[int | None] = mapped_column(ForeignKey("loans.id"), index=True)
    outstanding_fen: Mapped[int] = mapped_column(BigInteger)
    overdue_since: Mapped[date | None]
    principal_overdue_fen: Mapped[int] = mapped_column(BigInteger)
    interest_overdue_fen: Mapped[int] = mapped_column(BigInteger)
    status: Mapped[str] = mapped_column(String(16))


class StatusReportDifference(Base):
    """One difference the reconciliation found between a status file and the service's
    books: an unknown contract, an outstanding, overdue or status mismatch, or a loan of
    the bank's book missing from the file."""

    __tablename__ = "status_report_differences"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    report_id: Mapped[int] = mapped_column(ForeignKey("status_reports.id"), index=True)
    kind: Mapped[str] = mapped_column(String(32))
    row_no: Mapped[int | None]
    contract_no: Mapped[str] = mapped_column(String(64))
    loan_id: Mapped[int | None] = mapped_column(ForeignKey("loans.id"), index=True)
    field: Mapped[str | None] = mapped_column(String(32))
    ours: Mapped[str | None] = mapped_column(String(64))
    theirs: Mapped[str | None] = mapped_column(String(64))
