"""`GET /loans/watch` and `GET /loans/buckets` (SPEC M-6): the loans about to cross an
arrears threshold, and the loans per delinquency bucket. Mounted before the loans
router, whose `/loans/{loan_id}` would otherwise take these paths. The computation is in
`app.loans.delinquency`."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Annotated

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, Field
from sqlalchemy.orm import Session

from app.auth.principal import CurrentPrincipal
from app.db import get_session
from app.errors import problems
from app.kit.clock import get_today
from app.kit.dates import AsOf
from app.kit.money import Yuan
from app.kit.pagination import (
    PAGE_REFUSALS,
    InvalidCursor,
    Page,
    PageParams,
    decode_cursor,
    encode_cursor,
    page_params,
)
from app.kit.uow import TransactionalRoute
from app.loans import delinquency
from app.loans.delinquency import (
    DEFAULT_WITHIN_DAYS,
    MAX_WITHIN_DAYS,
    MIN_WITHIN_DAYS,
    BucketsOut,
    Watched,
)
from app.loans.repository import enterprises_of, filter_loans, scoped_loans
from app.programs.fields import ProgramCode

router = APIRouter(route_class=TransactionalRoute)
Today = Annotated[date, Depends(get_today)]
SessionDep = Annotated[Session, Depends(get_session)]
BankCode = Annotated[
    str | None,
    Query(max_length=32, description="only this bank's loans 银行代码", examples=["LYG_RCB"]),
]
Program = Annotated[
    ProgramCode | None, Query(description="only this programme's loans", examples=["XB"])
]


class CrossingOut(BaseModel):
    rule: str = Field(description="the SPEC rule ID of the threshold, e.g. `XB-C1`")
    purpose: str = Field(description="`claim` (claim threshold) or `npl` (non-performing)")
    label_zh: str
    label_en: str
    days: int = Field(description="the threshold in days past due")
    counts_interest: bool = Field(description="unpaid interest counts too (else principal only)")
    days_past_due: int = Field(description="days past due now, as this rule counts them")
    crosses_on: date = Field(description="the first day the loan is `days` past due")
    days_left: int = Field(description="crosses_on − as_of")
    if_unpaid: bool = Field(
        description="not in arrears now: crosses only if its earliest unpaid instalment is "
        "left unpaid"
    )


class WatchOut(BaseModel):
    loan_id: int
    program: str
    bank_code: str
    contract_no: str
    enterprise_id: int
    enterprise_credit_code: str = Field(description="统一社会信用代码")
    enterprise_name: str = Field(description="企业名称")
    outstanding: Yuan = Field(description="principal outstanding as of the date")
    overdue_since: date | None = Field(
        description="first day in arrears, principal or interest, the worse of our books "
        "and the bank's latest report; null when current"
    )
    days_past_due: int = Field(description="as of the date, from overdue_since")
    crossings: list[CrossingOut] = Field(description="earliest first")


class WatchPage(Page[WatchOut]):
    as_of: date
    within_days: int
    until: date = Field(description="as_of + within_days, the window's last day")


def _out(w: Watched, enterprise: tuple[str, str]) -> WatchOut:
    a, loan = w.arrears, w.loan
    return WatchOut(
        loan_id=loan.id,
        program=loan.program,
        bank_code=loan.bank_code,
        contract_no=loan.contract_no,
        enterprise_id=loan.enterprise_id,
        enterprise_credit_code=enterprise[0],
        enterprise_name=enterprise[1],
        outstanding=a.outstanding_fen,
        overdue_since=a.overdue_since(True),
        days_past_due=a.days_past_due(True),
        crossings=[
            CrossingOut(
                rule=c.rule.rule,
                purpose=c.rule.purpose,
                label_zh=c.rule.label_zh,
                label_en=c.rule.label_en,
                days=c.rule.days,
                counts_interest=c.rule.interest,
                days_past_due=c.days_past_due,
                crosses_on=c.crosses_on,
                days_left=c.days_left,
                if_unpaid=c.if_unpaid,
            )
            for c in w.crossings
        ],
    )


def _cursor_key(cursor: str) -> tuple[date, int]:
    """The (crosses_on, loan id) a `next_cursor` of this list carries."""
    value = decode_cursor(cursor)
    try:
        day, _, loan_id = str(value).partition("/")
        return date.fromisoformat(day), int(loan_id)
    except ValueError as exc:
        raise InvalidCursor(
            "the cursor is not one this service issued",
            [InvalidCursor.violation("invalid cursor", "query", "cursor")],
        ) from exc


@router.get(
    "/loans/watch",
    tags=["loans"],
    summary="Watch list 逾期预警: loans about to cross an arrears threshold (M-6)",
    description="The loans (scoped like `GET /loans`) that will reach one of their "
    "programme's arrears thresholds — the claim threshold (SKD-C2 90 days principal, "
    "XB-C1 45 days) or the NPL boundary (SKD-Q3, 90 days) — within `within_days` days "
    "after `as_of`: in arrears since S, on S + days − 1; not in arrears, on D + days if "
    "the earliest unpaid instalment, due D, is left unpaid (`if_unpaid`). Earliest "
    "crossing first, cursor-paginated.",
    responses=problems(*PAGE_REFUSALS),
)
def loan_watch_list(
    session: SessionDep,
    principal: CurrentPrincipal,
    today: Today,
    page: Annotated[PageParams, Depends(page_params)],
    within_days: Annotated[
        int,
        Query(
            ge=MIN_WITHIN_DAYS,
            le=MAX_WITHIN_DAYS,
            description=f"the window in days after as_of ({MIN_WITHIN_DAYS}–{MAX_WITHIN_DAYS}) "
            "预警天数",
            examples=[30],
        ),
    ] = DEFAULT_WITHIN_DAYS,
    program: Program = None,
    bank_code: BankCode = None,
    as_of: AsOf = None,
) -> WatchPage:
    on = as_of or today
    scope = filter_loans(scoped_loans(principal), program=program, bank_code=bank_code, status=None)
    after = _cursor_key(page.cursor) if page.cursor is not None else None
    found = delinquency.watch_list(
        session,
        scope,
        on,
        within_days=within_days,
        program=program,
        after=after,
        limit=page.limit + 1,  # one more: is there a next page
    )
    rows, cursor = found[: page.limit], None
    if len(found) > page.limit:
        day, loan_id = rows[-1].key
        cursor = encode_cursor(f"{day.isoformat()}/{loan_id}")
    enterprises = enterprises_of(session, [w.loan for w in rows])
    return WatchPage(
        items=[_out(w, enterprises[w.loan.enterprise_id]) for w in rows],
        next_cursor=cursor,
        as_of=on,
        within_days=within_days,
        until=on + timedelta(days=within_days),
    )


@router.get(
    "/loans/buckets",
    tags=["loans"],
    summary="Delinquency buckets 逾期分档 per bank and programme (M-6)",
    description="Per programme and bank, the loans (scoped like `GET /loans`) with principal "
    "outstanding as of the date, counted and summed in each bucket of the programme "
    "(current, 1-30, 31-44, 45-89, 90+ days past due) by its NPL rule's basis, the worse "
    "of our books and the bank's latest report. The buckets sum to the total.",
)
def loan_buckets(
    session: SessionDep,
    principal: CurrentPrincipal,
    today: Today,
    program: Program = None,
    bank_code: BankCode = None,
    as_of: AsOf = None,
) -> BucketsOut:
    on = as_of or today
    scope = filter_loans(scoped_loans(principal), program=program, bank_code=bank_code, status=None)
    return BucketsOut(as_of=on, items=delinquency.buckets(session, scope, on, program=program))
