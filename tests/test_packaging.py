"""The image starts: the project installed from its wheel (never from this checkout) runs
the Dockerfile's start command (migrate, seed-reference, uvicorn) on an empty database and
answers /readyz; replicas starting together take turns for the start-up writes.

Offline and without Docker: the wheel is built with the suite's own setuptools, installed
with --no-deps into a fresh virtualenv outside the repository whose dependencies are the
suite's site-packages (a .pth file), and run with an environment built from scratch."""

from __future__ import annotations

import fnmatch
import importlib.metadata
import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import sysconfig
import threading
import time
import urllib.error
import urllib.request
import venv
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, func, inspect, select, text

from app.bootstrap import STARTUP_LOCK_KEY, startup_lock
from app.cli import _alembic_config
from app.db import make_engine
from app.models import Region, User
from tests.conftest import (
    drop_postgres_database,
    empty_database_url,
    pg_database_name,
)

ROOT = Path(__file__).resolve().parent.parent
HEADS = set(ScriptDirectory.from_config(_alembic_config()).get_heads())
ADMIN_PASSWORD = "image-admin-password-1"


# -- the Dockerfile ------------------------------------------------------------------


def _instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of the Dockerfile, continuation lines joined."""
    text_ = (ROOT / "Dockerfile").read_text(encoding="utf-8")
    lines = [ln for ln in text_.replace("\\\n", " ").splitlines() if ln.strip()]
    out = []
    for line in lines:
        if line.lstrip().startswith("#"):
            continue
        word, _, rest = line.strip().partition(" ")
        out.append((word.upper(), rest.strip()))
    return out


def _stages() -> list[list[tuple[str, str]]]:
    stages: list[list[tuple[str, str]]] = []
    for ins in _instructions():
        if ins[0] == "FROM":
            stages.append([])
        if stages:
            stages[-1].append(ins)
    return stages


def start_command() -> str:
    """The shell command of the image's CMD (exec form: sh -c "...")."""
    (cmd,) = [args for word, args in _stages()[-1] if word == "CMD"]
    argv = json.loads(cmd)
    assert argv[:2] == ["sh", "-c"], argv
    return str(argv[2])


def _position(stage: list[tuple[str, str]], word: str, pattern: str) -> int:
    found = [i for i, (w, args) in enumerate(stage) if w == word and re.search(pattern, args)]
    assert found, f"no {word} matching {pattern!r}"
    return found[0]


