"""Ledger endpoints: journal, balances, statements, trial balance, export, verification,
fund capital. Fund managers see their own fund's book (a pool manager also its
sub-funds); regulators and admins see every book."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Path, Query, Request, Response, status
from fastapi.responses import StreamingResponse
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.auth.principal import Principal, require_roles
from app.db import get_session
from app.errors import problems
from app.kit.clock import get_clock
from app.kit.dates import BUSINESS_RANGE, MAX_BUSINESS_DATE, MIN_BUSINESS_DATE
from app.kit.location import set_location
from app.kit.pagination import (
    MAX_BIGINT,
    PAGE_REFUSALS,
    InvalidCursor,
    ObjectId,
    Page,
    PageParams,
    decode_cursor,
    encode_cursor,
    page_params,
    paginate,
)
from app.kit.uow import TransactionalRoute
from app.ledger import capital, service
from app.ledger import repository as repo
from app.ledger import schemas as s
from app.ledger.export import export_beancount
from app.models import Fund, FundContributor, LedgerAccount, LedgerEntry
from app.programs.base import get_program

router = APIRouter(route_class=TransactionalRoute)
SessionDep = Annotated[Session, Depends(get_session)]
Reader = Annotated[Principal, Depends(require_roles("fund_manager", "regulator", "admin"))]
Admin = Annotated[Principal, Depends(require_roles("admin"))]
AsOf = Annotated[
    date | None,
    Query(
        ge=MIN_BUSINESS_DATE,
        le=MAX_BUSINESS_DATE,
        description="balances as of this business date, inclusive 截至业务日期（含）; "
        + BUSINESS_RANGE,
        examples=["2026-03-31"],
    ),
]
FundCodeQuery = Annotated[
    str | None,
    Query(max_length=32, description="one fund's book 基金账簿", examples=["SKD_PROV"]),
]
FundCode = Annotated[
    str, Path(max_length=32, description="fund code 基金代码", examples=["SKD_PROV"])
]
SinceQuery = Annotated[
    date | None,
    Query(description="first business date, inclusive 起始业务日期", examples=["2026-01-01"]),
]
UntilQuery = Annotated[
    date | None,
    Query(description="last business date, inclusive 截止业务日期", examples=["2026-03-31"]),
]

_REVERSAL_EXAMPLES: dict[str, Any] = {
    "today": {
        "summary": "Reverse today 当日红字冲销",
        "value": {"reason": "出资到账金额录入错误，红字冲销后重新入账"},
    },
    "dated": {
        "summary": "Reverse on a given date 指定冲销日期",
        "value": {"reason": "重复入账，红字冲销", "business_date": "2026-03-31"},
    },
}
_CONTRIBUTION_EXAMPLES: dict[str, Any] = {
    "skd_province": {
        "summary": "SKD: 省财政 pays into the province fund (path SKD_PROV)",
        "value": {"contributor": "JS_FINANCE", "amount": "50000000.00", "paid_on": "2026-11-20"},
    },
    "xb_district": {
        "summary": "XB: 海州区 pays part of its commitment (path XB_POOL, XB-F0)",
        "value": {"contributor": "HAIZHOU", "amount": "10000000.00", "paid_on": "2026-11-20"},
    },
}


def visible_funds(session: Session, principal: Principal) -> set[str] | None:
    """None: every book. A fund manager: its fund and, for a pool, the pool's sub-funds."""
    if principal.role != "fund_manager":
        return None
    own = principal.fund_code or ""
    children = session.scalars(select(Fund.code).where(Fund.parent_code == own)).all()
    return {own, *children}


def _entries_out(session: Session, entries: list[LedgerEntry]) -> list[s.EntryOut]:
    ids = [e.id for e in entries]
    legs = repo.legs_of(session, ids)
    reversed_by = repo.reversals_of(session, ids)
    return [
        s.EntryOut(
            id=e.id,
            event_type=e.event_type,
            event_id=e.event_id,
            business_date=e.business_date,
            recorded_at=e.recorded_at,
            description=e.description,
            reverses_entry_id=e.reverses_entry_id,
            reversed_by_entry_id=reversed_by.get(e.id),
            prev_hash=e.prev_hash,
            hash=e.hash,
            legs=[
                s.LegOut(
                    account_code=a.code,
                    fund_code=g.fund_code,
                    kind=a.kind,
                    counterparty=a.counterparty,
                    side="debit" if g.amount_fen > 0 else "credit",
                    amount=g.amount_fen,
                    loan_id=g.loan_id,
                )
                for g, a in legs[e.id]
            ],
        )
        for e in entries
    ]


