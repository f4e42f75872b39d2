"""Compensation claims (代偿申请), their status history, documents and recoveries."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    CheckConstraint,
    ForeignKey,
    Index,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import Base, BigIntPK, CreatedAt, utcnow
from app.models.reference import _in

CLAIM_STATUSES = (
    "submitted",  # bank applied; SKD: waiting for the city review; XB: for the manager
    "city_approved",  # SKD: waiting for the province review (复审)
    "manager_reviewed",  # XB: due-diligence opinion given; waiting for the committee
    "approved",  # approved (possibly capped); waiting for the payment
    "paid",  # SKD: the city fund paid; waiting for the province. XB: paid
    "reimbursed",  # the province fund reimbursed the city fund: settled
    "rejected",  # rejected at a review, with a reason
    "closed",  # approved with nothing payable (cap exhausted)
    "returned",  # returned for correction (退回补正): with the bank until it resubmits
)
SHARE_KINDS = ("requested", "approved")


class Claim(CreatedAt, Base):
    __tablename__ = "claims"
    __table_args__ = (
        CheckConstraint(_in("status", CLAIM_STATUSES), name="status"),
        CheckConstraint("loss_fen > 0", name="loss_positive"),
        CheckConstraint("requested_fen >= 0 AND requested_fen <= loss_fen", name="requested"),
        CheckConstraint(
            "approved_fen IS NULL OR (approved_fen >= 0 AND approved_fen <= requested_fen)",
            name="approved",
        ),
        CheckConstraint("returned_fen >= 0", name="returned"),
        # one live claim per loan: a rejected claim may be followed by a new one
        Index(
            "uq_claims_live_loan",
            "loan_id",
            unique=True,
            sqlite_where=text("status <> 'rejected'"),
            postgresql_where=text("status <> 'rejected'"),
        ),
        Index("ix_claims_bank_program_status", "bank_code", "program", "status"),
    )

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    program: Mapped[str] = mapped_column(String(8), ForeignKey("programs.code"))
    loan_id: Mapped[int] = mapped_column(ForeignKey("loans.id"), index=True)
    bank_code: Mapped[str] = mapped_column(ForeignKey("banks.code"))
    product: Mapped[str | None] = mapped_column(String(16))
    city_fund_code: Mapped[str | None] = mapped_column(ForeignKey("funds.code"), index=True)
    # the fund whose rules the claim counts under: SKD the city fund, XB the loan's
    # sub-fund (XB-Q1 counts each sub-fund's compensation against its own limit)
    fund_code: Mapped[str | None] = mapped_column(ForeignKey("funds.code"), index=True)
    region_code: Mapped[str] = mapped_column(ForeignKey("regions.code"), index=True)
    status: Mapped[str] = mapped_column(String(16), default="submitted")
    filed_on: Mapped[date]
    days_past_due: Mapped[int]
    loss_fen: Mapped[int] = mapped_column(BigInteger)
    requested_fen: Mapped[int] = mapped_column(BigInteger)  # the funds' share of the loss
    shares: Mapped[dict[str, int]] = mapped_column(JSON)  # requested split, party → fen
    approved_fen: Mapped[int | None] = mapped_column(BigInteger)
    approved_shares: Mapped[dict[str, int] | None] = mapped_column(JSON)
    approved_on: Mapped[date | None]
    capped_by: Mapped[str | None] = mapped_column(String(16))
    cap_detail: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    paid_on: Mapped[date | None]
    reimbursed_on: Mapped[date | None]
    returned_fen: Mapped[int] = mapped_column(BigInteger, default=0)
    lawsuit_case_no: Mapped[str | None] = mapped_column(String(64))
    lawsuit_accepted_on: Mapped[date | None]
    deadlines: Mapped[dict[str, str]] = mapped_column(JSON, default=dict)
    # the deadlines above that rest on a provisional calendar day (SPEC M-3)
    provisional_deadlines: Mapped[list[str]] = mapped_column(
        JSON, default=list, server_default="[]"
    )
    rejection_reason: Mapped[str | None] = mapped_column(Text)
    findings: Mapped[list[str]] = mapped_column(  # XB-N1…N9
        JSON, default=list, server_default="[]"
    )
    opinion: Mapped[str | None] = mapped_column(Text)  # XB: 贷款尽职审查意见
    filed_by_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class ClaimShare(Base):
    """One party's share of a claim (SKD-S1, XB-S1): the split requested at filing and the
    one approved, party → fen, as rows (migration 0017; `claims.shares` and
    `claims.approved_shares` hold the same splits as JSON). A record, never rewritten."""

    __tablename__ = "claim_shares"
    __table_args__ = (
        UniqueConstraint("claim_id", "kind", "party"),
        CheckConstraint(_in("kind", SHARE_KINDS), name="kind"),
    )

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    claim_id: Mapped[int] = mapped_column(ForeignKey("claims.id"))
    kind: Mapped[str] = mapped_column(String(16))  # requested / approved
    party: Mapped[str] = mapped_column(String(16))  # e.g. province, city, fund, bank
    fen: Mapped[int] = mapped_column(BigInteger)


class ClaimTransition(Base):
    """One row per status change (SKD-C1): action, from → to, actor, time, comment."""

    __tablename__ = "claim_transitions"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    claim_id: Mapped[int] = mapped_column(ForeignKey("claims.id"), index=True)
    action: Mapped[str] = mapped_column(String(32))
    from_status: Mapped[str | None] = mapped_column(String(16))
    to_status: Mapped[str] = mapped_column(String(16))
    actor_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    actor_role: Mapped[str] = mapped_column(String(20))
    comment: Mapped[str] = mapped_column(Text, default="")
    business_date: Mapped[date]
    at: Mapped[datetime] = mapped_column(default=utcnow)
    ledger_entry_ids: Mapped[list[int]] = mapped_column(JSON, default=list)


class ClaimReturn(CreatedAt, Base):
    """A return for correction (退回补正, SKD-C1, XB-C2): the review stage that returned the
    claim and the status it goes back to, every deficiency listed at once, and the stage's
    deadline paused while the claim is with the bank. A record, never rewritten: the
    bank's resubmission is the claim's next `resubmit_<stage>` history row."""

    __tablename__ = "claim_returns"
    __table_args__ = (
        CheckConstraint(
            "working_days_left IS NULL OR working_days_left >= 0", name="working_days_left"
        ),
    )

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    claim_id: Mapped[int] = mapped_column(ForeignKey("claims.id"), index=True)
    transition_id: Mapped[int] = mapped_column(ForeignKey("claim_transitions.id"), unique=True)
    stage: Mapped[str] = mapped_column(String(32))  # e.g. city_review
    from_status: Mapped[str] = mapped_column(String(16))  # where the resubmission goes
    deficiencies: Mapped[list[dict[str, Any]]] = mapped_column(JSON)  # [{code, detail}]
    comment: Mapped[str] = mapped_column(Text, default="")
    returned_on: Mapped[date]
    returned_by_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    # the stage's stored deadline paused by the return (XB-C2 manager_opinion), as it was,
    # and the working days it had left after the return date
    paused_deadline: Mapped[str | None] = mapped_column(String(32))
    deadline_was: Mapped[date | None]
    working_days_left: Mapped[int | None]


class ClaimDocument(Base):
    """An uploaded file (SKD-C1: electronic files stored with their SHA-256)."""

    __tablename__ = "claim_documents"
    __table_args__ = (CheckConstraint("size_bytes > 0", name="size_positive"),)

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    claim_id: Mapped[int] = mapped_column(ForeignKey("claims.id"), index=True)
    kind: Mapped[str] = mapped_column(String(32))
    filename: Mapped[str] = mapped_column(String(200))
    content_type: Mapped[str] = mapped_column(String(100))
    size_bytes: Mapped[int] = mapped_column(BigInteger)
    sha256: Mapped[str] = mapped_column(String(64), index=True)
    content: Mapped[bytes] = mapped_column(LargeBinary)
    uploaded_by_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    uploaded_at: Mapped[datetime] = mapped_column(default=utcnow)


class ClaimRecovery(CreatedAt, Base):
    """Money recovered after compensation and what went back to the funds (SKD-R1)."""

    __tablename__ = "claim_recoveries"
    __table_args__ = (
        CheckConstraint("amount_fen > 0", name="amount_positive"),
        CheckConstraint("costs_fen >= 0 AND costs_fen <= amount_fen", name="costs"),
        CheckConstraint("returned_fen >= 0", name="returned"),
    )

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    claim_id: Mapped[int] = mapped_column(ForeignKey("claims.id"), index=True)
    recovered_on: Mapped[date]
    amount_fen: Mapped[int] = mapped_column(BigInteger)
    costs_fen: Mapped[int] = mapped_column(BigInteger)
    returned_fen: Mapped[int] = mapped_column(BigInteger)
    returned_shares: Mapped[dict[str, int]] = mapped_column(JSON)
    due_on: Mapped[date | None]  # XB-R1: distributed within 10 working days
    # a provisional calendar day went into due_on (SPEC M-3); both are the only columns
    # that may change, when the year is published
    due_on_provisional: Mapped[bool] = mapped_column(default=False, server_default="0")
    recorded_by_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    ledger_entry_ids: Mapped[list[int]] = mapped_column(JSON, default=list)


class ClaimClawback(CreatedAt, Base):
    """XB-R2: compensation the bank must refund — for collection abandoned without good
    reason (that claim's compensation) or fraud / NPL substitution (all of it)."""

    __tablename__ = "claim_clawbacks"
    __table_args__ = (
        CheckConstraint("kind IN ('abandonment', 'fraud')", name="kind"),
        CheckConstraint("amount_fen >= 0", name="amount"),
    )

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    claim_id: Mapped[int] = mapped_column(ForeignKey("claims.id"), index=True)
    kind: Mapped[str] = mapped_column(String(16))
    amount_fen: Mapped[int] = mapped_column(BigInteger)
    decided_on: Mapped[date]
    reason: Mapped[str] = mapped_column(Text)
    actor_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    ledger_entry_ids: Mapped[list[int]] = mapped_column(JSON, default=list)


class ClaimReceipt(CreatedAt, Base):
    """Money the fund received from the bank against what it owes on a claim (XB-R1
    distributions, XB-R2 refunds): the receivable is settled by these."""

    __tablename__ = "claim_receipts"
    __table_args__ = (CheckConstraint("amount_fen > 0", name="amount_positive"),)

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    claim_id: Mapped[int] = mapped_column(ForeignKey("claims.id"), index=True)
    received_on: Mapped[date]
    amount_fen: Mapped[int] = mapped_column(BigInteger)
    actor_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    ledger_entry_ids: Mapped[list[int]] = mapped_column(JSON, default=list)
