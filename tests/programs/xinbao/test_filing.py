"""信保基金 filing rules, pure: `check_filing` and its tagged rules over hand-built facts.
One test per rule ID; each walks the rule's boundary from both sides. No database, no
HTTP."""

from __future__ import annotations

from dataclasses import replace
from datetime import date
from typing import Any

import pytest

from app.errors import Violation
from app.programs.common import OverdueFact
from app.programs.xinbao import filing
from app.programs.xinbao.claims import ClaimFacts, check_claim
from app.programs.xinbao.filing import FilingFacts, check_filing
from app.programs.xinbao.policy import FILING, FilingPolicy

DISBURSED = date(2026, 3, 2)
DEADLINE = date(2026, 3, 16)  # the 10th working day after it

# A credit loan of the base sub-fund that every rule accepts.
OK = FilingFacts(
    principal_fen=1_000_000_00,
    annual_rate_bp=380,
    fee_rate_bp=0,
    disbursed_on=DISBURSED,
    maturity_on=date(2027, 3, 1),
    security="credit",
    guarantor=None,
    controller_guarantee=True,
    today=date(2026, 3, 3),
    filing_deadline=DEADLINE,
    lpr_bp=300,
    region_code="320706",
    registered_on=date(2020, 1, 1),
    outstanding_fen=0,
    last_compensation_on=None,
    agreement_status="active",
)
GUARANTEED = replace(
    OK,
    security="guaranteed",
    guarantor="连云港市融资担保有限公司",
    annual_rate_bp=330,
    guarantor_consent_ref="DB-2026-001",
    guarantor_consent_on=date(2026, 2, 20),
)


def refusals(facts: FilingFacts = OK, policy: FilingPolicy = FILING, **changes: Any) -> list[str]:
    """The codes of the refusals, in order."""
    return [v.code or "" for v in check_filing(replace(facts, **changes), policy).violations]


def only(facts: FilingFacts = OK, **changes: Any) -> Violation:
    """The one refusal of the facts."""
    found = check_filing(replace(facts, **changes)).violations
    assert len(found) == 1, found
    return found[0]


def test_the_sample_loans_pass_every_rule() -> None:
    for facts in (OK, GUARANTEED):
        decision = check_filing(facts)
        assert (decision.violations, decision.flags, decision.filed_late) == ([], [], False)


def test_XB_E1_contributor_district_clean_two_years_and_the_controllers_guarantee() -> None:
    """XB-E1: registered in a contributing district or zone; no malicious overdue in the
    two years before the filing (counted back from the filing date); the legal
    representative, controlling shareholder or actual controller guarantees the loan."""
    for region in ("320706", "320703", "320700-KFQ", "320700-XWXQ", "320700-YTS"):
        assert refusals(region_code=region) == []
    for region in ("320700", "320707", "320100"):
        v = only(region_code=region)
        assert (v.code, v.rule) == ("region_not_eligible", "XB-E1")
    # a malicious overdue on 2024-03-03 is inside the two years until 2026-03-02
    bad = {"last_malicious_overdue_on": date(2024, 3, 3)}
    assert refusals(enterprise_flags=bad, today=date(2026, 3, 3)) == []
    v = only(enterprise_flags=bad, today=date(2026, 3, 2))
    assert (v.code, v.rule) == ("malicious_overdue_within_2_years", "XB-E1")
    assert v.msg == "a malicious overdue or unpaid interest on 2024-03-03, within the prior 2 years"
    three = FilingPolicy(clean_record_years=3)
    assert refusals(enterprise_flags=bad, today=date(2026, 3, 3), policy=three) == [
        "malicious_overdue_within_2_years"
    ]
    [longer] = filing.clean_record(replace(OK, enterprise_flags=bad, today=DISBURSED), three)
    assert isinstance(longer, Violation) and longer.msg.endswith("within the prior 3 years")
    v = only(controller_guarantee=False)
    assert (v.code, v.rule, v.loc) == (
        "controller_guarantee_required",
        "XB-E1",
        ("body", "controller_guarantee"),
    )


