from __future__ import annotations

from datetime import date
from typing import Annotated, Literal
from urllib.parse import quote

from fastapi import (
    APIRouter,
    Depends,
    File,
    Form,
    Path,
    Query,
    Request,
    Response,
    UploadFile,
    status,
)
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.auth.principal import CurrentPrincipal, Principal, require_roles
from app.claims import repository as repo
from app.claims import returns, service, steps
from app.claims.overdue import overdue_steps, waiting_statuses
from app.claims.schemas import (
    ClaimFile,
    ClaimOut,
    ClawbackIn,
    ClawbackOut,
    CommitteeIn,
    DeficiencyOut,
    DocumentOut,
    ExposureOut,
    ManagerReviewIn,
    NextStep,
    OverdueOut,
    PaymentIn,
    ReceiptIn,
    ReceiptOut,
    RecoveryIn,
    RecoveryOut,
    ResubmissionIn,
    ReturnIn,
    ReturnOut,
    ReviewIn,
    Shares,
    StepIn,
    TransitionOut,
    XbExposureOut,
)
from app.claims.workflow import RETURNED, StepInput
from app.db import get_session
from app.errors import NotFound
from app.kit.clock import get_clock, get_today
from app.kit.dates import AsOf
from app.kit.pagination import ObjectId, Page, PageParams, page_params, paginate
from app.kit.uow import TransactionalRoute
from app.models import Bank, Claim, ClaimClawback, ClaimRecovery, ClaimReturn, User
from app.programs.base import Program, get_program, program_codes
from app.programs.fields import DEFAULT_PROGRAM, ClaimStatus, ProgramCode

router = APIRouter(route_class=TransactionalRoute)
SessionDep = Annotated[Session, Depends(get_session)]
Today = Annotated[date, Depends(get_today)]
DOCUMENT_KINDS = Literal[
    "application",
    "overdue_proof",
    "collection_record",
    "collection_plan",
    "due_diligence",
    "lawsuit",
    "loan_contract",
    "other",
]


# --- views ---------------------------------------------------------------------------
def _recovery_out(r: ClaimRecovery) -> RecoveryOut:
    return RecoveryOut(
        id=r.id,
        claim_id=r.claim_id,
        recovered_on=r.recovered_on,
        amount=r.amount_fen,
        costs=r.costs_fen,
        net=r.amount_fen - r.costs_fen,
        returned=r.returned_fen,
        returned_shares=dict(r.returned_shares),
        due_on=r.due_on,
        due_on_provisional=r.due_on_provisional,
        ledger_entry_ids=list(r.ledger_entry_ids),
    )


def _clawback_out(x: ClaimClawback) -> ClawbackOut:
    return ClawbackOut(
        id=x.id,
        claim_id=x.claim_id,
        kind=x.kind,
        amount=x.amount_fen,
        decided_on=x.decided_on,
        reason=x.reason,
        ledger_entry_ids=list(x.ledger_entry_ids),
    )


