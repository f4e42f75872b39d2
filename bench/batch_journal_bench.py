"""A batch's exposure as one ledger entry against one entry per loan (#16 part 3), side by
side in one run, end to end through the app.

    .venv/bin/python bench/batch_journal_bench.py [--backend sqlite|postgresql|both]
        [--loans 1000] [--repeat 3] [--admin-url URL] [--append]

Each backend gets a fresh migrated database with the demo data and enough library
enterprises (`bench/batch_job_bench.py`'s setup: Nanjing, Suzhou and 连云区, every third
filing XB, one in twenty refused). Then `POST /loans/batch` with `--loans` filings is
sent `--repeat` times in each shape, interleaved,
each batch to fresh enterprises, after one warm-up batch; the shape that goes first
alternates from one round to the next:

  one entry   the service as it is: the batch's exposure is one `loan.batch_filed` entry
              per set of fund books (here three: Nanjing's SKD loans, Suzhou's, the XB
              loans), with a leg pair per loan and book
  per loan    the former shape, rebuilt by replacing `batch_exposure_entries` with the
              identity: one `loan.filed` entry per loan (its legs still name the loan)

Reported per shape (medians): the request's wall time, the time inside the ledger's
writer (`post_many`: validation, hashing, the chain head, COPY or INSERTs, and on
PostgreSQL the database's statement triggers), and the entries and legs written."""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from app.auth.tokens import issue_token  # noqa: E402
from app.config import Settings  # noqa: E402
from app.db import make_engine  # noqa: E402
from app.kit.clock import Clock  # noqa: E402
from app.ledger import service as ledger  # noqa: E402
from app.loans import service as loans_service  # noqa: E402
from app.main import create_app  # noqa: E402
from app.models import LedgerEntry, LedgerLeg  # noqa: E402
from bench.batch_job_bench import TODAY, filing, setup  # noqa: E402
from bench.load_data import fresh_database  # noqa: E402

SHAPES = ("one entry", "per loan")
DB = "batch_journal_bench"


def _count(engine: Any, model: Any) -> int:
    with engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(model)).scalar() or 0)


def measure(url: str, backend: str, loans: int, repeat: int) -> dict[str, list[dict[str, float]]]:
    t0 = time.perf_counter()
    user_id = setup(url, loans * (repeat * len(SHAPES) + 1), "mixed")
    print(f"  {backend}: setup {time.perf_counter() - t0:.1f} s")
    settings = Settings(database_url=url, app_env="demo", app_today=TODAY, server_timing=True)
    engine = make_engine(url)
    token = issue_token(
        settings, user_id=user_id, role="bank", scope={"bank_code": "JSB"}, now=datetime.now(UTC)
    )
    headers = {"Authorization": f"Bearer {token}"}
    writer = ledger.post_many
    in_writer = [0.0]

    def timed_post_many(*args: Any, **kwargs: Any) -> list[int]:
        start = time.perf_counter()
        try:
            return writer(*args, **kwargs)
        finally:
            in_writer[0] += time.perf_counter() - start

    one_entry = loans_service.batch_exposure_entries
    per_loan: Callable[..., Any] = lambda specs, bank: list(specs)  # noqa: E731
    results: dict[str, list[dict[str, float]]] = {s: [] for s in SHAPES}
    app = create_app(settings, engine=engine, clock=Clock(TODAY))
    ledger.post_many = timed_post_many  # type: ignore[assignment]
    try:
        with TestClient(app) as client:
            client.get("/api/v1/regions", headers=headers)
            warm = {"items": [filing(i, "W", "mixed") for i in range(loans)]}
            assert client.post("/api/v1/loans/batch", headers=headers, json=warm).is_success
            batch = 1  # the warm-up's enterprises are taken
            for r in range(repeat):
                for shape in SHAPES if r % 2 == 0 else SHAPES[::-1]:
                    loans_service.batch_exposure_entries = (  # type: ignore[assignment]
                        one_entry if shape == "one entry" else per_loan
                    )
                    first = batch * loans
                    body = {
                        "items": [filing(first + i, f"J{batch}", "mixed") for i in range(loans)]
                    }
                    batch += 1
                    entries, legs = _count(engine, LedgerEntry), _count(engine, LedgerLeg)
                    in_writer[0] = 0.0
                    start = time.perf_counter()
                    res = client.post("/api/v1/loans/batch", headers=headers, json=body)
                    wall = time.perf_counter() - start
                    assert res.status_code == 200, res.text[:500]
                    results[shape].append(
                        {
                            "wall": wall,
                            "writer": in_writer[0],
                            "accepted": res.json()["accepted"],
                            "entries": _count(engine, LedgerEntry) - entries,
                            "legs": _count(engine, LedgerLeg) - legs,
                        }
                    )
                    print(
                        f"    run {r + 1} {shape}: {wall * 1000:.0f} ms, writer "
                        f"{in_writer[0] * 1000:.1f} ms, {results[shape][-1]['entries']:.0f} "
                        f"entries, {results[shape][-1]['legs']:.0f} legs; "
                        f"{res.headers.get('server-timing')}"
                    )
    finally:
        ledger.post_many = writer  # type: ignore[assignment]
        loans_service.batch_exposure_entries = one_entry  # type: ignore[assignment]
        with Session(engine) as s:
            assert ledger.verify(s).ok, "the chain must verify"
        engine.dispose()
    return results


