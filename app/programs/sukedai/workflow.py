"""The 苏科贷 claim workflow (SKD-C1, SKD-C3):

    submitted ──city_approve──▶ city_approved ──province_approve──▶ approved
        │                           │   └──province_approve_nil──▶ closed (cap exhausted)
        └──city_reject──▶ rejected ◀┘ province_reject
    approved ──city_pay──▶ paid ──province_reimburse──▶ reimbursed

Both reviews may return the claim for correction (退回补正, SKD-C1)."""

from __future__ import annotations

from app.claims.steps import DocumentsMissing, InsufficientFunds, InvalidStepDate
from app.claims.workflow import FundOf, Stage, TransitionRule, Workflow
from app.kit.statemachine import Transition
from app.programs.common import CLAIM_REFUSALS
from app.programs.sukedai import claim_steps as cs
from app.programs.sukedai.funds import PROVINCE_FUND
from app.programs.sukedai.policy import DEFICIENCIES

# the claim's city fund pays the bank; the province fund reimburses the city fund
_CITY_FUND = FundOf(column="city_fund_code")
_PROVINCE_FUND = FundOf(fixed=PROVINCE_FUND)


CITY_REVIEW = Stage(
    "city_review",
    "city_reviewer",
    "city finance + tech bureau 市县初审",
    "review",
    cs.city_review,
    path="city-review",
    takes=frozenset({"ineligible_at_grant"}),
    refusals=(DocumentsMissing,),
)
PROVINCE_REVIEW = Stage(
    "province_review",
    "province_reviewer",
    "province 省级复审",
    "review",
    cs.province_review,
    path="province-review",
    takes=frozenset({"ineligible_at_grant"}),
)
CITY_PAYMENT = Stage(
    "city_payment",
    "fund_manager",
    "the city fund's manager 市县资金拨付",
    "payment",
    cs.city_payment,
    acting_fund=_CITY_FUND,
    path="city-payment",
    refusals=(InvalidStepDate, InsufficientFunds),
)
PROVINCE_REIMBURSEMENT = Stage(
    "province_reimbursement",
    "fund_manager",
    "the province fund's manager 省级资金归垫",
    "payment",
    cs.province_reimbursement,
    acting_fund=_PROVINCE_FUND,
    path="province-reimbursement",
    refusals=(InvalidStepDate, InsufficientFunds),
)

WORKFLOW = Workflow(
    transitions=[
        Transition("city_approve", frozenset({"submitted"}), "city_approved"),
        Transition("city_reject", frozenset({"submitted"}), "rejected"),
        Transition("province_approve", frozenset({"city_approved"}), "approved"),
        Transition("province_approve_nil", frozenset({"city_approved"}), "closed"),
        Transition("province_reject", frozenset({"city_approved"}), "rejected"),
        Transition("city_pay", frozenset({"approved"}), "paid"),
        Transition("province_reimburse", frozenset({"paid"}), "reimbursed"),
    ],
    stages={
        "submitted": CITY_REVIEW,
        "city_approved": PROVINCE_REVIEW,
        "approved": CITY_PAYMENT,
        "paid": PROVINCE_REIMBURSEMENT,
    },
    return_rule="SKD-C1",
    deficiencies=DEFICIENCIES,
    labels={
        "submitted": ("已申请，待市县初审", "filed, waiting for the city review"),
        "city_approved": ("初审通过，待省级复审", "city review passed, waiting for the province"),
        "approved": (
            "复审通过，待市县资金拨付",
            "approved, waiting for the city fund's payment",
        ),
        "paid": ("已拨付银行，待省级归垫", "paid to the bank, waiting for the province's part"),
        "reimbursed": ("省级已归垫，办结", "the province reimbursed its part; done"),
    },
    rules={"city_approve": (TransitionRule("SKD-C1", cs.documents_present),)},
    documents_open=frozenset({"submitted", "city_approved", "returned"}),
    compensated=frozenset({"paid", "reimbursed"}),
    refusals={"file_claim": (*CLAIM_REFUSALS, cs.ProductNotInProgramme)},
)
