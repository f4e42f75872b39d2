"""The suite does not stand on the demo (`make run`'s data, `app.seed.loader.seed_demo`):
every test database holds the minimal seed of `tests/fixtures/seed.py`, and tests make
what they need with `tests/fixtures/factories.py`. Only the tests whose subject is the
demo itself (`tests/test_demo.py`) read it, from a database of their own."""

from __future__ import annotations

import ast
from pathlib import Path

TESTS = Path(__file__).resolve().parent
DEMO_TESTS = {TESTS / "test_demo.py"}
LOADER = "app.seed.loader"
# What a test may take from the loader: the production reference seed, which the
# minimal seed builds on.
ALLOWED = {"seed_reference"}


def _demo_uses(path: Path) -> list[str]:
    """Each import or use of the demo's data or helpers in the module, as `line: what`."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.ImportFrom) and node.module == LOADER:
            found += [f"{node.lineno}: {a.name}" for a in node.names if a.name not in ALLOWED]
        elif isinstance(node, ast.ImportFrom) and node.module == "app.seed":
            found += [f"{node.lineno}: app.seed.{a.name}" for a in node.names]
        elif isinstance(node, ast.Import):
            found += [f"{node.lineno}: {a.name}" for a in node.names if a.name == LOADER]
        elif isinstance(node, ast.Attribute | ast.Name):
            name = node.attr if isinstance(node, ast.Attribute) else node.id
            if name == "seed_demo" or name.startswith(("DEMO_", "demo_", "_demo_")):
                found.append(f"{node.lineno}: {name}")
        elif isinstance(node, ast.Constant) and node.value == LOADER:
            found.append(f"{node.lineno}: {LOADER!r}")  # importlib.import_module(...)
    return found


def test_no_test_but_the_demo_tests_reads_the_demo() -> None:
    this = Path(__file__).resolve()
    modules = sorted(p for p in TESTS.rglob("*.py") if p not in DEMO_TESTS and p != this)
    assert TESTS / "conftest.py" in modules and TESTS / "fixtures" / "seed.py" in modules
    offenders = {str(p.relative_to(TESTS)): uses for p in modules if (uses := _demo_uses(p))}
    assert offenders == {}, "import the minimal seed and factories from tests/fixtures/ instead"


def test_the_check_finds_a_demo_import_and_the_demo_tests_have_one(tmp_path: Path) -> None:
    sample = tmp_path / "test_sample.py"
    sample.write_text(
        "from app.seed.loader import seed_reference, seed_demo\n"
        "from app.seed import loader\n"
        "loader.DEMO_USERS\n",
        encoding="utf-8",
    )
    assert _demo_uses(sample) == ["1: seed_demo", "2: app.seed.loader", "3: DEMO_USERS"]
    assert all(_demo_uses(p) for p in DEMO_TESTS)  # the exception is used, and only there


def test_conftest_seeds_every_test_database_with_the_minimal_seed() -> None:
    conftest = (TESTS / "conftest.py").read_text(encoding="utf-8")
    assert conftest.count("seed_minimal(") == 2  # the suite's databases and pg_engine's