def test_XB_E2_three_years_after_a_compensation_and_the_blacklist() -> None:
    """XB-E2: an enterprise compensated on 2026-02-13 is refused until 2029-02-13 (by
    disbursement date); a blacklisted malicious defaulter is refused."""
    paid = date(2026, 2, 13)
    before = date(2029, 2, 12)
    v = only(
        last_compensation_on=paid, disbursed_on=before, today=before, maturity_on=date(2030, 1, 31)
    )
    assert (v.code, v.rule) == ("compensated_within_3_years", "XB-E2")
    assert v.msg == "the fund compensated a loan of this enterprise on 2026-02-13"
    on = date(2029, 2, 13)
    assert (
        refusals(
            last_compensation_on=paid, disbursed_on=on, today=on, maturity_on=date(2030, 1, 31)
        )
        == []
    )
    four = FilingPolicy(ban_years=4)
    assert refusals(
        last_compensation_on=paid,
        disbursed_on=on,
        today=on,
        maturity_on=date(2030, 1, 31),
        policy=four,
    ) == ["compensated_within_3_years"]
    v = only(enterprise_flags={"malicious_default_blacklist": True})
    assert (v.code, v.rule) == ("blacklisted", "XB-E2")
    assert refusals(enterprise_flags={"malicious_default_blacklist": False}) == []


def test_XB_N1_an_enterprise_under_a_year_in_business_is_refused_at_filing() -> None:
    """XB-N1 (checked at filing): registered a full year before the disbursement passes,
    a day less is refused; the year is a policy number and so is the message's."""
    assert refusals(registered_on=date(2025, 3, 2)) == []
    v = only(registered_on=date(2025, 3, 3))
    assert (v.code, v.rule) == ("in_business_under_a_year", "XB-N1")
    assert v.msg == "registered on 2025-03-03, less than a year before disbursement"
    two = FilingPolicy(min_years_in_business=2)
    assert refusals(registered_on=date(2024, 3, 2), policy=two) == []
    [longer] = filing.in_business_long_enough(replace(OK, registered_on=date(2024, 3, 3)), two)
    assert isinstance(longer, Violation)
    assert longer.msg == "registered on 2024-03-03, less than 2 years before disbursement"


@pytest.mark.parametrize(
    ("flags", "refused"),
    [
        ({"overdue_loans_elsewhere": True}, True),
        ({"controller_overdue_loans": True}, True),
        ({"overdue_loans_elsewhere": False, "controller_overdue_loans": False}, False),
        ({"dishonest_debtor": True}, False),  # an SKD-F4 ground, not an XB one
    ],
)
def test_XB_N2_an_unpaid_overdue_loan_elsewhere_is_refused_at_filing(
    flags: dict[str, object], refused: bool
) -> None:
    """XB-N2 (checked at filing): the enterprise or its controller owes an overdue loan."""
    expected = [("XB-N2", "unpaid_overdue_loan")] if refused else []
    found = check_filing(replace(OK, enterprise_flags=flags)).violations
    assert [(v.rule, v.code) for v in found] == expected


def test_XB_N2_every_overdue_loan_on_the_own_books_is_a_reason_of_its_own() -> None:
    """XB-N2 at filing on the service's own books: each loan in arrears on the filing
    date, the enterprise's or its controller's other enterprise's, in any programme, is
    its own reason after the declared flag."""
    own = OverdueFact("91320706MA1X00001X", True, "SKD", None, 95, date(2025, 11, 27))
    other = OverdueFact("91320706MA1X00002Y", False, "XB", "XB-7", 12, date(2026, 2, 18))
    found = check_filing(
        replace(
            OK, overdue_in_books=(own, other), enterprise_flags={"overdue_loans_elsewhere": True}
        )
    ).violations
    assert [(v.rule, v.code) for v in found] == [
        ("XB-N2", "unpaid_overdue_loan"),
        ("XB-N2", "overdue_loan_in_books"),
        ("XB-N2", "overdue_loan_in_books"),
    ]
    assert [v.msg for v in found[1:]] == [
        "the enterprise's SKD loan, a loan filed by another bank, is 95 days past due "
        "(overdue since 2025-11-27) and unpaid",
        "its actual controller's other enterprise 91320706MA1X00002Y's XB loan XB-7 is 12 "
        "days past due (overdue since 2026-02-18) and unpaid",
    ]
    assert refusals(overdue_in_books=(own,)) == ["overdue_loan_in_books"]
    assert refusals(overdue_in_books=()) == []


