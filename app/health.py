"""Liveness and readiness."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError
from starlette.concurrency import run_in_threadpool

router = APIRouter()


@router.get("/healthz", tags=["health"], summary="Liveness 存活检查")
def healthz() -> dict[str, str]:
    return {"status": "ok"}


def _ping(request: Request) -> None:
    engine = request.app.state.engine
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("SELECT 1"))


@router.get(
    "/readyz",
    tags=["health"],
    summary="Readiness: database reachable 就绪检查",
    responses={503: {"description": "database unreachable"}},
)
async def readyz(request: Request) -> Any:
    try:
        await run_in_threadpool(_ping, request)
    except SQLAlchemyError:
        return JSONResponse({"status": "unavailable", "database": "unreachable"}, status_code=503)
    return {"status": "ok", "database": "reachable"}
