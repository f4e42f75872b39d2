"""Idempotency-Key on POST (SPEC L-4, API.md Conventions)."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, delete, func, select
from sqlalchemy.orm import Session

from app.config import Settings
from app.db import make_sessionmaker
from app.main import create_app
from app.models import Bank, IdempotencyRecord, User
from tests.conftest import token_for

BANK = {"code": "IDEM_1", "name": "幂等银行", "unit_level": "head_office"}


def _count_banks(session: Session, code: str) -> int:
    return int(session.scalar(select(func.count()).select_from(Bank).where(Bank.code == code)) or 0)


def test_l4_replay_returns_original_status_and_body(
    client: TestClient, auth, session: Session
) -> None:  # type: ignore[no-untyped-def]
    headers = {**auth("admin"), "Idempotency-Key": "k-1"}
    first = client.post("/api/v1/banks", headers=headers, json=BANK)
    assert first.status_code == 201
    assert "idempotent-replayed" not in first.headers
    again = client.post("/api/v1/banks", headers=headers, json=BANK)
    assert again.status_code == 201
    assert again.json() == first.json()
    assert again.headers["idempotent-replayed"] == "true"
    assert _count_banks(session, "IDEM_1") == 1


def test_l4_same_key_different_body_is_409(client: TestClient, auth, session: Session) -> None:  # type: ignore[no-untyped-def]
    headers = {**auth("admin"), "Idempotency-Key": "k-2"}
    assert client.post("/api/v1/banks", headers=headers, json=BANK).status_code == 201
    r = client.post("/api/v1/banks", headers=headers, json={**BANK, "code": "IDEM_2"})
    assert r.status_code == 409
    assert r.json()["code"] == "idempotency_key_reused"
    assert _count_banks(session, "IDEM_2") == 0


def test_l4_keys_are_per_user(client: TestClient, auth, session: Session) -> None:  # type: ignore[no-untyped-def]
    a = client.post(
        "/api/v1/users",
        headers={**auth("admin"), "Idempotency-Key": "same"},
        json={"username": "admin2", "password": "long-enough-pw", "role": "admin"},
    )
    assert a.status_code == 201
    b = client.post(
        "/api/v1/banks", headers={**auth("admin2"), "Idempotency-Key": "same"}, json=BANK
    )
    assert b.status_code == 201 and "idempotent-replayed" not in b.headers


def test_l4_refused_request_stores_nothing(client: TestClient, auth, session: Session) -> None:  # type: ignore[no-untyped-def]
    headers = {**auth("admin"), "Idempotency-Key": "k-3"}
    bad = client.post("/api/v1/banks", headers=headers, json={**BANK, "unit_level": "branch"})
    assert bad.status_code == 422
    assert (
        session.scalar(
            select(func.count())
            .select_from(IdempotencyRecord)
            .where(IdempotencyRecord.key == "k-3")
        )
        == 0
    )
    # the client fixes the body and retries with the same key
    good = client.post("/api/v1/banks", headers=headers, json=BANK)
    assert good.status_code == 201


def test_l4_invalid_key_is_422(client: TestClient, auth) -> None:  # type: ignore[no-untyped-def]
    r = client.post(
        "/api/v1/banks", headers={**auth("admin"), "Idempotency-Key": "x" * 300}, json=BANK
    )
    assert r.status_code == 422
    assert r.json()["errors"][0]["loc"] == ["header", "Idempotency-Key"]


@pytest.fixture
def committed_client(postgres_engine: Engine, settings: Settings) -> Iterator[TestClient]:
    """An app on the real PostgreSQL pool: every request commits for real."""
    app = create_app(settings, engine=postgres_engine)
    with TestClient(app, raise_server_exceptions=False) as c:
        yield c
    with Session(postgres_engine) as s, s.begin():
        s.execute(delete(IdempotencyRecord).where(IdempotencyRecord.key.like("conc-%")))
        s.execute(delete(Bank).where(Bank.code.like("CONC_%")))


def test_l4_concurrent_requests_with_one_key_make_one_effect(
    committed_client: TestClient, postgres_engine: Engine, settings: Settings
) -> None:
    with make_sessionmaker(postgres_engine)() as s:
        headers = {
            "Authorization": f"Bearer {token_for(settings, s, 'admin')}",
            "Idempotency-Key": "conc-1",
        }
    body = {"code": "CONC_1", "name": "并发银行", "unit_level": "head_office"}
    barrier = threading.Barrier(12)
    results: list[tuple[int, str, bool]] = []
    lock = threading.Lock()

    def fire() -> None:
        barrier.wait()
        r = committed_client.post("/api/v1/banks", headers=headers, json=body)
        with lock:
            results.append((r.status_code, r.text, r.headers.get("idempotent-replayed") == "true"))

    threads = [threading.Thread(target=fire) for _ in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    # more than CLIENT_CONCURRENCY (8) at once from one user: the excess may be told to
    # retry (429, app/kit/admission.py); every request that ran got the one answer
    assert {status for status, _, _ in results} <= {201, 429}, results
    ran = [(text, replayed) for status, text, replayed in results if status == 201]
    assert len(ran) >= 8
    assert len({text for text, _ in ran}) == 1
    assert sum(1 for _, replayed in ran if not replayed) == 1
    with Session(postgres_engine) as s:
        assert _count_banks(s, "CONC_1") == 1


def test_l4_a_disabled_users_replay_is_refused(client: TestClient, auth, session: Session) -> None:  # type: ignore[no-untyped-def]
    """A stored answer is not replayed to a user disabled since: 401, like any call."""
    headers = {**auth("admin"), "Idempotency-Key": "k-disabled"}
    body = {"code": "IDEM_D", "name": "停用银行", "unit_level": "head_office"}
    assert client.post("/api/v1/banks", headers=headers, json=body).status_code == 201
    user = session.scalars(select(User).where(User.username == "admin")).one()
    user.is_active = False
    session.flush()
    again = client.post("/api/v1/banks", headers=headers, json=body)
    assert again.status_code == 401 and "idempotent-replayed" not in again.headers
    assert again.json()["code"] == "invalid_token"
