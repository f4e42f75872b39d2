"""The claim workflows as tables (SKD-C1, XB-C2), and who may act at each stage.

    submitted ──city_approve──▶ city_approved ──province_approve──▶ approved
        │                           │   └──province_approve_nil──▶ closed (cap exhausted)
        └──city_reject──▶ rejected ◀┘ province_reject
    approved ──city_pay──▶ paid ──province_reimburse──▶ reimbursed

Every change goes through `TransitionTable.target` and leaves a `ClaimTransition` row
(actor, role, time, business date, comment, ledger entries)."""

from __future__ import annotations

from dataclasses import dataclass

from app.kit.statemachine import Transition, TransitionTable

SKD_CLAIM = TransitionTable(
    "claim",
    [
        Transition("city_approve", frozenset({"submitted"}), "city_approved"),
        Transition("city_reject", frozenset({"submitted"}), "rejected"),
        Transition("province_approve", frozenset({"city_approved"}), "approved"),
        Transition("province_approve_nil", frozenset({"city_approved"}), "closed"),
        Transition("province_reject", frozenset({"city_approved"}), "rejected"),
        Transition("city_pay", frozenset({"approved"}), "paid"),
        Transition("province_reimburse", frozenset({"paid"}), "reimbursed"),
    ],
)


@dataclass(frozen=True)
class Stage:
    name: str
    role: str
    who: str  # shown on the claim as the next step


SKD_STAGES = {
    "submitted": Stage("city_review", "city_reviewer", "city finance + tech bureau 市县初审"),
    "city_approved": Stage("province_review", "province_reviewer", "province 省级复审"),
    "approved": Stage("city_payment", "fund_manager", "the city fund's manager 市县资金拨付"),
    "paid": Stage(
        "province_reimbursement", "fund_manager", "the province fund's manager 省级资金归垫"
    ),
}

# XB-C2: submitted ──manager_review──▶ manager_reviewed ──committee_approve──▶ approved
#        ──pay──▶ paid; the committee may reject, or approve nothing when XB-Q1 is used up.
XB_CLAIM = TransitionTable(
    "claim",
    [
        Transition("manager_review", frozenset({"submitted"}), "manager_reviewed"),
        Transition("committee_approve", frozenset({"manager_reviewed"}), "approved"),
        Transition("committee_approve_nil", frozenset({"manager_reviewed"}), "closed"),
        Transition("committee_reject", frozenset({"manager_reviewed"}), "rejected"),
        Transition("pay", frozenset({"approved"}), "paid"),
    ],
)

XB_STAGES = {
    "submitted": Stage("manager_review", "fund_manager", "the fund manager 基金管理人尽职审查"),
    "manager_reviewed": Stage("committee_decision", "committee", "the committee 补偿会审"),
    "approved": Stage("payment", "fund_manager", "the fund manager 基金管理人支付"),
}

WORKFLOWS = {"SKD": SKD_CLAIM, "XB": XB_CLAIM}
STAGES = {"SKD": SKD_STAGES, "XB": XB_STAGES}

# Statuses in which the bank may still add documents, and in which recoveries count.
DOCUMENTS_OPEN = frozenset({"submitted", "city_approved"})
COMPENSATED = frozenset({"paid", "reimbursed"})
