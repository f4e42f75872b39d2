from __future__ import annotations

from datetime import date, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from app.kit.money import Yuan, YuanIn
from app.kit.schemas import In
from app.loans.delinquency import BucketOut


class ClaimFile(In):
    """A compensation claim (代偿申请) on an overdue loan (SKD-C2; XB-C1 with the court's
    case number and acceptance date)."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "loan_id": 37,
                    "lawsuit_case_no": "(2026)苏0706民初5678号",
                    "lawsuit_accepted_on": "2026-11-20",
                    "comment": "借款人逾期超过45天，已起诉并获法院受理，申请补偿",
                }
            ]
        }
    )

    loan_id: int = Field(ge=1, le=2**63 - 1, description="the loan claimed 申请代偿的贷款")
    lawsuit_case_no: str | None = Field(
        None,
        min_length=1,
        max_length=64,
        description="法院受理案号 the court's case number (XB-C1: required for XB)",
    )
    lawsuit_accepted_on: date | None = Field(
        None, description="立案日期 the date the court accepted the case (XB-C1: required for XB)"
    )
    comment: str = Field("", max_length=2000, description="申请说明")


class ReviewIn(In):
    """A review's decision (SKD 初审 / 复审): approve, or reject with the reason."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"decision": "approve", "comment": "材料齐全，逾期事实清楚，同意"}]
        }
    )

    decision: Literal["approve", "reject"] = Field(description="approve 通过 / reject 驳回")
    comment: str = Field("", max_length=2000, description="审核意见 (required to reject)")
    ineligible_at_grant: bool = Field(
        False,
        description="reject only: the loan was not eligible when granted (SKD-F4 facts found "
        "later, SKD-S2) and can never be compensated",
    )

    @model_validator(mode="after")
    def _reason(self) -> ReviewIn:
        if self.decision == "reject" and not self.comment:
            raise ValueError("a rejection needs a reason in comment")
        if self.decision == "approve" and self.ineligible_at_grant:
            raise ValueError("ineligible_at_grant goes with a rejection")
        return self


class StepIn(In):
    """A decision or payment at a stage of any programme: a review takes `decision` (and
    `comment` to reject); a payment `paid_on`; an XB due-diligence review `findings` and
    `opinion`."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"decision": "approve", "comment": "材料齐全，逾期事实清楚，同意"}]
        }
    )

    decision: Literal["approve", "reject"] | None = Field(
        None, description="review stages: approve 通过 / reject 驳回"
    )
    comment: str = Field("", max_length=2000, description="意见 (required to reject)")
    paid_on: date | None = Field(None, description="payment stages: 拨付日期")
    findings: list[str] = Field(
        default_factory=list,
        max_length=20,
        description="due-diligence findings (XB-N1…N9): any finding means no compensation",
    )
    opinion: str = Field("", max_length=4000, description="due-diligence opinion 审查意见")
    ineligible_at_grant: bool = Field(
        False, description="reject only: the loan was not eligible when granted (SKD-S2)"
    )

    @model_validator(mode="after")
    def _consistent(self) -> StepIn:
        if self.decision == "approve" and self.ineligible_at_grant:
            raise ValueError("ineligible_at_grant goes with a rejection")
        return self


class PaymentIn(In):
    """A payment stage (拨付 / 归垫 / 支付): the date the money moved."""

    model_config = ConfigDict(
        json_schema_extra={"examples": [{"paid_on": "2026-09-30", "comment": "已拨付至合作银行"}]}
    )

    paid_on: date = Field(
        description="拨付/归垫日期: not in the future, not before the step it follows"
    )
    comment: str = Field("", max_length=2000, description="备注")


class RecoveryIn(In):
    """追偿回款: money recovered after compensation, with the actual litigation costs
    (SKD-R1, XB-R1). Every problem (amount, costs, dates) is listed at once."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {"recovered_on": "2026-10-20", "amount": "1200000.00", "costs": "60000.00"}
            ]
        }
    )

    recovered_on: date = Field(description="追回日期: not before the compensation was paid")
    amount: YuanIn = Field(description="追回金额 (before costs), more than 0.00")
    costs: YuanIn = Field(
        "0.00", validate_default=True, description="实际诉讼费用 litigation costs, ≤ amount"
    )


def _absent(value: object) -> bool:
    return value is None