def _ms(runs: list[dict[str, float]], key: str, digits: int) -> str:
    values = [x[key] * 1000 for x in runs]
    each = ", ".join(f"{v:.{digits}f}" for v in values)
    return f"{statistics.median(values):.{digits}f} ({each})"


def table(backend: str, results: dict[str, list[dict[str, float]]]) -> list[str]:
    rows = [
        f"| {backend} | {shape} | {_ms(runs, 'wall', 0)} | {_ms(runs, 'writer', 1)} | "
        f"{runs[0]['accepted']:.0f} | {runs[0]['entries']:.0f} | {runs[0]['legs']:.0f} |"
        for shape, runs in results.items()
    ]
    one, per = (statistics.median(x["writer"] for x in results[s]) for s in SHAPES)
    wall_one, wall_per = (statistics.median(x["wall"] for x in results[s]) for s in SHAPES)
    rows.append(
        f"| {backend} | ratio one entry ÷ per loan | {wall_one / wall_per:.2f} | "
        f"{one / per:.2f} | | | |"
    )
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--backend", choices=["sqlite", "postgresql", "both"], default="both")
    ap.add_argument("--loans", type=int, default=1000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--admin-url", default="postgresql://postgres@127.0.0.1:5432/postgres")
    ap.add_argument("--append", action="store_true", help="append to bench/RESULTS.md")
    a = ap.parse_args()
    start_load = os.getloadavg()
    out = [
        "| backend | shape | request ms, median (runs) | in the ledger's writer ms, median "
        "(runs) | accepted | entries | legs |",
        "|---|---|---|---|---|---|---|",
    ]
    backends = ["sqlite", "postgresql"] if a.backend == "both" else [a.backend]
    for backend in backends:
        if backend == "sqlite":
            with tempfile.TemporaryDirectory() as tmp:
                results = measure(f"sqlite:///{tmp}/bench.db", backend, a.loans, a.repeat)
        else:
            results = measure(fresh_database(a.admin_url, DB), backend, a.loans, a.repeat)
        out += table(backend, results)
    end_load = os.getloadavg()
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=ROOT
    ).stdout.strip()
    conditions = (
        f"Conditions: {os.cpu_count()} CPUs, Python {platform.python_version()}; commit "
        f"{commit}; {datetime.now(UTC):%Y-%m-%d %H:%M} UTC; load average "
        f"{start_load[0]:.2f} {start_load[1]:.2f} {start_load[2]:.2f} at the start, "
        f"{end_load[0]:.2f} {end_load[1]:.2f} {end_load[2]:.2f} at the end; "
        f"{a.loans} filings per request, {a.repeat} runs per shape, interleaved."
    )
    command = (
        "Command: `.venv/bin/python bench/batch_journal_bench.py "
        + " ".join(sys.argv[1:]).replace("--append", "").strip()
        + "`"
    )
    text_out = "\n".join([conditions, "", command, "", *out]) + "\n"
    print(text_out)
    if a.append:
        with open(ROOT / "bench" / "RESULTS.md", "a", encoding="utf-8") as f:
            when = f"{datetime.now(UTC):%Y-%m-%d %H:%M}"
            f.write(f"\n### One entry per batch against one per loan — {when} UTC\n\n")
            f.write(text_out)


if __name__ == "__main__":
    main()
