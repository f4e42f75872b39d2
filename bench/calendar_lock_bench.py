"""What the working calendar's shared lock (M-3) costs a write request: sequential SKD
filings through the whole HTTP stack (in-process client) on PostgreSQL, with the lock and
without it, in interleaved blocks on the same database.

    .venv/bin/python bench/calendar_lock_bench.py [--url postgresql://…/postgres]
        [--blocks 10] [--per-block 120]

Creates and drops its own database `ledger_calendar_lock` on that server."""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from datetime import UTC, date, datetime
from pathlib import Path

from fastapi.testclient import TestClient
from sqlalchemy import create_engine, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from app.auth.principal import Principal
from app.auth.tokens import issue_token
from app.cli import migrate
from app.config import Settings
from app.db import make_engine, normalize_url
from app.kit import uow
from app.kit.clock import Clock
from app.library import service as library
from app.main import create_app
from app.models import Enterprise, User
from app.seed.loader import demo_credit_code, seed_demo

DB = "ledger_calendar_lock"
TODAY = date(2026, 3, 31)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--url", default="postgresql://postgres@127.0.0.1:5432/postgres")
    p.add_argument("--blocks", type=int, default=10)
    p.add_argument("--per-block", type=int, default=120)
    args = p.parse_args()
    admin = create_engine(normalize_url(args.url), isolation_level="AUTOCOMMIT")
    with admin.connect() as c:
        c.execute(text(f'DROP DATABASE IF EXISTS "{DB}" WITH (FORCE)'))
        c.execute(text(f'CREATE DATABASE "{DB}"'))
    url = make_url(normalize_url(args.url)).set(database=DB).render_as_string(False)
    try:
        run(url, args.blocks, args.per_block)
    finally:
        with admin.connect() as c:
            c.execute(text(f'DROP DATABASE IF EXISTS "{DB}" WITH (FORCE)'))


def run(url: str, blocks: int, per_block: int) -> None:
    migrate(url)
    engine = make_engine(url)
    with Session(engine) as s, s.begin():
        seed_demo(s)
    codes = _members(engine, blocks * per_block)
    settings = Settings(database_url=url, app_env="demo", log_json=False, _env_file=None)
    with Session(engine) as s:
        bank = s.scalars(select(User).where(User.username == "bank_jsb")).one()
        token = issue_token(
            settings,
            user_id=bank.id,
            role="bank",
            scope={"bank_code": bank.bank_code},
            now=datetime.now(UTC),
        )
    headers = {"Authorization": f"Bearer {token}"}
    times: dict[bool, list[float]] = {True: [], False: []}
    app = create_app(settings, engine=engine, clock=Clock(TODAY))
    n = 0
    with TestClient(app) as client:
        for block in range(blocks):
            locked = block % 2 == 0
            uow.TransactionalRoute.share_calendar = locked
            start = time.perf_counter()
            for _ in range(per_block):
                body = {
                    "program": "SKD",
                    "enterprise_credit_code": codes[n],
                    "contract_no": f"BENCH-CAL-{n}",
                    "principal": "100000.00",
                    "annual_rate_bp": 340,
                    "disbursed_on": "2026-03-30",
                    "maturity_on": "2027-03-30",
                    "security": "credit",
                    "controller_guarantee": True,
                }
                n += 1
                r = client.post("/api/v1/loans", json=body, headers=headers)
                assert r.status_code == 201, r.text
            times[locked].append((time.perf_counter() - start) / per_block * 1000)
    uow.TransactionalRoute.share_calendar = True
    for locked in (True, False):
        ms = times[locked]
        print(
            f"{'with the lock' if locked else 'without it':>14}: blocks "
            f"{[round(x, 2) for x in ms]} ms/filing, median {statistics.median(ms):.2f}"
        )
    ratio = statistics.median(times[True]) / statistics.median(times[False])
    print(f"ratio with/without: {ratio:.3f}")
    engine.dispose()


def _members(engine, count: int) -> list[str]:  # type: ignore[no-untyped-def]
    """`count` enterprises in 南京 admitted to the SKD library by its city reviewer."""
    with Session(engine) as s, s.begin():
        reviewer = s.scalars(select(User).where(User.username == "city_nanjing")).one()
        actor = Principal(
            user_id=reviewer.id,
            username=reviewer.username,
            role="city_reviewer",
            region_code=reviewer.region_code,
        )
        codes = []
        for i in range(count):
            code = demo_credit_code("320100", f"MB{i:07d}")
            s.add(
                Enterprise(
                    credit_code=code,
                    name=f"基准测试企业{i}",
                    region_code="320100",
                    registered_on=date(2019, 1, 1),
                    prior_year_revenue_fen=18_000_000_00,
                    employees=80,
                    rd_staff_share_bp=2000,
                    rd_spend_share_bp=600,
                    ip_count=5,
                )
            )
            s.flush()
            library.admit(s, credit_code=code, comment="bench", actor=actor, today=TODAY)
            codes.append(code)
    return codes


if __name__ == "__main__":
    main()
