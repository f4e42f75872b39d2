"""The programme seam (ARCHITECTURE style 8): outside `app/programs/`, the migrations and
the seed data, no code names a programme — no programme code or programme fund code as
a literal, no import of a programme's package. The rest of the app asks the registry.

Plain file reads, no database."""

from __future__ import annotations

import ast
from pathlib import Path

from app.programs.base import program_codes

ROOT = Path(__file__).resolve().parent.parent
APP = ROOT / "app"
ALLOWED = (APP / "programs", APP / "migrations", APP / "seed")


def _app_files() -> list[Path]:
    return sorted(p for p in APP.rglob("*.py") if not any(p.is_relative_to(a) for a in ALLOWED))


def _names_a_programme(value: str, codes: tuple[str, ...]) -> bool:
    return value in codes or any(value.startswith(f"{c}_") for c in codes)


# where a literal documents a request rather than decides anything: Swagger's examples
_EXAMPLE_KEYWORDS = frozenset({"example", "examples", "openapi_examples", "json_schema_extra"})


def _examples(tree: ast.AST) -> set[int]:
    """The ids of the nodes inside request examples: a keyword argument `examples=` (and
    its kin), a call of `Example(...)`, or a value assigned to a name that says
    EXAMPLE (`SKD_FILING_EXAMPLE = {...}`)."""
    roots: list[ast.AST] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.keyword) and node.arg in _EXAMPLE_KEYWORDS:
            roots.append(node.value)
        elif isinstance(node, ast.Call) and getattr(node.func, "id", None) == "Example":
            roots.append(node)
        elif isinstance(node, ast.Assign | ast.AnnAssign) and node.value is not None:
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            if any("EXAMPLE" in getattr(t, "id", "").upper() for t in targets):
                roots.append(node.value)
    return {id(n) for root in roots for n in ast.walk(root)}


def programme_literals(source: str, codes: tuple[str, ...]) -> list[tuple[int, str]]:
    """(line, literal) of every string constant that is a programme code or one of its
    fund codes (`SKD`, `XB_POOL`); docstrings and prose are not literals of that kind,
    nor are the request examples the console shows (a valid SKD filing names SKD)."""
    tree = ast.parse(source)
    examples = _examples(tree)
    found = []
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Constant)
            and isinstance(node.value, str)
            and _names_a_programme(node.value, codes)
            and id(node) not in examples
        ):
            found.append((node.lineno, node.value))
    return found


def _programme_string(node: ast.AST, codes: tuple[str, ...]) -> str | None:
    if not (isinstance(node, ast.Constant) and isinstance(node.value, str)):
        return None
    value = node.value
    named = any(value == c or value.startswith((f"{c}-", f"{c}_")) for c in codes)
    return value if named else None


def rule_branches(source: str, codes: tuple[str, ...]) -> list[tuple[int, str]]:
    """(line, literal) of every decision taken on a programme's rule ID or code: a
    comparison with such a literal (`rule != "XB-N7"`), or a `startswith` of one."""
    found = []
    for node in ast.walk(ast.parse(source)):
        operands: list[ast.AST] = []
        if isinstance(node, ast.Compare):
            operands = [node.left, *node.comparators]
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr in ("startswith", "endswith")
        ):
            operands = list(node.args)
        for operand in operands:
            literal = _programme_string(operand, codes)
            if literal is not None:
                found.append((node.lineno, literal))
    return found


def programme_imports(source: str) -> list[tuple[int, str]]:
    """(line, module) of every import of a programme package (`app.programs.<code>`)."""
    found = []
    for node in ast.walk(ast.parse(source)):
        modules: list[str] = []
        if isinstance(node, ast.ImportFrom) and node.module:
            modules = [node.module]
            if node.module == "app.programs":
                modules = [f"app.programs.{a.name}" for a in node.names]
        elif isinstance(node, ast.Import):
            modules = [a.name for a in node.names]
        for module in modules:
            parts = module.split(".")
            shared = len(parts) < 3 or parts[2] in ("base", "fields", "rules", "common")
            if parts[:2] == ["app", "programs"] and not shared:
                found.append((node.lineno, module))
    return found


def test_the_scan_finds_what_it_looks_for() -> None:
    """The scan itself can fail: a literal and an import planted in a snippet are found."""
    snippet = (
        "from app.programs.xinbao.policy import POOL\n"
        "from app.programs import sukedai\n"
        "from app.programs.base import get_program\n"
        'if loan.program == "XB":\n'
        '    fund = "SKD_PROV"\n'
        '"""A docstring naming SKD and XB is prose."""\n'
    )
    codes = ("SKD", "XB")
    assert programme_literals(snippet, codes) == [(4, "XB"), (5, "SKD_PROV")]
    documented = (
        'FILING_EXAMPLE = {"program": "SKD"}\n'
        'Q = Query(description="x", examples=["XB_POOL"])\n'
        'E = {"skd": Example(value={"program": "SKD"})}\n'
        'if program == "SKD":\n'
        "    pass\n"
    )
    assert programme_literals(documented, codes) == [(4, "SKD")]
    branching = 'if rule != "XB-N7" or flag.startswith("SKD-S2"):\n    pass\n'
    assert sorted(rule_branches(branching, codes)) == [(1, "SKD-S2"), (1, "XB-N7")]
    assert programme_imports(snippet) == [
        (1, "app.programs.xinbao.policy"),
        (2, "app.programs.sukedai"),
    ]


def test_no_programme_code_literal_outside_the_programme_packages() -> None:
    codes = program_codes()
    assert set(codes) >= {"SKD", "XB"}
    offenders = [
        f"{path.relative_to(ROOT)}:{line}: {value!r}"
        for path in _app_files()
        for line, value in programme_literals(path.read_text(encoding="utf-8"), codes)
    ]
    assert offenders == []


def test_no_decision_on_a_programme_rule_id_outside_the_programme_packages() -> None:
    """Rule IDs may name a rule in a message; no code outside the packages decides by
    comparing with one."""
    codes = program_codes()
    offenders = [
        f"{path.relative_to(ROOT)}:{line}: {value!r}"
        for path in _app_files()
        for line, value in rule_branches(path.read_text(encoding="utf-8"), codes)
    ]
    assert offenders == []


def test_no_import_of_a_programme_package_outside_app_programs() -> None:
    offenders = [
        f"{path.relative_to(ROOT)}:{line}: {module}"
        for path in _app_files()
        for line, module in programme_imports(path.read_text(encoding="utf-8"))
    ]
    assert offenders == []
