"""The quarterly report on a province-sized book (#14 part 8): for each programme, the
report document built by `app.reports.quarterly.build_quarterly`, rendered to canonical
JSON and to XLSX, beside one hand-written SQL aggregate over the same loans timed with
psycopg directly, in one run, interleaved.

    nice -n 10 .venv/bin/python bench/report_data.py          # the data, once (~15 min)
    .venv/bin/python bench/report_bench.py [--runs 5] [--year 2026 --quarter 3]
        [--variant jit=off] [--http] [--profile] [--no-pulls] [--append]
    .venv/bin/python bench/report_bench.py --digests     # the figures' SHA-256 only

Each figure is warmed up once, then timed `--runs` times; the table shows the median and
the maximum. Per run the document is built once and rendered to both formats, so "JSON"
is that run's build + canonical JSON, "XLSX" its build + workbook. The report is built
for the regulator (the whole programme) with the cut-off at the end of the book
(`report_data.AS_OF`). `--variant SETTINGS` times the same again with server settings
for the session (e.g. `jit=off`), in the same rounds. In the same rounds again (unless
`--no-pulls`), the closed quarter as the service serves it, `app.reports.runs.pull` (what
`GET /reports/quarterly` calls): the first pull, which computes the document and stores it
as version 1, and the re-pull of that stored run (what a regulator gets on every later
pull), each in JSON and XLSX, in a transaction rolled back per round. `--digests` only
prints the SHA-256 of each programme's canonical JSON (the closed quarter at two cut-offs,
the open quarter), to show a change leaves every figure as it was. `--http` also times the
service in-process (TestClient): the closed quarter computed and stored as a new version
(`POST /reports/runs`), pulled from its stored run (`GET /reports/quarterly`), and the
open quarter, computed per request. `--profile` (or a figure over its target: JSON 1 s,
XLSX 5 s) adds a cProfile of one build and every SQL statement of it with its time, the
slowest ones with `EXPLAIN (ANALYZE, BUFFERS)`. `--append` adds the conditions, command
and tables to `RESULTS.md`."""

from __future__ import annotations

import argparse
import cProfile
import hashlib
import io
import logging
import os
import platform
import pstats
import statistics
import subprocess
import sys
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, quote, urlencode

import psycopg
from sqlalchemy import event, select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from app.auth.principal import Principal  # noqa: E402
from app.db import make_engine  # noqa: E402
from app.models import User  # noqa: E402
from app.reports import runs  # noqa: E402
from app.reports.document import ReportDocument, canonical_json, sha256, to_json_obj  # noqa: E402
from app.reports.render_xlsx import render_xlsx  # noqa: E402
from bench.report_data import AS_OF, database_url, driver_url  # noqa: E402

PROGRAMMES = ("SKD", "XB")
TARGETS = {"json": 1.0, "xlsx": 5.0}  # seconds (the part 8)

# The plain SQL aggregate: per bank, the loans disbursed in the quarter (count, principal;
# as the report counts them) and the principal outstanding at its end, summed over the
# programme's loans and their repayments (no cut-off, no arrears: the floor for any
# figure summed over every loan).
# Written as two GROUP BYs (loans; repayments joined to their loans) rather than a join
# of every loan to its repayments grouped per loan, which ran 2.5–3× longer here.
PLAIN_SQL = """
SELECT bank_code, sum(filed) AS filed, sum(filed_fen) AS filed_fen,
       sum(outstanding_fen) AS outstanding_fen
FROM (
  SELECT bank_code,
         count(*) FILTER (WHERE disbursed_on >= %(start)s) AS filed,
         COALESCE(sum(principal_fen) FILTER (WHERE disbursed_on >= %(start)s), 0) AS filed_fen,
         sum(principal_fen) AS outstanding_fen
  FROM loans WHERE program = %(program)s AND disbursed_on <= %(end)s
  GROUP BY bank_code
  UNION ALL
  SELECT l.bank_code, 0, 0, -sum(r.principal_fen)
  FROM loan_repayments r JOIN loans l ON l.id = r.loan_id
  WHERE l.program = %(program)s AND r.paid_on <= %(end)s
  GROUP BY l.bank_code
) x
GROUP BY bank_code ORDER BY bank_code"""


