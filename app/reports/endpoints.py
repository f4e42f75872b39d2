"""Regulators' reports over HTTP: quarterly, monthly and annual reports in JSON, CSV and
XLSX, the quarterly page with its charts, and the stored runs of closed periods."""

from __future__ import annotations

import re
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Body, Depends, Query, Request, Response, status
from fastapi.responses import HTMLResponse
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.auth.principal import CurrentPrincipal, Principal
from app.db import get_session
from app.errors import AppError, RoleNotAllowed, problems
from app.kit.clock import get_clock
from app.kit.location import set_location
from app.kit.pagination import PAGE_REFUSALS, ObjectId, Page, PageParams, page_params, paginate
from app.kit.uow import TransactionalRoute
from app.models import ReportRun
from app.programs.fields import ProgramCode
from app.reports import runs
from app.reports.quarterly import QuarterNotBegun
from app.reports.render_csv import render_csv
from app.reports.render_html import MEDIA_TYPE as HTML_MEDIA_TYPE
from app.reports.render_html import render_html
from app.reports.render_xlsx import MEDIA_TYPE as XLSX_MEDIA_TYPE
from app.reports.render_xlsx import render_xlsx
from app.reports.schemas import (
    ChangeOut,
    Format,
    ReportKind,
    ReportOut,
    RunFormat,
    RunIn,
    RunOut,
    SubmissionIn,
    SubmissionOut,
)

router = APIRouter(route_class=TransactionalRoute)
SessionDep = Annotated[Session, Depends(get_session)]
TAG = "reports"
JSON_MEDIA_TYPE = "application/json"
CSV_MEDIA_TYPE = "text/csv; charset=utf-8"
EXTENSIONS = {"json": "json", "csv": "csv", "xlsx": "xlsx", "html": "html"}
# the page is self-contained: no script, no fetch, no external asset
PAGE_POLICY = "default-src 'none'; style-src 'unsafe-inline'; img-src data:"

Year = Annotated[int, Query(ge=2000, le=2100, description="the year 年度", examples=[2026])]
Quarter = Annotated[int, Query(ge=1, le=4, description="the quarter 季度, 1–4", examples=[3])]
Month = Annotated[int, Query(ge=1, le=12, description="the month 月份, 1–12", examples=[11])]
Programme = Annotated[
    ProgramCode, Query(description="programme 项目: SKD 苏科贷 or XB 信保基金", examples=["SKD"])
]
FormatQuery = Annotated[
    Format,
    Query(
        alias="format",
        description="`json` (default; the canonical JSON), `csv` (UTF-8 with BOM, one "
        "block per section) or `xlsx` (one sheet per section) 输出格式",
        examples=["json"],
    ),
]
# the refusals every report read shares: a fund manager of another programme (403), a
# bank the caller may not see (404)
_READ_REFUSALS: tuple[type[AppError], ...] = (RoleNotAllowed, runs.ReportNotFound)
_RUN_EXAMPLES: dict[str, Any] = {
    "quarterly": {
        "summary": "SKD 2026-Q3, whole programme 季度报告（全省）",
        "value": {"kind": "quarterly", "program": "SKD", "period": "2026-Q3", "scope": ""},
    },
    "monthly": {
        "summary": "XB 2026-11 of 连云港农商行 月度报告（单家银行）",
        "value": {"kind": "monthly", "program": "XB", "period": "2026-11", "scope": "bank:LYG_RCB"},
    },
    "annual": {
        "summary": "XB 2025 annual evaluation 年度报告",
        "value": {"kind": "annual", "program": "XB", "period": "2025", "scope": ""},
    },
}
_SUBMISSION_EXAMPLES: dict[str, Any] = {
    "default": {
        "summary": "To the programme's recipient 报送默认对象",
        "value": {"comment": "2026年第三季度报告已按期报送"},
    },
    "named": {
        "summary": "To a named recipient 指定报送对象",
        "value": {"submitted_to": "江苏省科学技术厅", "comment": "季度报告纸质版同步寄送"},
    },
}

