"""Stored report runs and the report endpoints (issue parts 4 and 5): a closed period's
report is stored on its first pull and served byte for byte ever after; a re-run is a
new version listing the figures that changed; an open period is computed live and never
stored; submissions carry their due date (XB-Rep); the runs are append-only. Every
endpoint is scoped by role and refuses bad parameters with every field listed.

The figures come from a small stand-in computation over the ledger (entries and debits
per fund of the programme, recorded by the cut-off), so that a late posting changes a
figure; the stored-run mechanics are the same whatever computes the document."""

from __future__ import annotations

import hashlib
import io
import json
import threading
from collections.abc import Iterator
from datetime import UTC, date, datetime
from typing import Any

import pytest
from openpyxl import load_workbook
from sqlalchemy import Connection, Engine, case, func, select
from sqlalchemy.orm import Session, sessionmaker

from app.auth.principal import Principal
from app.config import Settings
from app.ledger import capital
from app.models import Fund, LedgerEntry, LedgerLeg, ReportRun, ReportSubmission, User
from app.reports import runs
from app.reports.document import Chart, Column, ReportDocument, Section
from tests.fixtures.api import Api, api_fixture
from tests.fixtures.concurrency import race
from tests.fixtures.factories import loan_book, principal
from tests.fixtures.ledger import raw_refused

Q = "/reports/quarterly?program=SKD&year=2025&quarter=1"  # closed on 2026-03-31
OPEN = "/reports/quarterly?program=SKD&year=2026&quarter=1"  # ends on the business date
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def ledger_figures(
    session: Session, key: runs.ReportKey, viewer: Principal, cutoff: datetime, today: date
) -> ReportDocument:
    """Per fund of the programme: entries and debits with a business date in the period,
    recorded by the cut-off."""
    p = key.period
    rows = session.execute(
        select(
            LedgerLeg.fund_code,
            func.count(func.distinct(LedgerEntry.id)),
            func.sum(case((LedgerLeg.amount_fen > 0, LedgerLeg.amount_fen), else_=0)),
        )
        .join(LedgerEntry, LedgerEntry.id == LedgerLeg.entry_id)
        .join(Fund, Fund.code == LedgerLeg.fund_code)
        .where(
            Fund.program == key.program,
            LedgerEntry.business_date.between(p.start, p.end),
            LedgerEntry.recorded_at <= cutoff,
        )
        .group_by(LedgerLeg.fund_code)
        .order_by(LedgerLeg.fund_code)
    ).all()
    section = Section(
        "funds",
        "各基金台账",
        "Funds' books",
        (
            Column("fund", "基金", "Fund"),
            Column("entries", "分录数", "Entries", "int"),
            Column("debits", "借方合计", "Debits", "money"),
        ),
        tuple({"fund": f, "entries": int(n), "debits": int(d)} for f, n, d in rows),
    )
    return ReportDocument(
        kind=key.kind,  # type: ignore[arg-type]
        program=key.program,
        period=p.label,
        period_start=p.start,
        period_end=p.end,
        title_zh=f"测试报告 {p.label}",
        title_en=f"Test report {p.label}",
        sections=(section,),
        charts=(Chart("debits", "借方", "Debits", "funds", "fund", ("debits",), "bar", 300),),
        scope=viewer.bank_code or viewer.region_code or "",
        meta={"viewer_role": viewer.role, "viewer_bank": viewer.bank_code},
    )


@pytest.fixture
def stand_in_figures(monkeypatch: pytest.MonkeyPatch) -> None:
    for kind in runs.KINDS:
        monkeypatch.setitem(runs.BUILDERS, kind, ledger_figures)


STAND_IN = pytest.mark.usefixtures("stand_in_figures")


@pytest.fixture
def api(  # type: ignore[no-untyped-def]
    settings: Settings, engine: Engine, session_factory: sessionmaker[Session], auth
) -> Iterator[Api]:
    yield from api_fixture(settings, engine, session_factory, auth)


def get(
    api: Api, url: str, user: str = "regulator", day: str = "2026-03-31", **headers: str
) -> Any:
    return api.on(day).get("/api/v1" + url, headers={**api.auth(user), **headers})


