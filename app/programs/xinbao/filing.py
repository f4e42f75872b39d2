"""XB filing rules (XB-E1, E2, N1, N2, P1, S1, F0, F2, Q1, Q2, R2) as a list of small
tagged rules over the facts the service gathers. Every refusal is returned with its rule
ID, in the order of `FILING_RULES`; a credit loan filed late is not refused but accepted
as non-compensable (XB-N7), a guaranteed loan carries the guarantor's consent letter
instead of a deadline (XB-F2), and a term outside the usual span (XB-P1) is flagged."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

from app.errors import Unprocessable, Violation
from app.kit.calendar import add_months
from app.kit.money import format_fen
from app.programs.base import late_filing_flag
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
from app.programs.rules import (
    Flag,
    Rule,
    flags,
    months,
    percent,
    refusal,
    rule,
    run,
    violations,
    years,
)
from app.programs.xinbao.policy import FILING, SECURITIES, FilingPolicy
from app.programs.xinbao.policy import PROGRAM_POLICY as PROGRAM


# --- the refusals of XB's own rules (those both programmes use: app.programs.common) ----
class RegionNotEligible(Unprocessable):
    """The enterprise is registered outside the districts that contribute to the fund
    (XB-E1)."""

    code, rule = "region_not_eligible", "XB-E1"
    title, title_zh = "Region not eligible", "企业注册地不在出资区域内"


class InBusinessUnderAYear(Unprocessable):
    """The enterprise was registered less than a year before the disbursement (XB-N1)."""

    code, rule = "in_business_under_a_year", "XB-N1"
    title, title_zh = "In business under a year", "企业成立不满一年"


class Blacklisted(Unprocessable):
    """The enterprise is on the malicious-default (恶意逃废债) blacklist (XB-E2)."""

    code, rule = "blacklisted", "XB-E2"
    title, title_zh = "On the malicious-default blacklist", "企业被列入恶意逃废债黑名单"


class MaliciousOverdueWithin2Years(Unprocessable):
    """A malicious overdue or unpaid interest within the prior 2 years (XB-E1)."""

    code, rule = "malicious_overdue_within_2_years", "XB-E1"
    title, title_zh = "Malicious overdue within 2 years", "近两年内有恶意逾期或欠息记录"


class CompensatedWithin3Years(Unprocessable):
    """The fund compensated a loan of this enterprise within the prior 3 years (XB-E2)."""

    code, rule = "compensated_within_3_years", "XB-E2"
    title, title_zh = "Compensated within 3 years", "三年内基金曾为该企业代偿"


class EnterpriseLimitExceeded(Unprocessable):
    """The enterprise's XB principal outstanding with this loan would exceed the
    per-enterprise limit (XB-P1)."""

    code, rule = "enterprise_limit_exceeded", "XB-P1"
    title, title_zh = "Per-enterprise limit exceeded", "超过单户贷款余额上限"


class GuarantorRequired(Unprocessable):
    """A guaranteed loan names its guarantor (合作担保机构) in `guarantor` (XB-S1)."""

    code, rule = "guarantor_required", "XB-S1"
    title, title_zh = "Guarantor required", "保证贷款须注明担保机构"


class GuarantorConsentMissing(Unprocessable):
    """A guaranteed XB loan is filed with the guarantor's consent letter (同意担保确认函):
    `guarantor_consent: {reference, dated_on}` (XB-F2)."""

    code, rule = "guarantor_consent_missing", "XB-F2"
    title, title_zh = "Consent letter missing", "缺少同意担保确认函"


class GuarantorConsentAfterDisbursement(Unprocessable):
    """The consent letter is dated after the disbursement: the guarantor consents before
    the loan is disbursed (XB-F2)."""

    code, rule = "guarantor_consent_after_disbursement", "XB-F2"
    title, title_zh = "Consent letter after disbursement", "同意担保确认函日期晚于放款日"


class GuarantorConsentTooOld(Unprocessable):
    """The consent letter is dated more than 12 months before the disbursement (XB-F2)."""

    code, rule = "guarantor_consent_too_old", "XB-F2"
    title, title_zh = "Consent letter too old", "同意担保确认函出具时间距放款日过久"


class GuaranteeFeeAboveCap(Unprocessable):
    """The guarantee fee is above the cap (XB-P1)."""

    code, rule = "guarantee_fee_above_cap", "XB-P1"
    title, title_zh = "Guarantee fee above the cap", "担保费率超过上限"


class UnknownSubFund(Unprocessable):
    """No XB sub-fund (子基金) has this code (XB-F0)."""

    code, rule = "unknown_sub_fund", "XB-F0"
    title, title_zh = "Unknown sub-fund", "未知的子基金"


class FundStopped(Unprocessable):
    """The fund has stopped new business (XB-Q2)."""

    code, rule = "fund_stopped", "XB-Q2"
    title, title_zh = "Fund stopped new business", "基金已暂停新增业务"


# every refusal an XB filing can answer, in the order of the rules
FILING_REFUSALS: tuple[type[Unprocessable], ...] = (
    RegionNotEligible,
    InBusinessUnderAYear,
    Blacklisted,
    MaliciousOverdueWithin2Years,
    CompensatedWithin3Years,
    EnterpriseLimitExceeded,
    GuarantorRequired,
    GuarantorConsentMissing,
    GuarantorConsentAfterDisbursement,
    GuarantorConsentTooOld,
    GuaranteeFeeAboveCap,
    UnknownSubFund,
    FundStopped,
    *SHARED_FILING_REFUSALS,
)


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
    # XB-N2 at filing: loans in arrears on the service's own books, the enterprise's or
    # its actual controller's other enterprises', in any programme, on the filing date
    overdue_in_books: tuple[OverdueFact, ...] = ()

    @property
    def guaranteed(self) -> bool:
        """XB-S1: a guaranteed loan (else a credit loan, or a security XB does not know)."""
        return self.security == "guaranteed"


@dataclass
class FilingDecision:
    violations: list[Violation]
    flags: list[str]
    filed_late: bool


XbFilingRule = Rule[FilingFacts, FilingPolicy]


def filed_late(f: FilingFacts) -> bool:
    """XB-F2, XB-N7: a loan the deadline binds (a credit loan) filed after it."""
    return (
        f.disbursed_on <= f.today
        and f.today > f.filing_deadline
        and PROGRAM.filing_deadline_applies(f.security)
    )


# --- XB-E1, E2, N1, N2: the enterprise -------------------------------------------------
@rule("XB-E1")
def region_eligible(f: FilingFacts, p: FilingPolicy) -> Violation | None:
    if f.region_code in p.eligible_regions:
        return None
    return refusal(
        RegionNotEligible,
        f"registered in {f.region_code}, outside the contributor districts",
        "enterprise_credit_code",
    )


@rule("XB-N1")
def in_business_long_enough(f: FilingFacts, p: FilingPolicy) -> Violation | None:
    if add_months(f.registered_on, 12 * p.min_years_in_business) <= f.disbursed_on:
        return None
    return refusal(
        InBusinessUnderAYear,
        f"registered on {f.registered_on}, less than "
        f"{years(p.min_years_in_business, one='a')} before disbursement",
        "enterprise_credit_code",
    )


@rule("XB-E2")
def not_blacklisted(f: FilingFacts, p: FilingPolicy) -> Violation | None:
    if not f.enterprise_flags.get("malicious_default_blacklist"):
        return None
    return refusal(
        Blacklisted,
        "the enterprise is on the malicious-default blacklist",
        "enterprise_credit_code",
    )


@rule("XB-E1")
def clean_record(f: FilingFacts, p: FilingPolicy) -> Violation | None:
    bad_on = f.enterprise_flags.get("last_malicious_overdue_on")
    if not isinstance(bad_on, date) or add_months(bad_on, 12 * p.clean_record_years) <= f.today:
        return None
    return refusal(
        MaliciousOverdueWithin2Years,  # the code names the policy's 2 years
        f"a malicious overdue or unpaid interest on {bad_on}, within the prior "
        f"{p.clean_record_years} years",
        "enterprise_credit_code",
    )


@rule("XB-N2")
def no_unpaid_overdue_loan(f: FilingFacts, p: FilingPolicy) -> list[Violation]:
    """The flags declared on the enterprise, and every loan in arrears on the service's
    own books (each its own reason)."""
    found = []
    flags_in = f.enterprise_flags
    if flags_in.get("overdue_loans_elsewhere") or flags_in.get("controller_overdue_loans"):
        found.append(
            refusal(
                UnpaidOverdueLoan,
                "the enterprise or its controller has an unpaid overdue loan elsewhere",
                "enterprise_credit_code",
            )
        )
    return found + overdue_loan_reasons(f.overdue_in_books)


@rule("XB-E1")
def controller_guarantee(f: FilingFacts, p: FilingPolicy) -> Violation | None:
    if f.controller_guarantee:
        return None
    return refusal(
        ControllerGuaranteeRequired,
        "the legal representative / controlling shareholder / actual controller must "
        "guarantee the loan",
        "controller_guarantee",
    )


@rule("XB-E2")
def no_recent_compensation(f: FilingFacts, p: FilingPolicy) -> Violation | None:
    last = f.last_compensation_on
    if last is None or f.disbursed_on >= add_months(last, 12 * p.ban_years):
        return None
    return refusal(
        CompensatedWithin3Years,  # the code names the policy's 3 years
        f"the fund compensated a loan of this enterprise on {last}",
        "enterprise_credit_code",
    )


# --- XB-P1, XB-S1, M-4: the loan -------------------------------------------------------
@rule("XB-P1")
def within_enterprise_limit(f: FilingFacts, p: FilingPolicy) -> Violation | None:
    if f.outstanding_fen + f.principal_fen <= p.max_outstanding_fen:
        return None
    return refusal(
        EnterpriseLimitExceeded,
        f"{format_fen(f.outstanding_fen)} already outstanding; at most "
        f"{format_fen(p.max_outstanding_fen)} per enterprise",
        "principal",
    )


def _term_too_long(f: FilingFacts, p: FilingPolicy) -> bool:
    return f.maturity_on > add_months(f.disbursed_on, p.max_term_months)


@rule("XB-P1")
def term_within_max(f: FilingFacts, p: FilingPolicy) -> Violation | None:
    if not _term_too_long(f, p):
        return None
    return refusal(TermTooLong, f"XB loans run at most {months(p.max_term_months)}", "maturity_on")


@rule("XB-P1")
def term_in_norm(f: FilingFacts, p: FilingPolicy) -> Flag | None:
    """Not a refusal: a term within the maximum but outside the usual span is flagged."""
    low, high = p.norm_term_months
    if _term_too_long(f, p) or (
        add_months(f.disbursed_on, low) <= f.maturity_on <= add_months(f.disbursed_on, high)
    ):
        return None
    return Flag(f"XB-P1: term outside the usual {months(low)} to {months(high)}")


@rule("XB-S1")
def security_known(f: FilingFacts, p: FilingPolicy) -> Violation | None:
    if f.security in SECURITIES:
        return None
    return refusal(
        SecurityNotAllowed, "an XB loan is a credit loan or a guaranteed loan", "security"
    )


@rule("XB-S1")
def guarantor_named(f: FilingFacts, p: FilingPolicy) -> Violation | None:
    if not f.guaranteed or f.guarantor:
        return None
    return refusal(GuarantorRequired, "a guaranteed loan names its guarantor", "guarantor")


@rule("XB-F2")
def guarantor_consent(f: FilingFacts, p: FilingPolicy) -> Violation | None:
    """第十一条(三), (四): a guaranteed loan is filed with the guarantor's consent letter,
    dated on or before the disbursement and not more than `consent_max_age_months` before
    it; a credit loan carries none."""
    given = f.guarantor_consent_ref is not None or f.guarantor_consent_on is not None
    if not f.guaranteed:
        if not given:
            return None
        return refusal(
            GuarantorConsentNotApplicable,
            f"a {f.security} loan has no guarantor's consent letter (同意担保确认函): "
            "it goes with guaranteed loans; send security guaranteed or no guarantor_consent",
            "guarantor_consent",
        )
    on = f.guarantor_consent_on
    if f.guarantor_consent_ref is None or on is None:
        return refusal(
            GuarantorConsentMissing,
            "a guaranteed loan is filed with the guarantor's consent letter "
            "(同意担保确认函): guarantor_consent {reference, dated_on}",
            "guarantor_consent",
        )
    if on > f.disbursed_on:
        return refusal(
            GuarantorConsentAfterDisbursement,
            f"the consent letter is dated {on}, after the disbursement on {f.disbursed_on}: "
            "the guarantor consents before the loan is disbursed",
            "guarantor_consent",
            "dated_on",
        )
    if on < add_months(f.disbursed_on, -p.consent_max_age_months):
        return refusal(
            GuarantorConsentTooOld,
            f"the consent letter is dated {on}, more than {p.consent_max_age_months} months "
            f"before the disbursement on {f.disbursed_on}",
            "guarantor_consent",
            "dated_on",
        )
    return None


@rule("M-4")
def lpr_known(f: FilingFacts, p: FilingPolicy) -> Violation | None:
    if f.lpr_bp is not None:
        return None
    return refusal(LprUnknown, f"no 1-year LPR in force on {f.disbursed_on}", "disbursed_on")


@rule("XB-P1")
def rate_within_cap(f: FilingFacts, p: FilingPolicy) -> Violation | None:
    spread = p.guaranteed_spread_bp if f.guaranteed else p.credit_spread_bp
    if f.lpr_bp is None or f.annual_rate_bp <= f.lpr_bp + spread:
        return None
    return refusal(
        RateAboveCap,
        f"{f.security} loans: rate cap LPR {f.lpr_bp} bp + {spread} bp = {f.lpr_bp + spread} bp",
        "annual_rate_bp",
    )


@rule("XB-P1")
def guarantee_fee_within_cap(f: FilingFacts, p: FilingPolicy) -> Violation | None:
    if not f.guaranteed or f.fee_rate_bp <= p.max_guarantee_fee_bp:
        return None
    return refusal(
        GuaranteeFeeAboveCap,
        f"the guarantee fee is at most {p.max_guarantee_fee_bp} bp "
        f"({percent(p.max_guarantee_fee_bp)})",
        "fee_rate_bp",
    )


@rule("XB-P1")
def no_other_fees(f: FilingFacts, p: FilingPolicy) -> Violation | None:
    if f.guaranteed or not f.fee_rate_bp:
        return None
    return refusal(FeesNotAllowed, "no fees beyond a guarantee fee", "fee_rate_bp")


# --- XB-F0, Q1, R2, Q2: the sub-fund, the bank's agreement, the fund -----------------
@rule("XB-F0")
def sub_fund_agreement(f: FilingFacts, p: FilingPolicy) -> Violation | None:
    if not f.sub_fund_known:
        return refusal(UnknownSubFund, "no such XB sub-fund", "sub_fund")
    if f.agreement_status is None:
        return refusal(NoAgreement, "the bank has no agreement with this sub-fund", "sub_fund")
    return None


@rule("XB-Q1")
def bank_not_suspended(f: FilingFacts, p: FilingPolicy) -> Violation | None:
    if not f.sub_fund_known or f.agreement_status != "suspended":
        return None
    return refusal(BankSuspended, "the bank's XB business is suspended", "program")


@rule("XB-R2")
def agreement_not_terminated(f: FilingFacts, p: FilingPolicy) -> Violation | None:
    status = f.agreement_status
    if not f.sub_fund_known or status in (None, "active", "suspended"):
        return None
    return refusal(AgreementNotActive, f"the bank's XB agreement is {status}", "program")


@rule("XB-Q2")
def fund_open(f: FilingFacts, p: FilingPolicy) -> Violation | None:
    if not f.fund_stopped:
        return None
    return refusal(FundStopped, "the fund has stopped new business", "program")


# --- XB-F2, XB-N7: the filing date -----------------------------------------------------
@rule("XB-F2")
def disbursed_before_filing(f: FilingFacts, p: FilingPolicy) -> Violation | None:
    if f.disbursed_on <= f.today:
        return None
    return refusal(DisbursedInFuture, "file a loan after it is disbursed", "disbursed_on")


@rule("XB-N7")
def filed_in_time(f: FilingFacts, p: FilingPolicy) -> Flag | None:
    """Not a refusal: a credit loan filed late is accepted as non-compensable."""
    if not filed_late(f):
        return None
    return Flag(late_filing_flag(PROGRAM, f.filing_deadline, f.filing_deadline_provisional))


# The order of the list is the order of the errors in a refusal and of the flags.
FILING_RULES: tuple[XbFilingRule, ...] = (
    region_eligible,
    in_business_long_enough,
    not_blacklisted,
    clean_record,
    no_unpaid_overdue_loan,
    controller_guarantee,
    no_recent_compensation,
    within_enterprise_limit,
    term_within_max,
    term_in_norm,
    security_known,
    guarantor_named,
    guarantor_consent,
    lpr_known,
    rate_within_cap,
    guarantee_fee_within_cap,
    no_other_fees,
    sub_fund_agreement,
    bank_not_suspended,
    agreement_not_terminated,
    fund_open,
    disbursed_before_filing,
    filed_in_time,
)


def check_filing(f: FilingFacts, policy: FilingPolicy = FILING) -> FilingDecision:
    """Every rule of `FILING_RULES` over the facts: the refusals, the flags, and whether
    the loan was filed late (XB-N7)."""
    found = run(FILING_RULES, f, policy)
    return FilingDecision(violations(found), [x.text for x in flags(found)], filed_late(f))
