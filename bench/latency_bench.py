"""User-perceived latency, one client (c=1), endpoint by endpoint (#16 parts 1 and 6).

    .venv/bin/python bench/latency_bench.py [--backend sqlite|postgresql] [--requests 100]
        [--url URL --today YYYY-MM-DD] [--append]

Serves a database with uvicorn, one worker, as `make run` does (demo mode,
`SERVER_TIMING` on), and sends each scenario's requests one after another from one
keep-alive client: reads (a user, a list of loans, a loan, claims, a claim, a bank's
exposure, a fund's capital, the journal) and writes (an enterprise registered, admitted to
the SKD library, a loan filed for it, a repayment, a capital contribution). For each it
prints the client's p50/p90/p99 and, from the `Server-Timing` header of every answer, the
server's own time, the part of it in SQL and the statements run — so the rest is the
Python of the request: where the milliseconds go.

The data: by default `ledger migrate` and `ledger seed-demo` on a fresh SQLite file or a
fresh PostgreSQL database (`ledger_latency`), served on today's China date; or an
existing database (`--url`, e.g. the 1,000,000 loans of `bench/load_data.py
--history-loans 1000000`, `ledger_load`, served on `--today 2026-03-31`), whose demo users
the scenarios act as. The server's log is kept in bench/logs/. `--append` adds the table,
with the conditions and this command, to bench/RESULTS.md. Targets (#16 part 6): reads
p50 ≤ 10 ms, writes p50 ≤ 25 ms; logging in (argon2) is not measured.

Side by side (`--against DIR`): a second server runs the source tree in DIR (e.g. `git
worktree add /tmp/before <commit>`, or a `git archive` of it) on a copy of the same
fresh database, and each scenario's requests alternate between the two servers, one
request each in turn (which goes first alternates too), so that both see the same load
from the rest of the machine. The table then gives both p50s and their ratio."""

from __future__ import annotations

import argparse
import os
import platform
import re
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from app.seed.loader import DEMO_PASSWORD, demo_credit_code  # noqa: E402

LOGS = ROOT / "bench" / "logs"
TIMING = re.compile(r'app;dur=([\d.]+), db;dur=([\d.]+);desc="(\d+) statements"')
READ_TARGET_MS, WRITE_TARGET_MS = 10.0, 25.0


@dataclass
class Scenario:
    name: str
    kind: str  # read | write
    user: str
    method: str
    path: Callable[[int], str]
    body: Callable[[int], dict[str, Any] | None] = lambda _: None
    expect: int = 200


@dataclass
class Measured:
    scenario: Scenario
    client_ms: list[float] = field(default_factory=list)
    app_ms: list[float] = field(default_factory=list)
    sql_ms: list[float] = field(default_factory=list)
    statements: list[int] = field(default_factory=list)

    profile: dict[str, float] = field(default_factory=dict)  # share of samples per layer

    def pct(self, p: float) -> float:
        xs = sorted(self.client_ms)
        return xs[min(len(xs) - 1, round(p * (len(xs) - 1)))]


