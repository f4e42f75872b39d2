"""Ledger write throughput on PostgreSQL: the service's writer against raw SQL through
the driver doing the same statements, measured side by side in one run.

    .venv/bin/python bench/ledger_bench.py [--admin-url URL] [--repeat 3]

Scenarios (3-leg entries: Dr cash, Cr capital, Cr recovery income, one fund book):
  single   one entry per transaction, `ledger.service.post` (ORM session)
  single2  the same from 2 processes at once (this machine has 2 cores)
  batch    1,000 entries per transaction, `ledger.service.post_many` (COPY)
  raw-*    the same SQL through psycopg 3 directly, per entry: look up the account ids,
           lock the chain head, check the key, insert legs then the entry, move the head,
           commit (hashes computed alike). raw-single sends one statement at a time;
           raw-single-pipe pipelines them as the service does (two round trips).
Each scenario runs `--repeat` times, interleaved, into a fresh database; medians are
reported, with every run, and appended to bench/RESULTS.md with the conditions."""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from datetime import UTC, date, datetime
from pathlib import Path

import psycopg
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from app.cli import migrate  # noqa: E402
from app.db import make_engine, normalize_url  # noqa: E402
from app.ledger import service as ledger  # noqa: E402
from app.ledger.postings import credit, debit, entry_hash  # noqa: E402
from app.seed.loader import seed_demo  # noqa: E402

FUND = "SKD_CITY_320100"
DB = "ledger_bench"
NOW = datetime(2026, 3, 31, tzinfo=UTC)
DAY = date(2026, 3, 31)


def legs(i: int) -> list:  # type: ignore[type-arg]
    amount = 300 + i % 97
    return [
        debit(FUND, "cash", amount),
        credit(FUND, "contributed_capital", 100, "NJ_FINANCE"),
        credit(FUND, "recovery_income", amount - 100, "JSB"),
    ]


def fresh_database(admin_url: str) -> str:
    eng = create_engine(normalize_url(admin_url), isolation_level="AUTOCOMMIT")
    with eng.connect() as conn:
        conn.execute(text(f"DROP DATABASE IF EXISTS {DB} WITH (FORCE)"))
        conn.execute(text(f"CREATE DATABASE {DB}"))
    eng.dispose()
    url = make_url(normalize_url(admin_url)).set(database=DB).render_as_string(hide_password=False)
    migrate(url)
    engine = make_engine(url)
    with Session(engine) as s, s.begin():
        seed_demo(s)
        ledger.post(
            s,
            event_type="bench",
            event_id="open",
            idempotency_key="bench-open",
            business_date=DAY,
            legs=legs(0),
            now=NOW,
        )
    engine.dispose()
    return url


# --- the service -----------------------------------------------------------------------
def service_single(url: str, n: int, tag: str) -> None:
    engine = make_engine(url, pool_size=2)
    for i in range(n):
        with Session(engine) as s, s.begin():
            ledger.post(
                s,
                event_type="bench",
                event_id=str(i),
                idempotency_key=f"{tag}-{i}",
                business_date=DAY,
                legs=legs(i),
                now=NOW,
            )
    engine.dispose()


def service_batch(url: str, n: int, tag: str, size: int = 1000) -> None:
    engine = make_engine(url, pool_size=2)
    for start in range(0, n, size):
        specs = [
            ledger.EntrySpec("bench", str(i), f"{tag}-{i}", DAY, legs(i))
            for i in range(start, min(n, start + size))
        ]
        with Session(engine) as s, s.begin():
            ledger.post_many(s, specs, now=NOW)
    engine.dispose()


# --- raw psycopg, the same statements ---------------------------------------------------
def _raw_rows(i: int, tag: str, last_id: int, last_hash: str, acc: dict[str, int]):  # type: ignore[no-untyped-def]
    entry_id = last_id + 1
    lg = legs(i)
    digest = entry_hash(
        prev_hash=last_hash,
        seq=entry_id,
        event_type="bench",
        event_id=str(i),
        idempotency_key=f"{tag}-{i}",
        business_date=DAY,
        recorded_at=NOW,
        description="",
        reverses_entry_id=None,
        legs=[(g.account_code, g.amount_fen) for g in lg],
    )
    entry = (entry_id, "bench", str(i), f"{tag}-{i}", DAY, NOW, "", None, None, last_hash, digest)
    leg_rows = [(entry_id, k, acc[g.account_code], FUND, g.amount_fen) for k, g in enumerate(lg)]
    return entry, leg_rows, entry_id, digest


ENTRY_SQL = (
    "INSERT INTO ledger_entries (id, event_type, event_id, idempotency_key, business_date,"
    " recorded_at, description, reverses_entry_id, actor_id, prev_hash, hash)"
    " VALUES (%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s)"
)