def late_contribution(session: Session, paid_on: date, fen: int = 123_456) -> None:
    """Capital paid into the SKD province fund, dated back into a closed period and
    recorded now."""
    capital.contribute(
        session,
        fund_code="SKD_PROV",
        contributor_code="JS_FINANCE",
        amount_fen=fen,
        paid_on=paid_on,
        now=datetime.now(UTC),
        actor_id=None,
    )
    session.commit()


def fund_row(body: dict[str, Any], fund: str) -> dict[str, Any]:
    return next(r for r in body["sections"][0]["rows"] if r["fund"] == fund)


def user_id(session: Session, username: str) -> int:
    return session.scalars(select(User.id).where(User.username == username)).one()


# --- stored runs ---------------------------------------------------------------------
@STAND_IN
def test_closed_quarter_is_stored_on_first_pull_and_served_byte_identical_after_late_posting(
    api: Api, session: Session
) -> None:
    """A closed quarter's first pull stores version 1 (canonical JSON, its SHA-256, the
    cut-off, the ledger entry range); a posting dated into the quarter afterwards leaves
    every later pull byte-identical, in every format."""
    capital.contribute(  # another programme's entry in the quarter, the latest id
        session,
        fund_code="XB_POOL",
        contributor_code="LYG_CITY",
        amount_fen=100,
        paid_on=date(2025, 3, 30),
        now=datetime.now(UTC),
        actor_id=None,
    )
    session.commit()
    first = get(api, Q)
    assert first.status_code == 200, first.text
    assert first.headers["content-type"] == "application/json"
    digest = hashlib.sha256(first.content).hexdigest()
    assert first.headers["X-Content-SHA256"] == digest
    assert first.headers["X-Report-Version"] == "1"
    assert first.headers["ETag"] == f'"{digest}-json"'
    body = first.json()
    assert (
        first.content
        == json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
    )
    assert body["meta"]["closed"] is True and body["meta"]["version"] == 1
    assert body["meta"]["viewer_role"] == "regulator" and body["meta"]["run_by"] == "regulator"
    assert fund_row(body, "SKD_PROV")["entries"] == 1

    run = session.get(ReportRun, int(first.headers["X-Report-Run-Id"]))
    assert run is not None
    assert (run.kind, run.program, run.period, run.scope, run.version) == (
        "quarterly",
        "SKD",
        "2025-Q1",
        "",
        1,
    )
    assert run.content.encode() == first.content and run.content_sha256 == digest
    assert run.period_end == date(2025, 3, 31)
    assert run.created_by_id == user_id(session, "regulator")
    in_quarter = session.scalars(
        select(LedgerEntry.id)
        .join(LedgerLeg, LedgerLeg.entry_id == LedgerEntry.id)
        .join(Fund, Fund.code == LedgerLeg.fund_code)
        .where(
            Fund.program == "SKD",
            LedgerEntry.business_date.between(date(2025, 1, 1), date(2025, 3, 31)),
        )
    ).all()
    assert (run.ledger_first_entry_id, run.ledger_last_entry_id) == (
        min(in_quarter),
        max(in_quarter),
    )
    assert body["meta"]["ledger_last_entry_id"] == run.ledger_last_entry_id
    assert body["meta"]["cutoff_at"] == run.cutoff_at.isoformat().replace("+00:00", "Z")
    xlsx = get(api, Q + "&format=xlsx")

    late_contribution(session, date(2025, 2, 1))
    again = get(api, Q)
    assert again.content == first.content
    assert again.headers["X-Report-Run-Id"] == first.headers["X-Report-Run-Id"]
    assert get(api, Q + "&format=xlsx").content == xlsx.content
    assert session.scalar(select(func.count()).select_from(ReportRun)) == 1
    not_modified = get(api, Q, **{"If-None-Match": first.headers["ETag"]})
    assert not_modified.status_code == 304 and not_modified.content == b""


