"""GET /metrics for Prometheus: HTTP traffic per route and the ledger's business figures.

HTTP (prometheus-fastapi-instrumentator's middleware): `http_requests_total{method,
status,handler}` with the exact status code, `http_request_duration_seconds{method,
handler}` (a histogram), request and response sizes per handler, and one label-free
high-resolution latency histogram. `handler` is the route *template*
(`/api/v1/claims/{claim_id}`), never a raw path: a path no route knows is counted as
`none`, so no client can add series. /metrics itself is not counted. Requests refused
by the outer middleware (413 body too large, 422 bad bytes in the path) are only in the
access log.

Business figures, read from the database at each scrape (two small statements):
`ledger_claims{program,status}` (every known programme × status, 0 when none),
`ledger_entries_total` (the journal's entries: the hash chain's last sequence number, no
table scan) and `ledger_business_metrics_up` (0 when the database could not be read; the
failure is logged and the HTTP metrics are still served). Loans by status are left out
on purpose: on a book of a million loans that is a full scan of the loans table at every
scrape.

Who may read: with METRICS_TOKEN set, only `Authorization: Bearer <token>` (401 problem
otherwise); without it, anyone in demo and nobody in production (404, as an unknown
path). Each app has its own registry (the tests build many apps in one process); with
several worker processes set PROMETHEUS_MULTIPROC_DIR to an empty directory writable by
all of them, so that every scrape sums the workers."""

from __future__ import annotations

import hmac
import logging
import os
from collections.abc import Iterable, Iterator

from fastapi import FastAPI, Request
from fastapi.responses import Response
from prometheus_client import (
    CollectorRegistry,
    GCCollector,
    PlatformCollector,
    ProcessCollector,
    multiprocess,
)
from prometheus_client.exposition import choose_encoder
from prometheus_client.metrics_core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from prometheus_fastapi_instrumentator.middleware import PrometheusInstrumentatorMiddleware
from prometheus_fastapi_instrumentator.routing import _effective_routes
from sqlalchemy import func, select, text
from sqlalchemy.orm import Session, sessionmaker
from starlette.datastructures import State
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import BaseRoute, Match, Mount
from starlette.types import Scope

from app.errors import InvalidToken, Unauthorized
from app.models import Claim
from app.models.claim import CLAIM_STATUSES
from app.models.ledger import LedgerChainHead
from app.programs.base import program_codes

log = logging.getLogger("app.metrics")

