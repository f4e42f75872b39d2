from __future__ import annotations

from datetime import date, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from pydantic_core import InitErrorDetails, PydanticCustomError

from app.kit.money import Yuan, YuanIn
from app.kit.schemas import In
from app.programs.base import get_program, registered_programs
from app.programs.fields import ProgramCode


class GuarantorConsentOut(BaseModel):
    """The guarantor's consent letter (同意担保确认函) a guaranteed XB loan was filed with
    (XB-F2, 第十一条(三))."""

    guarantor: str | None = Field(description="合作担保机构: the loan's `guarantor`")
    reference: str = Field(description="确认函编号, the letter's reference number")
    dated_on: date = Field(description="确认函日期, the letter's date")


MAX_INSTALMENTS = 400  # a monthly schedule over 30 years fits

# --- examples (Swagger UI's prefilled bodies) -----------------------------------------
# Each is accepted as it stands by the demo (`make run`) for the demo user named, on a
# business date within the filing window of its `disbursed_on` (SKD 5, XB 10 working
# days; early December 2026): after one is sent, give the next a new `contract_no`, and
# on a later date move `disbursed_on` / `maturity_on` (M-3, SKD-F2, XB-F2).
SKD_FILING_EXAMPLE: dict[str, Any] = {
    # bank_ccb: 苏州同创工业软件有限公司 (SKD library, its earlier loan repaid; SKD1 band)
    "program": "SKD",
    "enterprise_credit_code": "91320500MA1XB0006M",
    "contract_no": "CCB-SKD-2026-0101",
    "principal": "1500000.00",
    "annual_rate_bp": 345,
    "disbursed_on": "2026-12-01",
    "maturity_on": "2027-12-01",
    "security": "credit",
    "controller_guarantee": True,
    "other_fiscal_support": False,
    "fee_rate_bp": 0,
}
SKD_SCHEDULE_EXAMPLE: dict[str, Any] = {
    **SKD_FILING_EXAMPLE,
    "contract_no": "CCB-SKD-2026-0102",
    "schedule": [
        {"due_on": "2027-03-01", "principal": "0.00", "interest": "12937.50"},
        {"due_on": "2027-06-01", "principal": "500000.00", "interest": "12937.50"},
        {"due_on": "2027-09-01", "principal": "500000.00", "interest": "8625.00"},
        {"due_on": "2027-12-01", "principal": "500000.00", "interest": "4312.50"},
    ],
}
XB_CREDIT_FILING_EXAMPLE: dict[str, Any] = {
    # bank_lyg: 连云港连云示范企业29号有限公司 (连云区, a contributor district, XB-E1)
    "program": "XB",
    "enterprise_credit_code": "91320703MA1XC0029E",
    "contract_no": "LYG-XB-2026-1201",
    "principal": "1000000.00",
    "annual_rate_bp": 375,
    "disbursed_on": "2026-12-01",
    "maturity_on": "2027-12-01",
    "security": "credit",
    "controller_guarantee": True,
    "fee_rate_bp": 0,
}
RENEWAL_EXAMPLE: dict[str, Any] = {
    # bank_jsb renews JSB-SKD-2026-0001 (南京智芯微电子, the demo's loan 1) (SKD-F7)
    "contract_no": "JSB-SKD-2026-0001-XD",
    "principal": "5000000.00",
    "annual_rate_bp": 345,
    "disbursed_on": "2026-12-01",
    "maturity_on": "2027-12-01",
    "security": "credit",
    "controller_guarantee": True,
}
XB_GUARANTEED_FILING_EXAMPLE: dict[str, Any] = {
    # bank_lyg: 连云港开发区示范企业30号有限公司, guaranteed, with the consent letter (XB-F2)
    "program": "XB",
    "enterprise_credit_code": "91320700MA1XC00308",
    "contract_no": "LYG-XB-2026-1202",
    "principal": "2000000.00",
    "annual_rate_bp": 330,
    "disbursed_on": "2026-12-01",
    "maturity_on": "2027-12-01",
    "security": "guaranteed",
    "guarantor": "连云港信用融资担保有限公司",
    "guarantor_consent": {"reference": "连信担确〔2026〕0030号", "dated_on": "2026-11-27"},
    "controller_guarantee": True,
    "fee_rate_bp": 50,
}