class Shares(BaseModel):
    """Who bears the loss. SKD: province, city, bank (SKD-S1); XB: fund, guarantor, bank
    (XB-S1); parties not in the programme are left out."""

    province: Yuan | None = Field(None, exclude_if=_absent, description="SKD 省级风险补偿资金")
    city: Yuan | None = Field(None, exclude_if=_absent, description="SKD 市县风险补偿资金")
    fund: Yuan | None = Field(None, exclude_if=_absent, description="XB 信保基金")
    guarantor: Yuan | None = Field(
        None, exclude_if=_absent, description="XB 合作担保机构 (guaranteed loans)"
    )
    bank: Yuan = Field(description="合作银行")


class DeficiencyIn(In):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"code": "document_missing", "detail": "缺少逾期证明和催收记录"}]
        }
    )

    code: str = Field(
        min_length=1,
        max_length=40,
        description="a code of the programme's list (docs/rules.md, SKD-C1 / XB-C2), e.g. "
        "document_missing, document_unreadable, overdue_date_wrong, amount_wrong, "
        "lawsuit_case_no_missing (XB), other (needs a detail)",
    )
    detail: str | None = Field(None, max_length=1000, description="what to correct 补正说明")


class ReturnIn(In):
    """退回补正: every deficiency at once (SKD-C1, XB-C2)."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "deficiencies": [
                        {"code": "document_missing", "detail": "缺少逾期证明和催收记录"},
                        {
                            "code": "overdue_date_wrong",
                            "detail": "申请书所写逾期日与借款合同到期日不符",
                        },
                    ],
                    "comment": "请补正材料后重新提交",
                }
            ]
        }
    )

    deficiencies: list[DeficiencyIn] = Field(min_length=1, max_length=50)
    comment: str = Field(min_length=1, max_length=2000, description="退回意见")


class ResubmissionIn(In):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"comment": "已补充逾期证明和催收记录，并更正申请书中的逾期日期"}]
        }
    )

    comment: str = Field(min_length=1, max_length=2000, description="补正情况说明")


class DeficiencyOut(BaseModel):
    code: str
    label_zh: str
    label_en: str
    detail: str | None


class ReturnOut(BaseModel):
    """The open return for correction: what the bank is to correct, and where the claim
    goes back when resubmitted."""

    stage: str = Field(description="the review stage that returned the claim, and resumes it")
    returned_by: str
    returned_by_role: str
    returned_on: date
    comment: str
    deficiencies: list[DeficiencyOut]
    paused_deadline: str | None = Field(
        None, description="the stage's stored deadline paused while with the bank (XB-C2)"
    )
    deadline_was: date | None = None
    working_days_left: int | None = Field(
        None, description="working days of the paused deadline left, counted from the resubmission"
    )


class TransitionOut(BaseModel):
    action: str
    from_status: str | None
    to_status: str
    actor: str
    actor_role: str
    business_date: date
    at: datetime
    comment: str
    ledger_entry_ids: list[int]
    deficiencies: list[DeficiencyOut] = Field(
        default_factory=list, description="a return for correction's deficiencies (退回补正)"
    )


class DocumentOut(BaseModel):
    id: int
    kind: str
    filename: str
    content_type: str
    size_bytes: int
    sha256: str
    uploaded_at: datetime
    download: str


class RecoveryOut(BaseModel):
    id: int
    claim_id: int
    recovered_on: date
    amount: Yuan
    costs: Yuan
    net: Yuan = Field(description="amount − costs")
    returned: Yuan = Field(description="returned to the funds (SKD-R1)")
    returned_shares: dict[str, Yuan] = Field(description="SKD: province / city; XB: fund")
    due_on: date | None = Field(
        None, description="XB-R1: distributed to the fund within 10 working days"
    )
    due_on_provisional: bool = Field(
        False, description="due_on rests on a provisional calendar day (SPEC M-3)"
    )
    ledger_entry_ids: list[int]


class ClawbackIn(In):
    """XB-R2: the decision to have the bank refund the claim's compensation."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "decided_on": "2026-10-15",
                    "reason": "银行无正当理由放弃对借款人的诉讼催收，应退还已获补偿资金",
                }
            ]
        }
    )

    decided_on: date = Field(description="决定日期")
    reason: str = Field(min_length=2, max_length=2000, description="原因 (recorded)")


class ClawbackOut(BaseModel):
    id: int
    claim_id: int
    kind: str = Field(description="abandonment 放弃催收 / fraud 弄虚作假或置换 (XB-R2)")
    amount: Yuan = Field(description="the compensation the bank refunds")
    decided_on: date
    reason: str
    ledger_entry_ids: list[int]


