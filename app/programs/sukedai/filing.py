"""SKD filing rules (SKD-E1, P1, P2, F1–F6) as a list of small tagged rules over the facts
the service gathers. Every rule is checked; every failure is returned with its rule ID,
in the order of `FILING_RULES`."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from functools import cached_property

from app.errors import Unprocessable, Violation
from app.kit.calendar import add_months, provisional_note
from app.kit.money import format_fen
from app.programs.common import (
    SHARED_FILING_REFUSALS,
    AgreementNotActive,
    BankSuspended,
    ControllerGuaranteeRequired,
    DisbursedInFuture,
    FeesNotAllowed,
    GuarantorConsentNotApplicable,
    LprUnknown,
    NoAgreement,
    OverdueFact,
    RateAboveCap,
    SecurityNotAllowed,
    TermTooLong,
    UnpaidOverdueLoan,
    overdue_loan_reasons,
)
from app.programs.rules import Rule, refusal, rule, run, violations, years
from app.programs.sukedai.policy import (
    FILING,
    FilingPolicy,
    Product,
    product_by_code,
    product_for_revenue,
)
from app.programs.sukedai.policy import PROGRAM_POLICY as PROGRAM


# --- the refusals of SKD's own rules (those both programmes use: app.programs.common) ---
class EnterpriseNotInLibrary(Unprocessable):
    """Only an enterprise in the SKD enterprise library (备选企业库) gets an SKD loan: a
    city reviewer admits it first (`POST /enterprises/{credit_code}/library-admission`,
    SKD-E1)."""

    code, rule = "enterprise_not_in_library", "SKD-E1"
    title, title_zh = "Enterprise not in the library", "企业未入苏科贷备选企业库"


class RevenueAboveSkd3(Unprocessable):
    """The enterprise's prior-year revenue is above every SKD product's band (SKD-P1)."""

    code, rule = "revenue_above_skd3", "SKD-P1"
    title, title_zh = "Revenue above every SKD band", "上年销售收入超过苏科贷各产品上限"


class ProductMismatch(Unprocessable):
    """The declared `product` is not the one the enterprise's prior-year revenue makes
    it (SKD-P1); leave `product` out to let the revenue decide."""

    code, rule = "product_mismatch", "SKD-P1"
    title, title_zh = "Product does not match revenue", "贷款产品与企业上年销售收入不符"


class UnknownProduct(Unprocessable):
    """The declared `product` is no SKD product (SKD-P1: SKD1, SKD2, SKD3)."""

    code, rule = "unknown_product", "SKD-P1"
    title, title_zh = "Unknown product", "未知的苏科贷产品"


class PrincipalAboveMax(Unprocessable):
    """The principal is above the product's maximum (SKD-P1)."""

    code, rule = "principal_above_max", "SKD-P1"
    title, title_zh = "Principal above the product's maximum", "贷款金额超过产品上限"


class FilingDeadlinePassed(Unprocessable):
    """The loan was filed more than the programme's working days after disbursement
    (SKD-F2: 5 working days, M-3 calendar); an SKD filing after it is refused."""

    code, rule = "filing_deadline_passed", "SKD-F2"
    title, title_zh = "Filing deadline passed", "超过备案期限"


class RegionNotCooperating(Unprocessable):
    """The enterprise's region has no SKD city/county fund on the disbursement date
    (SKD-F1)."""

    code, rule = "region_not_cooperating", "SKD-F1"
    title, title_zh = "Region has no SKD fund", "企业所在地区未设立苏科贷风险补偿资金"


class EnterpriseHasActiveLoan(Unprocessable):
    """The enterprise already has an SKD loan outstanding: one at a time (SKD-F3)."""

    code, rule = "enterprise_has_active_loan", "SKD-F3"
    title, title_zh = "Enterprise already has an SKD loan", "企业已有未结清的苏科贷贷款"


class DishonestDebtor(Unprocessable):
    """The enterprise or its actual controller is a dishonest judgment debtor (SKD-F4)."""

    code, rule = "dishonest_debtor", "SKD-F4"
    title, title_zh = "Dishonest judgment debtor", "企业或其实际控制人为失信被执行人"


class EnvironmentalRating(Unprocessable):
    """The enterprise's environmental credit rating is one SKD excludes (SKD-F4)."""

    code, rule = "environmental_rating", "SKD-F4"
    title, title_zh = "Environmental credit rating excluded", "环保信用评价等级不符合要求"


