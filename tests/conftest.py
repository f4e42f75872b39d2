"""Fixtures: every database-backed test runs on SQLite and on PostgreSQL.

PostgreSQL runs when TEST_POSTGRES_URL names a reachable server (the test creates its
own databases there); otherwise the PostgreSQL variants skip with the reason. Each test
runs inside one transaction that is rolled back (the app's commits become savepoints).
The only other variables read, by name in their own modules, size the long runs:
TEST_CRASH_CONTRIBUTIONS (tests/test_crash.py) and TEST_FUZZ_EXAMPLES
(tests/test_api_fuzz.py); RELIABILITY.md gives the full-size commands."""

from __future__ import annotations

import fcntl
import os
import tempfile
from collections.abc import Iterator
from datetime import UTC, date, datetime
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Connection, Engine, create_engine, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

from app.auth.tokens import issue_token
from app.cli import migrate
from app.config import Settings, get_settings
from app.db import make_engine, normalize_url
from app.kit.clock import Clock
from app.main import create_app
from app.models import User
from app.programs.base import program_codes, unregister
from tests import contract_check
from tests.fixtures.seed import seed_minimal

TEST_TODAY = date(2026, 3, 31)
BACKENDS = ["sqlite", "postgresql"]


def _worker() -> str:
    return os.environ.get("PYTEST_XDIST_WORKER", "main")


# One id per pytest run (xdist hands its workers the same one), so that two runs of the
# suite against one server never share or drop each other's databases.
_RUN = os.environ.get("PYTEST_XDIST_TESTRUNUID", f"{os.getpid():x}")[:8]


def pg_database_name(tag: str) -> str:
    """The name of this run's and this worker's PostgreSQL database for `tag`."""
    return f"ledger_{tag}_{_RUN}_{_worker()}"


def postgres_admin_url() -> str | None:
    url = os.environ.get("TEST_POSTGRES_URL")
    return normalize_url(url) if url else None


_pg_reason: str | None = None


def postgres_unavailable() -> str | None:
    """Why PostgreSQL tests cannot run here, or None when they can."""
    global _pg_reason
    if _pg_reason is not None:
        return _pg_reason or None
    url = postgres_admin_url()
    if not url:
        _pg_reason = "TEST_POSTGRES_URL is not set (PostgreSQL variant skipped)"
        return _pg_reason
    try:
        eng = create_engine(url)
        with eng.connect() as conn:
            conn.execute(text("SELECT 1"))
        eng.dispose()
    except Exception as exc:
        _pg_reason = f"PostgreSQL at TEST_POSTGRES_URL is not reachable: {exc.__class__.__name__}"
        return _pg_reason
    _pg_reason = ""
    return None


def fresh_postgres_database(name: str) -> str:
    """Drop and create database `name` on the test server; return its URL."""
    admin_url = postgres_admin_url()
    assert admin_url
    eng = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with eng.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    eng.dispose()
    return make_url(admin_url).set(database=name).render_as_string(hide_password=False)


def drop_postgres_database(name: str) -> None:
    admin_url = postgres_admin_url()
    assert admin_url
    eng = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with eng.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    eng.dispose()


def empty_database_url(backend: str, tmp_path_factory: pytest.TempPathFactory, tag: str) -> str:
    if backend == "sqlite":
        return f"sqlite:///{tmp_path_factory.mktemp(tag) / 'test.db'}"
    reason = postgres_unavailable()
    if reason:
        pytest.skip(reason)
    return fresh_postgres_database(pg_database_name(tag))


@pytest.fixture(scope="session", autouse=True)
def contract_watch() -> Iterator[None]:
    """Every TestClient answer passes through `contract_check` (below)."""
    original = TestClient.request

    def request(self: TestClient, method: str, url: Any, *args: Any, **kwargs: Any) -> Any:
        response = original(self, method, url, *args, **kwargs)
        if response.headers.get("content-type", "").startswith("application/problem+json"):
            try:
                body = response.json()
            except ValueError:
                body = None
            contract_check.check(
                self.app, method.upper(), response.request.url.path, response.status_code, body
            )
        return response

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(TestClient, "request", request)
        yield


@pytest.fixture(autouse=True)
def contract_holds() -> Iterator[None]:
    """A test fails if the service answered a problem its operation does not document
    (tests/contract_check.py): the document is what generated clients are built from."""
    contract_check.FOUND.clear()
    yield
    found, contract_check.FOUND[:] = list(contract_check.FOUND), []
    assert not found, "undocumented problems:\n" + "\n".join(sorted(set(found)))


@pytest.fixture(autouse=True)
def programme_registry() -> Iterator[None]:
    """A programme a test registers (a plug-in) is gone after it, whatever happened:
    later tests in the same worker see the built-in programmes only."""
    before = program_codes()
    yield
    for code in set(program_codes()) - set(before):
        unregister(code)
    assert program_codes() == before


@pytest.fixture(scope="session", autouse=True)
def hermetic_settings() -> Iterator[None]:
    """Tests build their settings explicitly: every environment variable that names a
    setting (pydantic-settings reads them case-insensitively: APP_*, DATABASE_URL,
    JWT_SECRET, …) is removed for the run, and no `.env` file is read, so a caller's
    deployment environment cannot change what the suite tests. TEST_POSTGRES_URL is the
    suite's own variable and stays."""
    fields = {name.lower() for name in Settings.model_fields}
    with pytest.MonkeyPatch.context() as mp:
        for key in list(os.environ):
            if key.lower() in fields:
                mp.delenv(key)
        mp.setitem(Settings.model_config, "env_file", None)
        get_settings.cache_clear()
        yield
    get_settings.cache_clear()


