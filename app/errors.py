"""AppError hierarchy rendered as RFC 9457 `application/problem+json`.

Every refusal carries a stable machine `code`, an HTTP status and, for business rules,
the SPEC rule ID. Validation and rule refusals list *every* failure in `errors`."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any

import psycopg
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.exc import TimeoutError as SATimeoutError
from starlette.exceptions import HTTPException as StarletteHTTPException

from app.kit.requestid import current_request_id

PROBLEM_JSON = "application/problem+json"
log = logging.getLogger("app.errors")


@dataclass(frozen=True)
class Violation:
    """One failed field or rule: `loc` points at the input, `rule` names the SPEC rule.
    Build it from the error class that names the failure (`SomeRule.violation(...)`), so
    its `code` has a class, a page under `/problems/` and a Chinese title."""

    msg: str
    loc: tuple[str | int, ...] = ()
    code: str | None = None
    rule: str | None = None

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"loc": list(self.loc), "msg": self.msg}
        if self.code:
            out["code"] = self.code
            known = ERRORS.get(self.code)
            if known is not None:
                out["msg_zh"] = known.title_zh
        if self.rule:
            out["rule"] = self.rule
        return out


# code -> the class that owns it; every code a client can see is here (GET /problems)
ERRORS: dict[str, type[AppError]] = {}


class AppError(Exception):
    """Base of every refusal. A subclass that sets `code` owns that code: its `status`,
    `title`, Chinese `title_zh`, SPEC `rule` (if the whole refusal rests on one) and its
    docstring are the code's documentation (`/problems/{code}`, and the route's
    `responses=problems(...)`). Define error classes in the module that raises them."""

    status: int = 400
    code: str = "bad_request"
    title: str = "Bad request"
    title_zh: str = "请求有误"
    rule: str | None = None

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "code" not in cls.__dict__:
            return
        if "title" not in cls.__dict__ or "title_zh" not in cls.__dict__:
            raise TypeError(f"{cls.__qualname__} sets code {cls.code!r} without title/title_zh")
        prior = ERRORS.get(cls.code)
        if prior is not None and prior.__qualname__ != cls.__qualname__:
            raise TypeError(f"code {cls.code!r} of {cls.__qualname__} is {prior.__qualname__}'s")
        ERRORS[cls.code] = cls

    def __init__(
        self,
        detail: str,
        errors: list[Violation] | None = None,
        *,
        code: str | None = None,
        rule: str | None = None,
        headers: dict[str, str] | None = None,
        detail_zh: str | None = None,
    ) -> None:
        super().__init__(detail)
        self.detail = detail
        self.errors = errors or []
        self.rule = rule or type(self).rule
        self.headers = headers
        self.detail_zh = detail_zh
        if code:
            self.code = code

    @classmethod
    def violation(cls, msg: str, *loc: str | int) -> Violation:
        """One failure named by this class: `loc` is where in the request (e.g. "body",
        "principal"), the rule is the class's."""
        return Violation(msg=msg, loc=tuple(loc), code=cls.code, rule=cls.rule)

    def body(self) -> dict[str, Any]:
        known = ERRORS.get(self.code)
        zh = self.detail_zh or (known or type(self)).title_zh
        if len(self.errors) > 1 and not self.detail_zh:
            zh = f"{zh}（共 {len(self.errors)} 项问题，见 errors）"
        return problem_body(
            status=self.status,
            code=self.code,
            title=known.title if known else self.title,
            detail=self.detail,
            detail_zh=zh,
            errors=[v.as_dict() for v in self.errors] or None,
            rule=self.rule,
        )


class NotFound(AppError):
    """No such object, or one outside the caller's data scope (never 403: existence does
    not leak)."""

    status, code, title, title_zh = 404, "not_found", "Not found", "对象不存在或不在权限范围内"


class Conflict(AppError):
    status, code, title, title_zh = (
        409,
        "conflict",
        "Conflict with the current state",
        "与当前状态冲突",
    )


class Unprocessable(AppError):
    """A business-rule refusal: 422 listing every failed rule."""

    status, code, title, title_zh = (
        422,
        "rule_violation",
        "Business rule violated",
        "业务规则不允许",
    )


class Unauthorized(AppError):
    """No bearer token was sent."""

    status, code, title, title_zh = 401, "not_authenticated", "Not authenticated", "未登录"