class TaxRatingD(Unprocessable):
    """The enterprise's tax credit rating is D (SKD-F4)."""

    code, rule = "tax_rating_d", "SKD-F4"
    title, title_zh = "Tax credit rating D", "纳税信用等级为D级"


class OtherFiscalSupport(Unprocessable):
    """The loan already enjoys another fiscal special-loan policy (SKD-F5)."""

    code, rule = "other_fiscal_support", "SKD-F5"
    title, title_zh = "Other fiscal support received", "已享受其他财政专项贷款政策"


class AnnualQuotaExceeded(Unprocessable):
    """The principal does not fit in what is left of the year's issuance quota (SKD-F6,
    `GET /programs/SKD/quotas/{year}`); counted again when the request commits."""

    code, rule = "annual_quota_exceeded", "SKD-F6"
    title, title_zh = "Annual quota exceeded", "超过年度投放额度"


# every refusal an SKD filing can answer, in the order of the rules
FILING_REFUSALS: tuple[type[Unprocessable], ...] = (
    EnterpriseNotInLibrary,
    RevenueAboveSkd3,
    ProductMismatch,
    UnknownProduct,
    PrincipalAboveMax,
    FilingDeadlinePassed,
    RegionNotCooperating,
    EnterpriseHasActiveLoan,
    DishonestDebtor,
    EnvironmentalRating,
    TaxRatingD,
    OtherFiscalSupport,
    AnnualQuotaExceeded,
    *SHARED_FILING_REFUSALS,
)


@dataclass(frozen=True)
class FilingFacts:
    # the loan as filed
    declared_product: str | None
    principal_fen: int
    annual_rate_bp: int
    fee_rate_bp: int
    disbursed_on: date
    maturity_on: date
    security: str
    controller_guarantee: bool
    other_fiscal_support: bool
    # what the service found
    today: date
    filing_deadline: date
    lpr_bp: int | None
    in_library: bool
    revenue_fen: int
    enterprise_flags: dict[str, object] = field(default_factory=dict)
    filing_deadline_provisional: bool = False  # a provisional calendar day in it (M-3)
    agreement_status: str | None = None  # None: no SKD agreement covers the date
    region_cooperating: bool = True
    enterprise_has_active_loan: bool = False
    quota_fen: int | None = None
    quota_used_fen: int = 0
    guarantor_consent_given: bool = False  # XB-F2's consent letter: not an SKD document
    # SKD-F4: loans in arrears on the service's own books, the enterprise's or its actual
    # controller's other enterprises', in any programme, on the filing date
    overdue_in_books: tuple[OverdueFact, ...] = ()

    @cached_property
    def product(self) -> Product | None:
        """SKD-P1: the product the prior-year revenue makes it (None above every band)."""
        return product_for_revenue(self.revenue_fen)


@dataclass
class FilingDecision:
    product: Product | None
    violations: list[Violation]


SkdFilingRule = Rule[FilingFacts, FilingPolicy]


def one_year_after(day: date, policy: FilingPolicy = FILING) -> date:
    """The latest maturity of a loan disbursed on `day`: the same date `max_term_years`
    later (29 Feb → 28 Feb)."""
    return add_months(day, 12 * policy.max_term_years)


# --- SKD-E1: the enterprise library ----------------------------------------------------
@rule("SKD-E1")
def in_library(f: FilingFacts, p: FilingPolicy) -> Violation | None:
    if f.in_library:
        return None
    return refusal(
        EnterpriseNotInLibrary,
        "the enterprise is not in the SKD enterprise library",
        "enterprise_credit_code",
    )


# --- SKD-P1, P2, M-4: the product ------------------------------------------------------
@rule("SKD-P1")
def revenue_within_a_band(f: FilingFacts, p: FilingPolicy) -> Violation | None:
    if f.product is not None:
        return None
    return refusal(
        RevenueAboveSkd3,
        f"prior-year revenue {format_fen(f.revenue_fen)} is above every SKD band",
        "enterprise_credit_code",
    )


@rule("SKD-P1")
def product_matches_revenue(f: FilingFacts, p: FilingPolicy) -> Violation | None:
    product = f.product
    if product is None or f.declared_product in (None, product.code):
        return None
    return refusal(
        ProductMismatch,
        f"revenue {format_fen(f.revenue_fen)} makes this {product.code}, not {f.declared_product}",
        "product",
    )


@rule("SKD-P1")
def product_known(f: FilingFacts, p: FilingPolicy) -> Violation | None:
    if f.declared_product is None or product_by_code(f.declared_product) is not None:
        return None
    return refusal(UnknownProduct, f"{f.declared_product!r} is no SKD product", "product")