def _balance_out(account: LedgerAccount, total: int) -> s.AccountBalanceOut:
    return s.AccountBalanceOut(
        **s.AccountOut.model_validate(account).model_dump(),
        balance=total,
        normal_balance=total if account.normal_side == "debit" else -total,
    )


@router.get(
    "/ledger/accounts",
    tags=["ledger"],
    summary="Accounts with balances 科目余额",
    description="Fund managers see their own book (a pool manager also its sub-funds'); "
    "regulators and admins every book.",
    responses=problems(InvalidCursor),
)
def list_accounts(
    session: SessionDep,
    principal: Reader,
    page: Annotated[PageParams, Depends(page_params)],
    as_of: AsOf = None,
    fund_code: FundCodeQuery = None,
) -> Page[s.AccountBalanceOut]:
    funds = visible_funds(session, principal)
    if fund_code:
        funds = {fund_code} if funds is None or fund_code in funds else set()
    after = decode_cursor(page.cursor, str) if page.cursor else None
    rows = repo.balances(session, as_of=as_of, funds=funds, after_code=after, limit=page.limit + 1)
    cursor = encode_cursor(rows[page.limit - 1][0].code) if len(rows) > page.limit else None
    return Page(items=[_balance_out(a, t) for a, t in rows[: page.limit]], next_cursor=cursor)


@router.get(
    "/ledger/accounts/{code}",
    tags=["ledger"],
    summary="One account: balance and statement with running balance 明细账",
    description="An account outside the caller's books: 404.",
    responses=problems(service.AccountNotFound),
)
def get_account(
    session: SessionDep,
    principal: Reader,
    code: Annotated[
        str,
        Path(
            max_length=200,
            description="account code 科目代码: `<fund>:<kind>[:<counterparty>]`",
            examples=["SKD_PROV:cash"],
        ),
    ],
    as_of: AsOf = None,
    since: Annotated[
        date | None,
        Query(
            description="first business date of the statement 明细起始日期",
            examples=["2026-01-01"],
        ),
    ] = None,
) -> s.StatementOut:
    account = repo.account_by_code(session, code)
    funds = visible_funds(session, principal)
    if account is None or (funds is not None and account.fund_code not in funds):
        raise service.AccountNotFound(f"ledger account {code!r} not found")
    st = service.statement(session, account, since=since, until=as_of)
    return s.StatementOut(
        account=s.AccountOut.model_validate(account),
        since=since,
        until=as_of,
        opening_balance=st.opening_fen,
        closing_balance=st.closing_fen,
        lines=[
            s.StatementLineOut(
                entry_id=ln.entry.id,
                business_date=ln.entry.business_date,
                event_type=ln.entry.event_type,
                event_id=ln.entry.event_id,
                description=ln.entry.description,
                amount=ln.amount_fen,
                running_balance=ln.running_fen,
                loan_id=ln.loan_id,
            )
            for ln in st.lines
        ],
    )


@router.get(
    "/ledger/entries",
    tags=["ledger"],
    summary="The journal 分录 (filterable)",
    responses=problems(*PAGE_REFUSALS),
)
def list_entries(
    session: SessionDep,
    principal: Reader,
    page: Annotated[PageParams, Depends(page_params)],
    fund_code: FundCodeQuery = None,
    account_code: Annotated[
        str | None,
        Query(
            max_length=200,
            description="entries with a leg on this account 科目代码",
            examples=["XB_POOL:cash"],
        ),
    ] = None,
    event_type: Annotated[
        str | None,
        Query(
            max_length=64,
            description="the business event 业务事件 (`contribution`, `loan.filed`, "
            "`claim.payment`, …)",
            examples=["contribution"],
        ),
    ] = None,
    event_id: Annotated[
        str | None,
        Query(
            max_length=100,
            description="the event's id, e.g. a claim's id for `claim.payment` 业务对象编号",
            examples=["1"],
        ),
    ] = None,
    loan_id: Annotated[
        int | None,
        Query(
            ge=1,
            le=MAX_BIGINT,
            description="entries concerning this loan 所涉贷款: its filing's exposure (its "
            "own entry, or its leg pair in a batch's entry), repayments, renewal, and a "
            "claim's release of its exposure when posted after legs named loans (migration "
            "0027; an earlier claim's entries are found by the claim's `event_id`)",
            examples=[1],
        ),
    ] = None,
    since: SinceQuery = None,
    until: UntilQuery = None,
) -> Page[s.EntryOut]:
    stmt = repo.entries_query(
        funds=visible_funds(session, principal),
        fund_code=fund_code,
        account_code=account_code,
        event_type=event_type,
        event_id=event_id,
        since=since,
        until=until,
        loan_id=loan_id,
    )
    rows, cursor = paginate(session, stmt, LedgerEntry.id, page)
    return Page(items=_entries_out(session, list(rows)), next_cursor=cursor)


