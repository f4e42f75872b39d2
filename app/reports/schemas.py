"""HTTP shapes of the reports: the JSON rendering of a document (what `format=json`
returns, byte for byte the canonical JSON a stored run keeps), runs and submissions."""

from __future__ import annotations

from datetime import date, datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

from app.kit.schemas import In
from app.programs.fields import ProgramCode
from app.reports.runs import KINDS, parse_period, valid_scope

Format = Literal["json", "csv", "xlsx"]
RunFormat = Literal["json", "csv", "xlsx", "html"]
ReportKind = Literal["quarterly", "monthly", "annual"]
CellValue = str | int | bool | None


class ColumnOut(BaseModel):
    key: str
    zh: str
    en: str
    kind: Literal["text", "int", "money", "bp", "date", "bool"] = Field(
        description='`money`: a yuan string (`"1234.56"`, may be negative); `bp`: an '
        "integer of basis points (300 = 3 %); `int`; `date`: `YYYY-MM-DD`; `bool`; `text`"
    )


class SectionOut(BaseModel):
    key: str
    zh: str
    en: str
    note: str = Field(description="how the figures are read, with their rule IDs")
    columns: list[ColumnOut]
    rows: list[dict[str, CellValue]] = Field(description="one object per row, keyed by column")


class ChartOut(BaseModel):
    key: str
    zh: str
    en: str
    section: str = Field(description="the section whose rows the chart draws")
    x: str = Field(description="the column along the x axis")
    series: list[str] = Field(description="the columns drawn per x value")
    kind: Literal["bar", "line"]
    threshold_bp: int | None = Field(description="a threshold line, in basis points")


class ReportOut(BaseModel):
    """The report document as JSON (canonical: keys sorted, no whitespace, UTF-8)."""

    kind: ReportKind
    program: str
    period: str = Field(examples=["2026-Q3", "2026-11", "2026"])
    period_start: date
    period_end: date
    scope: str = Field(description='"" for the whole programme, else what it is narrowed to')
    title_zh: str
    title_en: str
    meta: dict[str, CellValue] = Field(
        description="`closed` (false: computed live for an open period, never stored), "
        "`cutoff_at`, and for a stored run `version`, `ledger_first_entry_id`, "
        "`ledger_last_entry_id`, `run_by`"
    )
    sections: list[SectionOut]
    charts: list[ChartOut]


class ChangeOut(BaseModel):
    section: str
    row: str = Field(description="the row's key: its leading text columns, else `#n`")
    column: str
    old: CellValue
    new: CellValue


class SubmissionOut(BaseModel):
    id: int
    run_id: int
    submitted_to: str
    due_on: date | None
    late: bool
    comment: str
    submitted_by_id: int
    at: datetime


class RunOut(BaseModel):
    id: int
    kind: str
    program: str
    period: str
    scope: str
    version: int
    latest: bool = Field(description="no later version of this report exists")
    period_end: date
    cutoff_at: datetime
    ledger_first_entry_id: int | None
    ledger_last_entry_id: int | None
    content_sha256: str
    changes: list[ChangeOut] = Field(
        description="every figure that differs from the previous version (empty for version 1)"
    )
    created_by_id: int
    created_at: datetime
    submissions: list[SubmissionOut]


class RunIn(In):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"kind": "quarterly", "program": "SKD", "period": "2026-Q3", "scope": ""}]
        }
    )

    kind: ReportKind
    program: ProgramCode
    period: str = Field(
        max_length=8,
        description="`YYYY-Qn` (quarterly), `YYYY-MM` (monthly), `YYYY` (annual)",
        examples=["2026-Q3"],
    )
    scope: str = Field(
        "",
        max_length=64,
        validate_default=True,
        description='"" the whole programme; `bank:<code>` one bank (the scope of a monthly '
        "report); `region:<code>` a city reviewer's region; `fund:<code>` a fund manager's "
        "fund where the programme limits it to its fund",
    )

    @field_validator("period")
    @classmethod
    def _period(cls, value: str, info: ValidationInfo) -> str:
        kind = info.data.get("kind")
        if kind in KINDS:
            parse_period(kind, value)  # ValueError: 422 naming body.period
        return value

    @field_validator("scope")
    @classmethod
    def _scope(cls, value: str, info: ValidationInfo) -> str:
        if not valid_scope(value):
            raise ValueError('scope is "", bank:<code>, region:<code> or fund:<code>')
        if info.data.get("kind") == "monthly" and not value.startswith("bank:"):
            raise ValueError("a monthly report is a bank's: scope bank:<code>")
        return value


class SubmissionIn(In):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"comment": "2026年第三季度报告已按期报送"}]}
    )

    submitted_to: str | None = Field(
        None,
        min_length=1,
        max_length=100,
        description="the recipient; default the programme's (XB-Rep: 领导小组办公室)",
    )
    comment: str = Field("", max_length=2000, description="备注 comment, kept with the submission")
