"""The request boundary: one session and one transaction per request, plus
`Idempotency-Key` handling for POSTs (SPEC L-4, API.md Conventions).

A successful response commits the transaction together with the stored response of its
idempotency key and the request's rows of the audit trail (app/audit/capture.py: its
changes, and a row for the request itself); any error rolls everything back, so a
refused request writes nothing —
except what the request registered with `after_rollback`: the record of a refused
filing (SKD-A1) is written after the rollback, on the request's own connection, in a
transaction of its own.
Two concurrent requests with one key serialise on the key's unique index: the second
waits for the first to commit and then replays its response."""

from __future__ import annotations

import asyncio
import functools
import hashlib
import inspect
import json
import logging
import random
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
from fastapi import Request, Response
from fastapi.routing import APIRoute
from sqlalchemy import delete, select
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from app.audit import capture as audit
from app.auth.tokens import request_claims
from app.calendar.service import MODE_KEY as CALENDAR_MODE
from app.calendar.service import share_with_writers
from app.errors import Conflict, ServiceBusy, ValidationFailed, Violation
from app.models import IdempotencyRecord, User

log = logging.getLogger("app.idempotency")
IDEMPOTENCY_HEADER = "Idempotency-Key"
REPLAY_HEADER = "Idempotent-Replayed"
MAX_KEY_LENGTH = 255
# deadlock detected, serialization failure: the transaction can simply run again
RETRYABLE_SQLSTATES = frozenset({"40P01", "40001"})
ATTEMPTS = 5
# session.info: the steps to run after the request is rolled back
_AFTER_ROLLBACK = "uow.after_rollback"

AfterRollback = Callable[[Session, BaseException | None], None]


class IdempotencyKeyReused(Conflict):
    """This `Idempotency-Key` was already used by the caller with a different request
    (method, path, query, content type or body). Use a new key for a new operation."""

    code, title, title_zh = (
        "idempotency_key_reused",
        "Idempotency key reused",
        "幂等键已用于其他请求",
    )


class IdempotencyKeyInProgress(Conflict):
    """A request with this `Idempotency-Key` is still being handled; retry shortly and
    receive its answer."""

    code = "idempotency_key_in_progress"
    title, title_zh = "Request with this key in progress", "同一幂等键的请求正在处理"


def sqlstate(exc: BaseException) -> str | None:
    """The SQLSTATE of a PostgreSQL error — raised by SQLAlchemy (wrapping the driver's)
    or by the driver itself (the ledger's pipelined statements) — else None."""
    own = getattr(exc, "sqlstate", None)
    if isinstance(own, str):
        return own
    orig = getattr(exc, "orig", None)
    found = getattr(orig, "sqlstate", None) if orig is not None else None
    return found if isinstance(found, str) else None


def retryable(exc: BaseException) -> bool:
    return isinstance(exc, DBAPIError | psycopg.Error) and sqlstate(exc) in RETRYABLE_SQLSTATES


def after_rollback(session: Session, step: AfterRollback) -> None:
    """Run `step(session, error)` if this request ends in an error, after its
    transaction is rolled back: in a new transaction on the same session (so on the same
    connection), committed on its own. `error` is the exception that ended the request,
    or None for an error response returned without one. Steps are dropped when the
    request succeeds. Only the request boundary (`TransactionalRoute`) runs them."""
    session.info.setdefault(_AFTER_ROLLBACK, []).append(step)


def _run_after_rollback(session: Session, error: BaseException | None) -> None:
    steps: list[AfterRollback] = session.info.pop(_AFTER_ROLLBACK, [])
    if not steps:
        return
    try:
        for step in steps:
            step(session, error)
        session.commit()
    except Exception:  # the request's own error is what the client must see
        log.exception("writing after a rolled-back request failed")
        session.rollback()


