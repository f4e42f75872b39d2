"""The documentation stands alone: README.md and docs/*.md link only to files of this
repository, and docs/rules.md agrees with the rule IDs the code cites.

Plain file reads, no database."""

from __future__ import annotations

import ast
import re
from pathlib import Path
from urllib.parse import unquote

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCS = sorted([ROOT / "README.md", ROOT / "RELIABILITY.md", *(ROOT / "docs").glob("*.md")])
RULES_MD = ROOT / "docs" / "rules.md"

# A rule ID as the code cites it: M-1, SKD-Q1, XB-N7, XB-Rep, L-5.
RULE_ID = re.compile(r"\b(?:M-\d+|SKD-[A-Z]\d+|XB-[A-Z]\d+|XB-Rep|L-\d+)\b")
# A table row of rules.md: | M-1 | … | status |
RULE_ROW = re.compile(r"^\|\s*\**(?P<id>M-\d+|SKD-[A-Z]\d+|XB-[A-Z]\d+|XB-Rep|L-\d+)\**\s*\|")
STATUSES = ("implemented", "partly", "not yet", "in progress")

# [text](target) and reference definitions `[label]: target`
INLINE_LINK = re.compile(r"(?<!!)\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
IMAGE_LINK = re.compile(r"!\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
REFERENCE_LINK = re.compile(r"^\s{0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s+.*)?$", re.MULTILINE)
# A repository path named in backticks, e.g. `app/programs/sukedai/policy.py`
CODE_PATH = re.compile(r"`((?:app|tests|bench|openapi|docs)/[\w./-]*\w)`")


def _text(path: Path) -> str:
    return path.read_text(encoding="utf-8")


def _without_code_blocks(text: str) -> str:
    """Fenced code blocks hold examples, not links."""
    return re.sub(r"^```.*?^```", "", text, flags=re.MULTILINE | re.DOTALL)


def relative_links(text: str) -> list[str]:
    body = _without_code_blocks(text)
    targets = [
        *INLINE_LINK.findall(body),
        *IMAGE_LINK.findall(body),
        *REFERENCE_LINK.findall(body),
    ]
    return [
        t
        for t in targets
        if not re.match(r"^[a-z][a-z0-9+.-]*:", t, re.IGNORECASE)  # http:, mailto:, …
        and not t.startswith("#")
    ]


def broken_links(doc: Path) -> list[str]:
    broken = []
    for target in relative_links(_text(doc)):
        path = unquote(target.split("#", 1)[0].split("?", 1)[0])
        resolved = (ROOT / path.lstrip("/")) if path.startswith("/") else (doc.parent / path)
        resolved = resolved.resolve()
        if not resolved.is_relative_to(ROOT) or not resolved.exists():
            broken.append(target)
    return broken


def rules_table(text: str) -> dict[str, str]:
    """Rule ID → its status cell, from every table row of rules.md that starts with an ID."""
    rows: dict[str, str] = {}
    for line in text.splitlines():
        match = RULE_ROW.match(line)
        if match:
            cells = [c.strip() for c in line.strip().strip("|").split("|")]
            rule = match.group("id")
            assert rule not in rows or rows[rule] == cells[-1], f"{rule} listed twice"
            rows.setdefault(rule, cells[-1])
    return rows


def _main_rules(text: str) -> dict[str, str]:
    """The rule tables proper: the closing summary table repeats IDs and has no status."""
    head, _, _ = text.partition("\n## Not implemented, or only partly")
    return rules_table(head)


def cited_ids(*dirs: str) -> dict[str, set[str]]:
    """Rule ID → the files under `dirs` citing it (source and data files)."""
    found: dict[str, set[str]] = {}
    for d in dirs:
        for path in (ROOT / d).rglob("*"):
            if path.suffix not in (".py", ".json", ".sql", ".mako") or not path.is_file():
                continue
            for rule in RULE_ID.findall(path.read_text(encoding="utf-8", errors="replace")):
                found.setdefault(rule, set()).add(str(path.relative_to(ROOT)))
    return found


def names_and_docstrings(root: Path) -> dict[str, str]:
    """Test name → its name and docstring, for every test function under `root` (methods
    of test classes included), keyed `path::name`."""
    texts: dict[str, str] = {}
    for path in sorted(root.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.name.startswith(
                "test"
            ):
                key = f"{path.relative_to(ROOT)}::{node.name}"
                texts[key] = f"{node.name}\n{ast.get_docstring(node) or ''}"
    return texts


def citation(rule: str) -> re.Pattern[str]:
    """A rule ID as a test cites it: SKD-F2 in a docstring, test_SKD_F2_… or
    test_skd_f2_… in a name (L-1 also as test_l1_…), in any case."""
    prefix, suffix = rule.split("-", 1)
    return re.compile(rf"(?<![A-Za-z0-9]){prefix}[-_]?{suffix}(?![A-Za-z0-9])", re.IGNORECASE)


def cited_by(rules: list[str], texts: dict[str, str]) -> dict[str, list[str]]:
    return {r: [t for t, text in texts.items() if citation(r).search(text)] for r in rules}


# --- links ---------------------------------------------------------------------------
def test_docs_exist() -> None:
    names = {p.name for p in DOCS}
    assert {"README.md", "rules.md", "api.md"} <= names


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: str(p.relative_to(ROOT)))
def test_no_link_outside_the_repository(doc: Path) -> None:
    assert "../shared" not in _text(doc), f"{doc.name} points outside the repository"


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: str(p.relative_to(ROOT)))
def test_relative_links_resolve(doc: Path) -> None:
    assert broken_links(doc) == [], f"{doc.name} links to files that do not exist"


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: str(p.relative_to(ROOT)))
def test_named_paths_exist(doc: Path) -> None:
    """A module or file named in backticks is one the repository has."""
    missing = sorted({p for p in CODE_PATH.findall(_text(doc)) if not (ROOT / p).exists()})
    assert missing == [], f"{doc.name} names paths that do not exist"


