"""The double-entry journal (SPEC §5): accounts per fund book, entries and their legs.

Legs carry signed integer fen: debit positive, credit negative. Every entry's legs sum
to zero in each fund's book (L-1). Entries and legs are append-only (L-2). An entry's id
is its place in one gapless sequence, assigned under the chain head's lock; each entry
stores its content hash and its predecessor's.

An entry's legs are written before the entry itself (their foreign key is checked at
commit), so the database checks a whole entry the moment the entry row arrives."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import Base, BigIntPK, CreatedAt, utcnow
from app.models.reference import _in

ACCOUNT_TYPES = ("asset", "liability", "equity", "income", "expense", "memo")


class LedgerAccount(CreatedAt, Base):
    __tablename__ = "ledger_accounts"
    __table_args__ = (
        CheckConstraint(_in("type", ACCOUNT_TYPES), name="type"),
        CheckConstraint(_in("normal_side", ("debit", "credit")), name="normal_side"),
        # target of the legs' (account, book) foreign key: a leg's book is its account's
        UniqueConstraint("id", "fund_code", name="uq_ledger_accounts_id_fund_code"),
    )

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    code: Mapped[str] = mapped_column(String(120), unique=True)
    fund_code: Mapped[str] = mapped_column(ForeignKey("funds.code"), index=True)
    kind: Mapped[str] = mapped_column(String(40))
    counterparty: Mapped[str | None] = mapped_column(String(40))
    type: Mapped[str] = mapped_column(String(10))
    normal_side: Mapped[str] = mapped_column(String(6))
    name: Mapped[str] = mapped_column(String(200))


class LedgerEntry(Base):
    __tablename__ = "ledger_entries"
    __table_args__ = (
        Index("ix_ledger_entries_event", "event_type", "event_id"),
        CheckConstraint("id > 0", name="id_positive"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    event_type: Mapped[str] = mapped_column(String(40))
    event_id: Mapped[str] = mapped_column(String(64))
    idempotency_key: Mapped[str] = mapped_column(String(200), unique=True)
    business_date: Mapped[date] = mapped_column(index=True)
    recorded_at: Mapped[datetime] = mapped_column(default=utcnow)
    description: Mapped[str] = mapped_column(Text, default="")
    reverses_entry_id: Mapped[int | None] = mapped_column(
        ForeignKey("ledger_entries.id"), unique=True
    )
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))


class LedgerLeg(Base):
    """One leg of an entry. Keyed by (entry, position): no sequence. Its book
    (`fund_code`) must be its account's book — one composite foreign key. A leg of a
    guarantee exposure names its loan (`loan_id`), so one entry can carry a batch's loans,
    a balanced leg pair each; other legs name none (and neither do the exposure legs
    posted before migration 0027: their entry's `event_id` is the loan)."""

    __tablename__ = "ledger_legs"
    __table_args__ = (
        CheckConstraint("amount_fen <> 0", name="non_zero"),
        ForeignKeyConstraint(
            ["account_id", "fund_code"],
            ["ledger_accounts.id", "ledger_accounts.fund_code"],
            name="fk_ledger_legs_account_book",
        ),
        Index("ix_ledger_legs_account_entry", "account_id", "entry_id"),
        Index(
            "ix_ledger_legs_loan",
            "loan_id",
            postgresql_where=text("loan_id IS NOT NULL"),
            sqlite_where=text("loan_id IS NOT NULL"),
        ),
    )

    entry_id: Mapped[int] = mapped_column(
        ForeignKey("ledger_entries.id", deferrable=True, initially="DEFERRED"), primary_key=True
    )
    position: Mapped[int] = mapped_column(Integer, primary_key=True)
    account_id: Mapped[int] = mapped_column(BigInteger)
    fund_code: Mapped[str] = mapped_column(String(32))
    amount_fen: Mapped[int] = mapped_column(BigInteger)
    loan_id: Mapped[int | None] = mapped_column(ForeignKey("loans.id"))


class LedgerChainHead(Base):
    """One row: the last sequence number and hash. Posting locks it, so the chain is a
    single gapless line even with many parallel writers."""

    __tablename__ = "ledger_chain_head"
    __table_args__ = (CheckConstraint("id = 1", name="single_row"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    last_seq: Mapped[int] = mapped_column(BigInteger, default=0)
    last_hash: Mapped[str] = mapped_column(String(64))
