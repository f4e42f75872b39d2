"""信保基金 claim rules, pure: who may claim, how a loss is shared, what the bank limit and
the fund-wide stop allow, what a collection returns, and the 第十九条 findings. One test
per rule ID, each at its boundary. No database, no HTTP."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import date
from pathlib import Path

import pytest

from app.programs.common import recovery_return
from app.programs.xinbao.claims import (
    BankLimit,
    ClaimFacts,
    approve,
    check_claim,
    fund_stop_reached,
    loss_shares,
    unknown_findings,
)
from app.programs.xinbao.filing import check_filing
from app.programs.xinbao.policy import (
    BASE_RATIOS_BP,
    BASE_SUB_FUND,
    CLAIMS,
    FINDINGS,
    LIMITS,
    ClaimPolicy,
    LimitPolicy,
    limit_policy,
)
from tests.programs.xinbao.test_filing import OK as FILED

SEED_FUNDS = Path(__file__).resolve().parents[3] / "app" / "seed" / "funds.json"

CLAIMABLE = ClaimFacts(
    loan_status="active",
    compensable=True,
    outstanding_fen=2_000_000_00,
    days_past_due=45,
    lawsuit_case_no="(2026)苏0706民初123号",
    lawsuit_accepted_on=date(2026, 4, 1),
)


def codes(facts: ClaimFacts, policy: ClaimPolicy = CLAIMS) -> list[tuple[str | None, str]]:
    return [(v.rule, v.code or "") for v in check_claim(facts, policy)]


def test_XB_C1_a_claim_needs_45_days_past_due_and_a_lawsuit_the_court_accepted() -> None:
    """XB-C1: 44 days past due is too early, 45 enough; the court's case number and the
    date it accepted the case are both required, each listed on its own field."""
    assert codes(CLAIMABLE) == []
    early = check_claim(replace(CLAIMABLE, days_past_due=44))
    assert [(v.rule, v.code) for v in early] == [("XB-C1", "not_yet_claimable")]
    assert early[0].msg == "the loan is 44 days past due; a claim needs 45"
    no_suit = check_claim(replace(CLAIMABLE, lawsuit_case_no=None, lawsuit_accepted_on=None))
    assert [(v.rule, v.code, v.loc) for v in no_suit] == [
        ("XB-C1", "lawsuit_required", ("body", "lawsuit_case_no")),
        ("XB-C1", "lawsuit_required", ("body", "lawsuit_accepted_on")),
    ]
    assert codes(replace(CLAIMABLE, lawsuit_case_no="")) == [("XB-C1", "lawsuit_required")]
    assert codes(replace(CLAIMABLE, outstanding_fen=0)) == [("XB-C1", "nothing_outstanding")]
    assert codes(replace(CLAIMABLE, loan_status="claimed")) == [("XB-C1", "loan_not_claimable")]
    assert codes(replace(CLAIMABLE, days_past_due=30), ClaimPolicy(min_days_past_due=30)) == []
    assert CLAIMS.required_documents == ("application", "collection_plan", "due_diligence")


def test_XB_S1_credit_80_20_guaranteed_50_40_10_as_the_seed_configures_the_base() -> None:
    """XB-S1 and SPEC example 4: a 2,000,000.00 loss on a credit loan → fund 1,600,000.00,
    bank 400,000.00; on a guaranteed loan → fund 1,000,000.00, guarantor 800,000.00, bank
    200,000.00. The seed's base sub-fund carries the policy's ratios."""
    assert loss_shares(2_000_000_00, BASE_RATIOS_BP["credit"]) == {
        "fund": 1_600_000_00,
        "guarantor": 0,
        "bank": 400_000_00,
    }
    assert loss_shares(2_000_000_00, BASE_RATIOS_BP["guaranteed"]) == {
        "fund": 1_000_000_00,
        "guarantor": 800_000_00,
        "bank": 200_000_00,
    }
    # another sub-fund's own ratios (the demo's 科创贷: 70 : 30)
    assert loss_shares(1_000_00, {"fund": 7000, "bank": 3000})["fund"] == 700_00
    seed = json.loads(SEED_FUNDS.read_text(encoding="utf-8"))
    base = next(f for f in seed["funds"] if f["code"] == BASE_SUB_FUND)
    assert base["params"]["ratios_bp"] == BASE_RATIOS_BP


def test_M_2_an_xb_split_adds_up_and_the_bank_takes_the_remainder() -> None:
    """M-2: the fund's and the guarantor's shares are rounded down, the bank (listed last)
    takes the remainder, so the parts always sum to the loss."""
    assert loss_shares(1_000_000_01, BASE_RATIOS_BP["credit"]) == {
        "fund": 800_000_00,
        "guarantor": 0,
        "bank": 200_000_01,
    }
    assert loss_shares(3, BASE_RATIOS_BP["guaranteed"]) == {"fund": 1, "guarantor": 1, "bank": 1}
    for loss in (1, 9, 10, 11, 1_234_567_89):
        for ratios in BASE_RATIOS_BP.values():
            shares = loss_shares(loss, ratios)
            assert sum(shares.values()) == loss
            assert shares["fund"] == loss * ratios["fund"] // 10_000


def test_XB_Q1_the_bank_limit_is_5_percent_with_a_warning_at_half() -> None:
    """XB-Q1 and SPEC example 5: 50,000,000.00 outstanding at the quarter end → limit
    2,500,000.00, warning from 1,250,000.00, suspension at 2,500,000.00; the fund pays up
    to the headroom, the bank bears the excess, the guarantor still pays its share."""
    limit = BankLimit(date(2026, 3, 31), 50_000_000_00, 0)
    assert (limit.limit_fen(), limit.warning_fen()) == (2_500_000_00, 1_250_000_00)
    assert not limit.warning(1_249_999_99) and limit.warning(1_250_000_00)
    assert not limit.reached(2_499_999_99) and limit.reached(2_500_000_00)
    assert not BankLimit(date(2026, 3, 31), 0, 0).reached()  # no basis: no limit to reach
    used = replace(limit, used_fen=2_000_000_00)
    assert used.headroom_fen() == 500_000_00
    requested = {"fund": 800_000_00, "guarantor": 640_000_00, "bank": 160_000_00}
    paid, shares, capped_by = approve(requested, used)
    assert (paid, capped_by) == (500_000_00, "XB-Q1")
    assert shares == {"fund": 500_000_00, "guarantor": 640_000_00, "bank": 460_000_00}
    exact = {"fund": 500_000_00, "guarantor": 0, "bank": 125_000_00}
    assert approve(exact, used) == (500_000_00, exact, None)
    one_fen_more = {**exact, "fund": 500_000_01}
    assert approve(one_fen_more, used)[2] == "XB-Q1"
    assert replace(limit, used_fen=3_000_000_00).headroom_fen() == 0
    # a sub-fund's own settings over the base defaults (5 %, 50 %)
    own = limit_policy({"limits": {"bank_limit_bp": 300}})
    assert (own.bank_limit_bp, own.warning_share_bp) == (300, LIMITS.warning_share_bp)
    assert replace(limit, policy=own).limit_fen() == 1_500_000_00
    assert limit_policy(None) == LIMITS == LimitPolicy()


def test_XB_Q2_new_business_stops_at_half_the_fund_s_capital() -> None:
    """XB-Q2: cumulative compensation ≥ 50 % of the capital, compared exactly."""
    assert not fund_stop_reached(49_999_999_99, 100_000_000_00)
    assert fund_stop_reached(50_000_000_00, 100_000_000_00)
    assert not fund_stop_reached(1, 0)  # no capital paid in: nothing to compare
    assert fund_stop_reached(40_000_000_00, 100_000_000_00, LimitPolicy(fund_stop_share_bp=4000))


def test_XB_R1_a_collection_is_distributed_at_the_compensation_ratio() -> None:
    """XB-R1: the net collection × compensation paid ÷ loss, rounded down, never beyond
    what is unreturned; due within the policy's 10 working days."""
    # a credit loss of 2,000,000.00 compensated 1,600,000.00: 100,000.00 net → 80,000.00
    kwargs = {"loss_fen": 2_000_000_00, "paid_fen": 1_600_000_00}
    assert recovery_return(net_fen=100_000_00, returned_fen=0, **kwargs) == 80_000_00
    assert recovery_return(net_fen=3_000_000_00, returned_fen=0, **kwargs) == 1_600_000_00
    assert recovery_return(net_fen=100_000_00, returned_fen=1_550_000_00, **kwargs) == 50_000_00
    assert recovery_return(net_fen=1, returned_fen=0, **kwargs) == 0
    assert CLAIMS.recovery_working_days == 10


