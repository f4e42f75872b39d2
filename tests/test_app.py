"""App-level guarantees: OpenAPI snapshot, API.md coverage, settings, health, seed."""

from __future__ import annotations

import json
import logging
import os
import re
import subprocess
import sys
import time
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from pydantic import SecretStr, ValidationError
from sqlalchemy import Engine, func, select
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

from app import bootstrap
from app.cli import migrate
from app.config import Settings, get_settings
from app.db import make_engine
from app.kit.clock import Clock
from app.main import create_app
from app.models import Base, User
from app.openapi_export import export_openapi
from tests.conftest import (
    TEST_TODAY,
    drop_postgres_database,
    fresh_postgres_database,
    pg_database_name,
    postgres_admin_url,
    postgres_unavailable,
)

ROOT = Path(__file__).resolve().parent.parent

# API.md paths that the foundation owns (later issues add theirs to this list).
FOUNDATION_PATHS = {
    ("post", "/api/v1/auth/token"),
    ("post", "/api/v1/users"),
    ("get", "/api/v1/users"),
    ("post", "/api/v1/banks"),
    ("get", "/api/v1/banks"),
    ("post", "/api/v1/regions"),
    ("get", "/api/v1/regions"),
    ("post", "/api/v1/funds"),
    ("get", "/api/v1/funds"),
    ("post", "/api/v1/agreements"),
    ("get", "/api/v1/agreements"),
    ("post", "/api/v1/lpr-rates"),
    ("get", "/api/v1/lpr-rates"),
    ("post", "/api/v1/agreements/{agreement_id}/suspend"),
    ("post", "/api/v1/agreements/{agreement_id}/resume"),
    ("post", "/api/v1/agreements/{agreement_id}/terminate"),
    ("post", "/api/v1/enterprises"),
    ("get", "/api/v1/enterprises"),
    ("patch", "/api/v1/enterprises/{credit_code}"),
    ("get", "/api/v1/enterprises/{credit_code}"),
    ("get", "/api/v1/loans"),
    ("get", "/api/v1/loans/{loan_id}"),
    ("get", "/healthz"),
    ("get", "/readyz"),
}


def test_openapi_snapshot_is_current() -> None:
    committed = (ROOT / "openapi" / "openapi.json").read_text(encoding="utf-8")
    assert committed == export_openapi(), "openapi/openapi.json is stale: run `make openapi`"


def test_api_md_paths_of_the_foundation_exist() -> None:
    spec = json.loads(export_openapi())
    served = {(m, p) for p, ops in spec["paths"].items() for m in ops}
    assert sorted(FOUNDATION_PATHS - served) == []
    # and API.md itself still lists them (the contract we must not break)
    api_md = ROOT.parent / "shared" / "API.md"
    if api_md.exists():
        text = api_md.read_text(encoding="utf-8")
        for _, path in FOUNDATION_PATHS:
            head = re.sub(r"^/api/v1", "", path).split("/{")[0]
            assert head in text or path in ("/healthz", "/readyz"), head


def test_swagger_has_password_flow_and_bilingual_tags() -> None:
    spec = json.loads(export_openapi())
    flows = spec["components"]["securitySchemes"]
    (scheme,) = flows.values()
    assert scheme["flows"]["password"]["tokenUrl"] == "/api/v1/auth/token"
    assert any("登录" in t["name"] for t in spec["tags"])


def test_money_fields_are_strings_in_the_contract() -> None:
    spec = json.loads(export_openapi())
    schemas = spec["components"]["schemas"]
    assert schemas["EnterpriseCreate"]["properties"]["prior_year_revenue"]["type"] == "string"
    assert schemas["EnterpriseOut"]["properties"]["prior_year_revenue"]["type"] == "string"


def test_production_refuses_default_secret_and_fixed_date() -> None:
    with pytest.raises(ValidationError) as info:
        Settings(app_env="production", app_today=date(2026, 1, 1))
    text = str(info.value)
    assert "JWT_SECRET" in text and "APP_TODAY" in text and "PERSON_ID_KEY" in text
    ok = Settings(app_env="production", jwt_secret="x" * 40, person_id_key="k" * 40)  # type: ignore[arg-type]
    assert ok.is_production
    with pytest.raises(ValidationError) as short:
        Settings(app_env="production", jwt_secret="x" * 40, person_id_key="k" * 31)  # type: ignore[arg-type]
    assert "PERSON_ID_KEY" in str(short.value) and "JWT_SECRET" not in str(short.value)


