"""SKD filing rules (SKD-E1, P1, P2, F1–F6) as a list of small tagged rules over the facts
the service gathers. Every rule is checked; every failure is returned with its rule ID,
in the order of `FILING_RULES`."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from functools import cached_property

from app.errors import Violation
from app.kit.calendar import add_months, provisional_note
from app.kit.money import format_fen
from app.programs.common import OverdueFact, overdue_loan_reasons
from app.programs.rules import Rule, refusal, rule, run, violations, years
from app.programs.sukedai.policy import (
    FILING,
    FilingPolicy,
    Product,
    product_by_code,
    product_for_revenue,
)
from app.programs.sukedai.policy import PROGRAM_POLICY as PROGRAM


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
        "enterprise_not_in_library",
        "the enterprise is not in the SKD enterprise library",
        "enterprise_credit_code",
    )


# --- SKD-P1, P2, M-4: the product ------------------------------------------------------
@rule("SKD-P1")
def revenue_within_a_band(f: FilingFacts, p: FilingPolicy) -> Violation | None:
    if f.product is not None:
        return None
    return refusal(
        "revenue_above_skd3",
        f"prior-year revenue {format_fen(f.revenue_fen)} is above every SKD band",
        "enterprise_credit_code",
    )


@rule("SKD-P1")
def product_matches_revenue(f: FilingFacts, p: FilingPolicy) -> Violation | None:
    product = f.product
    if product is None or f.declared_product in (None, product.code):
        return None
    return refusal(
        "product_mismatch",
        f"revenue {format_fen(f.revenue_fen)} makes this {product.code}, not {f.declared_product}",
        "product",
    )


@rule("SKD-P1")
def product_known(f: FilingFacts, p: FilingPolicy) -> Violation | None:
    if f.declared_product is None or product_by_code(f.declared_product) is not None:
        return None
    return refusal("unknown_product", f"{f.declared_product!r} is no SKD product", "product")


@rule("SKD-P1")
def principal_within_product_max(f: FilingFacts, p: FilingPolicy) -> Violation | None:
    product = f.product
    if product is None or f.principal_fen <= product.max_principal_fen:
        return None
    return refusal(
        "principal_above_max",
        f"{product.code} lends at most {format_fen(product.max_principal_fen)}",
        "principal",
    )


@rule("M-4")
def lpr_known(f: FilingFacts, p: FilingPolicy) -> Violation | None:
    if f.product is None or f.lpr_bp is not None:
        return None
    return refusal(
        "lpr_unknown", f"no 1-year LPR is recorded in force on {f.disbursed_on}", "disbursed_on"
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
        "rate_above_cap",
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
        "security_not_allowed",
        f"{product.code} at this amount is a credit loan: no collateral but an IP pledge",
        "security",
    )


@rule("SKD-P2")
def controller_guarantee(f: FilingFacts, p: FilingPolicy) -> Violation | None:
    if f.product is None or f.security not in p.credit_securities or f.controller_guarantee:
        return None
    return refusal(
        "controller_guarantee_required",
        "a credit loan carries the actual controller couple's joint guarantee",
        "controller_guarantee",
    )


@rule("SKD-P2")
def no_fees(f: FilingFacts, p: FilingPolicy) -> Violation | None:
    if f.product is None or f.security not in p.credit_securities or f.fee_rate_bp == 0:
        return None
    return refusal("fees_not_allowed", "a credit loan charges no fees", "fee_rate_bp")


@rule("SKD-P1")
def term_within_max(f: FilingFacts, p: FilingPolicy) -> Violation | None:
    if f.maturity_on <= one_year_after(f.disbursed_on, p):
        return None
    return refusal(
        "term_too_long", f"SKD loans run at most {years(p.max_term_years)}", "maturity_on"
    )


# --- SKD-F1…F6: the filing -------------------------------------------------------------
@rule("SKD-F2")
def disbursed_before_filing(f: FilingFacts, p: FilingPolicy) -> Violation | None:
    if f.disbursed_on <= f.today:
        return None
    return refusal("disbursed_in_future", "file a loan after it is disbursed", "disbursed_on")


@rule("SKD-F2")
def filed_by_deadline(f: FilingFacts, p: FilingPolicy) -> Violation | None:
    if f.disbursed_on > f.today or f.today <= f.filing_deadline:
        return None
    return refusal(
        "filing_deadline_passed",
        f"filing closed on {f.filing_deadline} ({PROGRAM.filing_deadline_working_days} "
        "working days after disbursement)"
        + provisional_note(f.filing_deadline, f.filing_deadline_provisional),
        "disbursed_on",
    )


@rule("SKD-F1")
def agreement_active(f: FilingFacts, p: FilingPolicy) -> Violation | None:
    if f.agreement_status is None:
        return refusal(
            "no_agreement",
            "the bank holds no SKD agreement covering this region and date",
            "disbursed_on",
        )
    if f.agreement_status == "suspended":
        return refusal("bank_suspended", "the bank's SKD filings are suspended", "program")
    if f.agreement_status != "active":
        return refusal(
            "agreement_not_active", f"the bank's SKD agreement is {f.agreement_status}", "program"
        )
    return None


@rule("SKD-F1")
def region_cooperating(f: FilingFacts, p: FilingPolicy) -> Violation | None:
    if f.region_cooperating:
        return None
    return refusal(
        "region_not_cooperating",
        "the enterprise's region has no SKD city fund",
        "enterprise_credit_code",
    )


@rule("SKD-F3")
def one_loan_at_a_time(f: FilingFacts, p: FilingPolicy) -> Violation | None:
    if not f.enterprise_has_active_loan:
        return None
    return refusal(
        "enterprise_has_active_loan",
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
                "unpaid_overdue_loan",
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
        "dishonest_debtor",
        "the enterprise or its actual controller is a dishonest judgment debtor",
        "enterprise_credit_code",
    )


@rule("SKD-F4")
def environmental_rating(f: FilingFacts, p: FilingPolicy) -> Violation | None:
    rating = f.enterprise_flags.get("env_credit_rating")
    if rating not in p.excluded_env_ratings:
        return None
    return refusal(
        "environmental_rating", f"environmental credit rating {rating}", "enterprise_credit_code"
    )


@rule("SKD-F4")
def tax_rating(f: FilingFacts, p: FilingPolicy) -> Violation | None:
    rating = f.enterprise_flags.get("tax_credit_rating")
    if rating not in p.excluded_tax_ratings:
        return None
    return refusal("tax_rating_d", f"tax credit rating {rating}", "enterprise_credit_code")


@rule("SKD-F5")
def no_other_fiscal_support(f: FilingFacts, p: FilingPolicy) -> Violation | None:
    if not f.other_fiscal_support:
        return None
    return refusal(
        "other_fiscal_support",
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
        "guarantor_consent_not_applicable",
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
    return Violation(
        msg=f"the year's quota {format_fen(quota_fen)} has "
        f"{format_fen(max(quota_fen - used_fen, 0))} left",
        loc=("body", "principal"),
        code="annual_quota_exceeded",
        rule="SKD-F6",
    )
