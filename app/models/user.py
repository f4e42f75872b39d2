"""Users, their role and data scope (API.md Auth)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import CheckConstraint, ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import Base, BigIntPK, CreatedAt
from app.models.reference import _in

ROLES = (
    "admin",
    "bank",
    "city_reviewer",
    "province_reviewer",
    "fund_manager",
    "committee",
    "regulator",
)


class User(CreatedAt, Base):
    __tablename__ = "users"
    __table_args__ = (
        CheckConstraint(_in("role", ROLES), name="role"),
        CheckConstraint("role <> 'bank' OR bank_code IS NOT NULL", name="bank_scope"),
        CheckConstraint("role <> 'city_reviewer' OR region_code IS NOT NULL", name="region_scope"),
        CheckConstraint("role <> 'fund_manager' OR fund_code IS NOT NULL", name="fund_scope"),
    )

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    role: Mapped[str] = mapped_column(String(20))
    bank_code: Mapped[str | None] = mapped_column(ForeignKey("banks.code"), index=True)
    region_code: Mapped[str | None] = mapped_column(ForeignKey("regions.code"), index=True)
    fund_code: Mapped[str | None] = mapped_column(ForeignKey("funds.code"), index=True)
    is_active: Mapped[bool] = mapped_column(default=True)


class RevokedToken(Base):
    """A bearer token revoked before its expiry (`POST /auth/logout`): its `jti` is
    refused on every request until `expires_at`, after which the token is dead anyway."""

    __tablename__ = "revoked_tokens"

    jti: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    revoked_at: Mapped[datetime]
    expires_at: Mapped[datetime] = mapped_column(index=True)


class LoginFailure(Base):
    """One failed log-in, by username and client address: recent ones throttle further
    attempts (429) for the username and for the address."""

    __tablename__ = "login_failures"
    __table_args__ = (
        Index("ix_login_failures_username_at", "username", "failed_at"),
        Index("ix_login_failures_address_at", "address", "failed_at"),
    )

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    username: Mapped[str] = mapped_column(String(64))
    address: Mapped[str] = mapped_column(String(64))
    failed_at: Mapped[datetime]