@STAND_IN
def test_rerun_stores_version_2_listing_the_changed_figures(api: Api, session: Session) -> None:
    """POST /reports/runs on a closed period: version 2 with every changed figure
    (section, row, column, old, new); pulls now serve it; version 1 stays readable."""
    v1 = get(api, Q)
    late_contribution(session, date(2025, 2, 1), fen=123_456)
    made = api.call(
        "2026-03-31",
        "regulator",
        "POST",
        "/reports/runs",
        201,
        json={"kind": "quarterly", "program": "SKD", "period": "2025-Q1"},
    )
    assert made["version"] == 2 and made["latest"] is True and made["scope"] == ""
    old = fund_row(v1.json(), "SKD_PROV")
    assert made["changes"] == [
        {"section": "funds", "row": "SKD_PROV", "column": "entries", "old": 1, "new": 2},
        {
            "section": "funds",
            "row": "SKD_PROV",
            "column": "debits",
            "old": old["debits"],
            "new": f"{int(old['debits'].replace('.', '')) / 100 + 1234.56:.2f}",
        },
    ]
    pulled = get(api, Q)
    assert pulled.headers["X-Report-Version"] == "2"
    assert pulled.headers["X-Report-Run-Id"] == str(made["id"])
    assert pulled.content != v1.content and fund_row(pulled.json(), "SKD_PROV")["entries"] == 2
    assert hashlib.sha256(pulled.content).hexdigest() == made["content_sha256"]
    older = get(api, f"/reports/runs/{v1.headers['X-Report-Run-Id']}?format=json")
    assert older.content == v1.content and older.headers["X-Report-Version"] == "1"
    meta = get(api, f"/reports/runs/{v1.headers['X-Report-Run-Id']}").json()
    assert meta["latest"] is False and meta["changes"] == []
    listed = get(api, "/reports/runs?kind=quarterly&program=SKD&period=2025-Q1").json()
    assert [r["version"] for r in listed["items"]] == [1, 2]


@STAND_IN
def test_open_period_is_computed_live_and_never_stored(api: Api, session: Session) -> None:
    """A quarter ending on the business date is open: every pull computes it afresh
    (`closed: false`, no run headers), nothing is stored, a re-run is refused."""
    first = get(api, OPEN)
    assert first.status_code == 200 and first.json()["meta"]["closed"] is False
    assert "X-Report-Run-Id" not in first.headers and "X-Report-Version" not in first.headers
    assert first.headers["X-Content-SHA256"] == hashlib.sha256(first.content).hexdigest()
    before = (
        fund_row(first.json(), "SKD_PROV")["entries"] if first.json()["sections"][0]["rows"] else 0
    )
    late_contribution(session, date(2026, 3, 20))
    second = get(api, OPEN)
    assert fund_row(second.json(), "SKD_PROV")["entries"] == before + 1
    assert session.scalar(select(func.count()).select_from(ReportRun)) == 0
    refused = api.call(
        "2026-03-31",
        "regulator",
        "POST",
        "/reports/runs",
        422,
        json={"kind": "quarterly", "program": "SKD", "period": "2026-Q1"},
    )
    assert refused["code"] == "period_not_closed"
    assert refused["errors"][0]["loc"] == ["body", "period"]
    # the next day the quarter is closed: the first pull stores it
    closed = get(api, OPEN, day="2026-04-01")
    assert closed.json()["meta"]["closed"] is True and closed.headers["X-Report-Version"] == "1"


@STAND_IN
def test_formats_media_types_and_file_names(api: Api) -> None:
    """CSV (UTF-8 with BOM) and XLSX downloads with an ASCII file name and the RFC 5987
    UTF-8 one; the quarterly page as text/html with its charts; all carry the hash of
    the canonical JSON."""
    digest = get(api, Q).headers["X-Content-SHA256"]
    as_csv = get(api, Q + "&format=csv")
    assert as_csv.headers["content-type"] == "text/csv; charset=utf-8"
    assert as_csv.content.startswith("\ufeff测试报告 2025-Q1".encode())
    assert as_csv.headers["content-disposition"] == (
        'attachment; filename="quarterly-report-SKD-2025-Q1.csv"; '
        "filename*=UTF-8''%E6%B5%8B%E8%AF%95%E6%8A%A5%E5%91%8A%202025-Q1.csv"
    )
    as_xlsx = get(api, Q + "&format=xlsx")
    assert as_xlsx.headers["content-type"] == XLSX
    assert 'filename="quarterly-report-SKD-2025-Q1.xlsx"' in as_xlsx.headers["content-disposition"]
    assert load_workbook(io.BytesIO(as_xlsx.content)).sheetnames == ["各基金台账"]
    page = get(api, "/reports/quarterly.html?program=SKD&year=2025&quarter=1")
    assert page.headers["content-type"] == "text/html; charset=utf-8"
    assert page.headers["content-security-policy"].startswith("default-src 'none'")
    assert '<html lang="zh-CN">' in page.text and 'data-threshold-bp="300"' in page.text
    for r in (as_csv, as_xlsx, page):
        assert r.headers["X-Content-SHA256"] == digest and r.headers["X-Report-Version"] == "1"
    assert len({r.headers["ETag"] for r in (as_csv, as_xlsx, page)}) == 3


