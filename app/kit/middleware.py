"""ASGI middleware: request id + JSON access log, and the request-size limit (413)."""

from __future__ import annotations

import asyncio
import json
import logging
import re
import time
import uuid
from typing import Any
from urllib.parse import unquote_to_bytes

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.errors import HeadersTooLarge, ValidationFailed, Violation, problem_body
from app.kit.requestid import (
    current_user_id,
    reset_request_id,
    reset_request_user,
    set_request_id,
    start_request_user,
)
from app.kit.timing import reset_request_cost, server_timing, start_request_cost

access_log = logging.getLogger("app.access")
error_log = logging.getLogger("app.errors")


async def _send_json(
    send: Send, status: int, body: dict[str, Any], extra: dict[str, str] | None = None
) -> None:
    payload = json.dumps(body, ensure_ascii=False).encode()
    headers: list[Any] = [
        (b"content-type", b"application/problem+json"),
        (b"content-length", str(len(payload)).encode()),
        *((k.encode("latin-1"), v.encode("latin-1")) for k, v in (extra or {}).items()),
    ]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": payload})


class RequestContextMiddleware:
    """Gives every request an id (client's `X-Request-ID` if sane), echoes it back and
    writes one access-log line with method, path, status, duration and the authenticated
    user id (a fresh holder per request, filled in by the principal dependency)."""

    def __init__(self, app: ASGIApp, *, server_timing: bool = False) -> None:
        self.app = app
        self.server_timing = server_timing

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        incoming = dict(scope.get("headers") or []).get(b"x-request-id", b"").decode("latin-1")
        rid = incoming if 0 < len(incoming) <= 64 and incoming.isprintable() else uuid.uuid4().hex
        token = set_request_id(rid)
        user_token = start_request_user()
        cost, cost_token = start_request_cost()
        started = time.perf_counter()
        status = 500
        response_started = False

        async def send_wrapper(message: Message) -> None:
            nonlocal status, response_started
            if message["type"] == "http.response.start":
                response_started = True
                status = message["status"]
                headers = list(message.get("headers", []))
                headers.append((b"x-request-id", rid.encode("latin-1")))
                if self.server_timing:
                    timing = server_timing(cost, time.perf_counter() - started)
                    headers.append((b"server-timing", timing.encode("latin-1")))
                message["headers"] = headers
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        except asyncio.CancelledError:
            # cut off by the server (shutdown past its grace): no answer is sent, so the
            # access line says 499 (the request ended without one), not a server error
            if not response_started:
                status = 499
            raise
        except Exception:
            # Unhandled error: answer 500 problem+json here, where the request id is known.
            error_log.exception("unhandled error")
            if response_started:
                raise
            body = problem_body(
                status=500,
                code="internal_error",
                title="Internal server error",
                detail="The server failed to handle this request; "
                "quote the request_id when reporting it.",
            )
            await _send_json(send_wrapper, 500, body)
        finally:
            access_log.info(
                "request",
                extra={
                    "method": scope["method"],
                    "path": scope["path"],
                    "status": status,
                    "duration_ms": round((time.perf_counter() - started) * 1000, 2),
                    "user_id": current_user_id(),
                    "sql_statements": cost.statements,
                    "sql_ms": round(cost.sql_seconds * 1000, 2),
                },
            )
            reset_request_cost(cost_token)
            reset_request_user(user_token)
            reset_request_id(token)