class LoanOut(BaseModel):
    model_config = ConfigDict(from_attributes=True, validate_by_name=True, validate_by_alias=True)

    id: int
    program: str
    product: str | None
    bank_code: str
    agreement_id: int
    enterprise_id: int
    enterprise_credit_code: str = Field(description="统一社会信用代码 of the enterprise")
    enterprise_name: str = Field(description="企业名称, as registered")
    contract_no: str = Field(description="借款合同编号")
    principal: Yuan = Field(validation_alias="principal_fen", description="本金")
    annual_rate_bp: int = Field(description="年利率, bp")
    fee_rate_bp: int
    disbursed_on: date = Field(description="放款日")
    maturity_on: date = Field(description="到期日")
    security: str
    guarantor: str | None
    guarantor_consent: GuarantorConsentOut | None = Field(
        None,
        description="XB guaranteed loans: the guarantor's consent letter (XB-F2); null "
        "otherwise (and on guaranteed XB loans filed before the letter was recorded)",
    )
    controller_guarantee: bool
    other_fiscal_support: bool
    status: str
    filed_on: date
    filing_deadline: date = Field(
        description="备案截止日 (working days, SPEC M-3): the disbursement plus the "
        "programme's filing window (SKD 5, XB 10 working days). It binds the loan only when "
        "`filing_deadline_applies`; on a guaranteed XB loan it is the date for reference "
        "and never makes the loan late (XB-F2)"
    )
    filing_deadline_applies: bool = Field(
        True,
        description="whether filing after `filing_deadline` makes the loan late: true for "
        "SKD loans (SKD-F2) and XB credit loans (XB-F2, late → not compensable, XB-N7); "
        "false for guaranteed XB loans, which carry the guarantor's consent letter instead",
    )
    filing_deadline_provisional: bool = Field(
        False,
        description="the deadline rests on a provisional calendar day: its year is not "
        "published yet, and it is recomputed when it is (SPEC M-3)",
    )
    filed_late: bool
    compensable: bool
    flags: list[str]
    renewed_from_id: int | None
    fund_code: str | None = Field(description="SKD: the city fund; XB: the sub-fund")
    created_at: datetime


class LoanView(LoanOut):
    as_of: date = Field(description="the date the position below is computed for")
    outstanding_principal: Yuan = Field(description="未还本金 as of the date")
    days_past_due: int = Field(
        description="逾期天数 as of the date (0 when not overdue), as the programme's claim "
        "rule counts them (SKD-C2: principal; XB-C1: principal or interest), from the "
        "earliest instalment left unpaid or the bank's reported date where earlier (SPEC M-6)"
    )
    overdue_since: date | None = Field(
        None, description="逾期起始日 behind `days_past_due`: the first day in arrears"
    )
    arrears: ArrearsOut | None = Field(None, description="both views of the arrears (SPEC M-6)")


class LoanEventOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    action: str = Field(description="e.g. deadline_recomputed (SPEC M-3)")
    comment: str
    details: dict[str, Any]
    actor_id: int | None
    business_date: date
    at: datetime


