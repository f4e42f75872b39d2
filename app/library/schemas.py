from __future__ import annotations

from datetime import date, datetime

from pydantic import BaseModel, Field

from app.kit.schemas import In


class AdmissionIn(In):
    comment: str = Field("", max_length=2000, description="初审意见 reviewer's comment")


class RemovalIn(In):
    reason: str = Field(min_length=2, max_length=2000, description="出库原因 why it leaves")


class CriterionOut(BaseModel):
    code: str
    passed: bool
    detail: str


class LibraryEventOut(BaseModel):
    action: str = Field(description="admitted 入库 / updated 更新 / removed 出库")
    effective_on: date
    comment: str
    criteria: list[CriterionOut]
    actor_id: int
    at: datetime


class LibraryStatusOut(BaseModel):
    credit_code: str
    enterprise_name: str
    program: str = Field(description="the programme whose library this is (SKD-E1)")
    member: bool = Field(description="在库 currently a library member")
    member_since: date | None
    history: list[LibraryEventOut]
