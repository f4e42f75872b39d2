from __future__ import annotations

from datetime import date, datetime

from pydantic import BaseModel, ConfigDict, Field

from app.kit.money import Yuan


class LoanOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    program: str
    product: str | None
    bank_code: str
    agreement_id: int
    enterprise_id: int
    contract_no: str = Field(description="借款合同编号")
    principal: Yuan = Field(validation_alias="principal_fen", description="本金")
    annual_rate_bp: int = Field(description="年利率, bp")
    fee_rate_bp: int
    disbursed_on: date = Field(description="放款日")
    maturity_on: date = Field(description="到期日")
    security: str
    guarantor: str | None
    controller_guarantee: bool
    other_fiscal_support: bool
    status: str
    filed_on: date
    filing_deadline: date = Field(description="备案截止日 (working days, SPEC M-3)")
    filed_late: bool
    compensable: bool
    flags: list[str]
    renewed_from_id: int | None
    created_at: datetime