def test_dockerfile_installs_dependencies_before_the_code_and_runs_as_a_user() -> None:
    build, runtime = _stages()
    deps_copy = _position(build, "COPY", r"^pyproject\.toml\s")
    deps_install = _position(build, "RUN", r"pip install -r ")
    code_copy = _position(build, "COPY", r"^app\s")
    code_install = _position(build, "RUN", r"pip install --no-deps \.$")
    assert deps_copy < deps_install < code_copy < code_install
    assert not any(w == "COPY" and "app" in a for w, a in build[:deps_install])
    # the layer's requirement list is exactly pyproject's [project] dependencies
    (snippet,) = re.findall(r'python -c "([^"]+)" > ', build[deps_install][1])
    listed = subprocess.run(
        [sys.executable, "-c", snippet], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.split()
    import tomllib

    with open(ROOT / "pyproject.toml", "rb") as fh:
        assert listed == tomllib.load(fh)["project"]["dependencies"]

    copied = " ".join(a for w, a in runtime if w == "COPY")
    assert "migrations" not in copied and "alembic.ini" not in copied  # shipped in the wheel
    (user,) = [a for w, a in runtime if w == "USER"]
    assert user not in ("root", "0")
    assert ("VOLUME", "/data") in runtime
    (health,) = [a for w, a in runtime if w == "HEALTHCHECK"]
    assert "/readyz" in health and "PORT" in health
    env = " ".join(a for w, a in runtime if w == "ENV")
    assert "APP_ENV=production" in env and "DATABASE_URL=sqlite:////data/" in env
    assert re.fullmatch(
        r"ledger metrics-dir && ledger migrate && ledger seed-reference && exec uvicorn --factory "
        r"app\.main:app_factory --host 0\.0\.0\.0 --port \$\{PORT:-8000\} .*",
        start_command(),
    )


def _docker_ignored(path: str, patterns: list[str]) -> bool:
    """Docker's rule: the last pattern matching the path or one of its parents decides."""
    parts = path.split("/")
    candidates = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    ignored = False
    for pattern in patterns:
        negate = pattern.startswith("!")
        pat = pattern.lstrip("!").rstrip("/")
        if pat.startswith("**/"):
            hit = any(fnmatch.fnmatchcase(c.rsplit("/", 1)[-1], pat[3:]) for c in candidates)
        else:
            hit = any(
                fnmatch.fnmatchcase(c, pat) and c.count("/") == pat.count("/") for c in candidates
            )
        if hit:
            ignored = not negate
    return ignored


def test_dockerignore_sends_only_what_the_build_copies() -> None:
    lines = (ROOT / ".dockerignore").read_text(encoding="utf-8").splitlines()
    patterns = [ln.strip() for ln in lines if ln.strip() and not ln.startswith("#")]
    for kept in (
        "pyproject.toml",
        "README.md",
        "app/main.py",
        "app/migrations/env.py",
        "app/migrations/versions/0001_foundation.py",
        "app/seed/regions.json",
    ):
        assert not _docker_ignored(kept, patterns), kept
    for left_out in (
        ".env",
        ".venv/bin/python",
        "var/ledger.db",
        ".git/HEAD",
        "tests/conftest.py",
        "bench/ledger_bench.py",
        "app/__pycache__/main.cpython-311.pyc",
        "app/migrations/versions/__pycache__/x.pyc",
        "risk_fund_ledger.egg-info/PKG-INFO",
    ):
        assert _docker_ignored(left_out, patterns), left_out


# -- the wheel, installed outside the repository -------------------------------------


def _run(argv: list[str | Path], *, cwd: Path, env: dict[str, str]) -> str:
    proc = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, f"{argv}: exit {proc.returncode}\n{proc.stdout}{proc.stderr}"
    return proc.stdout


@dataclass(frozen=True)
class Installed:
    wheel: Path
    venv: Path
    home: Path  # a working directory outside the repository

    @property
    def bin(self) -> Path:
        return self.venv / "bin"


def _plain_env(home: Path, path: str, **extra: str) -> dict[str, str]:
    """An environment from scratch: nothing of the caller's APP_*, DATABASE_URL, PYTHON*."""
    return {
        "PATH": path,
        "HOME": str(home),
        "LANG": "C.UTF-8",
        "PIP_DISABLE_PIP_VERSION_CHECK": "1",
        "PIP_NO_INPUT": "1",
        **extra,
    }


@pytest.fixture(scope="session")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Installed:
    """One wheel per run, installed once; shared by both backends (session-scoped: the
    backend parameter may reorder tests across modules)."""
    base = tmp_path_factory.mktemp("wheel")
    assert ROOT not in base.parents
    src = base / "src"
    src.mkdir()
    # a copy of what the Dockerfile copies, so the build leaves nothing in the checkout
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(ROOT / name, src / name)
    shutil.copytree(ROOT / "app", src / "app", ignore=shutil.ignore_patterns("__pycache__"))
    home = base / "home"
    home.mkdir()
    target = base / "venv"
    env = _plain_env(home, f"{target / 'bin'}:/usr/local/bin:/usr/bin:/bin")
    pip = [sys.executable, "-m", "pip"]
    offline = ["--no-deps", "--no-index", "--quiet"]
    dist = base / "dist"
    _run([*pip, "wheel", *offline, "--no-build-isolation", "-w", dist, src], cwd=home, env=env)
    (wheel,) = dist.glob("risk_fund_ledger-*.whl")

    venv.create(target, with_pip=False)
    python = target / "bin" / "python"
    site = _run(
        [python, "-c", "import sysconfig as s; print(s.get_path('purelib'))"], cwd=home, env=env
    ).strip()
    # the dependencies come from the suite's own site-packages (appended after the new
    # venv's, and not a site dir: the checkout's editable-install hook there never runs)
    ours = dict.fromkeys([sysconfig.get_path("purelib"), sysconfig.get_path("platlib")])
    (Path(site) / "suite_dependencies.pth").write_text("\n".join(ours) + "\n", encoding="utf-8")
    _run([*pip, "--python", python, "install", *offline, wheel], cwd=home, env=env)
    # and the dependencies' commands the image runs, as pip would have installed them
    for dist_name in ("uvicorn",):
        for ep in importlib.metadata.distribution(dist_name).entry_points:
            if ep.group == "console_scripts":
                script = target / "bin" / ep.name
                script.write_text(
                    f"#!{python}\nimport sys\nfrom {ep.module} import {ep.attr}\n"
                    f"if __name__ == '__main__':\n    sys.exit({ep.attr}())\n",
                    encoding="utf-8",
                )
                script.chmod(0o755)
    return Installed(wheel=wheel, venv=target, home=home)


@pytest.mark.xdist_group("wheel")
def test_wheel_ships_the_migrations(installed: Installed) -> None:
    names = set(zipfile.ZipFile(installed.wheel).namelist())
    versions = {
        f"app/migrations/versions/{p.name}"
        for p in (ROOT / "app" / "migrations" / "versions").glob("*.py")
    }
    assert versions and versions <= names
    assert {"app/migrations/env.py", "app/migrations/script.py.mako"} <= names
    assert {"app/seed/regions.json", "app/seed/lpr.json", "app/seed/funds.json"} <= names


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _get(url: str) -> tuple[int, dict[str, object]]:
    try:
        with urllib.request.urlopen(url, timeout=5) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def _stop(proc: subprocess.Popen[bytes]) -> None:
    """End the start command's process group (uvicorn and its workers), then reap it."""
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)


