"""The request boundary: one session and one transaction per request, plus
`Idempotency-Key` handling for POSTs (SPEC L-4, API.md Conventions).

A successful response commits the transaction together with the stored response of its
idempotency key; any error rolls everything back, so a refused request writes nothing —
except what the request registered with `after_rollback`: the record of a refused
filing (SKD-A1) is written after the rollback, on the request's own connection, in a
transaction of its own.
Two concurrent requests with one key serialise on the key's unique index: the second
waits for the first to commit and then replays its response."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any

from fastapi import Request, Response
from fastapi.routing import APIRoute
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from app.auth.tokens import decode_token
from app.calendar.service import MODE_KEY as CALENDAR_MODE
from app.calendar.service import share_with_writers
from app.errors import Conflict, Unprocessable, Violation
from app.models import IdempotencyRecord, User

log = logging.getLogger("app.idempotency")
IDEMPOTENCY_HEADER = "Idempotency-Key"
REPLAY_HEADER = "Idempotent-Replayed"
MAX_KEY_LENGTH = 255
# session.info: the steps to run after the request is rolled back
_AFTER_ROLLBACK = "uow.after_rollback"

AfterRollback = Callable[[Session, BaseException | None], None]


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
    h.update(_without_boundary(media_type, params, body))
    return h.hexdigest()


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


def _replay(record: IdempotencyRecord) -> Response:
    return Response(
        content=record.response_body.encode(),
        status_code=record.status_code,
        media_type=record.content_type,
        headers={REPLAY_HEADER: "true"},
    )


def _check(record: IdempotencyRecord, request_hash: str) -> Response:
    if record.request_hash != request_hash:
        raise Conflict(
            "this Idempotency-Key was already used with a different request",
            [
                Violation(
                    loc=("header", IDEMPOTENCY_HEADER),
                    msg="key reused with another body",
                    code="idempotency_key_reused",
                )
            ],
            code="idempotency_key_reused",
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
    if session.get(User, user_id) is None:
        return None  # unknown user: the endpoint's authentication answers 401
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
            raise Conflict(
                "a request with this Idempotency-Key is in progress; retry",
                code="idempotency_key_in_progress",
            ) from None
        return _check(existing, request_hash)
    return _Pending(record)


def _finish(session: Session, pending: _Pending | None, response: Response) -> None:
    if pending is not None:
        pending.record.status_code = response.status_code
        pending.record.content_type = response.media_type or response.headers.get(
            "content-type", "application/json"
        )
        pending.record.response_body = bytes(getattr(response, "body", b"")).decode("utf-8")
    session.commit()


def _validate_key(key: str) -> None:
    if not key or len(key) > MAX_KEY_LENGTH or not key.isprintable():
        raise Unprocessable(
            f"{IDEMPOTENCY_HEADER} must be 1–{MAX_KEY_LENGTH} printable characters",
            [Violation(loc=("header", IDEMPOTENCY_HEADER), msg="invalid idempotency key")],
            code="validation_error",
        )


class TransactionalRoute(APIRoute):
    """APIRoute whose handler owns the session, the transaction and idempotency. A write
    request first takes the working calendar's shared lock (`share_calendar`), so that a
    calendar publication never runs beside a write that computes a deadline (M-3)."""

    share_calendar = True

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def route(request: Request) -> Response:
            session: Session = request.app.state.sessionmaker()
            session.info[CALENDAR_MODE] = request.app.state.settings.calendar_unpublished
            request.state.session = session
            try:
                if self.share_calendar and request.method not in ("GET", "HEAD", "OPTIONS"):
                    share_with_writers(session)
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
                if response.status_code < 400:
                    await run_in_threadpool(_finish, session, pending, response)
                    session.info.pop(_AFTER_ROLLBACK, None)
                else:
                    await run_in_threadpool(session.rollback)
                    await run_in_threadpool(_run_after_rollback, session, None)
                return response
            except BaseException as exc:
                await run_in_threadpool(session.rollback)
                await run_in_threadpool(_run_after_rollback, session, exc)
                raise
            finally:
                await run_in_threadpool(session.close)

        return route


def _token_user_id(request: Request) -> int | None:
    auth = request.headers.get("authorization") or ""
    scheme, _, token = auth.partition(" ")
    if scheme.lower() != "bearer" or not token:
        return None
    claims = decode_token(request.app.state.settings, token.strip())
    return claims.user_id if claims else None