def _ledger(url: str, *args: str) -> str:
    env = {**os.environ, "DATABASE_URL": url, "APP_ENV": "demo"}
    done = subprocess.run(
        [sys.executable, "-c", "from app.cli import main; main()", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode:
        raise SystemExit(f"ledger {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}")
    return done.stdout


def prepare(backend: str, workdir: Path, admin_url: str) -> str:
    """A migrated database with the demo seeded; its URL."""
    if backend == "sqlite":
        url = f"sqlite:///{workdir / 'latency.db'}"
    else:
        import psycopg

        with psycopg.connect(admin_url, autocommit=True) as c:
            c.execute("DROP DATABASE IF EXISTS ledger_latency WITH (FORCE)")
            c.execute("CREATE DATABASE ledger_latency")
        url = admin_url.rsplit("/", 1)[0] + "/ledger_latency"
    _ledger(url, "migrate")
    _ledger(url, "seed-demo")
    return url


def copy_database(url: str, workdir: Path) -> str:
    """A copy of the fresh database, for the second server of `--against`."""
    if url.startswith("sqlite"):
        source = Path(url.removeprefix("sqlite:///"))
        target = workdir / "latency-against.db"
        for suffix in ("", "-wal"):  # a write-ahead log not yet checkpointed, if any
            if Path(f"{source}{suffix}").exists():
                Path(f"{target}{suffix}").write_bytes(Path(f"{source}{suffix}").read_bytes())
        return f"sqlite:///{target}"
    import psycopg

    name = url.rsplit("/", 1)[1]
    with psycopg.connect(url.rsplit("/", 1)[0] + "/postgres", autocommit=True) as c:
        c.execute(f"DROP DATABASE IF EXISTS {name}_against WITH (FORCE)")
        c.execute(f"CREATE DATABASE {name}_against TEMPLATE {name}")
    return f"{url}_against"


def serve(
    url: str, today: date, port: int, log: Path, root: Path = ROOT
) -> subprocess.Popen[bytes]:
    """One uvicorn worker serving the app of the source tree `root`."""
    env = {
        **os.environ,
        "PYTHONPATH": str(root),
        "DATABASE_URL": url,
        "APP_ENV": "demo",
        "APP_TODAY": today.isoformat(),
        "SERVER_TIMING": "true",
        "LOG_LEVEL": "WARNING",
    }
    cmd = [sys.executable, "-m", "uvicorn", "--factory", "app.main:app_factory"]
    cmd += ["--host", "127.0.0.1", "--port", str(port), "--no-access-log"]
    LOGS.mkdir(exist_ok=True)
    with log.open("wb") as out:
        proc = subprocess.Popen(cmd, cwd=root, env=env, stdout=out, stderr=subprocess.STDOUT)
    deadline = time.time() + 60
    while time.time() < deadline and proc.poll() is None:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=1).status_code == 200:
                return proc
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    proc.kill()
    raise SystemExit(f"the server did not get ready; {log} ends:\n{log.read_text()[-3000:]}")


def scenarios(client: httpx.Client, auth: dict[str, dict[str, str]], today: date) -> list[Scenario]:
    """The measured requests, with the ids they need found through the API."""
    loans = client.get("/api/v1/loans?status=active&limit=1", headers=auth["bank_jsb"]).json()
    loan_id = loans["items"][0]["id"]
    claims = client.get("/api/v1/claims?limit=1", headers=auth["regulator"]).json()
    claim_id = claims["items"][0]["id"]
    run = datetime.now().strftime("%H%M%S")
    code = [demo_credit_code("320100", f"L{run}{n:02d}"[:9]) for n in range(1000)]
    later = date(today.year + 1, today.month, min(today.day, 28)).isoformat()
    return [
        Scenario("GET /auth/me", "read", "regulator", "GET", lambda _: "/api/v1/auth/me"),
        Scenario(
            "GET /loans (50, a bank)", "read", "bank_jsb", "GET", lambda _: "/api/v1/loans?limit=50"
        ),
        Scenario(
            "GET /loans (50, regulator)",
            "read",
            "regulator",
            "GET",
            lambda _: "/api/v1/loans?limit=50",
        ),
        Scenario(
            "GET /loans/{id}", "read", "bank_jsb", "GET", lambda _: f"/api/v1/loans/{loan_id}"
        ),
        Scenario(
            "GET /claims (50)", "read", "regulator", "GET", lambda _: "/api/v1/claims?limit=50"
        ),
        Scenario(
            "GET /claims/{id}", "read", "regulator", "GET", lambda _: f"/api/v1/claims/{claim_id}"
        ),
        Scenario(
            "GET /banks/JSB/exposure",
            "read",
            "bank_jsb",
            "GET",
            lambda _: "/api/v1/banks/JSB/exposure?program=SKD",
        ),
        Scenario(
            "GET /banks/LYG_RCB/exposure (XB)",
            "read",
            "regulator",
            "GET",
            lambda _: "/api/v1/banks/LYG_RCB/exposure?program=XB",
        ),
        Scenario(
            "GET /funds/{code}/capital",
            "read",
            "fund_nanjing",
            "GET",
            lambda _: "/api/v1/funds/SKD_CITY_320100/capital",
        ),
        Scenario(
            "GET /ledger/entries (50)",
            "read",
            "regulator",
            "GET",
            lambda _: "/api/v1/ledger/entries?limit=50",
        ),
        Scenario(
            "POST /enterprises",
            "write",
            "admin",
            "POST",
            lambda _: "/api/v1/enterprises",
            lambda i: {
                "credit_code": code[i],
                "name": f"南京测速科技{run}-{i}有限公司",
                "region_code": "320100",
                "registered_on": "2019-03-15",
                "prior_year_revenue": "26000000.00",
                "employees": 96,
                "rd_staff_share_bp": 2200,
                "rd_spend_share_bp": 750,
                "ip_count": 14,
                "tax_credit_rating": "A",
                "env_credit_rating": "green",
            },
            201,
        ),
        Scenario(
            "POST /enterprises/{code}/library-admission",
            "write",
            "city_nanjing",
            "POST",
            lambda i: f"/api/v1/enterprises/{code[i]}/library-admission",
            lambda _: {"comment": "材料齐全 (benchmark)"},
            201,
        ),
        Scenario(
            "POST /loans (SKD)",
            "write",
            "bank_jsb",
            "POST",
            lambda _: "/api/v1/loans",
            lambda i: {
                "program": "SKD",
                "enterprise_credit_code": code[i],
                "contract_no": f"LAT-{run}-{i}",
                "principal": "1000000.00",
                "annual_rate_bp": 345,
                "disbursed_on": today.isoformat(),
                "maturity_on": later,
                "security": "credit",
                "controller_guarantee": True,
            },
            201,
        ),
        Scenario(
            "POST /loans/{id}/repayments",
            "write",
            "bank_jsb",
            "POST",
            lambda _: f"/api/v1/loans/{loan_id}/repayments",
            lambda _: {"paid_on": today.isoformat(), "principal": "1.00"},
            201,
        ),
        Scenario(
            "POST /funds/{code}/contributions",
            "write",
            "admin",
            "POST",
            lambda _: "/api/v1/funds/SKD_CITY_320100/contributions",
            lambda _: {
                "contributor": "NJ_FINANCE",
                "amount": "100.00",
                "paid_on": today.isoformat(),
            },
            201,
        ),
    ]


# A sample's layer: the innermost frame that belongs to one of these (first match wins).
LAYERS = [
    # the driver's C code shows as the frame calling it
    (
        "SQL driver",
        ("sqlite3", "psycopg", "do_execute (", "fetchall (", "fetchone (", "fetchmany ("),
    ),
    ("SQLAlchemy ORM", ("sqlalchemy/orm/",)),
    ("SQLAlchemy Core", ("sqlalchemy",)),
    ("pydantic", ("pydantic",)),
    ("JSON", ("json/", "orjson")),
    ("the service's code", ("/app/",)),
    ("FastAPI, Starlette, uvicorn", ("fastapi", "starlette", "uvicorn", "anyio", "h11")),
]
OTHER = "other (interpreter, idle)"


# innermost functions of a thread waiting for work: the event loop in its selector, the
# thread pool's workers on their queue
IDLE = ("Condition.wait", "Runner.run", "WorkerThread.run", "select")


def frames_of(stack: str) -> list[str]:
    """A sampled stack's Python frames (`function (file:line)`), outermost first, without
    the process and thread names py-spy puts first with `--subprocesses`/`--threads`."""
    return [f for f in stack.split(";") if not f.startswith(("process ", "thread ("))]


def function_of(frame: str) -> str:
    return frame.split(" (", 1)[0]


def is_idle(frame: str) -> bool:
    fn = function_of(frame)
    return fn in IDLE or fn.rsplit(".", 1)[-1] == "select"


def layer_of(stack: str) -> str:
    """The layer of one sampled stack (`frame;frame;…`, outermost first). py-spy runs with
    `--full-filenames`: the service's frames are then `…/app/…` whatever the package."""
    for frame in reversed(frames_of(stack)):  # innermost first
        for name, marks in LAYERS:
            if any(mark in frame for mark in marks):
                return name
    return OTHER


def busy_layer(stack: str) -> str | None:
    """The layer of a sample of the GIL's holder; None for a thread waiting for work."""
    frames = frames_of(stack)
    if not frames or is_idle(frames[-1]):
        return None
    return layer_of(stack)


def profile_counts(raw: Path, classify: Callable[[str], str | None] = busy_layer) -> dict[str, int]:
    """py-spy's raw output (one line per distinct stack: `frames count`) as samples per
    class; `classify` names a stack's class, None leaves it out (idle)."""
    counts: dict[str, int] = {}
    for line in raw.read_text(errors="replace").splitlines():
        stack, _, n = line.rpartition(" ")
        if not n.isdigit():
            continue
        name = classify(stack)
        if name is not None:
            counts[name] = counts.get(name, 0) + int(n)
    return counts


def shares(counts: dict[str, int]) -> dict[str, float]:
    total = sum(counts.values()) or 1
    return {k: v / total for k, v in sorted(counts.items(), key=lambda kv: -kv[1])}


def profile_share(raw: Path) -> dict[str, float]:
    """The share of samples per layer, idle samples (the event loop waiting) left out."""
    return shares(profile_counts(raw))


def measure(
    client: httpx.Client,
    sc: Scenario,
    token: dict[str, str],
    n: int,
    profile_pid: int | None = None,
) -> Measured:
    m = Measured(sc)
    warm = 5 if sc.kind == "read" else 0
    spy = None
    raw = LOGS / f"profile-{re.sub(r'[^a-z0-9]+', '-', sc.name.lower()).strip('-')}.txt"
    for i in range(warm + n):
        if i == warm and profile_pid is not None:
            spy = subprocess.Popen(
                [
                    *(str(Path(sys.executable).parent / "py-spy"), "record"),
                    *("--pid", str(profile_pid), "--format", "raw", "--rate", "500"),
                    *("--output", str(raw), "--threads", "--full-filenames"),
                    "--gil",  # the GIL's holder only
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            time.sleep(1.0)  # attached
        t = time.perf_counter()
        r = client.request(sc.method, sc.path(i), json=sc.body(i), headers=token)
        ms = (time.perf_counter() - t) * 1000
        if r.status_code != sc.expect:
            raise SystemExit(f"{sc.name} #{i}: {r.status_code} {r.text[:500]}")
        if i < warm:
            continue
        m.client_ms.append(ms)
        found = TIMING.fullmatch(r.headers.get("server-timing", ""))
        if found:
            m.app_ms.append(float(found.group(1)))
            m.sql_ms.append(float(found.group(2)))
            m.statements.append(int(found.group(3)))
    if spy is not None:
        spy.send_signal(2)  # SIGINT: py-spy writes what it sampled
        spy.wait(30)
        if raw.exists():
            m.profile = profile_share(raw)
    return m


def measure_pair(
    clients: tuple[httpx.Client, httpx.Client],
    sc: Scenario,
    tokens: tuple[dict[str, str], dict[str, str]],
    n: int,
) -> tuple[Measured, Measured]:
    """The scenario on both servers, one request each in turn; the first of each pair
    alternates between them."""
    out = (Measured(sc), Measured(sc))
    warm = 5 if sc.kind == "read" else 0
    for i in range(warm + n):
        for k in (0, 1) if i % 2 == 0 else (1, 0):
            t = time.perf_counter()
            r = clients[k].request(sc.method, sc.path(i), json=sc.body(i), headers=tokens[k])
            ms = (time.perf_counter() - t) * 1000
            if r.status_code != sc.expect:
                raise SystemExit(f"{sc.name} #{i} (server {k}): {r.status_code} {r.text[:500]}")
            if i < warm:
                continue
            out[k].client_ms.append(ms)
            found = TIMING.fullmatch(r.headers.get("server-timing", ""))
            if found:
                out[k].app_ms.append(float(found.group(1)))
                out[k].sql_ms.append(float(found.group(2)))
                out[k].statements.append(int(found.group(3)))
    return out


def pair_table(pairs: list[tuple[Measured, Measured]], against: str) -> list[str]:
    rows = [
        f"| endpoint | kind | p50 {against} | p50 this tree | ratio | server {against} "
        "| server this tree | statements | target p50 |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for a, b in pairs:
        target = READ_TARGET_MS if b.scenario.kind == "read" else WRITE_TARGET_MS
        app_a = statistics.median(a.app_ms) if a.app_ms else float("nan")
        app_b = statistics.median(b.app_ms) if b.app_ms else float("nan")
        stmts = (
            f"{statistics.median(a.statements):.0f} → {statistics.median(b.statements):.0f}"
            if a.statements and b.statements
            else "?"
        )
        verdict = "met" if b.pct(0.5) <= target else "NOT met"
        rows.append(
            f"| {b.scenario.name} | {b.scenario.kind} | {a.pct(0.5):.1f} | {b.pct(0.5):.1f} "
            f"| {b.pct(0.5) / a.pct(0.5):.2f} | {app_a:.1f} | {app_b:.1f} | {stmts} "
            f"| ≤ {target:.0f}: {verdict} |"
        )
    return rows


def table(results: list[Measured]) -> list[str]:
    rows = [
        "| endpoint | kind | p50 | p90 | p99 | server (median) | in SQL | SQL statements "
        "| the rest (Python) | target p50 |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for m in results:
        target = READ_TARGET_MS if m.scenario.kind == "read" else WRITE_TARGET_MS
        p50 = m.pct(0.5)
        app = statistics.median(m.app_ms) if m.app_ms else float("nan")
        sql = statistics.median(m.sql_ms) if m.sql_ms else float("nan")
        stmts = statistics.median(m.statements) if m.statements else float("nan")
        verdict = "met" if p50 <= target else "NOT met"
        rows.append(
            f"| {m.scenario.name} | {m.scenario.kind} | {p50:.1f} | {m.pct(0.9):.1f} "
            f"| {m.pct(0.99):.1f} | {app:.1f} | {sql:.1f} | {stmts:.0f} | {app - sql:.1f} "
            f"| ≤ {target:.0f}: {verdict} |"
        )
    return rows


def profiles(results: list[Measured]) -> list[str]:
    """Where the server's busy time went, per scenario (py-spy samples by layer)."""
    if not any(m.profile for m in results):
        return []
    rows = [
        "Where the server's busy time goes (py-spy samples of the thread holding the GIL, "
        "by innermost layer):",
        "",
    ]
    rows += [
        f"- {m.scenario.name}: "
        + ", ".join(f"{name} {share:.0%}" for name, share in m.profile.items() if share >= 0.02)
        for m in results
        if m.profile
    ]
    return [*rows, ""]


def conditions(url: str, started: str, load: tuple[str, str]) -> str:
    commit = subprocess.run(
        ["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True, text=True
    ).stdout.strip()
    dirty = subprocess.run(
        ["git", "-C", str(ROOT), "status", "--porcelain", "app"], capture_output=True, text=True
    ).stdout.strip()
    backend = "SQLite" if url.startswith("sqlite") else "PostgreSQL " + _pg_version(url)
    return (
        f"Conditions: {os.cpu_count()} CPUs, Linux {platform.release()}, Python "
        f"{platform.python_version()}; {backend}; one uvicorn worker, SERVER_TIMING on, "
        f"client on the same machine (httpx, keep-alive, one request at a time); commit "
        f"{commit}{' with uncommitted changes under app/' if dirty else ''}; {started}; load "
        f"average {load[0]} at the start, {load[1]} at the end."
    )


def _pg_version(url: str) -> str:
    import psycopg

    with psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://")) as c:
        row = c.execute("SHOW server_version").fetchone()
    return str(row[0]) if row else "?"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--backend", choices=["sqlite", "postgresql"], default="sqlite")
    p.add_argument("--url", help="serve this existing database instead of a fresh demo")
    p.add_argument("--today", type=date.fromisoformat, help="its business date (with --url)")
    p.add_argument("--admin-url", default="postgresql://postgres@127.0.0.1:5432/postgres")
    p.add_argument("--requests", type=int, default=100, help="per scenario, after 5 warm-ups")
    p.add_argument("--port", type=int, default=8870)
    p.add_argument("--append", action="store_true", help="add the results to bench/RESULTS.md")
    p.add_argument(
        "--profile",
        action="store_true",
        help="sample the server with py-spy during each scenario: the share of its time "
        "per layer (raw stacks in bench/logs/profile-*.txt)",
    )
    p.add_argument(
        "--against",
        type=Path,
        help="a second source tree (another commit's) to serve beside this one, on a copy "
        "of the fresh demo; requests alternate between the two servers",
    )
    a = p.parse_args()
    if a.against and (a.url or a.profile):
        p.error("--against serves a fresh demo, without --url or --profile")
    started = datetime.now(ZoneInfo("UTC")).strftime("%Y-%m-%d %H:%M UTC")
    load_start = " ".join(f"{x:.2f}" for x in os.getloadavg())
    with tempfile.TemporaryDirectory() as tmp:
        if a.url:
            url, today = a.url, a.today or date.today()
            data = "an existing database"
        else:
            url = prepare(a.backend, Path(tmp), a.admin_url)
            today = datetime.now(ZoneInfo("Asia/Shanghai")).date()
            data = "the demo (`ledger seed-demo`), fresh"
        name = "latency-" + ("existing" if a.url else a.backend)
        if a.against:
            other = copy_database(url, Path(tmp))
            procs = [
                serve(other, today, a.port + 1, LOGS / f"{name}-against.log", a.against.resolve()),
                serve(url, today, a.port, LOGS / f"{name}.log"),
            ]
            try:
                pairs = run_pairs(
                    (f"http://127.0.0.1:{a.port + 1}", f"http://127.0.0.1:{a.port}"),
                    today,
                    a.requests,
                )
            finally:
                for proc in procs:
                    proc.terminate()
                    proc.wait(15)
        else:
            proc = serve(url, today, a.port, LOGS / f"{name}.log")
            try:
                pid = proc.pid if a.profile else None
                results = run(f"http://127.0.0.1:{a.port}", today, a.requests, pid)
            finally:
                proc.terminate()
                proc.wait(15)
    load_end = " ".join(f"{x:.2f}" for x in os.getloadavg())
    errors = [
        ln
        for log in (name, f"{name}-against")
        if a.against or log == name
        for ln in (LOGS / f"{log}.log").read_text(errors="replace").splitlines()
        if "Traceback" in ln or '"status": 500' in ln
    ]
    against = ""
    if a.against:
        against = subprocess.run(
            ["git", "-C", str(a.against), "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
        ).stdout.strip() or str(a.against)
    lines = [
        f"### Latency at c=1 — {started}",
        "",
        conditions(url, started, (load_start, load_end)) + f" Data: {data}; business date "
        f"{today}; {a.requests} requests per scenario (reads after 5 warm-ups).",
        "",
        "Command: `.venv/bin/python bench/latency_bench.py "
        + shlex.join(sys.argv[1:]).replace(url, "URL")
        + "`",
        "",
        *(pair_table(pairs, against) if a.against else table(results)),
        "",
        *([] if a.against else profiles(results)),
        "Milliseconds. p50/p90/p99: the client's; server, in SQL and statements: the "
        "medians of the `Server-Timing` headers; the rest is the server's time outside SQL. "
        f"Server errors in its log: {len(errors)}.",
        "",
    ]
    print("\n".join(lines))
    if a.append:
        with (ROOT / "bench" / "RESULTS.md").open("a", encoding="utf-8") as f:
            f.write("\n" + "\n".join(lines))


def log_in(client: httpx.Client) -> dict[str, dict[str, str]]:
    auth = {}
    for user in ("regulator", "bank_jsb", "admin", "city_nanjing", "fund_nanjing"):
        r = client.post("/api/v1/auth/token", data={"username": user, "password": DEMO_PASSWORD})
        r.raise_for_status()
        auth[user] = {"Authorization": f"Bearer {r.json()['access_token']}"}
    return auth


def run_pairs(bases: tuple[str, str], today: date, n: int) -> list[tuple[Measured, Measured]]:
    """Both servers (the same data), their requests alternating."""
    with (
        httpx.Client(base_url=bases[0], timeout=60) as first,
        httpx.Client(base_url=bases[1], timeout=60) as second,
    ):
        auths = (log_in(first), log_in(second))
        return [
            measure_pair((first, second), sc, (auths[0][sc.user], auths[1][sc.user]), n)
            for sc in scenarios(second, auths[1], today)
        ]


def run(base: str, today: date, n: int, profile_pid: int | None) -> list[Measured]:
    with httpx.Client(base_url=base, timeout=60) as client:
        auth = log_in(client)
        return [
            measure(client, sc, auth[sc.user], n, profile_pid)
            for sc in scenarios(client, auth, today)
        ]


if __name__ == "__main__":
    main()
