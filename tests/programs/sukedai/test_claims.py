"""苏科贷 claim rules, pure: who may claim, how a loss is shared, what the cap lets the
funds pay and what a recovery returns. One test per rule ID, each at its boundary. No
database, no HTTP."""

from __future__ import annotations

from dataclasses import replace
from datetime import date
from fractions import Fraction

import pytest

from app.programs.common import recovery_return
from app.programs.sukedai.claims import (
    CapFacts,
    CapPosition,
    ClaimFacts,
    annualized,
    approve,
    cap_position,
    check_claim,
    loss_shares,
)
from app.programs.sukedai.policy import CAPS, CLAIMS, CapPolicy, ClaimPolicy, product_by_code

SKD1 = product_by_code("SKD1")
SKD2 = product_by_code("SKD2")
SKD3 = product_by_code("SKD3")
assert SKD1 is not None and SKD2 is not None and SKD3 is not None

CLAIMABLE = ClaimFacts(
    loan_status="active", compensable=True, outstanding_fen=3_000_000_00, days_past_due=90
)


def codes(facts: ClaimFacts, policy: ClaimPolicy = CLAIMS) -> list[tuple[str | None, str]]:
    return [(v.rule, v.code or "") for v in check_claim(facts, policy)]


def test_SKD_S1_principal_loss_is_shared_40_40_20_or_15_15_70() -> None:
    """SKD-S1 and SPEC examples 1 and 2: SKD1 and SKD2 — province 40 %, city 40 %, bank
    20 %; SKD3 — 15 %, 15 %, 70 %."""
    assert loss_shares(3_000_000_00, SKD1) == {
        "province": 1_200_000_00,
        "city": 1_200_000_00,
        "bank": 600_000_00,
    }
    assert loss_shares(3_000_000_00, SKD2) == loss_shares(3_000_000_00, SKD1)
    assert loss_shares(20_000_000_00, SKD3) == {
        "province": 3_000_000_00,
        "city": 3_000_000_00,
        "bank": 14_000_000_00,
    }
    assert loss_shares(0, SKD3) == {"province": 0, "city": 0, "bank": 0}


def test_M_2_a_split_adds_up_public_shares_round_down_and_the_bank_takes_the_rest() -> None:
    """M-2: loss 1,000,000.01 in SKD1 → 400,000.00, 400,000.00, bank 200,000.01; every
    split sums to the loss; a capped approval rounds the province down too."""
    assert loss_shares(1_000_000_01, SKD1) == {
        "province": 400_000_00,
        "city": 400_000_00,
        "bank": 200_000_01,
    }
    for loss in (1, 2, 3, 7, 99, 1_000_000_01, 123_456_789):
        for product in (SKD1, SKD3):
            shares = loss_shares(loss, product)
            assert sum(shares.values()) == loss
            assert shares["province"] == loss * product.province_share_bp // 10_000
    position = CapPosition(exempt=False, first_year_ends=None, cap_fen=0, headroom_fen=1_01)
    capped = approve({"province": 3_00, "city": 1_00, "bank": 1_00}, position)
    # 1.01 split 3 : 1 → province 0.75 (0.7575 rounded down), city the rest
    assert capped.shares == {"province": 75, "city": 26, "bank": 5_00 - 1_01}


def test_SKD_S2_a_loan_ineligible_at_grant_gets_no_compensation() -> None:
    """SKD-S2: a loan marked non-compensable (an SKD-F4 fact found later) is refused."""
    assert codes(replace(CLAIMABLE, compensable=False)) == [("SKD-S2", "not_compensable")]
    refused = check_claim(replace(CLAIMABLE, compensable=False))[0]
    assert refused.msg == "the loan was not eligible when granted and gets no compensation"
    assert codes(CLAIMABLE) == []


def test_SKD_C2_a_claim_needs_principal_90_days_past_due() -> None:
    """SKD-C2: 89 days past due is too early, 90 is enough; nothing outstanding or a loan
    that is not active cannot be claimed; the 90 days are a policy parameter."""
    assert codes(CLAIMABLE) == []
    early = check_claim(replace(CLAIMABLE, days_past_due=89))
    assert [(v.rule, v.code, v.loc) for v in early] == [
        ("SKD-C2", "not_yet_claimable", ("body", "loan_id"))
    ]
    assert early[0].msg == "the loan is 89 days past due; a claim needs 90"
    assert codes(replace(CLAIMABLE, outstanding_fen=0, days_past_due=0)) == [
        ("SKD-C2", "nothing_outstanding")
    ]
    assert codes(replace(CLAIMABLE, loan_status="claimed")) == [("SKD-C2", "loan_not_claimable")]
    sixty = ClaimPolicy(min_days_past_due=60)
    assert codes(replace(CLAIMABLE, days_past_due=60), sixty) == []
    assert codes(replace(CLAIMABLE, days_past_due=59), sixty) == [("SKD-C2", "not_yet_claimable")]
    everything = ClaimFacts("repaid", compensable=False, outstanding_fen=0, days_past_due=0)
    assert codes(everything) == [
        ("SKD-C2", "loan_not_claimable"),
        ("SKD-S2", "not_compensable"),
        ("SKD-C2", "nothing_outstanding"),
    ]


