"""The OpenAPI document as a contract a generated client can trust.

FastAPI writes the paths and schemas from the routes; this module finishes the document:

* `operationId` is the endpoint function's name (`file_loan`), unique across the API;
* every operation documents, as `application/problem+json` with the shared `Problem`
  schema, the refusals it can answer: its own (declared on the route with
  `responses=problems(...)`) and those its kind shares — 401 for authenticated routes,
  403 `role_not_allowed` for role-gated ones, 422 `validation_error` where it takes
  input, 413 for bodies, and on every POST the `Idempotency-Key` header, its 409s and the
  `Idempotent-Replayed` response header;
* every API operation may answer 429 `too_many_requests` and 503 `service_busy` with
  `Retry-After` (app/kit/admission.py, database contention);
* 201 answers document `Location`;
* FastAPI's `HTTPValidationError` (a body this service never sends) is gone.

Each problem response carries `x-problem-codes`, the codes it may answer; the test
suite checks every problem response the service gives against them."""

from __future__ import annotations

import copy
import re
from collections.abc import Callable, Iterator
from datetime import date, timedelta
from typing import Any

from fastapi import FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.openapi.utils import get_openapi
from fastapi.routing import APIRoute, iter_route_contexts

from app.errors import (
    ERRORS,
    PROBLEM_COMPONENTS,
    AppError,
    HeadersTooLarge,
    IntegrityConflict,
    InvalidToken,
    PayloadTooLarge,
    RoleNotAllowed,
    ServiceBusy,
    TooManyRequests,
    Unauthorized,
    ValidationFailed,
    problem_response_doc,
)
from app.kit.pagination import InvalidCursor, page_params

IDEMPOTENCY_PARAMETER: dict[str, Any] = {
    "name": "Idempotency-Key",
    "in": "header",
    "required": False,
    "description": "幂等键 — 1–255 printable characters chosen by the client, one per "
    "business operation (e.g. a UUID). A retry with the same key and the same request "
    "returns the first answer (`Idempotent-Replayed: true`) and writes nothing; the same "
    "key with another request is 409 `idempotency_key_reused`. The request body is "
    "compared as canonical JSON (key order and spacing do not matter). Keys are kept for "
    "`IDEMPOTENCY_RETENTION_DAYS` (30 by default).",
    "schema": {"type": "string", "minLength": 1, "maxLength": 255},
}
REPLAYED_HEADER: dict[str, Any] = {
    "description": "`true` when this is the stored answer to an earlier request with the "
    "same `Idempotency-Key`",
    "schema": {"type": "string", "enum": ["true"]},
}
RETRY_AFTER_HEADER: dict[str, Any] = {
    "description": "seconds to wait before retrying (with the same `Idempotency-Key`)",
    "schema": {"type": "string"},
}
LOCATION_HEADER: dict[str, Any] = {
    "description": "the URL of the created object",
    "schema": {"type": "string"},
}

# --- tags: who does what, at which step (Swagger's filter finds 代偿, 备案, 初审 …) -----
AUTH = "登录与用户 Log in · users"
REFERENCE = "基础数据 Reference data · regions, banks, funds, LPR"
AGREEMENTS = "合作协议 Agreements · bank × programme"
ENTERPRISES = "企业与入库 Enterprises · SKD library"
FILING = "银行·贷款备案 Bank · loan filing"
SERVICING = "银行·贷后与逾期 Bank · repayments, arrears, status files"
CLAIM_BANK = "银行·代偿申请 Bank · compensation claims, documents, recoveries"
CITY = "代偿·市县初审 Claims · city review (SKD)"
PROVINCE = "代偿·省级复审 Claims · province review (SKD)"
PAYMENT = "代偿·拨付与归垫 Claims · payment and reimbursement (fund managers)"
XB_REVIEW = "代偿·信保尽调与评审 Claims · XB due diligence and committee"
CLAIM_READ = "代偿·查询与跟踪 Claims · lists, deadlines, exposure"
LEDGER = "台账 Ledger · journal, balances, export, verification"
REPORTS = "监管报告 Regulators' reports · quarterly, monthly, annual, evaluations"
CALENDAR = "工作日历 Working-day calendar"
AUDIT = "审计日志 Audit trail · who changed what"
OPERATIONS = "运行与错误代码 Operations · health, error codes"

