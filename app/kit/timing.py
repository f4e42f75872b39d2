"""Where a request's time goes: the SQL statements it ran and the time spent in them,
kept per request (a holder in a context variable, like the request's user) and counted
by the engine's cursor events. The access log line carries both (`sql_statements`,
`sql_ms`); with `SERVER_TIMING` on, the answer carries them too, as a `Server-Timing`
header (`app;dur=…, db;dur=…;desc="N statements"`) that browsers' developer tools and
the benchmarks read. Off by default: it tells a caller how the service spends its time."""

from __future__ import annotations

import time
import weakref
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine, event


@dataclass
class RequestCost:
    """The SQL a request ran so far. A holder shared by the request's context copies
    (its worker thread changes it, the middleware reads it)."""

    statements: int = 0
    sql_seconds: float = 0.0


_cost: ContextVar[RequestCost | None] = ContextVar("request_cost", default=None)
_started: ContextVar[float | None] = ContextVar("statement_started", default=None)


def start_request_cost() -> tuple[RequestCost, object]:
    cost = RequestCost()
    return cost, _cost.set(cost)


def reset_request_cost(token: object) -> None:
    _cost.reset(token)  # type: ignore[arg-type]


def server_timing(cost: RequestCost, app_seconds: float) -> str:
    """The `Server-Timing` header's value (durations in milliseconds)."""
    return (
        f"app;dur={app_seconds * 1000:.1f}, "
        f'db;dur={cost.sql_seconds * 1000:.1f};desc="{cost.statements} statements"'
    )


_counted: weakref.WeakSet[Engine] = weakref.WeakSet()


def count_statements(engine: Engine) -> None:
    """Count every statement `engine` runs for the request running it (none outside one);
    once per engine, however many apps share it."""
    if engine in _counted:
        return
    _counted.add(engine)

    @event.listens_for(engine, "before_cursor_execute")
    def _before(*_: Any) -> None:
        if _cost.get() is not None:
            _started.set(time.perf_counter())

    @event.listens_for(engine, "after_cursor_execute")
    def _after(*_: Any) -> None:
        cost = _cost.get()
        started = _started.get()
        if cost is not None and started is not None:
            cost.statements += 1
            cost.sql_seconds += time.perf_counter() - started
