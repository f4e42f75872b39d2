"""XB claim rules, pure: who may claim (XB-C1), how a loss is shared (XB-S1 with the
M-2 allocation), and what the annual bank limit lets the fund pay (XB-Q1)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from app.errors import Unprocessable, Violation
from app.kit.allocation import allocate
from app.programs import common
from app.programs.rules import Rule, rule, run, violations
from app.programs.xinbao.policy import (
    BASE_SUB_FUND,
    CLAIMS,
    FINDINGS,
    LIMITS,
    ClaimPolicy,
    LimitPolicy,
)


def loss_shares(loss_fen: int, ratios_bp: dict[str, int]) -> dict[str, int]:
    """XB-S1: fund / guarantor / bank; public and guarantor shares rounded down, the bank
    (listed last) takes the remainder (M-2)."""
    parties = [(k, int(ratios_bp[k])) for k in ("fund", "guarantor") if k in ratios_bp]
    shares = allocate(loss_fen, [*parties, ("bank", int(ratios_bp.get("bank", 0)))])
    return {
        "fund": shares.get("fund", 0),
        "guarantor": shares.get("guarantor", 0),
        "bank": shares["bank"],
    }


@dataclass(frozen=True)
class ClaimFacts:
    loan_status: str
    compensable: bool
    outstanding_fen: int
    days_past_due: int
    lawsuit_case_no: str | None
    lawsuit_accepted_on: date | None


XbClaimRule = Rule[ClaimFacts, ClaimPolicy]


class LawsuitRequired(Unprocessable):
    """XB-C1: an XB claim is filed once the bank has sued and the court accepted the
    case: the claim names the court's case number (`lawsuit_case_no`) and the date the
    case was accepted (`lawsuit_accepted_on`)."""

    code, rule = "lawsuit_required", "XB-C1"
    title, title_zh = "Lawsuit details required", "须提供法院受理的案号和立案日期"


# XB-C1 and XB-N7, shared with SKD (`app/programs/common.py`), tagged with XB's IDs
loan_active: XbClaimRule = Rule("XB-C1", common.loan_active)
filed_in_time: XbClaimRule = Rule(
    "XB-N7", common.compensable("the loan was filed late and is not compensable")
)
past_due_long_enough: XbClaimRule = Rule("XB-C1", common.past_due_long_enough)


@rule("XB-C1")
def lawsuit_case_no(f: ClaimFacts, p: ClaimPolicy) -> Violation | None:
    """The bank sued and the court accepted the case: its case number."""
    if f.lawsuit_case_no:
        return None
    return LawsuitRequired.violation(
        "the court's case number is required", "body", "lawsuit_case_no"
    )


@rule("XB-C1")
def lawsuit_accepted_on(f: ClaimFacts, p: ClaimPolicy) -> Violation | None:
    """… and the date the court accepted it."""
    if f.lawsuit_accepted_on is not None:
        return None
    return LawsuitRequired.violation(
        "the date the court accepted the case is required", "body", "lawsuit_accepted_on"
    )


# The order of the list is the order of the errors in a refusal.
CLAIM_RULES: tuple[XbClaimRule, ...] = (
    loan_active,
    filed_in_time,
    past_due_long_enough,
    lawsuit_case_no,
    lawsuit_accepted_on,
)


def check_claim(f: ClaimFacts, policy: ClaimPolicy = CLAIMS) -> list[Violation]:
    """Every reason the loan cannot be claimed now (XB-C1, XB-N7), each with its rule."""
    return violations(run(CLAIM_RULES, f, policy))


def unknown_findings(findings: list[str]) -> list[str]:
    return [f for f in findings if f not in FINDINGS]


@dataclass(frozen=True)
class BankLimit:
    """XB-Q1 for one bank, one sub-fund and one calendar year: the basis is the bank's
    principal outstanding under that sub-fund at the quarter end, the usage the
    compensation approved under it this year, the settings the sub-fund's own."""

    quarter_end: date
    outstanding_fen: int  # the sub-fund's principal outstanding at that quarter end
    used_fen: int  # compensation approved under the sub-fund this year before the decision
    fund_code: str = BASE_SUB_FUND
    policy: LimitPolicy = LIMITS
    evaluation_id: int | None = None  # the stored quarter-end evaluation; None: computed

    def limit_fen(self, policy: LimitPolicy | None = None) -> int:
        return self.outstanding_fen * (policy or self.policy).bank_limit_bp // 10_000

    def warning_fen(self, policy: LimitPolicy | None = None) -> int:
        p = policy or self.policy
        return self.limit_fen(p) * p.warning_share_bp // 10_000

    def headroom_fen(self, policy: LimitPolicy | None = None) -> int:
        return max(self.limit_fen(policy) - self.used_fen, 0)

    def warning(self, used_fen: int | None = None) -> bool:
        """The risk warning: the year's compensation reached the warning share."""
        used = self.used_fen if used_fen is None else used_fen
        return self.limit_fen() > 0 and used >= self.warning_fen()

    def reached(self, used_fen: int | None = None) -> bool:
        """The limit is used up: the sub-fund's agreement is suspended."""
        used = self.used_fen if used_fen is None else used_fen
        return self.limit_fen() > 0 and used >= self.limit_fen()


def approve(requested: dict[str, int], limit: BankLimit) -> tuple[int, dict[str, int], str | None]:
    """XB-Q1: the fund pays its share up to the headroom; the excess is the bank's; the
    guarantor still pays its ratio. Returns (approved, shares, capped_by)."""
    fund = requested["fund"]
    paid = min(fund, limit.headroom_fen())
    shares = {
        "fund": paid,
        "guarantor": requested["guarantor"],
        "bank": requested["bank"] + fund - paid,
    }
    return paid, shares, ("XB-Q1" if paid < fund else None)


def fund_stop_reached(compensated_fen: int, capital_fen: int, policy: LimitPolicy = LIMITS) -> bool:
    """XB-Q2: cumulative compensation ≥ 50 % of capital, compared exactly."""
    return capital_fen > 0 and compensated_fen * 10_000 >= capital_fen * policy.fund_stop_share_bp