TAGS: list[dict[str, str]] = [
    {"name": AUTH, "description": "log in (OAuth2 password flow), the caller, users and roles"},
    {
        "name": REFERENCE,
        "description": "admin: GB/T 2260 regions, partner banks, funds and "
        "their contributors and capital, LPR (SPEC §2)",
    },
    {
        "name": AGREEMENTS,
        "description": "cooperation agreements and their status: suspend, resume, terminate",
    },
    {
        "name": ENTERPRISES,
        "description": "enterprises and risk flags; city reviewers admit to "
        "and remove from the SKD library (SKD-E1)",
    },
    {
        "name": FILING,
        "description": "a partner bank files disbursed loans, one or a batch; "
        "refused filings; annual quotas (SKD-F1–F6, XB-F2)",
    },
    {
        "name": SERVICING,
        "description": "repayments, renewals, the bank's arrears reports, the "
        "watch list and buckets, the monthly status files (M-6, XB-Rep)",
    },
    {
        "name": CLAIM_BANK,
        "description": "申请 apply for compensation, upload documents, "
        "resubmit a returned claim, report recoveries (追偿)",
    },
    {
        "name": CITY,
        "description": "市县初审: the city reviewer checks an SKD claim, approves, "
        "rejects or returns it for correction (SKD-C1)",
    },
    {
        "name": PROVINCE,
        "description": "省级复审: the province reviewer decides under the 3 % cap (SKD-Q1)",
    },
    {
        "name": PAYMENT,
        "description": "市县拨付 city payment, 省级归垫 province reimbursement, "
        "XB payment, receipts, abandonment and fraud refunds",
    },
    {
        "name": XB_REVIEW,
        "description": "信保基金: the fund manager's due-diligence review "
        "(XB-N findings) and the committee's decision; resuming new business (XB-Q2)",
    },
    {
        "name": CLAIM_READ,
        "description": "claims with their stage and who acts next "
        "(`awaiting=me`), steps past their deadline, a bank's cap and exposure",
    },
    {
        "name": LEDGER,
        "description": "double-entry journal, balances, trial balance, "
        "Beancount export, hash-chain verification (SPEC §5)",
    },
    {
        "name": REPORTS,
        "description": "quarterly, monthly and annual reports in JSON, CSV, XLSX "
        "and a page with charts; stored runs; quarter-end evaluations (SKD-Q3)",
    },
    {
        "name": CALENDAR,
        "description": "the PRC working-day calendar every deadline is counted on (M-3)",
    },
    {
        "name": AUDIT,
        "description": "regulators and admins: every change and state-changing request, "
        "with who, when, the request id, before and after; append-only",
    },
    {"name": OPERATIONS, "description": "liveness, readiness, and the page of every error code"},
]

# (method or "*", path pattern) -> tags; the first match wins
_TAG_RULES: list[tuple[str, str, tuple[str, ...]]] = [
    ("*", r"/api/v1/(auth|users)\b", (AUTH,)),
    ("*", r"/api/v1/agreements\b", (AGREEMENTS,)),
    ("POST", r"/api/v1/funds/[^/]+/resume$", (XB_REVIEW,)),
    ("*", r"/api/v1/(regions|banks/[^/]+$|banks$|funds|lpr-rates)", (REFERENCE,)),
    ("*", r"/api/v1/banks/[^/]+/exposure$", (CLAIM_READ,)),
    ("*", r"/api/v1/enterprises\b", (ENTERPRISES,)),
    ("*", r"/api/v1/loans/(watch|buckets)$", (SERVICING,)),
    ("POST", r"/api/v1/loans/[^/]+/(repayments|renewal|delinquency)$", (SERVICING,)),
    ("*", r"/api/v1/status-reports\b", (SERVICING,)),
    ("*", r"/api/v1/(loans|programs)\b", (FILING,)),
    ("POST", r"/api/v1/claims$", (CLAIM_BANK,)),
    ("POST", r"/api/v1/claims/[^/]+/(documents|resubmission|recoveries)$", (CLAIM_BANK,)),
    ("POST", r"/api/v1/claims/[^/]+/city-review$", (CITY,)),
    ("POST", r"/api/v1/claims/[^/]+/province-review$", (PROVINCE,)),
    ("POST", r"/api/v1/claims/[^/]+/return$", (CITY, PROVINCE, XB_REVIEW)),
    ("POST", r"/api/v1/claims/[^/]+/(manager-review|committee-decision)$", (XB_REVIEW,)),
    (
        "POST",
        r"/api/v1/claims/[^/]+/(city-payment|province-reimbursement|payment|receipts"
        r"|abandonment|fraud-refund)$",
        (PAYMENT,),
    ),
    ("*", r"/api/v1/claims\b", (CLAIM_READ,)),
    ("*", r"/api/v1/ledger\b", (LEDGER,)),
    ("*", r"/api/v1/(reports|evaluations)\b", (REPORTS,)),
    ("*", r"/api/v1/calendar\b", (CALENDAR,)),
    ("*", r"/api/v1/audit\b", (AUDIT,)),
    ("*", r"/(healthz|readyz|problems)\b", (OPERATIONS,)),
]


