"""AppError hierarchy rendered as RFC 9457 `application/problem+json`.

Every refusal carries a stable machine `code`, an HTTP status and, for business rules,
the SPEC rule ID. Validation and rule refusals list *every* failure in `errors`."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import IntegrityError
from starlette.exceptions import HTTPException as StarletteHTTPException

from app.kit.requestid import current_request_id

PROBLEM_JSON = "application/problem+json"
log = logging.getLogger("app.errors")


@dataclass(frozen=True)
class Violation:
    """One failed field or rule: `loc` points at the input, `rule` names the SPEC rule."""

    msg: str
    loc: tuple[str | int, ...] = ()
    code: str | None = None
    rule: str | None = None

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"loc": list(self.loc), "msg": self.msg}
        if self.code:
            out["code"] = self.code
        if self.rule:
            out["rule"] = self.rule
        return out


class AppError(Exception):
    """Base of every refusal. Subclasses fix `status`, `code` and `title`; an instance may
    narrow `code` (e.g. ``filing_deadline_passed``) and name the SPEC `rule`."""

    status: int = 400
    code: str = "bad_request"
    title: str = "Bad request"

    def __init__(
        self,
        detail: str,
        errors: list[Violation] | None = None,
        *,
        code: str | None = None,
        rule: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(detail)
        self.detail = detail
        self.errors = errors or []
        self.rule = rule
        self.headers = headers
        if code:
            self.code = code

    def body(self) -> dict[str, Any]:
        return problem_body(
            status=self.status,
            code=self.code,
            title=self.title,
            detail=self.detail,
            errors=[v.as_dict() for v in self.errors] or None,
            rule=self.rule,
        )


class NotFound(AppError):
    status, code, title = 404, "not_found", "Not found"


class Conflict(AppError):
    status, code, title = 409, "conflict", "Conflict with the current state"


class Unprocessable(AppError):
    """A business-rule refusal: 422 listing every failed rule."""

    status, code, title = 422, "rule_violation", "Business rule violated"


class Unauthorized(AppError):
    status, code, title = 401, "not_authenticated", "Not authenticated"


class Forbidden(AppError):
    status, code, title = 403, "forbidden", "Forbidden"


def problem_body(
    *,
    status: int,
    code: str,
    title: str,
    detail: str,
    errors: list[dict[str, Any]] | None = None,
    rule: str | None = None,
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "type": f"/problems/{code}",
        "title": title,
        "status": status,
        "detail": detail,
        "code": code,
    }
    if rule:
        body["rule"] = rule
    if errors is not None:
        body["errors"] = errors
    rid = current_request_id()
    if rid:
        body["request_id"] = rid
    return body


_VIOLATION_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["loc", "msg"],
    "properties": {
        "loc": {"type": "array", "items": {"anyOf": [{"type": "string"}, {"type": "integer"}]}},
        "msg": {"type": "string"},
        "code": {"type": "string"},
        "rule": {"type": "string", "description": "SPEC rule ID"},
    },
}


def problem_schema(codes: list[str]) -> dict[str, Any]:
    """JSON Schema of a problem body (RFC 9457); `codes` are the route's own codes (the
    request boundary may answer others, e.g. `idempotency_key_in_progress`)."""
    return {
        "type": "object",
        "required": ["type", "title", "status", "detail", "code"],
        "properties": {
            "type": {"type": "string"},
            "title": {"type": "string"},
            "status": {"type": "integer"},
            "detail": {"type": "string"},
            "code": {"type": "string", "examples": codes},
            "rule": {"type": "string", "description": "SPEC rule ID"},
            "errors": {"type": "array", "items": _VIOLATION_SCHEMA},
            "request_id": {"type": "string"},
        },
    }


def problem_responses(
    *errors: type[AppError] | tuple[type[AppError], str], validation: bool = False
) -> dict[int | str, dict[str, Any]]:
    """A route's `responses=`: each status its refusals answer with, as
    `application/problem+json` naming their stable codes. An error is its class, or
    (class, code) where the raiser narrows the class's code. `validation` adds the
    request validation refusal (422 `validation_error`, every failed field in `errors`)."""
    by_status: dict[int, dict[str, str]] = {}
    for item in errors:
        error, code = item if isinstance(item, tuple) else (item, item.code)
        by_status.setdefault(error.status, {})[code] = error.title
    if validation:
        by_status.setdefault(422, {})["validation_error"] = "Request validation failed"
    return {
        status: {
            "description": "; ".join(f"`{code}` {title}" for code, title in codes.items()),
            "content": {PROBLEM_JSON: {"schema": problem_schema(list(codes))}},
        }
        for status, codes in sorted(by_status.items())
    }


def problem_response(body: dict[str, Any], headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(body, status_code=body["status"], media_type=PROBLEM_JSON, headers=headers)


def _loc(loc: Any) -> list[str | int]:
    return [p if isinstance(p, int | str) else str(p) for p in loc]


async def _app_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, AppError)
    return problem_response(exc.body(), exc.headers)


async def _validation_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = []
    for err in exc.errors():
        msg = str(err.get("msg", "invalid"))
        # pydantic prefixes errors raised in validators with "Value error, "
        msg = msg.removeprefix("Value error, ")
        errors.append({"loc": _loc(err.get("loc", ())), "msg": msg, "type": err.get("type")})
    fields = ", ".join(".".join(str(p) for p in e["loc"]) for e in errors)
    body = problem_body(
        status=422,
        code="validation_error",
        title="Request validation failed",
        detail=f"{len(errors)} invalid field(s): {fields}",
        errors=errors,
    )
    return problem_response(body)


_HTTP_CODES = {
    401: "not_authenticated",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
}


async def _http_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    status = exc.status_code
    phrase = HTTPStatus(status).phrase if status in HTTPStatus._value2member_map_ else "Error"
    detail = exc.detail if isinstance(exc.detail, str) else phrase
    body = problem_body(
        status=status, code=_HTTP_CODES.get(status, f"http_{status}"), title=phrase, detail=detail
    )
    return problem_response(body, getattr(exc, "headers", None))


async def _integrity_error(_: Request, exc: Exception) -> JSONResponse:
    """Safety net: a constraint the services did not check first is still a conflict
    with existing data, never a 500. Logged, because a service should have said why."""
    log.warning("integrity error reached the boundary", exc_info=exc)
    body = problem_body(
        status=409,
        code="integrity_conflict",
        title="Conflict with existing data",
        detail="the request conflicts with data already recorded (a unique or referential "
        "constraint); nothing was written",
    )
    return problem_response(body)


async def _unhandled(_: Request, exc: Exception) -> JSONResponse:
    log.exception("unhandled error", exc_info=exc)
    body = problem_body(
        status=500,
        code="internal_error",
        title="Internal server error",
        detail="The server failed to handle this request; quote the request_id when reporting it.",
    )
    return problem_response(body)


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(AppError, _app_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(IntegrityError, _integrity_error)
    app.add_exception_handler(Exception, _unhandled)