class LoanTransitionOut(BaseModel):
    """One status change of the loan (active → repaid, renewed, claimed, …)."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    action: str = Field(description="e.g. repay_in_full, renew (SKD-F7), claim, compensate")
    from_status: str
    to_status: str
    actor_id: int | None
    reason: str
    business_date: date = Field(description="the business date the change takes effect")
    at: datetime = Field(description="when it was recorded")


class LoanDetail(LoanView):
    schedule: list[InstalmentOut] = Field(
        description="还款计划 as filed, each instalment settled as of the date"
    )
    delinquency_reports: list[DelinquencyOut] = Field(
        description="every arrears report of the bank, oldest first (SPEC M-6)"
    )
    history: list[LoanEventOut] = Field(
        description="changes to the loan's stored facts after filing, oldest first "
        "(repayments are under /repayments; status changes under `status_history`)"
    )
    status_history: list[LoanTransitionOut] = Field(
        description="the loan's status changes, oldest first, each checked against the "
        "loan's transition table (append-only)"
    )


class RepaymentIn(In):
    """A repayment as the bank's core system booked it: principal, interest or both.
    Each settles the earliest instalments' unpaid part first (SPEC M-6)."""

    model_config = ConfigDict(
        json_schema_extra={"examples": [{"paid_on": "2026-12-01", "principal": "1000000.00"}]}
    )

    paid_on: date = Field(description="还款日")
    principal: YuanIn = Field(
        default=0, json_schema_extra={"default": "0.00"}, description="归还本金 (default 0)"
    )
    interest: YuanIn = Field(
        default=0,
        json_schema_extra={"default": "0.00"},
        description="归还利息 (default 0): at most the schedule's interest still unpaid",
    )

    @model_validator(mode="after")
    def _positive(self) -> RepaymentIn:
        if self.principal <= 0 and self.interest <= 0:
            raise ValueError("principal or interest must be more than zero")
        return self


class DelinquencyIn(In):
    """The loan's arrears as the bank's core system reports them on a date (SPEC M-6).
    Kept as history, never overwritten; where it is worse than the service's own books,
    the bank's view counts."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "as_of": "2026-11-30",
                    "overdue_since": "2026-11-21",
                    "principal_overdue": "0.00",
                    "interest_overdue": "14375.00",
                    "outstanding": "5000000.00",
                    "comment": "核心系统：11月21日结息未付",
                }
            ]
        }
    )

    as_of: date = Field(description="报告日: the date the figures are as of (not in the future)")
    overdue_since: date | None = Field(
        None,
        description="逾期起始日: the first day in arrears; null (or left out) when the loan "
        "is current",
    )
    principal_overdue: YuanIn = Field(description="逾期本金")
    interest_overdue: YuanIn = Field(description="欠息")
    outstanding: YuanIn | None = Field(None, description="贷款余额, where the report gives it")
    comment: str = Field("", max_length=2000)


class BankViewOut(BaseModel):
    report_id: int
    as_of: date
    overdue_since: date | None
    principal_overdue: Yuan
    interest_overdue: Yuan
    source: str = Field(description="bank (POST …/delinquency) or status_file (monthly file)")


class ArrearsOut(BaseModel):
    """The loan's arrears as of the date (SPEC M-6): on the service's books (the schedule
    against the payments) and as the bank last reported them."""

    principal_overdue: Yuan = Field(description="逾期本金 on our books")
    interest_overdue: Yuan = Field(description="欠息 on our books")
    principal_overdue_since: date | None
    interest_overdue_since: date | None
    own_days_past_due: int = Field(description="on our books, principal or interest")
    bank_days_past_due: int = Field(description="by the bank's latest report, 0 without one")
    bank_report: BankViewOut | None = Field(description="the bank's latest report by the date")
    bucket: str = Field(description="delinquency bucket by the programme's NPL rule basis")


class InstalmentOut(BaseModel):
    seq: int
    due_on: date
    principal: Yuan
    interest: Yuan
    principal_paid: Yuan = Field(description="settled by principal paid by the date")
    interest_paid: Yuan = Field(description="settled by interest paid by the date")
    state: Literal["paid", "due", "overdue", "partly_paid"] = Field(
        description="paid in full; due (not yet due, or due today); overdue (due before "
        "the date and unpaid); partly_paid (due later, partly settled ahead)"
    )


class DelinquencyOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    loan_id: int
    as_of: date
    overdue_since: date | None
    principal_overdue: Yuan = Field(validation_alias="principal_overdue_fen")
    interest_overdue: Yuan = Field(validation_alias="interest_overdue_fen")
    outstanding: Yuan | None = Field(validation_alias="outstanding_fen")
    source: str
    status_report_id: int | None
    comment: str
    reported_by_id: int
    created_at: datetime


class GuarantorConsentIn(In):
    """The guarantor's consent letter (同意担保确认函, XB-F2): issued by the loan's
    `guarantor` before disbursement (第十一条(三), (四))."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"reference": "连信担确〔2026〕0030号", "dated_on": "2026-11-27"}]
        }
    )

    reference: str = Field(min_length=1, max_length=64, description="确认函编号")
    dated_on: date = Field(
        description="确认函日期: on or before `disbursed_on`, and at most 12 months before it"
    )