def _views(session: Session, claims: list[Claim]) -> list[ClaimOut]:
    ids = [c.id for c in claims]
    history, docs, recs = (
        repo.history(session, ids),
        repo.documents(session, ids),
        repo.recoveries(session, ids),
    )
    claws, got = repo.clawbacks(session, ids), repo.receipts(session, ids)
    rets = repo.returns(session, ids)
    split = repo.shares_rows(session, ids)  # the claim_shares rows are the record
    by_transition = {r.transition_id: r for rs in rets.values() for r in rs}
    actor_ids = {t.actor_id for ts in history.values() for t in ts}
    names = {
        int(i): str(n)
        for i, n in session.execute(select(User.id, User.username).where(User.id.in_(actor_ids)))
    }
    by_role = {t.id: t.actor_role for ts in history.values() for t in ts}
    out = []
    for c in claims:
        program = get_program(c.program)
        stage = program.workflow.stages.get(c.status)
        label_zh, label_en = program.workflow.label(c.status)
        open_return = rets[c.id][-1] if c.status == RETURNED and rets[c.id] else None
        out.append(
            ClaimOut(
                id=c.id,
                program=c.program,
                loan_id=c.loan_id,
                bank_code=c.bank_code,
                product=c.product,
                city_fund_code=c.city_fund_code,
                region_code=c.region_code,
                status=c.status,
                status_zh=label_zh,
                status_en=label_en,
                next_step=NextStep(stage=stage.name, who=stage.who, endpoint=stage.endpoint(c.id))
                if stage
                else NextStep(
                    stage="resubmission",
                    who="the claiming bank corrects and resubmits 合作银行补正后重新提交",
                    endpoint=f"POST /api/v1/claims/{c.id}/resubmission",
                )
                if c.status == RETURNED
                else None,
                filed_on=c.filed_on,
                days_past_due=c.days_past_due,
                loss=c.loss_fen,
                requested=c.requested_fen,
                shares=Shares(**split[c.id].get("requested", c.shares)),
                approved=c.approved_fen,
                approved_shares=Shares(**split[c.id]["approved"])
                if "approved" in split[c.id]
                else None,
                approved_on=c.approved_on,
                capped_by=c.capped_by,
                bank_bears_capped=None
                if c.approved_fen is None
                else c.requested_fen - c.approved_fen,
                cap=c.cap_detail,
                paid_on=c.paid_on,
                reimbursed_on=c.reimbursed_on,
                returned=c.returned_fen,
                lawsuit_case_no=c.lawsuit_case_no,
                lawsuit_accepted_on=c.lawsuit_accepted_on,
                deadlines={k: date.fromisoformat(v) for k, v in c.deadlines.items()},
                provisional_deadlines=list(c.provisional_deadlines or []),
                rejection_reason=c.rejection_reason,
                findings=list(c.findings or []),
                opinion=c.opinion,
                history=[
                    TransitionOut(
                        action=t.action,
                        from_status=t.from_status,
                        to_status=t.to_status,
                        actor=names.get(t.actor_id, str(t.actor_id)),
                        actor_role=t.actor_role,
                        business_date=t.business_date,
                        at=t.at,
                        comment=t.comment,
                        ledger_entry_ids=list(t.ledger_entry_ids),
                        deficiencies=_deficiencies(program, by_transition[t.id])
                        if t.id in by_transition
                        else [],
                    )
                    for t in history[c.id]
                ],
                documents=[
                    DocumentOut(
                        id=d.id,
                        kind=d.kind,
                        filename=d.filename,
                        content_type=d.content_type,
                        size_bytes=d.size_bytes,
                        sha256=d.sha256,
                        uploaded_at=d.uploaded_at,
                        download=f"/api/v1/claims/{c.id}/documents/{d.id}",
                    )
                    for d in docs[c.id]
                ],
                recoveries=[_recovery_out(r) for r in recs[c.id]],
                clawbacks=[_clawback_out(x) for x in claws[c.id]],
                receivable=program.receivable(recs[c.id], claws[c.id], got[c.id]),
                returned_for=_return_out(program, open_return, names, by_role)
                if open_return
                else None,
            )
        )
    return out


def _return_out(
    program: Program, ret: ClaimReturn, names: dict[int, str], roles: dict[int, str]
) -> ReturnOut:
    return ReturnOut(
        stage=ret.stage,
        returned_by=names.get(ret.returned_by_id, str(ret.returned_by_id)),
        returned_by_role=roles.get(ret.transition_id, ""),
        returned_on=ret.returned_on,
        comment=ret.comment,
        deficiencies=_deficiencies(program, ret),
        paused_deadline=ret.paused_deadline,
        deadline_was=ret.deadline_was,
        working_days_left=ret.working_days_left,
    )


def _deficiencies(program: Program, ret: ClaimReturn) -> list[DeficiencyOut]:
    out = []
    for d in ret.deficiencies:
        zh, en = returns.label(program, str(d["code"]))
        out.append(DeficiencyOut(code=d["code"], label_zh=zh, label_en=en, detail=d.get("detail")))
    return out


def _one(session: Session, claim: Claim) -> ClaimOut:
    return _views(session, [claim])[0]


