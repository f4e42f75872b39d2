"""Reference data (SPEC §2): programmes, regions, banks, funds and their contributors, LPR."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    CheckConstraint,
    ForeignKey,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import Base, BigIntPK, CreatedAt, utcnow

REGION_LEVELS = ("province", "city", "county", "functional_zone")
BANK_UNIT_LEVELS = ("head_office", "provincial_branch")
FUND_KINDS = ("province", "city", "pool", "sub_fund")
FUND_STATUSES = ("active", "stopped")


def _in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


class ProgramRecord(CreatedAt, Base):
    """A programme code every `program` column references (migration 0017). The rules
    live in the registry (`app.programs.base`); this row only makes the code known to
    the database: SKD and XB come with the migration, a programme registered later gets
    its row from `app.reference.programs.ensure_program_rows` (or its data migration)."""

    __tablename__ = "programs"

    code: Mapped[str] = mapped_column(String(8), primary_key=True)
    name_zh: Mapped[str] = mapped_column(String(100))
    name_en: Mapped[str] = mapped_column(String(100))


class Region(CreatedAt, Base):
    """GB/T 2260 administrative divisions plus functional zones (功能区)."""

    __tablename__ = "regions"
    __table_args__ = (CheckConstraint(_in("level", REGION_LEVELS), name="level"),)

    code: Mapped[str] = mapped_column(String(16), primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    name_en: Mapped[str | None] = mapped_column(String(100))
    level: Mapped[str] = mapped_column(String(20))
    parent_code: Mapped[str | None] = mapped_column(ForeignKey("regions.code"), index=True)


class Bank(CreatedAt, Base):
    """A cooperation unit (合作银行) at head-office or provincial-branch level."""

    __tablename__ = "banks"
    __table_args__ = (CheckConstraint(_in("unit_level", BANK_UNIT_LEVELS), name="unit_level"),)

    code: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    name_en: Mapped[str | None] = mapped_column(String(100))
    unit_level: Mapped[str] = mapped_column(String(20))


class Fund(CreatedAt, Base):
    """SKD province fund, SKD city/county funds, the XB pool and its sub-funds ("1+N")."""

    __tablename__ = "funds"
    __table_args__ = (
        CheckConstraint(_in("kind", FUND_KINDS), name="kind"),
        CheckConstraint(_in("status", FUND_STATUSES), name="status"),
    )

    code: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    name_en: Mapped[str | None] = mapped_column(String(100))
    program: Mapped[str] = mapped_column(String(8), ForeignKey("programs.code"))
    kind: Mapped[str] = mapped_column(String(16))
    region_code: Mapped[str | None] = mapped_column(ForeignKey("regions.code"), index=True)
    parent_code: Mapped[str | None] = mapped_column(ForeignKey("funds.code"), index=True)
    status: Mapped[str] = mapped_column(String(16), default="active")
    params: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class FundContributor(CreatedAt, Base):
    """A contributor's committed capital (XB-F0); paid-in capital lives in the ledger."""

    __tablename__ = "fund_contributors"
    __table_args__ = (
        UniqueConstraint("fund_code", "code"),
        CheckConstraint("committed_fen >= 0", name="committed_non_negative"),
    )

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    fund_code: Mapped[str] = mapped_column(ForeignKey("funds.code"), index=True)
    code: Mapped[str] = mapped_column(String(32))
    name: Mapped[str] = mapped_column(String(100))
    region_code: Mapped[str | None] = mapped_column(ForeignKey("regions.code"), index=True)
    committed_fen: Mapped[int] = mapped_column(BigInteger)


class LprRate(CreatedAt, Base):
    """1-year Loan Prime Rate in force from `effective_on` until the next row (SPEC M-4)."""

    __tablename__ = "lpr_rates"
    __table_args__ = (CheckConstraint("rate_bp > 0 AND rate_bp < 10000", name="rate_range"),)

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    effective_on: Mapped[date] = mapped_column(unique=True)
    rate_bp: Mapped[int]


class FundEvent(Base):
    """One row per fund status change (XB-Q2 stop, committee resume): who, when, why."""

    __tablename__ = "fund_events"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    fund_code: Mapped[str] = mapped_column(ForeignKey("funds.code"), index=True)
    action: Mapped[str] = mapped_column(String(20))
    from_status: Mapped[str] = mapped_column(String(16))
    to_status: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str] = mapped_column(Text)
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), index=True)
    at: Mapped[datetime] = mapped_column(default=utcnow)