@pytest.mark.xdist_group("wheel")
def test_the_image_start_command_serves_from_the_installed_wheel(
    installed: Installed, backend: str, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """`ledger migrate && ledger seed-reference && exec uvicorn …`, the image's CMD, on an
    empty database, from a directory outside the repository, with the production
    environment of the image: /readyz answers 200 with the initial admin in place."""
    url = empty_database_url(backend, tmp_path_factory, "wheel")
    workdir = installed.home
    port = _free_port()
    env = _plain_env(
        workdir,
        f"{installed.bin}:/usr/local/bin:/usr/bin:/bin",
        APP_ENV="production",
        DATABASE_URL=url,
        UPLOAD_DIR=str(workdir / "data" / "uploads"),
        JWT_SECRET=secrets.token_urlsafe(32),
        PERSON_ID_KEY=secrets.token_urlsafe(32),
        APP_ADMIN_USERNAME="image_admin",
        APP_ADMIN_PASSWORD=ADMIN_PASSWORD,
        PORT=str(port),
        PYTHONUNBUFFERED="1",
        PYTHONDONTWRITEBYTECODE="1",
    )
    engine = make_engine(url)
    try:
        # the project comes from the wheel, and the command from the new virtualenv
        code = "import app; print(app.__file__)"
        where = _run([installed.bin / "python", "-c", code], cwd=workdir, env=env).strip()
        assert installed.venv in Path(where).resolve().parents, where
        assert ROOT not in Path(where).resolve().parents, where
        assert shutil.which("ledger", path=env["PATH"]) == str(installed.bin / "ledger")

        log = workdir / f"start-{backend}.log"  # a file: a full pipe would stall the server
        with open(log, "w", encoding="utf-8") as out:
            proc = subprocess.Popen(
                ["sh", "-c", start_command()],
                cwd=workdir,
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        try:
            deadline, status = time.monotonic() + 120, 0
            body: dict[str, object] = {}
            while time.monotonic() < deadline and proc.poll() is None:
                try:
                    status, body = _get(f"http://127.0.0.1:{port}/readyz")
                except OSError:
                    status = 0
                if status == 200:
                    break
                time.sleep(0.25)
            if status != 200:
                _stop(proc)
                output = log.read_text(encoding="utf-8")
                pytest.fail(
                    f"not ready (exit {proc.returncode}, /readyz {status} {body}):\n{output}"
                )
            checks = body["checks"]
            assert isinstance(checks, dict)
            assert {k: checks[k] for k in ("database", "initial_admin")} == {
                "database": {"ok": True, "detail": "reachable"},
                "initial_admin": {"ok": True, "detail": "present"},
            }
            assert checks["calendar"]["ok"] is True  # a warning from October 1, not unready
            assert _get(f"http://127.0.0.1:{port}/healthz") == (200, {"status": "ok"})
        finally:
            _stop(proc)
        with engine.connect() as conn:
            assert set(conn.scalars(text("SELECT version_num FROM alembic_version"))) == HEADS
            assert conn.scalar(select(func.count()).select_from(Region))
            assert conn.scalar(select(User.role).where(User.username == "image_admin")) == "admin"
    finally:
        engine.dispose()
        if backend == "postgresql":
            drop_postgres_database(pg_database_name("wheel"))


# -- replicas starting together -------------------------------------------------------

# A replica's start-up writes: it says it is ready (its imports done), then waits for the
# file `go`, so that two replicas really start their writes at the same moment.
REPLICA = """\
import pathlib, sys, time
from app.cli import main
here = pathlib.Path.cwd()
(here / f"ready-{sys.argv[1]}").touch()
while not (here / "go").exists():
    time.sleep(0.005)
for cmd in sys.argv[2:]:
    main([cmd])
"""


@dataclass
class Replica:
    proc: subprocess.Popen[str]
    lines: list[str]
    reader: threading.Thread

    def output(self) -> str:
        return "".join(self.lines)

    def done(self) -> bool:
        return self.proc.poll() is not None

    def finish(self) -> str:
        self.proc.wait(timeout=180)
        self.reader.join(timeout=10)
        assert self.proc.returncode == 0, self.output()
        return self.output()


def _replica(url: str, workdir: Path, name: str, *commands: str) -> Replica:
    env = _plain_env(workdir, os.environ["PATH"], DATABASE_URL=url)
    proc = subprocess.Popen(
        [sys.executable, "-c", REPLICA, name, *commands],
        cwd=workdir,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines: list[str] = []
    assert proc.stdout is not None
    reader = threading.Thread(target=lambda: lines.extend(proc.stdout or ()), daemon=True)
    reader.start()
    return Replica(proc, lines, reader)


def _wait_until(condition: Callable[[], bool], seconds: float = 90.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.02)
    return False


def _at_head_with_reference_data(engine: Engine) -> None:
    with engine.connect() as conn:
        assert set(conn.scalars(text("SELECT version_num FROM alembic_version"))) == HEADS
        regions = conn.scalar(select(func.count()).select_from(Region))
    expected = json.loads((ROOT / "app/seed/regions.json").read_text(encoding="utf-8"))
    assert regions == len(expected["regions"])


@pytest.fixture
def empty_url(backend: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    yield empty_database_url(backend, tmp_path_factory, "startlock")
    if backend == "postgresql":
        drop_postgres_database(pg_database_name("startlock"))


def test_two_replicas_migrating_and_seeding_together_both_succeed(
    empty_url: str, tmp_path: Path
) -> None:
    """The image's `ledger migrate && ledger seed-reference` in two replicas at once, on
    one empty database: both succeed, the schema is at head, the reference data there once."""
    replicas = [_replica(empty_url, tmp_path, n, "migrate", "seed-reference") for n in "ab"]
    ready = [tmp_path / f"ready-{n}" for n in "ab"]
    assert _wait_until(lambda: all(p.exists() for p in ready) or any(r.done() for r in replicas))
    assert all(p.exists() for p in ready), [r.output() for r in replicas]
    (tmp_path / "go").touch()
    for replica in replicas:
        replica.finish()
    engine = make_engine(empty_url)
    try:
        _at_head_with_reference_data(engine)
    finally:
        engine.dispose()


def _waiting_on_the_advisory_lock(engine: Engine) -> bool:
    with engine.connect() as conn:
        return bool(
            conn.scalar(
                text(
                    "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted"
                    " AND objid::bigint = :key"
                    " AND database = (SELECT oid FROM pg_database"
                    "                 WHERE datname = current_database())"
                ),
                {"key": STARTUP_LOCK_KEY},
            )
        )


def _held_up(
    backend: str, url: str, workdir: Path, command: str, wrote: Callable[[], bool]
) -> None:
    """Run `ledger <command>` while this process holds the start-up lock: it must wait
    (PostgreSQL: its advisory lock request is seen queued on the server) without writing,
    then finish once the lock is released."""
    engine = make_engine(url)
    try:
        with startup_lock(url):
            replica = _replica(url, workdir, command, command)
            # "waiting" is logged just before it blocks (and it must not finish meanwhile)
            assert _wait_until(lambda: "waiting" in replica.output() or replica.done())
            assert "waiting" in replica.output(), replica.output()
            if backend == "postgresql":
                assert _wait_until(lambda: _waiting_on_the_advisory_lock(engine) or replica.done())
            time.sleep(0.3)
            assert not replica.done(), "finished while the lock was held"
            assert not wrote()
        replica.finish()
    finally:
        engine.dispose()


def test_migrate_and_seed_reference_wait_for_the_start_up_lock(
    backend: str, empty_url: str, tmp_path: Path
) -> None:
    (tmp_path / "go").touch()
    engine = make_engine(empty_url)

    def migrated() -> bool:
        return inspect(engine).has_table("alembic_version")

    def seeded() -> bool:
        with engine.connect() as conn:
            return bool(conn.scalar(select(func.count()).select_from(Region)))

    try:
        _held_up(backend, empty_url, tmp_path, "migrate", migrated)
        engine.dispose()  # SQLite: see the schema the other process made
        _held_up(backend, empty_url, tmp_path, "seed-reference", seeded)
        _at_head_with_reference_data(engine)
        with startup_lock(empty_url):  # released by both: free again at once
            pass
    finally:
        engine.dispose()
