"""The 信保基金 claim workflow (XB-C2):

    submitted ──manager_review──▶ manager_reviewed ──committee_approve──▶ approved ──pay──▶ paid
                                        │  └──committee_approve_nil──▶ closed (XB-Q1 used up)
                                        └──committee_reject──▶ rejected

The manager's review and the committee may return the claim for correction (退回补正);
the manager's opinion (7 working days) and the payment (20 working days) have deadlines
stored on the claim."""

from __future__ import annotations

from app.claims.steps import DocumentsMissing, InsufficientFunds, InvalidStepDate
from app.claims.workflow import ClaimDeadline, Stage, TransitionRule, Workflow
from app.kit.statemachine import Transition
from app.programs.common import CLAIM_REFUSALS
from app.programs.xinbao import claim_steps as cs
from app.programs.xinbao.claims import LawsuitRequired
from app.programs.xinbao.policy import CLAIM_DEADLINES, DEFICIENCIES

MANAGER_REVIEW = Stage(
    "manager_review",
    "fund_manager",
    "the fund manager 基金管理人尽职审查",
    "review",
    cs.manager_review,
    path="manager-review",
    takes=frozenset({"findings", "opinion"}),
    requires=frozenset({"opinion"}),
    refusals=(DocumentsMissing, cs.UnknownFinding, cs.FindingsBarCompensation),
)
COMMITTEE_DECISION = Stage(
    "committee_decision",
    "committee",
    "the committee 补偿会审",
    "review",
    cs.committee_decision,
    path="committee-decision",
    refusals=(cs.FindingsBarCompensation,),
)
PAYMENT = Stage(
    "payment",
    "fund_manager",
    "the fund manager 基金管理人支付",
    "payment",
    cs.payment,
    path="payment",
    refusals=(InvalidStepDate, InsufficientFunds),
)
_STAGE_OF = {"manager_opinion": "manager_review", "payment": "payment"}

WORKFLOW = Workflow(
    transitions=[
        Transition("manager_review", frozenset({"submitted"}), "manager_reviewed"),
        Transition("committee_approve", frozenset({"manager_reviewed"}), "approved"),
        Transition("committee_approve_nil", frozenset({"manager_reviewed"}), "closed"),
        Transition("committee_reject", frozenset({"manager_reviewed"}), "rejected"),
        Transition("pay", frozenset({"approved"}), "paid"),
    ],
    stages={
        "submitted": MANAGER_REVIEW,
        "manager_reviewed": COMMITTEE_DECISION,
        "approved": PAYMENT,
    },
    return_rule="XB-C2",
    deficiencies=DEFICIENCIES,
    labels={
        "submitted": ("已申请，待基金管理人尽职审查", "filed, waiting for the manager's review"),
        "manager_reviewed": (
            "基金管理人已出具尽职审查意见，待会审",
            "the manager's opinion is given; waiting for the committee",
        ),
        "approved": ("会审通过，待基金管理人支付", "approved, waiting for the fund's payment"),
        "paid": ("已支付代偿资金，办结", "compensation paid"),
        "closed": ("年度补偿限额已用尽，办结", "closed: the bank's annual limit is used up"),
    },
    rules={
        "manager_review": (
            TransitionRule("XB-C1", cs.documents_present),
            TransitionRule("XB-N", cs.known_findings),
            TransitionRule("XB-N", cs.recommendation_agrees),
        ),
        "committee_approve": (TransitionRule("XB-N", cs.findings_bar),),
    },
    documents_open=frozenset({"submitted", "returned"}),
    compensated=frozenset({"paid"}),
    deadlines={
        name: ClaimDeadline(status, base, days, _STAGE_OF[name])
        for name, (status, base, days) in CLAIM_DEADLINES.items()
    },
    refusals={
        "file_claim": (*CLAIM_REFUSALS, LawsuitRequired),
        "clawback": cs.CLAWBACK_REFUSALS,
        "receipt": cs.RECEIPT_REFUSALS,
    },
)
