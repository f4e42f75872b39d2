"""Backups restore to a ledger that verifies (L-2): `ledger backup` on SQLite (online
backup) and on PostgreSQL (`pg_dump`, then `pg_restore` into a new database), and the
restored copy passes `ledger verify` with every entry there."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from sqlalchemy import create_engine, func, select

from app import cli
from app.config import get_settings
from app.models import LedgerEntry
from tests.conftest import (
    drop_postgres_database,
    fresh_postgres_database,
    pg_database_name,
    postgres_unavailable,
)


def _ledger(monkeypatch: pytest.MonkeyPatch, url: str, *args: str) -> int:
    monkeypatch.setenv("DATABASE_URL", url)
    get_settings.cache_clear()
    try:
        cli.main(list(args))
    except SystemExit as exc:  # a message instead of a number: a refusal (exit status 1)
        return exc.code if isinstance(exc.code, int) else 1
    finally:
        get_settings.cache_clear()
    return 0


def _entries(url: str) -> int:
    engine = create_engine(url.replace("postgresql://", "postgresql+psycopg://"))
    try:
        with engine.connect() as conn:
            return int(conn.scalar(select(func.count()).select_from(LedgerEntry)) or 0)
    finally:
        engine.dispose()


def _seeded(monkeypatch: pytest.MonkeyPatch, url: str) -> int:
    assert _ledger(monkeypatch, url, "migrate") == 0
    assert _ledger(monkeypatch, url, "seed-demo") == 0
    count = _entries(url)
    assert count > 10
    return count


def test_sqlite_online_backup_restores_and_verifies(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    url = f"sqlite:///{tmp_path / 'live.db'}"
    entries = _seeded(monkeypatch, url)
    copy = tmp_path / "backup.db"
    assert _ledger(monkeypatch, url, "backup", "--out", str(copy)) == 0
    assert _ledger(monkeypatch, url, "backup", "--out", str(copy)) != 0  # never overwrites
    restored = f"sqlite:///{copy}"
    assert _entries(restored) == entries
    capsys.readouterr()
    assert _ledger(monkeypatch, restored, "verify") == 0
    assert "ledger verified" in capsys.readouterr().out


def test_postgres_dump_restores_into_a_new_database_that_verifies(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    reason = postgres_unavailable()
    if reason:
        pytest.skip(reason)
    if shutil.which("pg_restore") is None:
        pytest.skip("pg_restore is not installed")
    source, target = pg_database_name("backup_src"), pg_database_name("backup_dst")
    url = fresh_postgres_database(source)
    restored = fresh_postgres_database(target)
    try:
        entries = _seeded(monkeypatch, url)
        dump = tmp_path / "ledger.dump"
        assert _ledger(monkeypatch, url, "backup", "--out", str(dump)) == 0
        plain = restored.replace("postgresql+psycopg://", "postgresql://")
        subprocess.run(
            ["pg_restore", "--no-owner", "--exit-on-error", "--dbname", plain, str(dump)],
            check=True,
            capture_output=True,
            timeout=300,
        )
        assert _entries(restored) == entries
        capsys.readouterr()
        assert _ledger(monkeypatch, restored, "verify") == 0
        assert "ledger verified" in capsys.readouterr().out
    finally:
        drop_postgres_database(source)
        drop_postgres_database(target)
