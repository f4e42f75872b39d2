"""SKD claim rules, pure: who may claim (SKD-C2, SKD-S2), how a loss is shared (SKD-S1
with the exact allocation of M-2) and how much of it the 3 % cap lets the funds pay
(SKD-Q1 with the first-year exemption SKD-Q2). No database here: the service gathers
the facts under locks and these functions decide."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from fractions import Fraction

from app.errors import Violation
from app.kit.allocation import allocate
from app.kit.calendar import add_months
from app.programs import common
from app.programs.rules import Rule, run, violations
from app.programs.sukedai.policy import CAPS, CLAIMS, CapPolicy, ClaimPolicy, Product


def loss_shares(loss_fen: int, product: Product) -> dict[str, int]:
    """SKD-S1: principal loss split province / city / bank; public shares rounded down,
    the bank takes the remainder (M-2). Interest loss is the bank's alone."""
    return allocate(
        loss_fen,
        [
            ("province", product.province_share_bp),
            ("city", product.city_share_bp),
            ("bank", 10_000 - product.province_share_bp - product.city_share_bp),
        ],
    )


@dataclass(frozen=True)
class ClaimFacts:
    loan_status: str
    compensable: bool
    outstanding_fen: int
    days_past_due: int
    documents: int = 0


SkdClaimRule = Rule[ClaimFacts, ClaimPolicy]

# SKD-C2 and SKD-S2, shared with XB (`app/programs/common.py`), tagged with SKD's IDs
loan_active: SkdClaimRule = Rule("SKD-C2", common.loan_active)
eligible_at_grant: SkdClaimRule = Rule(
    "SKD-S2",
    common.compensable("the loan was not eligible when granted and gets no compensation"),
)
past_due_long_enough: SkdClaimRule = Rule("SKD-C2", common.past_due_long_enough)

# The order of the list is the order of the errors in a refusal.
CLAIM_RULES: tuple[SkdClaimRule, ...] = (loan_active, eligible_at_grant, past_due_long_enough)


def check_claim(facts: ClaimFacts, policy: ClaimPolicy = CLAIMS) -> list[Violation]:
    """Every reason the loan cannot be claimed now (SKD-C2, SKD-S2), each with its rule."""
    return violations(run(CLAIM_RULES, facts, policy))


def annualized(principal_days_fen: int, fund_share_bp: int, policy: CapPolicy = CAPS) -> Fraction:
    """SKD-Q1's annualized principal of a product's loans, exact (fen as a fraction):
    Σ (principal × loan days) / year_days × the funds' share."""
    return Fraction(principal_days_fen * fund_share_bp, policy.year_days * 10_000)


@dataclass(frozen=True)
class CapFacts:
    cooperation_start: date | None  # the bank's earliest SKD agreement
    on: date  # the approval date
    cumulative_principal_fen: int  # the bank's SKD principal disbursed up to `on`
    annualized_fen: Fraction  # SKD-Q1's denominator, exact
    compensated_fen: int  # compensation approved for the bank before this claim


@dataclass(frozen=True)
class CapPosition:
    exempt: bool  # SKD-Q2 applies: no cap
    first_year_ends: date | None
    cap_fen: int  # 3 % of the annualized principal, rounded down to the fen
    headroom_fen: int | None  # None when exempt


def cap_position(facts: CapFacts, policy: CapPolicy = CAPS) -> CapPosition:
    ends = (
        add_months(facts.cooperation_start, policy.exemption_months)
        if facts.cooperation_start
        else None
    )
    exempt = (
        ends is not None
        and facts.on < ends
        and facts.cumulative_principal_fen <= policy.exemption_principal_fen
    )
    cap = (facts.annualized_fen * policy.rate_bp / 10_000).__floor__()
    return CapPosition(
        exempt=exempt,
        first_year_ends=ends,
        cap_fen=cap,
        headroom_fen=None if exempt else max(cap - facts.compensated_fen, 0),
    )


@dataclass(frozen=True)
class Approval:
    approved_fen: int
    shares: dict[str, int]  # province, city: what the funds pay; bank: the rest of the loss
    capped_by: str | None
    bank_bears_of_fund_share_fen: int  # the part of the funds' share the cap left to the bank


def approve(requested: dict[str, int], position: CapPosition) -> Approval:
    """SKD-Q1: pay the funds' share up to the headroom; a capped amount is split between
    province and city in their original proportion (province rounded down, M-2)."""
    fund_share = requested["province"] + requested["city"]
    loss = fund_share + requested["bank"]
    if position.headroom_fen is None or position.headroom_fen >= fund_share:
        return Approval(fund_share, dict(requested), None, 0)
    approved = position.headroom_fen
    parts = allocate(
        approved,
        [("province", requested["province"]), ("city", requested["city"])],
    )
    return Approval(
        approved,
        {"province": parts["province"], "city": parts["city"], "bank": loss - approved},
        "SKD-Q1",
        fund_share - approved,
    )
