"""JSON log lines: an ISO 8601 time with its UTC offset, the request id and the
authenticated caller's user id, on the access log and on lines logged inside the
request; the user id never outlives its request."""

from __future__ import annotations

import io
import json
import logging
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi import APIRouter, FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.auth.principal import CurrentPrincipal
from app.kit.logging import configure_logging
from app.kit.uow import TransactionalRoute
from app.models import User

TIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+00:00$")


@pytest.fixture
def log_stream() -> Iterator[io.StringIO]:
    """configure_logging() into a buffer; the root logger and uvicorn's as they were after."""
    root = logging.getLogger()
    saved = (list(root.handlers), root.level)
    loggers = {n: logging.getLogger(n) for n in ("uvicorn", "uvicorn.error", "uvicorn.access")}
    saved_loggers = {n: (list(lg.handlers), lg.propagate, lg.disabled) for n, lg in loggers.items()}
    stream = io.StringIO()
    configure_logging("INFO", json_output=True, stream=stream)
    yield stream
    root.handlers[:], _ = saved[0], root.setLevel(saved[1])
    for n, (handlers, propagate, disabled) in saved_loggers.items():
        loggers[n].handlers[:] = handlers
        loggers[n].propagate, loggers[n].disabled = propagate, disabled


def lines(stream: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stream.getvalue().splitlines() if line]


def user_id(session: Session, username: str) -> int:
    return session.scalars(select(User.id).where(User.username == username)).one()


@pytest.fixture
def logging_app(app: FastAPI) -> FastAPI:
    """The app with two routes that log once the caller is known: an async one (the
    principal is resolved in a worker thread, the line is logged on the event loop) and
    a sync one."""

    router = APIRouter(route_class=TransactionalRoute)  # the session the principal reads

    @router.get("/test-log/async", include_in_schema=False)
    async def logs_async(principal: CurrentPrincipal) -> dict[str, str]:
        logging.getLogger("app.test").info("inside async", extra={"who": principal.username})
        return {}

    @router.get("/test-log/sync", include_in_schema=False)
    def logs_sync(principal: CurrentPrincipal) -> dict[str, str]:
        logging.getLogger("app.test").info("inside sync", extra={"who": principal.username})
        return {}

    app.include_router(router)
    return app


def test_every_line_is_json_with_an_offset_time_and_the_request_id(
    log_stream: io.StringIO, client: TestClient
) -> None:
    r = client.get("/healthz", headers={"X-Request-ID": "req-42"})
    assert r.status_code == 200
    logged = lines(log_stream)
    assert logged, "nothing logged"
    for line in logged:
        assert TIME.match(line["time"]), line["time"]
        assert {"level", "logger", "message", "request_id", "user_id"} <= line.keys()
    access = [x for x in logged if x["logger"] == "app.access"]
    assert len(access) == 1
    assert access[0]["request_id"] == "req-42"
    assert access[0]["user_id"] is None  # anonymous
    assert access[0]["path"] == "/healthz" and access[0]["status"] == 200
    when = datetime.fromisoformat(access[0]["time"])
    assert when.utcoffset() == timedelta(0)
    assert abs(datetime.now(UTC) - when) < timedelta(minutes=1)


@pytest.mark.parametrize("kind", ["async", "sync"])
def test_lines_of_an_authenticated_request_carry_its_user_id(
    log_stream: io.StringIO,
    logging_app: FastAPI,
    session: Session,
    auth: Any,
    kind: str,
) -> None:
    with TestClient(logging_app, raise_server_exceptions=False) as c:
        r = c.get(f"/test-log/{kind}", headers=auth("regulator"))
        assert r.status_code == 200, r.text
        rid = r.headers["x-request-id"]
        # the next request, anonymous, on the same client: no user id carried over
        assert c.get("/healthz").status_code == 200
        assert c.get(f"/test-log/{kind}").status_code == 401
    regulator = user_id(session, "regulator")
    logged = lines(log_stream)
    inside = [x for x in logged if x["logger"] == "app.test"]
    assert inside == [
        {
            "time": inside[0]["time"],
            "level": "INFO",
            "logger": "app.test",
            "message": f"inside {kind}",
            "request_id": rid,
            "user_id": regulator,
            "who": "regulator",
        }
    ]
    access = [x for x in logged if x["logger"] == "app.access"]
    assert [(x["path"], x["status"], x["user_id"]) for x in access] == [
        (f"/test-log/{kind}", 200, regulator),
        ("/healthz", 200, None),
        (f"/test-log/{kind}", 401, None),
    ]
    assert access[0]["request_id"] == rid


def test_a_rejected_token_logs_no_user_id(
    log_stream: io.StringIO, client: TestClient, auth: Any
) -> None:
    assert client.get("/api/v1/auth/me", headers=auth("bank_jsb")).status_code == 200
    bad = {"Authorization": "Bearer not-a-token"}
    assert client.get("/api/v1/auth/me", headers=bad).status_code == 401
    access = [x for x in lines(log_stream) if x["logger"] == "app.access"]
    assert [x["user_id"] is not None for x in access] == [True, False]


def test_text_lines_have_the_offset_time_too() -> None:
    stream = io.StringIO()
    root = logging.getLogger()
    saved = (list(root.handlers), root.level)
    try:
        configure_logging("INFO", json_output=False, stream=stream)
        logging.getLogger("app.test").warning("plain")
    finally:
        root.handlers[:] = saved[0]
        root.setLevel(saved[1])
    first = stream.getvalue().split(" ", 1)[0]
    assert TIME.match(first), stream.getvalue()
    assert "user=None" in stream.getvalue()


def test_access_lines_count_the_requests_sql_and_server_timing_is_opt_in(
    log_stream: io.StringIO,
    settings: Any,
    engine: Any,
    session_factory: Any,
    auth: Any,
) -> None:
    """Each access line carries the SQL its request ran (`sql_statements`, `sql_ms`); a
    request without SQL carries 0. The `Server-Timing` header is sent only with
    SERVER_TIMING on, and names the same statement count as the log line."""
    from app.kit.clock import Clock
    from app.main import create_app
    from tests.conftest import TEST_TODAY

    answers = {}
    for on in (False, True):
        app = create_app(
            settings.model_copy(update={"server_timing": on}),
            engine=engine,
            session_factory=session_factory,
            clock=Clock(TEST_TODAY),
        )
        with TestClient(app, raise_server_exceptions=False) as c:
            answers[on] = c.get("/api/v1/loans?limit=5", headers=auth("regulator"))
            assert answers[on].status_code == 200, answers[on].text
            assert c.get("/healthz").status_code == 200
    access = [x for x in lines(log_stream) if x["logger"] == "app.access"]
    loans = [x for x in access if x["path"] == "/api/v1/loans"]
    health = [x for x in access if x["path"] == "/healthz"]
    assert len(loans) == 2 and len(health) == 2
    assert all(x["sql_statements"] >= 2 and x["sql_ms"] > 0 for x in loans), loans
    assert all(x["sql_statements"] == 0 and x["sql_ms"] == 0 for x in health), health
    assert "server-timing" not in answers[False].headers
    timing = answers[True].headers["server-timing"]
    found = re.fullmatch(r'app;dur=[\d.]+, db;dur=[\d.]+;desc="(\d+) statements"', timing)
    assert found, timing
    assert int(found.group(1)) == loans[1]["sql_statements"]
