"""Rules as small tagged functions (docs/rules.md).

A programme's checks are lists of `Rule`s. Each wraps one small pure function over the
facts the service gathered and the programme's policy numbers, tagged with the SPEC rule
ID it implements (`@rule("SKD-F2")`). The function returns a `Violation` (a refusal), a
`Flag` (a note kept on the object, not a refusal), a sequence of them, or nothing. The
tag is the one place a finding's rule is named: the functions leave `rule` unset and
`Rule` stamps its ID on every finding it returns.

Running a list (`run`) returns every finding in list order, so a refusal lists every
failed rule at once and the order of the errors is the order of the list."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from typing import Generic, TypeAlias, TypeVar

from app.errors import AppError, Violation
from app.kit.money import percent

__all__ = [
    "Finding",
    "Flag",
    "Found",
    "Rule",
    "RuleTagError",
    "flags",
    "months",
    "percent",
    "refusal",
    "rule",
    "run",
    "violations",
    "years",
]

FactsT = TypeVar("FactsT")
PolicyT = TypeVar("PolicyT")
# a rule over some facts is a rule over any facts that have them (contravariant)
FactsT_contra = TypeVar("FactsT_contra", contravariant=True)
PolicyT_contra = TypeVar("PolicyT_contra", contravariant=True)


@dataclass(frozen=True)
class Flag:
    """A finding that does not refuse: a note kept on the object (e.g. XB-P1's unusual
    term, XB-N7's late filing). `text` is the note as stored."""

    text: str
    rule: str | None = None


Finding: TypeAlias = Violation | Flag
_FINDINGS = (Violation, Flag)
Found: TypeAlias = Finding | Sequence[Finding] | None


class RuleTagError(ValueError):
    """A rule returned a finding tagged with another rule's ID."""


@dataclass(frozen=True)
class Rule(Generic[FactsT_contra, PolicyT_contra]):
    """One rule: `check(facts, policy)` tagged with its SPEC rule ID."""

    id: str
    check: Callable[[FactsT_contra, PolicyT_contra], Found]

    @property
    def name(self) -> str:
        return getattr(self.check, "__name__", repr(self.check))

    def __call__(self, facts: FactsT_contra, policy: PolicyT_contra) -> list[Finding]:
        """The rule's findings, each carrying the rule's ID."""
        return self.stamped(self.check(facts, policy))

    def stamped(self, found: Found) -> list[Finding]:
        """What `check` returned, as a list, each finding tagged with the rule's ID."""
        if found is None:
            return []
        items = [found] if isinstance(found, _FINDINGS) else list(found)
        return [self._stamp(item) for item in items]

    def _stamp(self, item: Finding) -> Finding:
        if item.rule is None:
            return replace(item, rule=self.id)
        if item.rule != self.id:
            raise RuleTagError(f"rule {self.id} ({self.name}) returned a {item.rule} finding")
        return item


def rule(
    rule_id: str,
) -> Callable[[Callable[[FactsT, PolicyT], Found]], Rule[FactsT, PolicyT]]:
    """Decorator: `@rule("SKD-F2")` over `def f(facts, policy) -> Violation | None`."""

    def tag(check: Callable[[FactsT, PolicyT], Found]) -> Rule[FactsT, PolicyT]:
        return Rule(rule_id, check)

    return tag


def run(rules: Iterable[Rule[FactsT, PolicyT]], facts: FactsT, policy: PolicyT) -> list[Finding]:
    """Every finding of every rule, in the order of the list."""
    out: list[Finding] = []
    for r in rules:
        found = r.check(facts, policy)
        if found is not None:
            out += r.stamped(found)
    return out


def violations(findings: Iterable[Finding]) -> list[Violation]:
    return [f for f in findings if isinstance(f, Violation)]


def flags(findings: Iterable[Finding]) -> list[Flag]:
    return [f for f in findings if isinstance(f, Flag)]


def refusal(error: type[AppError], msg: str, *loc: str | int) -> Violation:
    """A refusal of the request body field `loc`, named by its error class (which owns
    the code, its titles, its rule and its `/problems` page)."""
    return Violation(msg=msg, loc=("body", *loc), code=error.code, rule=error.rule)


# --- policy numbers in words ----------------------------------------------------------
def years(n: int, *, one: str = "one") -> str:
    """A number of years in a message: 3 → "3 years"; 1 → `one` year ("one year",
    "a year", "1 year")."""
    return f"{one} year" if n == 1 else f"{n} years"


def months(n: int) -> str:
    """A number of months in a message, in whole years where it is: 6 → "6 months",
    24 → "2 years", 12 → "1 year", 18 → "18 months"."""
    if n and n % 12 == 0:
        return years(n // 12, one="1")
    return "1 month" if n == 1 else f"{n} months"
