"""SKD policy numbers, as data, each tagged with the SPEC rule it comes from."""

from __future__ import annotations

from dataclasses import dataclass

from app.programs.base import ArrearsRule, CityFundContributor, ProgramPolicy

# The programme: its agreements (SPEC §2: 3 years, suspended by the province), the
# filing deadline (SKD-F2: 5 working days, refused after it) and the finance bureau that
# pays a city/county fund's capital (SPEC §2, SKD-C1).
PROGRAM_POLICY = ProgramPolicy(
    code="SKD",
    name_zh="苏科贷",
    name_en="Su Ke Dai (provincial tech-SME credit loans)",
    agreement_term_months=36,
    agreement_authority_role="province_reviewer",
    filing_deadline_working_days=5,
    late_filing_rule="SKD-F2",
    city_fund_contributor=CityFundContributor(code="FINANCE_{region}", name="{region_name}财政局"),
    # SPEC M-6. SKD-C2: the claim needs the *principal* 90 days past due (“本金逾期”);
    # SKD-Q3: a loan is non-performing (不良) 90 days past due on principal or interest
    # (the policy's “逾期 90 天以上的不良贷款”, read with the loan-classification rule
    # that interest 90 days unpaid makes a loan non-performing)
    arrears_rules=(
        ArrearsRule("SKD-C2", "claim", 90, False, "代偿申请门槛", "claim threshold"),
        ArrearsRule("SKD-Q3", "npl", 90, True, "不良贷款", "non-performing"),
    ),
)


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


@dataclass(frozen=True)
class Product:
    """SPEC §3 Products table (SKD-P1), and the shares of SKD-S1."""

    code: str
    revenue_max_fen: int  # prior-year sales revenue ≤ this (and above the previous band)
    max_principal_fen: int
    rate_spread_bp: int  # rate cap = 1-year LPR on the disbursement date + spread (M-4)
    credit_only_up_to_fen: int | None  # None: credit (or IP pledge) only, whatever the amount
    province_share_bp: int  # SKD-S1
    city_share_bp: int  # SKD-S1; the bank bears the rest (and all interest loss)


PRODUCTS: tuple[Product, ...] = (
    Product("SKD1", 20_000_000_00, 5_000_000_00, 50, None, 4000, 4000),
    Product("SKD2", 50_000_000_00, 10_000_000_00, 80, None, 4000, 4000),
    Product("SKD3", 400_000_000_00, 30_000_000_00, 100, 10_000_000_00, 1500, 1500),
)


@dataclass(frozen=True)
class FilingPolicy:
    max_term_years: int = 1  # SKD-P1: every product lends for one year at most
    credit_securities: tuple[str, ...] = ("credit", "ip_pledge")  # SKD-P2
    excluded_env_ratings: tuple[str, ...] = ("red", "black")  # SKD-F4: red or worse
    excluded_tax_ratings: tuple[str, ...] = ("D",)  # SKD-F4


FILING = FilingPolicy()


def product_for_revenue(revenue_fen: int) -> Product | None:
    """SKD-P1: the product follows from prior-year revenue; None above SKD3's band."""
    for product in PRODUCTS:
        if revenue_fen <= product.revenue_max_fen:
            return product
    return None


def product_by_code(code: str) -> Product | None:
    return next((p for p in PRODUCTS if p.code == code), None)


@dataclass(frozen=True)
class QuarterEndPolicy:
    """SKD-Q3: suspension at a quarter-end NPL ratio ≥ 3 %. An agreement's first
    `early_period_days` may use `early_threshold_bp` instead (the policy's early-period
    tolerance; off by default: the same 3 %)."""

    threshold_bp: int = 300
    npl_days_past_due: int = PROGRAM_POLICY.arrears_rule("npl").days
    early_period_days: int = 0
    early_threshold_bp: int = 300
    reason_prefix: str = "SKD-Q3 quarter-end"  # marks suspensions a quarter-end made


QUARTER_END = QuarterEndPolicy()


@dataclass(frozen=True)
class ClaimPolicy:
    """SKD-C2: a claim may be filed once principal is this many days past due (the
    policy's 90 days; configurable here). The loss claimed is the unpaid principal."""

    min_days_past_due: int = PROGRAM_POLICY.arrears_rule("claim").days
    required_documents: int = 1  # SKD-C1: the application comes with electronic files


CLAIMS = ClaimPolicy()

# SKD-C1 退回补正: what a review stage may list when it returns a claim for correction,
# code → (中文, English). All are listed at once; `other` needs a detail.
DEFICIENCIES: dict[str, tuple[str, str]] = {
    "document_missing": ("申请材料缺失", "a required document is missing"),
    "document_unreadable": ("材料无法辨认", "a document cannot be read"),
    "overdue_date_wrong": ("逾期日期有误", "the overdue date is wrong"),
    "amount_wrong": ("申请金额有误", "an amount in the application is wrong"),
    "loan_contract_mismatch": ("与借款合同不符", "the application differs from the contract"),
    "other": ("其他（须说明）", "other (the detail says what)"),
}


@dataclass(frozen=True)
class CapPolicy:
    """SKD-Q1 and SKD-Q2.

    Q1: compensation ÷ annualized principal may not exceed `rate_bp`, where annualized
    principal = Σ principal × loan days / `year_days` × the funds' share of the product.
    Reading chosen (SPEC): loan days are the contractual days from disbursement to
    maturity; the loans counted are the bank's SKD loans disbursed from the start of its
    cooperation (its earliest SKD agreement) up to the approval date; the cap applies to
    the bank's total over SKD1/2/3 (the per-product figures are statistics).
    Q2: during the first `exemption_months` of the cooperation, while the bank's
    cumulative SKD principal is ≤ `exemption_principal_fen`, Q1 does not apply."""

    rate_bp: int = 300
    year_days: int = 365
    exemption_months: int = 12
    exemption_principal_fen: int = 200_000_000_00


CAPS = CapPolicy()
