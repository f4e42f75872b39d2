"""Loans (贷款): filing one or a batch, the list and one loan, repayments, arrears reports,
renewals and the annual quota. Every route declares the refusals its own code answers
(`responses=problems(...)`); a filing's are every programme's filing rules."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Header, Path, Query, Request, Response, status
from fastapi.openapi.models import Example
from fastapi.responses import JSONResponse
from sqlalchemy.orm import Session

from app.auth.principal import CurrentPrincipal, Principal, require_roles
from app.db import get_session
from app.errors import AlreadyExists, AppError, NotFound, problems
from app.kit.calendar import CalendarUnavailable
from app.kit.clock import get_clock, get_today
from app.kit.dates import AsOf
from app.kit.etag import (
    IF_MATCH_HEADER,
    IfMatch,
    IfNoneMatch,
    PreconditionFailed,
    check_if_match,
    etag_of,
    etag_responses,
    not_modified,
    not_modified_response,
)
from app.kit.location import set_location
from app.kit.pagination import (
    MAX_BIGINT,
    PAGE_REFUSALS,
    ContractNoFilter,
    CreditCodeFilter,
    Page,
    PageParams,
    page_params,
    paginate,
)
from app.kit.statemachine import InvalidTransition
from app.kit.uow import TransactionalRoute
from app.loans import arrears, jobs, schedule, service, servicing
from app.loans import repository as repo
from app.loans.arrears import Instalment
from app.loans.schedule import SCHEDULE_REFUSALS
from app.loans.schemas import (
    RENEWAL_EXAMPLE,
    SKD_FILING_EXAMPLE,
    SKD_SCHEDULE_EXAMPLE,
    XB_CREDIT_FILING_EXAMPLE,
    XB_GUARANTEED_FILING_EXAMPLE,
    ArrearsOut,
    BankViewOut,
    BatchItemResult,
    BatchJobOut,
    DelinquencyIn,
    DelinquencyOut,
    InstalmentOut,
    LoanBatchIn,
    LoanBatchOut,
    LoanDetail,
    LoanEventOut,
    LoanFile,
    LoanOut,
    LoanRenewal,
    LoanTransitionOut,
    LoanView,
    QuotaIn,
    QuotaOut,
    RepaymentIn,
)
from app.loans.service import UnknownEnterprise
from app.loans.servicing import (
    DELINQUENCY_REFUSALS,
    REPAYMENT_REFUSALS,
    LoanNotActive,
    LoanNotOwing,
    RenewalBeforeLoan,
)
from app.loans.status import LoanStatus
from app.models import BatchJob, BatchJobItem, Loan, ProgramQuota
from app.programs.base import declared_refusals, get_program
from app.programs.fields import ProgramCode, QuotaProgramCode

router = APIRouter(route_class=TransactionalRoute)
Today = Annotated[date, Depends(get_today)]
SessionDep = Annotated[Session, Depends(get_session)]
Bank = Annotated[Principal, Depends(require_roles("bank"))]
LoanId = Annotated[
    int,
    Path(
        ge=1,
        le=MAX_BIGINT,
        description="the loan's id (`id` of `POST /loans` or `GET /loans`) 贷款编号",
        examples=[1],
    ),
]
Year = Annotated[int, Path(ge=2000, le=2100, description="the calendar year 年度", examples=[2026])]

# what a filing can be refused for, whichever the programme: the request's own problems
# (unknown enterprise, contract already filed, its schedule, a deadline in a year the
# calendar does not cover), then every registered programme's filing rules
FILING_REFUSALS: tuple[type[AppError], ...] = (
    UnknownEnterprise,
    AlreadyExists,
    CalendarUnavailable,
    *SCHEDULE_REFUSALS,
    *declared_refusals("file_loan"),
)

FILING_EXAMPLES: dict[str, Example] = {
    "skd": Example(
        summary="SKD credit loan 苏科贷信用贷款 (demo user bank_ccb)",
        description="苏州同创工业软件有限公司, in the SKD library, its earlier loan repaid: "
        "SKD1 band, credit, the actual controller's guarantee, no fees, rate ≤ LPR + 50 bp. "
        "Send it as `bank_ccb` within 5 working days of `disbursed_on` (SKD-F2); a second "
        "filing for the enterprise is refused while this one is active (SKD-F3).",
        value=SKD_FILING_EXAMPLE,
    ),
    "skd_schedule": Example(
        summary="SKD loan with a repayment schedule 附还款计划 (bank_ccb)",
        description="The SKD example with quarterly instalments (M-6), instead of it (the "
        "enterprise has one SKD loan at a time, SKD-F3): principal sums to `principal`, "
        "each due after `disbursed_on` and by `maturity_on`.",
        value=SKD_SCHEDULE_EXAMPLE,
    ),
    "xb_credit": Example(
        summary="XB credit loan 信保基金信用贷款 (demo user bank_lyg)",
        description="An enterprise of 连云区 (XB-E1), in business since 2018 (XB-N1); rate ≤ "
        "LPR + 80 bp (XB-P1), no fees. Send it as `bank_lyg` within 10 working days of "
        "`disbursed_on` (later: accepted as not compensable, XB-N7).",
        value=XB_CREDIT_FILING_EXAMPLE,
    ),
    "xb_guaranteed": Example(
        summary="XB guaranteed loan 信保基金保证贷款, with the consent letter (bank_lyg)",
        description="Guaranteed by 连云港信用融资担保有限公司 with its 同意担保确认函 dated before "
        "the disbursement (XB-F2); rate ≤ LPR + 30 bp, guarantee fee ≤ 0.5 % (XB-P1).",
        value=XB_GUARANTEED_FILING_EXAMPLE,
    ),
}


def _created(request: Request, response: Response, loan_id: int) -> None:
    set_location(request, response, "get_loan", loan_id=loan_id)


@router.get(
    "/loans",
    tags=["loans"],
    summary="List loans 贷款列表 (scoped to the caller)",
    description="The loans the caller may see (a bank its own, a city reviewer its "
    "region's enterprises', others all), oldest first, with their position as of "
    "`as_of`. Filters: `program`, `bank_code`, `status` (every loan status, 422 naming "
    "them for another), `contract_no` (exact: a bank finds a filing whose answer it did "
    "not receive) and `enterprise_credit_code`.",
    responses=problems(*PAGE_REFUSALS),
)
def list_loans(
    session: SessionDep,
    principal: CurrentPrincipal,
    today: Today,
    page: Annotated[PageParams, Depends(page_params)],
    program: Annotated[
        ProgramCode | None, Query(description="only this programme's loans", examples=["SKD"])
    ] = None,
    bank_code: Annotated[
        str | None,
        Query(max_length=32, description="only this bank's loans 银行代码", examples=["JSB"]),
    ] = None,
    status: Annotated[
        LoanStatus | None,
        Query(description="only loans in this status 贷款状态", examples=["active"]),
    ] = None,
    contract_no: ContractNoFilter = None,
    enterprise_credit_code: CreditCodeFilter = None,
    as_of: AsOf = None,
) -> Page[LoanView]:
    stmt = repo.filter_loans(
        repo.scoped_loans(principal),
        program=program,
        bank_code=bank_code,
        status=status,
        contract_no=contract_no,
        enterprise_credit_code=enterprise_credit_code,
    )
    rows, cursor = paginate(session, stmt, Loan.id, page)
    return Page(items=_views(session, list(rows), as_of or today), next_cursor=cursor)


@router.post(
    "/loans",
    tags=["loans"],
    status_code=status.HTTP_201_CREATED,
    summary="File a loan 贷款备案 (SKD-E1, P1, P2, F1–F6; XB-E1, E2, N1, N2, P1, S1, F0, F2)",
    description="A partner bank files a disbursed loan. Every filing rule is checked: a "
    "refusal (422) lists each failed rule in `errors` with its SPEC id, and its `code` is "
    "the first failure's (`errors[0].code`), however many failed. An accepted loan's "
    "guarantee exposure is posted to the funds' memo accounts; `Location` is the loan. "
    "After a timeout, look the filing up with `GET /loans?contract_no=` (or retry with "
    "the same `Idempotency-Key`).",
    responses=problems(*FILING_REFUSALS),
)
def file_loan(
    request: Request,
    response: Response,
    session: SessionDep,
    bank: Bank,
    body: Annotated[LoanFile, Body(openapi_examples=FILING_EXAMPLES)],
) -> LoanView:
    clock = get_clock(request)
    loan = service.file_loan(
        session, data=body, principal=bank, today=clock.today(), now=clock.now()
    )
    _created(request, response, loan.id)
    return _views(session, [loan], clock.today(), new=schedule.plan(body))[0]


BATCH_DESCRIPTION = (
    "Each item is checked exactly like `POST /loans`, in order; the answer lists every item "
    "as accepted (with its loan id) or refused (with every failed rule, and the `code` "
    "`POST /loans` would answer: the first failure's). Accepted items are committed "
    "together; a refused item writes nothing. The batch is refused whole (422 "
    "`annual_quota_exceeded`) when the accepted items no longer fit in the year's quota "
    "as it is counted at commit (SKD-F6). Send an `Idempotency-Key`: a retried batch "
    "returns the first answer.\n\n"
    "**As a job** (`Prefer: respond-async`, for large batches): 202 Accepted at once "
    "with the job (`Location`: `GET /loans/batch/jobs/{job_id}`, `Preference-Applied: "
    "respond-async`). A worker files the items in chunks (1,000 items by default), in "
    "order, each chunk in its own transaction: a job does **not** commit all its "
    "accepted items together — each chunk's loans are committed when the chunk is, "
    "later chunks see them, and a job that fails keeps the chunks before. When the "
    "quota counted at a chunk's commit no longer fits, that chunk's accepted items are "
    "refused (`annual_quota_exceeded`) and the job goes on. Otherwise every item's "
    "result is exactly what the synchronous answer lists "
    "(`GET /loans/batch/jobs/{job_id}/results`). An `Idempotency-Key` returns the same "
    "job."
)


def _prefers_async(prefer: str | None) -> bool:
    """Whether a `Prefer` header (RFC 7240) asks for `respond-async`."""
    if not prefer:
        return False
    return any(
        part.split(";", 1)[0].split("=", 1)[0].strip().lower() == "respond-async"
        for part in prefer.split(",")
    )


def _job_out(request: Request, job: BatchJob) -> BatchJobOut:
    return BatchJobOut(
        id=job.id,
        status=job.status,
        bank_code=job.bank_code,
        submitted_by_id=job.submitted_by_id,
        business_date=job.business_date,
        total=job.total,
        done=job.done,
        accepted=job.accepted,
        refused=job.refused,
        created_at=job.created_at,
        started_at=job.started_at,
        finished_at=job.finished_at,
        error=job.error,
        results_url=str(request.app.url_path_for("list_batch_job_results", job_id=str(job.id))),
    )


@router.post(
    "/loans/batch",
    tags=["loans"],
    summary="File up to 10,000 loans at once 批量备案 (or as a job: Prefer: respond-async)",
    description=BATCH_DESCRIPTION,
    response_model=LoanBatchOut,
    responses={
        **problems(*declared_refusals("quota")),
        202: {
            "model": BatchJobOut,
            "description": "with `Prefer: respond-async`: the job, queued (`Location` is the "
            "job, `Preference-Applied: respond-async`)",
        },
    },
)
def file_loans_batch(
    request: Request,
    session: SessionDep,
    bank: Bank,
    body: LoanBatchIn,
    prefer: Annotated[
        str | None,
        Header(
            description="`respond-async`: file the batch as a job and answer 202 at once",
            examples=["respond-async"],
        ),
    ] = None,
) -> LoanBatchOut | Response:
    clock = get_clock(request)
    if _prefers_async(prefer):
        job = jobs.submit(
            session, items=body.items, principal=bank, today=clock.today(), now=clock.now()
        )
        worker = getattr(request.app.state, "batch_jobs", None)
        if worker is not None:
            worker.wake_after_commit(session)
        out = _job_out(request, job)
        return JSONResponse(
            out.model_dump(mode="json"),
            status_code=status.HTTP_202_ACCEPTED,
            headers={
                "Location": str(request.app.url_path_for("get_batch_job", job_id=str(job.id))),
                "Preference-Applied": "respond-async",
            },
        )
    results = service.file_batch(
        session, items=body.items, principal=bank, today=clock.today(), now=clock.now()
    )
    accepted = sum(1 for r in results if r.status == "accepted")
    return LoanBatchOut(accepted=accepted, refused=len(results) - accepted, results=results)


JobId = Annotated[
    int,
    Path(
        ge=1,
        le=MAX_BIGINT,
        description="the job's id (`id` of the 202 answer of `POST /loans/batch`)",
        examples=[1],
    ),
]


def _visible_job(session: Session, principal: Principal, job_id: int) -> BatchJob:
    job = session.get(BatchJob, job_id)
    if job is None or not jobs.visible(job, principal):
        raise NotFound(f"no batch job {job_id}")
    return job


@router.get(
    "/loans/batch/jobs/{job_id}",
    tags=["loans"],
    summary="A batch filed as a job 批量备案任务 (progress)",
    description="The job's status (`queued`, `running`, `succeeded`, `failed` with its "
    "`error`), its items `total`, `done` (their chunks committed), `accepted` and "
    "`refused`, and when it was created, started and finished; `results_url` lists the "
    "per-item results of the items done. The submitting bank's users and the "
    "administrator see it; anyone else gets 404.",
    responses=problems(NotFound),
)
def get_batch_job(
    request: Request, session: SessionDep, principal: CurrentPrincipal, job_id: JobId
) -> BatchJobOut:
    return _job_out(request, _visible_job(session, principal, job_id))


@router.get(
    "/loans/batch/jobs/{job_id}/results",
    tags=["loans"],
    summary="A batch job's per-item results 批量备案任务结果 (paginated)",
    description="The results of the items done so far, in the batch's order, each exactly "
    "as the synchronous `POST /loans/batch` lists it (accepted with the loan id, or "
    "refused with every failed rule). Paginated (`limit` up to 500).",
    responses=problems(NotFound, *PAGE_REFUSALS),
)
def list_batch_job_results(
    session: SessionDep,
    principal: CurrentPrincipal,
    job_id: JobId,
    page: Annotated[PageParams, Depends(page_params)],
) -> Page[BatchItemResult]:
    _visible_job(session, principal, job_id)
    rows, cursor = paginate(session, jobs.results_stmt(job_id), BatchJobItem.idx, page)
    return Page(items=[BatchItemResult.model_validate(r.result) for r in rows], next_cursor=cursor)


@router.get(
    "/programs/{program}/quotas/{year}",
    tags=["loans"],
    summary="Annual issuance quota 年度投放额度 (SKD-F6)",
    description="The year's quota of a programme that has one (SKD): the amount, the "
    "principal filed against it with a disbursement in the year, and what remains. 404 "
    "while none is set for the year.",
    responses=problems(NotFound),
)
def get_quota(
    session: SessionDep,
    _: CurrentPrincipal,
    program: Annotated[
        QuotaProgramCode, Path(description="a programme with a quota", examples=["SKD"])
    ],
    year: Year,
) -> QuotaOut:
    quota = repo.quota(session, program, year)
    if quota is None:
        raise NotFound(f"no {program} quota is set for {year}")
    return _quota_out(session, quota)


@router.put(
    "/programs/{program}/quotas/{year}",
    tags=["loans"],
    summary="Set the annual issuance quota 设定年度投放额度 (SKD-F6)",
    description="The province reviewer sets (or changes) the year's quota; filings are "
    "checked against it, and counted again when they commit.",
)
def set_quota(
    session: SessionDep,
    reviewer: Annotated[Principal, Depends(require_roles("province_reviewer"))],
    program: Annotated[
        QuotaProgramCode, Path(description="a programme with a quota", examples=["SKD"])
    ],
    year: Year,
    body: QuotaIn,
) -> QuotaOut:
    quota = service.set_quota(
        session, program=program, year=year, amount_fen=body.amount, actor=reviewer
    )
    return _quota_out(session, quota)


def _quota_out(session: Session, quota: ProgramQuota) -> QuotaOut:
    used = quota.used_fen
    return QuotaOut(
        program=quota.program,
        year=quota.year,
        amount=quota.amount_fen,
        used=used,
        remaining=quota.amount_fen - used,
    )


@router.get(
    "/loans/{loan_id}",
    tags=["loans"],
    summary="One loan 贷款详情",
    description="The loan as of `as_of` (default today): its position, schedule, arrears "
    "reports and history. `ETag` is a strong tag of this representation: send it as "
    "`If-None-Match` to get 304 while nothing changed, or as `If-Match` on a repayment, "
    "arrears report or renewal to be refused (412) if the loan changed since you read it "
    "(compare with a read without `as_of`: the tag of today's view).",
    response_model=LoanDetail,
    responses={**etag_responses(), **problems(NotFound)},
)
def get_loan(
    request: Request,
    response: Response,
    session: SessionDep,
    principal: CurrentPrincipal,
    today: Today,
    loan_id: LoanId,
    as_of: AsOf = None,
    if_none_match: IfNoneMatch = None,
) -> LoanDetail | Response:
    loan = session.scalars(repo.scoped_loans(principal).where(Loan.id == loan_id)).first()
    if loan is None:
        raise NotFound(f"loan {loan_id} not found")
    detail = _detail(session, loan, as_of or today)
    etag = etag_of(detail)
    if not_modified(request, etag):
        return not_modified_response(etag)
    response.headers["ETag"] = etag
    return detail


def _detail(session: Session, loan: Loan, on: date) -> LoanDetail:
    facts = arrears.facts_of(session, [loan.id], on)  # the position's and the schedule's
    view = _views(session, [loan], on, facts=facts)[0]
    events = [LoanEventOut.model_validate(e) for e in repo.events(session, loan.id)]
    changes = [LoanTransitionOut.model_validate(t) for t in repo.transitions(session, loan.id)]
    reports = [DelinquencyOut.model_validate(r) for r in repo.delinquency_reports(session, loan.id)]
    return LoanDetail(
        **view.model_dump(),
        history=events,
        status_history=changes,
        schedule=_schedule(loan, on, facts),
        delinquency_reports=reports,
    )


def _unchanged_since_read(
    request: Request, session: Session, actor: Principal, loan_id: int, today: date
) -> None:
    """`If-Match`: refuse (412) unless the loan, locked, is still what `GET
    /loans/{loan_id}` answered with that `ETag` (today's view); without the header, go on."""
    if request.headers.get(IF_MATCH_HEADER) is None:
        return
    loan = repo.loan_for_update(session, loan_id)
    if loan is None or not actor.can_see_bank(loan.bank_code):
        raise NotFound(f"loan {loan_id} not found")
    check_if_match(request, etag_of(_detail(session, loan, today)))


IF_MATCH_NOTE = (
    " With `If-Match` (the `ETag` of `GET /loans/{loan_id}`), refused with 412 "
    "`precondition_failed` if the loan changed since it was read."
)


@router.post(
    "/loans/{loan_id}/repayments",
    tags=["loans"],
    status_code=status.HTTP_201_CREATED,
    summary="Report a repayment of principal and/or interest 还款",
    description="Principal and interest paid on a date, as the bank's core system booked "
    "them. Each settles the earliest instalments of the schedule first (SPEC M-6); "
    "principal lowers the funds' guarantee exposure and, when the last of it is paid, "
    "closes the loan as `repaid`. Interest is at most the schedule's interest unpaid. "
    "Every problem is listed at once. `Location` is the loan." + IF_MATCH_NOTE,
    responses=problems(NotFound, LoanNotActive, PreconditionFailed, *REPAYMENT_REFUSALS),
)
def report_repayment(
    request: Request,
    response: Response,
    session: SessionDep,
    bank: Bank,
    loan_id: LoanId,
    body: RepaymentIn,
    if_match: IfMatch = None,
) -> LoanView:
    clock = get_clock(request)
    _unchanged_since_read(request, session, bank, loan_id, clock.today())
    loan = servicing.repay(
        session,
        loan_id=loan_id,
        paid_on=body.paid_on,
        principal_fen=body.principal,
        interest_fen=body.interest,
        actor=bank,
        today=clock.today(),
        now=clock.now(),
    )
    _created(request, response, loan.id)
    return _views(session, [loan], clock.today())[0]


DELINQUENCY_EXAMPLES: dict[str, Example] = {
    "in_arrears": Example(
        summary="Interest unpaid 欠息 (demo user bank_jsb, loan 1)",
        value=DelinquencyIn.model_json_schema()["examples"][0],
    ),
    "current": Example(
        summary="Nothing overdue 正常 (bank_jsb, loan 1)",
        value={
            "as_of": "2026-11-30",
            "overdue_since": None,
            "principal_overdue": "0.00",
            "interest_overdue": "0.00",
            "outstanding": "5000000.00",
            "comment": "核心系统：无逾期",
        },
    ),
}


@router.post(
    "/loans/{loan_id}/delinquency",
    tags=["loans"],
    status_code=status.HTTP_201_CREATED,
    summary="Report the loan's arrears from the core system 逾期报告 (M-6)",
    description="The bank's view of the loan's arrears on a date: overdue since, principal "
    "and interest overdue. Every report is kept (listed on `GET /loans/{id}`); the "
    "latest by a date is the bank's view then, and where it has the loan overdue earlier "
    "than the service's own books (the schedule against the payments), days past due, "
    "claim thresholds and the NPL figures follow the bank's. A monthly status file "
    "(`POST /status-reports/{year}/{month}`) records the same for every row. Every "
    "problem is listed at once. `Location` is the loan." + IF_MATCH_NOTE,
    responses=problems(NotFound, LoanNotOwing, PreconditionFailed, *DELINQUENCY_REFUSALS),
)
def report_delinquency(
    request: Request,
    response: Response,
    session: SessionDep,
    bank: Bank,
    loan_id: LoanId,
    body: Annotated[DelinquencyIn, Body(openapi_examples=DELINQUENCY_EXAMPLES)],
    if_match: IfMatch = None,
) -> LoanView:
    clock = get_clock(request)
    _unchanged_since_read(request, session, bank, loan_id, clock.today())
    report = servicing.report_delinquency(
        session, loan_id=loan_id, data=body, actor=bank, today=clock.today()
    )
    loan = session.get(Loan, report.loan_id)
    assert loan is not None
    _created(request, response, loan.id)
    return _views(session, [loan], clock.today())[0]


@router.post(
    "/loans/{loan_id}/renewal",
    tags=["loans"],
    status_code=status.HTTP_201_CREATED,
    summary="Renew a loan 续贷 (SKD-F7)",
    description="Closes the active loan as `renewed` (its outstanding principal is settled "
    "by the new loan on the new disbursement date and its guarantee exposure "
    "released) and files the new loan for the same enterprise, re-checking every "
    "filing rule. The new loan's `renewed_from_id` links the two; `Location` is the new "
    "loan. A refused renewal changes nothing. A loan that is not active is 409 "
    "`invalid_transition`." + IF_MATCH_NOTE,
    responses=problems(
        NotFound, InvalidTransition, RenewalBeforeLoan, PreconditionFailed, *FILING_REFUSALS
    ),
)
def renew_loan(
    request: Request,
    response: Response,
    session: SessionDep,
    bank: Bank,
    loan_id: LoanId,
    body: Annotated[
        LoanRenewal,
        Body(
            openapi_examples={
                "skd": Example(
                    summary="Renew JSB-SKD-2026-0001 续贷 (demo user bank_jsb, loan 1)",
                    value=RENEWAL_EXAMPLE,
                )
            }
        ),
    ],
    if_match: IfMatch = None,
) -> LoanView:
    clock = get_clock(request)
    _unchanged_since_read(request, session, bank, loan_id, clock.today())
    loan = servicing.renew(
        session, loan_id=loan_id, data=body, actor=bank, today=clock.today(), now=clock.now()
    )
    _created(request, response, loan.id)
    return _views(session, [loan], clock.today())[0]


def _views(
    session: Session,
    loans: list[Loan],
    as_of: date,
    *,
    new: Sequence[Instalment] | None = None,
    facts: arrears.Facts | None = None,
) -> list[LoanView]:
    """The loans as of a date (from `facts` when read already); a `new` loan was just
    filed with that schedule, so nothing is paid or reported yet."""
    if new is not None:
        at = {x.id: servicing.new_position(x, new, as_of) for x in loans}
    else:
        at = servicing.positions(session, loans, as_of, facts)
    enterprises = repo.enterprises_of(session, loans)
    return [_view(x, at[x.id], *enterprises[x.enterprise_id]) for x in loans]


class _Row:
    """A loan with its enterprise's credit code and name, read like the loan."""

    def __init__(self, loan: Loan, credit_code: str, name: str) -> None:
        self._loan = loan
        self.enterprise_credit_code = credit_code
        self.enterprise_name = name

    def __getattr__(self, name: str) -> Any:
        return getattr(self._loan, name)


def _view(loan: Loan, at: servicing.Position, credit_code: str, name: str) -> LoanView:
    a = at.arrears
    arrears = None
    if a is not None:
        bank = a.bank
        policy = get_program(loan.program).policy
        arrears = ArrearsOut(
            principal_overdue=a.principal_overdue_fen,
            interest_overdue=a.interest_overdue_fen,
            principal_overdue_since=a.principal_overdue_since,
            interest_overdue_since=a.interest_overdue_since,
            own_days_past_due=a.own_days(),
            bank_days_past_due=a.bank_days(),
            bank_report=BankViewOut(
                report_id=bank.report_id,
                as_of=bank.as_of,
                overdue_since=bank.overdue_since,
                principal_overdue=bank.principal_overdue_fen,
                interest_overdue=bank.interest_overdue_fen,
                source=bank.source,
            )
            if bank
            else None,
            bucket=policy.bucket(a.days_for(policy.arrears_rule("npl"))),
        )
    return LoanView(
        **LoanOut.model_validate(_Row(loan, credit_code, name)).model_dump(),
        as_of=at.as_of,
        outstanding_principal=at.outstanding_fen,
        days_past_due=at.days_past_due,
        overdue_since=at.overdue_since,
        arrears=arrears,
    )


def _schedule(loan: Loan, as_of: date, facts: arrears.Facts) -> list[InstalmentOut]:
    plan = facts.schedule(loan)
    repaid = facts.principal_paid.get(loan.id, 0)
    settled = arrears.allocation(plan, repaid, facts.interest_paid.get(loan.id, 0))
    closed = repaid >= loan.principal_fen  # repaid or renewed: no interest falls due after
    out = []
    for n, (inst, (p, i)) in enumerate(zip(plan, settled, strict=True), start=1):
        full = p == inst.principal_fen and (i == inst.interest_fen or closed)
        state = (
            "paid"
            if full
            else "overdue"
            if inst.due_on < as_of
            else "partly_paid"
            if p or i
            else "due"
        )
        out.append(
            InstalmentOut(
                seq=n,
                due_on=inst.due_on,
                principal=inst.principal_fen,
                interest=inst.interest_fen,
                principal_paid=p,
                interest_paid=i,
                state=state,
            )
        )
    return out
