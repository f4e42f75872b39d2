from __future__ import annotations

from datetime import date, datetime

from pydantic import BaseModel, ConfigDict, Field

from app.kit.schemas import In


class AdmissionIn(In):
    """The city reviewer's admission (入库审核): the criteria are checked by the service."""

    model_config = ConfigDict(
        json_schema_extra={"examples": [{"comment": "材料齐全，符合入库条件，同意入库"}]}
    )

    comment: str = Field("", max_length=2000, description="初审意见 reviewer's comment")


class RemovalIn(In):
    """Why the enterprise leaves the library (出库)."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"reason": "企业环保信用评价降为红色（SKD-F4），不再符合入库条件"}]
        }
    )

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
