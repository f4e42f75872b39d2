"""The rule machinery (`app/programs/rules.py`) and the rule lists built with it: every
tagged rule of a programme module is run by its list, tagged with a documented rule ID,
and stamps that ID on what it finds. Pure, no database."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

import pytest

from app.errors import Unprocessable, ValidationFailed, Violation
from app.programs import rules as machinery
from app.programs.rules import Flag, Rule, RuleTagError, months, percent, refusal, rule, run, years
from app.programs.sukedai import claims as skd_claims
from app.programs.sukedai import filing as skd_filing
from app.programs.xinbao import claims as xb_claims
from app.programs.xinbao import filing as xb_filing

RULES_MD = Path(__file__).resolve().parents[2] / "docs" / "rules.md"


@dataclass(frozen=True)
class Facts:
    n: int


@rule("SKD-F3")
def odd(f: Facts, p: int) -> Violation | None:
    return refusal(Unprocessable, f"{f.n} is odd", "n") if f.n % 2 else None


@rule("SKD-F4")
def above(f: Facts, p: int) -> list[Violation | Flag]:
    return [Flag(f"{f.n} > {p}"), refusal(ValidationFailed, "too big")] if f.n > p else []


def test_a_rule_stamps_its_id_and_run_keeps_the_order_of_the_list() -> None:
    assert (odd.id, odd.name) == ("SKD-F3", "odd")
    assert odd(Facts(2), 0) == []
    assert odd(Facts(3), 0) == [Violation("3 is odd", ("body", "n"), "rule_violation", "SKD-F3")]
    found = run([odd, above], Facts(5), 4)
    assert found == [
        Violation("5 is odd", ("body", "n"), "rule_violation", "SKD-F3"),
        Flag("5 > 4", "SKD-F4"),
        Violation("too big", ("body",), "validation_error", "SKD-F4"),
    ]
    assert machinery.violations(found) == [found[0], found[2]]
    assert machinery.flags(found) == [found[1]]
    assert [f.rule for f in run([above, odd], Facts(5), 4)] == ["SKD-F4", "SKD-F4", "SKD-F3"]


def test_a_finding_tagged_with_another_rule_is_a_programming_error() -> None:
    def wrong(f: Facts, p: int) -> Violation:
        return Violation("x", code="x", rule="SKD-F1")

    def same(f: Facts, p: int) -> Violation:
        return Violation("x", code="x", rule="SKD-F2")

    with pytest.raises(RuleTagError, match="SKD-F2"):
        Rule("SKD-F2", wrong)(Facts(1), 0)
    assert Rule("SKD-F2", same)(Facts(1), 0)[0].rule == "SKD-F2"


def test_numbers_in_words() -> None:
    assert [years(1), years(1, one="a"), years(3)] == ["one year", "a year", "3 years"]
    assert [months(n) for n in (1, 6, 12, 18, 24, 36)] == [
        "1 month",
        "6 months",
        "1 year",
        "18 months",
        "2 years",
        "3 years",
    ]
    assert [percent(b) for b in (50, 300, 1000, 5000, 75)] == [
        "0.5 %",
        "3 %",
        "10 %",
        "50 %",
        "0.75 %",
    ]


LISTS: list[tuple[ModuleType, str]] = [
    (skd_filing, "FILING_RULES"),
    (skd_claims, "CLAIM_RULES"),
    (xb_filing, "FILING_RULES"),
    (xb_claims, "CLAIM_RULES"),
]


@pytest.mark.parametrize(("module", "name"), LISTS, ids=lambda x: getattr(x, "__name__", x))
def test_every_tagged_rule_of_a_module_is_in_its_list_once(module: ModuleType, name: str) -> None:
    """A rule written but left out of the list would never run."""
    listed = getattr(module, name)
    defined = [v for v in vars(module).values() if isinstance(v, Rule)]
    assert defined, module.__name__
    assert len(set(map(id, listed))) == len(listed), "a rule listed twice"
    assert {id(r) for r in defined} == {id(r) for r in listed}


def test_every_rule_id_a_list_uses_is_documented() -> None:
    documented = set(re.findall(r"^\| (\S+) \|", RULES_MD.read_text(encoding="utf-8"), re.M))
    used = {r.id for module, name in LISTS for r in getattr(module, name)}
    assert used and used <= documented, used - documented