_HEADERS_DOC = {
    "X-Report-Run-Id": {
        "description": "the stored run served (absent while the period is open)",
        "schema": {"type": "integer"},
    },
    "X-Report-Version": {
        "description": "the run's version (absent while the period is open)",
        "schema": {"type": "integer"},
    },
    "X-Content-SHA256": {
        "description": "SHA-256 of the report's canonical JSON, whatever the format",
        "schema": {"type": "string"},
    },
    "ETag": {"description": "of this representation", "schema": {"type": "string"}},
}


def _report_responses(
    *refusals: type[AppError], page: bool = False
) -> dict[int | str, dict[str, Any]]:
    if page:
        ok: dict[str, Any] = {
            "description": "the report page: tables and server-side SVG charts",
            "content": {"text/html": {"schema": {"type": "string"}}},
            "headers": _HEADERS_DOC,
        }
    else:
        ok = {
            "description": "the report: `format=json` the canonical JSON below, `csv` "
            "and `xlsx` as downloads (Content-Disposition with the file name)",
            "model": ReportOut,
            "content": {
                "text/csv": {"schema": {"type": "string"}},
                XLSX_MEDIA_TYPE: {"schema": {"type": "string", "format": "binary"}},
            },
            "headers": _HEADERS_DOC,
        }
    return {
        200: ok,
        304: {"description": "not modified: `If-None-Match` names the current ETag"},
        **problems(*_READ_REFUSALS, *refusals),
    }


def _filename(text: str) -> str:
    return re.sub(r'[\\/:*?"<>|\x00-\x1f]+', "-", text).strip(" .-") or "report"


def _disposition(served: runs.Served, key: runs.ReportKey, ext: str, kind: str) -> str:
    scope = f"-{key.scope.replace(':', '-')}" if key.scope else ""
    ascii_name = re.sub(
        r"[^A-Za-z0-9._-]+", "-", f"{key.kind}-report-{key.program}-{key.period.label}{scope}"
    )
    doc = served.document
    title = (
        doc.title_zh if key.period.label in doc.title_zh else f"{doc.title_zh}-{key.period.label}"
    )
    utf8_name = _filename(f"{title}{scope}")
    return (
        f'{kind}; filename="{ascii_name}.{ext}"; '
        f"filename*=UTF-8''{quote(utf8_name + '.' + ext, safe='')}"
    )


def _respond(request: Request, served: runs.Served, fmt: str, key: runs.ReportKey) -> Response:
    """The report in `fmt`, with its run, version, content hash and ETag; 304 when the
    client already holds this representation."""
    headers = {
        "ETag": f'"{served.sha256}-{fmt}"',
        "X-Content-SHA256": served.sha256,
        "Cache-Control": "private, no-cache",
    }
    if served.run is not None:
        headers["X-Report-Run-Id"] = str(served.run.id)
        headers["X-Report-Version"] = str(served.run.version)
    if fmt in ("csv", "xlsx"):
        headers["Content-Disposition"] = _disposition(served, key, EXTENSIONS[fmt], "attachment")
    if fmt == "html":
        headers["Content-Disposition"] = _disposition(served, key, "html", "inline")
        headers["Content-Security-Policy"] = PAGE_POLICY
    match = request.headers.get("if-none-match", "")
    if headers["ETag"] in [t.strip().removeprefix("W/") for t in match.split(",")]:
        return Response(status_code=status.HTTP_304_NOT_MODIFIED, headers=headers)
    if fmt == "json":
        return Response(served.content, media_type=JSON_MEDIA_TYPE, headers=headers)
    if fmt == "csv":
        return Response(render_csv(served.document), media_type=CSV_MEDIA_TYPE, headers=headers)
    if fmt == "xlsx":
        return Response(render_xlsx(served.document), media_type=XLSX_MEDIA_TYPE, headers=headers)
    page = render_html(served.document, content_sha256=served.sha256)
    return Response(page, media_type=HTML_MEDIA_TYPE, headers=headers)


def _pull(
    request: Request, session: Session, principal: Principal, key: runs.ReportKey
) -> runs.Served:
    clock = get_clock(request)
    return runs.pull(session, key, actor=principal, today=clock.today(), now=clock.now())


