"""Load harness: the service under uvicorn (1 and 2 workers) on PostgreSQL against the
limits measured in the same run — a bare FastAPI endpoint doing the same inserts in one
statement, and pgbench running that statement.

    .venv/bin/python bench/load_driver.py [--enterprises 100000] [--claims 2000]
        [--single 2000] [--batches 4] [--batch-size 1000] [--approvals N] [--reads 2000]
        [--concurrency 16] [--workers 1 2] [--history-loans 1000000] [--repeat 3]
        [--data-template DB] [--profile]

Generates the data first (bench/load_data.py, a fresh `ledger_load` database; with
`--data-template DB`, once into DB, then `ledger_load` is a copy of it), then per worker
count: single filings (POST /loans), batch filings (POST /loans/batch), claim approvals
with the SKD-Q1 cap check (POST /claims/{id}/province-review) and exposure reads (GET
/banks/{code}/exposure), each with `--concurrency` clients (asyncio + httpx); then the
bare endpoint with the same clients, and pgbench. With `--repeat N` every scenario runs N
times, interleaved with the other worker count, on the same data. The clients act as one
province reviewer and one regulator, so CLIENT_CONCURRENCY is raised to `--concurrency`
(the default 8 would refuse the rest with 429).

With `--profile`, one more pass per worker count follows, where the time goes: the
access log on (per request: server ms, SQL statements, SQL ms), py-spy on the workers
during each scenario (the GIL's holder by layer, and every busy thread's wall time by
layer or wait — classification from bench/latency_bench.py) and pg_stat_activity
sampled (backends running, waiting for a lock and in which statement, idle in a
transaction). Server logs and raw stacks: bench/logs/load-<start time>/.

Prints medians of throughput and p50/p99 latency, and every run's throughput, and appends
them, with the conditions (commit, load average) and this command, to bench/RESULTS.md."""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import platform
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
# the interpreter running the driver (its venv's), for the data generator and uvicorn
PY = sys.executable
UVICORN = [PY, "-m", "uvicorn"]
PY_SPY = str(Path(PY).parent / "py-spy")
sys.path.insert(0, str(ROOT))

from bench.latency_bench import (  # noqa: E402
    frames_of,
    function_of,
    is_idle,
    layer_of,
    profile_counts,
    shares,
)
from bench.load_data import enterprise_code  # noqa: E402

PASSWORD = "demo-pass-2026"


@dataclass
class Result:
    scenario: str
    workers: int | str
    requests: int
    items: int
    seconds: float
    latencies: list[float]
    errors: int

    @property
    def throughput(self) -> float:
        return self.items / self.seconds if self.seconds else 0.0

    def pct(self, p: float) -> float:
        if not self.latencies:
            return 0.0
        xs = sorted(self.latencies)
        return xs[min(len(xs) - 1, round(p * (len(xs) - 1)))] * 1000


# this run's server logs and raw stacks: bench/logs/load-<start time>/ (set by main)
LOGS = ROOT / "bench" / "logs"


def start(cmd: list[str], env: dict[str, str], port: int, log_name: str) -> subprocess.Popen[bytes]:
    """The server, its output written to bench/logs/<log_name>.log. (A pipe nobody reads
    fills up after ~64 KiB of log lines; the server then blocks writing its log and its
    clients see dropped connections — the `httpx.ReadError` of an earlier run.)"""
    LOGS.mkdir(parents=True, exist_ok=True)
    log_path = LOGS / f"{log_name}.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(cmd, env=env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
    deadline = time.time() + 30
    while time.time() < deadline and proc.poll() is None:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/openapi.json", timeout=1).status_code < 500:
                return proc
        except httpx.HTTPError:
            time.sleep(0.3)
    proc.kill()
    tail = log_path.read_text(errors="replace")[-3000:]
    raise RuntimeError(f"server did not start; {log_path} ends:\n{tail}")


