"""Engine and sessions. One transaction per request, owned by the request boundary
(`app.kit.uow.TransactionalRoute`); services only flush."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import Request
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker


def normalize_url(url: str) -> str:
    """Accept plain `postgresql://` / `postgres://` URLs and use psycopg 3 for them."""
    if url.startswith("postgres://"):
        url = "postgresql://" + url[len("postgres://") :]
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url[len("postgresql://") :]
    return url


def make_engine(
    url: str,
    *,
    pool_size: int = 10,
    pre_ping: bool = False,
    echo: bool = False,
    pool_timeout: float = 30.0,
    lock_timeout_ms: int | None = None,
) -> Engine:
    """SQLite or PostgreSQL. Pooled PostgreSQL connections are recycled every 30 minutes;
    a connection found dead invalidates the pool, so the next checkout reconnects.
    `pre_ping` tests every checkout first, at the price of one more round trip."""
    url = normalize_url(url)
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        # a URI filename (`sqlite:///file:…?mode=rw&uri=true`) is not a path to create
        if parsed.database and parsed.database != ":memory:" and not parsed.query.get("uri"):
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(
            url, echo=echo, connect_args={"check_same_thread": False, "timeout": 30}
        )
        _sqlite_pragmas(engine)
        return engine
    engine = create_engine(
        url,
        echo=echo,
        pool_size=pool_size,
        max_overflow=pool_size,
        pool_timeout=pool_timeout,
        pool_pre_ping=pre_ping,
        pool_recycle=1800,
    )
    if lock_timeout_ms:
        # a request never waits longer than this for a row or table lock (55P03 → 503)
        @event.listens_for(engine, "connect")
        def _on_connect(dbapi_connection: Any, _record: Any) -> None:
            with dbapi_connection.cursor() as cursor:
                cursor.execute(f"SET lock_timeout = {int(lock_timeout_ms)}")
            dbapi_connection.commit()

    return engine


def _sqlite_pragmas(engine: Engine) -> None:
    """SQLite: enforce foreign keys, wait for locks, and let SQLAlchemy own BEGIN so that
    savepoints work (the pysqlite driver otherwise defers BEGIN on its own). Write
    transactions take the lock at BEGIN (IMMEDIATE) so two writers never deadlock."""

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        if conn.get_execution_options().get("isolation_level") != "AUTOCOMMIT":
            conn.exec_driver_sql("BEGIN IMMEDIATE")


def make_sessionmaker(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(bind=engine, expire_on_commit=False, autoflush=True)


async def get_session(request: Request) -> Session:
    """The request's session, opened and committed by the route boundary (a coroutine:
    it only reads the request's state, so no trip to a worker thread)."""
    session: Session = request.state.session
    return session