def test_production_refuses_demo_seed(monkeypatch: pytest.MonkeyPatch) -> None:
    from app import cli
    from app.config import get_settings

    monkeypatch.setenv("APP_ENV", "production")
    monkeypatch.setenv("JWT_SECRET", "y" * 40)
    monkeypatch.setenv("PERSON_ID_KEY", "z" * 40)
    get_settings.cache_clear()
    try:
        with pytest.raises(SystemExit) as info:
            cli.main(["seed-demo"])
        assert "refused" in str(info.value)
    finally:
        get_settings.cache_clear()


def test_health(client: TestClient) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    assert client.get("/readyz").json() == {
        "status": "ok",
        "database": "reachable",
        "checks": {
            "database": {"ok": True, "detail": "reachable"},
            "calendar": {
                "ok": True,
                "detail": "published as far as due",
            },
        },
    }


def test_m3_readyz_and_the_log_warn_from_october_1_while_next_year_is_unpublished(
    settings: Settings,
    engine: Engine,
    session_factory: sessionmaker[Session],
    caplog: pytest.LogCaptureFixture,
) -> None:
    app = create_app(
        settings, engine=engine, session_factory=session_factory, clock=Clock(date(2026, 12, 2))
    )
    with TestClient(app) as c, caplog.at_level("WARNING", logger="app.health"):
        first, second = c.get("/readyz"), c.get("/readyz")
    assert first.status_code == 200  # a warning, not unready
    detail = first.json()["checks"]["calendar"]["detail"]
    assert "2027" in detail and "provisional" in detail and "PUT /api/v1/calendar/2027" in detail
    assert second.json()["checks"]["calendar"]["detail"] == detail
    warned = [r for r in caplog.records if "2027" in r.getMessage()]
    assert len(warned) == 1  # once a day per process, not at every probe


def test_readyz_reports_unreachable_database(settings: Settings) -> None:
    """With the start-up admin configured (as a deployment does), an unreachable database
    still lets the app start: alive, not ready, and the body says why."""
    broken = settings.model_copy(
        update={
            "database_url": "postgresql://nobody@127.0.0.1:1/x",
            "app_admin_username": "admin",
            "app_admin_password": SecretStr("change-me-please-123"),
        }
    )
    with TestClient(create_app(broken), raise_server_exceptions=False) as c:
        assert c.get("/healthz").status_code == 200
        r = c.get("/readyz")
    assert r.status_code == 503, r.text
    body = r.json()
    assert body["status"] == "unavailable"
    assert body["checks"]["database"] == {"ok": False, "detail": "unreachable (OperationalError)"}
    assert body["checks"]["initial_admin"]["ok"] is False
    assert body["checks"]["initial_admin"]["detail"].startswith("pending")


