"""Graceful shutdown: a live server (uvicorn, as `make run` and the Dockerfile run it) sent
SIGTERM while real requests are in flight — enterprise batches of 6,000 rows, each one
transaction (L-4) — finishes every one of them with its normal answer, takes no new
request for good (one process refuses new connections within a tick of its event loop;
the Dockerfile's two workers, whose supervisor keeps the listening socket, reset them),
and exits soon after the last answer. A request still running when
`--timeout-graceful-shutdown` runs out is cut off with the process and writes nothing
(its transaction never commits). What was committed is read back from the database the
stopped server leaves behind."""

from __future__ import annotations

import http.client
import json
import signal
import sqlite3
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from tests.fixtures.live_server import ARTIFACTS, LiveServer, live_server, seeded_data
from tests.fixtures.seed import credit_code

pytestmark = pytest.mark.xdist_group("live_server")
LOGS = ARTIFACTS / "shutdown"
# the Dockerfile's and the Makefile's --timeout-graceful-shutdown
GRACE_SECONDS = 8
REGIONS = ["320100", "320500", "320706"]


def _token(base: str, username: str, password: str) -> dict[str, str]:
    form = urllib.parse.urlencode({"username": username, "password": password}).encode()
    with urllib.request.urlopen(f"{base}/api/v1/auth/token", data=form, timeout=30) as r:
        return {"Authorization": f"Bearer {json.loads(r.read())['access_token']}"}


def _batch(tag: str, rows: int) -> list[dict[str, Any]]:
    return [
        {
            "credit_code": credit_code(REGIONS[i % 3], f"MD{tag}{i:05d}"),
            "name": f"停机测试{tag}{i}号有限公司",
            "region_code": REGIONS[i % 3],
            "registered_on": "2019-03-01",
            "prior_year_revenue": f"{8_000_000 + i}.00",
            "employees": 10 + i % 500,
        }
        for i in range(rows)
    ]


@dataclass
class Sent:
    """One request and what became of it (times from time.monotonic())."""

    items: list[dict[str, Any]]
    sent: threading.Event = field(default_factory=threading.Event)
    ended: float = 0.0
    status: int | None = None
    answer: Any = None
    error: str | None = None


def _post(base: str, headers: dict[str, str], sent: Sent) -> None:
    """POST the batch; `sent.sent` is set once the whole body is on the wire."""
    where = urlsplit(base)
    assert where.hostname and where.port
    conn = http.client.HTTPConnection(where.hostname, where.port, timeout=120)
    body = json.dumps({"items": sent.items}).encode()
    try:
        conn.request(
            "POST",
            "/api/v1/enterprises/batch",
            body=body,
            headers={**headers, "Content-Type": "application/json"},
        )
        sent.sent.set()
        response = conn.getresponse()
        raw = response.read()
        sent.status = response.status
        sent.answer = json.loads(raw) if response.status == 200 else raw[:500]
    except (ConnectionError, TimeoutError, OSError, http.client.HTTPException) as e:
        sent.error = type(e).__name__
    finally:
        sent.sent.set()
        sent.ended = time.monotonic()
        conn.close()


def _start(srv: LiveServer, headers: dict[str, str], batches: list[Sent]) -> list[threading.Thread]:
    """Send the batches in parallel; return once every body is sent and the server has had
    a moment to read their headers (a request whose headers uvicorn has not read yet when
    the signal comes is closed unanswered)."""
    threads = [threading.Thread(target=_post, args=(srv.url, headers, s)) for s in batches]
    for t in threads:
        t.start()
    for s in batches:
        assert s.sent.wait(60), "a batch could not be sent"
    time.sleep(0.3)
    return threads


def _probe(srv: LiveServer) -> str:
    """A new client's GET /healthz: "answered", "refused" (no listener), or what else."""
    try:
        with urllib.request.urlopen(f"{srv.url}/healthz", timeout=5) as r:
            return "answered" if r.status == 200 else f"status {r.status}"
    except urllib.error.HTTPError as e:
        return f"status {e.code}"
    except urllib.error.URLError as e:
        if isinstance(e.reason, ConnectionRefusedError):
            return "refused"
        return "reset" if isinstance(e.reason, ConnectionResetError) else repr(e.reason)
    except ConnectionResetError:  # http.client.RemoteDisconnected too
        return "reset"
    except (ConnectionError, TimeoutError, OSError) as e:
        return type(e).__name__


def _stored(db: Path, codes: list[str]) -> int:
    """How many of the enterprises `codes` the (stopped) server's database holds."""
    with sqlite3.connect(db) as conn:
        marks = ", ".join("?" * len(codes))
        sql = f"SELECT count(*) FROM enterprises WHERE credit_code IN ({marks})"
        return int(conn.execute(sql, codes).fetchone()[0])


