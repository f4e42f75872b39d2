from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Query, Request, Response, status
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.auth.principal import CurrentPrincipal, Principal, require_roles
from app.db import get_session
from app.errors import problems
from app.evaluations import service
from app.evaluations.schemas import BankResultOut, EvaluationOut, QuarterEndIn, XbQuarterLimitOut
from app.kit.clock import get_clock
from app.kit.location import set_location
from app.kit.pagination import PAGE_REFUSALS, ObjectId, Page, PageParams, page_params, paginate
from app.kit.uow import TransactionalRoute
from app.models import QuarterBankResult, QuarterEvaluation
from app.programs.fields import ProgramCode

router = APIRouter(route_class=TransactionalRoute)
SessionDep = Annotated[Session, Depends(get_session)]

_QUARTER_END_EXAMPLES: dict[str, Any] = {
    "skd": {
        "summary": "SKD 2026-Q3, by the province reviewer 苏科贷季末评价（省级复审）",
        "value": {"program": "SKD", "year": 2026, "quarter": 3},
    },
    "xb": {
        "summary": "XB 2026-Q3, by the XB fund manager 信保基金季末评价（基金管理人）",
        "value": {"program": "XB", "year": 2026, "quarter": 3},
    },
}


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
    "is stored. Another programme's evaluator: 403 `role_not_allowed`; a quarter not over: "
    "422 `quarter_not_ended`; a programme already evaluated for a later quarter: 409 "
    "`quarter_superseded`. `Location`: the stored evaluation.",
    responses=problems(service.NotTheRunner, service.QuarterNotEnded, service.QuarterSuperseded),
)
def quarter_end(
    request: Request,
    response: Response,
    session: SessionDep,
    reviewer: Annotated[Principal, Depends(require_roles("province_reviewer", "fund_manager"))],
    body: Annotated[QuarterEndIn, Body(openapi_examples=_QUARTER_END_EXAMPLES)],
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
    set_location(request, response, "get_evaluation", evaluation_id=run.id)
    return _out(session, run, reviewer)


@router.get(
    "/evaluations/{evaluation_id}",
    tags=["evaluations"],
    summary="One stored evaluation 季末评价 (a bank sees its own row)",
    responses=problems(service.EvaluationNotFound),
)
def get_evaluation(
    session: SessionDep, principal: CurrentPrincipal, evaluation_id: ObjectId
) -> EvaluationOut:
    run = session.get(QuarterEvaluation, evaluation_id)
    if run is None:
        raise service.EvaluationNotFound(f"evaluation {evaluation_id} not found")
    return _out(session, run, principal)


@router.get(
    "/evaluations",
    tags=["evaluations"],
    summary="Stored evaluations, newest first 季末评价记录",
    description="A page of stored quarter-end evaluations, newest run first (`limit`, "
    "`cursor`); filter by `program`. A bank sees its own rows of each.",
    responses=problems(*PAGE_REFUSALS),
)
def list_evaluations(
    session: SessionDep,
    principal: CurrentPrincipal,
    page: Annotated[PageParams, Depends(page_params)],
    program: Annotated[
        ProgramCode | None,
        Query(description="programme 项目: SKD 苏科贷 or XB 信保基金", examples=["SKD"]),
    ] = None,
) -> Page[EvaluationOut]:
    stmt = select(QuarterEvaluation)
    if program is not None:
        stmt = stmt.where(QuarterEvaluation.program == program)
    rows, cursor = paginate(session, stmt, QuarterEvaluation.id, page, descending=True)
    return Page(items=[_out(session, r, principal) for r in rows], next_cursor=cursor)