_SCOPES = (
    "Who reads what: the regulator, admin, province reviewer, committee and the "
    "programme's fund managers the whole programme; a city reviewer its region; a bank "
    "its own figures. A fund manager of another programme: 403."
)
_RUNS = (
    "A closed period (its last day before today's business date) is served from its "
    "stored run: the first pull computes and stores version 1, later pulls return the "
    "stored bytes exactly, whatever was posted since (`POST /reports/runs` stores a new "
    "version). An open period is computed on every pull and never stored "
    "(`meta.closed: false`)."
)


@router.get(
    "/reports/quarterly",
    tags=[TAG],
    summary="Quarterly report 季度报告 (SKD-Q1, SKD-Q3, XB-Q1, XB-Q2, XB-F1)",
    description="Per bank and product and in total: loans filed, enterprises, outstanding "
    "at quarter end, principal 90+ days past due and the NPL ratio against 3 %, claims, "
    "recoveries, compensation rate and limit usage, leverage, suspensions, steps past "
    f"their deadline. {_SCOPES} {_RUNS}",
    response_model=None,
    responses=_report_responses(QuarterNotBegun),
)
def quarterly(
    request: Request,
    session: SessionDep,
    principal: CurrentPrincipal,
    program: Programme,
    year: Year,
    quarter: Quarter,
    fmt: FormatQuery = "json",
) -> Response:
    key = runs.ReportKey(
        "quarterly",
        program,
        runs.quarter(year, quarter),
        runs.viewer_scope(session, principal, program),
    )
    return _respond(request, _pull(request, session, principal, key), fmt, key)


@router.get(
    "/reports/quarterly.html",
    tags=[TAG],
    summary="Quarterly report page 季度报告页面 (SKD-Q3, XB-Q1)",
    description="The quarterly report as one self-contained HTML page for a browser: "
    "tables per section and charts drawn on the server as SVG (NPL per bank against the "
    "3 % line, compensation rate and limit usage per bank, the quarterly trend). Sent to "
    "a bearer-authenticated request like every endpoint. " + _RUNS,
    response_class=HTMLResponse,
    responses=_report_responses(QuarterNotBegun, page=True),
)
def quarterly_page(
    request: Request,
    session: SessionDep,
    principal: CurrentPrincipal,
    program: Programme,
    year: Year,
    quarter: Quarter,
) -> Response:
    key = runs.ReportKey(
        "quarterly",
        program,
        runs.quarter(year, quarter),
        runs.viewer_scope(session, principal, program),
    )
    return _respond(request, _pull(request, session, principal, key), "html", key)


@router.get(
    "/reports/monthly",
    tags=[TAG],
    summary="Monthly report 月度报告 (XB-Rep, SKD-R2)",
    description="A bank's month: filings, repayments, arrears by bucket, claims, "
    "recoveries, the status file's reconciliation differences and late or missing "
    "submissions (XB-Rep); the fund manager's and the bank's ledgers side by side (SKD-R2). "
    "A bank reads its own (another `bank_code`: 404); other roles name a bank they may "
    "see with `bank_code` (422 `bank_code_required` without it). " + _RUNS,
    response_model=None,
    responses=_report_responses(runs.BankCodeRequired),
)
def monthly(
    request: Request,
    session: SessionDep,
    principal: CurrentPrincipal,
    program: Programme,
    year: Year,
    month: Month,
    bank_code: Annotated[
        str | None,
        Query(
            max_length=32,
            pattern=r"^[A-Za-z0-9_.-]+$",
            description="the bank 合作银行代码 (required unless the caller is a bank)",
            examples=["LYG_RCB"],
        ),
    ] = None,
    fmt: FormatQuery = "json",
) -> Response:
    if bank_code is None and not principal.is_bank:
        raise runs.BankCodeRequired(
            "name the bank with bank_code",
            [
                runs.BankCodeRequired.violation(
                    f"required for role {principal.role}", "query", "bank_code"
                )
            ],
        )
    scope = runs.viewer_scope(session, principal, program, bank_code=bank_code)
    key = runs.ReportKey("monthly", program, runs.month(year, month), scope)
    return _respond(request, _pull(request, session, principal, key), fmt, key)


