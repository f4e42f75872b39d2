"""Liveness and readiness.

/readyz answers `{"status": "ok" | "unavailable", "database": "reachable" |
"unreachable", "checks": {name: {"ok": bool, "detail": str}}}`: 200 when every check
is ok, 503 naming what is not. A check is one async function in READINESS_CHECKS; it
sees the results of the checks before it and returns None to stay out of the body. A
check may report `"ok": true` with a detail worth knowing (a warning that does not make
the instance unready)."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError
from starlette.concurrency import run_in_threadpool

router = APIRouter()
log = logging.getLogger("app.health")

Check = dict[str, Any]
ReadinessCheck = Callable[[Request, Mapping[str, Check]], Awaitable[Check | None]]


@router.get("/healthz", tags=["health"], summary="Liveness 存活检查")
def healthz() -> dict[str, str]:
    return {"status": "ok"}


def _ping(request: Request) -> None:
    engine = request.app.state.engine
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("SELECT 1"))


async def database_check(request: Request, done: Mapping[str, Check]) -> Check:
    try:
        await run_in_threadpool(_ping, request)
    except SQLAlchemyError as exc:
        return {"ok": False, "detail": f"unreachable ({type(exc).__name__})"}
    return {"ok": True, "detail": "reachable"}


async def initial_admin_check(request: Request, done: Mapping[str, Check]) -> Check | None:
    """The start-up admin (APP_ADMIN_USERNAME), while it waits for the database."""
    initial_admin = request.app.state.initial_admin
    if done["database"]["ok"]:
        initial_admin.wake()  # the database answers: retry now rather than after the wait
    result: Check | None = initial_admin.readiness()
    return result


def _calendar_warning(request: Request) -> str | None:
    from app.calendar.service import MODE_KEY, next_year_warning

    session = request.app.state.sessionmaker()
    session.info[MODE_KEY] = request.app.state.settings.calendar_unpublished
    try:
        return next_year_warning(session, request.app.state.clock.today())
    finally:
        session.close()


async def calendar_check(request: Request, done: Mapping[str, Check]) -> Check | None:
    """M-3: from October 1, whether next year's working-day calendar is published. Not
    published is a warning (deadlines into it are provisional or refused), not unready;
    it is also logged, once a day per process."""
    if not done["database"]["ok"]:
        return None
    try:
        warning = await run_in_threadpool(_calendar_warning, request)
    except SQLAlchemyError as exc:
        return {"ok": False, "detail": f"calendar unreadable ({type(exc).__name__})"}
    if warning is None:
        return {
            "ok": True,
            "detail": "published as far as due",
        }
    today = request.app.state.clock.today()
    if getattr(request.app.state, "calendar_warned_on", None) != today:
        request.app.state.calendar_warned_on = today
        log.warning(warning)
    return {"ok": True, "detail": warning}


READINESS_CHECKS: dict[str, ReadinessCheck] = {
    "database": database_check,
    "initial_admin": initial_admin_check,
    "calendar": calendar_check,
}


@router.get(
    "/readyz",
    tags=["health"],
    summary="Readiness: database reachable 就绪检查",
    responses={503: {"description": "a check failed; `checks` says which and why"}},
)
async def readyz(request: Request) -> Any:
    checks: dict[str, Check] = {}
    for name, check in READINESS_CHECKS.items():
        result = await check(request, checks)
        if result is not None:
            checks[name] = result
    # `database` as the first version of this body had it, beside the checks
    database = "reachable" if checks["database"]["ok"] else "unreachable"
    if all(c["ok"] for c in checks.values()):
        return {"status": "ok", "database": database, "checks": checks}
    body = {"status": "unavailable", "database": database, "checks": checks}
    return JSONResponse(body, status_code=503)
