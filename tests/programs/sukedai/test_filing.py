"""苏科贷 filing rules, pure: `check_filing` and its tagged rules over hand-built facts.
One test per rule ID; each walks the rule's boundary from both sides. No database, no
HTTP."""

from __future__ import annotations

from dataclasses import replace
from datetime import date
from typing import Any

import pytest

from app.errors import Violation
from app.programs.common import OverdueFact
from app.programs.sukedai import filing
from app.programs.sukedai.filing import FilingFacts, check_filing, quota_exceeded
from app.programs.sukedai.library import check_library_criteria
from app.programs.sukedai.policy import FILING, FilingPolicy, LibraryCriteria

DISBURSED = date(2026, 3, 2)  # a Monday
DEADLINE = date(2026, 3, 9)  # the 5th working day after it

# An SKD1 loan that every rule accepts.
OK = FilingFacts(
    declared_product="SKD1",
    principal_fen=1_000_000_00,
    annual_rate_bp=350,
    fee_rate_bp=0,
    disbursed_on=DISBURSED,
    maturity_on=date(2027, 3, 1),
    security="credit",
    controller_guarantee=True,
    other_fiscal_support=False,
    today=date(2026, 3, 3),
    filing_deadline=DEADLINE,
    lpr_bp=310,
    in_library=True,
    revenue_fen=10_000_000_00,
    agreement_status="active",
)


def refusals(facts: FilingFacts = OK, policy: FilingPolicy = FILING, **changes: Any) -> list[str]:
    """The codes of the refusals, in order."""
    return [v.code or "" for v in check_filing(replace(facts, **changes), policy).violations]


def only(facts: FilingFacts = OK, **changes: Any) -> Violation:
    """The one refusal of the facts."""
    found = check_filing(replace(facts, **changes)).violations
    assert len(found) == 1, found
    return found[0]


def test_the_sample_loan_passes_every_rule() -> None:
    decision = check_filing(OK)
    assert decision.violations == []
    assert decision.product is not None and decision.product.code == "SKD1"


def test_SKD_E1_only_an_enterprise_in_the_library_files_and_admission_has_five_criteria() -> None:
    """SKD-E1: a filing for an enterprise outside the library is refused; admission checks
    the five criteria of the 2017 rules, each at its bound."""
    v = only(in_library=False)
    assert (v.code, v.rule, v.loc) == (
        "enterprise_not_in_library",
        "SKD-E1",
        ("body", "enterprise_credit_code"),
    )

    class Enterprise:
        region_code = "320100"
        independent_legal_person = True
        ip_count = 1
        prior_year_revenue_fen = 400_000_000_00
        employees = 999
        rd_staff_share_bp = 1000
        rd_spend_share_bp = 300

    def failed(criteria: LibraryCriteria = LibraryCriteria(), **facts: object) -> list[str]:
        e = Enterprise()
        for name, value in facts.items():
            setattr(e, name, value)
        return [c.code for c in check_library_criteria(e, criteria) if not c.passed]

    assert failed() == []  # exactly 10 % staff, 3 % spend, one IP; 999 employees
    assert failed(rd_staff_share_bp=999) == ["rd_staff_share"]
    assert failed(rd_spend_share_bp=299) == ["rd_spend_share"]
    assert failed(ip_count=0) == ["owns_ip"]
    assert failed(employees=1000) == ["size"]  # 400,000,000 is not below 400,000,000
    assert failed(employees=1000, prior_year_revenue_fen=399_999_999_99) == []
    assert failed(region_code="310100") == ["jiangsu_independent_legal_person"]
    assert failed(independent_legal_person=False) == ["jiangsu_independent_legal_person"]
    everything = dict(region_code="310100", ip_count=0, employees=1000, rd_staff_share_bp=0)
    assert failed(**everything, rd_spend_share_bp=0) == [
        "jiangsu_independent_legal_person",
        "owns_ip",
        "size",
        "rd_staff_share",
        "rd_spend_share",
    ]
    # the thresholds and the reviewer's text come from the policy
    stricter = LibraryCriteria(min_rd_staff_share_bp=1500)
    assert failed(stricter, rd_staff_share_bp=1499) == ["rd_staff_share"]
    detail = {c.code: c.detail for c in check_library_criteria(Enterprise(), stricter)}
    assert detail["rd_staff_share"] == "R&D staff at least 15 % of employees (is 10 %)"


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        # the bands: revenue ≤ 20,000,000 SKD1, ≤ 50,000,000 SKD2, ≤ 400,000,000 SKD3
        ({"revenue_fen": 20_000_000_00}, []),
        ({"revenue_fen": 20_000_000_01}, ["product_mismatch"]),
        ({"revenue_fen": 20_000_000_01, "declared_product": "SKD2"}, []),
        ({"revenue_fen": 50_000_000_01, "declared_product": "SKD2"}, ["product_mismatch"]),
        ({"revenue_fen": 400_000_000_00, "declared_product": "SKD3"}, []),
        ({"revenue_fen": 400_000_000_01, "declared_product": "SKD3"}, ["revenue_above_skd3"]),
        ({"declared_product": None}, []),  # the product follows from the revenue
        ({"declared_product": "SKD9"}, ["product_mismatch", "unknown_product"]),
        # the product's maximum principal
        ({"principal_fen": 5_000_000_00}, []),
        ({"principal_fen": 5_000_000_01}, ["principal_above_max"]),
        # the rate cap: LPR 310 + 50 bp for SKD1
        ({"annual_rate_bp": 360}, []),
        ({"annual_rate_bp": 361}, ["rate_above_cap"]),
        ({"annual_rate_bp": 390, "revenue_fen": 20_000_000_01, "declared_product": "SKD2"}, []),
        # a year at most: disbursed 2026-03-02, due 2027-03-02 at the latest
        ({"maturity_on": date(2027, 3, 2)}, []),
        ({"maturity_on": date(2027, 3, 3)}, ["term_too_long"]),
    ],
)
def test_SKD_P1_the_product_follows_from_revenue_with_its_principal_rate_and_term(
    changes: dict[str, Any], expected: list[str]
) -> None:
    """SKD-P1: the product bands, each product's maximum principal and rate cap, and the
    one-year term, each refused one step past its bound."""
    found = check_filing(replace(OK, **changes)).violations
    assert [v.code for v in found] == expected
    assert {v.rule for v in found} <= {"SKD-P1"}