class InstalmentIn(In):
    """One instalment of the repayment schedule (还款计划): what is due on a date."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"due_on": "2027-06-01", "principal": "500000.00", "interest": "12937.50"}]
        }
    )

    due_on: date = Field(description="应还日期: after the disbursement, on or before maturity")
    principal: YuanIn = Field(description="应还本金 (≥ 0)")
    interest: YuanIn = Field(
        default=0, json_schema_extra={"default": "0.00"}, description="应还利息 (≥ 0; default 0)"
    )


class LoanTerms(In):
    """A loan's contract terms, as filed (备案) or as a renewal's new loan."""

    product: str | None = Field(
        None, max_length=16, description="optional: checked against the revenue band"
    )
    contract_no: str = Field(min_length=1, max_length=64, description="借款合同编号")
    principal: YuanIn = Field(description="本金")
    annual_rate_bp: int = Field(ge=1, le=10000, description="年利率, bp (395 = 3.95 %)")
    disbursed_on: date = Field(description="放款日")
    maturity_on: date = Field(description="到期日")
    security: Literal["credit", "guaranteed", "collateral", "ip_pledge"] = Field(
        description="credit 信用 / guaranteed 保证 / collateral 抵押 / ip_pledge 知识产权质押"
    )
    guarantor: str | None = Field(None, min_length=1, max_length=200)
    guarantor_consent: GuarantorConsentIn | None = Field(
        None,
        description="XB guaranteed loans: required, the guarantor's consent letter "
        "(同意担保确认函, XB-F2), whose guarantor is `guarantor`. Refused on credit loans "
        "and on SKD loans (`guarantor_consent_not_applicable`)",
    )
    controller_guarantee: bool = Field(description="实际控制人夫妻双方连带保证 (SKD-P2)")
    other_fiscal_support: bool = Field(False, description="已享受其他财政专项贷款政策 (SKD-F5)")
    fee_rate_bp: int = Field(0, ge=0, le=10000, description="fees, bp (credit loans: 0)")
    schedule: list[InstalmentIn] | None = Field(
        None,
        min_length=1,
        max_length=MAX_INSTALMENTS,
        description="还款计划: the instalments in date order (SPEC M-6). Their principal "
        "sums to `principal` exactly; each is due after `disbursed_on` and on or before "
        "`maturity_on`. Default: one bullet instalment of the whole principal at maturity "
        "(no interest). Days past due count from the earliest instalment left unpaid.",
    )

    def cross_field_problems(self) -> list[tuple[str, str]]:
        """Every problem across fields, as (field, message): all are reported at once."""
        problems = []
        if self.maturity_on <= self.disbursed_on:
            problems.append(("maturity_on", "maturity_on must be after disbursed_on"))
        if self.principal <= 0:
            problems.append(("principal", "principal must be more than zero"))
        return problems

    @model_validator(mode="after")
    def _cross_field(self) -> LoanTerms:
        problems = self.cross_field_problems()
        if problems:
            raise ValidationError.from_exception_data(
                type(self).__name__,
                [
                    InitErrorDetails(
                        type=PydanticCustomError("value_error", message),
                        loc=(field,),
                        input=getattr(self, field),
                    )
                    for field, message in problems
                ],
            )
        return self


class LoanFile(LoanTerms):
    """A loan to file (备案) under a programme: 苏科贷 (SKD) or 信保基金 (XB)."""

    model_config = ConfigDict(json_schema_extra={"examples": [SKD_FILING_EXAMPLE]})

    program: ProgramCode
    enterprise_credit_code: str = Field(
        min_length=18, max_length=18, description="统一社会信用代码"
    )
    sub_fund: str | None = Field(
        None,
        min_length=1,
        max_length=32,
        description="XB only: the sub-fund (子基金), default the base 助企成长贷 XB_ZQCZD",
    )

    def cross_field_problems(self) -> list[tuple[str, str]]:
        problems = super().cross_field_problems()
        if self.sub_fund is not None and "sub_fund" not in get_program(self.program).filing_fields:
            owners = [p.code for p in registered_programs() if "sub_fund" in p.filing_fields]
            problems.append(("sub_fund", f"sub_fund goes with program {' or '.join(owners)}"))
        return problems


class LoanRenewal(LoanTerms):
    """The new loan of a renewal (续贷, SKD-F7): same enterprise and programme as the loan
    it renews; checked like any filing."""

    model_config = ConfigDict(json_schema_extra={"examples": [RENEWAL_EXAMPLE]})


class QuotaIn(In):
    model_config = ConfigDict(json_schema_extra={"examples": [{"amount": "2000000000.00"}]})

    amount: YuanIn = Field(description="年度投放额度上限 (SKD-F6)")


class QuotaOut(BaseModel):
    program: str
    year: int
    amount: Yuan
    used: Yuan = Field(description="principal filed with a disbursement in this year")
    remaining: Yuan


class LoanBatchIn(In):
    """Up to 10,000 filings, each checked exactly like `POST /loans`."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"items": [XB_CREDIT_FILING_EXAMPLE, XB_GUARANTEED_FILING_EXAMPLE]}]
        }
    )

    items: list[dict[str, Any]] = Field(
        min_length=1,
        max_length=10_000,
        description="each item is a loan filing with the fields of POST /loans (LoanFile)",
        json_schema_extra={"items": {"$ref": "#/components/schemas/LoanFile"}},
    )