@router.get(
    "/ledger/entries/{entry_id}",
    tags=["ledger"],
    summary="One journal entry 分录",
    responses=problems(service.EntryNotFound),
)
def get_entry(session: SessionDep, principal: Reader, entry_id: ObjectId) -> s.EntryOut:
    stmt = repo.entries_query(
        funds=visible_funds(session, principal),
        fund_code=None,
        account_code=None,
        event_type=None,
        event_id=None,
        since=None,
        until=None,
    ).where(LedgerEntry.id == entry_id)
    entry = session.scalars(stmt).first()
    if entry is None:
        raise service.EntryNotFound(f"ledger entry {entry_id} not found")
    return _entries_out(session, [entry])[0]


@router.post(
    "/ledger/entries/{entry_id}/reversal",
    tags=["ledger"],
    status_code=status.HTTP_201_CREATED,
    summary="Correct an entry with its reversing entry 红字冲销 (L-2)",
    description="Admin. Posts the entry's exact opposite, linked to it, dated today or "
    "`business_date` (not before the entry's). An entry is reversed once, and a reversal "
    "is not reversed. `Location`: the reversing entry.",
    responses=problems(
        service.EntryNotFound,
        service.CannotReverseReversal,
        service.AlreadyReversed,
        service.ReversalBeforeOriginal,
    ),
)
def reverse_entry(
    request: Request,
    response: Response,
    session: SessionDep,
    admin: Admin,
    entry_id: ObjectId,
    body: Annotated[s.ReversalIn, Body(openapi_examples=_REVERSAL_EXAMPLES)],
) -> s.EntryOut:
    clock = get_clock(request)
    entry = service.reverse(
        session,
        entry_id=entry_id,
        business_date=body.business_date or clock.today(),
        reason=body.reason,
        now=clock.now(),
        actor_id=admin.user_id,
    )
    set_location(request, response, "get_entry", entry_id=entry.id)
    return _entries_out(session, [entry])[0]


@router.get("/ledger/trial-balance", tags=["ledger"], summary="Trial balance per fund 试算平衡表")
def trial_balance(session: SessionDep, principal: Reader, as_of: AsOf = None) -> s.TrialBalanceOut:
    books = service.trial_balance(session, as_of=as_of, funds=visible_funds(session, principal))
    return s.TrialBalanceOut(
        as_of=as_of,
        balanced=all(b.balanced for b in books),
        books=[
            s.TrialBookOut(
                fund_code=b.fund_code,
                accounts=[
                    s.TrialAccountOut(
                        code=a.code, name=a.name, type=a.type, debit=max(t, 0), credit=max(-t, 0)
                    )
                    for a, t in b.accounts
                ],
                total_debit=b.total_debit,
                total_credit=b.total_credit,
                balanced=b.balanced,
            )
            for b in books
        ],
    )


@router.get(
    "/ledger/export.beancount",
    tags=["ledger"],
    summary="The journal in Beancount syntax (L-5) 导出",
    response_class=StreamingResponse,
    responses={
        200: {
            "content": {"text/plain": {}},
            "description": "a Beancount file; `bean-check` verifies it",
        }
    },
)
def export(session: SessionDep, principal: Reader) -> StreamingResponse:
    lines: Iterator[str] = iter(
        list(export_beancount(session, funds=visible_funds(session, principal)))
    )
    return StreamingResponse(
        lines,
        media_type="text/plain; charset=utf-8",
        headers={"Content-Disposition": 'attachment; filename="ledger.beancount"'},
    )