def roll_back_and_keep(session: Session, error: BaseException | None) -> None:
    """Roll the session's transaction back, then run its `after_rollback` steps (their
    own transaction): what the request boundary does for a refused request, for work
    outside a request (a batch job's chunk, app/loans/jobs.py)."""
    session.rollback()
    _run_after_rollback(session, error)


@dataclass
class _Pending:
    record: IdempotencyRecord


def _request_hash(request: Request, body: bytes) -> str:
    h = hashlib.sha256()
    h.update(request.method.encode())
    h.update(b"\0")
    h.update(request.url.path.encode())
    h.update(b"\0")
    h.update(request.url.query.encode())
    h.update(b"\0")
    media_type, _, params = (request.headers.get("content-type") or "").partition(";")
    h.update(media_type.strip().lower().encode())
    h.update(b"\0")
    h.update(_canonical(media_type.strip().lower(), params, body))
    return h.hexdigest()


def _canonical(media_type: str, params: str, body: bytes) -> bytes:
    """The body as compared between a request and its retry: JSON as canonical JSON
    (sorted keys, no insignificant whitespace), so the same object sent with other
    spacing or key order is the same request; a multipart body without its boundary."""
    if media_type == "application/json" or media_type.endswith("+json"):
        try:
            parsed = json.loads(body)
        except ValueError:  # not JSON: the endpoint refuses it; compare the bytes
            return body
        return json.dumps(
            parsed, sort_keys=True, separators=(",", ":"), ensure_ascii=False
        ).encode()
    return _without_boundary(media_type, params, body)


def _without_boundary(media_type: str, params: str, body: bytes) -> bytes:
    """A retried multipart upload carries a fresh random boundary; the same parts with
    another boundary are the same request."""
    if media_type.strip().lower() != "multipart/form-data":
        return body
    for param in params.split(";"):
        name, _, value = param.strip().partition("=")
        if name.lower() == "boundary" and value.strip('"'):
            return body.replace(b"--" + value.strip('"').encode("latin-1"), b"--\0boundary")
    return body


# the headers of a stored answer that a replay repeats
KEPT_HEADERS = ("location", "etag", "content-disposition", "preference-applied")


def _replay(record: IdempotencyRecord) -> Response:
    kept = json.loads(record.response_headers or "{}")
    return Response(
        content=record.response_body.encode(),
        status_code=record.status_code,
        media_type=record.content_type,
        headers={**kept, REPLAY_HEADER: "true"},
    )


def _check(record: IdempotencyRecord, request_hash: str) -> Response:
    if record.request_hash != request_hash:
        raise IdempotencyKeyReused(
            "this Idempotency-Key was already used with a different request",
            [
                IdempotencyKeyReused.violation(
                    "key reused with another request", "header", IDEMPOTENCY_HEADER
                )
            ],
        )
    return _replay(record)


def _find(session: Session, user_id: int, key: str) -> IdempotencyRecord | None:
    return session.scalars(
        select(IdempotencyRecord).where(
            IdempotencyRecord.user_id == user_id, IdempotencyRecord.key == key
        )
    ).first()


def _begin(
    session: Session, *, user_id: int, key: str, request_hash: str, method: str, path: str
) -> Response | _Pending | None:
    user = session.get(User, user_id)
    if user is None or not user.is_active:
        # an unknown or disabled user: no replay of a stored answer either — the
        # endpoint's authentication answers 401
        return None
    existing = _find(session, user_id, key)
    if existing is not None:
        return _check(existing, request_hash)
    record = IdempotencyRecord(
        user_id=user_id,
        key=key,
        request_hash=request_hash,
        method=method,
        path=path[:500],
        status_code=0,
        content_type="",
        response_body="",
    )
    try:
        with session.begin_nested():
            session.add(record)
            session.flush()
    except IntegrityError:
        # Another request with this key committed while we waited on the unique index.
        session.rollback()
        existing = _find(session, user_id, key)
        if existing is None:  # pragma: no cover - the other writer rolled back meanwhile
            raise IdempotencyKeyInProgress(
                "a request with this Idempotency-Key is in progress; retry"
            ) from None
        return _check(existing, request_hash)
    return _Pending(record)


