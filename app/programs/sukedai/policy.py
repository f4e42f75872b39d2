"""SKD policy numbers, as data, each tagged with the SPEC rule it comes from."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class LibraryCriteria:
    """SKD-E1: admission to the enterprise library (备选企业库, 2017 rules)."""

    province_code_prefix: str = "32"  # registered in Jiangsu
    min_ip_count: int = 1  # owns intellectual property
    revenue_below_fen: int = 400_000_000_00  # prior-year revenue < 400,000,000 …
    employees_below: int = 1_000  # … or fewer than 1,000 employees
    min_rd_staff_share_bp: int = 1_000  # R&D staff ≥ 10 %
    min_rd_spend_share_bp: int = 300  # R&D spend ≥ 3 % of sales


LIBRARY = LibraryCriteria()