def _position(
    on: date, principal_fen: int, annualized_fen: Fraction, compensated_fen: int = 0
) -> CapPosition:
    return cap_position(
        CapFacts(date(2026, 3, 1), on, principal_fen, annualized_fen, compensated_fen)
    )


def test_SKD_Q1_compensation_is_capped_at_3_percent_of_the_annualized_principal() -> None:
    """SKD-Q1 and SPEC example 3: annualized principal Σ principal × days / 365 × the funds'
    share; in year 2 with 400,000,000.00 annualized and 11,000,000.00 paid, a 2,400,000.00
    fund share is approved at 1,000,000.00 (500,000.00 each), the bank bearing 1,400,000.00."""
    # 5,000,000.00 for 92 days at 80 %: 1,008,219.178… exactly, a fraction of a fen
    exact = annualized(5_000_000_00 * 92, 8000)
    assert exact == Fraction(5_000_000_00 * 92 * 8000, 365 * 10_000)
    assert _position(date(2027, 3, 1), 1, exact).cap_fen == 30_246_57  # rounded down
    year_two = _position(date(2027, 3, 1), 1, Fraction(400_000_000_00), 11_000_000_00)
    assert (year_two.exempt, year_two.cap_fen, year_two.headroom_fen) == (
        False,
        12_000_000_00,
        1_000_000_00,
    )
    requested = {"province": 1_200_000_00, "city": 1_200_000_00, "bank": 600_000_00}
    capped = approve(requested, year_two)
    assert capped.approved_fen == 1_000_000_00
    assert capped.shares == {"province": 500_000_00, "city": 500_000_00, "bank": 2_000_000_00}
    assert (capped.capped_by, capped.bank_bears_of_fund_share_fen) == ("SKD-Q1", 1_400_000_00)
    # headroom equal to the fund share: paid in full; one fen less: capped
    full = replace(year_two, headroom_fen=2_400_000_00)
    assert approve(requested, full).capped_by is None
    assert approve(requested, full).shares == requested
    short = approve(requested, replace(year_two, headroom_fen=2_399_999_99))
    assert (short.capped_by, short.approved_fen) == ("SKD-Q1", 2_399_999_99)
    # compensation beyond the cap leaves no headroom, never a negative one
    spent = _position(date(2027, 3, 1), 1, Fraction(400_000_000_00), 13_000_000_00)
    assert spent.headroom_fen == 0 and approve(requested, spent).approved_fen == 0
    # the rate and the year are policy numbers
    four = cap_position(
        CapFacts(date(2026, 3, 1), date(2027, 3, 1), 1, Fraction(100_00), 0),
        CapPolicy(rate_bp=400),
    )
    assert four.cap_fen == 4_00
    assert annualized(365, 10_000, CapPolicy(year_days=366)) == Fraction(365, 366)
    assert CAPS.rate_bp == 300


def test_SKD_Q2_the_first_year_under_200_000_000_is_exempt_from_the_cap() -> None:
    """SKD-Q2: exempt before the first anniversary of the cooperation while cumulative
    principal is ≤ 200,000,000.00; the anniversary itself, a fen more, or no cooperation
    start end the exemption."""
    basis = Fraction(400_000_000_00)
    inside = _position(date(2027, 2, 28), 200_000_000_00, basis)
    assert (inside.exempt, inside.headroom_fen, inside.first_year_ends) == (
        True,
        None,
        date(2027, 3, 1),
    )
    requested = {"province": 9_000_000_00, "city": 9_000_000_00, "bank": 4_500_000_00}
    assert approve(requested, inside).approved_fen == 18_000_000_00  # no cap at all
    assert not _position(date(2027, 2, 28), 200_000_000_01, basis).exempt
    assert not _position(date(2027, 3, 1), 1, basis).exempt
    no_start = cap_position(CapFacts(None, date(2026, 6, 1), 1, basis, 0))
    assert (no_start.exempt, no_start.first_year_ends) == (False, None)


@pytest.mark.parametrize(
    ("net", "loss", "paid", "returned", "due"),
    [
        # SPEC example 1: 1,000,000.00 recovered, 50,000.00 costs, 2,400,000 of 3,000,000 paid
        (950_000_00, 3_000_000_00, 2_400_000_00, 0, 760_000_00),
        # never beyond the compensation still unreturned
        (950_000_00, 3_000_000_00, 2_400_000_00, 2_000_000_00, 400_000_00),
        (950_000_00, 3_000_000_00, 2_400_000_00, 2_400_000_00, 0),
        # rounded down to the fen
        (1, 3, 2, 0, 0),
        (2, 3, 2, 0, 1),
    ],
)
def test_SKD_R1_a_recovery_is_returned_at_the_original_compensation_ratio(
    net: int, loss: int, paid: int, returned: int, due: int
) -> None:
    """SKD-R1: net recovery × paid ÷ loss, rounded down, capped by what is unreturned."""
    assert recovery_return(net_fen=net, loss_fen=loss, paid_fen=paid, returned_fen=returned) == due