def server_errors(log_name: str) -> list[str]:
    """The lines of a server log that report an error (5xx, tracebacks, dropped workers)."""
    path = LOGS / f"{log_name}.log"
    if not path.exists():
        return []
    keys = ("Traceback", "ERROR", "Exception", " 500 ", '"status": 5', "Worker was sent", "died")
    return [
        ln for ln in path.read_text(errors="replace").splitlines() if any(k in ln for k in keys)
    ]


def stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()


async def drive(
    name: str,
    workers: int | str,
    calls: list[tuple[str, str, dict[str, Any] | None, str, int]],
    base: str,
    concurrency: int,
) -> Result:
    """calls: (method, path, json, token, items per call)."""
    sem = asyncio.Semaphore(concurrency)
    lat: list[float] = []
    errors = 0
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=base, timeout=300, limits=limits) as client:

        async def one(method: str, path: str, body: dict[str, Any] | None, token: str) -> None:
            nonlocal errors
            async with sem:
                t = time.perf_counter()
                r = await client.request(
                    method, path, json=body, headers={"Authorization": f"Bearer {token}"}
                )
                lat.append(time.perf_counter() - t)
                if r.status_code >= 300:
                    errors += 1
                    if errors <= 3:
                        print(f"  {name}: {r.status_code} {r.text[:300]}", file=sys.stderr)

        t0 = time.perf_counter()
        await asyncio.gather(*(one(m, p, b, tok) for m, p, b, tok, _ in calls))
        seconds = time.perf_counter() - t0
    items = sum(n for *_, n in calls)
    return Result(name, workers, len(calls), items, seconds, lat, errors)


def tokens(base: str, users: list[str]) -> dict[str, str]:
    out = {}
    for u in users:
        r = httpx.post(f"{base}/api/v1/auth/token", data={"username": u, "password": PASSWORD})
        r.raise_for_status()
        out[u] = r.json()["access_token"]
    return out


def filing(i: int, bank: int, run: str) -> dict[str, Any]:
    return {
        "program": "SKD",
        "enterprise_credit_code": enterprise_code(i),
        "contract_no": f"{run}-{i}",
        "principal": "1000000.00",
        "annual_rate_bp": 340,
        "disbursed_on": "2026-03-27",
        "maturity_on": "2027-03-27",
        "security": "credit",
        "controller_guarantee": True,
    }


def waiting_claims(url: str) -> list[tuple[int, str]]:
    import psycopg

    with psycopg.connect(url.replace("postgresql+psycopg", "postgresql")) as c:
        rows = c.execute(
            "SELECT id, bank_code FROM claims WHERE status = 'city_approved' ORDER BY id"
        ).fetchall()
    return [(int(i), str(b)) for i, b in rows]