@rule("SKD-P1")
def principal_within_product_max(f: FilingFacts, p: FilingPolicy) -> Violation | None:
    product = f.product
    if product is None or f.principal_fen <= product.max_principal_fen:
        return None
    return refusal(
        PrincipalAboveMax,
        f"{product.code} lends at most {format_fen(product.max_principal_fen)}",
        "principal",
    )


@rule("M-4")
def lpr_known(f: FilingFacts, p: FilingPolicy) -> Violation | None:
    if f.product is None or f.lpr_bp is not None:
        return None
    return refusal(
        LprUnknown, f"no 1-year LPR is recorded in force on {f.disbursed_on}", "disbursed_on"
    )


@rule("SKD-P1")
def rate_within_cap(f: FilingFacts, p: FilingPolicy) -> Violation | None:
    product = f.product
    if product is None or f.lpr_bp is None:
        return None
    cap = f.lpr_bp + product.rate_spread_bp
    if f.annual_rate_bp <= cap:
        return None
    return refusal(
        RateAboveCap,
        f"{product.code} rate cap is LPR {f.lpr_bp} bp + {product.rate_spread_bp} bp = {cap} bp",
        "annual_rate_bp",
    )


def _credit_only(product: Product, principal_fen: int) -> bool:
    """SKD-P2: the product at this amount is lent on credit (or an IP pledge) only."""
    limit = product.credit_only_up_to_fen
    return limit is None or principal_fen <= limit


@rule("SKD-P2")
def credit_security(f: FilingFacts, p: FilingPolicy) -> Violation | None:
    product = f.product
    if product is None or not _credit_only(product, f.principal_fen):
        return None
    if f.security in p.credit_securities:
        return None
    return refusal(
        SecurityNotAllowed,
        f"{product.code} at this amount is a credit loan: no collateral but an IP pledge",
        "security",
    )


@rule("SKD-P2")
def controller_guarantee(f: FilingFacts, p: FilingPolicy) -> Violation | None:
    if f.product is None or f.security not in p.credit_securities or f.controller_guarantee:
        return None
    return refusal(
        ControllerGuaranteeRequired,
        "a credit loan carries the actual controller couple's joint guarantee",
        "controller_guarantee",
    )


@rule("SKD-P2")
def no_fees(f: FilingFacts, p: FilingPolicy) -> Violation | None:
    if f.product is None or f.security not in p.credit_securities or f.fee_rate_bp == 0:
        return None
    return refusal(FeesNotAllowed, "a credit loan charges no fees", "fee_rate_bp")


@rule("SKD-P1")
def term_within_max(f: FilingFacts, p: FilingPolicy) -> Violation | None:
    if f.maturity_on <= one_year_after(f.disbursed_on, p):
        return None
    return refusal(TermTooLong, f"SKD loans run at most {years(p.max_term_years)}", "maturity_on")


# --- SKD-F1…F6: the filing -------------------------------------------------------------
@rule("SKD-F2")
def disbursed_before_filing(f: FilingFacts, p: FilingPolicy) -> Violation | None:
    if f.disbursed_on <= f.today:
        return None
    return refusal(DisbursedInFuture, "file a loan after it is disbursed", "disbursed_on")


@rule("SKD-F2")
def filed_by_deadline(f: FilingFacts, p: FilingPolicy) -> Violation | None:
    if f.disbursed_on > f.today or f.today <= f.filing_deadline:
        return None
    return refusal(
        FilingDeadlinePassed,
        f"filing closed on {f.filing_deadline} ({PROGRAM.filing_deadline_working_days} "
        "working days after disbursement)"
        + provisional_note(f.filing_deadline, f.filing_deadline_provisional),
        "disbursed_on",
    )


@rule("SKD-F1")
def agreement_active(f: FilingFacts, p: FilingPolicy) -> Violation | None:
    if f.agreement_status is None:
        return refusal(
            NoAgreement,
            "the bank holds no SKD agreement covering this region and date",
            "disbursed_on",
        )
    if f.agreement_status == "suspended":
        return refusal(BankSuspended, "the bank's SKD filings are suspended", "program")
    if f.agreement_status != "active":
        return refusal(
            AgreementNotActive, f"the bank's SKD agreement is {f.agreement_status}", "program"
        )
    return None


@rule("SKD-F1")
def region_cooperating(f: FilingFacts, p: FilingPolicy) -> Violation | None:
    if f.region_cooperating:
        return None
    return refusal(
        RegionNotCooperating,
        "the enterprise's region has no SKD city fund",
        "enterprise_credit_code",
    )


