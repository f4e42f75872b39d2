"""create_app(): settings, engine, clock, middleware, error handlers, routers."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import fastapi_offline
from fastapi import FastAPI
from fastapi.middleware.gzip import GZipMiddleware
from fastapi.openapi.docs import (
    get_redoc_html,
    get_swagger_ui_html,
    get_swagger_ui_oauth2_redirect_html,
)
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from app import health
from app.api import api_router
from app.auth.tokens import decode_token
from app.bootstrap import InitialAdmin
from app.config import Settings, get_settings
from app.contract import TAGS, install_contract, operation_id
from app.db import make_engine, make_sessionmaker
from app.errors import install_error_handlers
from app.kit import dates, gc_tuning
from app.kit.admission import AdmissionMiddleware
from app.kit.clock import Clock
from app.kit.logging import configure_logging
from app.kit.middleware import (
    BodySizeLimitMiddleware,
    HeaderSizeLimitMiddleware,
    JsonDepthLimitMiddleware,
    RequestContextMiddleware,
    SafeTextMiddleware,
)
from app.kit.timing import count_statements
from app.loans.jobs import JobWorker
from app.metrics import install_metrics
from app.problems import router as problems_router

log = logging.getLogger("app")

DESCRIPTION = """
**风险补偿基金台账 — risk-compensation fund ledger** for Jiangsu's 苏科贷 (SKD) and
连云港信保基金 (XB).

* Click **Authorize** and log in with a demo user (printed by `make run`).
* Amounts are decimal strings in yuan (`"5000000.00"`), rates are basis points (`395` = 3.95 %).
* Every error is `application/problem+json` with a stable `code` and, for business rules,
  the SPEC rule id; every POST accepts an `Idempotency-Key` header.
