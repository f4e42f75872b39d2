from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request, status
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.auth.principal import CurrentPrincipal, Principal, require_roles
from app.db import get_session
from app.errors import NotFound
from app.evaluations import service
from app.evaluations.schemas import BankResultOut, EvaluationOut, QuarterEndIn, XbQuarterLimitOut
from app.kit.clock import get_clock
from app.kit.pagination import ObjectId
from app.kit.uow import TransactionalRoute
from app.models import QuarterBankResult, QuarterEvaluation

router = APIRouter(route_class=TransactionalRoute)
SessionDep = Annotated[Session, Depends(get_session)]


def _out(session: Session, run: QuarterEvaluation, principal: Principal) -> EvaluationOut:
    rows = [r for r in service.results(session, run.id) if principal.can_see_bank(r.bank_code)]
    return EvaluationOut(
        id=run.id,
        program=run.program,
        year=run.year,
        quarter=run.quarter,
        quarter_end=run.quarter_end,
        run_at=run.run_at,
        banks=[
            BankResultOut(
                bank_code=r.bank_code,
                outstanding_principal=r.outstanding_fen,
                npl_principal=r.npl_fen,
                npl_ratio_bp=(r.npl_fen * 10_000 // r.outstanding_fen)
                if r.outstanding_fen
                else None,
                threshold_bp=r.threshold_bp,
                breached=r.breached,
                decision=r.decision,
                agreement_ids=list(r.agreement_ids),
                fund_code=r.fund_code,
                limit=_xb_limit(r),
            )
            for r in rows
        ],
    )


def _xb_limit(r: QuarterBankResult) -> XbQuarterLimitOut | None:
    if r.fund_code is None or r.limit_fen is None:
        return None
    return XbQuarterLimitOut(
        year=r.limit_year or 0,
        limit_rate_bp=r.threshold_bp,
        warning_share_bp=r.warning_share_bp or 0,
        annual_limit=r.limit_fen,
        warning_at=r.warning_fen or 0,
        used=r.used_fen or 0,
        warning=bool(r.warning),
        limit_reached=r.breached,
        suspended=bool(r.suspended),
    )


@router.post(
    "/evaluations/quarter-end",
    tags=["evaluations"],
    status_code=status.HTTP_201_CREATED,
    summary="Quarter-end evaluation 季末评价 (SKD-Q3, XB-Q1)",
    description="SKD, by the province reviewer: per bank, principal ≥ 90 days past due ÷ "
    "SKD principal outstanding at the quarter end. At ≥ 3 % the bank's SKD agreements are "
    "suspended; below it, suspensions made by a quarter-end are lifted. XB, by the XB "
    "fund manager: per bank and sub-fund, the principal outstanding at the quarter end — "
    "the basis of the annual limit (XB-Q1) the committee decisions until the next quarter "
    "end read — with the sub-fund's limit settings, the year's usage so far and the "
    "warning and suspension state (recorded; nothing is suspended or lifted). Every run "
    "is stored.",
)
def quarter_end(
    request: Request,
    session: SessionDep,
    reviewer: Annotated[Principal, Depends(require_roles("province_reviewer", "fund_manager"))],
    body: QuarterEndIn,
) -> EvaluationOut:
    service.check_runner(session, body.program, reviewer)
    run = service.evaluate(
        session,
        program=body.program,
        year=body.year,
        quarter=body.quarter,
        actor=reviewer,
        today=get_clock(request).today(),
    )
    return _out(session, run, reviewer)


@router.get(
    "/evaluations/{evaluation_id}",
    tags=["evaluations"],
    summary="One stored evaluation (a bank sees its own row)",
)
def get_evaluation(
    session: SessionDep, principal: CurrentPrincipal, evaluation_id: ObjectId
) -> EvaluationOut:
    run = session.get(QuarterEvaluation, evaluation_id)
    if run is None:
        raise NotFound(f"evaluation {evaluation_id} not found")
    return _out(session, run, principal)


@router.get("/evaluations", tags=["evaluations"], summary="Stored evaluations, newest first")
def list_evaluations(session: SessionDep, principal: CurrentPrincipal) -> list[EvaluationOut]:
    runs = session.scalars(
        select(QuarterEvaluation).order_by(QuarterEvaluation.id.desc()).limit(40)
    )
    return [_out(session, r, principal) for r in runs]
