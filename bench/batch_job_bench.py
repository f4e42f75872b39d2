"""POST /loans/batch with 10,000 filings on SQLite (#16 part 5), end to end through the
app: synchronously (one request) and as a job (`Prefer: respond-async`, from the 202
until the job has finished).

    .venv/bin/python bench/batch_job_bench.py [--items 10000] [--mode sync|job|both]
        [--mix mixed|skd|xb] [--profile cumulative|tottime] [--chunk N]

Each run builds a fresh migrated SQLite database in a temporary directory with the demo
data, then adds `--items` enterprises spread over Nanjing, Suzhou (江苏银行's SKD
agreements) and 连云区 (its XB agreement), admitted to the SKD library, and lifts the
SKD quota out of the way. The batch is filed by `bank_jsb` on 2026-03-31 (`APP_TODAY`),
loans disbursed on 2026-03-27; `--mix mixed` (default) makes every third item an XB
filing and one in twenty a refusal (rate above the cap), `skd` (`xb`) all valid SKD
(XB, 连云区) filings. Reported: the wall time of the request (sync) or from the 202 to
the job's end (job), items accepted and refused and the SQL statements issued.
`--profile` prints the top of a cProfile of the app's threads and the most frequent SQL
statements."""

from __future__ import annotations

import argparse
import cProfile
import os
import platform
import pstats
import sys
import tempfile
import threading
import time
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import event, insert, select, update
from sqlalchemy.orm import Session

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from app.auth.tokens import issue_token  # noqa: E402
from app.cli import migrate  # noqa: E402
from app.config import Settings  # noqa: E402
from app.db import make_engine  # noqa: E402
from app.kit.clock import Clock  # noqa: E402
from app.main import create_app  # noqa: E402
from app.models import Enterprise, LibraryEvent, ProgramQuota, User  # noqa: E402
from app.seed.loader import demo_credit_code, seed_demo  # noqa: E402

TODAY = date(2026, 3, 31)
CITIES = ["320100", "320500", "320703"]  # 连云区 (320703) for XB (XB-E1)
NOW = datetime(2026, 3, 31, 8, tzinfo=UTC)


def city(i: int, mix: str) -> str:
    return {"mixed": CITIES[i % 3], "xb": CITIES[2]}.get(mix, CITIES[i % 2])


def code(i: int, mix: str) -> str:
    return demo_credit_code(city(i, mix), f"BJ{i:07d}")


def setup(url: str, n: int, mix: str) -> int:
    """The demo plus `n` library enterprises; returns bank_jsb's user id."""
    migrate(url)
    engine = make_engine(url)
    with Session(engine) as s, s.begin():
        seed_demo(s)
        admin = s.scalars(select(User).where(User.username == "admin")).one()
        s.execute(
            insert(Enterprise),
            [
                {
                    "credit_code": code(i, mix),
                    "name": f"批量备案基准{i}号科技有限公司",
                    "region_code": city(i, mix),
                    "registered_on": date(2018, 1, 1),
                    "prior_year_revenue_fen": 15_000_000_00,
                    "employees": 60,
                    "rd_staff_share_bp": 2000,
                    "rd_spend_share_bp": 600,
                    "ip_count": 3,
                    "created_at": NOW,
                    "updated_at": NOW,
                }
                for i in range(n)
            ],
        )
        ids = s.scalars(
            select(Enterprise.id).where(
                Enterprise.credit_code.in_([code(i, mix) for i in range(n)])
            )
        ).all()
        s.execute(
            insert(LibraryEvent),
            [
                {
                    "enterprise_id": eid,
                    "program": "SKD",
                    "action": "admitted",
                    "effective_on": date(2025, 2, 1),
                    "comment": "bench",
                    "criteria": [],
                    "actor_id": admin.id,
                    "at": NOW,
                }
                for eid in ids
            ],
        )
        s.execute(update(ProgramQuota).values(amount_fen=10**15))  # SKD-F6 is not measured
        user_id = s.scalars(select(User.id).where(User.username == "bank_jsb")).one()
    engine.dispose()
    return user_id


def filing(i: int, run: str, mix: str) -> dict[str, Any]:
    """An SKD filing; with `mix` "xb" an XB one (连云区); with "mixed", every third an
    XB filing and one in twenty refused (rate above the cap: SKD-P1 / XB-P1, kept as a
    refusal record)."""
    xb = mix == "xb" or (mix == "mixed" and i % 3 == 2)
    refused = mix == "mixed" and i % 20 == 7
    return {
        "program": "XB" if xb else "SKD",
        "enterprise_credit_code": code(i, mix),
        "contract_no": f"{run}-{i:05d}",
        "principal": "1000000.00",
        "annual_rate_bp": 900 if refused else 340,
        "disbursed_on": "2026-03-27",
        "maturity_on": "2027-03-27",
        "security": "credit",
        "controller_guarantee": True,
    }