def test_the_product_refusals_say_the_policy_numbers() -> None:
    """SKD-P1's refusals say the bound they apply, from the policy."""
    assert only(annual_rate_bp=361).msg == "SKD1 rate cap is LPR 310 bp + 50 bp = 360 bp"
    assert only(principal_fen=5_000_000_01).msg == "SKD1 lends at most 5000000.00"
    late = replace(OK, maturity_on=date(2027, 3, 3))
    term = filing.term_within_max(late, FILING)
    assert [v.msg for v in term] == ["SKD loans run at most one year"]
    two_years = FilingPolicy(max_term_years=2)
    assert filing.term_within_max(late, two_years) == []
    longer = filing.term_within_max(replace(OK, maturity_on=date(2028, 3, 3)), two_years)
    assert [v.msg for v in longer] == ["SKD loans run at most 2 years"]


SKD3_SECURED = {
    "revenue_fen": 100_000_000_00,
    "declared_product": "SKD3",
    "security": "collateral",
    "annual_rate_bp": 400,
}
NO_GUARANTEE = {"controller_guarantee": False}


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({"security": "ip_pledge"}, []),
        ({"security": "collateral"}, ["security_not_allowed"]),
        (NO_GUARANTEE, ["controller_guarantee_required"]),
        ({"security": "ip_pledge", **NO_GUARANTEE}, ["controller_guarantee_required"]),
        ({"fee_rate_bp": 1}, ["fees_not_allowed"]),
        # SKD3 is lent on credit up to 10,000,000; above that it may be secured otherwise,
        # and then needs neither the guarantee nor a fee-free contract
        ({**SKD3_SECURED, "principal_fen": 10_000_000_00}, ["security_not_allowed"]),
        ({**SKD3_SECURED, "principal_fen": 10_000_000_01, **NO_GUARANTEE, "fee_rate_bp": 10}, []),
    ],
)
def test_SKD_P2_a_credit_loan_has_the_controller_couples_guarantee_no_collateral_no_fees(
    changes: dict[str, Any], expected: list[str]
) -> None:
    """SKD-P2: a credit-based loan (credit or IP pledge) carries the controller couple's
    guarantee and no fees; only an SKD3 loan above 10,000,000 may be secured otherwise."""
    found = check_filing(replace(OK, **changes)).violations
    assert [v.code for v in found] == expected
    assert {v.rule for v in found} <= {"SKD-P2"}


