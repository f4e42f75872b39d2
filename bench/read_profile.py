"""Where a read's time goes inside the app, without the HTTP server (#16 part 2).

    .venv/bin/python bench/read_profile.py [--requests 2000] [--inline] [SCENARIO ...]
    .venv/bin/py-spy record -r 400 -f raw -o bench/logs/read-me.txt -- \\
        .venv/bin/python bench/read_profile.py --inline me

Seeds the demo into a fresh SQLite file (`ledger migrate`, `ledger seed-demo`), builds the
app in this process (`create_app`) and sends each scenario's GET through httpx's ASGI
transport, one at a time: it prints the p50 and the minimum per scenario and the last
answer's `Server-Timing`. `--inline` runs what the app sends to worker threads in the
event loop's thread instead, so that a sampling profiler of one thread sees all of a
request (the trips themselves are then not measured: compare with and without). The
measured requests run inside `measured()`: keep the stacks through it to leave out the
set-up. Scenarios: me, loan, claim, exposure (SKD), exposure_xb, ledger, loans, claims,
capital, health."""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))


async def measured(client: Any, path: str, headers: dict[str, str], n: int) -> list[float]:
    out = []
    for _ in range(n):
        t = time.perf_counter()
        r = await client.get(path, headers=headers)
        out.append((time.perf_counter() - t) * 1000)
        assert r.status_code == 200, (path, r.status_code, r.text[:300])
    return out


async def main(a: argparse.Namespace, url: str) -> None:
    os.environ.update(
        DATABASE_URL=url,
        APP_ENV="demo",
        APP_TODAY=datetime.now(ZoneInfo("Asia/Shanghai")).date().isoformat(),
        SERVER_TIMING="true",
        LOG_LEVEL="WARNING",
        BATCH_JOB_WORKER="false",
    )
    import anyio.to_thread
    import httpx

    if a.inline:

        async def inline(func: Any, *args: Any, **_: Any) -> Any:
            return func(*args)

        anyio.to_thread.run_sync = inline  # type: ignore[assignment]

    from app.main import create_app
    from app.seed.loader import DEMO_PASSWORD

    app = create_app()
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://app") as c:
        auth = {}
        for user in ("regulator", "bank_jsb", "fund_nanjing"):
            r = await c.post(
                "/api/v1/auth/token", data={"username": user, "password": DEMO_PASSWORD}
            )
            auth[user] = {"Authorization": f"Bearer {r.json()['access_token']}"}
        loans = await c.get("/api/v1/loans?status=active&limit=1", headers=auth["bank_jsb"])
        claims = await c.get("/api/v1/claims?limit=1", headers=auth["regulator"])
        loan, claim = loans.json()["items"][0]["id"], claims.json()["items"][0]["id"]
        scenarios = {
            "me": ("regulator", "/api/v1/auth/me"),
            "loan": ("bank_jsb", f"/api/v1/loans/{loan}"),
            "claim": ("regulator", f"/api/v1/claims/{claim}"),
            "exposure": ("bank_jsb", "/api/v1/banks/JSB/exposure?program=SKD"),
            "exposure_xb": ("regulator", "/api/v1/banks/LYG_RCB/exposure?program=XB"),
            "ledger": ("regulator", "/api/v1/ledger/entries?limit=50"),
            "loans": ("bank_jsb", "/api/v1/loans?limit=50"),
            "claims": ("regulator", "/api/v1/claims?limit=50"),
            "capital": ("fund_nanjing", "/api/v1/funds/SKD_CITY_320100/capital"),
            "health": ("", "/healthz"),
        }
        for name in a.scenarios or list(scenarios):
            user, path = scenarios[name]
            headers = auth.get(user, {})
            await measured(c, path, headers, 10)  # warm-up
            ms = await measured(c, path, headers, a.requests)
            last = await c.get(path, headers=headers)
            print(
                f"{name:9s} p50 {statistics.median(ms):6.2f} ms  min {min(ms):6.2f}  "
                f"{last.headers.get('server-timing')}",
                flush=True,
            )


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("scenarios", nargs="*")
    p.add_argument("--requests", type=int, default=500)
    p.add_argument("--inline", action="store_true", help="no worker threads (for a profiler)")
    args = p.parse_args()
    from latency_bench import prepare

    with tempfile.TemporaryDirectory() as tmp:
        asyncio.run(main(args, prepare("sqlite", Path(tmp), "")))
