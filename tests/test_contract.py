"""The OpenAPI document as a contract (API.md Conventions): valid OpenAPI 3.1, ASCII
security-scheme key, explicit operationIds, every operation's refusals as
`application/problem+json` with their codes, `Idempotency-Key` on every POST, `Location`
on 201, error codes with a page and Chinese beside English, the console's tags and the
demo-only parts of the docs."""

from __future__ import annotations

import gzip
import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from openapi_spec_validator import validate
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.config import Settings
from app.errors import ERRORS
from app.kit.uow import purge_expired
from app.main import create_app
from app.models import IdempotencyRecord, User
from app.openapi_export import export_openapi

ROOT = Path(__file__).resolve().parents[1]
CJK = re.compile(r"[\u4e00-\u9fff]")
METHODS = {"get", "post", "put", "patch", "delete"}


@pytest.fixture(scope="module")
def spec() -> dict[str, Any]:
    return json.loads(export_openapi())


def _operations(spec: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (method, path, op)
        for path, ops in spec["paths"].items()
        for method, op in ops.items()
        if method in METHODS
    ]


def test_committed_document_is_valid_openapi() -> None:
    committed = json.loads((ROOT / "openapi" / "openapi.json").read_text(encoding="utf-8"))
    assert committed["openapi"].startswith("3.1")
    validate(committed)  # raises on the first error


def test_security_scheme_keys_are_ascii(spec: dict[str, Any]) -> None:
    keys = list(spec["components"]["securitySchemes"])
    assert keys and all(re.fullmatch(r"[a-zA-Z0-9._-]+", k) for k in keys), keys
    # and every operation's security names a declared scheme
    for _, _, op in _operations(spec):
        for requirement in op.get("security", []):
            assert set(requirement) <= set(keys)


def test_operation_ids_are_explicit_unique_and_snake_case(spec: dict[str, Any]) -> None:
    ids = [op["operationId"] for _, _, op in _operations(spec)]
    assert len(ids) == len(set(ids))
    bad = [i for i in ids if not re.fullmatch(r"[a-z][a-z0-9]*(_[a-z0-9]+)*", i)]
    assert bad == []
    # no FastAPI automatic ids (`file_loan_api_v1_loans_post`)
    assert not [i for i in ids if "_api_v1_" in i or i.endswith(("_get", "_post"))]
    by_id = {op["operationId"]: (m, p) for m, p, op in _operations(spec)}
    assert by_id["file_loan"] == ("post", "/api/v1/loans")
    assert by_id["city_review"] == ("post", "/api/v1/claims/{claim_id}/city-review")


def test_every_operation_documents_its_refusals_as_problems(spec: dict[str, Any]) -> None:
    schemas = spec["components"]["schemas"]
    assert "HTTPValidationError" not in schemas and "ValidationError" not in schemas
    assert "HTTPValidationError" not in json.dumps(spec)
    assert {"Problem", "ProblemViolation"} <= set(schemas)
    for method, path, op in _operations(spec):
        where = f"{method.upper()} {path}"
        refusals = {s: r for s, r in op["responses"].items() if s.startswith("4")}
        if path.startswith("/api/v1/") or op.get("parameters") or op.get("requestBody"):
            assert refusals, f"{where} documents no 4xx"
        for status, response in refusals.items():
            content = response.get("content", {})
            assert list(content) == ["application/problem+json"], where
            assert content["application/problem+json"]["schema"] == {
                "$ref": "#/components/schemas/Problem"
            }
            codes = response["x-problem-codes"]
            assert codes, where
            for code in codes:
                assert ERRORS[code].status == int(status), (where, code)
                assert f"/problems/{code}" in response["description"]


def test_shared_refusals_follow_the_route_kind(spec: dict[str, Any]) -> None:
    """401 on authenticated routes, 403 on role-gated ones, 422 validation where the
    route takes input, and on POSTs the key header, its 409s and the replay header."""
    for method, path, op in _operations(spec):
        where = f"{method.upper()} {path}"
        codes = {c for r in op["responses"].values() for c in r.get("x-problem-codes", [])}
        if op.get("security"):
            assert {"not_authenticated", "invalid_token"} <= codes, where
        if op.get("parameters") or op.get("requestBody"):
            assert "validation_error" in codes, where
        if method == "post":
            names = [p["name"] for p in op.get("parameters", []) if p["in"] == "header"]
            assert "Idempotency-Key" in names, where
            assert {"idempotency_key_reused", "idempotency_key_in_progress"} <= codes, where
            for status, response in op["responses"].items():
                if status.startswith("2"):
                    assert "Idempotent-Replayed" in response.get("headers", {}), where
        if "201" in op["responses"]:
            assert "Location" in op["responses"]["201"].get("headers", {}), where
    file_loan = spec["paths"]["/api/v1/loans"]["post"]["responses"]
    assert "role_not_allowed" in file_loan["403"]["x-problem-codes"]
    assert "403" not in spec["paths"]["/api/v1/auth/me"]["get"]["responses"]


def test_tags_name_roles_and_steps_in_chinese_and_english(spec: dict[str, Any]) -> None:
    declared = {t["name"] for t in spec["tags"]}
    used = {t for _, _, op in _operations(spec) for t in op["tags"]}
    assert used <= declared and declared <= used
    for name in declared:
        assert CJK.search(name) and re.search(r"[A-Za-z]{3}", name), name
    # typing 代偿 in Swagger's filter finds the claim steps
    claim_tags = [t for t in declared if "代偿" in t]
    assert len(claim_tags) >= 4
    city = spec["paths"]["/api/v1/claims/{claim_id}/city-review"]["post"]["tags"]
    assert any("市县初审" in t for t in city)


