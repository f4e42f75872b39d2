"""XB policy numbers, as data, each tagged with the SPEC rule it comes from
(连云港市小微企业信用保证基金管理暂行办法)."""

from __future__ import annotations

from dataclasses import dataclass

POOL = "XB_POOL"
BASE_SUB_FUND = "XB_ZQCZD"  # 助企成长贷, the base sub-fund (XB-F0)


@dataclass(frozen=True)
class FilingPolicy:
    # XB-E1: registered in the contributor districts (第四条: 海州区、连云区、市开发区等).
    # Reading chosen: the districts and zones that contribute capital (XB-F0), not the
    # counties; the city's own contribution does not widen the area.
    eligible_regions: tuple[str, ...] = (
        "320706",  # 海州区
        "320703",  # 连云区
        "320700-KFQ",  # 市开发区
        "320700-XWXQ",  # 徐圩新区
        "320700-YTS",  # 云台山景区
    )
    min_years_in_business: int = 1  # XB-N1 (checked at filing too: no point filing otherwise)
    max_outstanding_fen: int = 3_000_000_00  # XB-P1, inclusive
    max_term_months: int = 36  # XB-P1
    norm_term_months: tuple[int, int] = (6, 24)  # XB-P1: outside → flagged, not refused
    credit_spread_bp: int = 80  # XB-P1: credit ≤ LPR + 80 bp
    guaranteed_spread_bp: int = 30  # XB-P1: guaranteed ≤ LPR + 30 bp
    max_guarantee_fee_bp: int = 50  # XB-P1: guarantee fee ≤ 0.5 %, no other fees
    deadline_working_days: int = 10  # XB-F2: later filings accepted, non-compensable (XB-N7)
    ban_years: int = 3  # XB-E2: no new support within 3 years of a compensation


FILING = FilingPolicy()
SECURITIES = ("credit", "guaranteed")  # XB-S1's two ways of working (第十三条)