# --- claims --------------------------------------------------------------------------
@router.post(
    "/claims",
    tags=["claims"],
    status_code=status.HTTP_201_CREATED,
    summary="Apply for compensation 代偿申请 (SKD-C2)",
    description="A partner bank claims on its loan once principal is ≥ 90 days past due. "
    "The loss is the unpaid principal, split per SKD-S1 (exact, M-2). Loans not "
    "eligible at grant get nothing (SKD-S2). Upload the application files next "
    "with `POST /claims/{id}/documents`.",
)
def file_claim(
    request: Request,
    session: SessionDep,
    bank: Annotated[Principal, Depends(require_roles("bank"))],
    body: ClaimFile,
) -> ClaimOut:
    clock = get_clock(request)
    claim = service.file_claim(
        session,
        loan_id=body.loan_id,
        lawsuit_case_no=body.lawsuit_case_no,
        lawsuit_accepted_on=body.lawsuit_accepted_on,
        comment=body.comment,
        actor=bank,
        today=clock.today(),
        now=clock.now(),
    )
    return _one(session, claim)


@router.get("/claims", tags=["claims"], summary="List claims 代偿申请 (scoped to the caller)")
def list_claims(
    session: SessionDep,
    principal: CurrentPrincipal,
    page: Annotated[PageParams, Depends(page_params)],
    program: ProgramCode | None = None,
    status: Annotated[
        ClaimStatus | None,
        Query(description="e.g. `submitted` = waiting for the first review"),
    ] = None,
    bank_code: Annotated[str | None, Query(max_length=32)] = None,
    loan_id: ObjectId | None = None,
) -> Page[ClaimOut]:
    stmt = repo.filter_claims(
        repo.scoped_claims(session, principal),
        program=program,
        status=status,
        bank_code=bank_code,
        loan_id=loan_id,
    )
    rows, cursor = paginate(session, stmt, Claim.id, page)
    return Page(items=_views(session, list(rows)), next_cursor=cursor)


@router.get(
    "/claims/overdue",
    tags=["claims"],
    summary="Overdue steps 逾期未办 (XB-C2)",
    description="XB steps past their deadline as of the date: the manager's opinion (7 "
    "working days after filing), the payment (20 working days after approval) and "
    "collections due to the fund (10 working days after recovery, XB-R1). A claim returned "
    "for correction is not listed: its stage's deadline pauses until the bank resubmits.",
)
def overdue(
    session: SessionDep,
    principal: CurrentPrincipal,
    today: Today,
    as_of: Annotated[date | None, Query(description="default: today")] = None,
) -> list[OverdueOut]:
    waiting = waiting_statuses(list(program_codes()))
    stmt = repo.scoped_claims(session, principal).where(Claim.status.in_(sorted(waiting)))
    late = overdue_steps(list(session.scalars(stmt.order_by(Claim.id))), as_of or today, session)
    return [
        OverdueOut(
            claim_id=x.claim.id,
            bank_code=x.claim.bank_code,
            program=x.claim.program,
            status=x.claim.status,
            stage=x.stage,
            deadline=x.deadline,
            days_overdue=x.days_overdue,
            provisional=x.provisional,
        )
        for x in late
    ]


@router.get("/claims/{claim_id}", tags=["claims"], summary="One claim, with its history")
def get_claim(session: SessionDep, principal: CurrentPrincipal, claim_id: ObjectId) -> ClaimOut:
    claim = session.scalars(
        repo.scoped_claims(session, principal).where(Claim.id == claim_id)
    ).first()
    if claim is None:
        raise NotFound(f"claim {claim_id} not found")
    return _one(session, claim)


