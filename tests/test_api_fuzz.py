"""Property-based fuzzing of the whole HTTP contract (schemathesis strategies over our
OpenAPI): whatever a client sends — valid, malformed or hostile — the service never
answers 5xx, and every error is problem+json. Runs as an admin (who reaches every write
endpoint) inside the test's rolled-back transaction, on both databases."""

from __future__ import annotations

import schemathesis
from fastapi import FastAPI
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from schemathesis.checks import not_a_server_error
from sqlalchemy.orm import Session

from app.config import Settings
from tests.conftest import token_for

EXAMPLES_PER_OPERATION = 10


def test_no_server_errors_and_problem_json_everywhere(
    app: FastAPI, settings: Settings, session: Session
) -> None:
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    headers = {"Authorization": f"Bearer {token_for(settings, session, 'admin')}"}
    seen: list[str] = []
    for result in schema.get_all_operations():
        operation = result.ok()
        seen.append(f"{operation.method.upper()} {operation.path}")

        @given(case=operation.as_strategy())
        @hsettings(
            max_examples=EXAMPLES_PER_OPERATION,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        def exercise(case) -> None:  # type: ignore[no-untyped-def]
            response = case.call(headers=headers)
            case.validate_response(response, checks=(not_a_server_error,))
            content_type = response.headers.get("content-type")
            if isinstance(content_type, list):
                content_type = content_type[0]
            if response.status_code >= 400:
                assert content_type == "application/problem+json", (
                    case.method,
                    case.formatted_path,
                    response.status_code,
                    response.text,
                )

        exercise()
    assert "POST /api/v1/enterprises" in seen and "GET /api/v1/ledger/verify" in seen