def test_XB_N7_a_credit_loan_filed_late_is_accepted_but_not_compensable() -> None:
    """XB-N7 with XB-F2: filed on the 10th working day a credit loan is on time; the day
    after it is accepted, flagged and not compensable; a guaranteed loan is never late."""
    on_time = check_filing(replace(OK, today=DEADLINE))
    assert (on_time.violations, on_time.flags, on_time.filed_late) == ([], [], False)
    late = check_filing(replace(OK, today=date(2026, 3, 17)))
    assert (late.violations, late.filed_late) == ([], True)
    assert late.flags == ["XB-N7: filed after the deadline 2026-03-16; not compensable"]
    provisional = check_filing(
        replace(OK, today=date(2026, 3, 17), filing_deadline_provisional=True)
    )
    assert provisional.flags[0].startswith("XB-N7: filed after the deadline 2026-03-16")
    assert "provisional" in provisional.flags[0]
    guaranteed_late = check_filing(replace(GUARANTEED, today=date(2026, 6, 1)))
    assert (guaranteed_late.flags, guaranteed_late.filed_late) == ([], False)
    future = check_filing(replace(OK, today=date(2026, 3, 1), filing_deadline=date(2026, 2, 1)))
    assert (future.filed_late, future.flags) == (False, [])
    # a claim on a loan marked non-compensable is refused as XB-N7
    claim = ClaimFacts("active", False, 1_000_000_00, 60, "(2026)苏0706民初1号", date(2026, 5, 6))
    refused = check_claim(claim)
    assert [(v.rule, v.code, v.msg) for v in refused] == [
        ("XB-N7", "not_compensable", "the loan was filed late and is not compensable")
    ]
    assert check_claim(replace(claim, compensable=True)) == []


@pytest.mark.parametrize(
    ("facts", "changes", "expected"),
    [
        # ≤ 3,000,000 outstanding per enterprise, this loan included
        (OK, {"outstanding_fen": 2_000_000_00}, []),
        (OK, {"outstanding_fen": 2_000_000_01}, ["enterprise_limit_exceeded"]),
        # the term: 36 months at most
        (OK, {"maturity_on": date(2029, 3, 2)}, []),
        (OK, {"maturity_on": date(2029, 3, 3)}, ["term_too_long"]),
        # the rate: credit ≤ LPR 300 + 80 bp, guaranteed ≤ LPR 300 + 30 bp
        (OK, {"annual_rate_bp": 381}, ["rate_above_cap"]),
        (GUARANTEED, {"annual_rate_bp": 331}, ["rate_above_cap"]),
        (GUARANTEED, {"annual_rate_bp": 330}, []),
        # the guarantee fee ≤ 0.5 %; no other fee
        (GUARANTEED, {"fee_rate_bp": 50}, []),
        (GUARANTEED, {"fee_rate_bp": 51}, ["guarantee_fee_above_cap"]),
        (OK, {"fee_rate_bp": 1}, ["fees_not_allowed"]),
    ],
)
def test_XB_P1_enterprise_limit_term_rate_and_fees(
    facts: FilingFacts, changes: dict[str, Any], expected: list[str]
) -> None:
    """XB-P1: each bound passes on it and is refused one step beyond."""
    found = check_filing(replace(facts, **changes)).violations
    assert [v.code for v in found] == expected
    assert {v.rule for v in found} <= {"XB-P1"}