class InvalidToken(Unauthorized):
    """The bearer token is malformed, expired, or its user is unknown or disabled."""

    code, title, title_zh = "invalid_token", "Invalid or expired token", "令牌无效或已过期"


class Forbidden(AppError):
    status, code, title, title_zh = 403, "forbidden", "Forbidden", "无权执行此操作"


class RoleNotAllowed(Forbidden):
    """The caller's role may not call this operation (API.md Roles)."""

    code, title, title_zh = "role_not_allowed", "Role not allowed", "当前角色无权执行此操作"


class ValidationFailed(Unprocessable):
    """The request is malformed: every failed field is listed in `errors` with pydantic's
    `type`."""

    code, title, title_zh = "validation_error", "Request validation failed", "请求参数校验失败"


class AlreadyExists(Conflict):
    """An object with this key is already recorded (a contract number, a code, a
    username); nothing was written."""

    code, title, title_zh = "already_exists", "Already exists", "对象已存在"


class IntegrityConflict(Conflict):
    """The request conflicts with data already recorded (a unique or referential
    constraint the service did not check first); nothing was written."""

    code, title, title_zh = "integrity_conflict", "Conflict with existing data", "与已有数据冲突"


class PayloadTooLarge(AppError):
    """The request body exceeds `MAX_REQUEST_BYTES`."""

    status, code, title, title_zh = 413, "payload_too_large", "Payload too large", "请求体过大"


class UnsupportedMediaType(AppError):
    """The body's media type is not one the operation takes."""

    status, code = 415, "unsupported_media_type"
    title, title_zh = "Unsupported media type", "不支持的内容类型"


class MethodNotAllowed(AppError):
    status, code, title, title_zh = 405, "method_not_allowed", "Method not allowed", "不支持该方法"


class HeadersTooLarge(AppError):
    """The request's header lines together exceed the limit (`MAX_HEADER_BYTES`)."""

    status, code = 431, "request_headers_too_large"
    title, title_zh = "Request headers too large", "请求头过大"


class TooManyRequests(AppError):
    """This client (a user, or an address without a valid token) already has the most
    requests in flight it may; retry after `Retry-After` seconds. One client cannot
    starve the others."""

    status, code = 429, "too_many_requests"
    title, title_zh = "Too many requests in flight", "请求过多，请稍后重试"


class ServiceBusy(AppError):
    """The service is at capacity, or the database did not answer in time (a lock or
    a connection not free); nothing was written. Retry after `Retry-After` seconds,
    with the same `Idempotency-Key`."""

    status, code = 503, "service_busy"
    title, title_zh = "Service busy, retry shortly", "服务繁忙，请稍后重试"


class InternalError(AppError):
    """A fault of the service; quote the `request_id` when reporting it."""

    status, code, title, title_zh = 500, "internal_error", "Internal server error", "服务内部错误"


def refusal(
    violations: list[Violation], detail: str, *, default: type[AppError] = Unprocessable
) -> AppError:
    """The refusal of a request that broke every rule in `violations` (all listed in
    `errors`, in the order checked). Its class, `code` and `type` are the *first*
    violation's, whatever the count: a client tests `code` for the first failure and
    reads `errors` for the rest (docs/api.md Errors)."""
    first = ERRORS.get(violations[0].code or "") if violations else None
    cls = first or default
    error = cls(detail, list(violations))
    rules = {v.rule for v in violations}
    # a top-level rule only when the whole refusal rests on one
    error.rule = rules.pop() if len(rules) == 1 else None
    return error