# --- submissions ---------------------------------------------------------------------
@pytest.mark.usefixtures("stand_in_figures")
def test_xb_rep_quarterly_report_submission_due_on_the_15th_and_late_after(
    api: Api, session: Session
) -> None:
    """XB-Rep: the fund manager's 2025-Q4 report is due 2026-01-15 at the 领导小组办公室;
    submitted on 2026-01-14 it is on time; 2026-Q1's, submitted 2026-04-16, is late. Only
    once, and only the latest version."""
    q4 = "/reports/quarterly?program=XB&year=2025&quarter=4"
    run_id = get(api, q4, "fund_xb", "2026-01-14").headers["X-Report-Run-Id"]
    made = api.call(
        "2026-01-14", "fund_xb", "POST", f"/reports/runs/{run_id}/submission", 201, json={}
    )
    assert made["submitted_to"] == "领导小组办公室"
    assert made["due_on"] == "2026-01-15" and made["late"] is False
    assert made["submitted_by_id"] == user_id(session, "fund_xb")
    again = api.call(
        "2026-01-14", "fund_xb", "POST", f"/reports/runs/{run_id}/submission", 409, json={}
    )
    assert again["code"] == "already_submitted"
    shown = get(api, f"/reports/runs/{run_id}", "fund_xb").json()
    assert [s["due_on"] for s in shown["submissions"]] == ["2026-01-15"]

    q1 = "/reports/quarterly?program=XB&year=2026&quarter=1"
    old_id = get(api, q1, "fund_xb", "2026-04-16").headers["X-Report-Run-Id"]
    newer = api.call(
        "2026-04-16",
        "fund_xb",
        "POST",
        "/reports/runs",
        201,
        json={"kind": "quarterly", "program": "XB", "period": "2026-Q1"},
    )
    stale = api.call(
        "2026-04-16", "fund_xb", "POST", f"/reports/runs/{old_id}/submission", 409, json={}
    )
    assert stale["code"] == "run_superseded"
    late = api.call(
        "2026-04-16",
        "fund_xb",
        "POST",
        f"/reports/runs/{newer['id']}/submission",
        201,
        json={"comment": "补报"},
    )
    assert late["due_on"] == "2026-04-15" and late["late"] is True
    assert runs.due_on("quarterly", runs.quarter(2025, 4), 15) == date(2026, 1, 15)
    assert runs.due_on("monthly", runs.month(2025, 12), 15) is None
    # another programme's fund manager does not see the run; the regulator reads it
    # but does not submit
    for user, status, code in (
        ("fund_province", 404, "not_found"),
        ("regulator", 403, "role_not_allowed"),
    ):
        refused = api.call(
            "2026-04-16", user, "POST", f"/reports/runs/{newer['id']}/submission", status, json={}
        )
        assert refused["code"] == code


@STAND_IN
def test_report_runs_and_submissions_are_append_only(
    api: Api, session: Session, connection: Connection
) -> None:
    """Stored runs and submissions can be neither updated nor deleted (both databases:
    triggers), so a stored run's bytes never change."""
    run_id = int(get(api, Q).headers["X-Report-Run-Id"])
    session.add(
        ReportSubmission(
            run_id=run_id, submitted_to="x", submitted_by_id=user_id(session, "province")
        )
    )
    session.commit()
    for sql in (
        f"UPDATE report_runs SET content = '{{}}' WHERE id = {run_id}",
        f"DELETE FROM report_runs WHERE id = {run_id}",
        f"UPDATE report_submissions SET late = true WHERE run_id = {run_id}",
        f"DELETE FROM report_submissions WHERE run_id = {run_id}",
    ):
        assert "append-only" in raw_refused(connection, sql), sql


