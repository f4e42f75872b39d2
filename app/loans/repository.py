from __future__ import annotations

from sqlalchemy import Select, select

from app.auth.principal import Principal
from app.models import Enterprise, Loan


def scoped_loans(principal: Principal) -> Select[Loan]:
    """Loans the caller may see: a bank its own; a city reviewer its region's enterprises."""
    stmt = select(Loan)
    if principal.is_bank:
        stmt = stmt.where(Loan.bank_code == principal.bank_code)
    elif principal.role == "city_reviewer":
        stmt = stmt.join(Enterprise, Enterprise.id == Loan.enterprise_id).where(
            Enterprise.region_code == principal.region_code
        )
    return stmt


def filter_loans(
    stmt: Select[Loan], *, program: str | None, bank_code: str | None, status: str | None
) -> Select[Loan]:
    if program:
        stmt = stmt.where(Loan.program == program)
    if bank_code:
        stmt = stmt.where(Loan.bank_code == bank_code)
    if status:
        stmt = stmt.where(Loan.status == status)
    return stmt
