"""Request id and the authenticated user id of the current request, carried in context
variables, put into every log line (and the request id into every problem body)."""

from __future__ import annotations

from contextvars import ContextVar
from dataclasses import dataclass

_request_id: ContextVar[str | None] = ContextVar("request_id", default=None)


def current_request_id() -> str | None:
    return _request_id.get()


def set_request_id(value: str | None) -> object:
    return _request_id.set(value)


def reset_request_id(token: object) -> None:
    _request_id.reset(token)  # type: ignore[arg-type]


@dataclass
class RequestUser:
    """Who the current request is authenticated as, filled in when the principal is
    resolved. A mutable holder rather than a context variable of its own: the principal
    is resolved in a worker thread with a *copy* of the request's context, and a value
    set there would not be seen by the middleware's access-log line; a change to the
    holder both share is."""

    user_id: int | None = None


_request_user: ContextVar[RequestUser | None] = ContextVar("request_user", default=None)


def start_request_user() -> object:
    """A fresh, anonymous holder for a new request (RequestContextMiddleware)."""
    return _request_user.set(RequestUser())


def reset_request_user(token: object) -> None:
    _request_user.reset(token)  # type: ignore[arg-type]


def set_request_user_id(user_id: int) -> None:
    """Records the authenticated caller; outside a request (no holder) it does nothing."""
    holder = _request_user.get()
    if holder is not None:
        holder.user_id = user_id


def current_user_id() -> int | None:
    holder = _request_user.get()
    return holder.user_id if holder is not None else None