def quarter_bounds(year: int, quarter: int) -> tuple[date, date]:
    start = date(year, 3 * quarter - 2, 1)
    end = date(year + quarter // 4, (3 * quarter) % 12 + 1, 1)
    return start, date.fromordinal(end.toordinal() - 1)


@dataclass
class Timings:
    runs: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))

    def add(self, key: str, seconds: float) -> None:
        self.runs[key].append(seconds)

    def median(self, key: str) -> float:
        return statistics.median(self.runs[key])

    def worst(self, key: str) -> float:
        return max(self.runs[key])

    def cell(self, key: str) -> str:
        if key not in self.runs:
            return "-"
        return f"{self.median(key) * 1000:,.0f} / {self.worst(key) * 1000:,.0f}"


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    t = time.perf_counter()
    out = fn()
    return time.perf_counter() - t, out


def with_settings(url: str, settings: str) -> str:
    """The URL with server settings for its sessions (libpq `options`), e.g. jit=off;
    added to the settings the URL carries already."""
    if not settings:
        return url
    options = " ".join(f"-c {s.strip()}" for s in settings.split(","))
    base, _, query = url.partition("?")
    params = dict(parse_qsl(query))
    params["options"] = (params.get("options", "") + " " + options).strip()
    return f"{base}?{urlencode(params, quote_via=quote)}"


class Bench:
    def __init__(
        self, url: str, year: int, quarter: int, cutoff: datetime, settings: str = ""
    ) -> None:
        self.url = with_settings(url, settings)
        self.label = settings or "defaults"
        self.year, self.quarter, self.cutoff = year, quarter, cutoff
        self.start, self.end = quarter_bounds(year, quarter)
        self.engine = make_engine(self.url)
        self.conn = psycopg.connect(driver_url(self.url), autocommit=True)
        with Session(self.engine) as s:
            user = s.scalars(select(User).where(User.role == "regulator")).first()
            assert user is not None, "no regulator user: run bench/report_data.py first"
            self.regulator = Principal.of(user)

    def key(self, program: str) -> runs.ReportKey:
        """The closed quarter's report as the regulator pulls it (whole programme)."""
        with Session(self.engine) as s:
            scope = runs.viewer_scope(s, self.regulator, program)
        period = runs.quarter(self.year, self.quarter)
        return runs.ReportKey("quarterly", program, period, scope)

    def pulls(self, t: Timings | None, program: str) -> dict[str, Any]:
        """The closed quarter as the service serves it: `app.reports.runs.pull`, what `GET
        /reports/quarterly` calls, with the book's last day as the business date. First
        the first pull, which computes the document and stores it as version 1; then,
        from a new session as a later request, the pull of that stored run. JSON is the
        served bytes; XLSX is rendered from them as the endpoint does. Both in one
        transaction rolled back at the end, so each round's first pull computes (when the
        database already holds a stored run of the quarter, the first pull is that one and
        the "first pull" figure is not a computation: reported in `stored_before`)."""
        key = self.key(program)
        pull: Callable[[Session], runs.Served] = lambda s: runs.pull(  # noqa: E731
            s, key, actor=self.regulator, today=AS_OF, now=self.cutoff
        )
        with self.engine.connect() as conn:
            outer = conn.begin()
            try:
                with Session(bind=conn) as s:
                    stored_before = runs.latest(s, key) is not None
                    first_s, served = timed(lambda: pull(s))
                    s.flush()
                    first_xlsx_s, _ = timed(lambda: render_xlsx(served.document))
                    first = served.content
                with Session(bind=conn) as s:  # a later request reads the stored row
                    again_s, served = timed(lambda: pull(s))
                    again_xlsx_s, _ = timed(lambda: render_xlsx(served.document))
                    assert served.run is not None and served.content == first
            finally:
                outer.rollback()
        if t is not None:
            k = f"{program} defaults"
            t.add(f"{k} pull first json", first_s)
            t.add(f"{k} pull first xlsx", first_s + first_xlsx_s)
            t.add(f"{k} pull stored json", again_s)
            t.add(f"{k} pull stored xlsx", again_s + again_xlsx_s)
        return {"stored_before": stored_before, "run_bytes": len(first)}

    def plain_sql(self, program: str) -> list[tuple[Any, ...]]:
        params = {"program": program, "start": self.start, "end": self.end}
        return self.conn.execute(PLAIN_SQL, params).fetchall()

    def build(self, program: str) -> ReportDocument:
        from app.reports.quarterly import build_quarterly

        with Session(self.engine) as s:
            return build_quarterly(
                s,
                program=program,
                year=self.year,
                quarter=self.quarter,
                principal=self.regulator,
                cutoff_at=self.cutoff,
            )

    def one_round(self, t: Timings | None, program: str, *, pulls: bool = False) -> dict[str, Any]:
        sql_s, rows = timed(lambda: self.plain_sql(program))
        build_s, doc = timed(lambda: self.build(program))
        json_s, body = timed(lambda: canonical_json(to_json_obj(doc)))
        xlsx_s, book = timed(lambda: render_xlsx(doc))
        served = self.pulls(t, program) if pulls else {}
        if t is not None:
            k = f"{program} {self.label}"
            t.add(f"{k} sql", sql_s)
            t.add(f"{k} build", build_s)
            t.add(f"{k} json render", json_s)
            t.add(f"{k} xlsx render", xlsx_s)
            t.add(f"{k} json", build_s + json_s)
            t.add(f"{k} xlsx", build_s + xlsx_s)
        return {
            "banks": len(rows),
            "sections": len(doc.sections),
            "rows": sum(len(s.rows) for s in doc.sections),
            "json_bytes": len(body),
            "xlsx_bytes": len(book),
            "sha256": sha256(body),
            **served,
        }