def _is_a_finding(code: str) -> None:
    """`code` is a 第十九条 finding: the review accepts it; a code beside the list is not."""
    assert FINDINGS.get(code)
    assert unknown_findings([code]) == []
    assert unknown_findings([code, "XB-N10", "XB-N"]) == ["XB-N10", "XB-N"]


def test_the_findings_are_exactly_n1_to_n9() -> None:
    assert sorted(FINDINGS) == [f"XB-N{n}" for n in range(1, 10)]
    assert FINDINGS["XB-N1"] == (
        "enterprise unregistered, not publicly listed or under a year in business at grant"
    )


def test_XB_N3_a_loan_the_controller_did_not_guarantee_is_a_finding() -> None:
    """XB-N3 (第十九条(三)); at filing the same fact is refused as XB-E1."""
    _is_a_finding("XB-N3")
    unguaranteed = check_filing(replace(FILED, controller_guarantee=False)).violations
    assert [(v.rule, v.code) for v in unguaranteed] == [("XB-E1", "controller_guarantee_required")]
    assert check_filing(FILED).violations == []


def test_XB_N4_disbursement_conditions_not_met_is_a_finding() -> None:
    """XB-N4 (第十九条(四))."""
    _is_a_finding("XB-N4")


def test_XB_N5_a_guaranteed_loan_outside_its_guarantee_contract_is_a_finding() -> None:
    """XB-N5 (第十九条(五))."""
    _is_a_finding("XB-N5")


def test_XB_N6_lending_in_a_prohibited_sector_is_a_finding() -> None:
    """XB-N6 (第十九条(六))."""
    _is_a_finding("XB-N6")


def test_XB_N8_collection_abandoned_without_good_reason_is_a_finding() -> None:
    """XB-N8 (第十九条(八))."""
    _is_a_finding("XB-N8")


def test_XB_N9_any_other_breach_is_a_finding() -> None:
    """XB-N9 (第十九条(九))."""
    _is_a_finding("XB-N9")


@pytest.mark.parametrize("code", ["XB-N1", "XB-N2", "XB-N7"])
def test_the_grounds_also_checked_earlier_are_findings_too(code: str) -> None:
    _is_a_finding(code)