class ReceiptIn(In):
    """Money received from the bank against the claim's receivable (XB-R1, XB-R2)."""

    model_config = ConfigDict(
        json_schema_extra={"examples": [{"received_on": "2026-09-10", "amount": "448000.00"}]}
    )

    received_on: date = Field(description="到账日期")
    amount: YuanIn = Field(description="received from the bank")

    @model_validator(mode="after")
    def _positive(self) -> ReceiptIn:
        if self.amount <= 0:
            raise ValueError("amount must be more than zero")
        return self


class ReceiptOut(BaseModel):
    id: int
    claim_id: int
    received_on: date
    amount: Yuan
    receivable_after: Yuan = Field(description="what the bank still owes on the claim")
    ledger_entry_ids: list[int]


class NextStep(BaseModel):
    stage: str
    who: str
    endpoint: str


class ClaimOut(BaseModel):
    id: int
    program: str
    loan_id: int
    contract_no: str = Field(description="借款合同编号 of the loan claimed")
    enterprise_name: str = Field(description="借款企业名称")
    enterprise_credit_code: str = Field(description="借款企业统一社会信用代码")
    bank_code: str
    product: str | None
    city_fund_code: str | None
    region_code: str
    status: str
    status_zh: str = Field(description="the status in Chinese, in the programme's words")
    status_en: str = Field(description="the status in English, in the programme's words")
    next_step: NextStep | None = Field(description="who acts next, and where")
    filed_on: date
    days_past_due: int = Field(description="逾期天数 when filed")
    loss: Yuan = Field(description="本金损失: the unpaid principal when filed (SKD-C2)")
    requested: Yuan = Field(description="the funds' share of the loss (SKD-S1)")
    shares: Shares = Field(description="the loss split per SKD-S1 (M-2)")
    approved: Yuan | None = Field(description="what the funds pay, after the cap")
    approved_shares: Shares | None = Field(
        description="province / city pay; bank bears the rest of the loss"
    )
    approved_on: date | None
    capped_by: str | None = Field(description='"SKD-Q1" when the 3 % cap cut the claim')
    bank_bears_capped: Yuan | None = Field(
        description="the part of the funds' share the cap left to the bank"
    )
    cap: dict[str, Any] | None = Field(description="the cap figures at approval")
    paid_on: date | None
    reimbursed_on: date | None
    returned: Yuan = Field(description="recoveries returned so far (SKD-R1)")
    lawsuit_case_no: str | None
    lawsuit_accepted_on: date | None
    deadlines: dict[str, date]
    provisional_deadlines: list[str] = Field(
        default_factory=list,
        description="the deadlines above that rest on a provisional calendar day: their year "
        "is not published yet, and they are recomputed when it is (SPEC M-3)",
    )
    rejection_reason: str | None
    findings: list[str] = Field(description="XB-N1…N9 found by the manager's review")
    opinion: str | None = Field(description="XB: 贷款尽职审查意见")
    history: list[TransitionOut]
    documents: list[DocumentOut]
    recoveries: list[RecoveryOut]
    clawbacks: list[ClawbackOut] = Field(description="XB-R2 refunds decided")
    receivable: Yuan = Field(
        description="XB: what the bank owes the fund on this claim (distributions and refunds "
        "not yet received)"
    )
    returned_for: ReturnOut | None = Field(
        None,
        description="while returned for correction (退回补正): the open deficiencies and the "
        "stage that returned the claim",
    )


class ManagerReviewIn(In):
    """XB-C2 尽职审查: the fund manager's written opinion (within 7 working days). A
    finding (XB-N1…N9) means no compensation: it goes with `reject`, and `approve` goes
    with no finding."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "decision": "approve",
                    "findings": [],
                    "opinion": "已尽职审查：贷前调查、放款审批和贷后催收记录齐全，"
                    "未发现不予补偿情形",
                }
            ]
        }
    )

    decision: Literal["approve", "reject"] = Field(
        description="recommend compensation (approve) or not (reject)"
    )
    findings: list[
        Literal["XB-N1", "XB-N2", "XB-N3", "XB-N4", "XB-N5", "XB-N6", "XB-N7", "XB-N8", "XB-N9"]
    ] = Field(default_factory=list, max_length=9, description="any finding: no compensation")
    opinion: str = Field(min_length=1, max_length=4000, description="审查意见")


class CommitteeIn(In):
    """XB-C2 补偿会审: the committee's decision."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"decision": "approve", "comment": "经会审，同意按比例予以补偿"}]
        }
    )

    decision: Literal["approve", "reject"] = Field(description="同意补偿 / 不同意")
    comment: str = Field("", max_length=2000, description="会审意见 (required to reject)")

    @model_validator(mode="after")
    def _reason(self) -> CommitteeIn:
        if self.decision == "reject" and not self.comment:
            raise ValueError("a rejection needs a reason in comment")
        return self