# --- the figures themselves -------------------------------------------------------------
def digests(bench: Bench) -> list[str]:
    """The SHA-256 of each programme's canonical JSON (the document, no run metadata) for
    the quarter at the bench's cut-off and at 2026-10-20 15:59 UTC, and for the open
    quarter of the book's last day: equal digests before and after a change of the
    builder or of what it reads mean the same figures to the byte."""
    open_q = (AS_OF.month - 1) // 3 + 1
    early = datetime(2026, 10, 20, 15, 59, tzinfo=UTC)
    cases = [
        (bench.year, bench.quarter, bench.cutoff, None),
        (bench.year, bench.quarter, early, None),
        (AS_OF.year, open_q, bench.cutoff, AS_OF),
    ]
    from app.reports.quarterly import build_quarterly

    out = []
    for program in PROGRAMMES:
        for year, quarter, cutoff, today in cases:
            with Session(bench.engine) as s:
                doc = build_quarterly(
                    s,
                    program=program,
                    year=year,
                    quarter=quarter,
                    principal=bench.regulator,
                    cutoff_at=cutoff,
                    today=today,
                )
            digest = sha256(canonical_json(to_json_obj(doc)))
            out.append(f"{program} {year}-Q{quarter} cut-off {cutoff:%Y-%m-%d %H:%M} UTC: {digest}")
            print(out[-1], flush=True)
    return out


# --- HTTP (optional) ------------------------------------------------------------------
HTTP_COLUMNS = (
    ("http rerun", "POST /reports/runs (compute + store a version)"),
    ("http stored json", "GET closed quarter, JSON (stored run)"),
    ("http stored xlsx", "GET closed quarter, XLSX (stored run)"),
    ("http open json", "GET open quarter, JSON (computed)"),
    ("http open xlsx", "GET open quarter, XLSX (computed)"),
)