# --- scopes and refusals -------------------------------------------------------------
@STAND_IN
def test_scopes_a_bank_reads_its_own_and_runs_are_listed_by_scope(
    api: Api, session: Session
) -> None:
    """A bank's pull is computed and stored for the bank (`bank:JSB`); a bank never
    reads another bank's report or run (404); a fund manager of another programme is
    refused (403); the regulator lists every run, the bank its own."""
    mine = get(api, Q, "bank_jsb")
    assert mine.status_code == 200 and mine.json()["meta"]["viewer_bank"] == "JSB"
    assert mine.json()["meta"]["viewer_role"] == "bank"
    whole = get(api, Q)
    assert whole.json()["meta"]["viewer_role"] == "regulator"
    by_scope = {r.scope: r.id for r in session.scalars(select(ReportRun))}
    assert set(by_scope) == {"bank:JSB", ""}
    assert get(api, f"/reports/runs/{by_scope['']}", "bank_jsb").status_code == 404
    assert get(api, f"/reports/runs/{by_scope['bank:JSB']}", "bank_icbc").status_code == 404
    assert [r["scope"] for r in get(api, "/reports/runs", "bank_jsb").json()["items"]] == [
        "bank:JSB"
    ]
    assert {r["scope"] for r in get(api, "/reports/runs").json()["items"]} == {"bank:JSB", ""}
    month = "/reports/monthly?program=SKD&year=2025&month=2"
    assert get(api, month + "&bank_code=ICBC_JS", "bank_jsb").status_code == 404
    own = get(api, month + "&bank_code=JSB", "bank_jsb")
    assert own.status_code == 200 and own.json()["meta"]["viewer_bank"] == "JSB"
    assert get(api, month + "&bank_code=LYG_RCB", "fund_province").status_code == 404
    assert get(api, month + "&bank_code=JSB", "city_nanjing").json()["meta"]["viewer_bank"] == "JSB"
    missing = get(api, month, "regulator")
    assert missing.status_code == 422 and missing.json()["code"] == "bank_code_required"
    region = get(api, "/reports/annual?program=SKD&year=2025", "city_nanjing").json()
    assert region["meta"]["viewer_role"] == "city_reviewer" and region["scope"] == "320100"
    # the province fund's manager reads the whole programme, a city fund's its fund
    assert get(api, Q, "fund_province").headers["X-Report-Run-Id"] == str(by_scope[""])
    city_fund = get(api, Q, "fund_nanjing")
    assert city_fund.json()["meta"]["viewer_role"] == "fund_manager"
    assert city_fund.headers["X-Report-Run-Id"] != str(by_scope[""])
    assert get(api, f"/reports/runs/{by_scope['']}", "fund_nanjing").status_code == 404
    listed = get(api, "/reports/runs", "fund_nanjing").json()["items"]
    assert {(r["kind"], r["scope"]) for r in listed} == {
        ("monthly", "bank:JSB"),  # a bank's month: any fund manager of the programme
        ("quarterly", "fund:SKD_CITY_320100"),
    }
    other = get(api, Q, "fund_xb")
    assert other.status_code == 403 and other.json()["code"] == "role_not_allowed"
    for user, status, body in (
        ("bank_jsb", 403, {"kind": "annual", "program": "SKD", "period": "2025"}),
        ("fund_xb", 403, {"kind": "annual", "program": "SKD", "period": "2025"}),
        (
            "fund_province",
            403,
            {"kind": "annual", "program": "SKD", "period": "2025", "scope": "region:320100"},
        ),
        ("fund_nanjing", 403, {"kind": "annual", "program": "SKD", "period": "2025"}),
        (
            "fund_nanjing",
            201,
            {"kind": "annual", "program": "SKD", "period": "2025", "scope": "fund:SKD_CITY_320100"},
        ),
        (
            "fund_province",
            201,
            {"kind": "monthly", "program": "SKD", "period": "2025-02", "scope": "bank:JSB"},
        ),
    ):
        api.call("2026-03-31", user, "POST", "/reports/runs", status, json=body)