class SafeTextMiddleware:
    """Refuses a path or query string that holds NUL characters or bytes that are not
    UTF-8 (422 problem+json): no database can store or compare such text."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            raw_path = scope.get("raw_path") or scope["path"].encode("utf-8", "surrogateescape")
            for part, raw in (("path", raw_path), ("query", scope.get("query_string", b""))):
                text = unquote_to_bytes(raw.replace(b"+", b" "))
                try:
                    text.decode("utf-8")
                    bad = b"\x00" in text
                except UnicodeDecodeError:
                    bad = True
                if bad:
                    body = problem_body(
                        status=422,
                        code="validation_error",
                        title="Request validation failed",
                        detail=f"the {part} holds NUL characters or bytes that are not UTF-8",
                        errors=[{"loc": [part], "msg": "invalid characters"}],
                    )
                    await _send_json(send, 422, body)
                    return
        await self.app(scope, receive, send)


class BodySizeLimitMiddleware:
    """Refuses bodies over `max_bytes` with 413 problem+json, by Content-Length up front
    or by counting a streamed body."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        length = dict(scope.get("headers") or []).get(b"content-length")
        if length is not None and length.isdigit() and int(length) > self.max_bytes:
            await self._reject(send)
            return
        seen = 0
        rejected = False

        async def limited_receive() -> Message:
            nonlocal seen, rejected
            message = await receive()
            if message["type"] == "http.request" and not rejected:
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    rejected = True
                    await self._reject(send)
                    return {"type": "http.disconnect"}
            return message

        async def guarded_send(message: Message) -> None:
            if not rejected:  # once refused, whatever the app answers is dropped
                await send(message)

        try:
            await self.app(scope, limited_receive, guarded_send)
        except Exception:
            if not rejected:
                raise

    async def _reject(self, send: Send) -> None:
        body = problem_body(
            status=413,
            code="payload_too_large",
            title="Payload too large",
            detail=f"the request body exceeds {self.max_bytes} bytes",
        )
        await _send_json(send, 413, body)


class HeaderSizeLimitMiddleware:
    """Refuses a request whose header lines together exceed `max_bytes` with 431
    problem+json (an 8 MB header must not reach the application)."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            size = sum(len(k) + len(v) + 4 for k, v in scope.get("headers") or [])
            if size > self.max_bytes:
                error = HeadersTooLarge(
                    f"the request's headers take {size} bytes; at most {self.max_bytes}"
                )
                await _send_json(send, error.status, error.body())
                return
        await self.app(scope, receive, send)


_JSON_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"', re.DOTALL)
_NOT_BRACKET = re.compile(rb"[^\[\]{}]+")


def json_depth(body: bytes) -> int:
    """How deeply the arrays and objects of a JSON text nest (strings skipped); the
    scan runs in the regex engine, so a 10,000-item batch costs milliseconds."""
    brackets = _NOT_BRACKET.sub(b"", _JSON_STRING.sub(b"", body))
    depth = deepest = 0
    for byte in brackets:
        if byte in b"[{":
            depth += 1
            deepest = max(deepest, depth)
        else:
            depth -= 1
    return deepest


class JsonDepthLimitMiddleware:
    """Refuses a JSON body nested deeper than `max_depth` (422 `validation_error`)
    before any parser recurses into it. The body is read here and handed on unchanged."""

    def __init__(self, app: ASGIApp, max_depth: int) -> None:
        self.app = app
        self.max_depth = max_depth

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in ("POST", "PUT", "PATCH"):
            await self.app(scope, receive, send)
            return
        media = dict(scope.get("headers") or []).get(b"content-type", b"").split(b";")[0]
        media = media.strip().lower()
        if not (media == b"application/json" or media.endswith(b"+json")):
            await self.app(scope, receive, send)
            return
        chunks: list[bytes] = []
        while True:
            message = await receive()
            if message["type"] != "http.request":  # the client went away
                await self.app(scope, _replay([message], receive), send)
                return
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        depth = json_depth(body) if body.count(b"[") + body.count(b"{") > self.max_depth else 0
        if depth > self.max_depth:
            error = ValidationFailed(
                f"the JSON body nests {depth} levels deep; at most {self.max_depth}",
                [Violation(loc=("body",), msg=f"nested deeper than {self.max_depth} levels")],
            )
            await _send_json(send, error.status, error.body())
            return
        await self.app(scope, _replay([{"type": "http.request", "body": body}], receive), send)


def _replay(messages: list[Message], then: Receive) -> Receive:
    """`messages` first, then the connection's own `receive` (which waits for the
    client's disconnect, as a streaming response expects)."""
    pending = list(messages)

    async def receive() -> Message:
        if pending:
            return pending.pop(0)
        return await then()

    return receive
