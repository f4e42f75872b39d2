"""create_app(): settings, engine, clock, middleware, error handlers, routers."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import fastapi_offline
from fastapi import FastAPI
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
from app.bootstrap import InitialAdmin
from app.config import Settings, get_settings
from app.db import make_engine, make_sessionmaker
from app.errors import install_error_handlers
from app.kit.clock import Clock
from app.kit.logging import configure_logging
from app.kit.middleware import (
    BodySizeLimitMiddleware,
    RequestContextMiddleware,
    SafeTextMiddleware,
)

log = logging.getLogger("app")

DESCRIPTION = """
**风险补偿基金台账 — risk-compensation fund ledger** for Jiangsu's 苏科贷 (SKD) and
连云港信保基金 (XB).

* Click **Authorize** and log in with a demo user (printed by `make run`).
* Amounts are decimal strings in yuan (`"5000000.00"`), rates are basis points (`395` = 3.95 %).
* Every error is `application/problem+json` with a stable `code` and, for business rules,
  the SPEC rule id; every POST accepts an `Idempotency-Key` header.
"""

TAGS = [
    {"name": "auth", "description": "登录与用户 — log in, users, roles and data scopes"},
    {"name": "reference", "description": "基础数据 — regions, banks, funds, LPR (SPEC §2)"},
    {"name": "agreements", "description": "合作协议 — bank × programme agreements and status"},
    {"name": "enterprises", "description": "企业 — enterprises and risk flags"},
    {"name": "loans", "description": "贷款备案 — filed loans, repayments, renewals"},
    {
        "name": "claims",
        "description": "代偿 — compensation claims: 申请 apply → 市县初审 city review → 省级复审 "
        "province review (3 % cap) → 市县拨付 city payment → 省级归垫 province "
        "reimbursement; documents, recoveries 追偿, a bank's cap and exposure",
    },
    {
        "name": "ledger",
        "description": "台账 — double-entry journal, balances, trial balance, "
        "Beancount export, hash-chain verification (SPEC §5)",
    },
    {"name": "evaluations", "description": "季末评价 — quarter-end NPL evaluation (SKD-Q3)"},
    {
        "name": "status-reports",
        "description": "月度报送 — the banks' monthly loan-level status files (CSV or JSON), "
        "reconciled against the books as of the month end, and who has reported (XB-Rep)",
    },
    {
        "name": "reports",
        "description": "监管报告 — quarterly, monthly and annual reports in JSON, CSV and XLSX, "
        "the quarterly page with SVG charts; a closed period is a stored run (cut-off, "
        "ledger entry range, SHA-256, versions and what changed, submissions)",
    },
    {
        "name": "calendar",
        "description": "工作日历 — the PRC working-day calendar every deadline is counted on: "
        "holidays and make-up workdays per year, published from the State Council notice (M-3)",
    },
    {"name": "health", "description": "运行状态 — liveness and readiness"},
]


def create_app(
    settings: Settings | None = None,
    *,
    engine: Engine | None = None,
    session_factory: sessionmaker[Session] | None = None,
    clock: Clock | None = None,
) -> FastAPI:
    settings = settings or get_settings()
    engine = engine or make_engine(
        settings.database_url, pool_size=settings.db_pool_size, pre_ping=settings.db_pool_pre_ping
    )

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # Never fails on an unreachable database: the first admin is retried in the
        # background and /readyz answers 503 until it exists.
        app.state.initial_admin.start()
        try:
            yield
        finally:
            await app.state.initial_admin.stop()

    app = FastAPI(
        docs_url=None,
        redoc_url=None,
        title="Risk-compensation fund ledger 风险补偿基金台账",
        version="1.0.0",
        description=DESCRIPTION,
        openapi_tags=TAGS,
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.engine = engine
    app.state.sessionmaker = session_factory or make_sessionmaker(engine)
    app.state.clock = clock or Clock(settings.app_today)
    app.state.initial_admin = InitialAdmin(app.state.sessionmaker, settings)

    install_error_handlers(app)
    app.add_middleware(SafeTextMiddleware)
    app.add_middleware(BodySizeLimitMiddleware, max_bytes=settings.max_request_bytes)
    app.add_middleware(RequestContextMiddleware)
    app.include_router(health.router)
    app.include_router(api_router)
    _mount_docs(app)
    return app


SWAGGER_UI_PARAMETERS = {
    "persistAuthorization": True,
    "displayRequestDuration": True,
    "docExpansion": "none",
    "filter": True,
    "tryItOutEnabled": True,
}


def _mount_docs(app: FastAPI) -> None:
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
            swagger_ui_parameters=SWAGGER_UI_PARAMETERS,
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
    return create_app(settings)