@STAND_IN
def test_bad_parameters_are_refused_with_every_field_listed(api: Api) -> None:
    """Unknown programme, quarter 5, month 13, format pdf, a malformed period or scope:
    422 naming each field; nothing is computed or stored."""
    bad = get(api, "/reports/quarterly?program=ZZ&year=2026&quarter=5&format=pdf")
    assert bad.status_code == 422 and bad.headers["content-type"] == "application/problem+json"
    assert {tuple(e["loc"]) for e in bad.json()["errors"]} == {
        ("query", "program"),
        ("query", "quarter"),
        ("query", "format"),
    }
    month = get(api, "/reports/monthly?program=XB&year=2026&month=13&format=xlsx")
    assert [tuple(e["loc"]) for e in month.json()["errors"]] == [("query", "month")]
    year = get(api, "/reports/annual?program=SKD&year=1999")
    assert [tuple(e["loc"]) for e in year.json()["errors"]] == [("query", "year")]
    assert get(api, "/reports/quarterly.html?program=SKD&year=2025").status_code == 422
    rerun = api.call(
        "2026-03-31",
        "regulator",
        "POST",
        "/reports/runs",
        422,
        json={"kind": "monthly", "program": "SKD", "period": "2025-Q1", "scope": "bank JSB"},
    )
    assert {tuple(e["loc"]) for e in rerun["errors"]} == {("body", "period"), ("body", "scope")}
    whole_month = api.call(
        "2026-03-31",
        "regulator",
        "POST",
        "/reports/runs",
        422,
        json={"kind": "monthly", "program": "SKD", "period": "2025-02"},
    )
    assert [tuple(e["loc"]) for e in whole_month["errors"]] == [("body", "scope")]
    assert get(api, "/reports/runs/999999").status_code == 404
    assert get(api, "/reports/runs/1?format=pdf").status_code == 422
    unauthenticated = api.on("2026-03-31").get("/api/v1" + Q)
    assert unauthenticated.status_code == 401


# --- the programmes' own figures -----------------------------------------------------
def test_skd_q3_xb_rep_skd_a1_reports_of_a_small_book_in_every_format(
    api: Api, session: Session
) -> None:
    """The quarterly (SKD-Q3, XB-Q1), monthly (XB-Rep) and annual (SKD-A1) reports of a
    small book, as the programmes compute them: each closed period is stored once and
    every format renders it — the JSON bytes as stored, CSV with its BOM, one XLSX sheet
    per section, the page with one SVG per chart."""
    loan_book(session)
    day = "2026-10-15"
    urls = (
        "/reports/quarterly?program=SKD&year=2026&quarter=3",
        "/reports/quarterly?program=XB&year=2026&quarter=3",
        "/reports/monthly?program=XB&year=2026&month=9&bank_code=LYG_RCB",
        "/reports/annual?program=SKD&year=2025",
    )
    for url in urls:
        first = get(api, url, day=day)
        assert first.status_code == 200, (url, first.text)
        body = first.json()
        assert body["meta"]["closed"] is True and body["meta"]["version"] == 1, url
        assert body["sections"], url
        run = session.get(ReportRun, int(first.headers["X-Report-Run-Id"]))
        assert run is not None and run.content.encode() == first.content
        assert get(api, url, day=day).content == first.content
        as_csv = get(api, url + "&format=csv", day=day)
        assert as_csv.content.startswith(b"\xef\xbb\xbf"), url
        book = load_workbook(io.BytesIO(get(api, url + "&format=xlsx", day=day).content))
        assert len(book.sheetnames) == len(body["sections"]), url
    page = get(api, "/reports/quarterly.html?program=SKD&year=2026&quarter=3", day=day)
    assert page.status_code == 200
    charts = get(api, urls[0], day=day).json()["charts"]
    assert charts and page.text.count('<svg class="chart"') == len(charts)
    assert 'data-threshold-bp="300"' in page.text  # the 3 % NPL line (SKD-Q3)