@pytest.fixture(scope="session", params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def seeded_database_url(
    backend: str, tmp_path_factory: pytest.TempPathFactory, tag: str
) -> Iterator[str]:
    """A migrated database `tag` with the minimal seed committed (`tests.fixtures.seed`:
    the reference data and the parties the tests act as, never the demo); a PostgreSQL
    one is dropped after."""
    url = empty_database_url(backend, tmp_path_factory, tag)
    migrate(url)
    eng = make_engine(url)
    with Session(eng) as session, session.begin():
        seed_minimal(session)
    eng.dispose()
    yield url
    if backend == "postgresql":
        drop_postgres_database(pg_database_name(tag))


@pytest.fixture(scope="session")
def database_url(backend: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The suite's seeded database, one per backend and worker."""
    yield from seeded_database_url(backend, tmp_path_factory, "suite")


@pytest.fixture(scope="session")
def engine(database_url: str) -> Iterator[Engine]:
    eng = make_engine(database_url, pool_size=20)
    yield eng
    eng.dispose()


@pytest.fixture
def settings(database_url: str) -> Settings:
    return Settings(
        database_url=database_url,
        app_env="demo",
        app_today=TEST_TODAY,
        max_request_bytes=64 * 1024,
        log_json=False,
    )


@pytest.fixture
def connection(engine: Engine) -> Iterator[Connection]:
    conn = engine.connect()
    trans = conn.begin()
    yield conn
    trans.rollback()
    conn.close()


@pytest.fixture
def session_factory(connection: Connection) -> sessionmaker[Session]:
    return sessionmaker(
        bind=connection, join_transaction_mode="create_savepoint", expire_on_commit=False
    )


@pytest.fixture
def session(session_factory: sessionmaker[Session]) -> Iterator[Session]:
    with session_factory() as s:
        yield s


@pytest.fixture
def app(settings: Settings, engine: Engine, session_factory: sessionmaker[Session]) -> FastAPI:
    return create_app(
        settings, engine=engine, session_factory=session_factory, clock=Clock(TEST_TODAY)
    )


@pytest.fixture
def client(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app, raise_server_exceptions=False) as c:
        yield c


def token_for(settings: Settings, session: Session, username: str, **overrides: Any) -> str:
    user = session.scalars(select(User).where(User.username == username)).one()
    scope = {
        k: v
        for k in ("bank_code", "region_code", "fund_code")
        if (v := getattr(user, k)) is not None
    }
    return issue_token(
        settings,
        user_id=user.id,
        role=user.role,
        scope=scope,
        now=overrides.get("now", datetime.now(UTC)),
    )


@pytest.fixture
def auth(settings: Settings, session: Session):  # type: ignore[no-untyped-def]
    """auth("bank_jsb") → headers with a bearer token for that seeded user."""

    def headers(username: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {token_for(settings, session, username)}"}

    return headers


@pytest.fixture
def postgres_engine(engine: Engine, backend: str) -> Engine:
    """The suite's engine, on PostgreSQL only (real parallel connections, real commits)."""
    if backend != "postgresql":
        pytest.skip("concurrency guarantees are tested on PostgreSQL")
    return engine


@pytest.fixture(scope="module")
def pg_engine() -> Iterator[Engine]:
    """A throwaway PostgreSQL database with the minimal seed, for tests that commit from
    many parallel connections (dropped after the module)."""
    reason = postgres_unavailable()
    if reason:
        pytest.skip(reason)
    # One module of many-connection tests at a time across xdist workers: together they
    # would pass the server's max_connections (100 by default).
    with open(os.path.join(tempfile.gettempdir(), "ledger-pg-concurrency.lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        name = pg_database_name("parallel")
        url = fresh_postgres_database(name)
        migrate(url)
        eng = make_engine(url, pool_size=27)
        with Session(eng) as s, s.begin():
            seed_minimal(s)
        yield eng
        eng.dispose()
        drop_postgres_database(name)


_backend_counts: dict[str, dict[str, int]] = {}


def pytest_configure(config: pytest.Config) -> None:
    # pytest-xdist registers it; a run without xdist (-p no:xdist) needs it known too
    config.addinivalue_line("markers", "xdist_group(name): run the group on one xdist worker")


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if report.when != "call" and not (report.when == "setup" and report.skipped):
        return
    for name in BACKENDS:
        if f"[{name}" in report.nodeid or f"-{name}]" in report.nodeid:
            counts = _backend_counts.setdefault(name, {"passed": 0, "failed": 0, "skipped": 0})
            counts[report.outcome] = counts.get(report.outcome, 0) + 1


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if not _backend_counts and not hasattr(terminalreporter.config, "workerinput"):
        # under xdist the controller sees every worker's reports through the same hook
        return
    for name in BACKENDS:
        c = _backend_counts.get(name, {"passed": 0, "failed": 0, "skipped": 0})
        terminalreporter.write_line(
            f"database backend {name}: {c['passed']} passed, {c['failed']} failed, "
            f"{c['skipped']} skipped"
        )
