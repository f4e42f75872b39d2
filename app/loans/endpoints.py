from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Request, status
from sqlalchemy.orm import Session

from app.auth.principal import CurrentPrincipal, Principal, require_roles
from app.db import get_session
from app.errors import NotFound
from app.kit.clock import get_clock, get_today
from app.kit.pagination import ObjectId, Page, PageParams, page_params, paginate
from app.kit.uow import TransactionalRoute
from app.loans import arrears, schedule, service, servicing
from app.loans import repository as repo
from app.loans.arrears import Instalment
from app.loans.schemas import (
    ArrearsOut,
    BankViewOut,
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
from app.models import Loan, ProgramQuota
from app.programs.base import get_program
from app.programs.fields import ProgramCode, QuotaProgramCode

router = APIRouter(route_class=TransactionalRoute)
Today = Annotated[date, Depends(get_today)]
AsOf = Annotated[date | None, Query(description="position as of this date (default: today)")]
SessionDep = Annotated[Session, Depends(get_session)]


@router.get("/loans", tags=["loans"], summary="List loans 贷款 (scoped to the caller)")
def list_loans(
    session: SessionDep,
    principal: CurrentPrincipal,
    today: Today,
    page: Annotated[PageParams, Depends(page_params)],
    program: ProgramCode | None = None,
    bank_code: str | None = None,
    status: Annotated[str | None, Query(max_length=16)] = None,
    as_of: AsOf = None,
) -> Page[LoanView]:
    stmt = repo.filter_loans(
        repo.scoped_loans(principal), program=program, bank_code=bank_code, status=status
    )
    rows, cursor = paginate(session, stmt, Loan.id, page)
    return Page(items=_views(session, list(rows), as_of or today), next_cursor=cursor)


@router.post(
    "/loans",
    tags=["loans"],
    status_code=status.HTTP_201_CREATED,
    summary="File a loan 贷款备案 (SKD-P1, P2, F1–F6)",
    description="A partner bank files a disbursed loan. Every filing rule is checked "
    "and a refusal (422) lists each failed rule with its SPEC id. An "
    "accepted loan's guarantee exposure is posted to the funds' memo "
    "accounts.",
)
def file_loan(
    request: Request,
    session: SessionDep,
    bank: Annotated[Principal, Depends(require_roles("bank"))],
    body: LoanFile,
) -> LoanView:
    clock = get_clock(request)
    loan = service.file_loan(
        session, data=body, principal=bank, today=clock.today(), now=clock.now()
    )
    return _views(session, [loan], clock.today(), new=schedule.plan(body))[0]


@router.post(
    "/loans/batch",
    tags=["loans"],
    summary="File up to 10,000 loans at once 批量备案",
    description="Each item is checked exactly like `POST /loans`, in order; the answer lists "
    "every item as accepted (with its loan id) or refused (with every failed rule). "
    "Accepted items are committed together; a refused item writes nothing. Send an "
    "`Idempotency-Key`: a retried batch returns the first answer.",
)
def file_batch(
    request: Request,
    session: SessionDep,
    bank: Annotated[Principal, Depends(require_roles("bank"))],
    body: LoanBatchIn,
) -> LoanBatchOut:
    clock = get_clock(request)
    results = service.file_batch(
        session, items=body.items, principal=bank, today=clock.today(), now=clock.now()
    )
    accepted = sum(1 for r in results if r.status == "accepted")
    return LoanBatchOut(accepted=accepted, refused=len(results) - accepted, results=results)


@router.get(
    "/programs/{program}/quotas/{year}",
    tags=["loans"],
    summary="Annual issuance quota 年度投放额度 (SKD-F6)",
)
def get_quota(
    session: SessionDep,
    _: CurrentPrincipal,
    program: QuotaProgramCode,
    year: Annotated[int, Path(ge=2000, le=2100)],
) -> QuotaOut:
    quota = repo.quota(session, program, year)
    if quota is None:
        raise NotFound(f"no {program} quota is set for {year}")
    return _quota_out(session, quota)


@router.put(
    "/programs/{program}/quotas/{year}",
    tags=["loans"],
    summary="Set the annual issuance quota 设定年度投放额度 (SKD-F6)",
)
def put_quota(
    session: SessionDep,
    reviewer: Annotated[Principal, Depends(require_roles("province_reviewer"))],
    program: QuotaProgramCode,
    year: Annotated[int, Path(ge=2000, le=2100)],
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


@router.get("/loans/{loan_id}", tags=["loans"], summary="One loan")
def get_loan(
    session: SessionDep,
    principal: CurrentPrincipal,
    today: Today,
    loan_id: ObjectId,
    as_of: AsOf = None,
) -> LoanDetail:
    loan = session.scalars(repo.scoped_loans(principal).where(Loan.id == loan_id)).first()
    if loan is None:
        raise NotFound(f"loan {loan_id} not found")
    on = as_of or today
    view = _views(session, [loan], on)[0]
    events = [LoanEventOut.model_validate(e) for e in repo.events(session, loan.id)]
    changes = [LoanTransitionOut.model_validate(t) for t in repo.transitions(session, loan.id)]
    reports = [DelinquencyOut.model_validate(r) for r in repo.delinquency_reports(session, loan.id)]
    return LoanDetail(
        **view.model_dump(),
        history=events,
        status_history=changes,
        schedule=_schedule(session, loan, on),
        delinquency_reports=reports,
    )


@router.post(
    "/loans/{loan_id}/repayments",
    tags=["loans"],
    status_code=status.HTTP_201_CREATED,
    summary="Report a repayment of principal and/or interest 还款",
    description="Principal and interest paid on a date, as the bank's core system booked "
    "them. Each settles the earliest instalments of the schedule first (SPEC M-6); "
    "principal lowers the funds' guarantee exposure and, when the last of it is paid, "
    "closes the loan as `repaid`. Interest is at most the schedule's interest unpaid.",
)
def repay(
    request: Request,
    session: SessionDep,
    bank: Annotated[Principal, Depends(require_roles("bank"))],
    loan_id: ObjectId,
    body: RepaymentIn,
) -> LoanView:
    clock = get_clock(request)
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
    return _views(session, [loan], clock.today())[0]


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
    "(`POST /status-reports/{year}/{month}`) records the same for every row.",
)
def report_delinquency(
    request: Request,
    session: SessionDep,
    bank: Annotated[Principal, Depends(require_roles("bank"))],
    loan_id: ObjectId,
    body: DelinquencyIn,
) -> LoanView:
    clock = get_clock(request)
    report = servicing.report_delinquency(
        session, loan_id=loan_id, data=body, actor=bank, today=clock.today()
    )
    loan = session.get(Loan, report.loan_id)
    assert loan is not None
    return _views(session, [loan], clock.today())[0]


@router.post(
    "/loans/{loan_id}/renewal",
    tags=["loans"],
    status_code=status.HTTP_201_CREATED,
    summary="Renew a loan 续贷 (SKD-F7)",
    description="Closes the active loan as `renewed` (its outstanding principal is settled "
    "by the new loan on the new disbursement date and its guarantee exposure "
    "released) and files the new loan for the same enterprise, re-checking every "
    "filing rule. The new loan's `renewed_from_id` links the two. A refused "
    "renewal changes nothing.",
)
def renew(
    request: Request,
    session: SessionDep,
    bank: Annotated[Principal, Depends(require_roles("bank"))],
    loan_id: ObjectId,
    body: LoanRenewal,
) -> LoanView:
    clock = get_clock(request)
    loan = servicing.renew(
        session, loan_id=loan_id, data=body, actor=bank, today=clock.today(), now=clock.now()
    )
    return _views(session, [loan], clock.today())[0]


def _views(
    session: Session,
    loans: list[Loan],
    as_of: date,
    *,
    new: Sequence[Instalment] | None = None,
) -> list[LoanView]:
    """The loans as of a date; a `new` loan was just filed with that schedule, so nothing
    is paid or reported yet."""
    if new is not None:
        at = {x.id: servicing.new_position(x, new, as_of) for x in loans}
    else:
        at = servicing.positions(session, loans, as_of)
    return [_view(x, at[x.id]) for x in loans]


def _view(loan: Loan, at: servicing.Position) -> LoanView:
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
        **LoanOut.model_validate(loan).model_dump(),
        as_of=at.as_of,
        outstanding_principal=at.outstanding_fen,
        days_past_due=at.days_past_due,
        overdue_since=at.overdue_since,
        arrears=arrears,
    )


def _schedule(session: Session, loan: Loan, as_of: date) -> list[InstalmentOut]:
    plan = arrears.schedules(session, [loan.id]).get(loan.id) or arrears.bullet(loan)
    principal, interest = arrears.paid_by(session, [loan.id], as_of)
    repaid = principal.get(loan.id, 0)
    settled = arrears.allocation(plan, repaid, interest.get(loan.id, 0))
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