@router.post(
    "/claims/{claim_id}/documents",
    tags=["claims"],
    status_code=status.HTTP_201_CREATED,
    summary="Upload a claim document 上传申请材料 (SKD-C1)",
    description="multipart/form-data with `file` and `kind`. PDF, JPEG, PNG or ZIP (the "
    "content must match the type), at most the configured size; stored with "
    "its SHA-256.",
)
async def upload_document(
    request: Request,
    session: SessionDep,
    bank: Annotated[Principal, Depends(require_roles("bank"))],
    claim_id: ObjectId,
    file: Annotated[UploadFile, File(description="the document")],
    kind: Annotated[
        DOCUMENT_KINDS,
        Form(description="申请书 / 逾期证明 / 催收记录 / 催收方案 / 尽职情况说明 / 诉讼材料 …"),
    ],
) -> DocumentOut:
    settings = request.app.state.settings
    content = await file.read(settings.max_upload_bytes + 1)
    doc = service.add_document(
        session,
        claim_id=claim_id,
        kind=kind,
        filename=file.filename or "document",
        content_type=(file.content_type or "").split(";")[0].strip().lower(),
        content=content,
        allowed_types=settings.upload_content_types,
        max_bytes=settings.max_upload_bytes,
        actor=bank,
        now=get_clock(request).now(),
    )
    return DocumentOut(
        id=doc.id,
        kind=doc.kind,
        filename=doc.filename,
        content_type=doc.content_type,
        size_bytes=doc.size_bytes,
        sha256=doc.sha256,
        uploaded_at=doc.uploaded_at,
        download=f"/api/v1/claims/{claim_id}/documents/{doc.id}",
    )


@router.get(
    "/claims/{claim_id}/documents/{document_id}",
    tags=["claims"],
    summary="Download a claim document",
    response_class=Response,
    responses={200: {"content": {"application/octet-stream": {}}}},
)
def download_document(
    session: SessionDep, principal: CurrentPrincipal, claim_id: ObjectId, document_id: ObjectId
) -> Response:
    claim = session.scalars(
        repo.scoped_claims(session, principal).where(Claim.id == claim_id)
    ).first()
    doc = repo.document(session, claim_id, document_id) if claim is not None else None
    if doc is None:
        raise NotFound(f"document {document_id} of claim {claim_id} not found")
    return Response(
        content=doc.content,
        media_type=doc.content_type,
        headers={
            "Content-Disposition": f"attachment; filename*=UTF-8''{quote(doc.filename)}",
            "ETag": f'"{doc.sha256}"',
            "X-Content-SHA256": doc.sha256,
        },
    )


@router.post(
    "/claims/{claim_id}/city-review",
    tags=["claims"],
    summary="City first review 市县初审 (SKD-C1)",
    description="By a city reviewer of the enterprise's region. Approval needs the "
    "application documents; a rejection needs a reason. Maker-checker (SKD-C3).",
)
def city_review(
    request: Request,
    session: SessionDep,
    reviewer: Annotated[Principal, Depends(require_roles("city_reviewer"))],
    claim_id: ObjectId,
    body: ReviewIn,
) -> ClaimOut:
    claim = _act(request, session, reviewer, claim_id, "city_review", _review(body))
    return _one(session, claim)


@router.post(
    "/claims/{claim_id}/province-review",
    tags=["claims"],
    summary="Province second review 省级复审 (SKD-C1, Q1, Q2)",
    description="Approval applies the bank's 3 % compensation-rate cap (SKD-Q1; exempt in "
    "the first cooperation year up to 200,000,000 of principal, SKD-Q2). A "
    'capped approval says `capped_by: "SKD-Q1"` and shows what the bank bears. '
    "The approved amount is reserved in the ledger.",
)
def province_review(
    request: Request,
    session: SessionDep,
    reviewer: Annotated[Principal, Depends(require_roles("province_reviewer"))],
    claim_id: ObjectId,
    body: ReviewIn,
) -> ClaimOut:
    claim = _act(request, session, reviewer, claim_id, "province_review", _review(body))
    return _one(session, claim)


@router.post(
    "/claims/{claim_id}/city-payment",
    tags=["claims"],
    summary="City fund pays the bank 市县资金拨付 (SKD-C1)",
    description="By the manager of the loan's city fund: the whole approved fund share "
    "(province + city parts) goes to the bank. Refused when the fund's cash is short.",
)
def city_payment(
    request: Request,
    session: SessionDep,
    manager: Annotated[Principal, Depends(require_roles("fund_manager"))],
    claim_id: ObjectId,
    body: PaymentIn,
) -> ClaimOut:
    claim = _act(request, session, manager, claim_id, "city_payment", _payment(body))
    return _one(session, claim)