ACCOUNTS_SQL = "SELECT code, id FROM ledger_accounts WHERE code = ANY(%s)"


def raw_single(url: str, n: int, tag: str) -> None:
    with psycopg.connect(url.replace("+psycopg", "")) as conn:
        for i in range(n):
            with conn.transaction():
                codes = [g.account_code for g in legs(i)]
                acc = dict(conn.execute(ACCOUNTS_SQL, (codes,)).fetchall())
                last_id, last_hash = conn.execute(
                    "SELECT last_seq, last_hash FROM ledger_chain_head WHERE id = 1 FOR UPDATE"
                ).fetchone()  # type: ignore[misc]
                conn.execute(
                    "SELECT id FROM ledger_entries WHERE idempotency_key = %s", (f"{tag}-{i}",)
                ).fetchone()
                entry, leg_rows, last_id, last_hash = _raw_rows(i, tag, last_id, last_hash, acc)
                conn.execute(
                    "INSERT INTO ledger_legs (entry_id, position, account_id, fund_code,"
                    " amount_fen) VALUES (%s,%s,%s,%s,%s),(%s,%s,%s,%s,%s),(%s,%s,%s,%s,%s)",
                    [v for row in leg_rows for v in row],
                )
                conn.execute(ENTRY_SQL, entry)
                conn.execute(
                    "UPDATE ledger_chain_head SET last_seq = %s, last_hash = %s WHERE id = 1",
                    (last_id, last_hash),
                )


def raw_single_pipelined(url: str, n: int, tag: str) -> None:
    """The same statements in the same two pipelines the service sends."""
    with psycopg.connect(url.replace("+psycopg", "")) as conn:
        for i in range(n):
            with conn.transaction():
                codes = [g.account_code for g in legs(i)]
                with conn.pipeline():
                    accounts = conn.execute(ACCOUNTS_SQL, (codes,))
                    head = conn.execute(
                        "SELECT last_seq, last_hash FROM ledger_chain_head WHERE id = 1 FOR UPDATE"
                    )
                    conn.execute(
                        "SELECT id FROM ledger_entries WHERE idempotency_key = ANY(%s)",
                        ([f"{tag}-{i}"],),
                    )
                acc = dict(accounts.fetchall())
                last_id, last_hash = head.fetchone()  # type: ignore[misc]
                entry, leg_rows, last_id, last_hash = _raw_rows(i, tag, last_id, last_hash, acc)
                with conn.pipeline(), conn.cursor() as cur:
                    cur.executemany(
                        "INSERT INTO ledger_legs (entry_id, position, account_id,"
                        " fund_code, amount_fen) VALUES (%s,%s,%s,%s,%s)",
                        leg_rows,
                    )
                    cur.execute(ENTRY_SQL, entry)
                    cur.execute(
                        "UPDATE ledger_chain_head SET last_seq = %s, last_hash = %s WHERE id = 1",
                        (last_id, last_hash),
                    )


def raw_batch(url: str, n: int, tag: str, size: int = 1000) -> None:
    with psycopg.connect(url.replace("+psycopg", "")) as conn:
        for start in range(0, n, size):
            with conn.transaction(), conn.cursor() as cur:
                codes = sorted(
                    {g.account_code for i in range(start, start + size) for g in legs(i)}
                )
                acc = dict(cur.execute(ACCOUNTS_SQL, (codes,)).fetchall())
                last_id, last_hash = cur.execute(
                    "SELECT last_seq, last_hash FROM ledger_chain_head WHERE id = 1 FOR UPDATE"
                ).fetchone()  # type: ignore[misc]
                keys = [f"{tag}-{i}" for i in range(start, min(n, start + size))]
                cur.execute(
                    "SELECT id FROM ledger_entries WHERE idempotency_key = ANY(%s)", (keys,)
                )
                entries, all_legs = [], []
                for i in range(start, min(n, start + size)):
                    entry, leg_rows, last_id, last_hash = _raw_rows(i, tag, last_id, last_hash, acc)
                    entries.append(entry)
                    all_legs += leg_rows
                with cur.copy(
                    "COPY ledger_legs (entry_id, position, account_id, fund_code, amount_fen)"
                    " FROM STDIN"
                ) as cp:
                    for row in all_legs:
                        cp.write_row(row)
                with cur.copy(
                    "COPY ledger_entries (id, event_type, event_id, idempotency_key,"
                    " business_date, recorded_at, description, reverses_entry_id,"
                    " actor_id, prev_hash, hash) FROM STDIN"
                ) as cp:
                    for row in entries:
                        cp.write_row(row)
                cur.execute(
                    "UPDATE ledger_chain_head SET last_seq = %s, last_hash = %s WHERE id = 1",
                    (last_id, last_hash),
                )


