"""XB policy numbers, as data, each tagged with the SPEC rule it comes from
(连云港市小微企业信用保证基金管理暂行办法)."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from app.programs.base import ArrearsRule, ProgramPolicy
from app.programs.rules import years

POOL = "XB_POOL"
BASE_SUB_FUND = "XB_ZQCZD"  # 助企成长贷, the base sub-fund (XB-F0)

# The programme: agreements of 3 years decided by the committee; the filing duty (XB-F2:
# 10 working days, credit loans only, 第十一条(四) “信用贷款合同”) — a late credit loan is
# accepted but not compensable (XB-N7); contributors commit their capital (XB-F0).
PROGRAM_POLICY = ProgramPolicy(
    code="XB",
    name_zh="连云港市小微企业信用保证基金",
    name_en="Xin Bao (Lianyungang SME credit guarantee fund)",
    agreement_term_months=36,
    agreement_authority_role="committee",
    filing_deadline_working_days=10,
    late_filing="not_compensable",
    late_filing_rule="XB-N7",
    filing_deadline_securities=("credit",),
    capital_commitment_required=True,
    # SPEC M-6. XB-C1: “贷款出现逾期 45 天” — the loan's arrears, principal or interest;
    # the 90-day non-performing figure shown beside the XB-Q1 basis and the fund's
    # leverage counts both too
    arrears_rules=(
        ArrearsRule("XB-C1", "claim", 45, True, "代偿申请门槛", "claim threshold"),
        ArrearsRule("M-6", "npl", 90, True, "不良贷款", "non-performing"),
    ),
)


@dataclass(frozen=True)
class NplPolicy:
    """How many days past due make principal non-performing, in the figures shown beside
    the XB-Q1 basis and in the fund's leverage (XB-F1); XB-Q1 itself does not use it."""

    npl_days_past_due: int = PROGRAM_POLICY.arrears_rule("npl").days


NPL = NplPolicy()


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
    ban_years: int = 3  # XB-E2: no new support within 3 years of a compensation
    clean_record_years: int = 2  # XB-E1: no malicious overdue in the 2 years before applying
    # XB-F2: the guarantor's consent letter (同意担保确认函) is issued at review, before the
    # loan is disbursed (第十一条(三), (四)); reading chosen: one dated more than 12 months
    # before the disbursement is not the consent to this loan
    consent_max_age_months: int = 12


FILING = FilingPolicy()
SECURITIES = ("credit", "guaranteed")  # XB-S1's two ways of working (第十三条)
# XB-S1 (第十三条): the base sub-fund's principal-loss ratios, 80 : 20 for a credit loan and
# 50 : 40 : 10 for a guaranteed loan. The ratios a loan uses are its sub-fund's
# `funds.params["ratios_bp"]` (seed data, frozen on the loan at filing); the seed's base
# sub-fund carries these, and another sub-fund sets its own.
BASE_RATIOS_BP: dict[str, dict[str, int]] = {
    "credit": {"fund": 8000, "bank": 2000},
    "guaranteed": {"fund": 5000, "guarantor": 4000, "bank": 1000},
}


@dataclass(frozen=True)
class ClaimPolicy:
    min_days_past_due: int = PROGRAM_POLICY.arrears_rule("claim").days  # XB-C1
    # XB-C1: 《补偿申请书》, 贷款催收方案, 尽职情况说明
    required_documents: tuple[str, ...] = ("application", "collection_plan", "due_diligence")
    review_working_days: int = 7  # XB-C2: the manager's written opinion
    payment_working_days: int = 20  # XB-C2: payment after the committee's approval
    recovery_working_days: int = 10  # XB-R1: collections distributed within 10 working days


CLAIMS = ClaimPolicy()

# XB-C2 退回补正: what the manager's review or the committee may list when it returns a
# claim for correction, code → (中文, English). All are listed at once; `other` needs a
# detail.
DEFICIENCIES: dict[str, tuple[str, str]] = {
    "document_missing": ("申请材料缺失", "a required document is missing"),
    "document_unreadable": ("材料无法辨认", "a document cannot be read"),
    "overdue_date_wrong": ("逾期日期有误", "the overdue date is wrong"),
    "amount_wrong": ("申请金额有误", "an amount in the application is wrong"),
    "lawsuit_case_no_missing": ("缺少法院受理案号", "the court's case number is missing"),
    "collection_plan_incomplete": ("贷款催收方案不完整", "the collection plan is incomplete"),
    "due_diligence_incomplete": ("尽职情况说明不完整", "the due-diligence statement is incomplete"),
    "other": ("其他（须说明）", "other (the detail says what)"),
}

