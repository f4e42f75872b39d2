from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query
from sqlalchemy.orm import Session

from app.auth.principal import CurrentPrincipal
from app.db import get_session
from app.errors import NotFound
from app.kit.pagination import ObjectId, Page, PageParams, page_params, paginate
from app.kit.uow import TransactionalRoute
from app.loans import repository as repo
from app.loans.schemas import LoanOut
from app.models import Loan

router = APIRouter(route_class=TransactionalRoute)
SessionDep = Annotated[Session, Depends(get_session)]


@router.get("/loans", tags=["loans"], summary="List loans 贷款 (scoped to the caller)")
def list_loans(
    session: SessionDep,
    principal: CurrentPrincipal,
    page: Annotated[PageParams, Depends(page_params)],
    program: Literal["SKD", "XB"] | None = None,
    bank_code: str | None = None,
    status: Annotated[str | None, Query(max_length=16)] = None,
) -> Page[LoanOut]:
    stmt = repo.filter_loans(
        repo.scoped_loans(principal), program=program, bank_code=bank_code, status=status
    )
    rows, cursor = paginate(session, stmt, Loan.id, page)
    return Page(items=[LoanOut.model_validate(r) for r in rows], next_cursor=cursor)


@router.get("/loans/{loan_id}", tags=["loans"], summary="One loan")
def get_loan(session: SessionDep, principal: CurrentPrincipal, loan_id: ObjectId) -> LoanOut:
    loan = session.scalars(repo.scoped_loans(principal).where(Loan.id == loan_id)).first()
    if loan is None:
        raise NotFound(f"loan {loan_id} not found")
    return LoanOut.model_validate(loan)
