"""SKD filing rules (SKD-E1, P1, P2, F1–F6) as one pure function over the facts the
service gathers. Every rule is checked; every failure is returned with its rule ID."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

from app.errors import Violation
from app.kit.calendar import add_months, provisional_note
from app.kit.money import format_fen
from app.programs.base import SKD as PROGRAM
from app.programs.sukedai.policy import FILING, Product, product_by_code, product_for_revenue


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


@dataclass
class FilingDecision:
    product: Product | None
    violations: list[Violation]


def one_year_after(day: date) -> date:
    """The same date a year later (29 Feb → 28 Feb)."""
    return add_months(day, 12 * FILING.max_term_years)


def _v(code: str, rule: str, msg: str, loc: str) -> Violation:
    return Violation(msg=msg, loc=("body", loc), code=code, rule=rule)


def check_filing(f: FilingFacts) -> FilingDecision:
    out: list[Violation] = []
    product = product_for_revenue(f.revenue_fen)
    if not f.in_library:
        out.append(
            _v(
                "enterprise_not_in_library",
                "SKD-E1",
                "the enterprise is not in the SKD enterprise library",
                "enterprise_credit_code",
            )
        )
    if product is None:
        out.append(
            _v(
                "revenue_above_skd3",
                "SKD-P1",
                f"prior-year revenue {format_fen(f.revenue_fen)} is above every SKD band",
                "enterprise_credit_code",
            )
        )
    elif f.declared_product is not None and f.declared_product != product.code:
        out.append(
            _v(
                "product_mismatch",
                "SKD-P1",
                f"revenue {format_fen(f.revenue_fen)} makes this {product.code}, "
                f"not {f.declared_product}",
                "product",
            )
        )
    if f.declared_product is not None and product_by_code(f.declared_product) is None:
        out.append(
            _v("unknown_product", "SKD-P1", f"{f.declared_product!r} is no SKD product", "product")
        )
    if product is not None:
        if f.principal_fen > product.max_principal_fen:
            out.append(
                _v(
                    "principal_above_max",
                    "SKD-P1",
                    f"{product.code} lends at most {format_fen(product.max_principal_fen)}",
                    "principal",
                )
            )
        if f.lpr_bp is None:
            out.append(
                _v(
                    "lpr_unknown",
                    "M-4",
                    f"no 1-year LPR is recorded in force on {f.disbursed_on}",
                    "disbursed_on",
                )
            )
        elif f.annual_rate_bp > f.lpr_bp + product.rate_spread_bp:
            cap = f.lpr_bp + product.rate_spread_bp
            out.append(
                _v(
                    "rate_above_cap",
                    "SKD-P1",
                    f"{product.code} rate cap is LPR {f.lpr_bp} bp + {product.rate_spread_bp}"
                    f" bp = {cap} bp",
                    "annual_rate_bp",
                )
            )
        credit_only = (
            product.credit_only_up_to_fen is None
            or f.principal_fen <= product.credit_only_up_to_fen
        )
        if credit_only and f.security not in FILING.credit_securities:
            out.append(
                _v(
                    "security_not_allowed",
                    "SKD-P2",
                    f"{product.code} at this amount is a credit loan: no collateral but an"
                    " IP pledge",
                    "security",
                )
            )
        if f.security in FILING.credit_securities:
            if not f.controller_guarantee:
                out.append(
                    _v(
                        "controller_guarantee_required",
                        "SKD-P2",
                        "a credit loan carries the actual controller couple's joint guarantee",
                        "controller_guarantee",
                    )
                )
            if f.fee_rate_bp != 0:
                out.append(
                    _v("fees_not_allowed", "SKD-P2", "a credit loan charges no fees", "fee_rate_bp")
                )
    if f.maturity_on > one_year_after(f.disbursed_on):
        out.append(_v("term_too_long", "SKD-P1", "SKD loans run at most one year", "maturity_on"))
    if f.disbursed_on > f.today:
        out.append(
            _v("disbursed_in_future", "SKD-F2", "file a loan after it is disbursed", "disbursed_on")
        )
    elif f.today > f.filing_deadline:
        out.append(
            _v(
                "filing_deadline_passed",
                "SKD-F2",
                f"filing closed on {f.filing_deadline} ({PROGRAM.filing_deadline_working_days} "
                "working days after disbursement)"
                + provisional_note(f.filing_deadline, f.filing_deadline_provisional),
                "disbursed_on",
            )
        )
    if f.agreement_status is None:
        out.append(
            _v(
                "no_agreement",
                "SKD-F1",
                "the bank holds no SKD agreement covering this region and date",
                "disbursed_on",
            )
        )
    elif f.agreement_status == "suspended":
        out.append(
            _v("bank_suspended", "SKD-F1", "the bank's SKD filings are suspended", "program")
        )
    elif f.agreement_status != "active":
        out.append(
            _v(
                "agreement_not_active",
                "SKD-F1",
                f"the bank's SKD agreement is {f.agreement_status}",
                "program",
            )
        )
    if not f.region_cooperating:
        out.append(
            _v(
                "region_not_cooperating",
                "SKD-F1",
                "the enterprise's region has no SKD city fund",
                "enterprise_credit_code",
            )
        )
    if f.enterprise_has_active_loan:
        out.append(
            _v(
                "enterprise_has_active_loan",
                "SKD-F3",
                "the enterprise already has an SKD loan outstanding",
                "enterprise_credit_code",
            )
        )
    flags = f.enterprise_flags
    if flags.get("overdue_loans_elsewhere") or flags.get("controller_overdue_loans"):
        out.append(
            _v(
                "unpaid_overdue_loan",
                "SKD-F4",
                "the enterprise or its actual controller has an unpaid overdue loan",
                "enterprise_credit_code",
            )
        )
    if flags.get("dishonest_debtor") or flags.get("controller_dishonest_debtor"):
        out.append(
            _v(
                "dishonest_debtor",
                "SKD-F4",
                "the enterprise or its actual controller is a dishonest judgment debtor",
                "enterprise_credit_code",
            )
        )
    if flags.get("env_credit_rating") in FILING.excluded_env_ratings:
        out.append(
            _v(
                "environmental_rating",
                "SKD-F4",
                f"environmental credit rating {flags.get('env_credit_rating')}",
                "enterprise_credit_code",
            )
        )
    if flags.get("tax_credit_rating") in FILING.excluded_tax_ratings:
        out.append(_v("tax_rating_d", "SKD-F4", "tax credit rating D", "enterprise_credit_code"))
    if f.other_fiscal_support:
        out.append(
            _v(
                "other_fiscal_support",
                "SKD-F5",
                "already supported by another fiscal special-loan policy",
                "other_fiscal_support",
            )
        )
    if f.quota_fen is not None and f.quota_used_fen + f.principal_fen > f.quota_fen:
        out.append(quota_exceeded(f.quota_fen, f.quota_used_fen))
    if f.guarantor_consent_given:
        out.append(
            _v(
                "guarantor_consent_not_applicable",
                "XB-F2",
                "the guarantor's consent letter (同意担保确认函) goes with guaranteed XB "
                "loans; an SKD filing carries none",
                "guarantor_consent",
            )
        )
    return FilingDecision(product=product, violations=out)


def quota_exceeded(quota_fen: int, used_fen: int) -> Violation:
    """SKD-F6: the principal does not fit in what is left of the year's quota."""
    return _v(
        "annual_quota_exceeded",
        "SKD-F6",
        f"the year's quota {format_fen(quota_fen)} has "
        f"{format_fen(max(quota_fen - used_fen, 0))} left",
        "principal",
    )