def test_every_error_code_has_chinese_and_a_page(client: TestClient) -> None:
    assert len(ERRORS) >= 20
    for code, error in ERRORS.items():
        assert CJK.search(error.title_zh), code
        assert error.title and not CJK.search(error.title), code
    index = client.get("/problems", headers={"Accept": "application/json"})
    assert index.status_code == 200
    assert {i["code"] for i in index.json()} == set(ERRORS)
    page = client.get("/problems/idempotency_key_reused")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "幂等键" in page.text and "file_loan" in page.text
    as_json = client.get("/problems/role_not_allowed", headers={"Accept": "application/json"})
    assert as_json.json()["status"] == 403 and "file_loan" in as_json.json()["operations"]
    unknown = client.get("/problems/no_such_code")
    assert unknown.status_code == 404 and unknown.json()["code"] == "unknown_problem_type"


def test_a_problem_type_uri_resolves_to_its_page(client: TestClient, auth) -> None:  # type: ignore[no-untyped-def]
    r = client.get("/api/v1/auth/me", headers={"Authorization": "Bearer not-a-token"})
    assert r.status_code == 401
    body = r.json()
    assert body["type"] == f"/problems/{body['code']}"
    assert CJK.search(body["detail_zh"])
    page = client.get(body["type"])
    assert page.status_code == 200 and body["code"] in page.text


def test_validation_errors_carry_chinese_messages(client: TestClient, auth) -> None:  # type: ignore[no-untyped-def]
    r = client.post("/api/v1/banks", headers=auth("admin"), json={"code": "X"})
    assert r.status_code == 422
    body = r.json()
    assert body["code"] == "validation_error" and CJK.search(body["detail_zh"])
    assert all(CJK.search(e["msg_zh"]) for e in body["errors"])
    missing = [e for e in body["errors"] if e["type"] == "missing"]
    assert missing and missing[0]["msg_zh"] == "缺少必填字段"


def test_idempotency_compares_canonical_json(client: TestClient, auth) -> None:  # type: ignore[no-untyped-def]
    """L-4: the same JSON object with other spacing and key order is the same request."""
    headers = {**auth("admin"), "Idempotency-Key": "canon-1", "Content-Type": "application/json"}
    first = client.post(
        "/api/v1/banks",
        headers=headers,
        content=b'{"code":"CANON_1","name":"\\u89c4\\u8303\\u94f6\\u884c","unit_level":"head_office"}',
    )
    assert first.status_code == 201
    again = client.post(
        "/api/v1/banks",
        headers=headers,
        content=(
            '{ "unit_level" : "head_office",\n  "name": "规范银行",  "code": "CANON_1" }'
        ).encode(),
    )
    assert again.status_code == 201
    assert again.headers["idempotent-replayed"] == "true"
    assert again.json() == first.json()
    assert again.headers["location"] == first.headers["location"] == "/api/v1/banks/CANON_1"
    other = client.post(
        "/api/v1/banks",
        headers=headers,
        content=b'{"code":"CANON_2","name":"x","unit_level":"head_office"}',
    )
    assert other.status_code == 409 and other.json()["code"] == "idempotency_key_reused"


def test_idempotency_keys_expire_after_the_retention(session: Session) -> None:
    user_id = session.scalar(select(User.id).where(User.username == "admin"))
    assert user_id is not None
    now = datetime(2026, 12, 3, 12, tzinfo=UTC)
    for key, age in (("old", 31), ("young", 29)):
        session.add(
            IdempotencyRecord(
                user_id=user_id,
                key=key,
                request_hash="0" * 64,
                method="POST",
                path="/api/v1/banks",
                status_code=201,
                content_type="application/json",
                response_body="{}",
                created_at=now - timedelta(days=age),
            )
        )
    session.flush()
    assert purge_expired(session, now=now, retention_days=30) == 1
    keys = session.scalars(select(IdempotencyRecord.key)).all()
    assert "young" in keys and "old" not in keys
    assert session.scalar(select(func.count()).select_from(IdempotencyRecord)) == len(keys)


def test_large_answers_are_gzipped(client: TestClient) -> None:
    r = client.get("/problems", headers={"Accept-Encoding": "gzip"})
    assert r.headers.get("content-encoding") == "gzip"
    raw = client.get("/problems", headers={"Accept-Encoding": "identity"})
    assert "content-encoding" not in raw.headers
    assert len(gzip.compress(raw.content)) < len(raw.content)


def test_demo_users_and_kept_authorization_in_demo_mode_only() -> None:
    demo = create_app(Settings(database_url="sqlite://", app_env="demo"))
    prod = create_app(
        Settings(
            database_url="sqlite://",
            app_env="production",
            jwt_secret="p" * 40,  # type: ignore[arg-type]
            person_id_key="q" * 40,  # type: ignore[arg-type]
        )
    )
    assert "bank_jsb" in demo.openapi()["info"]["description"]
    assert "bank_jsb" not in prod.openapi()["info"]["description"]
    committed = (ROOT / "openapi" / "openapi.json").read_text(encoding="utf-8")
    assert "bank_jsb" not in json.loads(committed)["info"]["description"]
    with TestClient(demo) as c:
        assert '"persistAuthorization": true' in c.get("/docs").text
    with TestClient(prod) as c:
        assert '"persistAuthorization": false' in c.get("/docs").text
