from __future__ import annotations

from datetime import date
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Request, Response, status
from sqlalchemy.orm import Session

from app.auth.principal import CurrentPrincipal, Principal, require_roles
from app.db import get_session
from app.errors import problems
from app.kit.clock import get_today
from app.kit.location import set_location
from app.kit.uow import TransactionalRoute
from app.library import schemas as s
from app.library import service
from app.library.service import NotAMember, OutsideRegion
from app.programs.base import declared_refusals
from app.reference.service import EnterpriseNotFound, get_enterprise

router = APIRouter(route_class=TransactionalRoute)
SessionDep = Annotated[Session, Depends(get_session)]
Reviewer = Annotated[Principal, Depends(require_roles("city_reviewer"))]
Today = Annotated[date, Depends(get_today)]
CreditCode = Annotated[
    str,
    Path(
        description="the enterprise's unified social credit code 统一社会信用代码",
        examples=["91320700MA1XA0008E"],
    ),
]


def _out(st: service.LibraryStatus) -> s.LibraryStatusOut:
    return s.LibraryStatusOut(
        credit_code=st.enterprise.credit_code,
        enterprise_name=st.enterprise.name,
        program=service.library_program().code,
        member=st.member,
        member_since=st.member_since,
        history=[
            s.LibraryEventOut(
                action=e.action,
                effective_on=e.effective_on,
                comment=e.comment,
                criteria=[s.CriterionOut(**c) for c in e.criteria],
                actor_id=e.actor_id,
                at=e.at,
            )
            for e in st.history
        ],
    )


@router.get(
    "/enterprises/{credit_code}/library",
    tags=["enterprises"],
    summary="SKD library membership and its history 备选企业库 (SKD-E1)",
    responses=problems(EnterpriseNotFound),
)
def library_membership(
    session: SessionDep, _: CurrentPrincipal, credit_code: CreditCode
) -> s.LibraryStatusOut:
    return _out(service.status(session, get_enterprise(session, credit_code)))


@router.post(
    "/enterprises/{credit_code}/library-admission",
    tags=["enterprises"],
    status_code=status.HTTP_201_CREATED,
    summary="Admit to the SKD library 入库审核 (SKD-E1)",
    description="A city reviewer admits an enterprise of their region. Every "
    "SKD-E1 criterion is checked; a refusal (422) lists each one that "
    "fails in `errors`, and its `code` is the first failed criterion's. Admitting a "
    "member again records an update with current facts. `Location` is the membership.",
    responses=problems(EnterpriseNotFound, OutsideRegion, *declared_refusals("library")),
)
def admit_to_library(
    request: Request,
    response: Response,
    session: SessionDep,
    reviewer: Reviewer,
    today: Today,
    credit_code: CreditCode,
    body: s.AdmissionIn,
) -> s.LibraryStatusOut:
    out = _out(
        service.admit(
            session, credit_code=credit_code, comment=body.comment, actor=reviewer, today=today
        )
    )
    set_location(request, response, "library_membership", credit_code=out.credit_code)
    return out


@router.post(
    "/enterprises/{credit_code}/library-removal",
    tags=["enterprises"],
    summary="Remove from the SKD library 出库 (SKD-E1)",
    description="A city reviewer removes a member of their region, with the reason; its "
    "SKD loans already filed are not affected, new filings are refused (SKD-E1).",
    responses=problems(EnterpriseNotFound, OutsideRegion, NotAMember),
)
def remove_from_library(
    session: SessionDep,
    reviewer: Reviewer,
    today: Today,
    credit_code: CreditCode,
    body: s.RemovalIn,
) -> s.LibraryStatusOut:
    return _out(
        service.remove(
            session, credit_code=credit_code, reason=body.reason, actor=reviewer, today=today
        )
    )