def run(n: int, mode: str, mix: str, profile: str | None, chunk: int | None) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{tmp}/bench.db"
        t0 = time.perf_counter()
        user_id = setup(url, n, mix)
        print(f"  setup (migrate, demo, {n} enterprises): {time.perf_counter() - t0:.1f} s")
        extra: dict[str, Any] = {} if chunk is None else {"batch_job_chunk": chunk}
        settings = Settings(database_url=url, app_env="demo", app_today=TODAY, **extra)
        engine = make_engine(url)
        token = issue_token(
            settings,
            user_id=user_id,
            role="bank",
            scope={"bank_code": "JSB"},
            now=datetime.now(UTC),
        )
        headers = {"Authorization": f"Bearer {token}"}
        body = {"items": [filing(i, mode, mix) for i in range(n)]}
        statements = 0

        kinds: dict[str, int] = {}

        def count(_c: Any, _cur: Any, sql: str, *_: Any) -> None:
            nonlocal statements
            statements += 1
            head = " ".join(sql.split())[:70]
            kinds[head] = kinds.get(head, 0) + 1

        app = create_app(settings, engine=engine, clock=Clock(TODAY))
        profilers = _profile_threads() if profile else []
        with TestClient(app) as client:
            client.get("/api/v1/regions", headers=headers)  # warm up the app
            event.listen(engine, "before_cursor_execute", count)
            if mode == "sync":
                t0 = time.perf_counter()
                r = client.post("/api/v1/loans/batch", headers=headers, json=body)
                wall = time.perf_counter() - t0
                assert r.status_code == 200, r.text[:1000]
                out = r.json()
                refused = [x for x in out["results"] if x["status"] == "refused"][:3]
                print(
                    f"  sync: {wall:.1f} s for {n} items, accepted {out['accepted']}, "
                    f"refused {out['refused']} {refused}; {statements} SQL statements"
                )
            else:
                t0 = time.perf_counter()
                r = client.post(
                    "/api/v1/loans/batch",
                    headers={**headers, "Prefer": "respond-async"},
                    json=body,
                )
                assert r.status_code == 202, r.text[:1000]
                location = r.headers["location"]
                accepted_at = time.perf_counter() - t0
                while True:
                    job = client.get(location, headers=headers).json()
                    if job["status"] in ("succeeded", "failed"):
                        break
                    time.sleep(0.2)
                wall = time.perf_counter() - t0
                print(
                    f"  job: 202 after {accepted_at:.2f} s, {job['status']} after {wall:.1f} s "
                    f"for {n} items: accepted {job['accepted']}, refused {job['refused']}; "
                    f"{statements} SQL statements"
                )
            event.remove(engine, "before_cursor_execute", count)
        if profilers:
            threading.setprofile(None)  # type: ignore[arg-type]
            stats = pstats.Stats(profilers[0])
            for p in profilers[1:]:
                stats.add(p)
            stats.sort_stats(profile).print_stats(60)
        if profile:
            for head, k in sorted(kinds.items(), key=lambda x: -x[1])[:15]:
                print(f"  {k:>7}  {head}")
        engine.dispose()


def _profile_threads() -> list[cProfile.Profile]:
    """A cProfile in every thread started from now on (the app's event loop and its
    thread pool, where the request runs), for the bench to merge."""
    found: list[cProfile.Profile] = []

    def start(*_: Any) -> None:
        p = cProfile.Profile()
        found.append(p)
        p.enable()  # replaces this hook in the new thread

    threading.setprofile(start)
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--items", type=int, default=10_000)
    parser.add_argument("--mode", choices=["sync", "job", "both"], default="both")
    parser.add_argument(
        "--profile", choices=["cumulative", "tottime"], help="cProfile of every app thread"
    )
    parser.add_argument(
        "--mix",
        choices=["skd", "xb", "mixed"],
        default="mixed",
        help="all valid SKD (or XB) filings, or a third XB and one in twenty refused",
    )
    parser.add_argument("--chunk", type=int, help="items per job chunk (BATCH_JOB_CHUNK)")
    args = parser.parse_args()
    load = os.getloadavg()
    print(
        f"{args.items} filings ({args.mix}) on SQLite; Python {platform.python_version()}, "
        f"{os.cpu_count()} CPUs, load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}"
    )
    for mode in ("sync", "job") if args.mode == "both" else (args.mode,):
        run(args.items, mode, args.mix, args.profile, args.chunk)


if __name__ == "__main__":
    main()
