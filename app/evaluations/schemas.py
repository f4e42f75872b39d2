from __future__ import annotations

from datetime import date, datetime

from pydantic import BaseModel, ConfigDict, Field

from app.kit.money import Yuan
from app.kit.schemas import In
from app.programs.fields import ProgramCode


class QuarterEndIn(In):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"program": "SKD", "year": 2026, "quarter": 3}]}
    )

    program: ProgramCode = Field(
        description="the programme: SKD (SKD-Q3, run by the province reviewer) or XB (XB-Q1, "
        "run by the XB fund manager)"
    )
    year: int = Field(ge=2000, le=2100, description="年度")
    quarter: int = Field(ge=1, le=4, description="季度 1–4: the quarter just ended")


class XbQuarterLimitOut(BaseModel):
    rule: str = "XB-Q1"
    year: int = Field(description="the calendar year whose decisions the basis serves")
    limit_rate_bp: int = Field(description="the sub-fund's limit rate (base: 500 = 5 %)")
    warning_share_bp: int = Field(description="the warning share (base: 5000 = 50 %)")
    annual_limit: Yuan
    warning_at: Yuan
    used: Yuan = Field(description="compensation approved under the sub-fund that year so far")
    warning: bool = Field(description="risk warning: the usage reached the warning share")
    limit_reached: bool
    suspended: bool = Field(description="the bank's agreement with the sub-fund is suspended")


class BankResultOut(BaseModel):
    bank_code: str
    outstanding_principal: Yuan = Field(
        description="principal outstanding at quarter end: SKD the bank's SKD principal; XB "
        "the bank's principal under the sub-fund, the basis of its annual limit (XB-Q1)"
    )
    npl_principal: Yuan = Field(description="of which ≥ 90 days past due")
    npl_ratio_bp: int | None = Field(description="rounded down; null with nothing outstanding")
    threshold_bp: int = Field(
        description="SKD: the NPL threshold (SKD-Q3); XB: the sub-fund's limit rate (XB-Q1)"
    )
    breached: bool = Field(
        description="SKD: NPL ratio ≥ threshold; XB: the year's compensation reached the limit"
    )
    decision: str = Field(description="suspended 暂停 / lifted 恢复 / unchanged")
    agreement_ids: list[int]
    fund_code: str | None = Field(None, description="XB: the sub-fund of this row")
    limit: XbQuarterLimitOut | None = Field(
        None, description="XB: the annual limit this basis gives (XB-Q1); null for SKD"
    )


class EvaluationOut(BaseModel):
    id: int
    program: str
    year: int
    quarter: int
    quarter_end: date
    run_at: datetime
    banks: list[BankResultOut]