def http_rounds(
    url: str, runs: int, t: Timings, year: int, quarter: int, settings: str = ""
) -> None:
    """The service in-process (TestClient, `APP_TODAY` the book's last day) as the
    regulator: a closed quarter computed and stored again as a new version (`POST
    /reports/runs`), then pulled (served from the stored run), and the open quarter,
    computed on every request. Each warmed up once. Adds versions to `report_runs`.
    `settings`: server settings for the service's connections (`--http-settings`)."""
    os.environ["DATABASE_URL"] = with_settings(url, settings)
    os.environ["APP_TODAY"] = AS_OF.isoformat()
    from fastapi.testclient import TestClient

    from app.main import app_factory

    client = TestClient(app_factory())
    for name in ("httpx", "app.access"):  # a line per request otherwise
        logging.getLogger(name).setLevel(logging.WARNING)
    token = client.post(
        "/api/v1/auth/token", data={"username": "rb_regulator", "password": "bench-pass-2026"}
    )
    if token.status_code != 200:
        print(f"HTTP skipped: login answered {token.status_code} {token.text[:200]}")
        return
    headers = {"Authorization": f"Bearer {token.json()['access_token']}"}
    open_q = (AS_OF.month - 1) // 3 + 1
    for program in PROGRAMMES:
        closed = f"/api/v1/reports/quarterly?program={program}&year={year}&quarter={quarter}"
        live = f"/api/v1/reports/quarterly?program={program}&year={AS_OF.year}&quarter={open_q}"
        body = {"kind": "quarterly", "program": program, "period": f"{year}-Q{quarter}"}
        calls: list[tuple[str, Callable[[], Any]]] = [
            ("http rerun", lambda b=body: client.post("/api/v1/reports/runs", json=b,
                                                      headers=headers)),
            ("http stored json", lambda u=closed: client.get(u + "&format=json", headers=headers)),
            ("http stored xlsx", lambda u=closed: client.get(u + "&format=xlsx", headers=headers)),
            ("http open json", lambda u=live: client.get(u + "&format=json", headers=headers)),
            ("http open xlsx", lambda u=live: client.get(u + "&format=xlsx", headers=headers)),
        ]  # fmt: skip
        for i in range(runs + 1):
            for key, call in calls:
                s, r = timed(call)
                if r.status_code not in (200, 201):
                    print(f"HTTP {key} {program}: {r.status_code} {r.text[:300]}")
                    return
                if i:
                    t.add(f"{program} defaults {key}", s)
        print(f"HTTP {program}: done", flush=True)