"""


def _shows_demo(settings: Settings, demo_docs: bool | None) -> bool:
    """Whether the documentation is the demo's: not in production, nor in the committed
    contract (`demo_docs=False`)."""
    return not (demo_docs is False or (demo_docs is None and settings.is_production))


def _description(settings: Settings, demo_docs: bool | None) -> str:
    """The document's description; in demo mode it lists the demo users to log in as
    (never in production, nor in the committed contract)."""
    if not _shows_demo(settings, demo_docs):
        return DESCRIPTION
    from app.seed.loader import DEMO_PASSWORD, DEMO_USERS

    rows = "\n".join(
        f"| `{user}` | {role} | {scope or '-'} |"
        for user, role, *scopes in DEMO_USERS
        for scope in [next((s for s in scopes if s), None)]
    )
    return (
        DESCRIPTION
        + f"\n**Demo users 演示用户** (demo mode only; password `{DEMO_PASSWORD}`):\n\n"
        + "| user | role | scope |\n|---|---|---|\n"
        + rows
        + "\n"
    )


def create_app(
    settings: Settings | None = None,
    *,
    engine: Engine | None = None,
    session_factory: sessionmaker[Session] | None = None,
    clock: Clock | None = None,
    demo_docs: bool | None = None,
) -> FastAPI:
    """The service. `demo_docs=False` leaves the demo users out of the documentation
    even in demo mode (the committed contract)."""
    settings = settings or get_settings()
    engine = engine or make_engine(
        settings.database_url,
        pool_size=settings.db_pool_size,
        pre_ping=settings.db_pool_pre_ping,
        pool_timeout=settings.db_pool_timeout_seconds,
        lock_timeout_ms=settings.db_lock_timeout_ms,
    )

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # Never fails on an unreachable database: the first admin is retried in the
        # background and /readyz answers 503 until it exists.
        app.state.initial_admin.start()
        # the batch jobs' worker (app/loans/jobs.py): takes back the jobs a dead worker
        # left running, then runs the queued ones, until the app stops
        if app.state.batch_jobs is not None:
            app.state.batch_jobs.start()
        try:
            yield
        finally:
            if app.state.batch_jobs is not None:
                await app.state.batch_jobs.stop()
            await app.state.initial_admin.stop()

    app = FastAPI(
        docs_url=None,
        redoc_url=None,
        title="Risk-compensation fund ledger 风险补偿基金台账",
        version="1.0.0",
        description=_description(settings, demo_docs),
        openapi_tags=TAGS,
        lifespan=lifespan,
        generate_unique_id_function=operation_id,
        separate_input_output_schemas=False,
    )
    app.state.settings = settings
    app.state.engine = engine
    count_statements(engine)
    app.state.sessionmaker = session_factory or make_sessionmaker(engine)
    app.state.clock = clock or Clock(settings.app_today)
    dates.configure(settings.input_date_min, settings.input_years_ahead)
    app.state.initial_admin = InitialAdmin(app.state.sessionmaker, settings)
    # a caller that hands in its own session factory (the tests: one connection, rolled
    # back) runs batch jobs itself, `JobWorker.run_pending`
    app.state.batch_jobs = (
        JobWorker(app.state.sessionmaker, settings, app.state.clock)
        if settings.batch_job_worker and session_factory is None
        else None
    )

    install_error_handlers(app)
    install_metrics(app)
    app.add_middleware(JsonDepthLimitMiddleware, max_depth=settings.max_json_depth)
    app.add_middleware(SafeTextMiddleware)
    app.add_middleware(BodySizeLimitMiddleware, max_bytes=settings.max_request_bytes)
    app.add_middleware(HeaderSizeLimitMiddleware, max_bytes=settings.max_header_bytes)
    # level 1, not Starlette's 9: a list of 50 (35–50 kB of JSON) compresses in a tenth
    # of the time (0.1–0.3 ms against 1–2 ms), to 7 kB instead of 5.6 (bench/RESULTS.md)
    app.add_middleware(GZipMiddleware, minimum_size=1024, compresslevel=1)
    app.add_middleware(
        AdmissionMiddleware,
        max_in_flight=settings.max_in_flight or 40,
        per_client=settings.client_concurrency,
        wait_seconds=settings.admission_wait_ms / 1000,
        client_wait_seconds=settings.client_wait_ms / 1000,
        verify=lambda token: decode_token(settings, token),
    )
    app.add_middleware(RequestContextMiddleware, server_timing=settings.server_timing)
    app.include_router(health.router)
    app.include_router(problems_router)
    app.include_router(api_router)
    # the demo's Swagger UI prefills filings dated on its business date
    install_contract(app, dated_examples=_shows_demo(settings, demo_docs))
    _mount_docs(app, demo=not settings.is_production)
    return app


SWAGGER_UI_PARAMETERS = {
    "persistAuthorization": False,  # demo mode only: a shared screen must not keep a token
    "displayRequestDuration": True,
    "docExpansion": "none",
    "filter": True,
    "tryItOutEnabled": True,
}


def _mount_docs(app: FastAPI, *, demo: bool) -> None:
    """Swagger UI and ReDoc served from this process (assets of the `fastapi-offline`
    package), so the docs work on networks without access to a CDN."""
    static = Path(fastapi_offline.__file__).parent / "static"
    app.mount("/static-docs", StaticFiles(directory=static), name="static-docs")
    title = app.title

    @app.get("/docs", include_in_schema=False)
    async def swagger_ui() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url="/openapi.json",
            title=f"{title} · Swagger UI",
            oauth2_redirect_url="/docs/oauth2-redirect",
            swagger_js_url="/static-docs/swagger-ui-bundle.js",
            swagger_css_url="/static-docs/swagger-ui.css",
            swagger_favicon_url="/static-docs/favicon.png",
            swagger_ui_parameters={**SWAGGER_UI_PARAMETERS, "persistAuthorization": demo},
        )

    @app.get("/docs/oauth2-redirect", include_in_schema=False)
    async def swagger_redirect() -> HTMLResponse:
        return get_swagger_ui_oauth2_redirect_html()

    @app.get("/redoc", include_in_schema=False)
    async def redoc() -> HTMLResponse:
        return get_redoc_html(
            openapi_url="/openapi.json",
            title=f"{title} · ReDoc",
            redoc_js_url="/static-docs/redoc.standalone.js",
            redoc_favicon_url="/static-docs/favicon.png",
        )


def app_factory() -> FastAPI:
    """Entry point for uvicorn (`--factory app.main:app_factory`)."""
    settings = get_settings()
    configure_logging(settings.log_level, json_output=settings.log_json)
    app = create_app(settings)
    gc_tuning.tune(settings.gc_gen0_threshold)
    return app