def _finish(
    session: Session, pending: _Pending | None, response: Response, request: Request
) -> None:
    # the audit trail's rows of this request (its changes and the request itself), in
    # its transaction (app/audit/capture.py)
    audit.finish_request(
        session,
        status=response.status_code,
        path_params=request.path_params,
        location=response.headers.get("location"),
    )
    if pending is not None:
        pending.record.status_code = response.status_code
        pending.record.content_type = response.media_type or response.headers.get(
            "content-type", "application/json"
        )
        pending.record.response_body = bytes(getattr(response, "body", b"")).decode("utf-8")
        pending.record.response_headers = json.dumps(
            {k: v for k in KEPT_HEADERS if (v := response.headers.get(k)) is not None}
        )
    session.commit()


def _commit_and_close(
    session: Session, pending: _Pending | None, response: Response, request: Request
) -> None:
    """A request that succeeded: its audit rows and idempotency record, COMMIT, and the
    session closed. A failing commit leaves the session open for the rollback."""
    _finish(session, pending, response, request)
    session.close()


def _roll_back_and_close(session: Session, exc: BaseException | None, after: bool) -> None:
    """A request refused or failed: ROLLBACK, what is kept after it (`after`: the refusal
    records, not for an attempt that is retried), and the session closed."""
    try:
        if after:
            roll_back_and_keep(session, exc)
        else:
            session.rollback()
    finally:
        session.close()


def purge_expired(session: Session, *, now: datetime, retention_days: int) -> int:
    """Forget the answers of keys older than the retention (`IDEMPOTENCY_RETENTION_DAYS`):
    after it, a key may be used again for a new request. Returns how many were removed."""
    cutoff = now.astimezone(UTC) - timedelta(days=retention_days)
    result = session.execute(delete(IdempotencyRecord).where(IdempotencyRecord.created_at < cutoff))
    return int(getattr(result, "rowcount", 0) or 0)


def _validate_key(key: str) -> None:
    if not key or len(key) > MAX_KEY_LENGTH or not key.isprintable():
        raise ValidationFailed(
            f"{IDEMPOTENCY_HEADER} must be 1–{MAX_KEY_LENGTH} printable characters",
            [Violation(loc=("header", IDEMPOTENCY_HEADER), msg="invalid idempotency key")],
        )


