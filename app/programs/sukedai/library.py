"""SKD-E1 admission criteria as a pure function: every criterion is checked and every
failure is reported, so a reviewer sees the whole picture at once."""

from __future__ import annotations

from dataclasses import dataclass

from app.kit.money import format_fen
from app.models import Enterprise
from app.programs.sukedai.policy import LIBRARY, LibraryCriteria


def percent(bp: int) -> str:
    """Basis points as a percentage, exactly: 1000 → "10 %", 350 → "3.5 %"."""
    whole, frac = divmod(bp, 100)
    return f"{whole}.{frac:02d}".rstrip("0").rstrip(".") + " %"


@dataclass(frozen=True)
class Criterion:
    code: str
    passed: bool
    detail: str


def check_library_criteria(
    enterprise: Enterprise, criteria: LibraryCriteria = LIBRARY
) -> list[Criterion]:
    """The five SKD-E1 criteria, each with whether it holds and why."""
    in_jiangsu = enterprise.region_code.startswith(criteria.province_code_prefix)
    size_ok = (
        enterprise.prior_year_revenue_fen < criteria.revenue_below_fen
        or enterprise.employees < criteria.employees_below
    )
    return [
        Criterion(
            "jiangsu_independent_legal_person",
            in_jiangsu and enterprise.independent_legal_person,
            "registered in Jiangsu as an independent legal person "
            f"(region {enterprise.region_code}, independent legal person: "
            f"{'yes' if enterprise.independent_legal_person else 'no'})",
        ),
        Criterion(
            "owns_ip",
            enterprise.ip_count >= criteria.min_ip_count,
            f"owns intellectual property ({enterprise.ip_count} held, "
            f"at least {criteria.min_ip_count} required)",
        ),
        Criterion(
            "size",
            size_ok,
            f"prior-year revenue below {format_fen(criteria.revenue_below_fen)} "
            f"(is {format_fen(enterprise.prior_year_revenue_fen)}) or fewer than "
            f"{criteria.employees_below} employees (has {enterprise.employees})",
        ),
        Criterion(
            "rd_staff_share",
            enterprise.rd_staff_share_bp >= criteria.min_rd_staff_share_bp,
            f"R&D staff at least {percent(criteria.min_rd_staff_share_bp)} of employees "
            f"(is {percent(enterprise.rd_staff_share_bp)})",
        ),
        Criterion(
            "rd_spend_share",
            enterprise.rd_spend_share_bp >= criteria.min_rd_spend_share_bp,
            f"R&D spend at least {percent(criteria.min_rd_spend_share_bp)} of sales "
            f"(is {percent(enterprise.rd_spend_share_bp)})",
        ),
    ]