def http_table(t: Timings) -> str:
    head = "| programme | " + " | ".join(label for _, label in HTTP_COLUMNS) + " |"
    lines = [head, "|" + "---|" * (len(HTTP_COLUMNS) + 1)]
    for p in PROGRAMMES:
        cells = [t.cell(f"{p} defaults {key}") for key, _ in HTTP_COLUMNS]
        lines.append(f"| {p} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


# --- profile ------------------------------------------------------------------------------
class Statements:
    """Every SQL statement a build runs, with its time and parameters."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.seen: list[tuple[float, str, Any]] = []
        self._t: list[float] = []

    def __enter__(self) -> Statements:
        event.listen(self.engine, "before_cursor_execute", self._before)
        event.listen(self.engine, "after_cursor_execute", self._after)
        return self

    def __exit__(self, *exc: object) -> None:
        event.remove(self.engine, "before_cursor_execute", self._before)
        event.remove(self.engine, "after_cursor_execute", self._after)

    def _before(self, conn: Any, cursor: Any, statement: str, params: Any, *a: Any) -> None:
        self._t.append(time.perf_counter())

    def _after(self, conn: Any, cursor: Any, statement: str, params: Any, *a: Any) -> None:
        self.seen.append((time.perf_counter() - self._t.pop(), statement, params))


def profile(bench: Bench, program: str, explain: int) -> str:
    out = io.StringIO()
    prof = cProfile.Profile()
    with Statements(bench.engine) as st:
        t = time.perf_counter()
        prof.enable()
        doc = bench.build(program)
        prof.disable()
        build_s = time.perf_counter() - t
        t = time.perf_counter()
        prof.enable()
        render_xlsx(doc)
        prof.disable()
        xlsx_s = time.perf_counter() - t
    sql_total = sum(s for s, _, _ in st.seen)
    print(
        f"\n## Profile: {program} — build {build_s:.2f} s ({len(st.seen)} statements, "
        f"{sql_total:.2f} s in SQL incl. fetch), XLSX render {xlsx_s:.2f} s",
        file=out,
    )
    stats = pstats.Stats(prof, stream=out)
    stats.sort_stats("cumulative").print_stats(r"app/|openpyxl", 25)
    print("\n### Statements by time", file=out)
    ranked = sorted(st.seen, key=lambda x: -x[0])
    for s, stmt, _ in ranked[:12]:
        one_line = " ".join(stmt.split())
        print(f"- {s * 1000:8.1f} ms  {one_line[:300]}", file=out)
    with Session(bench.engine) as s:
        conn = s.connection()
        # as the builder runs them (`app.reports.quarterly` turns JIT off for its statements)
        conn.exec_driver_sql("SET LOCAL jit = off")
        for secs, stmt, params in ranked[:explain]:
            plan = conn.exec_driver_sql(
                "EXPLAIN (ANALYZE, BUFFERS) " + stmt, params if params else None
            ).all()
            print(f"\n### EXPLAIN ANALYZE, jit off ({secs * 1000:.0f} ms when timed)", file=out)
            print(" ".join(stmt.split())[:2000], file=out)
            for (line,) in plan:
                print("    " + line, file=out)
    return out.getvalue()


# --- conditions ---------------------------------------------------------------------------
def conditions(conn: psycopg.Connection[Any]) -> dict[str, str]:
    def one(sql: str) -> Any:
        found = conn.execute(sql).fetchone()
        return found[0] if found else None

    cpu = "?"
    with open("/proc/cpuinfo", encoding="utf-8") as fh:
        for line in fh:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    mem_gb = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    commit = subprocess.run(
        ["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"],
        capture_output=True,
        text=True,
        check=False,
    ).stdout.strip()
    dirty = subprocess.run(
        ["git", "-C", str(ROOT), "status", "--porcelain", "--", "app"],
        capture_output=True,
        text=True,
        check=False,
    ).stdout.strip()
    # the report's code as measured (it may not be committed yet)
    sources = [
        ROOT / "app/reports/quarterly.py",
        *sorted((ROOT / "app/programs").glob("*/report.py")),
        ROOT / "app/reports/render_xlsx.py",
    ]
    digest = hashlib.sha256(b"".join(p.read_bytes() for p in sources if p.exists()))
    counts = {
        name: one(sql)
        for name, sql in (
            ("loans SKD", "SELECT count(*) FROM loans WHERE program = 'SKD'"),
            ("loans XB", "SELECT count(*) FROM loans WHERE program = 'XB'"),
            ("instalments", "SELECT count(*) FROM loan_instalments"),
            ("repayments", "SELECT count(*) FROM loan_repayments"),
            ("interest payments", "SELECT count(*) FROM loan_interest_payments"),
            ("delinquency reports", "SELECT count(*) FROM loan_delinquency_reports"),
            ("claims", "SELECT count(*) FROM claims"),
            ("claim history rows", "SELECT count(*) FROM claim_transitions"),
            ("ledger entries", "SELECT count(*) FROM ledger_entries"),
        )
    }
    return {
        "machine": f"{os.cpu_count()} CPUs ({cpu}), {mem_gb:.0f} GB, {platform.system()} "
        f"{platform.release()}",
        "python": platform.python_version(),
        "postgresql": str(one("SHOW server_version")),
        "settings": ", ".join(
            f"{k} {one(f'SHOW {k}')}" for k in ("shared_buffers", "work_mem", "jit")
        ),
        "rows": ", ".join(f"{k} {int(v):,}" for k, v in counts.items()),
        "commit": commit
        + (" with uncommitted changes under app/" if dirty else "")
        + f" (report code sha256 {digest.hexdigest()[:12]}: "
        + ", ".join(str(p.relative_to(ROOT)) for p in sources if p.exists())
        + ")",
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "load": "{:.2f} {:.2f} {:.2f}".format(*os.getloadavg()),
    }


PULL_COLUMNS = (
    ("sql", "plain SQL aggregate"),
    ("pull first json", "first pull, JSON (computes, stores version 1)"),
    ("pull first xlsx", "first pull, XLSX"),
    ("pull stored json", "re-pull of the stored run, JSON"),
    ("pull stored xlsx", "re-pull of the stored run, XLSX"),
)


def pull_table(t: Timings, facts: dict[str, dict[str, Any]]) -> str:
    head = "| programme | " + " | ".join(label for _, label in PULL_COLUMNS) + " |"
    lines = [head, "|" + "---|" * (len(PULL_COLUMNS) + 1)]
    for p in PROGRAMMES:
        cells = [t.cell(f"{p} defaults {key}") for key, _ in PULL_COLUMNS]
        lines.append(f"| {p} | " + " | ".join(cells) + " |")
    lines.append("")

    def met(key: str, fmt: str) -> str:
        return "met" if t.median(f"{key} {fmt}") <= TARGETS[fmt] else "NOT met"

    lines.append(
        "Targets on the pulls (JSON ≤ 1 s, XLSX ≤ 5 s, medians): "
        + "; ".join(
            f"{p} {when} JSON {met(f'{p} defaults pull {when}', 'json')}, "
            f"XLSX {met(f'{p} defaults pull {when}', 'xlsx')}"
            for p in PROGRAMMES
            for when in ("first", "stored")
        )
    )
    before = [p for p, f in facts.items() if f.get("stored_before")]
    if before:
        lines.append(
            "A stored run of the quarter existed before this run for "
            + ", ".join(before)
            + ": its first pull served that run and did not compute."
        )
    return "\n".join(lines)


def table(t: Timings, facts: dict[str, dict[str, Any]], labels: list[str]) -> str:
    head = (
        "| programme | server settings | plain SQL aggregate | build the document "
        "| JSON (build + render) | XLSX (build + render) |"
    )
    lines = [head, "|" + "---|" * 6]
    keys = [f"{p} {label}" for p in PROGRAMMES for label in labels]
    for k in keys:
        cells = [t.cell(f"{k} {m}") for m in ("sql", "build", "json", "xlsx")]
        program, label = k.split(" ", 1)
        lines.append(f"| {program} | {label} | " + " | ".join(cells) + " |")
    lines.append("")
    lines.append("Milliseconds, median / max of the runs. Renders alone (median ms): " + "; ".join(
        f"{k} JSON {t.median(f'{k} json render') * 1000:,.0f}, "
        f"XLSX {t.median(f'{k} xlsx render') * 1000:,.0f}"
        for k in keys
    ))  # fmt: skip
    lines.append(
        "Ratios to the plain SQL aggregate (medians): "
        + "; ".join(
            f"{k} JSON {t.median(f'{k} json') / t.median(f'{k} sql'):.1f}×, "
            f"XLSX {t.median(f'{k} xlsx') / t.median(f'{k} sql'):.1f}×"
            for k in keys
        )
    )
    lines.append(
        "Documents: "
        + "; ".join(
            f"{p} {f['sections']} sections, {f['rows']:,} rows, JSON {f['json_bytes']:,} B, "
            f"XLSX {f['xlsx_bytes']:,} B, plain SQL {f['banks']} banks"
            for p, f in facts.items()
        )
    )
    lines.append(
        "Canonical JSON SHA-256 (the document as built): "
        + "; ".join(f"{p} {f['sha256']}" for p, f in facts.items())
    )
    lines.append(
        "Targets (JSON ≤ 1 s, XLSX ≤ 5 s, medians): "
        + "; ".join(
            f"{k} JSON {'met' if t.median(f'{k} json') <= TARGETS['json'] else 'NOT met'}, "
            f"XLSX {'met' if t.median(f'{k} xlsx') <= TARGETS['xlsx'] else 'NOT met'}"
            for k in keys
        )
    )
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument(
        "--admin-url",
        default=os.environ.get(
            "TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
        ),
    )
    p.add_argument("--db", default="ledger_bench_reports")
    p.add_argument("--year", type=int, default=2026)
    p.add_argument("--quarter", type=int, default=3)
    p.add_argument("--runs", type=int, default=5)
    p.add_argument("--http", action="store_true", help="also time the service in-process")
    p.add_argument("--http-runs", type=int, default=3, help="timed HTTP rounds (after one warm-up)")
    p.add_argument(
        "--http-settings",
        default="",
        metavar="SETTINGS",
        help="server settings for the service's connections, e.g. "
        "plan_cache_mode=force_custom_plan",
    )
    p.add_argument(
        "--statement-timeout",
        type=int,
        default=600,
        help="seconds; a statement running longer fails the run instead of hanging it",
    )
    p.add_argument("--profile", action="store_true", help="profile even when under target")
    p.add_argument("--explain", type=int, default=3, help="statements to EXPLAIN ANALYZE")
    p.add_argument("--append", action="store_true", help="append the section to RESULTS.md")
    p.add_argument(
        "--no-pulls",
        action="store_true",
        help="skip the service's pulls of the closed quarter (first pull and stored re-pull)",
    )
    p.add_argument(
        "--digests",
        action="store_true",
        help="only print the SHA-256 of each programme's canonical JSON (closed quarter at two "
        "cut-offs, the open quarter) and stop",
    )
    p.add_argument(
        "--variant",
        action="append",
        default=[],
        metavar="SETTINGS",
        help="also time with these server settings, in the same run (e.g. jit=off)",
    )
    a = p.parse_args()
    url = with_settings(
        database_url(a.admin_url, a.db), f"statement_timeout={a.statement_timeout * 1000}"
    )
    cutoff = datetime(AS_OF.year, AS_OF.month, AS_OF.day, 15, 59, tzinfo=UTC)
    benches = [Bench(url, a.year, a.quarter, cutoff)]
    benches += [Bench(url, a.year, a.quarter, cutoff, v) for v in a.variant]
    bench = benches[0]
    if a.digests:
        digests(bench)
        return
    before = conditions(bench.conn)
    print(f"{a.db}: {before['rows']}", flush=True)
    t = Timings()
    facts: dict[str, dict[str, Any]] = {}
    pulls = not a.no_pulls
    for b in benches:  # warm-up
        for program in PROGRAMMES:
            s, facts[program] = timed(
                lambda pr=program, b=b: b.one_round(None, pr, pulls=pulls and b is bench)
            )
            print(f"warm-up {program} ({b.label}): {s:.2f} s, {facts[program]}", flush=True)
    for i in range(a.runs):
        for program in PROGRAMMES:
            for b in benches:
                b.one_round(t, program, pulls=pulls and b is bench)
        print(
            f"run {i + 1}: "
            + ", ".join(
                f"{k} {v[-1] * 1000:,.0f} ms"
                for k, v in t.runs.items()
                if k.endswith((" sql", " json", " xlsx")) and " pull " not in k
            ),
            flush=True,
        )
    if a.http:
        http_rounds(url, a.http_runs, t, a.year, a.quarter, a.http_settings)
    load_end = "{:.2f} {:.2f} {:.2f}".format(*os.getloadavg())
    result = table(t, facts, [b.label for b in benches])
    if pulls:
        result += (
            "\n\nThe closed quarter as the service serves it (`app.reports.runs.pull`, what "
            "`GET /reports/quarterly` calls; same rounds, one transaction per round rolled "
            "back), milliseconds, median / max:\n\n"
        )
        result += pull_table(t, facts)
    if a.http:
        result += (
            f"\n\nThe service in-process (TestClient; {a.http_runs} runs after a warm-up; server "
            f"settings {a.http_settings or 'defaults'}), milliseconds, median / max:\n\n"
        )
        result += http_table(t)
    cond = (
        f"Conditions: {before['machine']}; Python {before['python']}; PostgreSQL "
        f"{before['postgresql']} on loopback ({before['settings']}); database `{a.db}` "
        f"({before['rows']}); report {a.year}-Q{a.quarter} for the regulator, cut-off "
        f"{cutoff:%Y-%m-%d %H:%M} UTC; commit {before['commit']}; {before['date']}; load "
        f"average {before['load']} at the start, {load_end} at the end; warm-up once, then "
        f"{a.runs} interleaved runs."
    )
    command = "Command: `.venv/bin/python bench/report_bench.py " + " ".join(sys.argv[1:]) + "`"
    section = f"### Quarterly report — {before['date']}\n\n{cond}\n\n{command}\n\n{result}\n"
    print("\n" + section)
    over = [
        program
        for program in PROGRAMMES
        if t.median(f"{program} defaults json") > TARGETS["json"]
        or t.median(f"{program} defaults xlsx") > TARGETS["xlsx"]
    ]
    for program in PROGRAMMES if a.profile else over:
        print(profile(bench, program, a.explain))
    if a.append:
        with (ROOT / "bench" / "RESULTS.md").open("a", encoding="utf-8") as fh:
            fh.write("\n" + section)


if __name__ == "__main__":
    main()
