"""苏科贷's annual assessment per bank (SKD-A1, 46号 五(二) “重点考核贷款投放规模、支持企业
数量、融资成本、审贷效率、不良贷款率、履约情况等”): volume, enterprises supported, the
average rate, approval efficiency, the NPL ratio at the year end against SKD-Q3's 3 %,
and compliance — filings late and filings refused (by rule in the shared section). The
figures are `app.reports.annual`'s; this module lays them out."""

from __future__ import annotations

from sqlalchemy.orm import Session

from app.programs.sukedai.policy import PROGRAM_POLICY, QUARTER_END
from app.reports.annual import (
    BANK,
    COMPLIANCE,
    EFFICIENCY,
    READINGS,
    VOLUME,
    YEAR_END,
    AnnualFigures,
    AnnualPart,
    bank_cells,
    c,
)
from app.reports.document import Chart, Section

COLUMNS = (
    *BANK,
    *VOLUME,
    *EFFICIENCY,
    *YEAR_END,
    *COMPLIANCE,
    c("approved", "年内批准代偿", "compensation approved in the year", "money"),
    c("paid", "年内拨付代偿", "compensation paid in the year", "money"),
)


def annual_report(session: Session, figures: AnnualFigures) -> AnnualPart:
    """SKD-A1: one row per bank, and its NPL ratio charted against SKD-Q3's 3 %."""
    section = Section(
        "assessment",
        "苏科贷年度考核",
        "SKD-A1 annual assessment",
        COLUMNS,
        tuple(bank_cells(y) for y in figures.banks.values()),
        note=f"SKD-A1 (46号 五(二)). {READINGS} For SKD a filing after its 5 working days "
        "is refused (SKD-F2), so late filings show among the refusals; filed late counts "
        "loans found late when a calendar year was published (flag SKD-F2). The NPL "
        f"ratio is SKD-Q3's ({QUARTER_END.npl_days_past_due} days, principal or interest), "
        f"charted against its {QUARTER_END.threshold_bp // 100} % threshold.",
    )
    chart = Chart(
        "npl_ratio",
        "年末不良贷款率",
        "NPL ratio at the year end",
        section="assessment",
        x="bank_code",
        series=("npl_ratio_bp",),
        threshold_bp=QUARTER_END.threshold_bp,
    )
    return AnnualPart(
        f"{PROGRAM_POLICY.name_zh} {figures.year}年度考核",
        f"{PROGRAM_POLICY.name_en}: annual assessment {figures.year} (SKD-A1)",
        (section,),
        (chart,),
    )