def test_readme_points_to_the_docs() -> None:
    links = set(relative_links(_text(ROOT / "README.md")))
    assert {"docs/rules.md", "docs/api.md", "openapi/openapi.json"} <= links


# --- rules.md against the code -------------------------------------------------------
def test_every_rule_row_has_a_status() -> None:
    rows = _main_rules(_text(RULES_MD))
    assert rows, "rules.md lists no rules"
    bad = {rule: status for rule, status in rows.items() if not status.startswith(STATUSES)}
    assert bad == {}, f"status must start with one of {STATUSES}"


def test_implemented_rules_are_cited_in_code_or_tests() -> None:
    rows = _main_rules(_text(RULES_MD))
    cited = cited_ids("app", "tests")
    uncited = sorted(r for r, s in rows.items() if s.startswith("implemented") and r not in cited)
    assert uncited == [], "marked implemented in docs/rules.md but cited nowhere in app/ or tests/"


# Rules with nothing built have nothing to test: exempt by their status "not yet" in
# rules.md, and named here so that a change of status is a change of this list.
NOT_YET_BUILT: dict[str, str] = {}


def test_every_rule_is_cited_by_a_test() -> None:
    """Every rule ID of docs/rules.md appears in the name or the docstring of a test under
    tests/ (SKD-F2, test_SKD_F2_…, test_skd_f2_…), unless nothing of it is built yet."""
    rows = _main_rules(_text(RULES_MD))
    not_yet = sorted(r for r, status in rows.items() if status.startswith("not yet"))
    assert not_yet == sorted(NOT_YET_BUILT), "rules.md changed which rules are not yet built"
    cited = cited_by(sorted(rows), names_and_docstrings(ROOT / "tests"))
    uncited = sorted(r for r, tests in cited.items() if not tests and r not in NOT_YET_BUILT)
    assert uncited == [], "rules no test names or documents (docs/rules.md lists them)"


def test_every_rule_cited_in_app_is_documented() -> None:
    rows = _main_rules(_text(RULES_MD))
    undocumented = {r: sorted(files) for r, files in cited_ids("app").items() if r not in rows}
    assert undocumented == {}, "cited in app/ but missing from docs/rules.md"


def test_the_parsers_see_what_they_should() -> None:
    """The checks above cannot pass vacuously: a broken link and an unknown rule are
    caught by the same functions."""
    sample = (
        "[ok](README.md) [gone](docs/no-such-file.md) [web](https://example.com) "
        "[anchor](#x)\n\n[ref]: ../shared/SPEC.md\n"
    )
    assert relative_links(sample) == ["README.md", "docs/no-such-file.md", "../shared/SPEC.md"]
    table = "| SKD-Q1 | cap | 46号 | `x` | implemented |\n| **XB-Rep** | r | s | c | not yet |\n"
    assert rules_table(table) == {"SKD-Q1": "implemented", "XB-Rep": "not yet"}
    assert RULE_ID.findall("SKD-F1…F6, XB-N7 and L-5; not HTML-5") == ["SKD-F1", "XB-N7", "L-5"]
    texts = {
        "a::test_SKD_F2_late": "test_SKD_F2_late\n",
        "a::test_l1_l3_random": "test_l1_l3_random\n",
        "a::test_plain": "test_plain\nXB-N7: a late filing; not SKD-F21 nor XB-Report.",
    }
    assert cited_by(["SKD-F2", "L-3", "XB-N7", "SKD-F1", "XB-Rep", "L-1"], texts) == {
        "SKD-F2": ["a::test_SKD_F2_late"],
        "L-3": ["a::test_l1_l3_random"],
        "XB-N7": ["a::test_plain"],
        "SKD-F1": [],
        "XB-Rep": [],
        "L-1": ["a::test_l1_l3_random"],
    }