# XB-N1…N9 (第十九条): any finding means no compensation.
FINDINGS: dict[str, str] = {
    "XB-N1": "enterprise unregistered, not publicly listed or under "
    f"{years(FILING.min_years_in_business, one='a')} in business at grant",
    "XB-N2": "the enterprise or its controllers had unpaid overdue loans elsewhere at grant",
    "XB-N3": "the legal representative / controlling shareholder / controller did not guarantee",
    "XB-N4": "disbursed without meeting the contract's disbursement conditions",
    "XB-N5": "guaranteed loan outside the guarantee contract",
    "XB-N6": "lending in a sector the regulators prohibit",
    "XB-N7": "not filed with the fund manager in time",
    "XB-N8": "collection not pursued or abandoned without good reason",
    "XB-N9": "other breach of the rules or the cooperation agreement",
}


@dataclass(frozen=True)
class LimitPolicy:
    """XB-Q1 (第十六条): per bank, sub-fund and calendar year, compensation under the
    sub-fund ≤ `bank_limit_bp` of the bank's principal outstanding under that sub-fund at
    the most recent quarter end; a risk warning at `warning_share_bp` of that limit and
    suspension of the bank's agreement with that sub-fund at 100 % until the committee
    lifts it. The defaults are the base sub-fund's (助企成长贷: 5 %, 50 %); another
    sub-fund overrides them in its `funds.params["limits"]` (see `limit_policy`).
    XB-Q2: when cumulative compensation reaches 50 % of the fund's capital (reading
    chosen: capital paid in, per the ledger), all new business stops until the committee
    resumes it."""

    bank_limit_bp: int = 500
    warning_share_bp: int = 5_000
    fund_stop_share_bp: int = 5_000


LIMITS = LimitPolicy()
# the keys a sub-fund's `params["limits"]` may set (basis points, 0…10000)
SUB_FUND_LIMIT_KEYS = ("bank_limit_bp", "warning_share_bp")


def limit_policy(params: dict[str, Any] | None) -> LimitPolicy:
    """XB-Q1 settings of one sub-fund: its `params["limits"]` over the base defaults."""
    given = (params or {}).get("limits") or {}
    return replace(LIMITS, **{k: int(given[k]) for k in SUB_FUND_LIMIT_KEYS if k in given})


LEVERAGE_TARGET = 10  # XB-F1: loans under the fund ≥ 10 × its net value (reported)


@dataclass(frozen=True)
class EvaluationPolicy:
    """XB-Rep: the fund manager's yearly evaluation of each bank, reported to the leading
    group's office by November 30 (第二十一条 “每年11月30日前对基金政策目标、贷款情况、基金
    补偿、贷款损失等情况进行综合评价”), with a recommendation per bank (第二十二条 “对绩效
    达到放贷目标、风控管理好、补偿率低的，增加合作规模；对连续两年达不到放贷目标、补偿率高
    的，减少合作规模，直至终止合作；对年内未发生基础基金项下贷款业务的，原则上应终止合
    作”). The text sets no numbers; the readings chosen, as data:
    - no base sub-fund loan disbursed in the year → terminate (the text's own rule);
    - 放贷目标: base sub-fund principal disbursed in a year of at least
      `lending_target_fen`, the same for every bank (an agreement's own target is not
      read, as XB-F1's volume cap is not);
    - 风控管理好: the bank's XB NPL ratio (M-6's 90 days) at the evaluation date below
      `good_npl_bp`;
    - 补偿率: the year's base sub-fund compensation approved as a share of the bank's
      XB-Q1 limit in force at the evaluation date (5 % of its base principal at the last
      quarter end before it); low below `high_compensation_share_bp` of the limit — the
      XB-Q1 risk warning (50 %) — high at or above it;
    - expand: the target met, the NPL ratio good and the compensation rate low; reduce:
      the target missed in each of the last `target_miss_years` years (this one
      included) and the compensation rate high; else keep. “直至终止合作” is left to the
      leading group: the service never escalates a reduce to terminate."""

    due_month: int = 11  # XB-Rep: by November 30
    due_day: int = 30
    lending_target_fen: int = 100_000_000_00
    target_miss_years: int = 2
    good_npl_bp: int = 300
    high_compensation_share_bp: int = LIMITS.warning_share_bp


EVALUATION = EvaluationPolicy()


# XB-C2, XB-R1: the deadlines stored on a claim — name → (the status that waits for the
# step, the claim's date the working days count from, how many)
CLAIM_DEADLINES: dict[str, tuple[str, str, int]] = {
    "manager_opinion": ("submitted", "filed_on", CLAIMS.review_working_days),
    "payment": ("approved", "approved_on", CLAIMS.payment_working_days),
}


# XB-Rep (第二十一条 “基金管理人应当分别于每年1月15日、4月15日、7月15日、10月15日前向领导小组
# 办公室报告信保基金上一季度运行情况”): the quarterly report's day and recipient
REPORT_DAY = 15
REPORT_TO = "领导小组办公室"