def test_SKD_F1_the_bank_holds_an_active_agreement_in_a_cooperating_region() -> None:
    """SKD-F1: no agreement, a suspended or an ended one, and a region without a city fund
    are each refused; both failures are listed together."""
    none = only(agreement_status=None)
    assert (none.code, none.rule, none.loc) == ("no_agreement", "SKD-F1", ("body", "disbursed_on"))
    assert only(agreement_status="suspended").code == "bank_suspended"
    ended = only(agreement_status="terminated")
    assert (ended.code, ended.msg) == (
        "agreement_not_active",
        "the bank's SKD agreement is terminated",
    )
    assert only(region_cooperating=False).code == "region_not_cooperating"
    assert refusals(agreement_status=None, region_cooperating=False) == [
        "no_agreement",
        "region_not_cooperating",
    ]


def test_SKD_F2_filing_after_five_working_days_is_refused() -> None:
    """SKD-F2: filed on the deadline (the 5th working day after disbursement) passes, the
    day after is refused; a filing before disbursement is refused instead."""
    assert refusals(today=DEADLINE) == []
    assert refusals(today=DISBURSED) == []
    late = only(today=date(2026, 3, 10))
    assert (late.code, late.rule, late.loc) == (
        "filing_deadline_passed",
        "SKD-F2",
        ("body", "disbursed_on"),
    )
    assert late.msg == "filing closed on 2026-03-09 (5 working days after disbursement)"
    provisional = only(today=date(2026, 3, 10), filing_deadline_provisional=True)
    assert provisional.msg.startswith("filing closed on 2026-03-09 (5 working days")
    assert "provisional calendar" in provisional.msg
    early = only(today=date(2026, 3, 1))
    assert (early.code, early.rule) == ("disbursed_in_future", "SKD-F2")


def test_SKD_F3_one_skd_loan_at_a_time() -> None:
    """SKD-F3: an enterprise with an SKD loan outstanding files no other."""
    v = only(enterprise_has_active_loan=True)
    assert (v.code, v.rule) == ("enterprise_has_active_loan", "SKD-F3")


@pytest.mark.parametrize(
    ("flags", "expected"),
    [
        ({"overdue_loans_elsewhere": True}, ["unpaid_overdue_loan"]),
        ({"controller_overdue_loans": True}, ["unpaid_overdue_loan"]),
        ({"dishonest_debtor": True}, ["dishonest_debtor"]),
        ({"controller_dishonest_debtor": True}, ["dishonest_debtor"]),
        ({"env_credit_rating": "yellow"}, []),
        ({"env_credit_rating": "red"}, ["environmental_rating"]),
        ({"env_credit_rating": "black"}, ["environmental_rating"]),
        ({"tax_credit_rating": "C"}, []),
        ({"tax_credit_rating": "D"}, ["tax_rating_d"]),
        ({"overdue_loans_elsewhere": False, "dishonest_debtor": False}, []),
        (
            {
                "overdue_loans_elsewhere": True,
                "dishonest_debtor": True,
                "env_credit_rating": "red",
                "tax_credit_rating": "D",
            },
            ["unpaid_overdue_loan", "dishonest_debtor", "environmental_rating", "tax_rating_d"],
        ),
    ],
)
def test_SKD_F4_unpaid_overdue_dishonest_debtor_red_rating_or_tax_d_is_refused(
    flags: dict[str, object], expected: list[str]
) -> None:
    """SKD-F4: every reason is listed, each with its rule."""
    found = check_filing(replace(OK, enterprise_flags=flags)).violations
    assert [v.code for v in found] == expected
    assert {v.rule for v in found} <= {"SKD-F4"}
    if "tax_rating_d" in expected:
        assert found[-1].msg == "tax credit rating D"