def tags_for(method: str, path: str, own: list[str]) -> list[str]:
    """The tags of an operation: a route's own `tags=` are replaced, so that one map of
    who does what keeps the console's grouping in one place (a route outside the map
    keeps its own; tests/test_contract.py checks every tag is a declared one)."""
    for rule_method, pattern, tags in _TAG_RULES:
        if rule_method in ("*", method.upper()) and re.match(pattern, path):
            return list(tags)
    return own


# The idempotency refusals live with the request boundary (app/kit/uow.py); imported
# late to keep this module free of the database layer at import time.
_IDEMPOTENCY_CODES = ("idempotency_key_reused", "idempotency_key_in_progress")


def _calls(dependant: Dependant) -> Iterator[Callable[..., Any]]:
    for dep in dependant.dependencies:
        if dep.call is not None:
            yield dep.call
        yield from _calls(dep)


def _authenticated(route: Any) -> bool:
    from app.auth.principal import current_principal

    return any(call is current_principal for call in _calls(route.dependant))


def _role_gated(route: Any) -> bool:
    return any(
        getattr(call, "__qualname__", "").startswith("require_")
        or getattr(call, "role_gate", False)
        for call in _calls(route.dependant)
    )


def _paginated(route: Any) -> bool:
    return any(call is page_params for call in _calls(route.dependant))


def _takes_input(operation: dict[str, Any]) -> bool:
    return bool(operation.get("parameters") or operation.get("requestBody"))


def shared_refusals(route: Any, method: str, path: str, operation: dict[str, Any]) -> list[str]:
    """The codes a route answers by its kind, not by its own code."""
    import app.kit.uow  # noqa: F401 - registers the idempotency refusals

    codes: list[str] = []
    if _authenticated(route):
        codes += [Unauthorized.code, InvalidToken.code]
    if _role_gated(route):
        codes.append(RoleNotAllowed.code)
    if _takes_input(operation) or method == "post":
        codes.append(ValidationFailed.code)
    if _paginated(route):
        codes.append(InvalidCursor.code)
    if operation.get("requestBody"):
        codes.append(PayloadTooLarge.code)
    if method != "get":  # the safety net of a write: a constraint not checked first
        codes.append(IntegrityConflict.code)
    if method == "post":
        codes += _IDEMPOTENCY_CODES
    if path.startswith("/api/"):  # app/kit/admission.py and the database's contention
        codes += [HeadersTooLarge.code, TooManyRequests.code, ServiceBusy.code]
    return codes


def _merge(operation: dict[str, Any], codes: list[str]) -> None:
    responses: dict[str, Any] = operation.setdefault("responses", {})
    by_status: dict[int, list[type[AppError]]] = {}
    for status, response in responses.items():
        for code in response.get("x-problem-codes", []):
            by_status.setdefault(int(status), []).append(ERRORS[code])
    for code in codes:
        error = ERRORS[code]
        group = by_status.setdefault(error.status, [])
        if error not in group:
            group.append(error)
    for status_code, group in by_status.items():
        doc = problem_response_doc(group)
        kept = responses.get(str(status_code), {}).get("headers")
        if kept:  # a route's own headers on a refusal (e.g. the current ETag on a 412)
            doc["headers"] = kept
        responses[str(status_code)] = doc


def _finish_operation(route: Any, method: str, path: str, operation: dict[str, Any]) -> None:
    # FastAPI's own 422 describes a body this service never sends
    default_422 = operation.get("responses", {}).get("422", {})
    if "x-problem-codes" not in default_422:
        operation.get("responses", {}).pop("422", None)
    _merge(operation, shared_refusals(route, method, path, operation))
    responses = operation["responses"]
    if method == "post":
        params = operation.setdefault("parameters", [])
        if not any(p.get("name") == "Idempotency-Key" for p in params):
            params.append(IDEMPOTENCY_PARAMETER)
        for status, response in responses.items():
            if status.startswith("2"):
                response.setdefault("headers", {})["Idempotent-Replayed"] = REPLAYED_HEADER
    if "201" in responses:
        responses["201"].setdefault("headers", {}).setdefault("Location", LOCATION_HEADER)
    for status in ("429", "503"):
        if status in responses:
            responses[status]["headers"] = {"Retry-After": RETRY_AFTER_HEADER}
    operation["responses"] = dict(sorted(responses.items()))


