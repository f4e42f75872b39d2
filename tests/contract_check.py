"""Every problem response the suite sees is one its operation documents.

conftest wraps `TestClient.request`: each `application/problem+json` answer below 500 is
looked up in the served OpenAPI document — the operation its method and path match, the
response of its status, that response's `x-problem-codes` — and each code in `errors[]`
must be a known code (`/problems/{code}`). What is missing is kept in `FOUND` and the test
that saw it fails (conftest's `contract_holds`)."""

from __future__ import annotations

import re
import threading
from typing import Any

from app.errors import ERRORS

FOUND: list[str] = []
_CACHE: dict[int, list[tuple[str, re.Pattern[str], dict[str, Any]]]] = {}
_LOCK = threading.Lock()  # parallel requests of a test build the document once


def _operations(app: Any) -> list[tuple[str, re.Pattern[str], dict[str, Any]]]:
    with _LOCK:
        return _build(app)


def _build(app: Any) -> list[tuple[str, re.Pattern[str], dict[str, Any]]]:
    key = id(app)
    if key not in _CACHE:
        ops = []
        for path, methods in app.openapi()["paths"].items():
            pattern = re.compile(
                "^" + re.sub(r"\{[^/}]+\}", "[^/]+", path.replace(".", r"\.")) + "$"
            )
            for method, op in methods.items():
                ops.append((method.upper(), pattern, op))
        # literal paths before templated ones (`/loans/watch` before `/loans/{loan_id}`)
        ops.sort(key=lambda o: o[1].pattern.count("[^/]+"))
        _CACHE[key] = ops
    return _CACHE[key]


def check(app: Any, method: str, path: str, status: int, body: Any) -> None:
    if not hasattr(app, "openapi") or not isinstance(body, dict) or status >= 500:
        return
    op = next((o for m, p, o in _operations(app) if m == method and p.match(path)), None)
    if op is None:
        return  # not an operation of the document (an unknown path, /metrics, /docs)
    code = body.get("code")
    documented = op.get("responses", {}).get(str(status), {}).get("x-problem-codes", [])
    if code not in documented:
        FOUND.append(
            f"{op['operationId']} ({method} {path}) answered {status} {code!r}, "
            f"undocumented (documented for {status}: {documented})"
        )
    for item in body.get("errors") or []:
        sub = item.get("code") if isinstance(item, dict) else None
        if sub is not None and sub not in ERRORS:
            FOUND.append(f"{op['operationId']}: errors[] code {sub!r} has no error class")