def test_SKD_F4_every_overdue_loan_on_the_own_books_is_a_reason_of_its_own() -> None:
    """SKD-F4 on the service's own books: after the declared flag, each loan in arrears
    on the filing date is its own reason, naming whose loan it is, its programme, days
    past due and first day in arrears; another bank's contract number is not shown."""
    own = OverdueFact("91320706MA1T00001X", True, "XB", "XB-2025-9", 30, date(2026, 2, 2))
    other = OverdueFact("91320706MA1T00002Y", False, "SKD", None, 1, date(2026, 3, 3))
    found = check_filing(
        replace(
            OK, overdue_in_books=(own, other), enterprise_flags={"controller_overdue_loans": True}
        )
    ).violations
    assert [(v.rule, v.code, v.loc) for v in found] == [
        ("SKD-F4", "unpaid_overdue_loan", ("body", "enterprise_credit_code")),
        ("SKD-F4", "overdue_loan_in_books", ("body", "enterprise_credit_code")),
        ("SKD-F4", "overdue_loan_in_books", ("body", "enterprise_credit_code")),
    ]
    assert [v.msg for v in found[1:]] == [
        "the enterprise's XB loan XB-2025-9 is 30 days past due (overdue since 2026-02-02) "
        "and unpaid",
        "its actual controller's other enterprise 91320706MA1T00002Y's SKD loan, a loan filed "
        "by another bank, is 1 day past due (overdue since 2026-03-03) and unpaid",
    ]
    assert refusals(overdue_in_books=(other,)) == ["overdue_loan_in_books"]
    assert refusals(overdue_in_books=()) == []


def test_SKD_F5_a_loan_with_other_fiscal_support_is_refused() -> None:
    """SKD-F5: support from a city or county scheme, or another fiscal policy, excludes SKD."""
    v = only(other_fiscal_support=True)
    assert (v.code, v.rule, v.loc) == (
        "other_fiscal_support",
        "SKD-F5",
        ("body", "other_fiscal_support"),
    )


def test_SKD_F6_the_annual_quota_takes_the_principal_that_fits_exactly() -> None:
    """SKD-F6: a filing that fills the year's quota exactly passes; one fen more is
    refused with what is left; a year without a quota has no limit."""
    quota = {"quota_fen": 10_000_000_00, "principal_fen": 1_000_000_00}
    assert refusals(**quota, quota_used_fen=9_000_000_00) == []
    v = only(**quota, quota_used_fen=9_000_000_01)
    assert (v.code, v.rule, v.loc) == ("annual_quota_exceeded", "SKD-F6", ("body", "principal"))
    assert v.msg == "the year's quota 10000000.00 has 999999.99 left"
    assert refusals(quota_fen=None, quota_used_fen=10**12) == []
    assert quota_exceeded(100_00, 150_00).msg == "the year's quota 100.00 has 0.00 left"


def test_XB_F2_an_skd_filing_carries_no_guarantor_consent() -> None:
    """XB-F2: the guarantor's consent letter goes with guaranteed XB loans only."""
    v = only(guarantor_consent_given=True)
    assert (v.code, v.rule, v.loc) == (
        "guarantor_consent_not_applicable",
        "XB-F2",
        ("body", "guarantor_consent"),
    )


def test_M_4_an_skd_filing_needs_the_lpr_in_force_on_the_disbursement_date() -> None:
    """M-4: without an LPR on the disbursement date the rate cap cannot be applied: the
    filing is refused for that, not for its rate."""
    v = only(lpr_bp=None, annual_rate_bp=9_999)
    assert (v.code, v.rule, v.loc) == ("lpr_unknown", "M-4", ("body", "disbursed_on"))
    assert v.msg == "no 1-year LPR is recorded in force on 2026-03-02"
    # the cap is LPR + spread: the same rate passes or fails with the LPR
    assert refusals(lpr_bp=310, annual_rate_bp=360) == []
    assert refusals(lpr_bp=309, annual_rate_bp=360) == ["rate_above_cap"]


def test_every_failure_is_listed_in_the_order_of_the_rules() -> None:
    """A refusal lists every failed rule at once, in `FILING_RULES` order."""
    worst = replace(
        OK,
        in_library=False,
        principal_fen=5_000_000_01,
        fee_rate_bp=1,
        today=date(2026, 3, 10),
        agreement_status="suspended",
        enterprise_has_active_loan=True,
        other_fiscal_support=True,
        guarantor_consent_given=True,
    )
    found = check_filing(worst).violations
    assert [(v.rule, v.code) for v in found] == [
        ("SKD-E1", "enterprise_not_in_library"),
        ("SKD-P1", "principal_above_max"),
        ("SKD-P2", "fees_not_allowed"),
        ("SKD-F2", "filing_deadline_passed"),
        ("SKD-F1", "bank_suspended"),
        ("SKD-F3", "enterprise_has_active_loan"),
        ("SKD-F5", "other_fiscal_support"),
        ("XB-F2", "guarantor_consent_not_applicable"),
    ]
