"""Monthly status files (XB-Rep): a bank sends its loan-level file for a month that is
over; anyone in scope reads a submission's reconciliation and who has reported."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request, Response, status
from sqlalchemy import Select
from sqlalchemy.orm import Session

from app.auth.principal import CurrentPrincipal, Principal, require_roles
from app.db import get_session
from app.errors import NotFound, UnsupportedMediaType, problems
from app.kit.clock import get_today
from app.kit.location import set_location
from app.kit.pagination import PAGE_REFUSALS, Page, PageParams, page_params, paginate
from app.kit.uow import TransactionalRoute
from app.models import StatusReport, StatusReportDifference
from app.reports.runs import BankCodeRequired
from app.status_reports import files, service
from app.status_reports.files import FileTooLarge, StatusFileRefused
from app.status_reports.schemas import (
    BankMonthOut,
    DifferenceOut,
    Kind,
    MonthOut,
    StatusReportOut,
    request_body,
)
from app.status_reports.service import MonthNotOver

router = APIRouter(route_class=TransactionalRoute)
SessionDep = Annotated[Session, Depends(get_session)]
Today = Annotated[date, Depends(get_today)]
Year = Annotated[
    int, Path(ge=2000, le=2100, description="the year reported on 报送年份", examples=[2026])
]
Month = Annotated[
    int, Path(ge=1, le=12, description="the month reported on, 1–12 报送月份", examples=[11])
]
TAG = "status-reports"


async def raw_body(request: Request) -> bytes:
    """The request body as sent (CSV or JSON, parsed by `files.parse`)."""
    return await request.body()


@router.post(
    "/status-reports/{year}/{month}",
    tags=[TAG],
    status_code=status.HTTP_201_CREATED,
    summary="Submit a monthly status file 报送月度贷款情况 (XB-Rep)",
    description="A bank sends its loan-level status file for a month that is over, as "
    "`text/csv` or `application/json` (the same six fields per row). Every malformed row "
    "is listed in one 422 and nothing is written, as is every row of a known loan failing "
    "the checks of `POST /loans/{loan_id}/delinquency` as of the month end (disbursed by "
    "then, overdue after the disbursement, amounts within the principal, no arrears on a "
    "loan settled by then). The file is reconciled against the "
    "service's books as of the month's last day; the answer carries the differences "
    "(`unknown_contract`, `outstanding_mismatch`, `overdue_mismatch`, `status_mismatch`, "
    "`missing_loan`). The same content as the latest version answers 200 with that "
    "version and writes nothing; different content is a new version (201). Each row of a "
    "loan still owing at the month end is recorded as the bank's delinquency report as of "
    "the month end.",
    openapi_extra={"requestBody": request_body()},
    responses={
        200: {
            "description": "the same content as the latest version: that version, nothing "
            "written (`replayed: true`)",
            "model": StatusReportOut,
        },
        **problems(FileTooLarge, UnsupportedMediaType, StatusFileRefused, MonthNotOver),
    },
)
def submit_status_report(
    response: Response,
    request: Request,
    session: SessionDep,
    bank: Annotated[Principal, Depends(require_roles("bank"))],
    today: Today,
    year: Year,
    month: Month,
    body: Annotated[bytes, Depends(raw_body)],
) -> StatusReportOut:
    media_type = files.media_type_of(request.headers.get("content-type"))
    report, created = service.submit(
        session,
        bank_code=bank.bank_code or "",
        year=year,
        month=month,
        body=body,
        media_type=media_type,
        actor=bank,
        today=today,
    )
    if created:
        set_location(request, response, "get_status_report", year=year, month=month)
        response.headers["Location"] += f"?version={report.version}"
    else:
        response.status_code = status.HTTP_200_OK
    page = PageParams(limit=50, cursor=None)
    return _out(session, report, page, kind=None, replayed=not created)


@router.get(
    "/status-reports",
    tags=[TAG],
    summary="Who has reported on a month 月度报送情况 (XB-Rep)",
    description="Every bank bound to report on the month (an agreement in any programme, "
    "active or suspended, whose term covers the month end) and every bank that did: its "
    "latest version, when, whether late; `missing` when nothing came and the due date "
    "has passed, else `not_yet_due`. A bank sees its own row, a fund manager the banks "
    "of its programme, a city reviewer the banks with an agreement in its region; "
    "`difference_count` is of the differences the caller sees (`scoped`).",
)
def status_report_overview(
    session: SessionDep,
    principal: CurrentPrincipal,
    today: Today,
    year: Annotated[
        int, Query(ge=2000, le=2100, description="the year reported on 报送年份", examples=[2026])
    ],
    month: Annotated[
        int, Query(ge=1, le=12, description="the month reported on 报送月份", examples=[11])
    ],
) -> MonthOut:
    banks = service.visible_banks(session, principal)
    rows = service.month_overview(session, year, month, today=today, banks=banks)
    scope = service.difference_scope(session, principal)
    counts = service.visible_counts(session, [b.report for b in rows if b.report], scope)
    return MonthOut(
        year=year,
        month=month,
        month_end=service.month_end(year, month),
        today=today,
        banks=[
            BankMonthOut(
                bank_code=b.bank_code,
                bank_name=b.bank_name,
                expected=b.expected,
                due_on=b.due_on,
                state=b.state,
                report_id=b.report.id if b.report else None,
                version=b.report.version if b.report else None,
                submitted_on=b.report.submitted_on if b.report else None,
                late=b.report.late if b.report else None,
                difference_count=sum(counts[b.report.id].values()) if b.report else None,
                scoped=scope is not None,
            )
            for b in rows
        ],
    )


@router.get(
    "/status-reports/{year}/{month}",
    tags=[TAG],
    summary="One bank's status file and its differences 月度报送核对结果 (XB-Rep)",
    description="The latest version (or `version`) of a bank's file for the month: "
    "metadata, counts by kind and the differences, paginated (`limit`, `cursor`, "
    "filter `kind`). A bank reads its own; other roles name the bank with `bank_code` "
    "(a fund manager: a bank of its programme). Outside the caller's scope: 404. A bank "
    "and the roles that see every loan see every difference; a city reviewer only those "
    "of its region's enterprises' loans, a fund manager those of its programme's loans — "
    "neither sees unknown contracts — and the counts are of what the caller sees "
    "(`scoped: true`).",
    responses=problems(NotFound, BankCodeRequired, *PAGE_REFUSALS),
)
def get_status_report(
    session: SessionDep,
    principal: CurrentPrincipal,
    year: Year,
    month: Month,
    page: Annotated[PageParams, Depends(page_params)],
    bank_code: Annotated[
        str | None,
        Query(
            max_length=32,
            description="the bank whose file to read (a bank reads its own without it) 银行代码",
            examples=["LYG_RCB"],
        ),
    ] = None,
    version: Annotated[
        int | None,
        Query(ge=1, le=1_000_000, description="a version (default: the latest)", examples=[1]),
    ] = None,
    kind: Annotated[
        Kind | None, Query(description="only differences of this kind 差异类型")
    ] = None,
) -> StatusReportOut:
    if principal.is_bank:
        code = principal.bank_code or ""
        if bank_code not in (None, code):
            raise NotFound(f"no status file of bank {bank_code} for {year}-{month:02d}")
    elif bank_code is None:
        raise BankCodeRequired(
            "name the bank with bank_code",
            [
                BankCodeRequired.violation(
                    f"required for role {principal.role}", "query", "bank_code"
                )
            ],
        )
    else:
        code = bank_code
    visible = service.visible_banks(session, principal)
    report = None
    if visible is None or code in visible:
        report = service.find(session, code, year, month, version)
    if report is None:
        which = f" version {version}" if version else ""
        raise NotFound(f"no status file{which} of bank {code} for {year}-{month:02d}")
    scope = service.difference_scope(session, principal)
    return _out(session, report, page, kind=kind, replayed=False, scope=scope)


def _out(
    session: Session,
    report: StatusReport,
    page: PageParams,
    *,
    kind: str | None,
    replayed: bool,
    scope: Select[Any] | None = None,
) -> StatusReportOut:
    items, cursor = paginate(
        session, service.differences(report.id, kind, scope), StatusReportDifference.id, page
    )
    counts = service.visible_counts(session, [report], scope)[report.id]
    return StatusReportOut(
        id=report.id,
        bank_code=report.bank_code,
        year=report.year,
        month=report.month,
        month_end=service.month_end(report.year, report.month),
        version=report.version,
        latest_version=service.latest_version(session, report.bank_code, report.year, report.month),
        sha256=report.content_sha256,
        media_type=report.media_type,
        due_on=report.due_on,
        submitted_on=report.submitted_on,
        late=report.late,
        row_count=report.row_count,
        difference_count=sum(counts.values()),
        counts=counts,
        scoped=scope is not None,
        submitted_by_id=report.submitted_by_id,
        created_at=report.created_at,
        replayed=replayed,
        differences=Page[DifferenceOut](
            items=[DifferenceOut.model_validate(d) for d in items], next_cursor=cursor
        ),
    )