@rule("SKD-F3")
def one_loan_at_a_time(f: FilingFacts, p: FilingPolicy) -> Violation | None:
    if not f.enterprise_has_active_loan:
        return None
    return refusal(
        EnterpriseHasActiveLoan,
        "the enterprise already has an SKD loan outstanding",
        "enterprise_credit_code",
    )


@rule("SKD-F4")
def no_unpaid_overdue_loan(f: FilingFacts, p: FilingPolicy) -> list[Violation]:
    """The flags declared on the enterprise, and every loan in arrears on the service's
    own books (each its own reason)."""
    found = []
    flags = f.enterprise_flags
    if flags.get("overdue_loans_elsewhere") or flags.get("controller_overdue_loans"):
        found.append(
            refusal(
                UnpaidOverdueLoan,
                "the enterprise or its actual controller has an unpaid overdue loan",
                "enterprise_credit_code",
            )
        )
    return found + overdue_loan_reasons(f.overdue_in_books)


@rule("SKD-F4")
def not_a_dishonest_debtor(f: FilingFacts, p: FilingPolicy) -> Violation | None:
    flags = f.enterprise_flags
    if not (flags.get("dishonest_debtor") or flags.get("controller_dishonest_debtor")):
        return None
    return refusal(
        DishonestDebtor,
        "the enterprise or its actual controller is a dishonest judgment debtor",
        "enterprise_credit_code",
    )


@rule("SKD-F4")
def environmental_rating(f: FilingFacts, p: FilingPolicy) -> Violation | None:
    rating = f.enterprise_flags.get("env_credit_rating")
    if rating not in p.excluded_env_ratings:
        return None
    return refusal(
        EnvironmentalRating, f"environmental credit rating {rating}", "enterprise_credit_code"
    )


@rule("SKD-F4")
def tax_rating(f: FilingFacts, p: FilingPolicy) -> Violation | None:
    rating = f.enterprise_flags.get("tax_credit_rating")
    if rating not in p.excluded_tax_ratings:
        return None
    return refusal(TaxRatingD, f"tax credit rating {rating}", "enterprise_credit_code")


@rule("SKD-F5")
def no_other_fiscal_support(f: FilingFacts, p: FilingPolicy) -> Violation | None:
    if not f.other_fiscal_support:
        return None
    return refusal(
        OtherFiscalSupport,
        "already supported by another fiscal special-loan policy",
        "other_fiscal_support",
    )


@rule("SKD-F6")
def within_annual_quota(f: FilingFacts, p: FilingPolicy) -> Violation | None:
    if f.quota_fen is None or f.quota_used_fen + f.principal_fen <= f.quota_fen:
        return None
    return quota_exceeded(f.quota_fen, f.quota_used_fen)


@rule("XB-F2")
def no_guarantor_consent(f: FilingFacts, p: FilingPolicy) -> Violation | None:
    if not f.guarantor_consent_given:
        return None
    return refusal(
        GuarantorConsentNotApplicable,
        "the guarantor's consent letter (同意担保确认函) goes with guaranteed XB loans; an SKD "
        "filing carries none",
        "guarantor_consent",
    )


# The order of the list is the order of the errors in a refusal.
FILING_RULES: tuple[SkdFilingRule, ...] = (
    in_library,
    revenue_within_a_band,
    product_matches_revenue,
    product_known,
    principal_within_product_max,
    lpr_known,
    rate_within_cap,
    credit_security,
    controller_guarantee,
    no_fees,
    term_within_max,
    disbursed_before_filing,
    filed_by_deadline,
    agreement_active,
    region_cooperating,
    one_loan_at_a_time,
    no_unpaid_overdue_loan,
    not_a_dishonest_debtor,
    environmental_rating,
    tax_rating,
    no_other_fiscal_support,
    within_annual_quota,
    no_guarantor_consent,
)


def check_filing(f: FilingFacts, policy: FilingPolicy = FILING) -> FilingDecision:
    """Every rule of `FILING_RULES` over the facts; the product the revenue makes it."""
    return FilingDecision(product=f.product, violations=violations(run(FILING_RULES, f, policy)))


def quota_exceeded(quota_fen: int, used_fen: int) -> Violation:
    """SKD-F6: the principal does not fit in what is left of the year's quota."""
    return AnnualQuotaExceeded.violation(
        f"the year's quota {format_fen(quota_fen)} has "
        f"{format_fen(max(quota_fen - used_fen, 0))} left",
        "body",
        "principal",
    )
