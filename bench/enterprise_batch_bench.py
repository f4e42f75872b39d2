"""POST /enterprises/batch with 10,000 new enterprises, end to end through the app (JSON
body, validation, lookups, insert, commit, response), on SQLite and PostgreSQL.

    .venv/bin/python bench/enterprise_batch_bench.py [--items 10000] [--repeat 3]
        [--postgres-url URL]   # default TEST_POSTGRES_URL or the local server

Each run uses a fresh migrated database with the demo data. Reported per backend: the
median wall time of the new batch (all `created`), of the same body sent again (all
`unchanged`), and the number of SQL statements the new batch issued through SQLAlchemy
(on PostgreSQL the id draw and the COPY go straight to the driver: two more)."""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import create_engine, event, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from app.auth.tokens import issue_token  # noqa: E402
from app.cli import migrate  # noqa: E402
from app.config import Settings  # noqa: E402
from app.db import make_engine, normalize_url  # noqa: E402
from app.main import create_app  # noqa: E402
from app.models import User  # noqa: E402
from app.seed.loader import demo_credit_code, seed_demo  # noqa: E402

REGIONS = ["320706", "320703", "320700-KFQ", "320100", "320500"]


def items(n: int) -> list[dict[str, Any]]:
    return [
        {
            "credit_code": demo_credit_code(REGIONS[i % 5][:6], f"MA1B{i:05d}"),
            "name": f"批量基准{i}号有限公司",
            "region_code": REGIONS[i % 5],
            "registered_on": "2019-03-01",
            "prior_year_revenue": f"{8_000_000 + i}.{i % 100:02d}",
            "employees": 10 + i % 500,
            "rd_staff_share_bp": i % 3000,
            "tax_credit_rating": "AB"[i % 2],
        }
        for i in range(n)
    ]


def run_once(url: str, body: dict[str, Any]) -> tuple[float, float, int]:
    migrate(url)
    engine = make_engine(url)
    with Session(engine) as s, s.begin():
        seed_demo(s)
    with Session(engine) as s:
        admin = s.scalars(select(User).where(User.username == "admin")).one()
        admin_id = admin.id
    settings = Settings(database_url=url, app_env="demo")
    token = issue_token(settings, user_id=admin_id, role="admin", scope={}, now=datetime.now(UTC))
    headers = {"Authorization": f"Bearer {token}"}
    statements = 0

    def count(*_: Any) -> None:
        nonlocal statements
        statements += 1

    with TestClient(create_app(settings, engine=engine)) as client:
        client.get("/api/v1/regions", headers=headers)  # warm up the app
        event.listen(engine, "before_cursor_execute", count)
        t0 = time.perf_counter()
        r = client.post("/api/v1/enterprises/batch", headers=headers, json=body)
        new = time.perf_counter() - t0
        event.remove(engine, "before_cursor_execute", count)
        assert r.status_code == 200 and r.json()["created"] == len(body["items"]), r.text[:500]
        t0 = time.perf_counter()
        r = client.post("/api/v1/enterprises/batch", headers=headers, json=body)
        again = time.perf_counter() - t0
        assert r.json()["unchanged"] == len(body["items"]), r.text[:500]
    engine.dispose()
    return new, again, statements


def postgres_database(admin_url: str, name: str, *, drop_only: bool = False) -> str:
    eng = create_engine(normalize_url(admin_url), isolation_level="AUTOCOMMIT")
    with eng.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        if not drop_only:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    eng.dispose()
    return make_url(normalize_url(admin_url)).set(database=name).render_as_string(False)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--items", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument(
        "--postgres-url",
        default=os.environ.get(
            "TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
        ),
    )
    args = parser.parse_args()
    body = {"items": items(args.items)}
    print(
        f"{args.items} enterprises, body {len(str(body)) // 1024} KiB; "
        f"{platform.python_version()}, {os.cpu_count()} CPUs"
    )
    for backend in ("sqlite", "postgresql"):
        runs = []
        for n in range(args.repeat):
            if backend == "sqlite":
                with tempfile.TemporaryDirectory() as tmp:
                    runs.append(run_once(f"sqlite:///{tmp}/bench.db", body))
            else:
                name = f"ledger_enterprise_bench_{os.getpid()}_{n}"
                try:
                    runs.append(run_once(postgres_database(args.postgres_url, name), body))
                finally:
                    postgres_database(args.postgres_url, name, drop_only=True)
        new = statistics.median(r[0] for r in runs)
        again = statistics.median(r[1] for r in runs)
        print(
            f"{backend:<10} new: median {new:.2f} s ({', '.join(f'{r[0]:.2f}' for r in runs)}); "
            f"re-sent (unchanged): median {again:.2f} s; SQL statements for the new batch: "
            f"{runs[0][2]}"
        )


if __name__ == "__main__":
    main()