@pytest.mark.parametrize("workers", [1, 2])
def test_sigterm_lets_requests_in_flight_finish_and_refuses_new_ones(
    workers: int, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """`make run` (one process) and the Dockerfile (`--workers 2`: a supervisor that
    passes SIGTERM on to its workers)."""
    data = seeded_data(tmp_path_factory)
    workdir = tmp_path_factory.mktemp("shutdown-server")
    grace = ("--timeout-graceful-shutdown", str(GRACE_SECONDS))
    if workers > 1:
        grace += ("--workers", str(workers))
    batches = [Sent(_batch(f"A{n}", 6000)) for n in range(3)]
    with live_server(data, workdir, LOGS / f"drain-{workers}.log", uvicorn_args=grace) as srv:
        admin = _token(srv.url, "admin", srv.password)
        threads = _start(srv, admin, batches)
        signalled = time.monotonic()
        srv.process.send_signal(signal.SIGTERM)
        probes: list[tuple[float, str]] = []
        while any(t.is_alive() for t in threads):
            probes.append((time.monotonic() - signalled, _probe(srv)))
            time.sleep(0.05)
        code = srv.process.wait(timeout=GRACE_SECONDS + 10)
        exited = time.monotonic()
    in_flight = [s for s in batches if s.ended > signalled]
    last = max(s.ended for s in batches)
    refused = [at for at, outcome in probes if outcome == "refused"]
    closed = refused[0] if refused else float("inf")
    before = [outcome for at, outcome in probes if at < closed]
    answered = [at for at, outcome in probes if outcome == "answered"]
    print(
        f"shutdown ({workers} worker(s)): {len(in_flight)} of {len(batches)} batches in "
        f"flight at SIGTERM, the last answered {last - signalled:.2f} s after it; exit {code} "
        f"{exited - signalled:.2f} s after it; new clients: {len(probes)} probes, answered "
        f"until {max(answered, default=0):.2f} s, refused from {closed:.2f} s, "
        f"{sum(outcome == 'reset' for _, outcome in probes)} reset"
    )
    for s in batches:
        assert s.error is None and s.status == 200, (s.status, s.error, s.answer)
        assert s.answer["created"] == len(s.items) and s.answer["refused"] == 0, s.answer
    assert len(in_flight) >= 2, "the requests were answered before the signal"
    # A new client is answered, or its connection is reset before any answer (it may
    # retry; a POST with its Idempotency-Key), or refused; none hangs or sees a 5xx.
    assert {outcome for _, outcome in probes} <= {"answered", "refused", "reset"}
    if workers == 1:
        # one process closes its listener at the event loop's next turn: refused from then
        assert closed < 1.0, probes
        assert len(refused) == len(probes) - len(before), probes
    # uvicorn re-raises the SIGTERM it handled once it has shut down cleanly (exit status
    # 143 in a shell; as a container's PID 1 it exits 0); its supervisor exits 0
    assert code in (0, -signal.SIGTERM)
    assert exited - last < 3.0, "the process lingered after its last answer"

    # committed: every row of every batch, in the database the server left
    codes = [item["credit_code"] for s in batches for item in s.items]
    assert _stored(workdir / "ledger.db", codes) == len(codes)


def test_a_request_past_the_grace_is_cut_off_and_writes_nothing(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    """With a grace shorter than the work in flight — five batches of 10,000 rows, which
    SQLite writes one after the other — the process still exits in about the grace; a
    batch answered is stored whole, a batch cut off is rolled back whole (L-4)."""
    data = seeded_data(tmp_path_factory)
    workdir = tmp_path_factory.mktemp("shutdown-cut")
    grace = ("--timeout-graceful-shutdown", "1")
    batches = [Sent(_batch(f"B{n}", 10_000)) for n in range(5)]
    with live_server(data, workdir, LOGS / "cut.log", uvicorn_args=grace) as srv:
        admin = _token(srv.url, "admin", srv.password)
        threads = _start(srv, admin, batches)
        signalled = time.monotonic()
        srv.process.send_signal(signal.SIGTERM)
        code = srv.process.wait(timeout=30)
        exited = time.monotonic()
        for t in threads:
            t.join(timeout=30)
    answered = [s for s in batches if s.status == 200]
    cut = [s for s in batches if s.status != 200]
    print(
        f"shutdown past the grace: exit {code} {exited - signalled:.2f} s after SIGTERM; "
        f"{len(answered)} batch(es) answered, {len(cut)} cut off "
        f"({', '.join(str(s.error or s.status) for s in cut)})"
    )
    assert cut, "every batch finished within the grace: make them bigger"
    assert exited - signalled < 5.0
    db = workdir / "ledger.db"  # whole or nothing, in the database the server left
    for s in answered:
        assert _stored(db, [item["credit_code"] for item in s.items]) == len(s.items)
    for s in cut:
        assert _stored(db, [item["credit_code"] for item in s.items]) == 0
