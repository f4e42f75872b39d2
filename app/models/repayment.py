"""Principal repayments reported by the bank (servicing)."""

from __future__ import annotations

from datetime import date

from sqlalchemy import BigInteger, CheckConstraint, ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import Base, BigIntPK, CreatedAt


class LoanRepayment(CreatedAt, Base):
    __tablename__ = "loan_repayments"
    __table_args__ = (
        CheckConstraint("principal_fen > 0", name="principal_positive"),
        CheckConstraint("kind IN ('cash', 'renewal')", name="kind"),
        # PostgreSQL: with what the sums by loan and date read (migration 0024)
        Index(
            "ix_loan_repayments_loan_paid",
            "loan_id",
            "paid_on",
            postgresql_include=["principal_fen", "created_at"],
        ),
    )

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    loan_id: Mapped[int] = mapped_column(ForeignKey("loans.id"))
    paid_on: Mapped[date]
    principal_fen: Mapped[int] = mapped_column(BigInteger)
    recorded_by_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    # "cash": money repaid; "renewal": closed by a renewal loan (SKD-F7)
    kind: Mapped[str] = mapped_column(String(16), default="cash", server_default="cash")