def pgbench(url: str, concurrency: int, seconds: int) -> Result:
    sql = (
        "\\set n random(1, 1000000000)\n"
        "WITH loan AS (INSERT INTO bare_loans (bank_code, credit_code, contract_no,"
        " principal_fen, disbursed_on, maturity_on) VALUES ('PGB', 'c', 'pgb-' || :n || '-'"
        " || clock_timestamp(), 100000000, '2026-03-27', '2027-03-27') RETURNING id)"
        " INSERT INTO bare_legs (loan_id, position, account, amount_fen) SELECT id, p, a, v"
        " FROM loan, (VALUES (0, 'exposure_memo', 40000000), (1, 'exposure_contra',"
        " -40000000)) AS l(p, a, v);\n"
    )
    with tempfile.NamedTemporaryFile("w", suffix=".sql", delete=False) as f:
        f.write(sql)
    db = url.replace("postgresql+psycopg://", "postgresql://")
    out = subprocess.run(
        [
            "pgbench",
            "-n",
            "-c",
            str(concurrency),
            "-j",
            "2",
            "-T",
            str(seconds),
            "-r",
            "-f",
            f.name,
            db,
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    tps = float(re.search(r"tps = ([0-9.]+)", out).group(1))  # type: ignore[union-attr]
    lat = float(re.search(r"latency average = ([0-9.]+) ms", out).group(1))  # type: ignore[union-attr]
    os.unlink(f.name)
    res = Result(
        "pgbench, same statement",
        "-",
        int(tps * seconds),
        int(tps * seconds),
        float(seconds),
        [],
        0,
    )
    res.latencies = [lat / 1000]
    return res


# --- profiling (--profile) ---------------------------------------------------------------

PROFILE_RATE = 50  # py-spy samples per second and recorder (two recorders per server)
# psycopg waits for the answer with the GIL released and takes it back once the answer is
# in: a busy worker's threads wait here for the GIL too (pg_stat_activity tells them apart)
WAIT_DB = "in the driver's wait (PostgreSQL's answer, then the GIL)"
WAIT_POOL = "waiting for a pooled connection"
WAIT_LOCK = "waiting for a thread lock"
LOCK_WAITS = ("Condition.wait", "Event.wait", "Lock.acquire", "RLock.acquire", "acquire")


def wall_class(stack: str) -> str | None:
    """A sample of any thread (py-spy `--idle`): its layer, or what it waits for, or None
    for a thread with nothing to do (the event loop in its selector, a pool thread on its
    queue, uvicorn's supervisor and its pipes). The driver's wait is the statement
    running in PostgreSQL, row locks included, and then the GIL to take the answer."""
    frames = frames_of(stack)
    if not frames:
        return None
    inner = frames[-1]
    fn = function_of(inner)
    if "psycopg" in inner and fn.endswith(".wait"):
        return WAIT_DB
    text = ";".join(frames)
    if "multiprocessing" in inner or "resource_tracker" in text or "supervisors/" in text:
        return None
    if fn in LOCK_WAITS:
        if "sqlalchemy/pool" in text or "sqlalchemy/util/queue" in text:
            return WAIT_POOL
        if any("WorkerThread.run" in f for f in frames[-3:]):
            return None
        return WAIT_LOCK
    if is_idle(inner):
        return None
    return layer_of(stack)


class PgSampler(threading.Thread):
    """The service's PostgreSQL backends every 50 ms (pg_stat_activity): how many run a
    statement, wait for a lock (and which), or sit idle in a transaction while the app
    works; mean backends per state over the scenario."""

    def __init__(self, url: str) -> None:
        super().__init__(daemon=True)
        self.url = url.replace("postgresql+psycopg://", "postgresql://")
        self.counts: dict[str, int] = {}
        self.ticks = 0
        self.done = threading.Event()

    def run(self) -> None:
        import psycopg

        with psycopg.connect(self.url, autocommit=True) as c:
            while not self.done.is_set():
                rows = c.execute(
                    "SELECT state, wait_event_type, wait_event, left(query, 300)"
                    " FROM pg_stat_activity"
                    " WHERE datname = current_database() AND backend_type = 'client backend'"
                    " AND pid <> pg_backend_pid()"
                ).fetchall()
                self.ticks += 1
                for state, kind, event, query in rows:
                    if state == "active":
                        key = "running a statement" if kind is None else f"{kind} wait ({event})"
                        if kind == "Lock":  # which statement waits: its first words
                            key += f" in `{' '.join(str(query).split())[:70]}…`"
                    elif state == "idle in transaction":
                        key = "idle in transaction (the app's turn)"
                    else:
                        continue
                    self.counts[key] = self.counts.get(key, 0) + 1
                self.done.wait(0.05)

    def means(self) -> dict[str, float]:
        n = self.ticks or 1
        return {k: v / n for k, v in sorted(self.counts.items(), key=lambda kv: -kv[1])}


@dataclass
class Profile:
    """Where one profiled scenario's time went."""

    result: Result
    cpu: dict[str, int] = field(default_factory=dict)  # GIL holder's samples per layer
    wall: dict[str, int] = field(default_factory=dict)  # busy threads' samples per class
    db: dict[str, float] = field(default_factory=dict)  # mean backends per state
    server_ms: list[float] = field(default_factory=list)  # access log, per request
    sql_ms: list[float] = field(default_factory=list)
    statements: list[float] = field(default_factory=list)
    server_errors: int = 0


class Profiler:
    """py-spy on a server and its workers (`--subprocesses`) during one scenario, two
    recorders: the GIL's holder (`--gil`: where the CPU goes) and every thread (`--idle`:
    where a request thread's wall time goes, waits included); and PgSampler."""

    def __init__(self, pid: int, tag: str, url: str) -> None:
        self.pid = pid
        self.raw = {kind: LOGS / f"profile-load-{tag}-{kind}.txt" for kind in ("cpu", "wall")}
        self.pg = PgSampler(url)
        self.spies: list[subprocess.Popen[bytes]] = []

    def __enter__(self) -> Profiler:
        for kind, flag in (("cpu", "--gil"), ("wall", "--idle")):
            self.raw[kind].unlink(missing_ok=True)
            self.spies.append(
                subprocess.Popen(
                    [
                        *(PY_SPY, "record", "--pid", str(self.pid), "--subprocesses"),
                        *("--nonblocking", "--full-filenames", "--format", "raw"),
                        *("--rate", str(PROFILE_RATE), "--output", str(self.raw[kind]), flag),
                    ],
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
            )
        self.pg.start()
        time.sleep(1.5)  # attached to every worker
        return self

    def __exit__(self, *_: object) -> None:
        for spy in self.spies:
            spy.send_signal(signal.SIGINT)  # py-spy writes what it sampled
        for spy in self.spies:
            spy.wait(60)
        self.pg.done.set()
        self.pg.join(5)

    def into(self, prof: Profile) -> Profile:
        if self.raw["cpu"].exists():
            prof.cpu = profile_counts(self.raw["cpu"])
        if self.raw["wall"].exists():
            prof.wall = profile_counts(self.raw["wall"], wall_class)
        prof.db = self.pg.means()
        return prof


# the access log's paths, per scenario
ROUTES = [
    ("POST", re.compile(r"/api/v1/loans"), "single filing"),
    ("POST", re.compile(r"/api/v1/loans/batch"), "batch filing"),
    ("POST", re.compile(r"/api/v1/claims/\d+/province-review"), "claim approval (SKD-Q1 cap)"),
    ("GET", re.compile(r"/api/v1/banks/[^/]+/exposure"), "exposure read"),
]


def access_lines(log_name: str) -> dict[str, list[dict[str, Any]]]:
    """The server's access-log lines (JSON, `app.access`), per scenario."""
    out: dict[str, list[dict[str, Any]]] = {}
    for line in (LOGS / f"{log_name}.log").read_text(errors="replace").splitlines():
        if '"app.access"' not in line:
            continue
        try:
            rec = json.loads(line)
        except ValueError:
            continue
        for method, path, scenario in ROUTES:
            if rec.get("method") == method and path.fullmatch(str(rec.get("path"))):
                out.setdefault(scenario, []).append(rec)
    return out


def slug(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")


# --- data -------------------------------------------------------------------------------


def generate(a: argparse.Namespace, db: str) -> dict[str, Any]:
    out = subprocess.run(
        [
            PY,
            str(ROOT / "bench" / "load_data.py"),
            *("--admin-url", a.admin_url, "--db", db),
            *("--enterprises", str(a.enterprises), "--claims", str(a.claims)),
            *("--history-loans", str(a.history_loans)),
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


def data_options(a: argparse.Namespace) -> dict[str, int]:
    return {"enterprises": a.enterprises, "claims": a.claims, "history_loans": a.history_loans}


def from_template(a: argparse.Namespace) -> dict[str, Any]:
    """`ledger_load` as a copy of the database `--data-template` (CREATE DATABASE …
    TEMPLATE), generated there first if it does not exist yet. The template's comment
    holds the generator's summary and the options it was made with."""
    import psycopg
    from psycopg import sql

    tmpl = a.data_template
    with psycopg.connect(a.admin_url, autocommit=True) as c:
        row = c.execute(
            "SELECT shobj_description(oid, 'pg_database') FROM pg_database WHERE datname = %s",
            (tmpl,),
        ).fetchone()
        if row is None:
            summary = {**generate(a, tmpl), "options": data_options(a)}
            c.execute(
                sql.SQL("COMMENT ON DATABASE {} IS {}").format(
                    sql.Identifier(tmpl), sql.Literal(json.dumps(summary))
                )
            )
        else:
            summary = json.loads(row[0] or "{}")
            if summary.get("options") != data_options(a):
                raise SystemExit(
                    f"database {tmpl} holds data made with {summary.get('options')}, "
                    f"not {data_options(a)}: drop it, or pick another --data-template"
                )
        c.execute("DROP DATABASE IF EXISTS ledger_load WITH (FORCE)")
        c.execute(sql.SQL("CREATE DATABASE ledger_load TEMPLATE {}").format(sql.Identifier(tmpl)))
    url = str(summary["database_url"]).rsplit("/", 1)[0] + "/ledger_load"
    return {**summary, "database_url": url, "template": tmpl}


def analyze(url: str) -> None:
    """Fresh planner statistics before every run, for the tables the runs before it grew
    (5,000 loans a run at the defaults), as autovacuum would gather them; the server may
    run without it (this machine's PostgreSQL has `autovacuum = off`)."""
    import psycopg

    with psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://")) as c:
        c.autocommit = True
        c.execute("ANALYZE")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--admin-url", default="postgresql://postgres@127.0.0.1:5432/postgres")
    p.add_argument("--enterprises", type=int, default=100_000)
    p.add_argument("--claims", type=int, default=2_000)
    p.add_argument(
        "--history-loans",
        type=int,
        default=0,
        help="repaid loans added by COPY first (e.g. 1000000 for the approval target)",
    )
    p.add_argument(
        "--data-template",
        metavar="DB",
        help="copy the data from database DB (made by an earlier run with the same data "
        "options; generated there first if missing) instead of generating it",
    )
    p.add_argument("--single", type=int, default=2_000)
    p.add_argument("--batches", type=int, default=4)
    p.add_argument("--batch-size", type=int, default=1_000)
    p.add_argument(
        "--approvals",
        type=int,
        help="claims approved per run (default: the waiting claims shared out over the runs)",
    )
    p.add_argument("--reads", type=int, default=2_000)
    p.add_argument("--concurrency", type=int, default=16)
    p.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    p.add_argument(
        "--repeat", type=int, default=1, help="runs of every scenario, interleaved; medians"
    )
    p.add_argument(
        "--profile",
        action="store_true",
        help="then one more pass per worker count, profiled: the access log on, py-spy on "
        "the workers and pg_stat_activity sampled during each scenario (not in the medians)",
    )
    p.add_argument("--no-append", action="store_true")
    a = p.parse_args()
    now = datetime.now(UTC)
    started = f"{now:%Y-%m-%d %H:%M} UTC"
    global LOGS
    LOGS = ROOT / "bench" / "logs" / f"load-{now:%Y%m%d-%H%M}"
    load_start = os.getloadavg()

    data = from_template(a) if a.data_template else generate(a, "ledger_load")
    url = data["database_url"]
    print(f"data: {data}")
    env = {
        **os.environ,
        "DATABASE_URL": url,
        "APP_ENV": "demo",
        "APP_TODAY": "2026-03-31",
        "LOG_LEVEL": "WARNING",
        "DB_POOL_SIZE": str(a.concurrency),
        # the clients act as a few users (one province reviewer, one regulator): let one
        # user have all of them in flight, or admission control refuses the rest (429)
        "CLIENT_CONCURRENCY": str(a.concurrency),
    }
    users = [f"load_bank{b:02d}" for b in range(1, data["banks"] + 1)] + ["province", "regulator"]
    claims = waiting_claims(url)
    usable = a.enterprises - a.claims  # enterprises without a loan yet
    next_enterprise = itertools.count(0)
    results: list[Result] = []
    profiles: list[Profile] = []
    port = 8800
    runs = [(r, w, False) for r in range(a.repeat) for w in a.workers]
    if a.profile:
        runs += [(0, w, True) for w in a.workers]
    share = len(claims) // len(runs)
    for run_index, (r, w, profiled) in enumerate(runs):
        analyze(url)
        port += 1
        base = f"http://127.0.0.1:{port}"
        log_name = f"{'profiled' if profiled else 'service'}-{run_index}-w{w}"
        proc = start(
            [
                *UVICORN,
                *("--factory", "app.main:app_factory", "--port", str(port)),
                *("--workers", str(w), "--no-access-log", "--log-level", "warning"),
            ],
            {**env, "LOG_LEVEL": "INFO"} if profiled else env,  # INFO: the access log
            port,
            log_name,
        )
        mine_profiles: list[Profile] = []

        try:
            tok = tokens(base, users)
            banks = users[: data["banks"]]
            run = f"W{w}R{r}{'P' if profiled else ''}"
            single = []
            for k in range(a.single):
                i = next(next_enterprise)
                assert i < usable, "not enough enterprises: raise --enterprises"
                single.append(
                    ("POST", "/api/v1/loans", filing(i, k, run), tok[banks[k % len(banks)]], 1)
                )
            batch = []
            for k in range(a.batches):
                items = []
                for _ in range(a.batch_size):
                    i = next(next_enterprise)
                    assert i < usable, "not enough enterprises: raise --enterprises"
                    items.append(filing(i, k, run + "B"))
                batch.append(
                    (
                        "POST",
                        "/api/v1/loans/batch",
                        {"items": items},
                        tok[banks[k % len(banks)]],
                        a.batch_size,
                    )
                )
            mine = claims[run_index * share : (run_index + 1) * share][: a.approvals]
            approvals = [
                (
                    "POST",
                    f"/api/v1/claims/{cid}/province-review",
                    {"decision": "approve", "comment": "load"},
                    tok["province"],
                    1,
                )
                for cid, _ in mine
            ]
            reads = [
                (
                    "GET",
                    f"/api/v1/banks/LOAD{(k % data['banks']) + 1:02d}/exposure",
                    None,
                    tok["regulator"],
                    1,
                )
                for k in range(a.reads)
            ]
            plan = [
                ("single filing", single, a.concurrency),
                ("batch filing", batch, 2),
                ("claim approval (SKD-Q1 cap)", approvals, a.concurrency),
                ("exposure read", reads, a.concurrency),
            ]
            for name, calls, concurrency in plan:
                if not profiled:
                    results.append(asyncio.run(drive(name, w, calls, base, concurrency)))
                    continue
                with Profiler(proc.pid, f"{run_index}-w{w}-{slug(name)}", url) as spy:
                    res = asyncio.run(drive(name, w, calls, base, concurrency))
                mine_profiles.append(spy.into(Profile(res)))
        finally:
            stop(proc)
            _report_log(log_name)
        if profiled:
            lines = access_lines(log_name)
            for prof in mine_profiles:
                recs = lines.get(prof.result.scenario, [])
                prof.server_ms = [float(x["duration_ms"]) for x in recs]
                prof.sql_ms = [float(x["sql_ms"]) for x in recs]
                prof.statements = [float(x["sql_statements"]) for x in recs]
                prof.server_errors = sum(1 for x in recs if int(x["status"]) >= 500)
            profiles += mine_profiles
            continue
        port += 1
        bare = start(
            [
                *UVICORN,
                *("bench.bare_app:app", "--port", str(port), "--workers", str(w)),
                *("--no-access-log", "--log-level", "warning"),
            ],
            env,
            port,
            f"bare-{run_index}-w{w}",
        )
        try:
            calls = []
            for k in range(a.single):
                body = filing(k, k, f"BARE{w}R{r}")
                calls.append(
                    (
                        "POST",
                        "/bare/loans",
                        {
                            "bank_code": f"LOAD{k % 30 + 1:02d}",
                            **{
                                x: body[x]
                                for x in (
                                    "enterprise_credit_code",
                                    "contract_no",
                                    "principal",
                                    "disbursed_on",
                                    "maturity_on",
                                )
                            },
                        },
                        "x",
                        1,
                    )
                )
            results.append(
                asyncio.run(
                    drive(
                        "bare endpoint, same inserts",
                        w,
                        calls,
                        f"http://127.0.0.1:{port}",
                        a.concurrency,
                    )
                )
            )
        finally:
            stop(bare)
            _report_log(f"bare-{run_index}-w{w}")
    for _ in range(a.repeat):
        results.append(pgbench(url, a.concurrency, 10))
    load = (load_start, os.getloadavg())
    report(results, profiles, a, data, started, load)


def _report_log(log_name: str) -> None:
    errors = server_errors(log_name)
    where = LOGS / f"{log_name}.log"
    if errors:
        print(f"  server log {where}: {len(errors)} error line(s), first: {errors[0][:200]}")
    else:
        print(f"  server log {where}: no errors")


def _median(xs: list[float]) -> float:
    return statistics.median(xs) if xs else 0.0


def _pct(xs: list[float], p: float) -> float:
    if not xs:
        return float("nan")
    ys = sorted(xs)
    return ys[min(len(ys) - 1, round(p * (len(ys) - 1)))]


def _shares_text(counts: dict[str, int]) -> str:
    listed = [f"{k} {v:.0%}" for k, v in shares(counts).items() if v >= 0.02]
    return f"{', '.join(listed) or '—'} ({sum(counts.values()):,} samples)"


def profile_lines(profiles: list[Profile]) -> list[str]:
    """The profiled pass: its figures (under the profilers) with the access log's per
    request medians, then per scenario where the time goes."""
    if not profiles:
        return []
    rows = [
        "| scenario | workers | requests | items/s | p50 ms | p99 ms | server ms, median "
        "(p99) | SQL statements | SQL ms | server ms outside SQL | 5xx |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for pr in profiles:
        x = pr.result
        server, sql = _median(pr.server_ms), _median(pr.sql_ms)
        rows.append(
            f"| {x.scenario} | {x.workers} | {x.requests} | {x.throughput:,.0f} | "
            f"{x.pct(0.5):.1f} | {x.pct(0.99):.1f} | {server:.1f} ({_pct(pr.server_ms, 0.99):.1f}) "
            f"| {_median(pr.statements):.0f} | {sql:.1f} | {server - sql:.1f} "
            f"| {pr.server_errors} |"
        )
    rows += ["", "Where the time goes, per scenario:", ""]
    for pr in profiles:
        db = ", ".join(f"{k} {v:.1f}" for k, v in pr.db.items() if v >= 0.05) or "—"
        rows += [
            f"- *{pr.result.scenario}, {pr.result.workers} worker(s)*",
            f"  - CPU (the GIL's holder, by innermost layer): {_shares_text(pr.cpu)}",
            f"  - request threads' wall time (every busy thread): {_shares_text(pr.wall)}",
            f"  - PostgreSQL backends of the service, mean number: {db}",
        ]
    return rows


def conditions_of(a: argparse.Namespace, data: dict[str, Any], started: str, load: Any) -> str:
    import psycopg

    with psycopg.connect(data["database_url"].replace("postgresql+psycopg", "postgresql")) as c:
        version = c.execute("SHOW server_version").fetchone()[0]  # type: ignore[index]
        loans = c.execute("SELECT count(*) FROM loans").fetchone()[0]  # type: ignore[index]
    commit = subprocess.run(
        ["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True, text=True
    ).stdout.strip()
    dirty = subprocess.run(
        ["git", "-C", str(ROOT), "status", "--porcelain", "app"], capture_output=True, text=True
    ).stdout.strip()
    avg = [" ".join(f"{v:.2f}" for v in x) for x in load]
    source = f"copied from `{data['template']}`" if data.get("template") else "generated"
    return (
        f"Conditions: commit {commit}{' with uncommitted changes under app/' if dirty else ''}; "
        f"started {started}; load average (1, 5, 15 min) {avg[0]} at the start, {avg[1]} at "
        f"the end (the 2 CPUs are shared); Python {platform.python_version()}, PostgreSQL "
        f"{version} on loopback (default durability); load generator (asyncio + httpx, "
        f"{a.concurrency} concurrent clients; batches 2 at a time) on the same cores; "
        f"{data['enterprises']:,} enterprises, {data['banks']} banks × 13 cities ({source}), "
        f"{loans:,} loans in the database at the end; APP_TODAY 2026-03-31; {a.repeat} "
        "run(s) of every scenario, interleaved (1 worker, 2 workers, 1 worker, …); medians."
    )


def report(
    results: list[Result],
    profiles: list[Profile],
    a: argparse.Namespace,
    data: dict[str, Any],
    started: str,
    load: Any,
) -> None:
    """Per scenario and worker count: the median over the runs of throughput and of each
    run's p50 and p99, and every run's throughput; ratios from the medians and run by run."""
    groups: dict[tuple[str, str], list[Result]] = {}
    for r in results:
        groups.setdefault((r.scenario, str(r.workers)), []).append(r)
    lines = [
        "| scenario | workers | runs × requests | items/s (median) | p50 ms | p99 ms | errors "
        "| items/s, every run |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for (scenario, workers), rs in groups.items():
        lines.append(
            f"| {scenario} | {workers} | {len(rs)} × {rs[0].requests} | "
            f"{_median([x.throughput for x in rs]):,.0f} | "
            f"{_median([x.pct(0.5) for x in rs]):.1f} | {_median([x.pct(0.99) for x in rs]):.1f} | "
            f"{sum(x.errors for x in rs)} | {', '.join(f'{x.throughput:,.0f}' for x in rs)} |"
        )

    def tput(scenario: str, workers: str) -> list[float]:
        return [x.throughput for x in groups.get((scenario, workers), [])]

    ratios = []
    pgb = tput("pgbench, same statement", "-")
    for w in map(str, a.workers):
        svc, bare = tput("single filing", w), tput("bare endpoint, same inserts", w)
        each = ", ".join(f"{s / b:.2f}" for s, b in zip(svc, bare, strict=True))
        ratios.append(
            f"single filing ÷ bare endpoint, {w} worker(s): {_median(svc) / _median(bare):.2f}"
            f" (run by run: {each})"
        )
    w = str(a.workers[-1])
    ratios.append(
        f"single filing ({w} workers) ÷ pgbench: "
        f"{_median(tput('single filing', w)) / _median(pgb):.3f}"
    )
    table = "\n".join(lines)
    prof = profile_lines(profiles)
    print(table)
    print("\n".join(ratios))
    print("\n".join(prof))
    if a.no_append:
        return
    cmd = " ".join(["`.venv/bin/python bench/load_driver.py", *sys.argv[1:]]).strip() + "`"
    profiled = (
        "\n\nProfiled pass (one more run per worker count, after the measured ones: the "
        "access log on, py-spy on the workers at "
        f"{PROFILE_RATE} Hz per recorder and pg_stat_activity every 50 ms; its figures are "
        "not in the medians above):\n\n" + "\n".join(prof)
        if prof
        else ""
    )
    section = (
        f"\n### Load harness — {started}\n\n{conditions_of(a, data, started, load)}\n\n"
        f"Command: {cmd}\n\nServer logs (and, profiled, raw stacks): "
        f"`{LOGS.relative_to(ROOT)}/`.\n\n{table}\n\n"
        + "\n".join(f"- {x}" for x in ratios)
        + profiled
        + "\n"
    )
    with open(ROOT / "bench" / "RESULTS.md", "a") as f:
        f.write(section)


if __name__ == "__main__":
    main()