def test_parallel_first_pulls_store_one_run_and_serve_it_to_all(
    pg_engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """PostgreSQL, committed transactions on parallel connections: four first pulls of a
    closed quarter all compute it, one stores version 1, and every pull serves that
    run's bytes (the others meet the unique version and read it back)."""
    pulls = 4
    computing = threading.Barrier(pulls)

    def together(*args: Any) -> ReportDocument:
        computing.wait(timeout=30)
        return ledger_figures(*args)

    monkeypatch.setitem(runs.BUILDERS, "quarterly", together)
    with Session(pg_engine) as s:
        regulator = principal(s, "regulator")
    key = runs.ReportKey("quarterly", "SKD", runs.quarter(2025, 2), "")

    def pull(s: Session, _: int) -> str:
        served = runs.pull(s, key, actor=regulator, today=date(2026, 3, 31), now=datetime.now(UTC))
        assert served.run is not None
        return f"{served.run.id}:{served.sha256}:{hashlib.sha256(served.content).hexdigest()}"

    outcomes = race(pg_engine, list(range(pulls)), pull)
    assert len(outcomes) == 1 and sum(outcomes.values()) == pulls
    (outcome,) = outcomes
    run_id, digest, served = outcome.split(":")
    assert digest == served
    with Session(pg_engine) as s:
        stored = s.scalars(select(ReportRun).where(ReportRun.period == "2025-Q2")).all()
    assert [(r.id, r.version, r.content_sha256) for r in stored] == [(int(run_id), 1, digest)]


# --- stored when the period closes ---------------------------------------------------
def test_the_last_closed_quarter_and_year_of_a_business_date() -> None:
    labels = {
        day: [p.label for p in runs.last_closed(date.fromisoformat(day))]
        for day in ("2026-12-04", "2026-01-01", "2026-03-31", "2026-04-01")
    }
    assert labels == {
        "2026-12-04": ["2026-Q3", "2025"],
        "2026-01-01": ["2025-Q4", "2025"],
        "2026-03-31": ["2025-Q4", "2025"],
        "2026-04-01": ["2026-Q1", "2025"],
    }


@STAND_IN
def test_closed_periods_stored_ahead_are_what_the_first_pull_serves(
    api: Api, session: Session
) -> None:
    """`store_closed` (`ledger store-reports`) stores each programme's report of the last
    closed quarter and year once — a second call stores nothing — and a regulator's
    first pull of that quarter is then the stored run, byte for byte, not a new build."""
    regulator = principal(session, "regulator")
    now = datetime.now(UTC)
    done = runs.store_closed(
        session, ["SKD", "XB"], actor=regulator, today=date(2026, 4, 2), now=now
    )
    session.commit()
    assert [(k.kind, k.program, k.period.label, stored) for k, _, stored in done] == [
        ("quarterly", "SKD", "2026-Q1", True),
        ("annual", "SKD", "2025", True),
        ("quarterly", "XB", "2026-Q1", True),
        ("annual", "XB", "2025", True),
    ]
    again = runs.store_closed(
        session, ["SKD", "XB"], actor=regulator, today=date(2026, 4, 3), now=datetime.now(UTC)
    )
    assert [stored for *_, stored in again] == [False] * 4
    assert [run.id for _, run, _ in again] == [run.id for _, run, _ in done]
    late_contribution(session, date(2026, 2, 1))  # would change a figure of a new build
    pulled = get(api, "/reports/quarterly?program=SKD&year=2026&quarter=1", day="2026-04-02")
    assert pulled.status_code == 200, pulled.text
    stored = done[0][1]
    assert pulled.headers["X-Report-Run-Id"] == str(stored.id)
    assert pulled.content == stored.content.encode()
    assert session.scalar(select(func.count()).select_from(ReportRun)) == 4


def test_cli_store_reports_stores_once_and_refuses_an_unknown_user_or_programme(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """`ledger store-reports --by USER` on a fresh database builds the real reports of the
    last closed quarter and year for both programmes (empty books), once; exit 2 and
    nothing stored for a user who is not an active regulator or admin, or an unknown
    programme."""
    from app.auth.service import ensure_admin
    from app.cli import main, migrate
    from app.config import get_settings
    from app.db import make_engine
    from app.seed.loader import seed_reference

    url = f"sqlite:///{tmp_path / 'cli.db'}"
    migrate(url)
    engine = make_engine(url)
    with Session(engine) as s, s.begin():
        seed_reference(s)
        ensure_admin(s, username="ops", password="ops-password-2026")
    monkeypatch.setenv("DATABASE_URL", url)
    get_settings.cache_clear()
    try:
        for argv in (["--by", "nobody"], ["--by", "ops", "--program", "NOPE"]):
            with pytest.raises(SystemExit) as refused:
                main(["store-reports", *argv])
            assert refused.value.code == 2
            assert "refused" in capsys.readouterr().err
        with Session(engine) as s:
            assert s.scalar(select(func.count()).select_from(ReportRun)) == 0
        for expected in ("stored", "already stored"):
            with pytest.raises(SystemExit) as done:
                main(["store-reports", "--by", "ops"])
            assert done.value.code == 0
            out = capsys.readouterr().out.splitlines()
            assert len(out) == 4 and all(f": {expected}, version 1" in line for line in out), out
        with Session(engine) as s:
            kept = s.scalars(select(ReportRun.program).order_by(ReportRun.id)).all()
        assert kept == ["SKD", "SKD", "XB", "XB"]
    finally:
        get_settings.cache_clear()
        engine.dispose()
