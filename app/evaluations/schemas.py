from __future__ import annotations

from datetime import date, datetime
from typing import Literal

from pydantic import BaseModel, Field

from app.kit.money import Yuan
from app.kit.schemas import In


class QuarterEndIn(In):
    program: Literal["SKD"] = Field(description="SKD (SKD-Q3); XB arrives with its programme")
    year: int = Field(ge=2000, le=2100)
    quarter: int = Field(ge=1, le=4)


class BankResultOut(BaseModel):
    bank_code: str
    outstanding_principal: Yuan = Field(description="SKD principal outstanding at quarter end")
    npl_principal: Yuan = Field(description="of which ≥ 90 days past due")
    npl_ratio_bp: int | None = Field(description="rounded down; null with nothing outstanding")
    threshold_bp: int
    breached: bool
    decision: str = Field(description="suspended 暂停 / lifted 恢复 / unchanged")
    agreement_ids: list[int]


class EvaluationOut(BaseModel):
    id: int
    program: str
    year: int
    quarter: int
    quarter_end: date
    run_at: datetime
    banks: list[BankResultOut]