@pytest.mark.parametrize(
    ("maturity_on", "flagged"),
    [
        (date(2026, 9, 1), True),  # a day under 6 months
        (date(2026, 9, 2), False),  # 6 months
        (date(2028, 3, 2), False),  # 24 months
        (date(2028, 3, 3), True),  # a day over 24 months
        (date(2029, 3, 2), True),  # 36 months: allowed, flagged
        (date(2029, 3, 3), False),  # over 36 months: refused, not flagged
    ],
)
def test_unusual_terms_are_flagged_not_refused(maturity_on: date, flagged: bool) -> None:
    """XB-P1's norm: outside 6 months to 2 years a term is flagged on the loan."""
    decision = check_filing(replace(OK, maturity_on=maturity_on))
    expected = ["XB-P1: term outside the usual 6 months to 2 years"] if flagged else []
    assert decision.flags == expected


def test_the_term_fee_and_limit_messages_say_the_policy_numbers() -> None:
    """XB-P1's refusals and flag say the policy's numbers, whatever they are set to."""
    v = only(outstanding_fen=2_500_000_00)
    assert v.msg == "2500000.00 already outstanding; at most 3000000.00 per enterprise"
    assert only(maturity_on=date(2029, 3, 3)).msg == "XB loans run at most 3 years"
    fee = only(GUARANTEED, fee_rate_bp=51)
    assert fee.msg == "the guarantee fee is at most 50 bp (0.5 %)"
    rate = only(GUARANTEED, annual_rate_bp=331)
    assert rate.msg == "guaranteed loans: rate cap LPR 300 bp + 30 bp = 330 bp"
    other = FilingPolicy(max_term_months=30, norm_term_months=(3, 18), max_guarantee_fee_bp=75)
    long_term = replace(OK, maturity_on=date(2028, 9, 3))
    assert [x.msg for x in filing.term_within_max(long_term, other)] == [
        "XB loans run at most 30 months"
    ]
    flag = filing.term_in_norm(replace(OK, maturity_on=date(2026, 5, 1)), other)
    assert [(x.rule, x.text) for x in flag] == [
        ("XB-P1", "XB-P1: term outside the usual 3 months to 18 months")
    ]
    fee_76 = filing.guarantee_fee_within_cap(replace(GUARANTEED, fee_rate_bp=76), other)
    assert [x.msg for x in fee_76] == ["the guarantee fee is at most 75 bp (0.75 %)"]


def test_a_loan_is_credit_or_guaranteed_and_a_guaranteed_loan_names_its_guarantor() -> None:
    """XB-S1 at filing: the two ways of working; a guaranteed loan names its guarantor
    (the shares are tested in test_claims.py)."""
    v = only(security="collateral")
    assert (v.code, v.rule, v.loc) == ("security_not_allowed", "XB-S1", ("body", "security"))
    v = only(GUARANTEED, guarantor=None)
    assert (v.code, v.rule) == ("guarantor_required", "XB-S1")
    assert only(GUARANTEED, guarantor="").code == "guarantor_required"


def test_XB_F0_a_loan_names_a_known_sub_fund_the_bank_has_an_agreement_with() -> None:
    """XB-F0: an unknown sub-fund is refused as such (not also for the agreement); a known
    one without an agreement is refused for that."""
    v = only(sub_fund_known=False, agreement_status=None)
    assert (v.code, v.rule, v.loc) == ("unknown_sub_fund", "XB-F0", ("body", "sub_fund"))
    v = only(agreement_status=None)
    assert (v.code, v.rule) == ("no_agreement", "XB-F0")


