"""PostgreSQL with real parallel connections: 50 posters on the same accounts lose no
leg, never expose a half-written entry, and keep one gapless hash chain (L-1, L-2)."""

from __future__ import annotations

import threading
from datetime import date

import pytest
from sqlalchemy import Engine, func, select, text
from sqlalchemy.orm import Session

from app.ledger import service as ledger
from app.ledger.postings import credit, debit
from app.models import LedgerLeg
from tests.fixtures.ledger import NOW

CITY = "SKD_CITY_320100"
POSTERS, PER_POSTER = 50, 20
HALF_WRITTEN = text("""
    SELECT e.id FROM ledger_entries e LEFT JOIN ledger_legs l ON l.entry_id = e.id
    GROUP BY e.id HAVING count(l.entry_id) < 2 OR coalesce(sum(l.amount_fen), 0) <> 0
    UNION ALL
    SELECT l.entry_id FROM ledger_legs l GROUP BY l.entry_id, l.fund_code
    HAVING sum(l.amount_fen) <> 0
""")


def _balance(engine: Engine, code: str) -> int:
    with Session(engine) as s:
        return ledger.account_balance(s, code, as_of=None)


@pytest.mark.xdist_group("pg-concurrency")
def test_50_parallel_posters_lose_nothing_and_expose_no_half_entry(pg_engine: Engine) -> None:
    with Session(pg_engine) as s:
        legs_before = int(s.scalar(select(func.count()).select_from(LedgerLeg)) or 0)
    cash_before = _balance(pg_engine, f"{CITY}:cash")
    errors: list[BaseException] = []
    half_seen: list[list[int]] = []
    barrier = threading.Barrier(POSTERS + 1)
    done = threading.Event()

    def poster(n: int) -> None:
        try:
            barrier.wait()
            for i in range(PER_POSTER):
                with Session(pg_engine) as s, s.begin():
                    ledger.post(
                        s,
                        event_type="conc",
                        event_id=f"{n}-{i}",
                        idempotency_key=f"conc-{n}-{i}",
                        business_date=date(2026, 3, 1),
                        now=NOW,
                        legs=[
                            debit(CITY, "cash", 300),
                            credit(CITY, "contributed_capital", 100, "FINANCE_320100"),
                            credit(CITY, "recovery_income", 200, "JSB"),
                        ],
                    )
        except BaseException as exc:
            errors.append(exc)

    reads = 0

    def reader() -> None:
        nonlocal reads
        try:
            barrier.wait()
            while not done.is_set():
                with pg_engine.connect() as conn:
                    rows = conn.execute(HALF_WRITTEN).scalars().all()
                reads += 1
                if rows:
                    half_seen.append(list(rows))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=poster, args=(n,)) for n in range(POSTERS)]
    watch = threading.Thread(target=reader)
    for t in [*threads, watch]:
        t.start()
    for t in threads:
        t.join()
    done.set()
    watch.join()

    assert errors == []
    assert reads >= 5, "the reader must have looked while the posters wrote"
    assert half_seen == []
    total = POSTERS * PER_POSTER
    with Session(pg_engine) as s:
        assert s.scalar(select(func.count()).select_from(LedgerLeg)) == legs_before + 3 * total
        report = ledger.verify(s)
    assert report.ok, report.first_break
    assert _balance(pg_engine, f"{CITY}:cash") == cash_before + 300 * total
    assert _balance(pg_engine, f"{CITY}:recovery_income:JSB") == -200 * total


@pytest.mark.xdist_group("pg-concurrency")
def test_parallel_reposts_of_one_key_make_one_entry(pg_engine: Engine) -> None:
    results: list[int] = []
    errors: list[BaseException] = []
    barrier = threading.Barrier(20)
    lock = threading.Lock()

    def fire() -> None:
        try:
            barrier.wait()
            with Session(pg_engine) as s, s.begin():
                e = ledger.post(
                    s,
                    event_type="dup",
                    event_id="1",
                    idempotency_key="dup-key",
                    business_date=date(2026, 3, 1),
                    now=NOW,
                    legs=[
                        debit(CITY, "cash", 5),
                        credit(CITY, "contributed_capital", 5, "FINANCE_320100"),
                    ],
                )
                with lock:
                    results.append(e.id)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=fire) for _ in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == [] and len(results) == 20 and len(set(results)) == 1