@router.get(
    "/reports/annual",
    tags=[TAG],
    summary="Annual report 年度报告 (SKD-A1, XB-Rep)",
    description="Per bank: volume, enterprises, average rate, approval time, NPL ratio, "
    "compliance (late and refused filings) (SKD-A1); the XB annual evaluation with a "
    f"recommendation per bank (expand, keep, reduce, terminate). {_SCOPES} {_RUNS}",
    response_model=None,
    responses=_report_responses(),
)
def annual(
    request: Request,
    session: SessionDep,
    principal: CurrentPrincipal,
    program: Programme,
    year: Year,
    fmt: FormatQuery = "json",
) -> Response:
    key = runs.ReportKey(
        "annual", program, runs.year_period(year), runs.viewer_scope(session, principal, program)
    )
    return _respond(request, _pull(request, session, principal, key), fmt, key)


# --- runs ----------------------------------------------------------------------------
def _runs_out(session: Session, items: list[ReportRun]) -> list[RunOut]:
    latest = runs.latest_versions(session, items)
    made = runs.submissions(session, [r.id for r in items])
    return [
        RunOut(
            id=r.id,
            kind=r.kind,
            program=r.program,
            period=r.period,
            scope=r.scope,
            version=r.version,
            latest=latest[(r.kind, r.program, r.period, r.scope)] == r.version,
            period_end=r.period_end,
            cutoff_at=r.cutoff_at,
            ledger_first_entry_id=r.ledger_first_entry_id,
            ledger_last_entry_id=r.ledger_last_entry_id,
            content_sha256=r.content_sha256,
            changes=[ChangeOut.model_validate(c) for c in r.changes],
            created_by_id=r.created_by_id,
            created_at=r.created_at,
            submissions=[SubmissionOut.model_validate(s, from_attributes=True) for s in made[r.id]],
        )
        for r in items
    ]


@router.get(
    "/reports/runs",
    tags=[TAG],
    summary="Stored report runs 已存档报告",
    description="The stored runs the caller may read, oldest first (paginated): filters "
    "`kind`, `program`, `period`. A bank sees its own runs, a city reviewer its region's, "
    "a fund manager its programme's (whole-programme and its banks').",
    responses=problems(*PAGE_REFUSALS),
)
def list_runs(
    session: SessionDep,
    principal: CurrentPrincipal,
    page: Annotated[PageParams, Depends(page_params)],
    kind: Annotated[
        ReportKind | None,
        Query(description="quarterly 季度 / monthly 月度 / annual 年度", examples=["quarterly"]),
    ] = None,
    program: Annotated[
        ProgramCode | None,
        Query(description="programme 项目: SKD 苏科贷 or XB 信保基金", examples=["SKD"]),
    ] = None,
    period: Annotated[
        str | None,
        Query(
            max_length=8,
            description="`YYYY-Qn`, `YYYY-MM` or `YYYY` 报告期",
            examples=["2026-Q3"],
        ),
    ] = None,
) -> Page[RunOut]:
    stmt = select(ReportRun)
    clause = runs.run_filter(session, principal)
    if clause is not None:
        stmt = stmt.where(clause)
    if kind is not None:
        stmt = stmt.where(ReportRun.kind == kind)
    if program is not None:
        stmt = stmt.where(ReportRun.program == program)
    if period is not None:
        stmt = stmt.where(ReportRun.period == period)
    items, cursor = paginate(session, stmt, ReportRun.id, page)
    return Page[RunOut](items=_runs_out(session, list(items)), next_cursor=cursor)


class RunNotFound(runs.ReportNotFound):
    title, title_zh = "Report run not found", "报告存档不存在或不在权限范围内"


def _readable_run(session: Session, principal: Principal, run_id: int) -> ReportRun:
    run = session.get(ReportRun, run_id)
    if run is None or not runs.can_read(session, principal, run):
        raise RunNotFound(f"report run {run_id} not found")
    return run


