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
