"""Property-based fuzzing of the whole HTTP contract (schemathesis strategies over our
OpenAPI): whatever a client sends — valid, malformed or hostile — the service never
answers 5xx, and every error is problem+json. As an admin (who reaches most write
endpoints) and as each other role of API.md, inside the test's rolled-back transaction,
on both databases.

Per role, the authorisation contract too: an operation gated by `require_roles(...)`
(its allowed roles read from the route's dependencies, as app/contract.py reads them to
document 403 `role_not_allowed`) never answers 2xx to a role it does not allow, and
answers 403 `role_not_allowed` to every such request but those refused at the request
boundary before any dependency runs (422 for NUL or non-UTF-8 bytes in the path or
query, a malformed Idempotency-Key, a body that is not JSON at all; 413 for a body over
the size limit; 409 for the caller's own Idempotency-Key used before for another
request — keys are the user's, so no one replays another's answer).

Size: TEST_FUZZ_EXAMPLES examples per operation (the suite's own variable, read here;
default 10 as the admin; per operation and role 2 on SQLite, 1 on PostgreSQL). Full size:
`TEST_FUZZ_EXAMPLES=50 .venv/bin/pytest tests/test_api_fuzz.py` (RELIABILITY.md)."""

from __future__ import annotations

import os
from collections import Counter
from typing import Any

import schemathesis
from fastapi import FastAPI
from fastapi.routing import APIRoute, iter_route_contexts
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from schemathesis.checks import not_a_server_error
from sqlalchemy.orm import Session

from app.config import Settings
from app.contract import _calls
from tests.conftest import token_for

_SIZE = int(os.environ.get("TEST_FUZZ_EXAMPLES", "0"))
EXAMPLES_PER_OPERATION = _SIZE or 10
# per operation and role: the authorisation contract does not depend on the database
EXAMPLES_PER_OPERATION_AND_ROLE = {"sqlite": _SIZE or 2, "postgresql": _SIZE or 1}
# one seeded user per role (tests/fixtures/seed.py), each with a scope where it has one
ROLE_USERS = {
    "bank": "bank_jsb",
    "city_reviewer": "city_nanjing",
    "province_reviewer": "province",
    "fund_manager": "fund_nanjing",
    "committee": "committee",
    "regulator": "regulator",
}


def allowed_roles(app: FastAPI) -> dict[str, frozenset[str] | None]:
    """Each operation (`METHOD /path`) -> the roles its `require_roles` gates allow
    (None: not gated by role in its dependencies; its handler may still refuse some)."""
    found: dict[str, frozenset[str] | None] = {}
    for route in iter_route_contexts(app.routes):
        if not isinstance(route.original_route, APIRoute):
            continue
        roles: frozenset[str] | None = None
        for call in _calls(route.dependant):
            if getattr(call, "__qualname__", "").startswith("require_roles."):
                cells = [c.cell_contents for c in call.__closure__ or ()]
                gate = frozenset(next(c for c in cells if isinstance(c, tuple)))
                roles = gate if roles is None else roles & gate
        for method in route.methods or ():
            found[f"{method} {route.path_format}"] = roles
    return found


def _content_type(response: Any) -> str | None:
    content_type = response.headers.get("content-type")
    if isinstance(content_type, list):
        content_type = content_type[0]
    return content_type


LOGOUT = "POST /api/v1/auth/logout"


def _operations(app: FastAPI) -> list[Any]:
    """The document's operations, logging out last: it revokes the caller's token, and
    every operation after it would be fuzzed as a 401 only."""
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    operations = [result.ok() for result in schema.get_all_operations()]
    return sorted(operations, key=lambda op: f"{op.method.upper()} {op.path}" == LOGOUT)