class OverdueOut(BaseModel):
    claim_id: int
    bank_code: str
    program: str
    status: str
    stage: str = Field(description="the step that is late")
    deadline: date
    days_overdue: int
    provisional: bool = Field(
        False,
        description="the deadline rests on a provisional calendar day (its year is not "
        "published yet, SPEC M-3): overdue by the provisional calendar",
    )


class XbLimitOut(BaseModel):
    rule: str = "XB-Q1"
    quarter_end: date = Field(description="the most recent quarter end")
    outstanding_at_quarter_end: Yuan = Field(
        description="the basis: the bank's principal under the sub-fund at that quarter end"
    )
    annual_limit: Yuan = Field(description="the sub-fund's limit rate (base 5 %) of the basis")
    warning_at: Yuan = Field(description="the warning share (base 50 %) of the limit")
    used: Yuan = Field(description="compensation approved under the sub-fund this calendar year")
    headroom: Yuan
    under_review: Yuan = Field(
        description="the fund's share requested by the bank's claims under the sub-fund "
        "filed and not yet decided by the committee as of the date"
    )
    headroom_if_all_approved: Yuan = Field(
        description="the headroom left if every claim under review were approved: "
        "headroom − under_review, at least 0.00 (XB-Q1)"
    )
    warning: bool
    limit_reached: bool
    fund_code: str = Field(description="the sub-fund (助企成长贷 XB_ZQCZD is the base)")
    basis_source: Literal["evaluation", "computed"] = Field(
        description="evaluation: stored by the XB quarter-end evaluation `evaluation_id`; "
        "computed: no evaluation of that quarter end is stored"
    )
    evaluation_id: int | None
    limit_rate_bp: int
    warning_share_bp: int
    suspended: bool = Field(description="the bank's agreement with the sub-fund is suspended")
    suspended_agreement_ids: list[int]


class ProductExposure(BaseModel):
    product: str
    annualized_principal: Yuan = Field(description="年化担保本金 (rounded down to the fen)")
    compensated: Yuan = Field(description="累计代偿")
    compensation_rate: str | None = Field(description="代偿率, percent with 4 decimals")


class ExemptionOut(BaseModel):
    rule: str = "SKD-Q2"
    applies: bool
    first_year_ends: date | None
    cumulative_principal: Yuan
    principal_threshold: Yuan


class ExposureOut(BaseModel):
    bank_code: str
    program: str
    as_of: date
    cooperation_start: date | None
    products: list[ProductExposure]
    total: ProductExposure
    cap_rate_bp: int
    cap: Yuan = Field(description="3 % of the total annualized principal (SKD-Q1)")
    headroom: Yuan | None = Field(description="what may still be approved; null when exempt")
    under_review: Yuan = Field(
        description="the funds' share requested by the bank's claims filed and not yet "
        "decided as of the date (waiting for a review, or returned for correction)"
    )
    headroom_if_all_approved: Yuan | None = Field(
        description="the headroom left if every claim under review were approved in full: "
        "headroom − under_review, at least 0.00 (SKD-Q1); null when exempt (SKD-Q2)"
    )
    exemption: ExemptionOut
    outstanding_principal: Yuan
    npl_principal: Yuan
    npl_ratio: str | None = Field(description="不良率 (SKD-Q3), percent with 4 decimals")
    suspended: bool = Field(description="any of the bank's agreements suspended")
    suspended_agreement_ids: list[int]
    delinquency_buckets: list[BucketOut] = Field(
        default_factory=list,
        description="M-6: the bank's loans owing per delinquency bucket (NPL rule basis)",
    )


class XbExposureOut(BaseModel):
    bank_code: str
    program: str
    as_of: date
    outstanding_principal: Yuan = Field(description="XB principal outstanding as of the date")
    limit: XbLimitOut = Field(description="XB-Q1 for the base sub-fund 助企成长贷")
    fund_stopped: bool = Field(description="XB-Q2: the fund has stopped new business")
    suspended: bool
    suspended_agreement_ids: list[int]
    sub_funds: list[XbLimitOut] = Field(
        description="XB-Q1 per sub-fund the bank cooperates with, each under its own "
        "settings, the base first"
    )
    delinquency_buckets: list[BucketOut] = Field(
        default_factory=list,
        description="M-6: the bank's loans owing per delinquency bucket (NPL rule basis)",
    )
