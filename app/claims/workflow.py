"""The claim workflows as tables (SKD-C1, XB-C2), and who may act at each stage.

    submitted ──city_approve──▶ city_approved ──province_approve──▶ approved
        │                           │   └──province_approve_nil──▶ closed (cap exhausted)
        └──city_reject──▶ rejected ◀┘ province_reject
    approved ──city_pay──▶ paid ──province_reimburse──▶ reimbursed

Every review stage may also return the claim for correction (退回补正): submitted or
city_approved ──return_<stage>──▶ returned ──resubmit_<stage>──▶ the status it was
returned from (the bank resubmits; `app/claims/returns.py`).

Every change goes through `TransitionTable.target` and leaves a `ClaimTransition` row
(actor, role, time, business date, comment, ledger entries)."""

from __future__ import annotations

from dataclasses import dataclass

from app.kit.statemachine import Transition, TransitionTable
from app.programs.sukedai.policy import DEFICIENCIES as SKD_DEFICIENCIES
from app.programs.xinbao.policy import DEFICIENCIES as XB_DEFICIENCIES

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
        Transition("return_city_review", frozenset({"submitted"}), "returned"),
        Transition("resubmit_city_review", frozenset({"returned"}), "submitted"),
        Transition("return_province_review", frozenset({"city_approved"}), "returned"),
        Transition("resubmit_province_review", frozenset({"returned"}), "city_approved"),
    ],
)


@dataclass(frozen=True)
class Stage:
    name: str
    role: str
    who: str  # shown on the claim as the next step
    # a review stage: it may return the claim for correction (退回补正, SKD-C1, XB-C2)
    review: bool = False

    @property
    def return_action(self) -> str:
        return f"return_{self.name}"

    @property
    def resubmit_action(self) -> str:
        return f"resubmit_{self.name}"


SKD_STAGES = {
    "submitted": Stage(
        "city_review", "city_reviewer", "city finance + tech bureau 市县初审", review=True
    ),
    "city_approved": Stage(
        "province_review", "province_reviewer", "province 省级复审", review=True
    ),
    "approved": Stage("city_payment", "fund_manager", "the city fund's manager 市县资金拨付"),
    "paid": Stage(
        "province_reimbursement", "fund_manager", "the province fund's manager 省级资金归垫"
    ),
}

# XB-C2: submitted ──manager_review──▶ manager_reviewed ──committee_approve──▶ approved
#        ──pay──▶ paid; the committee may reject, or approve nothing when XB-Q1 is used up.
#        The manager's review and the committee may return the claim for correction.
XB_CLAIM = TransitionTable(
    "claim",
    [
        Transition("manager_review", frozenset({"submitted"}), "manager_reviewed"),
        Transition("committee_approve", frozenset({"manager_reviewed"}), "approved"),
        Transition("committee_approve_nil", frozenset({"manager_reviewed"}), "closed"),
        Transition("committee_reject", frozenset({"manager_reviewed"}), "rejected"),
        Transition("pay", frozenset({"approved"}), "paid"),
        Transition("return_manager_review", frozenset({"submitted"}), "returned"),
        Transition("resubmit_manager_review", frozenset({"returned"}), "submitted"),
        Transition("return_committee_decision", frozenset({"manager_reviewed"}), "returned"),
        Transition("resubmit_committee_decision", frozenset({"returned"}), "manager_reviewed"),
    ],
)

XB_STAGES = {
    "submitted": Stage(
        "manager_review", "fund_manager", "the fund manager 基金管理人尽职审查", review=True
    ),
    "manager_reviewed": Stage(
        "committee_decision", "committee", "the committee 补偿会审", review=True
    ),
    "approved": Stage("payment", "fund_manager", "the fund manager 基金管理人支付"),
}

WORKFLOWS = {"SKD": SKD_CLAIM, "XB": XB_CLAIM}
STAGES = {"SKD": SKD_STAGES, "XB": XB_STAGES}
# The deficiencies a review stage may list when it returns a claim: code → (中文, English)
DEFICIENCIES = {"SKD": SKD_DEFICIENCIES, "XB": XB_DEFICIENCIES}
RETURN_RULE = {"SKD": "SKD-C1", "XB": "XB-C2"}

# With the bank for correction (退回补正): the bank corrects, uploads, and resubmits.
RETURNED = "returned"

# Statuses in which the bank may still add documents, and in which recoveries count.
DOCUMENTS_OPEN = frozenset({"submitted", "city_approved", RETURNED})
COMPENSATED = frozenset({"paid", "reimbursed"})
