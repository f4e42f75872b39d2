"""Every error is application/problem+json (RFC 9457) with a stable code."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.testclient import TestClient

from app.kit.uow import TransactionalRoute

PROBLEM = "application/problem+json"


def _problem(r, status: int, code: str) -> dict:  # type: ignore[no-untyped-def,type-arg]
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == PROBLEM
    body = r.json()
    assert body["status"] == status and body["code"] == code
    assert {"type", "title", "detail"} <= set(body)
    return body  # type: ignore[no-any-return]


def test_422_lists_every_failing_field(client: TestClient, auth) -> None:  # type: ignore[no-untyped-def]
    r = client.post(
        "/api/v1/enterprises",
        headers=auth("admin"),
        json={
            "credit_code": "91320000134587630K",  # wrong check digit
            "name": "",
            "region_code": "320100",
            "registered_on": "2020-13-01",
            "prior_year_revenue": "1.001",
            "employees": -1,
            "surprise": True,
        },
    )
    body = _problem(r, 422, "validation_error")
    locs = {tuple(e["loc"]): e["msg"] for e in body["errors"]}
    assert set(locs) == {
        ("body", "credit_code"),
        ("body", "name"),
        ("body", "registered_on"),
        ("body", "prior_year_revenue"),
        ("body", "employees"),
        ("body", "surprise"),
    }
    assert "统一社会信用代码" in locs[("body", "credit_code")]
    assert "two decimals" in locs[("body", "prior_year_revenue")]


def test_422_for_malformed_json(client: TestClient, auth) -> None:  # type: ignore[no-untyped-def]
    r = client.post(
        "/api/v1/banks",
        headers={**auth("admin"), "content-type": "application/json"},
        content=b"{not json",
    )
    _problem(r, 422, "validation_error")


def test_amount_as_json_number_is_refused(client: TestClient, auth) -> None:  # type: ignore[no-untyped-def]
    """M-1: 5000000 (a number) could be read as yuan, fen or a float: refused."""
    r = client.patch(
        "/api/v1/enterprises/XXX", headers=auth("admin"), json={"prior_year_revenue": 5000000}
    )
    body = _problem(r, 422, "validation_error")
    assert body["errors"][0]["loc"] == ["body", "prior_year_revenue"]


def test_404_unknown_route_and_object(client: TestClient, auth) -> None:  # type: ignore[no-untyped-def]
    _problem(client.get("/api/v1/nowhere"), 404, "not_found")
    _problem(client.get("/api/v1/banks/NOPE", headers=auth("regulator")), 404, "not_found")


def test_405(client: TestClient) -> None:
    _problem(client.put("/healthz"), 405, "method_not_allowed")


def test_409_duplicate(client: TestClient, auth) -> None:  # type: ignore[no-untyped-def]
    r = client.post(
        "/api/v1/banks",
        headers=auth("admin"),
        json={"code": "JSB", "name": "重复", "unit_level": "head_office"},
    )
    body = _problem(r, 409, "already_exists")
    assert body["errors"][0]["loc"] == ["body", "code"]


def test_413_body_too_large(client: TestClient, auth) -> None:  # type: ignore[no-untyped-def]
    big = b'{"code": "' + b"A" * (70 * 1024) + b'"}'
    r = client.post(
        "/api/v1/banks", headers={**auth("admin"), "content-type": "application/json"}, content=big
    )
    _problem(r, 413, "payload_too_large")


def test_413_streamed_body_without_length(client: TestClient, auth) -> None:  # type: ignore[no-untyped-def]
    def chunks():  # type: ignore[no-untyped-def]
        for _ in range(100):
            yield b"x" * 1024

    r = client.post(
        "/api/v1/banks",
        headers={**auth("admin"), "content-type": "application/json"},
        content=chunks(),
    )
    _problem(r, 413, "payload_too_large")


def test_500_hides_internals(app: FastAPI) -> None:
    from fastapi import APIRouter

    router = APIRouter(route_class=TransactionalRoute)

    @router.get("/boom")
    def boom() -> None:
        raise RuntimeError("SELECT secret FROM table; stack detail")

    app.include_router(router)
    with TestClient(app, raise_server_exceptions=False) as c:
        r = c.get("/boom", headers={"X-Request-ID": "req-123"})
    body = _problem(r, 500, "internal_error")
    assert "secret" not in r.text and "Traceback" not in r.text and "RuntimeError" not in r.text
    assert body["request_id"] == "req-123"
    assert r.headers["x-request-id"] == "req-123"


def test_request_id_is_generated_and_echoed(client: TestClient) -> None:
    r = client.get("/api/v1/banks")
    assert len(r.headers["x-request-id"]) == 32
    assert r.json()["request_id"] == r.headers["x-request-id"]


# --- regressions found by the schemathesis fuzz test (tests/test_api_fuzz.py) ---------
def test_id_beyond_bigint_is_422_not_500(client: TestClient, auth) -> None:  # type: ignore[no-untyped-def]
    r = client.get("/api/v1/agreements/118467392019643886469120", headers=auth("admin"))
    body = _problem(r, 422, "validation_error")
    assert body["errors"][0]["loc"] == ["path", "agreement_id"]


def test_crafted_cursor_out_of_range_is_422(client: TestClient, auth) -> None:  # type: ignore[no-untyped-def]
    from app.kit.pagination import encode_cursor

    r = client.get(f"/api/v1/agreements?cursor={encode_cursor(10**30)}", headers=auth("admin"))
    _problem(r, 422, "invalid_cursor")


def test_nul_and_invalid_utf8_in_path_or_query_are_422(client: TestClient, auth) -> None:  # type: ignore[no-untyped-def]
    for url in ("/api/v1/banks/AB%00C", "/api/v1/enterprises?name=a%00b", "/api/v1/banks/%ff%fe"):
        body = _problem(client.get(url, headers=auth("admin")), 422, "validation_error")
        assert body["errors"][0]["msg"] == "invalid characters"


def test_unstorable_text_in_a_body_names_the_field(client: TestClient, auth) -> None:  # type: ignore[no-untyped-def]
    r = client.post(
        "/api/v1/banks",
        headers={**auth("admin"), "content-type": "application/json"},
        content=b'{"code": "ZZ1", "name": "a\\u0000b", "unit_level": "head_office",'
        b' "name_en": "\\udbed"}',
    )
    body = _problem(r, 422, "validation_error")
    assert {tuple(e["loc"]) for e in body["errors"]} == {("body", "name"), ("body", "name_en")}


def test_login_with_nul_is_401(client: TestClient) -> None:
    r = client.post("/api/v1/auth/token", data={"username": "admin\x00", "password": "x"})
    _problem(r, 401, "invalid_credentials")


def test_duplicate_bank_name_is_409_naming_the_field(client: TestClient, auth) -> None:  # type: ignore[no-untyped-def]
    r = client.post(
        "/api/v1/banks",
        headers=auth("admin"),
        json={"code": "NEW_JSB", "name": "江苏银行", "unit_level": "head_office"},
    )
    body = _problem(r, 409, "already_exists")
    assert body["errors"][0]["loc"] == ["body", "name"]


def test_unchecked_constraint_is_409_without_sql(app: FastAPI) -> None:
    from fastapi import APIRouter
    from sqlalchemy.exc import IntegrityError

    router = APIRouter(route_class=TransactionalRoute)

    @router.post("/clash")
    def clash() -> None:
        raise IntegrityError("INSERT INTO secret_table", {}, Exception("duplicate key"))

    app.include_router(router)
    with TestClient(app, raise_server_exceptions=False) as c:
        r = c.post("/clash")
    _problem(r, 409, "integrity_conflict")
    assert "secret_table" not in r.text


def test_oversized_headers_are_431(client: TestClient, auth) -> None:  # type: ignore[no-untyped-def]
    r = client.get("/api/v1/auth/me", headers={**auth("admin"), "X-Padding": "a" * 40_000})
    assert r.status_code == 431
    assert r.json()["code"] == "request_headers_too_large"
    assert client.get("/api/v1/auth/me", headers=auth("admin")).status_code == 200


def test_json_nested_too_deep_is_422_before_any_parser(client: TestClient, auth) -> None:  # type: ignore[no-untyped-def]
    deep = (
        '{"code": "DEEP", "name": "深", "unit_level": "head_office", "x": '
        + ("[" * 400 + "]" * 400)
        + "}"
    )
    r = client.post(
        "/api/v1/banks",
        headers={**auth("admin"), "Content-Type": "application/json"},
        content=deep.encode(),
    )
    assert r.status_code == 422
    body = r.json()
    assert body["code"] == "validation_error" and body["errors"][0]["loc"] == ["body"]
    assert "401 levels" in body["detail"]  # the object around the arrays
    assert client.get("/api/v1/banks/DEEP", headers=auth("admin")).status_code == 404


def test_json_depth_skips_brackets_inside_strings() -> None:
    from app.kit.middleware import json_depth

    assert json_depth(b'{"a": "[[[[{{{{", "b": [1, {"c": []}]}') == 4
    assert json_depth(b'["\\"[[[", [[]]]') == 3
    assert json_depth(b"{}") == 1