@router.post(
    "/claims/{claim_id}/province-reimbursement",
    tags=["claims"],
    summary="Province reimburses the city fund 省级资金归垫 (SKD-C1)",
    description="By the province fund's manager: the province part moves to the city fund.",
)
def province_reimbursement(
    request: Request,
    session: SessionDep,
    manager: Annotated[Principal, Depends(require_roles("fund_manager"))],
    claim_id: ObjectId,
    body: PaymentIn,
) -> ClaimOut:
    claim = _act(request, session, manager, claim_id, "province_reimbursement", _payment(body))
    return _one(session, claim)


@router.post(
    "/claims/{claim_id}/manager-review",
    tags=["claims"],
    summary="XB due-diligence review 尽职审查 (XB-C2, N1–N9)",
    description="By the XB fund manager within 7 working days of the claim: findings "
    "(XB-N1…N9; any finding means no compensation) and the written opinion. Needs "
    "the application, collection plan and due-diligence statement (XB-C1).",
)
def manager_review(
    request: Request,
    session: SessionDep,
    manager: Annotated[Principal, Depends(require_roles("fund_manager"))],
    claim_id: ObjectId,
    body: ManagerReviewIn,
) -> ClaimOut:
    step = StepInput(
        approve=body.decision == "approve",
        findings=tuple(body.findings),
        opinion=body.opinion,
    )
    claim = _act(request, session, manager, claim_id, "manager_review", step)
    return _one(session, claim)


@router.post(
    "/claims/{claim_id}/committee-decision",
    tags=["claims"],
    summary="XB committee decision 补偿会审 (XB-C2, Q1, Q2)",
    description="Approval pays the fund's share up to the bank's annual limit under the "
    "claim's sub-fund (XB-Q1; base 助企成长贷: 5 % of the bank's base sub-fund principal "
    "outstanding at the last quarter end, as stored by the XB quarter-end evaluation; "
    "other sub-funds by their own settings); the excess is the bank's. At 50 % of the "
    "limit the bank is warned, at 100 % its agreement with that sub-fund is suspended; at "
    "50 % of the fund's capital all new business stops (XB-Q2).",
)
def committee_decision(
    request: Request,
    session: SessionDep,
    committee: Annotated[Principal, Depends(require_roles("committee"))],
    claim_id: ObjectId,
    body: CommitteeIn,
) -> ClaimOut:
    step = StepInput(approve=body.decision == "approve", comment=body.comment)
    claim = _act(request, session, committee, claim_id, "committee_decision", step)
    return _one(session, claim)


@router.post(
    "/claims/{claim_id}/payment",
    tags=["claims"],
    summary="XB payment 补偿资金支付 (XB-C2)",
    description="By the XB fund manager (not the one who reviewed), within 20 working days "
    "of the approval, from the pool's cash.",
)
def xb_payment(
    request: Request,
    session: SessionDep,
    manager: Annotated[Principal, Depends(require_roles("fund_manager"))],
    claim_id: ObjectId,
    body: PaymentIn,
) -> ClaimOut:
    claim = _act(request, session, manager, claim_id, "payment", _payment(body))
    return _one(session, claim)


def _review(body: ReviewIn) -> StepInput:
    return StepInput(
        approve=body.decision == "approve",
        comment=body.comment,
        ineligible_at_grant=body.ineligible_at_grant,
    )


def _payment(body: PaymentIn) -> StepInput:
    return StepInput(paid_on=body.paid_on, comment=body.comment)


def _act(
    request: Request,
    session: Session,
    actor: Principal,
    claim_id: int,
    stage: str,
    step: StepInput,
) -> Claim:
    clock = get_clock(request)
    return service.act(
        session,
        claim_id=claim_id,
        stage=stage,
        step=step,
        actor=actor,
        today=clock.today(),
        now=clock.now(),
    )