def parallel(
    fn: Callable[[str, int, str], None], url: str, n: int, tag: str, procs: int = 2
) -> None:
    ctx = mp.get_context("fork")
    workers = [ctx.Process(target=fn, args=(url, n // procs, f"{tag}-p{k}")) for k in range(procs)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
        if w.exitcode != 0:
            raise SystemExit(f"worker failed: {w.exitcode}")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument(
        "--admin-url",
        default=os.environ.get(
            "TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
        ),
    )
    ap.add_argument("--single", type=int, default=3000, help="entries per single-entry run")
    ap.add_argument("--batched", type=int, default=40000, help="entries per batched run")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--no-write", action="store_true", help="do not append to RESULTS.md")
    args = ap.parse_args()

    url = fresh_database(args.admin_url)
    scenarios: dict[str, tuple[Callable[[str, int, str], None], int]] = {
        "single": (service_single, args.single),
        "raw-single": (raw_single, args.single),
        "raw-single-pipe": (raw_single_pipelined, args.single),
        "single2": (lambda u, n, t: parallel(service_single, u, n, t), args.single),
        "raw-single2": (lambda u, n, t: parallel(raw_single, u, n, t), args.single),
        "batch": (service_batch, args.batched),
        "raw-batch": (raw_batch, args.batched),
    }
    rates: dict[str, list[float]] = {name: [] for name in scenarios}
    for r in range(args.repeat):
        for name, (fn, n) in scenarios.items():
            started = time.perf_counter()
            fn(url, n, f"{name}-{r}")
            rates[name].append(n / (time.perf_counter() - started))
            print(f"run {r + 1} {name:12s} {rates[name][-1]:10.0f} entries/s", flush=True)

    with psycopg.connect(url.replace("+psycopg", "")) as conn:
        total = conn.execute("SELECT count(*) FROM ledger_entries").fetchone()[0]  # type: ignore[index]
        pg = conn.execute("SHOW server_version").fetchone()[0]  # type: ignore[index]
    engine = make_engine(url)
    with Session(engine) as s:
        report = ledger.verify(s)
    engine.dispose()
    med = {k: statistics.median(v) for k, v in rates.items()}
    lines = [
        f"\n### Ledger writes — {datetime.now(UTC):%Y-%m-%d %H:%M} UTC\n",
        f"Conditions: {os.cpu_count()} CPUs, Python {platform.python_version()}, PostgreSQL {pg} "
        "on loopback (default durability), client on the same cores; medians of "
        f"{args.repeat} interleaved runs; {total} entries in the journal at the end, "
        f"`verify` ok = {report.ok}.\n",
        f"Command: `.venv/bin/python bench/ledger_bench.py --single {args.single} "
        f"--batched {args.batched} --repeat {args.repeat}`\n",
        "| scenario | service entries/s | raw SQL entries/s | ratio | target |",
        "|---|---|---|---|---|",
        f"| one entry per transaction, 1 process | {med['single']:,.0f} | {med['raw-single']:,.0f} "
        f"| {med['single'] / med['raw-single']:.2f} | ≥ 1,500/s, ≥ 0.5 of raw |",
        f"| — against raw SQL pipelined like the service | {med['single']:,.0f} | "
        f"{med['raw-single-pipe']:,.0f} | {med['single'] / med['raw-single-pipe']:.2f} | |",
        f"| one entry per transaction, 2 processes | {med['single2']:,.0f} | "
        f"{med['raw-single2']:,.0f} | {med['single2'] / med['raw-single2']:.2f} | ≥ 1,500/s |",
        f"| 1,000 entries per transaction | {med['batch']:,.0f} | {med['raw-batch']:,.0f} "
        f"| {med['batch'] / med['raw-batch']:.2f} | ≥ 20,000/s, ≥ 0.5 of raw |",
        "",
        "Every run (entries/s): "
        + "; ".join(f"{k} " + ", ".join(f"{v:,.0f}" for v in vs) for k, vs in rates.items())
        + "\n",
    ]
    print("\n".join(lines))
    if not args.no_write:
        with (ROOT / "bench" / "RESULTS.md").open("a", encoding="utf-8") as fh:
            fh.write("\n".join(lines) + "\n")
    eng = create_engine(normalize_url(args.admin_url), isolation_level="AUTOCOMMIT")
    with eng.connect() as conn:
        conn.execute(text(f"DROP DATABASE IF EXISTS {DB} WITH (FORCE)"))
    eng.dispose()


if __name__ == "__main__":
    main()
