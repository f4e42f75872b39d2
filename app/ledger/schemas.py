"""API shapes of the ledger. Amounts are signed yuan strings: debit positive."""

from __future__ import annotations

from datetime import date, datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from app.kit.money import Yuan, YuanIn
from app.kit.schemas import In


class LegOut(BaseModel):
    account_code: str
    fund_code: str
    kind: str
    counterparty: str | None
    side: Literal["debit", "credit"]
    amount: Yuan = Field(description="signed: debit positive, credit negative")
    loan_id: int | None = Field(
        None,
        description="the loan this leg concerns 所涉贷款: a guarantee exposure's legs name "
        "their loan (a batch's one entry carries a leg pair per loan); other legs none",
    )


class EntryOut(BaseModel):
    id: int = Field(description="the entry's place in the one gapless journal sequence")
    event_type: str
    event_id: str
    business_date: date
    recorded_at: datetime
    description: str
    reverses_entry_id: int | None
    reversed_by_entry_id: int | None
    prev_hash: str
    hash: str
    legs: list[LegOut]


class AccountOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    code: str
    fund_code: str
    kind: str
    counterparty: str | None
    type: str
    normal_side: str
    name: str


class AccountBalanceOut(AccountOut):
    balance: Yuan = Field(description="signed sum of legs: debit positive")
    normal_balance: Yuan = Field(description="the balance seen from the account's normal side")


class StatementLineOut(BaseModel):
    entry_id: int
    business_date: date
    event_type: str
    event_id: str
    description: str
    amount: Yuan
    running_balance: Yuan
    loan_id: int | None = Field(
        None, description="the loan the line's leg concerns, if it names one 所涉贷款"
    )


class StatementOut(BaseModel):
    account: AccountOut
    since: date | None
    until: date | None
    opening_balance: Yuan
    closing_balance: Yuan
    lines: list[StatementLineOut]


class TrialAccountOut(BaseModel):
    code: str
    name: str
    type: str
    debit: Yuan
    credit: Yuan


class TrialBookOut(BaseModel):
    fund_code: str
    accounts: list[TrialAccountOut]
    total_debit: Yuan
    total_credit: Yuan
    balanced: bool


class TrialBalanceOut(BaseModel):
    as_of: date | None
    balanced: bool = Field(description="every book's debits equal its credits")
    books: list[TrialBookOut]


class ChainBreakOut(BaseModel):
    entry_id: int | None
    problem: str


class VerifyOut(BaseModel):
    ok: bool
    entries_checked: int
    head_entry_id: int = Field(description="the last entry id recorded by the chain head")
    first_break: ChainBreakOut | None
    book_sums: dict[str, Yuan] = Field(description="every book's legs summed: all zero")


class ReversalIn(In):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"reason": "出资到账金额录入错误，红字冲销后重新入账"}]}
    )

    reason: str = Field(min_length=2, max_length=2000, description="更正原因")
    business_date: date | None = Field(None, description="defaults to today")


class ContributionIn(In):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {"contributor": "JS_FINANCE", "amount": "50000000.00", "paid_on": "2026-11-20"}
            ]
        }
    )

    contributor: str = Field(
        min_length=1, max_length=32, description="出资人 code, registered with the fund"
    )
    amount: YuanIn = Field(description="实缴金额 amount paid in, more than 0.00")
    paid_on: date = Field(description="到账日期 the day the money arrived (business date)")


class ContributionOut(BaseModel):
    entry_id: int
    fund_code: str
    contributor: str
    contributor_name: str
    amount: Yuan
    paid_on: date
    paid_to_date: Yuan
    committed: Yuan


class CapitalOut(BaseModel):
    contributor: str
    contributor_name: str
    region_code: str | None
    committed: Yuan = Field(description="认缴")
    paid_in: Yuan = Field(description="实缴 as of the date")
    unpaid: Yuan = Field(description="尚未实缴")


class FundCapitalOut(BaseModel):
    fund_code: str
    as_of: date | None
    committed: Yuan
    paid_in: Yuan
    contributors: list[CapitalOut]
    net_value: Yuan = Field(description="基金净值: assets less liabilities in the fund's book")
    loans_outstanding: Yuan | None = Field(
        None, description="XB pool: principal outstanding on loans under the fund (XB-F1)"
    )
    leverage: str | None = Field(
        None, description="放大倍数: loans outstanding ÷ net value, 2 decimals (XB-F1)"
    )
    leverage_target: int | None = Field(None, description="XB-F1: at least 10 ×")