def build_openapi(app: FastAPI) -> dict[str, Any]:
    schema = get_openapi(
        title=app.title,
        version=app.version,
        openapi_version=app.openapi_version,
        description=app.description,
        routes=app.routes,
        tags=app.openapi_tags,
        servers=app.servers,
    )
    seen: dict[str, str] = {}
    for route in iter_route_contexts(app.routes):
        if not isinstance(route.original_route, APIRoute) or not route.include_in_schema:
            continue
        path = str(route.path_format)
        for method in route.methods or ():
            operation = schema["paths"][path][method.lower()]
            op_id = operation["operationId"]
            where = f"{method} {path}"
            if op_id in seen:
                raise RuntimeError(f"operationId {op_id} of {where} is also {seen[op_id]}'s")
            seen[op_id] = where
            _finish_operation(route, method.lower(), path, operation)
            operation["tags"] = tags_for(method, path, operation.get("tags", []))
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    for name in ("HTTPValidationError", "ValidationError"):
        components.pop(name, None)
    components.update(PROBLEM_COMPONENTS)
    return schema


# The business date the request examples are written for: a loan disbursed that day is
# within its filing window (SKD-F2 5, XB-F2 10 working days) on that day.
EXAMPLES_DATE = date(2026, 12, 1)
_ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def _moved(value: Any, days: int) -> Any:
    """`value` with every ISO date in it `days` later."""
    if isinstance(value, str) and _ISO_DATE.match(value):
        try:
            return (date.fromisoformat(value) + timedelta(days=days)).isoformat()
        except ValueError:
            return value
    if isinstance(value, dict):
        return {k: _moved(v, days) for k, v in value.items()}
    if isinstance(value, list):
        return [_moved(v, days) for v in value]
    return value


def _files_a_loan(example: Any) -> bool:
    """A filing, a renewal or a batch of filings: it carries a `disbursed_on`."""
    if isinstance(example, dict):
        return "disbursed_on" in example or any(_files_a_loan(v) for v in example.values())
    if isinstance(example, list):
        return any(_files_a_loan(v) for v in example)
    return False


def examples_dated(document: dict[str, Any], today: date) -> dict[str, Any]:
    """The document with its loan filings' examples moved to `today`: every date in an
    example that files a loan (`disbursed_on`, `maturity_on`, a schedule's `due_on`, a
    consent letter's `dated_on`) moved by the days since EXAMPLES_DATE, so that what
    Swagger UI prefills is still within its filing window on a later business date. The
    document itself is not changed; on or before EXAMPLES_DATE it is returned as is."""
    days = (today - EXAMPLES_DATE).days
    if days <= 0:
        return document
    out = copy.deepcopy(document)
    for methods in out["paths"].values():
        for operation in methods.values():
            body = operation.get("requestBody", {}).get("content", {}).get("application/json")
            for named in (body or {}).get("examples", {}).values():
                if _files_a_loan(named.get("value")):
                    named["value"] = _moved(named["value"], days)
    for schema in out.get("components", {}).get("schemas", {}).values():
        if "examples" in schema and _files_a_loan(schema["examples"]):
            schema["examples"] = _moved(schema["examples"], days)
    return out


def install_contract(app: FastAPI, *, dated_examples: bool = False) -> None:
    """`app.openapi()` answers the finished document (built once, then cached). With
    `dated_examples` (the demo's documentation) the loan filings' examples are moved to
    the app's business date (`examples_dated`), once per date."""
    served: dict[date, dict[str, Any]] = {}

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = build_openapi(app)
        if not dated_examples:
            return app.openapi_schema
        today = app.state.clock.today()
        if today not in served:
            served.clear()
            served[today] = examples_dated(app.openapi_schema, today)
        return served[today]

    app.openapi = openapi  # type: ignore[method-assign]


def operation_id(route: APIRoute) -> str:
    """The `operationId` of a route: its endpoint function's name (`file_loan`)."""
    return route.name
