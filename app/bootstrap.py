"""Start-up tasks: the lock that serialises start-up writes across replicas, and the first
admin from APP_ADMIN_USERNAME / APP_ADMIN_PASSWORD, created once the database answers."""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import logging
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import NullPool

from app.auth.service import ensure_admin
from app.config import Settings
from app.db import normalize_url

log = logging.getLogger("app.bootstrap")

# One fixed key for every replica and every version of the service. PostgreSQL scopes
# advisory locks to the database, so services on other databases never contend.
STARTUP_LOCK_KEY = int.from_bytes(b"ldgr", "big")


@contextlib.contextmanager
def startup_lock(url: str) -> Iterator[None]:
    """Hold the start-up lock while migrating or seeding reference data, so replicas that
    start together apply them one after the other (the next finds the work done; without
    it both read the same revision and the second fails creating what the first made).

    PostgreSQL: a session-level advisory lock taken on a dedicated connection outside any
    transaction, released in `finally` (and by the server if the process dies, since its
    connection closes). SQLite has no advisory locks, and a SQLite file can only be shared
    by processes of one host (its WAL needs shared memory), so an exclusive flock on a
    file beside the database serves (released by the kernel if the process dies).
    In-memory SQLite is private to its process and needs nothing."""
    url = normalize_url(url)
    parsed = make_url(url)
    if parsed.get_backend_name() == "postgresql":
        with _advisory_lock(url):
            yield
    elif parsed.database and parsed.database != ":memory:" and not parsed.query.get("uri"):
        with _file_lock(Path(f"{parsed.database}.startup-lock")):
            yield
    else:
        yield


@contextlib.contextmanager
def _advisory_lock(url: str) -> Iterator[None]:
    engine = create_engine(url, poolclass=NullPool)
    try:
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            key = {"key": STARTUP_LOCK_KEY}
            if not conn.scalar(text("SELECT pg_try_advisory_lock(:key)"), key):
                log.warning("another replica holds the start-up lock; waiting for it")
                conn.execute(text("SELECT pg_advisory_lock(:key)"), key)
            try:
                yield
            finally:
                try:
                    conn.execute(text("SELECT pg_advisory_unlock(:key)"), key)
                except SQLAlchemyError:  # the connection is gone, and the lock with it
                    log.warning("could not release the start-up lock explicitly")
    finally:
        engine.dispose()


@contextlib.contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as fh:  # kept afterwards: removing a lock file races its users
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            log.warning("another process holds the start-up lock; waiting for it")
            fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def ensure_initial_admin(factory: sessionmaker[Session], settings: Settings) -> bool:
    """Create the configured first admin if absent, in one transaction. True if created."""
    if not settings.app_admin_username or settings.app_admin_password is None:
        return False
    with factory() as session, session.begin():
        created = ensure_admin(
            session,
            username=settings.app_admin_username,
            password=settings.app_admin_password.get_secret_value(),
        )
    if created:
        log.info("created the initial admin user", extra={"username": settings.app_admin_username})
    return created


# Waits between attempts while the database does not answer: doubling up to the maximum.
# A readiness probe that finds the database answering cuts the wait short, at most once
# per WAKE_MIN_SECONDS.
RETRY_FIRST_SECONDS = 1.0
RETRY_MAX_SECONDS = 30.0
WAKE_MIN_SECONDS = 5.0


class InitialAdmin:
    """The first admin, attempted at start-up and retried in the background until the
    database answers and the schema is there; a failed attempt is one warning line and
    never stops the app from starting. `readiness()` reports what is pending."""

    def __init__(self, factory: sessionmaker[Session], settings: Settings) -> None:
        self._factory = factory
        self._settings = settings
        configured = bool(settings.app_admin_username) and settings.app_admin_password is not None
        self.state: Literal["not_configured", "pending", "done"] = (
            "pending" if configured else "not_configured"
        )
        self.last_error: str | None = None
        self.attempts = 0
        self._last_attempt = float("-inf")
        self._attempt_lock = threading.Lock()
        self._wake: asyncio.Event | None = None
        self._task: asyncio.Task[None] | None = None

    def attempt(self) -> bool:
        """One try (blocking; run it in a thread). True once the admin exists."""
        with self._attempt_lock:
            if self.state != "pending":
                return True
            self._last_attempt = time.monotonic()
            try:
                ensure_initial_admin(self._factory, self._settings)
            except SQLAlchemyError as exc:
                self.last_error = type(exc).__name__
                log.warning(
                    "initial admin not created yet (%s); retrying until the database answers",
                    self.last_error,
                    extra={"attempt": self.attempts + 1},
                )
                return False
            except Exception:
                self.last_error = "unexpected error"
                log.exception("initial admin not created: unexpected error; retrying")
                return False
            finally:
                self.attempts += 1  # counted once its outcome is recorded
            self.state, self.last_error = "done", None
            return True

    async def _retry(self, wake: asyncio.Event) -> None:
        delay = RETRY_FIRST_SECONDS
        while not await asyncio.to_thread(self.attempt):
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(wake.wait(), delay)
            wake.clear()
            delay = min(delay * 2, RETRY_MAX_SECONDS)

    def start(self) -> None:
        """Begin the attempts (from the running event loop, in the app's lifespan)."""
        if self.state == "pending" and self._task is None:
            self._wake = asyncio.Event()
            self._task = asyncio.get_running_loop().create_task(self._retry(self._wake))

    def wake(self) -> None:
        """Try again now instead of after the current wait (the database answers again)."""
        recent = time.monotonic() - self._last_attempt < WAKE_MIN_SECONDS
        if self.state == "pending" and self._wake is not None and not recent:
            self._wake.set()

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = self._wake = None

    def readiness(self) -> dict[str, Any] | None:
        """This task's entry among /readyz's checks (None when no admin is configured)."""
        if self.state == "not_configured":
            return None
        if self.state == "done":
            return {"ok": True, "detail": "present"}
        reason = f" (last attempt: {self.last_error})" if self.last_error else ""
        return {"ok": False, "detail": f"pending: waiting for the database{reason}"}
