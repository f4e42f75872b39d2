"""The service runs as a PostgreSQL role that owns nothing (L-2): the schema's owner
migrates (MIGRATION_DATABASE_URL), `ledger migrate` grants DB_APP_ROLE what the service
needs, and the service (DATABASE_URL) can then log in, file a loan, read it and verify
the ledger — but can no longer switch a guard off, drop it, truncate a journal, or
change or delete what the guards protect: PostgreSQL refuses it before any trigger runs.

A database and two roles (owner, service) of their own per run, dropped after."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from app import cli
from app.config import Settings, get_settings
from app.db import make_engine, normalize_url
from app.db_roles import ALSO_REFUSED, FORBID_SUFFIX
from app.kit.clock import Clock
from app.main import create_app
from tests.conftest import TEST_TODAY, postgres_admin_url, postgres_unavailable
from tests.fixtures.factories import member_enterprise
from tests.fixtures.seed import TEST_PASSWORD, seed_minimal


@dataclass(frozen=True)
class Deployment:
    database: str
    owner: str
    role: str
    owner_url: str
    app_url: str


def _admin(sql: str) -> None:
    admin_url = postgres_admin_url()
    assert admin_url
    engine = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            conn.execute(text(sql))
    finally:
        engine.dispose()


def _ledger(monkeypatch: pytest.MonkeyPatch, d: Deployment, *args: str, **env: str) -> int:
    """`ledger ARGS` configured as the Dockerfile's two URLs (every setting explicit)."""
    settings = {
        "MIGRATION_DATABASE_URL": d.owner_url,
        "DATABASE_URL": d.app_url,
        "DB_APP_ROLE": d.role,
        **env,
    }
    for key, value in settings.items():
        monkeypatch.setenv(key, value)
    get_settings.cache_clear()
    try:
        cli.main(list(args))
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else 1
    finally:
        get_settings.cache_clear()
    return 0


@pytest.fixture(scope="module")
def deployment() -> Iterator[Deployment]:
    reason = postgres_unavailable()
    if reason:
        pytest.skip(reason)
    admin_url = postgres_admin_url()
    assert admin_url
    tag = uuid.uuid4().hex[:10]
    d = Deployment(
        database=f"ledger_lp_{tag}",
        owner=f"ledger_lp_owner_{tag}",
        role=f"ledger_lp_app_{tag}",
        owner_url="",
        app_url="",
    )
    base = make_url(admin_url).set(database=d.database, password=None)
    d = Deployment(
        d.database,
        d.owner,
        d.role,
        owner_url=base.set(username=d.owner).render_as_string(hide_password=False),
        app_url=base.set(username=d.role).render_as_string(hide_password=False),
    )
    # no passwords: the test server trusts local connections (a deployment sets them)
    _admin(f'CREATE ROLE "{d.owner}" LOGIN')
    _admin(f'CREATE ROLE "{d.role}" LOGIN')
    _admin(f'CREATE DATABASE "{d.database}" OWNER "{d.owner}"')
    try:
        with pytest.MonkeyPatch.context() as mp:
            assert _ledger(mp, d, "migrate") == 0
            assert _ledger(mp, d, "migrate") == 0  # again: the grants are re-applied
            assert _ledger(mp, d, "seed-reference") == 0  # as the service
        engine = make_engine(d.app_url)
        try:  # the suite's parties, written by the service's role
            with Session(engine) as session, session.begin():
                seed_minimal(session)
        finally:
            engine.dispose()
        yield d
    finally:
        _admin(f'DROP DATABASE IF EXISTS "{d.database}" WITH (FORCE)')
        _admin(f'DROP ROLE IF EXISTS "{d.role}"')
        _admin(f'DROP ROLE IF EXISTS "{d.owner}"')