@router.post(
    "/claims/{claim_id}/steps/{stage}",
    tags=["claims"],
    summary="Act on a stage of any programme 办理审核/拨付环节",
    description="The stage endpoint every programme has: `stage` names one of the "
    "claim's programme's stages (a claim's `next_step` names the one it waits at). A "
    "review stage takes `decision` (and `comment`, required to reject; an XB "
    "due-diligence review its `findings` and `opinion`); a payment stage takes `paid_on`. "
    "The programme-specific endpoints (`/city-review`, `/committee-decision`, `/payment` …) "
    "do the same for their stage. The stage's role, fund and maker-checker (SKD-C3) apply.",
)
def act_on_stage(
    request: Request,
    session: SessionDep,
    actor: CurrentPrincipal,
    claim_id: ObjectId,
    stage: Annotated[str, Path(min_length=1, max_length=40, pattern=r"^[a-z_]+$")],
    body: StepIn,
) -> ClaimOut:
    step = StepInput(
        approve=None if body.decision is None else body.decision == "approve",
        comment=body.comment,
        paid_on=body.paid_on,
        findings=tuple(body.findings),
        opinion=body.opinion,
        ineligible_at_grant=body.ineligible_at_grant,
    )
    return _one(session, _act(request, session, actor, claim_id, stage, step))


@router.post(
    "/claims/{claim_id}/return",
    tags=["claims"],
    summary="Return for correction 退回补正 (SKD-C1, XB-C2)",
    description="By the reviewer of the stage the claim waits at (SKD: the city reviewer "
    "of the region at the city review, the province reviewer at the province review; XB: "
    "the XB fund manager at the due-diligence review, the committee at its decision): "
    "every deficiency at once, each a code of the programme's list (`other` with a "
    "detail). The claim goes to the bank (`returned`); the loan stays claimed and nothing "
    "is posted. The stage's stored deadline (XB: the manager's 7 working days) pauses "
    "until the bank resubmits. Maker-checker (SKD-C3): returning is acting on the stage.",
)
def return_claim(
    request: Request,
    session: SessionDep,
    reviewer: Annotated[
        Principal,
        Depends(require_roles("city_reviewer", "province_reviewer", "fund_manager", "committee")),
    ],
    claim_id: ObjectId,
    body: ReturnIn,
) -> ClaimOut:
    clock = get_clock(request)
    claim = returns.return_for_correction(
        session,
        claim_id=claim_id,
        deficiencies=[returns.Deficiency(d.code, d.detail) for d in body.deficiencies],
        comment=body.comment,
        actor=reviewer,
        today=clock.today(),
        now=clock.now(),
    )
    return _one(session, claim)


@router.post(
    "/claims/{claim_id}/resubmission",
    tags=["claims"],
    summary="Resubmit after correction 补正后重新提交 (SKD-C1, XB-C2)",
    description="By the claiming bank, after correcting what the return listed (documents "
    "may be uploaded while the claim is returned): the claim goes back to the stage that "
    "returned it, and a paused deadline continues from the resubmission date with the "
    "working days it had left.",
)
def resubmit_claim(
    request: Request,
    session: SessionDep,
    bank: Annotated[Principal, Depends(require_roles("bank"))],
    claim_id: ObjectId,
    body: ResubmissionIn,
) -> ClaimOut:
    clock = get_clock(request)
    claim = returns.resubmit(
        session,
        claim_id=claim_id,
        comment=body.comment,
        actor=bank,
        today=clock.today(),
        now=clock.now(),
    )
    return _one(session, claim)


@router.post(
    "/claims/{claim_id}/recoveries",
    tags=["claims"],
    status_code=status.HTTP_201_CREATED,
    summary="Report a recovery 追偿回款 (SKD-R1)",
    description="The bank reports money recovered after compensation with its actual "
    "litigation costs. The net, at the original compensation ratio (paid ÷ loss), "
    "goes to the city fund, which passes the province's part on; cumulative "
    "returns never exceed the compensation paid.",
)
def record_recovery(
    request: Request,
    session: SessionDep,
    bank: Annotated[Principal, Depends(require_roles("bank"))],
    claim_id: ObjectId,
    body: RecoveryIn,
) -> RecoveryOut:
    clock = get_clock(request)
    recovery = service.record_recovery(
        session,
        claim_id=claim_id,
        recovered_on=body.recovered_on,
        amount_fen=body.amount,
        costs_fen=body.costs,
        actor=bank,
        today=clock.today(),
        now=clock.now(),
    )
    return _recovery_out(recovery)


