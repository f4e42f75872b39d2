"""Per bank, programme, fund, product, security and day: what was disbursed and repaid
(汇总台账).

The caps and exposure figures (SKD-Q1, Q2, Q3, XB-Q1) sum these day rows instead of every
loan a bank ever filed. The database keeps them: triggers on `loans` and
`loan_repayments` (migrations 0012, 0017, 0025) add each new row in the same
transaction, whichever path wrote it (a filing, a batch, COPY), and the loan columns they
depend on cannot be changed. The fund is the loan's `fund_code` (SKD the city fund, XB the
sub-fund; "" for a loan without one): figures per bank sum over it, XB-Q1's basis per
sub-fund reads it. The security is the loan's (`loans.security`: credit, guaranteed, …):
XB's quarterly report groups its book by sub-fund and security; every other figure sums
over it. `tests/test_day_totals.py` checks them against the loans they sum."""

from __future__ import annotations

from datetime import date

from sqlalchemy import BigInteger, String
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import Base


class LoanDayTotal(Base):
    __tablename__ = "loan_day_totals"

    program: Mapped[str] = mapped_column(String(8), primary_key=True)
    bank_code: Mapped[str] = mapped_column(String(32), primary_key=True)
    fund_code: Mapped[str] = mapped_column(String(32), primary_key=True)  # "" when none
    product: Mapped[str] = mapped_column(String(16), primary_key=True)  # "" when none (XB)
    security: Mapped[str] = mapped_column(String(16), primary_key=True)  # loans.security
    day: Mapped[date] = mapped_column(primary_key=True)
    loans: Mapped[int] = mapped_column(default=0)  # loans disbursed that day
    disbursed_fen: Mapped[int] = mapped_column(BigInteger, default=0)
    # Σ principal × contractual days (maturity − disbursement) of those loans
    disbursed_days_fen: Mapped[int] = mapped_column(BigInteger, default=0)
    repaid_fen: Mapped[int] = mapped_column(BigInteger, default=0)  # repayments paid that day
