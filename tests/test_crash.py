"""A crash loses no acknowledged write and books nothing twice (L-2, L-4): capital
contributions posted in parallel with `Idempotency-Key`s to a live server, which is
killed with SIGKILL mid-stream and restarted on the same database. Every acknowledged
contribution is there (its retry replays the first answer), every unacknowledged one
retried is booked at most once, and the chain verifies. On SQLite (the demo's file) and
on PostgreSQL (a fresh database of the test's, when TEST_POSTGRES_URL is set).

Size: TEST_CRASH_CONTRIBUTIONS contributions (default 200, from 4 clients), killed after
a tenth of them is acknowledged; RELIABILITY.md gives the full-size command."""

from __future__ import annotations

import json
import os
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest

from tests.conftest import (
    drop_postgres_database,
    fresh_postgres_database,
    pg_database_name,
    postgres_unavailable,
)
from tests.fixtures.live_server import (
    ARTIFACTS,
    SeededData,
    live_server,
    seeded_data,
    seeded_postgres,
)

pytestmark = pytest.mark.xdist_group("live_server")
LOGS = ARTIFACTS / "crash"
FUND = "SKD_CITY_320100"
# The suite's own size variable (read here, explicitly; not a setting of the service)
CONTRIBUTIONS = int(os.environ.get("TEST_CRASH_CONTRIBUTIONS", "200"))
KILL_AFTER = max(CONTRIBUTIONS // 10, 1)
CLIENTS = 4


def _call(
    url: str, method: str = "GET", body: Any = None, headers: dict[str, str] | None = None
) -> tuple[int, dict[str, str], Any]:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method, headers=headers or {})
    if data is not None:
        request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=30) as r:
            raw = r.read()
            headers = {k.lower(): v for k, v in r.headers.items()}
            return r.status, headers, json.loads(raw) if raw else None
    except urllib.error.HTTPError as e:
        return e.code, {k.lower(): v for k, v in e.headers.items()}, json.loads(e.read() or b"null")


def _paid_in(base: str, headers: dict[str, str], contributor: str) -> Decimal:
    code, _, capital = _call(f"{base}/api/v1/funds/{FUND}/capital", headers=headers)
    assert code == 200, capital
    (row,) = [c for c in capital["contributors"] if c["contributor"] == contributor]
    return Decimal(row["paid_in"])


def _token(base: str, username: str, password: str) -> dict[str, str]:
    form = urllib.parse.urlencode({"username": username, "password": password}).encode()
    with urllib.request.urlopen(f"{base}/api/v1/auth/token", data=form, timeout=30) as r:
        return {"Authorization": f"Bearer {json.loads(r.read())['access_token']}"}


@pytest.fixture
def data(backend: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[SeededData]:
    """The demo, as `make run` seeds it: a SQLite file, or a fresh PostgreSQL database."""
    if backend == "sqlite":
        yield seeded_data(tmp_path_factory)
        return
    reason = postgres_unavailable()
    if reason:
        pytest.skip(reason)
    name = pg_database_name("crash")
    url = fresh_postgres_database(name)
    try:
        yield seeded_postgres(tmp_path_factory, url)
    finally:
        drop_postgres_database(name)


def test_sigkill_mid_stream_loses_no_acknowledged_write(
    backend: str, data: SeededData, tmp_path_factory: pytest.TempPathFactory
) -> None:
    workdir = tmp_path_factory.mktemp("crash-server")
    acked: dict[str, dict[str, Any]] = {}
    sent: dict[str, dict[str, Any]] = {}
    lock = threading.Lock()
    with live_server(data, workdir, LOGS / f"{backend}-before.log") as srv:
        admin = _token(srv.url, "admin", srv.password)
        status, _, page = _call(f"{srv.url}/api/v1/funds/{FUND}/contributors", headers=admin)
        assert status == 200, page
        contributor = page["items"][0]["code"]
        day = data.today.isoformat()
        paid_before = _paid_in(srv.url, admin, contributor)

        def post(n: int) -> None:
            key = f"crash-{n}"
            body = {"contributor": contributor, "amount": f"{100 + n}.00", "paid_on": day}
            with lock:
                sent[key] = body
            headers = {**admin, "Idempotency-Key": key}
            try:
                code, _, answer = _call(
                    f"{srv.url}/api/v1/funds/{FUND}/contributions", "POST", body, headers
                )
            except (urllib.error.URLError, ConnectionError, TimeoutError, OSError):
                return  # the server died under this request: not acknowledged
            if code == 201:
                with lock:
                    acked[key] = answer

        def stream(start: int) -> None:
            for n in range(start, CONTRIBUTIONS, CLIENTS):
                post(n)

        threads = [threading.Thread(target=stream, args=(i,)) for i in range(CLIENTS)]
        for t in threads:
            t.start()
        deadline = time.monotonic() + 60 + CONTRIBUTIONS / 10
        while len(acked) < KILL_AFTER and time.monotonic() < deadline:
            time.sleep(0.01)
        with lock:
            in_flight = len(sent) - len(acked)  # sent, not answered, when it dies
        srv.process.kill()  # SIGKILL: no shutdown, no flush but the database's own
        srv.process.wait(timeout=10)
        for t in threads:
            t.join(timeout=60)
    assert len(acked) >= KILL_AFTER, f"only {len(acked)} acknowledged before the kill"
    replayed_unacked = 0

    with live_server(data, workdir, LOGS / f"{backend}-after.log", reuse=True) as srv:
        admin = _token(srv.url, "admin", srv.password)
        for key, body in sorted(sent.items()):
            headers = {**admin, "Idempotency-Key": key}
            code, got_headers, answer = _call(
                f"{srv.url}/api/v1/funds/{FUND}/contributions", "POST", body, headers
            )
            assert code == 201, (key, code, answer)
            if key in acked:  # acknowledged: it survived, and the retry is its replay
                assert got_headers.get("idempotent-replayed") == "true", key
                assert answer == acked[key], key
            elif got_headers.get("idempotent-replayed") == "true":
                replayed_unacked += 1  # committed, but its answer died with the server
        regulator = _token(srv.url, "regulator", srv.password)
        code, _, report = _call(f"{srv.url}/api/v1/ledger/verify", headers=regulator)
        assert code == 200 and report["ok"], report
        # each contribution sent is booked exactly once: none lost, none twice
        expected = paid_before + sum(Decimal(b["amount"]) for b in sent.values())
        assert _paid_in(srv.url, admin, contributor) == expected
    print(
        f"crash ({backend}): {len(acked)} acknowledged and {in_flight} in flight at the "
        f"kill, {len(sent)} sent in all; {replayed_unacked} unacknowledged found committed"
    )