@router.post(
    "/claims/{claim_id}/abandonment",
    tags=["claims"],
    status_code=status.HTTP_201_CREATED,
    summary="XB refund for abandoned collection 放弃催收退还补偿 (XB-R2)",
    description="By the XB fund manager: the bank abandoned collection without good reason "
    "and refunds the claim's compensation not yet returned (a receivable until received).",
)
def abandonment(
    request: Request,
    session: SessionDep,
    manager: Annotated[Principal, Depends(require_roles("fund_manager"))],
    claim_id: ObjectId,
    body: ClawbackIn,
) -> ClawbackOut:
    return _clawback(request, session, manager, claim_id, body, "abandonment")


@router.post(
    "/claims/{claim_id}/fraud-refund",
    tags=["claims"],
    status_code=status.HTTP_201_CREATED,
    summary="XB full refund for fraud or NPL substitution 弄虚作假/置换 (XB-R2)",
    description="By the committee: the bank refunds the compensation at once and its XB "
    "agreements are terminated.",
)
def fraud_refund(
    request: Request,
    session: SessionDep,
    committee: Annotated[Principal, Depends(require_roles("committee"))],
    claim_id: ObjectId,
    body: ClawbackIn,
) -> ClawbackOut:
    return _clawback(request, session, committee, claim_id, body, "fraud")


def _clawback(
    request: Request,
    session: Session,
    actor: Principal,
    claim_id: int,
    body: ClawbackIn,
    kind: str,
) -> ClawbackOut:
    clock = get_clock(request)
    row = service.clawback(
        session,
        claim_id=claim_id,
        kind=kind,
        reason=body.reason,
        decided_on=body.decided_on,
        actor=actor,
        today=clock.today(),
        now=clock.now(),
    )
    return _clawback_out(row)


@router.post(
    "/claims/{claim_id}/receipts",
    tags=["claims"],
    status_code=status.HTTP_201_CREATED,
    summary="XB money received from the bank 收到银行返还款 (XB-R1, R2)",
    description="By the XB fund manager: settles the claim's receivable (distributed "
    "collections and refunds).",
)
def receipt(
    request: Request,
    session: SessionDep,
    manager: Annotated[Principal, Depends(require_roles("fund_manager"))],
    claim_id: ObjectId,
    body: ReceiptIn,
) -> ReceiptOut:
    clock = get_clock(request)
    row = service.receive(
        session,
        claim_id=claim_id,
        received_on=body.received_on,
        amount_fen=body.amount,
        actor=manager,
        today=clock.today(),
        now=clock.now(),
    )
    return ReceiptOut(
        id=row.id,
        claim_id=row.claim_id,
        received_on=row.received_on,
        amount=row.amount_fen,
        receivable_after=service.receivable(
            session, steps.claim_for_step(session, claim_id, manager)
        ),
        ledger_entry_ids=list(row.ledger_entry_ids),
    )


# --- exposure ------------------------------------------------------------------------
@router.get(
    "/banks/{bank_code}/exposure",
    tags=["claims"],
    summary="A bank's compensation cap and exposure 代偿率与风险敞口 (SKD-Q1, Q2, Q3)",
    description="Annualized principal (Σ principal × loan days / 365 × the funds' share) per "
    "SKD1/2/3 and in total, compensation, compensation rate, the 3 % cap and the "
    "headroom left, the first-year exemption, the NPL ratio and suspension, as "
    "of a date. With `program=XB`: the annual limit per sub-fund (XB-Q1) — its basis "
    "and where it comes from (a stored quarter-end evaluation or computed), usage, "
    "warning and suspension; `limit` is the base sub-fund's.",
)
def exposure(
    session: SessionDep,
    principal: CurrentPrincipal,
    today: Today,
    bank_code: Annotated[str, Path(min_length=1, max_length=32)],
    program: ProgramCode = DEFAULT_PROGRAM,
    as_of: AsOf = None,
) -> ExposureOut | XbExposureOut:
    on = as_of or today
    if session.get(Bank, bank_code) is None or not principal.can_see_bank(bank_code):
        raise NotFound(f"bank {bank_code} not found")
    return get_program(program).exposure(session, bank_code, on=on)  # type: ignore[return-value]