def test_XB_F2_guarantor_consent_dated_before_disbursement_within_12_months() -> None:
    """XB-F2: a guaranteed loan carries the guarantor's consent letter, dated on or before
    the disbursement and not more than 12 months before it; a credit loan carries none;
    a filing before the disbursement is refused."""
    assert refusals(GUARANTEED, guarantor_consent_on=DISBURSED) == []
    assert refusals(GUARANTEED, guarantor_consent_on=date(2025, 3, 2)) == []
    after = only(GUARANTEED, guarantor_consent_on=date(2026, 3, 3))
    assert (after.code, after.rule, after.loc) == (
        "guarantor_consent_after_disbursement",
        "XB-F2",
        ("body", "guarantor_consent", "dated_on"),
    )
    old = only(GUARANTEED, guarantor_consent_on=date(2025, 3, 1))
    assert (old.code, old.loc) == (
        "guarantor_consent_too_old",
        ("body", "guarantor_consent", "dated_on"),
    )
    assert old.msg == (
        "the consent letter is dated 2025-03-01, more than 12 months before the "
        "disbursement on 2026-03-02"
    )
    for missing in ({"guarantor_consent_ref": None}, {"guarantor_consent_on": None}):
        v = only(GUARANTEED, **missing)
        assert (v.code, v.loc) == ("guarantor_consent_missing", ("body", "guarantor_consent"))
    v = only(guarantor_consent_ref="DB-1", guarantor_consent_on=DISBURSED)
    assert (v.code, v.rule) == ("guarantor_consent_not_applicable", "XB-F2")
    assert v.msg.startswith("a credit loan has no guarantor's consent letter")
    six = FilingPolicy(consent_max_age_months=6)
    assert refusals(GUARANTEED, guarantor_consent_on=date(2025, 9, 1), policy=six) == [
        "guarantor_consent_too_old"
    ]
    future = only(today=date(2026, 3, 1))
    assert (future.code, future.rule) == ("disbursed_in_future", "XB-F2")


def test_a_bank_whose_sub_fund_business_is_suspended_files_nothing() -> None:
    """XB-Q1 at filing: the sub-fund agreement suspended by the limit refuses filings."""
    v = only(agreement_status="suspended")
    assert (v.code, v.rule, v.loc) == ("bank_suspended", "XB-Q1", ("body", "program"))
    assert refusals(agreement_status="suspended", sub_fund_known=False) == ["unknown_sub_fund"]


def test_a_stopped_fund_takes_no_new_business() -> None:
    """XB-Q2 at filing: once the fund stopped, every filing is refused."""
    v = only(fund_stopped=True)
    assert (v.code, v.rule) == ("fund_stopped", "XB-Q2")


def test_XB_R2_a_terminated_agreement_refuses_filings() -> None:
    """XB-R2: fraud or substitution terminates the bank's agreements: no more filings."""
    v = only(agreement_status="terminated")
    assert (v.code, v.rule, v.msg) == (
        "agreement_not_active",
        "XB-R2",
        "the bank's XB agreement is terminated",
    )


def test_M_4_an_xb_filing_needs_the_lpr_in_force_on_the_disbursement_date() -> None:
    """M-4: without an LPR the filing is refused for that, not for its rate; with one the
    cap moves with it."""
    v = only(lpr_bp=None, annual_rate_bp=9_999)
    assert (v.code, v.rule, v.msg) == ("lpr_unknown", "M-4", "no 1-year LPR in force on 2026-03-02")
    assert refusals(lpr_bp=300, annual_rate_bp=380) == []
    assert refusals(lpr_bp=299, annual_rate_bp=380) == ["rate_above_cap"]


def test_every_failure_is_listed_in_the_order_of_the_rules() -> None:
    """A refusal lists every failed rule at once, in `FILING_RULES` order."""
    worst = replace(
        OK,
        region_code="320100",
        registered_on=date(2025, 6, 1),
        enterprise_flags={"malicious_default_blacklist": True, "overdue_loans_elsewhere": True},
        controller_guarantee=False,
        outstanding_fen=3_000_000_00,
        fee_rate_bp=1,
        agreement_status="suspended",
        fund_stopped=True,
        guarantor_consent_on=DISBURSED,
    )
    assert [(v.rule, v.code) for v in check_filing(worst).violations] == [
        ("XB-E1", "region_not_eligible"),
        ("XB-N1", "in_business_under_a_year"),
        ("XB-E2", "blacklisted"),
        ("XB-N2", "unpaid_overdue_loan"),
        ("XB-E1", "controller_guarantee_required"),
        ("XB-P1", "enterprise_limit_exceeded"),
        ("XB-F2", "guarantor_consent_not_applicable"),
        ("XB-P1", "fees_not_allowed"),
        ("XB-Q1", "bank_suspended"),
        ("XB-Q2", "fund_stopped"),
    ]
