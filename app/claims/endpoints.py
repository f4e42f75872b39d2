"""The claim endpoints (代偿申请): filing, documents, every stage of every programme, returns
for correction, recoveries and XB-R2's refunds and receipts, the lists (`awaiting=me`:
the claims waiting for the caller) and a bank's exposure.

Every state-changing call on a claim honours `If-Match` with the claim's `ETag` (from
`GET /claims/{id}`): a caller acting on a stale view gets 412 `precondition_failed` and
nothing is written. Each route declares the refusals it can answer (`problems(...)`)."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any, Literal
from urllib.parse import quote

from fastapi import (
    APIRouter,
    Body,
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
from fastapi.openapi.models import Example
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
from app.errors import AppError, NotFound, problems
from app.kit.clock import get_clock, get_today
from app.kit.dates import AsOf
from app.kit.etag import (
    ETAG_HEADER,
    IfMatch,
    IfNoneMatch,
    PreconditionFailed,
    check_if_match,
    etag_of,
    etag_responses,
    if_match_responses,
    not_modified,
    not_modified_response,
)
from app.kit.location import set_location
from app.kit.pagination import (
    PAGE_REFUSALS,
    ContractNoFilter,
    CreditCodeFilter,
    InvalidCursor,
    Page,
    PageParams,
    decode_cursor,
    encode_cursor,
    page_params,
    paginate,
)
from app.kit.uow import TransactionalRoute
from app.models import (
    Bank,
    Claim,
    ClaimClawback,
    ClaimRecovery,
    ClaimReturn,
    ClaimTransition,
    User,
)
from app.programs.base import NotOfferedByProgramme, Program, get_program, program_codes
from app.programs.base import registered_programs as _programmes
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
ClaimId = Annotated[
    int,
    Path(
        ge=1,
        le=2**63 - 1,
        description="the claim's id 代偿申请编号 (`id` in `GET /claims`; in the demo, 5 "
        "waits for 苏州's city review and 12 for the XB committee)",
        examples=[5],
    ),
]


def _stage_refusals(*names: str) -> tuple[type[AppError], ...]:
    """What acting on these stages may answer: the guard's refusals, then each stage's
    own as its programme's workflow declares them (every stage when no name is given)."""
    found: list[type[AppError]] = [*steps.GUARD_REFUSALS, PreconditionFailed]
    for program in _programmes():
        for stage in program.workflow.stages.values():
            if not names or stage.name in names:
                found += [e for e in stage.refusals if e not in found]
    return tuple(found)


def _operation_refusals(operation: str) -> tuple[type[AppError], ...]:
    """What the programmes' own part of a claim operation may answer (`file_claim`,
    `clawback`, `receipt`), as their workflows declare it."""
    found: list[type[AppError]] = []
    for program in _programmes():
        found += [e for e in program.workflow.refusals.get(operation, ()) if e not in found]
    return tuple(found)


def _changes(*errors: type[AppError], status_code: int = 200) -> dict[int | str, Any]:
    """`responses=` of a state-changing call on a claim: its refusals, `If-Match`'s 412,
    and the new `ETag` on success."""
    return {**if_match_responses(status_code), **problems(*errors, PreconditionFailed)}


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