def _wait_for(condition: Any, seconds: float = 20.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return bool(condition())


def _admins(url: str, username: str) -> list[User]:
    eng = make_engine(url)
    try:
        with Session(eng) as s:
            return list(s.scalars(select(User).where(User.username == username)))
    finally:
        eng.dispose()


def test_initial_admin_appears_once_the_database_answers_without_a_restart(
    backend: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Started before its database exists (SQLite: a file opened read-write that is not
    there yet; PostgreSQL: a database not yet created), the app answers /healthz, reports
    503 with the pending admin, logs one warning per attempt (no traceback), and creates
    the admin by itself once the database is created and migrated."""
    monkeypatch.setattr(bootstrap, "RETRY_FIRST_SECONDS", 0.05)
    monkeypatch.setattr(bootstrap, "RETRY_MAX_SECONDS", 0.2)
    if backend == "sqlite":
        real_url = f"sqlite:///{tmp_path / 'later.db'}"
        url = f"sqlite:///file:{tmp_path / 'later.db'}?mode=rw&uri=true"
    else:
        reason = postgres_unavailable()
        if reason:
            pytest.skip(reason)
        admin_url = postgres_admin_url()
        assert admin_url
        name = pg_database_name("later")
        drop_postgres_database(name)
        url = real_url = make_url(admin_url).set(database=name).render_as_string(False)
    settings = Settings(
        database_url=url,
        app_env="demo",
        app_today=TEST_TODAY,
        app_admin_username="late_admin",
        app_admin_password=SecretStr("late-admin-password-1"),
        log_json=False,
    )
    app = create_app(settings)
    initial_admin = app.state.initial_admin
    try:
        with (
            caplog.at_level(logging.WARNING, logger="app.bootstrap"),
            TestClient(app, raise_server_exceptions=False) as c,
        ):
            assert c.get("/healthz").status_code == 200
            r = c.get("/readyz")
            assert r.status_code == 503, r.text
            assert r.json()["checks"]["database"]["ok"] is False
            assert r.json()["checks"]["initial_admin"]["detail"].startswith("pending")
            assert _wait_for(lambda: initial_admin.attempts >= 3), "no retry in the background"

            if backend == "postgresql":
                fresh_postgres_database(name)
            migrate(real_url)  # the database appears, migrated by the start command

            assert _wait_for(lambda: initial_admin.state == "done"), initial_admin.last_error
            r = c.get("/readyz")
            assert r.status_code == 200, r.text
            assert r.json()["checks"]["initial_admin"] == {"ok": True, "detail": "present"}
        (admin,) = _admins(real_url, "late_admin")
        assert admin.role == "admin"
        waiting = [rec for rec in caplog.records if rec.name == "app.bootstrap"]
        assert waiting and all(rec.levelno == logging.WARNING for rec in waiting)
        assert all(rec.exc_info is None for rec in waiting), "a traceback per attempt"
    finally:
        app.state.engine.dispose()
        if backend == "postgresql":
            drop_postgres_database(name)


def test_readiness_probe_retries_the_admin_at_once_when_the_database_answers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A database that answers but is not migrated yet: ready only once the admin exists;
    a probe that finds the database answering cuts the background wait short."""
    monkeypatch.setattr(bootstrap, "RETRY_FIRST_SECONDS", 3600.0)
    monkeypatch.setattr(bootstrap, "WAKE_MIN_SECONDS", 0.0)
    url = f"sqlite:///{tmp_path / 'unmigrated.db'}"
    settings = Settings(
        database_url=url,
        app_env="demo",
        app_admin_username="probe_admin",
        app_admin_password=SecretStr("probe-admin-password-1"),
        log_json=False,
    )
    app = create_app(settings)
    initial_admin = app.state.initial_admin
    try:
        with TestClient(app, raise_server_exceptions=False) as c:
            assert _wait_for(lambda: initial_admin.attempts >= 1)
            r = c.get("/readyz")
            assert r.status_code == 503, r.text
            assert r.json()["checks"] == {
                "database": {"ok": True, "detail": "reachable"},
                "initial_admin": {
                    "ok": False,
                    "detail": "pending: waiting for the database (last attempt: OperationalError)",
                },
                "calendar": {"ok": False, "detail": "calendar unreadable (OperationalError)"},
            }
            migrate(url)
            assert initial_admin.state == "pending"  # the background wait is an hour
            assert _wait_for(lambda: c.get("/readyz").status_code == 200, 10)
        assert len(_admins(url, "probe_admin")) == 1
    finally:
        app.state.engine.dispose()


# A deployment's environment and `.env`, as .env.example suggests, with values that must
# never reach the suite (a lower-case name too: pydantic-settings ignores the case).
CALLERS_ENVIRONMENT = {
    "APP_ADMIN_USERNAME": "admin",
    "APP_ADMIN_PASSWORD": "change-me-please-123",
    "DATABASE_URL": "postgresql://nobody@127.0.0.1:1/x",
    "APP_TODAY": "1999-12-31",
    "JWT_SECRET": "secret-of-the-callers-environment-0123456789",
    "app_env": "production",
}
CALLERS_DOTENV = """\
JWT_ISSUER=issuer-of-the-dotenv-file
UPLOAD_DIR=/nonexistent/dotenv-uploads
Log_Level=DEBUG
MAX_UPLOAD_BYTES=2048
"""


def test_suite_settings_are_built_explicitly(settings: Settings, database_url: str) -> None:
    """Whatever the caller exported or wrote to `.env`: `get_settings()` gives the
    defaults, and the suite's settings differ from them only where the suite says so."""
    defaults = {
        name: field.get_default(call_default_factory=True)
        for name, field in Settings.model_fields.items()
    }
    assert get_settings().model_dump() == defaults
    explicit = {"database_url", "app_env", "app_today", "max_request_bytes", "log_json"}
    suite = settings.model_dump()
    assert {k: v for k, v in suite.items() if k not in explicit} == {
        k: v for k, v in defaults.items() if k not in explicit
    }
    assert settings.database_url == database_url and settings.app_today == TEST_TODAY


def test_suite_ignores_the_callers_environment_and_dotenv(tmp_path: Path) -> None:
    """The suite run from a directory with a `.env` and with a deployment's variables
    exported: the settings it builds are unaffected and the app still starts on an
    unreachable database (SQLite variants, in a pytest of its own)."""
    (tmp_path / ".env").write_text(CALLERS_DOTENV, encoding="utf-8")
    env = {"PATH": os.environ["PATH"], "HOME": str(tmp_path), **CALLERS_ENVIRONMENT}
    tests = ROOT / "tests" / "test_app.py"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-p",
            "no:cacheprovider",
            "-p",
            "no:xdist",
            "-q",
            f"--rootdir={ROOT}",
            f"--basetemp={tmp_path / 'basetemp'}",
            "-c",
            str(ROOT / "pyproject.toml"),
            f"{tests}::test_suite_settings_are_built_explicitly[sqlite]",
            f"{tests}::test_readyz_reports_unreachable_database[sqlite]",
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0 and "2 passed" in proc.stdout, proc.stdout + proc.stderr


def test_initial_admin_from_settings(app: FastAPI, session: Session) -> None:
    app.state.settings = app.state.settings.model_copy(
        update={
            "app_admin_username": "root_admin",
            "app_admin_password": SecretStr("s3cret-enough-pw"),
        }
    )
    assert bootstrap.ensure_initial_admin(app.state.sessionmaker, app.state.settings)
    assert not bootstrap.ensure_initial_admin(app.state.sessionmaker, app.state.settings)
    admins = session.scalars(select(User).where(User.username == "root_admin")).all()
    assert len(admins) == 1 and admins[0].role == "admin"


def _write_routes(app: FastAPI) -> list[tuple[str, str]]:
    """Every write that takes input (log-in and log-out take no JSON body: nothing to be
    bad; their own refusals are tested in test_auth*.py)."""
    return sorted(
        (method.upper(), path)
        for path, ops in app.openapi()["paths"].items()
        for method in ops
        if method in {"post", "patch", "put"}
        and path not in ("/api/v1/auth/token", "/api/v1/auth/logout")
    )


def _row_counts(session: Session) -> dict[str, int]:
    return {
        t.name: int(session.scalar(select(func.count()).select_from(t)) or 0)
        for t in Base.metadata.sorted_tables
    }


BAD_BODIES: list[Any] = [{"unexpected_field": 1}, [], "x", {"reason": ""}]


def test_bad_input_on_every_write_endpoint_is_problem_json_and_writes_nothing(
    app: FastAPI,
    client: TestClient,
    auth,
    session: Session,  # type: ignore[no-untyped-def]
) -> None:
    routes = _write_routes(app)
    assert len(routes) >= 10
    before = _row_counts(session)
    for method, path in routes:
        url = (
            path.replace("{agreement_id}", "1")
            .replace("{credit_code}", "91320100MA1XA00014")
            .replace("{code}", "SKD_PROV")
        )
        for body in BAD_BODIES:
            for user in ("admin", "province", "committee"):
                r = client.request(method, url, headers=auth(user), json=body)
                assert 400 <= r.status_code < 500, (method, url, body, user, r.text)
                assert r.headers["content-type"] == "application/problem+json"
                if r.status_code == 422 and r.json()["code"] == "validation_error":
                    assert r.json()["errors"], (method, url)
    assert _row_counts(session) == before


def test_docs_are_served_without_a_cdn(client: TestClient) -> None:
    page = client.get("/docs")
    assert page.status_code == 200
    assert "/static-docs/swagger-ui-bundle.js" in page.text and "cdn" not in page.text.lower()
    assert '"persistAuthorization": true' in page.text
    js = client.get("/static-docs/swagger-ui-bundle.js")
    assert js.status_code == 200 and len(js.content) > 500_000
    assert client.get("/static-docs/swagger-ui.css").status_code == 200
    assert client.get("/redoc").status_code == 200
    assert client.get("/docs/oauth2-redirect").status_code == 200


def test_docs_api_md_lists_exactly_the_served_endpoints() -> None:
    """docs/api.md's endpoint tables, row by row (`| METHOD | `/path` | …`), against the
    OpenAPI document: every documented endpoint is served and every served one under
    /api/v1 is documented (path parameters compared by position, names aside)."""
    spec = json.loads(export_openapi())

    def shape(path: str) -> str:
        return re.sub(r"\{[^}]+\}", "{}", path.rstrip("/"))

    served = {
        (m.upper(), shape(p.removeprefix("/api/v1")))
        for p, ops in spec["paths"].items()
        if p.startswith("/api/v1/")
        for m in ops
    }
    text = (ROOT / "docs" / "api.md").read_text(encoding="utf-8")
    documented = {
        (m, shape(p))
        for m, p in re.findall(r"^\| (GET|POST|PUT|PATCH|DELETE) \| `([^`]+)` \|", text, re.M)
    }
    assert len(documented) >= 60
    assert documented - served == set(), "documented in docs/api.md but not served"
    assert served - documented == set(), "served but missing from docs/api.md"