class BatchItemError(BaseModel):
    loc: list[str | int]
    msg: str
    code: str | None = None
    rule: str | None = None


class BatchItemResult(BaseModel):
    index: int = Field(description="position of the item in the request")
    contract_no: str | None
    status: Literal["accepted", "refused"]
    loan_id: int | None = None
    filing_deadline: date | None = None
    filing_deadline_applies: bool | None = Field(
        None, description="as in POST /loans: false for guaranteed XB loans (XB-F2)"
    )
    filing_deadline_provisional: bool | None = Field(
        None, description="the deadline rests on a provisional calendar day (SPEC M-3)"
    )
    compensable: bool | None = None
    flags: list[str] = Field(default_factory=list)
    code: str | None = Field(None, description="the refusal's code (as POST /loans would answer)")
    errors: list[BatchItemError] = Field(default_factory=list)


class LoanBatchOut(BaseModel):
    accepted: int
    refused: int
    results: list[BatchItemResult]


class BatchJobOut(BaseModel):
    """A batch filed as a job (`POST /loans/batch` with `Prefer: respond-async`)."""

    id: int
    status: Literal["queued", "running", "succeeded", "failed"] = Field(
        description="queued → running → succeeded (every item has its result) or failed "
        "(`error` says why; the items before `done` keep their results)"
    )
    bank_code: str
    submitted_by_id: int
    business_date: date = Field(description="the day the items are filed on: the submission's")
    total: int = Field(description="items in the batch")
    done: int = Field(description="items whose chunk has committed (accepted + refused)")
    accepted: int
    refused: int
    created_at: datetime
    started_at: datetime | None = None
    finished_at: datetime | None = None
    error: str | None = None
    results_url: str = Field(
        description="the per-item results of the items done so far, in order, paginated: "
        "each exactly as the synchronous POST /loans/batch lists it"
    )