def problem_body(
    *,
    status: int,
    code: str,
    title: str,
    detail: str,
    detail_zh: str | None = None,
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
    known = ERRORS.get(code)
    if detail_zh or known is not None:
        body["detail_zh"] = detail_zh or (known.title_zh if known else "")
    if rule:
        body["rule"] = rule
    if errors is not None:
        body["errors"] = errors
    rid = current_request_id()
    if rid:
        body["request_id"] = rid
    return body


PROBLEM_SCHEMA_REF = "#/components/schemas/Problem"

# the components the document's problem responses refer to (app/contract.py adds them)
PROBLEM_COMPONENTS: dict[str, Any] = {
    "ProblemViolation": {
        "type": "object",
        "title": "ProblemViolation",
        "description": "One failed field or rule.",
        "required": ["loc", "msg"],
        "properties": {
            "loc": {
                "type": "array",
                "items": {"anyOf": [{"type": "string"}, {"type": "integer"}]},
                "description": "where in the request: `body`, `query`, `path` or `header`, "
                "then the field path",
            },
            "msg": {"type": "string", "description": "what failed, in English"},
            "msg_zh": {"type": "string", "description": "the failure's kind in Chinese"},
            "code": {"type": "string", "description": "stable code; see `/problems/{code}`"},
            "rule": {"type": "string", "description": "SPEC rule ID, e.g. `SKD-F2`"},
            "type": {"type": "string", "description": "pydantic's error type (validation)"},
        },
    },
    "Problem": {
        "type": "object",
        "title": "Problem",
        "description": "RFC 9457 problem details, plus a stable `code`, every failure in "
        "`errors` and the `request_id` to quote when reporting it.",
        "required": ["type", "title", "status", "detail", "code"],
        "properties": {
            "type": {"type": "string", "description": "`/problems/{code}`: a page on the code"},
            "title": {"type": "string"},
            "status": {"type": "integer"},
            "detail": {"type": "string", "description": "what happened, in English"},
            "detail_zh": {"type": "string", "description": "what happened, in Chinese"},
            "code": {
                "type": "string",
                "description": "stable machine code; with several failures, the first one's",
            },
            "rule": {"type": "string", "description": "SPEC rule ID the refusal rests on"},
            "errors": {
                "type": "array",
                "items": {"$ref": "#/components/schemas/ProblemViolation"},
            },
            "request_id": {"type": "string"},
        },
    },
}


def problems(*errors: type[AppError]) -> dict[int | str, dict[str, Any]]:
    """A route's `responses=`: the refusals its own code raises (classes), grouped by
    status as `application/problem+json`. The refusals every route of a kind shares
    (401, 403 for role-gated routes, 422 `validation_error`, idempotency 409, 413) are
    added by app/contract.py."""
    by_status: dict[int, list[type[AppError]]] = {}
    for error in errors:
        owner = ERRORS.get(error.code)
        if owner is None:
            raise TypeError(f"{error.__qualname__} owns no code")
        group = by_status.setdefault(owner.status, [])
        if owner not in group:  # a code once, by the class that owns it
            group.append(owner)
    return {status: problem_response_doc(group) for status, group in sorted(by_status.items())}


def problem_response_doc(errors: list[type[AppError]]) -> dict[str, Any]:
    """One status's response object: the codes as a list linking their pages, the
    Problem schema, an example of the first, and `x-problem-codes` for tools."""
    lines = [
        f"* [`{e.code}`](/problems/{e.code}) {e.title} · {e.title_zh}"
        + (f" ({e.rule})" if e.rule else "")
        for e in errors
    ]
    first = errors[0]
    example = {
        "type": f"/problems/{first.code}",
        "title": first.title,
        "status": first.status,
        "detail": first.title,
        "detail_zh": first.title_zh,
        "code": first.code,
    }
    if first.rule:
        example["rule"] = first.rule
    return {
        "description": "\n".join(lines),
        "content": {PROBLEM_JSON: {"schema": {"$ref": PROBLEM_SCHEMA_REF}, "example": example}},
        "x-problem-codes": [e.code for e in errors],
    }


def problem_response(body: dict[str, Any], headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(body, status_code=body["status"], media_type=PROBLEM_JSON, headers=headers)


def _loc(loc: Any) -> list[str | int]:
    return [p if isinstance(p, int | str) else str(p) for p in loc]


async def _app_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, AppError)
    return problem_response(exc.body(), exc.headers)


# pydantic's error types in Chinese (msg_zh of a validation error); others get a generic one
_VALIDATION_ZH = {
    "missing": "缺少必填字段",
    "extra_forbidden": "不允许的字段",
    "string_too_short": "文本过短",
    "string_too_long": "文本过长",
    "string_pattern_mismatch": "格式不符",
    "string_type": "应为文本",
    "int_type": "应为整数",
    "int_parsing": "应为整数",
    "bool_type": "应为布尔值",
    "bool_parsing": "应为布尔值",
    "date_type": "应为日期（YYYY-MM-DD）",
    "date_parsing": "应为日期（YYYY-MM-DD）",
    "date_from_datetime_parsing": "应为日期（YYYY-MM-DD）",
    "datetime_type": "应为时间（ISO 8601）",
    "datetime_parsing": "应为时间（ISO 8601）",
    "greater_than": "数值过小",
    "greater_than_equal": "数值过小",
    "less_than": "数值过大",
    "less_than_equal": "数值过大",
    "too_short": "条目过少",
    "too_long": "条目过多",
    "literal_error": "取值不在允许范围内",
    "enum": "取值不在允许范围内",
    "list_type": "应为列表",
    "dict_type": "应为对象",
    "model_type": "应为对象",
    "model_attributes_type": "应为对象",
    "json_invalid": "JSON 格式错误",
    "decimal_parsing": "应为金额（元，最多两位小数）",
    "decimal_type": "应为金额（元，最多两位小数）",
    "decimal_max_places": "金额最多两位小数",
    "value_error": "取值无效",
    "assertion_error": "取值无效",
}


async def _validation_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = []
    for err in exc.errors():
        msg = str(err.get("msg", "invalid"))
        # pydantic prefixes errors raised in validators with "Value error, "
        msg = msg.removeprefix("Value error, ")
        kind = str(err.get("type", ""))
        errors.append(
            {
                "loc": _loc(err.get("loc", ())),
                "msg": msg,
                "msg_zh": _VALIDATION_ZH.get(kind, "取值无效"),
                "type": kind,
            }
        )
    fields = ", ".join(".".join(str(p) for p in e["loc"]) for e in errors)
    body = problem_body(
        status=422,
        code=ValidationFailed.code,
        title=ValidationFailed.title,
        detail=f"{len(errors)} invalid field(s): {fields}",
        detail_zh=f"{len(errors)} 个字段校验未通过：{fields}",
        errors=errors,
    )
    return problem_response(body)


_HTTP_ERRORS: dict[int, type[AppError]] = {
    401: Unauthorized,
    403: Forbidden,
    404: NotFound,
    405: MethodNotAllowed,
    409: Conflict,
    413: PayloadTooLarge,
    415: UnsupportedMediaType,
}


async def _http_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    status = exc.status_code
    phrase = HTTPStatus(status).phrase if status in HTTPStatus._value2member_map_ else "Error"
    detail = exc.detail if isinstance(exc.detail, str) else phrase
    known = _HTTP_ERRORS.get(status)
    body = problem_body(
        status=status,
        code=known.code if known else f"http_{status}",
        title=phrase,
        detail=detail,
        detail_zh=known.title_zh if known else None,
    )
    return problem_response(body, getattr(exc, "headers", None))


async def _integrity_error(_: Request, exc: Exception) -> JSONResponse:
    """Safety net: a constraint the services did not check first is still a conflict
    with existing data, never a 500. Logged, because a service should have said why."""
    log.warning("integrity error reached the boundary", exc_info=exc)
    return problem_response(
        IntegrityConflict(
            "the request conflicts with data already recorded (a unique or referential "
            "constraint); nothing was written"
        ).body()
    )


async def _busy(_: Request, exc: Exception) -> JSONResponse:
    """No pooled connection came free in time (`DB_POOL_TIMEOUT_SECONDS`), or the
    database gave up on a lock: the request wrote nothing and may be retried."""
    log.warning("busy: %s", exc)
    error = ServiceBusy(
        "the database did not answer in time (no free connection or a lock not granted); "
        "nothing was written — retry with the same Idempotency-Key"
    )
    return problem_response(error.body(), {"Retry-After": "1"})


# lock not granted in LOCK_TIMEOUT, statement cancelled, deadlock, serialization failure
BUSY_SQLSTATES = frozenset({"55P03", "57014", "40P01", "40001"})


async def _database_error(request: Request, exc: Exception) -> JSONResponse:
    """A database error the request boundary did not absorb: contention (a lock not
    granted in time, a deadlock or serialization failure left after the retries) is 503
    with `Retry-After`; anything else is a fault (500)."""
    orig = getattr(exc, "orig", None)
    state = getattr(exc, "sqlstate", None) or getattr(orig, "sqlstate", None)
    if state in BUSY_SQLSTATES:
        return await _busy(request, exc)
    return await _unhandled(request, exc)


async def _unhandled(_: Request, exc: Exception) -> JSONResponse:
    log.exception("unhandled error", exc_info=exc)
    return problem_response(
        InternalError(
            "The server failed to handle this request; quote the request_id when reporting it."
        ).body()
    )


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(AppError, _app_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(IntegrityError, _integrity_error)
    app.add_exception_handler(SATimeoutError, _busy)
    app.add_exception_handler(DBAPIError, _database_error)
    app.add_exception_handler(psycopg.Error, _database_error)
    app.add_exception_handler(Exception, _unhandled)
