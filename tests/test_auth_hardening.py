"""Authentication a public fund can defend (API.md Auth): log-in throttling per username
and per address, a password policy, log-out revoking the token."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.models import LoginFailure, RevokedToken, User
from tests.fixtures.seed import TEST_PASSWORD


def _login(client: TestClient, username: str, password: str, **kw: Any) -> Any:
    return client.post(
        "/api/v1/auth/token", data={"username": username, "password": password}, **kw
    )


def test_five_wrong_passwords_then_even_the_right_one_is_429(
    client: TestClient, session: Session
) -> None:
    for _ in range(5):
        r = _login(client, "admin", "wrong-password!")
        assert r.status_code == 401 and r.json()["code"] == "invalid_credentials"
    assert (
        session.scalar(
            select(func.count()).select_from(LoginFailure).where(LoginFailure.username == "admin")
        )
        == 5
    )
    r = _login(client, "admin", TEST_PASSWORD)
    assert r.status_code == 429
    assert r.json()["code"] == "login_throttled"
    assert 1 <= int(r.headers["retry-after"]) <= 900
    # another user is not throttled by admin's failures
    assert _login(client, "regulator", TEST_PASSWORD).status_code == 200


def test_failures_from_one_address_throttle_every_username(client: TestClient) -> None:
    for i in range(20):
        assert _login(client, f"nobody{i}", "wrong-password!").status_code == 401
    r = _login(client, "regulator", TEST_PASSWORD)
    assert r.status_code == 429 and r.json()["code"] == "login_throttled"


def test_a_right_password_is_not_counted(client: TestClient, session: Session) -> None:
    for _ in range(6):
        assert _login(client, "regulator", TEST_PASSWORD).status_code == 200
    assert session.scalar(select(func.count()).select_from(LoginFailure)) == 0


def test_weak_passwords_are_refused_with_every_other_problem(client: TestClient, auth) -> None:  # type: ignore[no-untyped-def]
    for weak in ("aaaaaaaaaaaa", "password1234", "qwertyuiop12", "bank_new_2026"):
        r = client.post(
            "/api/v1/users",
            headers=auth("admin"),
            json={"username": "bank_new_2026", "password": weak, "role": "bank"},
        )
        assert r.status_code == 422, (weak, r.text)
        codes = {e["code"]: e for e in r.json()["errors"]}
        # the missing scope and the weak password, both at once
        assert {"field_required", "weak_password"} <= set(codes), (weak, codes)
        assert codes["weak_password"]["loc"] == ["body", "password"]
        assert codes["weak_password"]["msg_zh"] == "密码强度不足"
    ok = client.post(
        "/api/v1/users",
        headers=auth("admin"),
        json={
            "username": "bank_new_2026",
            "password": "Jsb-credit-2026!",
            "role": "bank",
            "bank_code": "JSB",
        },
    )
    assert ok.status_code == 201, ok.text


def test_logout_revokes_this_token_only(client: TestClient, session: Session) -> None:
    first = _login(client, "regulator", TEST_PASSWORD).json()["access_token"]
    second = _login(client, "regulator", TEST_PASSWORD).json()["access_token"]
    one = {"Authorization": f"Bearer {first}"}
    two = {"Authorization": f"Bearer {second}"}
    assert client.get("/api/v1/auth/me", headers=one).status_code == 200
    out = client.post("/api/v1/auth/logout", headers=one)
    assert out.status_code == 204 and out.content == b""
    after = client.get("/api/v1/auth/me", headers=one)
    assert after.status_code == 401 and after.json()["code"] == "invalid_token"
    assert "revoked" in after.json()["detail"]
    assert client.post("/api/v1/auth/logout", headers=one).status_code == 401
    assert client.get("/api/v1/auth/me", headers=two).status_code == 200
    user_id = session.scalar(select(User.id).where(User.username == "regulator"))
    assert (
        session.scalar(
            select(func.count()).select_from(RevokedToken).where(RevokedToken.user_id == user_id)
        )
        == 1
    )