def _check(
    case: Any, response: Any, *, role: str, where: str, forbidden: bool, tally: Counter[str]
) -> None:
    case.validate_response(response, checks=(not_a_server_error,))
    status = response.status_code
    # every request carries a valid token: a 401 would mean it was revoked mid-run and
    # the rest of the run reached no handler
    if status == 401 and where != LOGOUT:
        assert response.json()["code"] != "invalid_token", (role, where, response.text)
    if status >= 400:
        assert _content_type(response) == "application/problem+json", (
            role,
            where,
            status,
            response.text,
        )
    if not forbidden:
        tally[f"{status // 100}xx"] += 1
        return
    tally[f"refused to the role: {status}"] += 1
    # the authorisation contract: never a 2xx, nor anything but the role's refusal
    assert status in (403, 409, 413, 422), (role, where, status, response.text)
    code = response.json()["code"]
    if status == 403:
        assert code == "role_not_allowed", response.text
    elif status == 409:  # the caller's own Idempotency-Key, used for another request
        assert code in ("idempotency_key_reused", "idempotency_key_in_progress"), response.text
    elif status == 413:  # a body over MAX_REQUEST_BYTES, refused before it is read
        assert code == "payload_too_large", response.text
    else:  # refused at the request boundary, before any dependency: a path or query
        # with NUL or non-UTF-8 bytes, a body nested too deep (app/kit/middleware.py), a
        # malformed Idempotency-Key (app/kit/uow.py), a body that is not JSON at all
        for error in response.json().get("errors", []):
            loc = tuple(error.get("loc", ()))
            boundary = loc in (("path",), ("query",), ("body",), ("header", "Idempotency-Key"))
            assert boundary or "json" in str(error), response.text


def _fuzz(
    operation: Any,
    examples: int,
    headers: dict[str, str],
    *,
    role: str = "admin",
    forbidden: bool = False,
    tally: Counter[str] | None = None,
) -> None:
    """`examples` cases of `operation` as `role`, each answer checked."""
    where = f"{operation.method.upper()} {operation.path}"
    counts: Counter[str] = Counter() if tally is None else tally

    @given(case=operation.as_strategy())
    @hsettings(
        max_examples=examples,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    def exercise(case: Any) -> None:
        response = case.call(headers=headers)
        _check(case, response, role=role, where=where, forbidden=forbidden, tally=counts)

    exercise()


def test_no_server_errors_and_problem_json_everywhere(
    app: FastAPI, settings: Settings, session: Session
) -> None:
    headers = {"Authorization": f"Bearer {token_for(settings, session, 'admin')}"}
    seen = []
    for operation in _operations(app):
        seen.append(f"{operation.method.upper()} {operation.path}")
        _fuzz(operation, EXAMPLES_PER_OPERATION, headers)
    assert "POST /api/v1/enterprises" in seen and "GET /api/v1/ledger/verify" in seen


def test_every_role_gets_no_server_error_and_403_where_not_allowed(
    backend: str, app: FastAPI, settings: Settings, session: Session
) -> None:
    """Every operation as each role but the admin: no 5xx, problem+json on every error,
    and 403 `role_not_allowed` (never 2xx) wherever the operation's gate leaves the
    role out."""
    gates = allowed_roles(app)
    tokens = {
        role: {"Authorization": f"Bearer {token_for(settings, session, user)}"}
        for role, user in ROLE_USERS.items()
    }
    tallies: dict[str, Counter[str]] = {role: Counter() for role in ROLE_USERS}
    refused: Counter[str] = Counter()
    operations = _operations(app)
    for operation in operations:
        where = f"{operation.method.upper()} {operation.path}"
        gate = gates.get(where)
        for role, headers in tokens.items():
            forbidden = gate is not None and role not in gate
            refused[role] += forbidden
            _fuzz(
                operation,
                EXAMPLES_PER_OPERATION_AND_ROLE[backend],
                headers,
                role=role,
                forbidden=forbidden,
                tally=tallies[role],
            )
    gated = sum(g is not None for g in gates.values())
    print(f"fuzz per role: {len(operations)} operations, {gated} gated by role")
    for role, tally in tallies.items():
        print(f"  {role}: {refused[role]} refused to it; answers {dict(sorted(tally.items()))}")
        assert tally["refused to the role: 403"] >= refused[role] > 0, role