def _next_step(program: Program, claim: Claim) -> NextStep | None:
    """What the claim waits for, in its own programme's words."""
    found = program.workflow.next_step(claim.status)
    if found is None:
        return None
    stage, who, path = found
    return NextStep(stage=stage, who=who, endpoint=f"POST /api/v1/claims/{claim.id}/{path}")


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
    loans = repo.loan_facts(session, [c.loan_id for c in claims])
    by_transition = {r.transition_id: r for rs in rets.values() for r in rs}
    actor_ids = {t.actor_id for ts in history.values() for t in ts}
    names = {
        int(i): str(n)
        for i, n in session.execute(select(User.id, User.username).where(User.id.in_(actor_ids)))
    }
    by_role = {t.id: t.actor_role for ts in history.values() for t in ts}
    out = []
    for c in claims:
        program = get_program(c.program)  # the claim's own programme's words and stages
        label_zh, label_en = program.workflow.label(c.status)
        open_return = rets[c.id][-1] if c.status == RETURNED and rets[c.id] else None
        contract_no, enterprise_name, credit_code = loans.get(c.loan_id, ("", "", ""))
        out.append(
            ClaimOut(
                id=c.id,
                program=c.program,
                loan_id=c.loan_id,
                contract_no=contract_no,
                enterprise_name=enterprise_name,
                enterprise_credit_code=credit_code,
                bank_code=c.bank_code,
                product=c.product,
                city_fund_code=c.city_fund_code,
                region_code=c.region_code,
                status=c.status,
                status_zh=label_zh,
                status_en=label_en,
                next_step=_next_step(program, c),
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
                    _transition_out(
                        t,
                        names.get(t.actor_id, str(t.actor_id)),
                        _deficiencies(program, by_transition[t.id])
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


def _current(session: Session, claim_id: int, response: Response) -> ClaimOut:
    """The claim as `GET /claims/{id}` will show it once this call commits (read back
    from the database, so its `ETag` is the one a GET answers), with that `ETag`."""
    view = _read_back(session, claim_id)
    response.headers[ETAG_HEADER] = etag_of(view)
    return view


def _transition_out(
    t: ClaimTransition, actor: str, deficiencies: list[DeficiencyOut]
) -> TransitionOut:
    """A history row as the claim's view shows it, `actor` by name."""
    return TransitionOut(
        action=t.action,
        from_status=t.from_status,
        to_status=t.to_status,
        actor=actor,
        actor_role=t.actor_role,
        business_date=t.business_date,
        at=t.at,
        comment=t.comment,
        ledger_entry_ids=list(t.ledger_entry_ids),
        deficiencies=deficiencies,
    )


def _read_back(session: Session, claim_id: int) -> ClaimOut:
    session.flush()
    session.expire_all()
    claim = session.get(Claim, claim_id)
    assert claim is not None  # the call just acted on it, under its lock
    return _one(session, claim)


def _precondition(request: Request, session: Session, actor: Principal, claim_id: int) -> None:
    """`If-Match`: the caller acts on the claim as they last read it (its `ETag` from
    `GET /claims/{id}`), else 412 and nothing is written. The claim is locked first, so
    nobody changes it between the comparison and the action. Without the header the
    call is not conditional."""
    if request.headers.get("if-match") is None:
        return
    claim = steps.claim_for_step(session, claim_id, actor)
    check_if_match(request, etag_of(_one(session, claim)))


# --- request examples (Swagger's dropdown; valid against the demo data) ----------------
FILE_EXAMPLES: dict[str, Example] = {
    "xb": Example(
        summary="XB claim with the court's acceptance (XB-C1) 信保基金补偿申请",
        description="The demo's 连云港农商行 amortising loan `LYG-XB-AM-…`, 100 days past "
        "due when the demo was seeded: sued, and the case accepted by the court.",
        value={
            "loan_id": 37,
            "lawsuit_case_no": "(2026)苏0706民初5678号",
            "lawsuit_accepted_on": "2026-11-20",
            "comment": "借款人逾期超过45天，已起诉并获法院受理，申请补偿",
        },
    ),
    "skd": Example(
        summary="SKD claim once principal is 90 days past due (SKD-C2) 苏科贷代偿申请",
        description="An SKD claim needs no lawsuit: the loan, and a comment (the demo's "
        "loan 7 is already claimed: a second claim is 409 `claim_exists`).",
        value={"loan_id": 7, "comment": "借款人本金逾期超过90天，催收无果，申请代偿"},
    ),
}
REVIEW_EXAMPLES: dict[str, Example] = {
    "approve": Example(
        summary="Approve: no problem found 审核通过",
        value={"decision": "approve", "comment": "材料齐全，逾期事实清楚，同意"},
    ),
    "reject": Example(
        summary="Reject with the reason 驳回并说明理由",
        value={"decision": "reject", "comment": "催收记录缺失，未履行催收义务，不予代偿"},
    ),
    "reject_ineligible": Example(
        summary="Reject: not eligible when granted (SKD-S2) 放款时不符合条件",
        value={
            "decision": "reject",
            "comment": "放款时企业未入库 (SKD-E1)，不符合风险补偿条件",
            "ineligible_at_grant": True,
        },
    ),
}
MANAGER_REVIEW_EXAMPLES: dict[str, Example] = {
    "approve": Example(
        summary="Recommend compensation: no finding 尽职审查无不予补偿情形",
        value={
            "decision": "approve",
            "findings": [],
            "opinion": "已尽职审查：贷前调查、放款审批和贷后催收记录齐全，未发现不予补偿情形",
        },
    ),
    "reject": Example(
        summary="Recommend rejection with findings (XB-N) 存在不予补偿情形",
        value={
            "decision": "reject",
            "findings": ["XB-N8"],
            "opinion": "银行未按催收方案持续催收，存在无正当理由放弃催收情形 (XB-N8)",
        },
    ),
}
COMMITTEE_EXAMPLES: dict[str, Example] = {
    "approve": Example(
        summary="Approve compensation 同意补偿",
        value={"decision": "approve", "comment": "经会审，同意按比例予以补偿"},
    ),
    "reject": Example(
        summary="Reject with the reason 不同意补偿",
        value={"decision": "reject", "comment": "尽职审查发现放弃催收情形 (XB-N8)，不予补偿"},
    ),
}
PAYMENT_EXAMPLES: dict[str, Example] = {
    "paid": Example(
        summary="Paid on a date 已拨付",
        value={"paid_on": "2026-09-30", "comment": "已拨付至合作银行代偿资金账户"},
    ),
}
STEP_EXAMPLES: dict[str, Example] = {
    "review_approve": Example(
        summary="A review: approve 审核通过",
        value={"decision": "approve", "comment": "材料齐全，逾期事实清楚，同意"},
    ),
    "review_reject": Example(
        summary="A review: reject with the reason 驳回",
        value={"decision": "reject", "comment": "催收记录缺失，未履行催收义务，不予代偿"},
    ),
    "due_diligence": Example(
        summary="XB due diligence (manager_review): no finding 尽职审查",
        value={
            "decision": "approve",
            "findings": [],
            "opinion": "已尽职审查：贷前调查、放款审批和贷后催收记录齐全，未发现不予补偿情形",
        },
    ),
    "payment": Example(
        summary="A payment stage: the date paid 拨付",
        value={"paid_on": "2026-09-30", "comment": "已拨付"},
    ),
}
RETURN_EXAMPLES: dict[str, Example] = {
    "skd": Example(
        summary="SKD: documents missing, overdue date wrong 退回补正",
        value={
            "deficiencies": [
                {"code": "document_missing", "detail": "缺少逾期证明和催收记录"},
                {"code": "overdue_date_wrong", "detail": "申请书所写逾期日与借款合同到期日不符"},
            ],
            "comment": "请补正材料后重新提交",
        },
    ),
    "xb": Example(
        summary="XB: case number missing, collection plan incomplete 退回补正",
        value={
            "deficiencies": [
                {"code": "lawsuit_case_no_missing", "detail": "请提供法院受理通知书及案号"},
                {"code": "collection_plan_incomplete", "detail": "催收方案缺少时间安排"},
                {"code": "other", "detail": "借款合同复印件不清晰，请重新扫描"},
            ],
            "comment": "请补正后重新提交",
        },
    ),
}
RECOVERY_EXAMPLES: dict[str, Example] = {
    "with_costs": Example(
        summary="Recovered through the court, with litigation costs 诉讼追偿",
        value={"recovered_on": "2026-10-20", "amount": "1200000.00", "costs": "60000.00"},
    ),
    "no_costs": Example(
        summary="Repaid by the borrower, no costs 借款人归还",
        value={"recovered_on": "2026-11-02", "amount": "300000.00", "costs": "0.00"},
    ),
}
ABANDONMENT_EXAMPLES: dict[str, Example] = {
    "abandoned": Example(
        summary="Collection abandoned without good reason 无正当理由放弃催收",
        value={
            "decided_on": "2026-10-15",
            "reason": "银行无正当理由放弃对借款人的诉讼催收，应退还已获补偿资金",
        },
    ),
}
FRAUD_EXAMPLES: dict[str, Example] = {
    "fraud": Example(
        summary="Fraud or NPL substitution 弄虚作假或置换不良",
        value={
            "decided_on": "2026-10-15",
            "reason": "经核查，该笔贷款系以新还旧置换存量不良贷款，骗取补偿资金",
        },
    ),
}
RECEIPT_EXAMPLES: dict[str, Example] = {
    "collection": Example(
        summary="The fund's share of a collection received 收到追偿分配款",
        value={"received_on": "2026-09-10", "amount": "448000.00"},
    ),
}
RESUBMISSION_EXAMPLES: dict[str, Example] = {
    "corrected": Example(
        summary="Corrected and resubmitted 补正后重新提交",
        value={"comment": "已补充逾期证明和催收记录，并更正申请书中的逾期日期"},
    ),
}


# --- claims --------------------------------------------------------------------------
@router.post(
    "/claims",
    tags=["claims"],
    status_code=status.HTTP_201_CREATED,
    summary="Apply for compensation 代偿申请 (SKD-C2, XB-C1)",
    description="A partner bank claims on its loan once principal is ≥ 90 days past due "
    "(SKD-C2; XB-C1: 45 days, sued and accepted by the court). The loss is the unpaid "
    "principal, split per SKD-S1 / XB-S1 (exact, M-2). Loans not eligible at grant get "
    "nothing (SKD-S2, XB-N7). Every failed rule is listed in `errors`; `code` is the "
    "first one's. Upload the application files next with `POST /claims/{id}/documents`. "
    "`Location` names the claim; `ETag` is its tag for `If-Match`.",
    responses={
        **if_match_responses(201),
        **problems(*service.FILE_CLAIM_REFUSALS, *_operation_refusals("file_claim")),
    },
)
def file_claim(
    request: Request,
    response: Response,
    session: SessionDep,
    bank: Annotated[Principal, Depends(require_roles("bank"))],
    body: Annotated[ClaimFile, Body(openapi_examples=FILE_EXAMPLES)],
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
    set_location(request, response, "get_claim", claim_id=claim.id)
    return _current(session, claim.id, response)


def _all_statuses() -> str:
    return ", ".join(f"{p.code}: {', '.join(sorted(p.workflow.statuses))}" for p in _programmes())


@router.get(
    "/claims",
    tags=["claims"],
    summary="List claims 代偿申请列表 (scoped to the caller; `awaiting=me`: my queue 待我办理)",
    description="The claims the caller may see (a bank its own, a city reviewer its "
    "region's SKD claims, a fund manager its fund's), filtered. `awaiting=me` lists the "
    "claims waiting for the caller's action, read from the programmes' workflows: a city "
    "reviewer's pending city reviews, the province reviewer's province reviews, a fund "
    "manager's payments, reimbursements and due-diligence reviews of its fund (not those "
    "it already acted on: maker-checker, SKD-C3), the XB committee's decisions, a bank's "
    "claims returned to it for correction. Every claim names its loan's contract number "
    "and enterprise.",
    responses=problems(*PAGE_REFUSALS),
)
def list_claims(
    session: SessionDep,
    principal: CurrentPrincipal,
    page: Annotated[PageParams, Depends(page_params)],
    program: Annotated[
        ProgramCode | None,
        Query(
            description="only this programme's claims 项目: SKD 苏科贷, XB 信保基金",
            examples=["XB"],
        ),
    ] = None,
    status: Annotated[
        ClaimStatus | None,
        Query(
            description="a status of any programme's workflow 申请状态, e.g. `submitted` "
            "(waiting for the first review), `city_approved` (SKD, waiting for the "
            "province), `manager_reviewed` (XB, waiting for the committee), `returned` "
            "(with the bank for correction)",
            examples=["manager_reviewed"],
        ),
    ] = None,
    bank_code: Annotated[
        str | None,
        Query(max_length=32, description="合作银行代码 the claiming bank", examples=["CCB_JS"]),
    ] = None,
    loan_id: Annotated[
        int | None,
        Query(ge=1, le=2**63 - 1, description="贷款编号 the loan claimed", examples=[7]),
    ] = None,
    contract_no: ContractNoFilter = None,
    enterprise_credit_code: CreditCodeFilter = None,
    awaiting: Annotated[
        Literal["me"] | None,
        Query(
            description="`me`: only the claims waiting for the caller's action (role, fund "
            "and data scope) 仅列出待我办理的申请",
            examples=["me"],
        ),
    ] = None,
) -> Page[ClaimOut]:
    stmt = repo.filter_claims(
        repo.scoped_claims(session, principal),
        program=program,
        status=status,
        bank_code=bank_code,
        loan_id=loan_id,
        contract_no=contract_no,
        enterprise_credit_code=enterprise_credit_code,
        waiting_for=principal if awaiting == "me" else None,
    )
    rows, cursor = paginate(session, stmt, Claim.id, page)
    return Page(items=_views(session, list(rows)), next_cursor=cursor)


def _overdue_key(x: OverdueOut) -> str:
    return f"{x.deadline.isoformat()}|{x.claim_id:020d}|{x.stage}"


@router.get(
    "/claims/overdue",
    tags=["claims"],
    summary="Overdue steps 逾期未办 (XB-C2, XB-R1)",
    description="XB steps past their deadline as of the date: the manager's opinion (7 "
    "working days after filing), the payment (20 working days after approval) and "
    "collections due to the fund (10 working days after recovery, XB-R1). A claim returned "
    "for correction is not listed: its stage's deadline pauses until the bank resubmits. "
    "Oldest deadline first, a page at a time (`limit`, `cursor`).",
    responses=problems(*PAGE_REFUSALS),
)
def overdue(
    session: SessionDep,
    principal: CurrentPrincipal,
    today: Today,
    page: Annotated[PageParams, Depends(page_params)],
    as_of: Annotated[
        date | None,
        Query(description="the date the steps are late on 截至日期 (default: today)"),
    ] = None,
) -> Page[OverdueOut]:
    after = None
    if page.cursor is not None:
        after = decode_cursor(page.cursor, str)
        if after.count("|") != 2:
            raise InvalidCursor(
                "the cursor is not one this service issued",
                [InvalidCursor.violation("invalid cursor", "query", "cursor")],
            )
    waiting = waiting_statuses(list(program_codes()))
    stmt = repo.scoped_claims(session, principal).where(Claim.status.in_(sorted(waiting)))
    late = overdue_steps(list(session.scalars(stmt.order_by(Claim.id))), as_of or today, session)
    items = [
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
    items.sort(key=_overdue_key)
    if after is not None:
        items = [x for x in items if _overdue_key(x) > after]
    more = len(items) > page.limit
    items = items[: page.limit]
    return Page(items=items, next_cursor=encode_cursor(_overdue_key(items[-1])) if more else None)


@router.get(
    "/claims/{claim_id}",
    tags=["claims"],
    summary="One claim, with its history 代偿申请详情",
    description="The claim, its stage and who acts next, its history, documents, "
    "recoveries and returns for correction. `ETag` is its tag: send it back as "
    "`If-None-Match` (304 while unchanged) or as `If-Match` on a step (412 when someone "
    "changed the claim since).",
    response_model=ClaimOut,
    responses={**etag_responses(), **problems(NotFound)},
)
def get_claim(
    request: Request,
    response: Response,
    session: SessionDep,
    principal: CurrentPrincipal,
    claim_id: ClaimId,
    if_none_match: IfNoneMatch = None,
) -> Any:
    claim = session.scalars(
        repo.scoped_claims(session, principal).where(Claim.id == claim_id)
    ).first()
    if claim is None:
        raise NotFound(f"claim {claim_id} not found")
    view = _one(session, claim)
    tag = etag_of(view)
    if not_modified(request, tag):
        return not_modified_response(tag)
    response.headers[ETAG_HEADER] = tag
    return view


@router.post(
    "/claims/{claim_id}/documents",
    tags=["claims"],
    status_code=status.HTTP_201_CREATED,
    summary="Upload a claim document 上传申请材料 (SKD-C1, XB-C1)",
    description="multipart/form-data with `file` and `kind`. PDF, JPEG, PNG or ZIP (the "
    "content must match the type), at most the configured size; stored with "
    "its SHA-256. `Location` is the document's download.",
    responses=problems(NotFound, *service.DOCUMENT_REFUSALS, PreconditionFailed),
)
async def upload_document(
    request: Request,
    response: Response,
    session: SessionDep,
    bank: Annotated[Principal, Depends(require_roles("bank"))],
    claim_id: ClaimId,
    file: Annotated[UploadFile, File(description="the document 材料文件")],
    kind: Annotated[
        DOCUMENT_KINDS,
        Form(description="申请书 / 逾期证明 / 催收记录 / 催收方案 / 尽职情况说明 / 诉讼材料 …"),
    ],
    if_match: IfMatch = None,
) -> DocumentOut:
    settings = request.app.state.settings
    content = await file.read(settings.max_upload_bytes + 1)
    _precondition(request, session, bank, claim_id)
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
    set_location(request, response, "download_document", claim_id=claim_id, document_id=doc.id)
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
    summary="Download a claim document 下载申请材料",
    description="The document's bytes as uploaded. `ETag` is its SHA-256: with "
    "`If-None-Match` naming it the answer is 304 without a body.",
    response_class=Response,
    responses={
        200: {
            "content": {"application/octet-stream": {}},
            "headers": etag_responses()[200]["headers"],
        },
        304: etag_responses()[304],
        **problems(NotFound),
    },
)
def download_document(
    request: Request,
    session: SessionDep,
    principal: CurrentPrincipal,
    claim_id: ClaimId,
    document_id: Annotated[
        int,
        Path(ge=1, le=2**63 - 1, description="the document's id 材料编号", examples=[1]),
    ],
    if_none_match: IfNoneMatch = None,
) -> Response:
    claim = session.scalars(
        repo.scoped_claims(session, principal).where(Claim.id == claim_id)
    ).first()
    doc = repo.document(session, claim_id, document_id) if claim is not None else None
    if doc is None:
        raise NotFound(f"document {document_id} of claim {claim_id} not found")
    tag = f'"{doc.sha256}"'
    if not_modified(request, tag):
        return not_modified_response(tag)
    return Response(
        content=doc.content,
        media_type=doc.content_type,
        headers={
            "Content-Disposition": f"attachment; filename*=UTF-8''{quote(doc.filename)}",
            ETAG_HEADER: tag,
            "X-Content-SHA256": doc.sha256,
        },
    )


# --- the stages ----------------------------------------------------------------------
@router.post(
    "/claims/{claim_id}/city-review",
    tags=["claims"],
    summary="City first review 市县初审 (SKD-C1)",
    description="By a city reviewer of the enterprise's region. Approval needs the "
    "application documents; a rejection needs a reason. Maker-checker (SKD-C3). On an "
    "XB claim: 409 `stage_not_in_programme`.",
    responses=_changes(*_stage_refusals("city_review")),
)
def city_review(
    request: Request,
    response: Response,
    session: SessionDep,
    reviewer: Annotated[Principal, Depends(require_roles("city_reviewer"))],
    claim_id: ClaimId,
    body: Annotated[ReviewIn, Body(openapi_examples=REVIEW_EXAMPLES)],
    if_match: IfMatch = None,
) -> ClaimOut:
    return _act(request, session, reviewer, claim_id, "city_review", _review(body), response)


@router.post(
    "/claims/{claim_id}/province-review",
    tags=["claims"],
    summary="Province second review 省级复审 (SKD-C1, Q1, Q2)",
    description="Approval applies the bank's 3 % compensation-rate cap (SKD-Q1; exempt in "
    "the first cooperation year up to 200,000,000 of principal, SKD-Q2). A "
    'capped approval says `capped_by: "SKD-Q1"` and shows what the bank bears. '
    "The approved amount is reserved in the ledger.",
    responses=_changes(*_stage_refusals("province_review")),
)
def province_review(
    request: Request,
    response: Response,
    session: SessionDep,
    reviewer: Annotated[Principal, Depends(require_roles("province_reviewer"))],
    claim_id: ClaimId,
    body: Annotated[ReviewIn, Body(openapi_examples=REVIEW_EXAMPLES)],
    if_match: IfMatch = None,
) -> ClaimOut:
    return _act(request, session, reviewer, claim_id, "province_review", _review(body), response)


@router.post(
    "/claims/{claim_id}/city-payment",
    tags=["claims"],
    summary="City fund pays the bank 市县资金拨付 (SKD-C1)",
    description="By the manager of the loan's city fund: the whole approved fund share "
    "(province + city parts) goes to the bank. Refused when the fund's cash is short.",
    responses=_changes(*_stage_refusals("city_payment")),
)
def city_payment(
    request: Request,
    response: Response,
    session: SessionDep,
    manager: Annotated[Principal, Depends(require_roles("fund_manager"))],
    claim_id: ClaimId,
    body: Annotated[PaymentIn, Body(openapi_examples=PAYMENT_EXAMPLES)],
    if_match: IfMatch = None,
) -> ClaimOut:
    return _act(request, session, manager, claim_id, "city_payment", _payment(body), response)


@router.post(
    "/claims/{claim_id}/province-reimbursement",
    tags=["claims"],
    summary="Province reimburses the city fund 省级资金归垫 (SKD-C1)",
    description="By the province fund's manager: the province part moves to the city fund.",
    responses=_changes(*_stage_refusals("province_reimbursement")),
)
def province_reimbursement(
    request: Request,
    response: Response,
    session: SessionDep,
    manager: Annotated[Principal, Depends(require_roles("fund_manager"))],
    claim_id: ClaimId,
    body: Annotated[PaymentIn, Body(openapi_examples=PAYMENT_EXAMPLES)],
    if_match: IfMatch = None,
) -> ClaimOut:
    return _act(
        request, session, manager, claim_id, "province_reimbursement", _payment(body), response
    )


@router.post(
    "/claims/{claim_id}/manager-review",
    tags=["claims"],
    summary="XB due-diligence review 尽职审查 (XB-C2, N1–N9)",
    description="By the XB fund manager within 7 working days of the claim: findings "
    "(XB-N1…N9; any finding means no compensation, so findings go with `reject`) and the "
    "written opinion. Needs the application, collection plan and due-diligence statement "
    "(XB-C1). On an SKD claim: 409 `stage_not_in_programme`.",
    responses=_changes(*_stage_refusals("manager_review")),
)
def manager_review(
    request: Request,
    response: Response,
    session: SessionDep,
    manager: Annotated[Principal, Depends(require_roles("fund_manager"))],
    claim_id: ClaimId,
    body: Annotated[ManagerReviewIn, Body(openapi_examples=MANAGER_REVIEW_EXAMPLES)],
    if_match: IfMatch = None,
) -> ClaimOut:
    step = StepInput(
        approve=body.decision == "approve",
        findings=tuple(body.findings),
        opinion=body.opinion,
    )
    return _act(request, session, manager, claim_id, "manager_review", step, response)


@router.post(
    "/claims/{claim_id}/committee-decision",
    tags=["claims"],
    summary="XB committee decision 补偿会审 (XB-C2, Q1, Q2)",
    description="Approval pays the fund's share up to the bank's annual limit under the "
    "claim's sub-fund (XB-Q1; base 助企成长贷: 5 % of the bank's base sub-fund principal "
    "outstanding at the last quarter end, as stored by the XB quarter-end evaluation; "
    "other sub-funds by their own settings); the excess is the bank's. At 50 % of the "
    "limit the bank is warned, at 100 % its agreement with that sub-fund is suspended; at "
    "50 % of the fund's capital all new business stops (XB-Q2). A claim the manager's "
    "review found barred (XB-N) is not approved.",
    responses=_changes(*_stage_refusals("committee_decision")),
)
def committee_decision(
    request: Request,
    response: Response,
    session: SessionDep,
    committee: Annotated[Principal, Depends(require_roles("committee"))],
    claim_id: ClaimId,
    body: Annotated[CommitteeIn, Body(openapi_examples=COMMITTEE_EXAMPLES)],
    if_match: IfMatch = None,
) -> ClaimOut:
    step = StepInput(approve=body.decision == "approve", comment=body.comment)
    return _act(request, session, committee, claim_id, "committee_decision", step, response)


@router.post(
    "/claims/{claim_id}/payment",
    tags=["claims"],
    summary="XB payment 补偿资金支付 (XB-C2)",
    description="By the XB fund manager (not the one who reviewed), within 20 working days "
    "of the approval, from the pool's cash.",
    responses=_changes(*_stage_refusals("payment")),
)
def xb_payment(
    request: Request,
    response: Response,
    session: SessionDep,
    manager: Annotated[Principal, Depends(require_roles("fund_manager"))],
    claim_id: ClaimId,
    body: Annotated[PaymentIn, Body(openapi_examples=PAYMENT_EXAMPLES)],
    if_match: IfMatch = None,
) -> ClaimOut:
    return _act(request, session, manager, claim_id, "payment", _payment(body), response)


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
    response: Response,
) -> ClaimOut:
    """Act on the stage and answer with the claim as `GET /claims/{id}` will show it once
    this call commits, with that `ETag`. The view is read after the step's other writes
    and before its ledger entries are posted (`service.act_and_view`), so none of its
    reads waits under the ledger's chain head; the entries' ids go into the history rows
    that name them in the view as in the database."""
    clock = get_clock(request)
    _precondition(request, session, actor, claim_id)
    _, view, posted = service.act_and_view(
        session,
        claim_id=claim_id,
        stage=stage,
        step=step,
        actor=actor,
        today=clock.today(),
        now=clock.now(),
        view=lambda: _read_back(session, claim_id),
    )
    if posted:  # written last, so last in the history (which is in the rows' order)
        view = view.model_copy(
            update={
                "history": [
                    *view.history,
                    *(_transition_out(t, actor.username, []) for t in posted),
                ]
            }
        )
    response.headers[ETAG_HEADER] = etag_of(view)
    return view


@router.post(
    "/claims/{claim_id}/steps/{stage}",
    tags=["claims"],
    summary="Act on a stage of any programme 办理审核/拨付环节",
    description="The stage endpoint every programme has: `stage` names one of the "
    "claim's programme's stages (a claim's `next_step` names the one it waits at; another "
    "programme's stage is 409 `stage_not_in_programme`). A review stage takes `decision` "
    "(and `comment`, required to reject; an XB due-diligence review its `findings` and "
    "`opinion`); a payment stage takes `paid_on`. The programme-specific endpoints "
    "(`/city-review`, `/committee-decision`, `/payment` …) do the same for their stage. "
    "The stage's role, fund and maker-checker (SKD-C3) apply.",
    responses=_changes(*_stage_refusals()),
)
def act_on_stage(
    request: Request,
    response: Response,
    session: SessionDep,
    actor: CurrentPrincipal,
    claim_id: ClaimId,
    stage: Annotated[
        str,
        Path(
            min_length=1,
            max_length=40,
            pattern=r"^[a-z_]+$",
            description="the stage 办理环节: SKD `city_review`, `province_review`, "
            "`city_payment`, `province_reimbursement`; XB `manager_review`, "
            "`committee_decision`, `payment`",
            examples=["city_review"],
        ),
    ],
    body: Annotated[StepIn, Body(openapi_examples=STEP_EXAMPLES)],
    if_match: IfMatch = None,
) -> ClaimOut:
    step = StepInput(
        approve=None if body.decision is None else body.decision == "approve",
        comment=body.comment,
        paid_on=body.paid_on,
        findings=tuple(body.findings),
        opinion=body.opinion,
        ineligible_at_grant=body.ineligible_at_grant,
    )
    return _act(request, session, actor, claim_id, stage, step, response)


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
    responses=_changes(*steps.GUARD_REFUSALS, *returns.RETURN_REFUSALS),
)
def return_claim(
    request: Request,
    response: Response,
    session: SessionDep,
    reviewer: Annotated[
        Principal,
        Depends(require_roles("city_reviewer", "province_reviewer", "fund_manager", "committee")),
    ],
    claim_id: ClaimId,
    body: Annotated[ReturnIn, Body(openapi_examples=RETURN_EXAMPLES)],
    if_match: IfMatch = None,
) -> ClaimOut:
    clock = get_clock(request)
    _precondition(request, session, reviewer, claim_id)
    returns.return_for_correction(
        session,
        claim_id=claim_id,
        deficiencies=[returns.Deficiency(d.code, d.detail) for d in body.deficiencies],
        comment=body.comment,
        actor=reviewer,
        today=clock.today(),
        now=clock.now(),
    )
    return _current(session, claim_id, response)


@router.post(
    "/claims/{claim_id}/resubmission",
    tags=["claims"],
    summary="Resubmit after correction 补正后重新提交 (SKD-C1, XB-C2)",
    description="By the claiming bank, after correcting what the return listed (documents "
    "may be uploaded while the claim is returned): the claim goes back to the stage that "
    "returned it, and a paused deadline continues from the resubmission date with the "
    "working days it had left.",
    responses=_changes(NotFound, *returns.RESUBMISSION_REFUSALS, steps.InvalidTransition),
)
def resubmit_claim(
    request: Request,
    response: Response,
    session: SessionDep,
    bank: Annotated[Principal, Depends(require_roles("bank"))],
    claim_id: ClaimId,
    body: Annotated[ResubmissionIn, Body(openapi_examples=RESUBMISSION_EXAMPLES)],
    if_match: IfMatch = None,
) -> ClaimOut:
    clock = get_clock(request)
    _precondition(request, session, bank, claim_id)
    returns.resubmit(
        session,
        claim_id=claim_id,
        comment=body.comment,
        actor=bank,
        today=clock.today(),
        now=clock.now(),
    )
    return _current(session, claim_id, response)


@router.post(
    "/claims/{claim_id}/recoveries",
    tags=["claims"],
    status_code=status.HTTP_201_CREATED,
    summary="Report a recovery 追偿回款 (SKD-R1, XB-R1)",
    description="The bank reports money recovered after compensation with its actual "
    "litigation costs. The net, at the original compensation ratio (paid ÷ loss), "
    "goes to the funds (SKD: the city fund, which passes the province's part on; XB: due "
    "to the fund within 10 working days); cumulative returns never exceed the "
    "compensation paid. Every problem of the report is listed at once. `Location` names "
    "the claim, which lists its recoveries.",
    responses=problems(NotFound, *service.RECOVERY_REFUSALS, PreconditionFailed),
)
def record_recovery(
    request: Request,
    response: Response,
    session: SessionDep,
    bank: Annotated[Principal, Depends(require_roles("bank"))],
    claim_id: ClaimId,
    body: Annotated[RecoveryIn, Body(openapi_examples=RECOVERY_EXAMPLES)],
    if_match: IfMatch = None,
) -> RecoveryOut:
    clock = get_clock(request)
    _precondition(request, session, bank, claim_id)
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
    set_location(request, response, "get_claim", claim_id=claim_id)
    return _recovery_out(recovery)


_AFTER_PAYMENT = (NotFound, NotOfferedByProgramme, PreconditionFailed)


@router.post(
    "/claims/{claim_id}/abandonment",
    tags=["claims"],
    status_code=status.HTTP_201_CREATED,
    summary="XB refund for abandoned collection 放弃催收退还补偿 (XB-R2)",
    description="By the XB fund manager: the bank abandoned collection without good reason "
    "and refunds the claim's compensation not yet returned (a receivable until received). "
    "On an SKD claim: 409 `not_offered_by_programme`. `Location` names the claim.",
    responses=problems(*_AFTER_PAYMENT, *_operation_refusals("clawback")),
)
def abandonment(
    request: Request,
    response: Response,
    session: SessionDep,
    manager: Annotated[Principal, Depends(require_roles("fund_manager"))],
    claim_id: ClaimId,
    body: Annotated[ClawbackIn, Body(openapi_examples=ABANDONMENT_EXAMPLES)],
    if_match: IfMatch = None,
) -> ClawbackOut:
    return _clawback(request, response, session, manager, claim_id, body, "abandonment")


@router.post(
    "/claims/{claim_id}/fraud-refund",
    tags=["claims"],
    status_code=status.HTTP_201_CREATED,
    summary="XB full refund for fraud or NPL substitution 弄虚作假/置换 (XB-R2)",
    description="By the committee: the bank refunds the compensation at once and its XB "
    "agreements are terminated. On an SKD claim: 409 `not_offered_by_programme`. "
    "`Location` names the claim.",
    responses=problems(*_AFTER_PAYMENT, *_operation_refusals("clawback"), steps.InvalidTransition),
)
def fraud_refund(
    request: Request,
    response: Response,
    session: SessionDep,
    committee: Annotated[Principal, Depends(require_roles("committee"))],
    claim_id: ClaimId,
    body: Annotated[ClawbackIn, Body(openapi_examples=FRAUD_EXAMPLES)],
    if_match: IfMatch = None,
) -> ClawbackOut:
    return _clawback(request, response, session, committee, claim_id, body, "fraud")


def _clawback(
    request: Request,
    response: Response,
    session: Session,
    actor: Principal,
    claim_id: int,
    body: ClawbackIn,
    kind: str,
) -> ClawbackOut:
    clock = get_clock(request)
    _precondition(request, session, actor, claim_id)
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
    set_location(request, response, "get_claim", claim_id=claim_id)
    return _clawback_out(row)


@router.post(
    "/claims/{claim_id}/receipts",
    tags=["claims"],
    status_code=status.HTTP_201_CREATED,
    summary="XB money received from the bank 收到银行返还款 (XB-R1, R2)",
    description="By the XB fund manager: settles the claim's receivable (distributed "
    "collections and refunds). On an SKD claim: 409 `not_offered_by_programme`. "
    "`Location` names the claim.",
    responses=problems(*_AFTER_PAYMENT, *_operation_refusals("receipt")),
)
def receipt(
    request: Request,
    response: Response,
    session: SessionDep,
    manager: Annotated[Principal, Depends(require_roles("fund_manager"))],
    claim_id: ClaimId,
    body: Annotated[ReceiptIn, Body(openapi_examples=RECEIPT_EXAMPLES)],
    if_match: IfMatch = None,
) -> ReceiptOut:
    clock = get_clock(request)
    _precondition(request, session, manager, claim_id)
    row = service.receive(
        session,
        claim_id=claim_id,
        received_on=body.received_on,
        amount_fen=body.amount,
        actor=manager,
        today=clock.today(),
        now=clock.now(),
    )
    set_location(request, response, "get_claim", claim_id=claim_id)
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
    responses=problems(NotFound, NotOfferedByProgramme),
)
def exposure(
    session: SessionDep,
    principal: CurrentPrincipal,
    today: Today,
    bank_code: Annotated[
        str,
        Path(min_length=1, max_length=32, description="合作银行代码", examples=["ICBC_JS"]),
    ],
    program: Annotated[
        ProgramCode,
        Query(description="the programme 项目 (SKD-Q1 cap, or XB-Q1 limits)", examples=["SKD"]),
    ] = DEFAULT_PROGRAM,
    as_of: AsOf = None,
) -> ExposureOut | XbExposureOut:
    on = as_of or today
    if session.get(Bank, bank_code) is None or not principal.can_see_bank(bank_code):
        raise NotFound(f"bank {bank_code} not found")
    return get_program(program).exposure(session, bank_code, on=on)  # type: ignore[return-value]
