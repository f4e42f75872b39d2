"""Enterprises (企业) identified by their 统一社会信用代码, with the facts the rules read."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import BigInteger, CheckConstraint, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.models.base import Base, BigIntPK, CreatedAt, utcnow
from app.models.person import Person
from app.models.reference import _in

TAX_RATINGS = ("A", "B", "M", "C", "D")
ENV_RATINGS = ("green", "blue", "yellow", "red", "black")


class Enterprise(CreatedAt, Base):
    __tablename__ = "enterprises"
    __table_args__ = (
        CheckConstraint(
            f"tax_credit_rating IS NULL OR {_in('tax_credit_rating', TAX_RATINGS)}",
            name="tax_credit_rating",
        ),
        CheckConstraint(
            f"env_credit_rating IS NULL OR {_in('env_credit_rating', ENV_RATINGS)}",
            name="env_credit_rating",
        ),
        CheckConstraint("rd_staff_share_bp BETWEEN 0 AND 10000", name="rd_staff_share"),
        CheckConstraint("rd_spend_share_bp BETWEEN 0 AND 10000", name="rd_spend_share"),
        CheckConstraint("prior_year_revenue_fen >= 0", name="revenue_non_negative"),
    )

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    credit_code: Mapped[str] = mapped_column(String(18), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    region_code: Mapped[str] = mapped_column(ForeignKey("regions.code"), index=True)
    independent_legal_person: Mapped[bool] = mapped_column(default=True)
    registered_on: Mapped[date]
    prior_year_revenue_fen: Mapped[int] = mapped_column(BigInteger)
    employees: Mapped[int]
    rd_staff_share_bp: Mapped[int] = mapped_column(default=0)
    rd_spend_share_bp: Mapped[int] = mapped_column(default=0)
    ip_count: Mapped[int] = mapped_column(default=0)
    dishonest_debtor: Mapped[bool] = mapped_column(default=False)
    controller_dishonest_debtor: Mapped[bool] = mapped_column(default=False)
    overdue_loans_elsewhere: Mapped[bool] = mapped_column(default=False)
    controller_overdue_loans: Mapped[bool] = mapped_column(default=False)
    tax_credit_rating: Mapped[str | None] = mapped_column(String(1))
    env_credit_rating: Mapped[str | None] = mapped_column(String(8))
    malicious_default_blacklist: Mapped[bool] = mapped_column(default=False)
    last_malicious_overdue_on: Mapped[date | None]  # XB-E1: none in the prior 2 years
    # the actual controller (实际控制人, migration 0019): SKD-F4 and XB-N2 look at every
    # enterprise with the same controller
    controller_id: Mapped[int | None] = mapped_column(ForeignKey("persons.id"), index=True)
    controller: Mapped[Person | None] = relationship(lazy="select")
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