def test_the_service_works_as_a_role_that_owns_nothing(
    deployment: Deployment, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Log in, file a SKD loan (its exposure posted to the ledger, L-1), read it back, and
    `ledger verify` (L-3), all as the service's role."""
    engine = make_engine(deployment.app_url)
    try:
        with Session(engine) as session:
            member = member_enterprise(session, region="320100").credit_code
        settings = Settings(
            database_url=deployment.app_url, app_env="demo", app_today=TEST_TODAY, log_json=False
        )
        app = create_app(settings, engine=engine, clock=Clock(TEST_TODAY))
        with TestClient(app, raise_server_exceptions=False) as client:
            r = client.post(
                "/api/v1/auth/token", data={"username": "bank_jsb", "password": TEST_PASSWORD}
            )
            assert r.status_code == 200, r.text
            bank = {"Authorization": f"Bearer {r.json()['access_token']}"}
            body = {
                "program": "SKD",
                "enterprise_credit_code": member,
                "contract_no": "LP-2026-001",
                "principal": "5000000.00",
                "annual_rate_bp": 350,
                "disbursed_on": "2026-03-24",
                "maturity_on": "2027-03-24",
                "security": "credit",
                "controller_guarantee": True,
            }
            r = client.post("/api/v1/loans", headers=bank, json=body)
            assert r.status_code == 201, r.text
            r = client.get(f"/api/v1/loans/{r.json()['id']}", headers=bank)
            assert r.status_code == 200 and r.json()["contract_no"] == "LP-2026-001", r.text
            assert client.get("/readyz").status_code == 200
    finally:
        engine.dispose()
    capsys.readouterr()
    assert _ledger(monkeypatch, deployment, "verify") == 0
    assert "ledger verified" in capsys.readouterr().out


# What a service that owned the tables could do to the ledger, and the service's role
# may not: each is refused by PostgreSQL's privileges (SQLSTATE 42501), before any of
# the guards' triggers (which raise 42501 too, with their own message) would run.
ATTACKS = [
    "ALTER TABLE ledger_entries DISABLE TRIGGER ALL",
    "ALTER TABLE ledger_legs DISABLE TRIGGER ledger_legs_append_only",
    "ALTER TABLE claims DISABLE TRIGGER claims_money_guard",
    "DROP TRIGGER ledger_entries_append_only ON ledger_entries",
    "DROP TRIGGER ledger_accounts_append_only ON ledger_accounts",
    "TRUNCATE ledger_entries CASCADE",
    "TRUNCATE ledger_chain_head",
    "UPDATE ledger_entries SET hash = prev_hash",
    "UPDATE ledger_legs SET amount_fen = amount_fen + 1",
    "UPDATE ledger_accounts SET counterparty = 'JSB'",
    "DELETE FROM ledger_accounts",
    "DELETE FROM ledger_entries",
    "DELETE FROM loans",
    "DELETE FROM claim_transitions",
    "ALTER TABLE ledger_entries OWNER TO CURRENT_USER",
    "DROP TABLE ledger_legs",
    "DROP FUNCTION ledger_forbid_change() CASCADE",
    "CREATE OR REPLACE FUNCTION ledger_forbid_change() RETURNS trigger LANGUAGE plpgsql "
    "AS $$ BEGIN RETURN NULL; END $$",
    "SET session_replication_role = replica",
    "CREATE TRIGGER sneak BEFORE INSERT ON ledger_entries FOR EACH ROW "
    "EXECUTE FUNCTION ledger_forbid_change()",
    # the audit trail (migration 0023), append-only like the journal
    "ALTER TABLE audit_events DISABLE TRIGGER ALL",
    "DELETE FROM audit_events",
]


@pytest.mark.parametrize("statement", ATTACKS, ids=[a.split(" ON ")[0][:48] for a in ATTACKS])
def test_the_service_role_cannot_defeat_the_guards(deployment: Deployment, statement: str) -> None:
    """L-2: the append-only guards hold against the service's own database user."""
    engine = create_engine(normalize_url(deployment.app_url))
    try:
        with engine.connect() as conn:
            assert conn.scalar(text("SELECT count(*) FROM ledger_entries")), "no entries"
            if "audit_events" in statement and not conn.scalar(
                text("SELECT to_regclass('audit_events') IS NOT NULL")
            ):
                pytest.skip("no audit trail in this schema")
            with pytest.raises(DBAPIError) as refused:
                conn.execute(text(statement))
            conn.rollback()
    finally:
        engine.dispose()
    sqlstate = getattr(refused.value.orig, "sqlstate", None)
    message = str(refused.value.orig)
    assert sqlstate == "42501", (statement, sqlstate, message)
    assert message.startswith(("permission denied", "must be owner")), (statement, message)


def test_the_grants_mirror_the_guards(deployment: Deployment) -> None:
    """The service's role owns nothing and holds no TRUNCATE, TRIGGER or REFERENCES; on
    every table a guard makes append-only it may only SELECT and INSERT; it may UPDATE
    what the service legitimately updates (the chain head, loans, claims)."""
    engine = create_engine(normalize_url(deployment.owner_url))
    role = {"role": deployment.role}
    try:
        with engine.connect() as conn:
            owned = conn.scalar(
                text(
                    "SELECT count(*) FROM pg_class c WHERE pg_has_role(:role, c.relowner, "
                    "'MEMBER') AND c.relnamespace = 'public'::regnamespace"
                ),
                role,
            )
            assert owned == 0
            assert not conn.scalar(
                text("SELECT has_schema_privilege(:role, 'public', 'CREATE')"), role
            )
            rows = conn.execute(
                text(
                    "SELECT c.relname, "
                    "has_table_privilege(:role, c.oid, 'SELECT'), "
                    "has_table_privilege(:role, c.oid, 'INSERT'), "
                    "has_table_privilege(:role, c.oid, 'UPDATE'), "
                    "has_table_privilege(:role, c.oid, 'DELETE'), "
                    "has_table_privilege(:role, c.oid, 'TRUNCATE, TRIGGER, REFERENCES') "
                    "FROM pg_class c WHERE c.relnamespace = 'public'::regnamespace "
                    "AND c.relkind = 'r'"
                ),
                role,
            ).all()
            guarded = conn.execute(
                text(
                    "SELECT c.relname, t.tgtype FROM pg_trigger t JOIN pg_class c ON "
                    "c.oid = t.tgrelid JOIN pg_proc p ON p.oid = t.tgfoid "
                    "WHERE p.proname LIKE :suffix"
                ),
                {"suffix": "%" + FORBID_SUFFIX},
            ).all()
    finally:
        engine.dispose()
    privileges = {r[0]: r[1:] for r in rows}
    assert all(p[0] for p in privileges.values()), "SELECT on every table"
    assert not any(p[4] for p in privileges.values()), "TRUNCATE / TRIGGER / REFERENCES"
    refused: dict[str, set[str]] = {t: set(v) for t, v in ALSO_REFUSED.items()}
    for table, tgtype in guarded:
        refused.setdefault(table, set()).update(
            verb for verb, bit in (("UPDATE", 16), ("DELETE", 8)) if tgtype & bit
        )
    append_only = {"ledger_entries", "ledger_legs", "ledger_accounts", "claim_transitions"}
    if "audit_events" in privileges:  # the audit trail (migration 0023)
        append_only.add("audit_events")
    assert append_only <= {t for t, verbs in refused.items() if verbs == {"UPDATE", "DELETE"}}
    for table, verbs in refused.items():
        _, insert, update, delete, _ = privileges[table]
        assert insert, table
        assert not (update and "UPDATE" in verbs), table
        assert not (delete and "DELETE" in verbs), table
    for table in ("ledger_chain_head", "loans", "claims", "idempotency_records"):
        assert privileges[table][2], f"the service updates {table}"
    assert privileges["alembic_version"] == (True, False, False, False, False)


def test_migrate_refuses_a_role_that_would_not_be_least_privileged(
    deployment: Deployment, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The owner itself, or a role that does not exist, is no service role."""
    assert _ledger(monkeypatch, deployment, "migrate", DB_APP_ROLE=deployment.owner) != 0
    assert _ledger(monkeypatch, deployment, "migrate", DB_APP_ROLE="ledger_lp_nobody") != 0


def test_the_services_own_migrate_finds_the_schema_current(
    deployment: Deployment, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The Dockerfile's start command on a service container without the owner's URL
    (the owner migrated in a job of its own): `ledger migrate` as the service's role
    succeeds, changing nothing, with DB_APP_ROLE set or not."""
    own = {"MIGRATION_DATABASE_URL": deployment.app_url}
    assert _ledger(monkeypatch, deployment, "migrate", **own) == 0
    assert "nothing granted" in capsys.readouterr().out
    assert _ledger(monkeypatch, deployment, "migrate", **own, DB_APP_ROLE="") == 0


def test_the_migration_url_defaults_to_the_services() -> None:
    """One URL (SQLite, a simple deployment): migrate there, no role to grant. Two
    PostgreSQL URLs with different users: the service's user is the role to grant."""
    one = Settings(database_url="sqlite:///./var/x.db")
    assert one.migration_url == "sqlite:///./var/x.db" and one.app_role is None
    same = Settings(database_url="postgresql://ledger@db/ledger")
    assert same.migration_url == same.database_url and same.app_role is None
    two = Settings(
        database_url="postgresql://ledger_app@db/ledger",
        migration_database_url="postgresql://ledger_owner@db/ledger",
    )
    assert two.migration_url.startswith("postgresql://ledger_owner@")
    assert two.app_role == "ledger_app"
    named = Settings(
        database_url="postgresql://alice@db/ledger",
        migration_database_url="postgresql://ledger_owner@db/ledger",
        db_app_role="ledger_service",
    )
    assert named.app_role == "ledger_service"
    with pytest.raises(ValueError, match="db_app_role"):
        Settings(db_app_role='x"; DROP TABLE loans; --')