METRICS_PATH = "/metrics"
# per-route latency buckets (seconds): API calls in tens of milliseconds up to the
# regulators' reports on a large book, which take seconds
LATENCY_BUCKETS = (0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
SCRAPE_STATEMENT_TIMEOUT = "5s"  # PostgreSQL: a scrape never holds a connection longer

_BEARER = {"WWW-Authenticate": 'Bearer realm="metrics"'}


class _TemplateOnlyMiddleware(PrometheusInstrumentatorMiddleware):
    """The instrumentator's middleware, but a handler is always a route template: its
    fallback for a path that matches a route only with the trailing slash toggled
    (answered by a redirect) would label the series with the raw path
    (`/api/v1/claims/123/`), one new series for every id a client tries.

    The route table is flattened (FastAPI's included routers into their routes) once
    per table, not at every request: the instrumentator's lookup walks and flattens the
    included routers each time, a tenth of a small read's time."""

    _flat: tuple[int, int, list[BaseRoute]] | None = None

    def _routes(self, routes: list[BaseRoute]) -> list[BaseRoute]:
        # a table grows only while the app is assembled; its identity and length
        # tell a changed one
        flat = self._flat
        if flat is None or flat[0] != id(routes) or flat[1] != len(routes):
            flat = self._flat = (id(routes), len(routes), _effective_routes(routes))
        return flat[2]

    def _get_handler(self, request: Request) -> tuple[str, bool]:
        name = _template(request.scope, self._routes(request.scope["app"].routes))
        return (name, True) if name else (request.url.path, False)


def _template(scope: Scope, routes: list[BaseRoute]) -> str | None:
    """The template of the route that takes the request (a full match), else of the
    first that matches its path but not its method; None when no route does. A mount
    with routes of its own prefixes its route's template; one without (static files)
    is its own template."""
    fallback: str | None = None
    for route in routes:
        match, child_scope = route.matches(scope)
        if match is Match.NONE:
            continue
        if isinstance(route, Mount):
            inner = route.routes
            if not inner:
                name: str | None = route.path
            else:
                found = _template({**scope, **child_scope}, _effective_routes(inner))
                name = None if found is None else route.path + found
        else:
            name = getattr(route, "path", None)
        if name is None:
            continue
        if match is Match.FULL:
            return name
        fallback = fallback or name
    return fallback


class BusinessCollector(Collector):
    """The ledger's figures, read at scrape time through the app's sessionmaker
    (`app.state.sessionmaker`, looked up at each scrape)."""

    def __init__(self, state: State) -> None:
        self._state = state

    def describe(self) -> Iterable[Metric]:
        return list(self._families())

    def _families(self) -> tuple[GaugeMetricFamily, GaugeMetricFamily, CounterMetricFamily]:
        return (
            GaugeMetricFamily(
                "ledger_business_metrics_up",
                "1 when the business figures were read from the database at this scrape, "
                "0 when the read failed (they are then missing)",
            ),
            GaugeMetricFamily(
                "ledger_claims",
                "Compensation claims by programme and current status",
                labels=["program", "status"],
            ),
            CounterMetricFamily(
                "ledger_entries", "Journal entries recorded (the hash chain's length)"
            ),
        )

    def _read(self) -> tuple[dict[tuple[str, str], int], int]:
        session_factory: sessionmaker[Session] = self._state.sessionmaker
        with session_factory() as session:
            if session.get_bind().dialect.name == "postgresql":
                # SET LOCAL: undone with the transaction the session rolls back on close
                session.execute(text(f"SET LOCAL statement_timeout = '{SCRAPE_STATEMENT_TIMEOUT}'"))
            claims = session.execute(
                select(Claim.program, Claim.status, func.count()).group_by(
                    Claim.program, Claim.status
                )
            ).all()
            entries = session.scalar(
                select(LedgerChainHead.last_seq).where(LedgerChainHead.id == 1)
            )
        counts = {(str(p), str(s)): 0 for p in program_codes() for s in CLAIM_STATUSES}
        counts.update({(str(p), str(s)): int(n) for p, s, n in claims})
        return counts, int(entries or 0)

    def collect(self) -> Iterator[Metric]:
        up, claims, entries = self._families()
        try:
            counts, last_seq = self._read()
        except Exception:  # /metrics must answer even when the database does not
            log.warning("business metrics skipped: the database read failed", exc_info=True)
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        for (program, status), n in sorted(counts.items()):
            claims.add_metric([program, status], n)
        entries.add_metric([], last_seq)
        yield from (up, claims, entries)


def _authorize(request: Request) -> None:
    settings = request.app.state.settings
    token = settings.metrics_token
    if token is None:
        if settings.is_production:  # not published without a token: as an unknown path
            raise StarletteHTTPException(status_code=404)
        return
    scheme, _, given = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not given.strip():
        raise Unauthorized("the metrics need a bearer token (METRICS_TOKEN)", headers=_BEARER)
    if not hmac.compare_digest(
        given.strip().encode("utf-8"), token.get_secret_value().encode("utf-8")
    ):
        raise InvalidToken("the metrics token is not valid", headers=_BEARER)


def install_metrics(app: FastAPI) -> None:
    """Instruments the app's requests and adds GET /metrics (not in the OpenAPI schema).
    Call before the other middleware is added: the instrumentation is then the innermost
    layer and sees the status each route answered."""
    registry = CollectorRegistry()
    ProcessCollector(registry=registry)
    PlatformCollector(registry=registry)
    GCCollector(registry=registry)
    business = BusinessCollector(app.state)
    registry.register(business)
    app.state.metrics_registry = registry

    app.add_middleware(
        _TemplateOnlyMiddleware,
        should_group_status_codes=False,
        should_ignore_untemplated=False,
        should_group_untemplated=True,
        excluded_handlers=[f"^{METRICS_PATH}$"],
        latency_lowr_buckets=LATENCY_BUCKETS,
        registry=registry,
    )

    @app.get(METRICS_PATH, include_in_schema=False)
    def metrics(request: Request) -> Response:  # sync: the business read runs in a thread
        _authorize(request)
        scraped = registry
        if "PROMETHEUS_MULTIPROC_DIR" in os.environ:  # every worker's HTTP figures
            scraped = CollectorRegistry()
            multiprocess.MultiProcessCollector(scraped)
            scraped.register(business)
        encoder, content_type = choose_encoder(request.headers.get("accept", ""))
        return Response(encoder(scraped), headers={"Content-Type": content_type})
