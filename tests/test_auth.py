"""Auth (API.md Auth): OAuth2 password flow, JWT validation, roles, data scopes."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient
from jose import jwt
from pydantic import SecretStr
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.auth import tokens
from app.auth.tokens import decode_token
from app.config import Settings
from app.models import User
from tests.conftest import token_for
from tests.fixtures.seed import TEST_PASSWORD

PROBLEM = "application/problem+json"


def _b64(data: dict[str, object]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")


def test_login_returns_a_working_bearer_token(client: TestClient) -> None:
    r = client.post("/api/v1/auth/token", data={"username": "bank_jsb", "password": TEST_PASSWORD})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["token_type"] == "bearer" and body["expires_in"] == 3600
    me = client.get("/api/v1/auth/me", headers={"Authorization": f"Bearer {body['access_token']}"})
    assert me.status_code == 200
    assert me.json()["role"] == "bank" and me.json()["bank_code"] == "JSB"
    claims = jwt.get_unverified_claims(body["access_token"])
    assert {"exp", "iat", "sub", "role", "scope"} <= set(claims)
    assert claims["scope"] == {"bank_code": "JSB"}
    assert claims["exp"] - claims["iat"] == 3600


def test_login_wrong_password_is_401_problem(client: TestClient) -> None:
    for username in ("bank_jsb", "nobody"):
        r = client.post("/api/v1/auth/token", data={"username": username, "password": "wrong!"})
        assert r.status_code == 401
        assert r.headers["content-type"] == PROBLEM
        assert r.json()["code"] == "invalid_credentials"


def test_missing_token_is_401(client: TestClient) -> None:
    r = client.get("/api/v1/banks")
    assert r.status_code == 401
    assert r.headers["www-authenticate"] == "Bearer"
    assert r.json()["code"] == "not_authenticated"


def _assert_rejected(client: TestClient, token: str) -> None:
    r = client.get("/api/v1/banks", headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 401, r.text
    assert r.headers["content-type"] == PROBLEM
    assert r.json()["code"] == "invalid_token"


def test_expired_token_is_401(client: TestClient, settings: Settings, session: Session) -> None:
    old = datetime.now(UTC) - timedelta(seconds=settings.jwt_ttl_seconds + 5)
    _assert_rejected(client, token_for(settings, session, "regulator", now=old))


def test_tampered_token_is_401(client: TestClient, settings: Settings, session: Session) -> None:
    token = token_for(settings, session, "bank_jsb")
    header, payload, sig = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims["role"] = "admin"
    claims["sub"] = "1"
    _assert_rejected(client, f"{header}.{_b64(claims)}.{sig}")


def test_alg_none_token_is_401(client: TestClient, settings: Settings, session: Session) -> None:
    good = token_for(settings, session, "admin")
    claims = jwt.get_unverified_claims(good)
    unsigned = f"{_b64({'alg': 'none', 'typ': 'JWT'})}.{_b64(claims)}."
    _assert_rejected(client, unsigned)


def test_wrong_key_token_is_401(client: TestClient, settings: Settings, session: Session) -> None:
    good = token_for(settings, session, "admin")
    claims = jwt.get_unverified_claims(good)
    forged = jwt.encode(claims, "another-secret-of-sufficient-length-0123456789", algorithm="HS256")
    _assert_rejected(client, forged)


def test_other_algorithm_with_same_key_is_401(
    client: TestClient, settings: Settings, session: Session
) -> None:
    claims = jwt.get_unverified_claims(token_for(settings, session, "admin"))
    hs512 = jwt.encode(claims, settings.jwt_secret.get_secret_value(), algorithm="HS512")
    _assert_rejected(client, hs512)


def test_wrong_role_is_403(client: TestClient, auth) -> None:  # type: ignore[no-untyped-def]
    r = client.post(
        "/api/v1/banks",
        headers=auth("bank_jsb"),
        json={"code": "X1", "name": "x", "unit_level": "head_office"},
    )
    assert r.status_code == 403
    assert r.headers["content-type"] == PROBLEM
    assert r.json()["code"] == "role_not_allowed"


def test_bank_asking_for_another_banks_agreement_is_404(client: TestClient, auth) -> None:  # type: ignore[no-untyped-def]
    others = client.get("/api/v1/agreements?bank_code=ICBC_JS", headers=auth("regulator")).json()
    other_id = others["items"][0]["id"]
    r = client.get(f"/api/v1/agreements/{other_id}", headers=auth("bank_jsb"))
    assert r.status_code == 404
    missing = client.get("/api/v1/agreements/999999", headers=auth("bank_jsb"))
    assert missing.status_code == 404
    # the body of both answers is the same apart from the id: nothing tells them apart
    assert r.json()["code"] == missing.json()["code"] == "not_found"
    # and the bank's list holds only its own agreements, whatever filter it sends
    own = client.get("/api/v1/agreements?bank_code=ICBC_JS", headers=auth("bank_jsb")).json()
    assert own["items"] and {a["bank_code"] for a in own["items"]} == {"JSB"}


def test_disabled_user_token_is_401(
    client: TestClient, settings: Settings, session: Session
) -> None:
    token = token_for(settings, session, "regulator")
    user = session.scalars(select(User).where(User.username == "regulator")).one()
    user.is_active = False
    session.commit()
    _assert_rejected(client, token)


def test_a_disabled_user_or_a_changed_role_counts_from_the_very_next_request(
    client: TestClient, settings: Settings, session: Session
) -> None:
    # the caller is read afresh on every request: nothing cached per token or per user
    headers = {"Authorization": f"Bearer {token_for(settings, session, 'regulator')}"}
    assert client.get("/api/v1/auth/me", headers=headers).json()["role"] == "regulator"
    user = session.scalars(select(User).where(User.username == "regulator")).one()
    user.role = "admin"
    session.commit()
    assert client.get("/api/v1/auth/me", headers=headers).json()["role"] == "admin"
    user.is_active = False
    session.commit()
    _assert_rejected(client, headers["Authorization"].removeprefix("Bearer "))


def test_a_token_verified_once_is_still_refused_once_expired_or_under_another_secret(
    settings: Settings, session: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    token = token_for(settings, session, "regulator")
    claims = decode_token(settings, token)  # verified, and kept for the next requests
    assert claims is not None and decode_token(settings, token) == claims
    other = settings.model_copy(update={"jwt_secret": SecretStr("another-secret-" * 3)})
    assert decode_token(other, token) is None
    later = claims.expires_at.timestamp() + 1
    monkeypatch.setattr(tokens.time, "time", lambda: later)
    assert decode_token(settings, token) is None


def test_admin_creates_users_with_scope_checks(client: TestClient, auth, session: Session) -> None:  # type: ignore[no-untyped-def]
    before = session.scalar(select(func.count()).select_from(User))
    bad = client.post(
        "/api/v1/users",
        headers=auth("admin"),
        json={
            "username": "bank_new",
            "password": "long-enough-pw",
            "role": "bank",
            "region_code": "320100",
        },
    )
    assert bad.status_code == 422
    # both scope problems at once; the top-level code is the first one's
    assert bad.json()["code"] == "field_required"
    found = {(tuple(e["loc"]), e["code"]) for e in bad.json()["errors"]}
    assert found == {
        (("body", "bank_code"), "field_required"),
        (("body", "region_code"), "field_not_allowed"),
    }
    assert session.scalar(select(func.count()).select_from(User)) == before

    ok = client.post(
        "/api/v1/users",
        headers=auth("admin"),
        json={
            "username": "bank_new",
            "password": "long-enough-pw",
            "role": "bank",
            "bank_code": "JSB",
        },
    )
    assert ok.status_code == 201, ok.text
    assert "password" not in ok.text and "hash" not in ok.text
    assert ok.headers["location"] == f"/api/v1/users/{ok.json()['id']}"
    read = client.get(ok.headers["location"], headers=auth("admin"))
    assert read.status_code == 200 and read.json() == ok.json()
    login = client.post(
        "/api/v1/auth/token", data={"username": "bank_new", "password": "long-enough-pw"}
    )
    assert login.status_code == 200
    dup = client.post(
        "/api/v1/users",
        headers=auth("admin"),
        json={"username": "bank_new", "password": "long-enough-pw", "role": "regulator"},
    )
    assert dup.status_code == 409 and dup.json()["code"] == "already_exists"
    assert client.get("/api/v1/users/999999999", headers=auth("admin")).status_code == 404
    listed = client.get("/api/v1/users?limit=500", headers=auth("admin")).json()["items"]
    assert "bank_new" in {u["username"] for u in listed}
    assert client.get("/api/v1/users", headers=auth("regulator")).status_code == 403
