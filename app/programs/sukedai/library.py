"""SKD-E1 admission criteria as small pure functions, one per criterion of the 2017
rules: every criterion is checked and every failure is reported, so a reviewer sees the
whole picture at once."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from app.errors import Unprocessable
from app.kit.money import format_fen, percent
from app.programs.sukedai.policy import LIBRARY, LibraryCriteria

__all__ = [
    "CRITERIA",
    "LIBRARY_REFUSALS",
    "Criterion",
    "LibraryFacts",
    "check_library_criteria",
    "percent",
]


# --- a failed criterion, as a refusal of the admission (each its own code) --------------
class NotJiangsuIndependentLegalPerson(Unprocessable):
    """SKD-E1, 2017 rules (一): the enterprise is registered in Jiangsu as an independent
    legal person."""

    code, rule = "jiangsu_independent_legal_person", "SKD-E1"
    title = "Not a Jiangsu independent legal person"
    title_zh = "不是在江苏省内注册的独立法人企业"


class NoIntellectualProperty(Unprocessable):
    """SKD-E1, 2017 rules (二): the enterprise owns intellectual property."""

    code, rule = "owns_ip", "SKD-E1"
    title, title_zh = "No intellectual property", "企业未拥有知识产权"


class TooLargeForLibrary(Unprocessable):
    """SKD-E1, 2017 rules (三): prior-year revenue below 400,000,000 yuan or fewer than
    1,000 employees."""

    code, rule = "size", "SKD-E1"
    title, title_zh = "Enterprise too large", "企业规模超过入库标准（销售收入与职工人数）"


class RdStaffShareTooLow(Unprocessable):
    """SKD-E1, 2017 rules (四): R&D staff at least 10 % of the employees."""

    code, rule = "rd_staff_share", "SKD-E1"
    title, title_zh = "R&D staff share too low", "研发人员占职工总数比例不足"


class RdSpendShareTooLow(Unprocessable):
    """SKD-E1, 2017 rules (五): R&D spend at least 3 % of sales."""

    code, rule = "rd_spend_share", "SKD-E1"
    title, title_zh = "R&D spend share too low", "研发经费占销售收入比例不足"


# the refusals of an admission, one per criterion, in the order of the 2017 rules
LIBRARY_REFUSALS: tuple[type[Unprocessable], ...] = (
    NotJiangsuIndependentLegalPerson,
    NoIntellectualProperty,
    TooLargeForLibrary,
    RdStaffShareTooLow,
    RdSpendShareTooLow,
)


class LibraryFacts(Protocol):
    """What admission looks at (an `app.models.Enterprise` has it)."""

    @property
    def region_code(self) -> str: ...
    @property
    def independent_legal_person(self) -> bool: ...
    @property
    def ip_count(self) -> int: ...
    @property
    def prior_year_revenue_fen(self) -> int: ...
    @property
    def employees(self) -> int: ...
    @property
    def rd_staff_share_bp(self) -> int: ...
    @property
    def rd_spend_share_bp(self) -> int: ...


@dataclass(frozen=True)
class Criterion:
    code: str
    passed: bool
    detail: str


def jiangsu_independent_legal_person(e: LibraryFacts, c: LibraryCriteria) -> Criterion:
    """2017 (一): registered in Jiangsu as an independent legal person."""
    return Criterion(
        "jiangsu_independent_legal_person",
        e.region_code.startswith(c.province_code_prefix) and e.independent_legal_person,
        "registered in Jiangsu as an independent legal person "
        f"(region {e.region_code}, independent legal person: "
        f"{'yes' if e.independent_legal_person else 'no'})",
    )


def owns_ip(e: LibraryFacts, c: LibraryCriteria) -> Criterion:
    """2017 (二): owns intellectual property."""
    return Criterion(
        "owns_ip",
        e.ip_count >= c.min_ip_count,
        f"owns intellectual property ({e.ip_count} held, at least {c.min_ip_count} required)",
    )


def size(e: LibraryFacts, c: LibraryCriteria) -> Criterion:
    """2017 (三): prior-year revenue below the bound, or fewer employees than the bound."""
    return Criterion(
        "size",
        e.prior_year_revenue_fen < c.revenue_below_fen or e.employees < c.employees_below,
        f"prior-year revenue below {format_fen(c.revenue_below_fen)} "
        f"(is {format_fen(e.prior_year_revenue_fen)}) or fewer than "
        f"{c.employees_below} employees (has {e.employees})",
    )


def rd_staff_share(e: LibraryFacts, c: LibraryCriteria) -> Criterion:
    """2017 (四): R&D staff at least the share of the workforce."""
    return Criterion(
        "rd_staff_share",
        e.rd_staff_share_bp >= c.min_rd_staff_share_bp,
        f"R&D staff at least {percent(c.min_rd_staff_share_bp)} of employees "
        f"(is {percent(e.rd_staff_share_bp)})",
    )


def rd_spend_share(e: LibraryFacts, c: LibraryCriteria) -> Criterion:
    """2017 (五): R&D spend at least the share of sales."""
    return Criterion(
        "rd_spend_share",
        e.rd_spend_share_bp >= c.min_rd_spend_share_bp,
        f"R&D spend at least {percent(c.min_rd_spend_share_bp)} of sales "
        f"(is {percent(e.rd_spend_share_bp)})",
    )


# SKD-E1, in the order of the 2017 rules (and of the reviewer's list)
CRITERIA: tuple[Callable[[LibraryFacts, LibraryCriteria], Criterion], ...] = (
    jiangsu_independent_legal_person,
    owns_ip,
    size,
    rd_staff_share,
    rd_spend_share,
)


def check_library_criteria(
    enterprise: LibraryFacts, criteria: LibraryCriteria = LIBRARY
) -> list[Criterion]:
    """The five SKD-E1 criteria, each with whether it holds and why."""
    return [criterion(enterprise, criteria) for criterion in CRITERIA]
