"""Load harness: the service under uvicorn (1 and 2 workers) on PostgreSQL against the
limits measured in the same run — a bare FastAPI endpoint doing the same inserts in one
statement, and pgbench running that statement.

    .venv/bin/python bench/load_driver.py [--enterprises 100000] [--claims 2000]
        [--single 2000] [--batches 4] [--batch-size 1000] [--reads 2000]
        [--concurrency 16] [--workers 1 2] [--history-loans 1000000] [--repeat 3]

Generates the data first (bench/load_data.py, a fresh `ledger_load` database), then per
worker count: single filings (POST /loans), batch filings (POST /loans/batch), claim
approvals with the SKD-Q1 cap check (POST /claims/{id}/province-review) and exposure
reads (GET /banks/{code}/exposure), each with `--concurrency` clients (asyncio + httpx);
then the bare endpoint with the same clients, and pgbench. With `--repeat N` every
scenario runs N times, interleaved with the other worker count, on the same data. Prints
medians of throughput and p50/p99 latency, and every run's throughput, and appends them,
with the conditions and this command, to bench/RESULTS.md."""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
PY = str(ROOT / ".venv" / "bin" / "python")
UVICORN = str(ROOT / ".venv" / "bin" / "uvicorn")
sys.path.insert(0, str(ROOT))

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


LOGS = ROOT / "bench" / "logs"


def start(cmd: list[str], env: dict[str, str], port: int, log_name: str) -> subprocess.Popen[bytes]:
    """The server, its output written to bench/logs/<log_name>.log. (A pipe nobody reads
    fills up after ~64 KiB of log lines; the server then blocks writing its log and its
    clients see dropped connections — the `httpx.ReadError` of an earlier run.)"""
    LOGS.mkdir(exist_ok=True)
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
    keys = ("Traceback", "ERROR", "Exception", " 500 ", "Worker was sent", "died")
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
    p.add_argument("--single", type=int, default=2_000)
    p.add_argument("--batches", type=int, default=4)
    p.add_argument("--batch-size", type=int, default=1_000)
    p.add_argument("--reads", type=int, default=2_000)
    p.add_argument("--concurrency", type=int, default=16)
    p.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    p.add_argument(
        "--repeat", type=int, default=1, help="runs of every scenario, interleaved; medians"
    )
    p.add_argument("--no-append", action="store_true")
    a = p.parse_args()

    out = (
        subprocess.run(
            [
                PY,
                str(ROOT / "bench" / "load_data.py"),
                "--admin-url",
                a.admin_url,
                "--enterprises",
                str(a.enterprises),
                "--claims",
                str(a.claims),
                "--history-loans",
                str(a.history_loans),
            ],
            capture_output=True,
            text=True,
            check=True,
        )
        .stdout.strip()
        .splitlines()[-1]
    )
    data = json.loads(out)
    url = data["database_url"]
    print(f"data: {data}")
    env = {
        **os.environ,
        "DATABASE_URL": url,
        "APP_ENV": "demo",
        "APP_TODAY": "2026-03-31",
        "LOG_LEVEL": "WARNING",
        "DB_POOL_SIZE": str(a.concurrency),
    }
    users = [f"load_bank{b:02d}" for b in range(1, data["banks"] + 1)] + ["province", "regulator"]
    claims = waiting_claims(url)
    usable = a.enterprises - a.claims  # enterprises without a loan yet
    next_enterprise = itertools.count(0)
    results: list[Result] = []
    port = 8800
    runs = [(r, w) for r in range(a.repeat) for w in a.workers]
    for run_index, (r, w) in enumerate(runs):
        port += 1
        base = f"http://127.0.0.1:{port}"
        proc = start(
            [
                UVICORN,
                "--factory",
                "app.main:app_factory",
                "--port",
                str(port),
                "--workers",
                str(w),
                "--no-access-log",
                "--log-level",
                "warning",
            ],
            env,
            port,
            f"service-{run_index}-w{w}",
        )
        try:
            tok = tokens(base, users)
            banks = users[: data["banks"]]
            run = f"W{w}R{r}"
            single = []
            for k in range(a.single):
                i = next(next_enterprise)
                assert i < usable, "not enough enterprises: raise --enterprises"
                single.append(
                    ("POST", "/api/v1/loans", filing(i, k, run), tok[banks[k % len(banks)]], 1)
                )
            results.append(asyncio.run(drive("single filing", w, single, base, a.concurrency)))
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
            results.append(asyncio.run(drive("batch filing", w, batch, base, 2)))
            share = len(claims) // len(runs)
            mine = claims[run_index * share : (run_index + 1) * share]
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
            results.append(
                asyncio.run(drive("claim approval (SKD-Q1 cap)", w, approvals, base, a.concurrency))
            )
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
            results.append(asyncio.run(drive("exposure read", w, reads, base, a.concurrency)))
        finally:
            stop(proc)
            _report_log(f"service-{run_index}-w{w}")
        port += 1
        bare = start(
            [
                UVICORN,
                "bench.bare_app:app",
                "--port",
                str(port),
                "--workers",
                str(w),
                "--no-access-log",
                "--log-level",
                "warning",
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
    report(results, a, data)


def _report_log(log_name: str) -> None:
    errors = server_errors(log_name)
    where = LOGS / f"{log_name}.log"
    if errors:
        print(f"  server log {where}: {len(errors)} error line(s), first: {errors[0][:200]}")
    else:
        print(f"  server log {where}: no errors")


def _median(xs: list[float]) -> float:
    return statistics.median(xs) if xs else 0.0


def report(results: list[Result], a: argparse.Namespace, data: dict[str, Any]) -> None:
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
    print(table)
    print("\n".join(ratios))
    if a.no_append:
        return
    import psycopg

    with psycopg.connect(data["database_url"].replace("postgresql+psycopg", "postgresql")) as c:
        version = c.execute("SHOW server_version").fetchone()[0]  # type: ignore[index]
        loans = c.execute("SELECT count(*) FROM loans").fetchone()[0]  # type: ignore[index]
    cmd = " ".join(["`.venv/bin/python bench/load_driver.py", *sys.argv[1:]]).strip() + "`"
    section = (
        f"\n### Load harness — {datetime.now(UTC):%Y-%m-%d %H:%M} UTC\n\n"
        f"Conditions: {os.cpu_count()} CPUs, Python {platform.python_version()}, PostgreSQL "
        f"{version} on loopback (default durability); load generator (asyncio + httpx, "
        f"{a.concurrency} concurrent clients; batches 2 at a time) on the same cores; "
        f"{data['enterprises']:,} enterprises, {data['banks']} banks × 13 cities, "
        f"{loans:,} loans in the database at the end; APP_TODAY 2026-03-31; {a.repeat} "
        "run(s) of every scenario, interleaved (1 worker, 2 workers, 1 worker, …); medians.\n\n"
        f"Command: {cmd}\n\n{table}\n\n" + "\n".join(f"- {x}" for x in ratios) + "\n"
    )
    with open(ROOT / "bench" / "RESULTS.md", "a") as f:
        f.write(section)


if __name__ == "__main__":
    main()