@router.get(
    "/ledger/verify", tags=["ledger"], summary="Recompute the hash chain and per-book sums 校验"
)
def verify(session: SessionDep, _: Reader) -> s.VerifyOut:
    report = service.verify(session)
    return s.VerifyOut(
        ok=report.ok,
        entries_checked=report.entries_checked,
        head_entry_id=report.head_entry_id,
        first_break=(
            s.ChainBreakOut(
                entry_id=report.first_break.entry_id,
                problem=report.first_break.problem,
            )
            if report.first_break
            else None
        ),
        book_sums=report.book_sums,
    )


@router.post(
    "/funds/{code}/contributions",
    tags=["reference"],
    status_code=status.HTTP_201_CREATED,
    summary="Record capital paid in 实缴出资 (XB-F0) → ledger entry",
    description="Admin. Posts Dr cash / Cr the contributor's contributed capital in the "
    "fund's book. A contributor not registered with the fund, an amount not above zero, "
    "or (XB-F0) an amount beyond what is still committed is refused, every problem "
    "listed. `Location`: the ledger entry.",
    responses=problems(
        capital.FundNotFound, capital.UnknownContributor, capital.ContributionExceedsCommitment
    ),
)
def contribute(
    request: Request,
    response: Response,
    session: SessionDep,
    admin: Admin,
    code: FundCode,
    body: Annotated[s.ContributionIn, Body(openapi_examples=_CONTRIBUTION_EXAMPLES)],
) -> s.ContributionOut:
    clock = get_clock(request)
    c = capital.contribute(
        session,
        fund_code=code,
        contributor_code=body.contributor,
        amount_fen=body.amount,
        paid_on=body.paid_on,
        now=clock.now(),
        actor_id=admin.user_id,
    )
    set_location(request, response, "get_entry", entry_id=c.entry.id)
    return s.ContributionOut(
        entry_id=c.entry.id,
        fund_code=c.fund_code,
        contributor=c.contributor.code,
        contributor_name=c.contributor.name,
        amount=c.amount_fen,
        paid_on=body.paid_on,
        paid_to_date=c.paid_to_date_fen,
        committed=c.contributor.committed_fen,
    )


@router.get(
    "/funds/{code}/capital",
    tags=["reference"],
    summary="Committed and paid-in capital per contributor 出资情况 (XB-F0)",
    description="Admin, fund managers and regulators: per contributor committed, paid in "
    "and unpaid capital, the fund's net value and, for the XB pool, its leverage (XB-F1).",
    responses=problems(capital.FundNotFound),
)
def fund_capital(
    request: Request,
    session: SessionDep,
    _: Reader,
    code: Annotated[
        str, Path(max_length=32, description="fund code 基金代码", examples=["XB_POOL"])
    ],
    as_of: AsOf = None,
) -> s.FundCapitalOut:
    if session.get(Fund, code) is None:
        raise capital.FundNotFound(f"fund {code!r} not found")
    contributors = session.scalars(
        select(FundContributor)
        .where(FundContributor.fund_code == code)
        .order_by(FundContributor.id)
    ).all()
    rows = []
    for c in contributors:
        paid = capital.paid_in(session, code, c.code, as_of=as_of)
        rows.append(
            s.CapitalOut(
                contributor=c.code,
                contributor_name=c.name,
                region_code=c.region_code,
                committed=c.committed_fen,
                paid_in=paid,
                unpaid=capital.unpaid(c, paid),
            )
        )
    net = capital.net_value(session, code, as_of=as_of)
    loans = leverage = target = None
    fund = session.get(Fund, code)
    found = (
        get_program(fund.program).fund_leverage(
            session, fund, on=as_of or get_clock(request).today()
        )
        if fund is not None
        else None
    )
    if found is not None:  # XB-F1
        loans, target = found
        if net > 0:
            hundredths = loans * 100 // net
            leverage = f"{hundredths // 100}.{hundredths % 100:02d}"
    return s.FundCapitalOut(
        fund_code=code,
        as_of=as_of,
        committed=sum(r.committed for r in rows),
        paid_in=sum(r.paid_in for r in rows),
        contributors=rows,
        net_value=net,
        loans_outstanding=loans,
        leverage=leverage,
        leverage_target=target,
    )