@router.get(
    "/reports/runs/{run_id}",
    tags=[TAG],
    summary="One stored run 报告存档 (metadata, or the report in a format)",
    description="Without `format`: the run's metadata — cut-off, ledger entry range, "
    "SHA-256, version, the changes against the previous version and its submissions. "
    "With `format` (`json`, `csv`, `xlsx`, `html`): that version of the report, `json` "
    "being the stored bytes exactly. Outside the caller's scope: 404.",
    response_model=None,
    responses={
        200: {
            "description": "the run's metadata (no `format`), or the report",
            "model": RunOut,
            "content": {
                "text/csv": {"schema": {"type": "string"}},
                XLSX_MEDIA_TYPE: {"schema": {"type": "string", "format": "binary"}},
                "text/html": {"schema": {"type": "string"}},
            },
            "headers": _HEADERS_DOC,
        },
        304: {"description": "not modified: `If-None-Match` names the current ETag"},
        **problems(RunNotFound),
    },
)
def get_run(
    request: Request,
    session: SessionDep,
    principal: CurrentPrincipal,
    run_id: ObjectId,
    fmt: Annotated[
        RunFormat | None,
        Query(
            alias="format",
            description="the report in this format instead of the metadata 输出格式",
            examples=["html"],
        ),
    ] = None,
) -> Response | RunOut:
    run = _readable_run(session, principal, run_id)
    if fmt is None:
        return _runs_out(session, [run])[0]
    key = runs.ReportKey(run.kind, run.program, runs.parse_period(run.kind, run.period), run.scope)
    return _respond(request, runs.served_run(run), fmt, key)


@router.post(
    "/reports/runs",
    tags=[TAG],
    status_code=status.HTTP_201_CREATED,
    summary="Run a closed period's report again 重新生成报告 (a new version)",
    description="Computes the report of a closed period now and stores it as the next "
    "version, listing in `changes` every figure that differs from the previous version "
    "(section, row, column, old, new); later pulls serve it. By the regulator or the "
    "province reviewer (any scope), or a fund manager of the programme (its whole "
    "programme, or one of its banks). An open period: 422 `period_not_closed`. "
    "`Location`: the new run.",
    responses=problems(
        RoleNotAllowed,
        runs.ScopeNotAllowed,
        runs.PeriodNotClosed,
        runs.ReportRunConflict,
    ),
)
def rerun(
    request: Request,
    response: Response,
    session: SessionDep,
    principal: CurrentPrincipal,
    body: Annotated[RunIn, Body(openapi_examples=_RUN_EXAMPLES)],
) -> RunOut:
    key = runs.ReportKey(
        body.kind, body.program, runs.parse_period(body.kind, body.period), body.scope
    )
    runs.check_rerun(session, principal, key)
    clock = get_clock(request)
    run = runs.rerun(session, key, actor=principal, today=clock.today(), now=clock.now())
    set_location(request, response, "get_run", run_id=run.id)
    return _runs_out(session, [run])[0]


@router.post(
    "/reports/runs/{run_id}/submission",
    tags=[TAG],
    status_code=status.HTTP_201_CREATED,
    summary="Mark a run submitted 报告报送 (XB-Rep)",
    description="Records that the run was submitted, e.g. the fund manager's quarterly "
    "report to the 领导小组办公室 (XB-Rep: due on the 15th of January, April, July and "
    "October for the quarter before): `due_on`, and `late` when today's business date is "
    "after it. By a fund manager of the run's programme or the province reviewer; only "
    "the latest version (409 `run_superseded`), once (409 `already_submitted`). "
    "`Location`: the run, which lists its submissions.",
    responses=problems(
        RoleNotAllowed,
        RunNotFound,
        runs.RunSuperseded,
        runs.AlreadySubmitted,
        runs.SubmittedToRequired,
    ),
)
def submit_report_run(
    request: Request,
    response: Response,
    session: SessionDep,
    principal: CurrentPrincipal,
    run_id: ObjectId,
    body: Annotated[SubmissionIn, Body(openapi_examples=_SUBMISSION_EXAMPLES)],
) -> SubmissionOut:
    run = _readable_run(session, principal, run_id)
    clock = get_clock(request)
    made = runs.submit(
        session,
        run,
        actor=principal,
        submitted_to=body.submitted_to,
        comment=body.comment,
        today=clock.today(),
        now=clock.now(),
    )
    set_location(request, response, "get_run", run_id=run.id)
    return SubmissionOut.model_validate(made, from_attributes=True)
