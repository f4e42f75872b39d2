"""XB filing rules (XB-E1, E2, P1, F2) as one pure function over the facts the service
gathers. Every refusal is returned with its rule ID; a credit loan filed late is not
refused but accepted as non-compensable (XB-N7), a guaranteed loan carries the
guarantor's consent letter instead of a deadline (XB-F2), and a term outside 6–24 months
is flagged."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

from app.errors import Violation
from app.kit.calendar import add_months
from app.kit.money import format_fen
from app.programs.base import XB as PROGRAM
from app.programs.base import late_filing_flag
from app.programs.xinbao.policy import FILING, SECURITIES


@dataclass(frozen=True)
class FilingFacts:
    principal_fen: int
    annual_rate_bp: int
    fee_rate_bp: int
    disbursed_on: date
    maturity_on: date
    security: str
    guarantor: str | None
    controller_guarantee: bool
    today: date
    filing_deadline: date
    lpr_bp: int | None
    region_code: str
    registered_on: date
    outstanding_fen: int  # the enterprise's XB principal outstanding before this loan
    last_compensation_on: date | None  # the enterprise's latest XB compensation
    enterprise_flags: dict[str, object] = field(default_factory=dict)
    filing_deadline_provisional: bool = False  # a provisional calendar day in it (M-3)
    agreement_status: str | None = None  # None: no agreement with the sub-fund
    sub_fund_known: bool = True
    fund_stopped: bool = False  # XB-Q2
    # XB-F2: the guarantor's consent letter (同意担保确认函), when the filing gives one
    guarantor_consent_ref: str | None = None
    guarantor_consent_on: date | None = None


@dataclass
class FilingDecision:
    violations: list[Violation]
    flags: list[str]
    filed_late: bool


def _v(code: str, rule: str, msg: str, loc: str) -> Violation:
    return Violation(msg=msg, loc=("body", loc), code=code, rule=rule)


def check_filing(f: FilingFacts) -> FilingDecision:
    out: list[Violation] = []
    flags: list[str] = []
    if f.region_code not in FILING.eligible_regions:
        out.append(
            _v(
                "region_not_eligible",
                "XB-E1",
                f"registered in {f.region_code}, outside the contributor districts",
                "enterprise_credit_code",
            )
        )
    if add_months(f.registered_on, 12 * FILING.min_years_in_business) > f.disbursed_on:
        out.append(
            _v(
                "in_business_under_a_year",
                "XB-N1",
                f"registered on {f.registered_on}, less than a year before disbursement",
                "enterprise_credit_code",
            )
        )
    flags_in = f.enterprise_flags
    if flags_in.get("malicious_default_blacklist"):
        out.append(
            _v(
                "blacklisted",
                "XB-E2",
                "the enterprise is on the malicious-default blacklist",
                "enterprise_credit_code",
            )
        )
    bad_on = flags_in.get("last_malicious_overdue_on")
    if isinstance(bad_on, date) and add_months(bad_on, 12 * FILING.clean_record_years) > f.today:
        out.append(
            _v(
                "malicious_overdue_within_2_years",
                "XB-E1",
                f"a malicious overdue or unpaid interest on {bad_on}, within the prior "
                f"{FILING.clean_record_years} years",
                "enterprise_credit_code",
            )
        )
    if flags_in.get("overdue_loans_elsewhere") or flags_in.get("controller_overdue_loans"):
        out.append(
            _v(
                "unpaid_overdue_loan",
                "XB-N2",
                "the enterprise or its controller has an unpaid overdue loan elsewhere",
                "enterprise_credit_code",
            )
        )
    if not f.controller_guarantee:
        out.append(
            _v(
                "controller_guarantee_required",
                "XB-E1",
                "the legal representative / controlling shareholder / actual controller must "
                "guarantee the loan",
                "controller_guarantee",
            )
        )
    if f.last_compensation_on is not None and f.disbursed_on < add_months(
        f.last_compensation_on, 12 * FILING.ban_years
    ):
        out.append(
            _v(
                "compensated_within_3_years",
                "XB-E2",
                f"the fund compensated a loan of this enterprise on {f.last_compensation_on}",
                "enterprise_credit_code",
            )
        )
    if f.outstanding_fen + f.principal_fen > FILING.max_outstanding_fen:
        out.append(
            _v(
                "enterprise_limit_exceeded",
                "XB-P1",
                f"{format_fen(f.outstanding_fen)} already outstanding; at most "
                f"{format_fen(FILING.max_outstanding_fen)} per enterprise",
                "principal",
            )
        )
    if f.maturity_on > add_months(f.disbursed_on, FILING.max_term_months):
        out.append(_v("term_too_long", "XB-P1", "XB loans run at most 3 years", "maturity_on"))
    else:
        low, high = FILING.norm_term_months
        if f.maturity_on < add_months(f.disbursed_on, low) or f.maturity_on > add_months(
            f.disbursed_on, high
        ):
            flags.append("XB-P1: term outside the usual 6 months to 2 years")
    if f.security not in SECURITIES:
        out.append(
            _v(
                "security_not_allowed",
                "XB-S1",
                "an XB loan is a credit loan or a guaranteed loan",
                "security",
            )
        )
    guaranteed = f.security == "guaranteed"
    if guaranteed and not f.guarantor:
        out.append(
            _v("guarantor_required", "XB-S1", "a guaranteed loan names its guarantor", "guarantor")
        )
    out += _consent(f, guaranteed)
    spread = FILING.guaranteed_spread_bp if guaranteed else FILING.credit_spread_bp
    if f.lpr_bp is None:
        out.append(
            _v("lpr_unknown", "M-4", f"no 1-year LPR in force on {f.disbursed_on}", "disbursed_on")
        )
    elif f.annual_rate_bp > f.lpr_bp + spread:
        out.append(
            _v(
                "rate_above_cap",
                "XB-P1",
                f"{f.security} loans: rate cap LPR {f.lpr_bp} bp + {spread} bp = "
                f"{f.lpr_bp + spread} bp",
                "annual_rate_bp",
            )
        )
    if guaranteed and f.fee_rate_bp > FILING.max_guarantee_fee_bp:
        out.append(
            _v(
                "guarantee_fee_above_cap",
                "XB-P1",
                f"the guarantee fee is at most {FILING.max_guarantee_fee_bp} bp (0.5 %)",
                "fee_rate_bp",
            )
        )
    if not guaranteed and f.fee_rate_bp:
        out.append(_v("fees_not_allowed", "XB-P1", "no fees beyond a guarantee fee", "fee_rate_bp"))
    if not f.sub_fund_known:
        out.append(_v("unknown_sub_fund", "XB-F0", "no such XB sub-fund", "sub_fund"))
    elif f.agreement_status is None:
        out.append(
            _v("no_agreement", "XB-F0", "the bank has no agreement with this sub-fund", "sub_fund")
        )
    elif f.agreement_status == "suspended":
        out.append(_v("bank_suspended", "XB-Q1", "the bank's XB business is suspended", "program"))
    elif f.agreement_status != "active":
        out.append(
            _v(
                "agreement_not_active",
                "XB-R2",
                f"the bank's XB agreement is {f.agreement_status}",
                "program",
            )
        )
    if f.fund_stopped:
        out.append(_v("fund_stopped", "XB-Q2", "the fund has stopped new business", "program"))
    late = False
    if f.disbursed_on > f.today:
        out.append(
            _v("disbursed_in_future", "XB-F2", "file a loan after it is disbursed", "disbursed_on")
        )
    elif f.today > f.filing_deadline and PROGRAM.filing_deadline_applies(f.security):
        late = True
        flags.append(late_filing_flag(PROGRAM, f.filing_deadline, f.filing_deadline_provisional))
    return FilingDecision(out, flags, late)


def _consent(f: FilingFacts, guaranteed: bool) -> list[Violation]:
    """XB-F2 (第十一条(三), (四)): a guaranteed loan is filed with the guarantor's consent
    letter, dated on or before the disbursement and not more than
    `FILING.consent_max_age_months` before it; a credit loan carries none."""
    given = f.guarantor_consent_ref is not None or f.guarantor_consent_on is not None
    if not guaranteed:
        if not given:
            return []
        return [
            _v(
                "guarantor_consent_not_applicable",
                "XB-F2",
                f"a {f.security} loan has no guarantor's consent letter (同意担保确认函): "
                "it goes with guaranteed loans; send security guaranteed or no "
                "guarantor_consent",
                "guarantor_consent",
            )
        ]
    if f.guarantor_consent_ref is None or f.guarantor_consent_on is None:
        return [
            _v(
                "guarantor_consent_missing",
                "XB-F2",
                "a guaranteed loan is filed with the guarantor's consent letter "
                "(同意担保确认函): guarantor_consent {reference, dated_on}",
                "guarantor_consent",
            )
        ]
    on = f.guarantor_consent_on
    earliest = add_months(f.disbursed_on, -FILING.consent_max_age_months)
    if on > f.disbursed_on:
        return [
            Violation(
                msg=f"the consent letter is dated {on}, after the disbursement on "
                f"{f.disbursed_on}: the guarantor consents before the loan is disbursed",
                loc=("body", "guarantor_consent", "dated_on"),
                code="guarantor_consent_after_disbursement",
                rule="XB-F2",
            )
        ]
    if on < earliest:
        return [
            Violation(
                msg=f"the consent letter is dated {on}, more than "
                f"{FILING.consent_max_age_months} months before the disbursement on "
                f"{f.disbursed_on}",
                loc=("body", "guarantor_consent", "dated_on"),
                code="guarantor_consent_too_old",
                rule="XB-F2",
            )
        ]
    return []