class TransactionalRoute(APIRoute):
    """APIRoute whose handler owns the session, the transaction and idempotency. A write
    request first takes the working calendar's shared lock (`share_calendar`), so that a
    calendar publication never runs beside a write that computes a deadline (M-3)."""

    share_calendar = True

    def __init__(self, path: str, endpoint: Callable[..., Any], **kwargs: Any) -> None:
        if inspect.isfunction(endpoint) and not (
            inspect.iscoroutinefunction(endpoint)
            or inspect.isgeneratorfunction(endpoint)
            or inspect.isasyncgenfunction(endpoint)
        ):
            endpoint = self._validated_in_thread(endpoint)
        super().__init__(path, endpoint, **kwargs)

    def _validated_in_thread(self, endpoint: Callable[..., Any]) -> Callable[..., Any]:
        """A sync endpoint as a coroutine that runs it in a worker thread and validates
        its result against the response model in the same thread (where the validation
        may read the ORM objects it returns). FastAPI runs the validation of a sync
        endpoint's result in a second trip to a worker thread; on an already validated
        model it is a pass-through, done in the event loop. The signature, name and
        documentation are the endpoint's (`functools.wraps`: FastAPI reads the
        parameters, the return annotation and its module through `__wrapped__`), so the
        OpenAPI document is unchanged. A result that fails validation is handed back
        as it was, for FastAPI's own validation to report."""
        route = self

        def run_and_validate(values: dict[str, Any]) -> Any:
            content = endpoint(**values)
            field = route.response_field
            if field is None or isinstance(content, Response):
                return content
            value, errors = field.validate(content, {}, loc=("response",))
            return content if errors else value

        @functools.wraps(endpoint)
        async def in_thread(**values: Any) -> Any:
            return await run_in_threadpool(run_and_validate, values)

        return in_thread

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def once(request: Request) -> Response:
            session: Session = request.app.state.sessionmaker()
            session.info[CALENDAR_MODE] = request.app.state.settings.calendar_unpublished
            audit.start_request(
                session,
                method=request.method,
                path=request.url.path,
                operation_id=self.name,
                route_path=self.path_format,
            )
            request.state.session = session
            closed = False
            try:
                if self.share_calendar and request.method not in ("GET", "HEAD", "OPTIONS"):
                    await run_in_threadpool(share_with_writers, session)
                pending: _Pending | None = None
                key = request.headers.get(IDEMPOTENCY_HEADER)
                if request.method == "POST" and key is not None:
                    _validate_key(key)
                    user_id = _token_user_id(request)
                    if user_id is not None:
                        body = await request.body()
                        outcome = await run_in_threadpool(
                            _begin,
                            session,
                            user_id=user_id,
                            key=key,
                            request_hash=_request_hash(request, body),
                            method=request.method,
                            path=request.url.path,
                        )
                        if isinstance(outcome, Response):
                            await run_in_threadpool(session.rollback)
                            return outcome
                        pending = outcome
                response = await handler(request)
                # the end of the request in one trip to a worker thread, the session closed
                if response.status_code < 400:
                    # a refusal at COMMIT (SKD-F6's quota) still runs what follows rollback
                    await run_in_threadpool(_commit_and_close, session, pending, response, request)
                    session.info.pop(_AFTER_ROLLBACK, None)
                else:
                    await run_in_threadpool(_roll_back_and_close, session, None, True)
                closed = True
                return response
            except asyncio.CancelledError:
                # the server cut the request off (shutdown past its grace): its worker
                # thread may still be using the session, which must not be closed under
                # it; the transaction dies uncommitted with the thread or the process
                closed = True
                raise
            except BaseException as exc:
                # a retried attempt leaves no trace
                await run_in_threadpool(_roll_back_and_close, session, exc, not retryable(exc))
                closed = True
                raise
            finally:
                if not closed:
                    await run_in_threadpool(session.close)

        async def route(request: Request) -> Response:
            """One attempt, again after a deadlock or a serialization failure (the
            whole request: its transaction was rolled back), at most `ATTEMPTS` times;
            then 503 `service_busy`, never 500."""
            for attempt in range(1, ATTEMPTS + 1):
                try:
                    return await once(request)
                except (DBAPIError, psycopg.Error) as exc:
                    if not retryable(exc):
                        raise
                    log.warning(
                        "attempt %d of %s %s failed: %s",
                        attempt,
                        request.method,
                        request.url.path,
                        sqlstate(exc),
                    )
                    if attempt == ATTEMPTS:
                        raise ServiceBusy(
                            "the database refused the request's transaction under "
                            f"contention ({sqlstate(exc)}) {ATTEMPTS} times; nothing was "
                            "written — retry with the same Idempotency-Key",
                            headers={"Retry-After": "1"},
                        ) from exc
                    await asyncio.sleep(random.uniform(0.01, 0.04) * 2**attempt)  # noqa: S311
            raise AssertionError("unreachable")  # pragma: no cover

        return route


def _token_user_id(request: Request) -> int | None:
    auth = request.headers.get("authorization") or ""
    scheme, _, token = auth.partition(" ")
    if scheme.lower() != "bearer" or not token:
        return None
    claims = request_claims(request, token.strip())
    return claims.user_id if claims else None
