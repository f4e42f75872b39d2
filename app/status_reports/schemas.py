"""Shapes of the monthly status files (XB-Rep): the request body as OpenAPI documents
it (the endpoint reads the raw body itself, `app.status_reports.files`) and the answers."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field

from app.kit.money import YuanIn
from app.kit.pagination import Page
from app.status_reports.files import CSV_TYPE, FIELDS, JSON_TYPE, MAX_ROWS

Kind = Literal[
    "unknown_contract",
    "outstanding_mismatch",
    "overdue_mismatch",
    "status_mismatch",
    "missing_loan",
]
KINDS: tuple[str, ...] = get_args(Kind)


class StatusRowIn(BaseModel):
    """One row of a status file: one loan contract as the bank's core system has it at
    the month end."""

    # documents the JSON body; the endpoint reads the raw body (`files.parse`)
    model_config = ConfigDict(extra="forbid")

    contract_no: str = Field(max_length=64, description="借款合同编号, as filed")
    outstanding: YuanIn = Field(description="未还本金 at the month end")
    overdue_since: date | None = Field(
        None, description="逾期起始日: the first day in arrears; null or empty when current"
    )
    principal_overdue: YuanIn = Field(description="逾期本金")
    interest_overdue: YuanIn = Field(description="逾期利息")
    status: Literal["current", "overdue", "settled", "written_off"] = Field(
        description="正常 current / 逾期 overdue / 结清 settled / 核销 written_off"
    )


# bank_jsb's file for 2026-11 in the demo (`make run`): its two SKD loans, both current
CSV_EXAMPLE = (
    ",".join(FIELDS) + "\n"
    "JSB-SKD-2026-0001,5000000.00,,0.00,0.00,current\n"
    "JSB-SKD-2026-0002,20000000.00,,0.00,0.00,current\n"
)
JSON_EXAMPLE: dict[str, Any] = {
    "rows": [
        {
            "contract_no": "JSB-SKD-2026-0001",
            "outstanding": "5000000.00",
            "overdue_since": None,
            "principal_overdue": "0.00",
            "interest_overdue": "0.00",
            "status": "current",
        },
        {
            "contract_no": "JSB-SKD-2026-0002",
            "outstanding": "20000000.00",
            "overdue_since": None,
            "principal_overdue": "0.00",
            "interest_overdue": "0.00",
            "status": "current",
        },
    ]
}


def request_body() -> dict[str, Any]:
    """The OpenAPI `requestBody` of `POST /status-reports/{year}/{month}`: both media
    types, so Swagger UI and generated clients offer them."""
    row = StatusRowIn.model_json_schema()
    return {
        "required": True,
        "description": "The month's loan-level status file, as CSV (UTF-8, a byte-order mark "
        'allowed, a header row naming the six columns) or as JSON `{"rows": [...]}`, '
        f"at most {MAX_ROWS:,} rows.",
        "content": {
            CSV_TYPE: {
                # binary: a generated client sends the file's bytes as they are
                "schema": {
                    "type": "string",
                    "format": "binary",
                    "description": "CSV with a header row",
                },
                "example": CSV_EXAMPLE,
            },
            JSON_TYPE: {
                "schema": {
                    "type": "object",
                    "required": ["rows"],
                    "additionalProperties": False,
                    "properties": {"rows": {"type": "array", "maxItems": MAX_ROWS, "items": row}},
                },
                "example": JSON_EXAMPLE,
            },
        },
    }


class DifferenceOut(BaseModel):
    """One difference between the file and the service's books as of the month end.
    Amounts are yuan strings, dates `YYYY-MM-DD`; `ours` / `theirs` are null where a side
    has nothing (an unknown contract, a loan missing from the file)."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    kind: Kind
    row_no: int | None = Field(description="the file's row (from 1); null for `missing_loan`")
    contract_no: str
    loan_id: int | None = Field(description="the loan, where the contract is known")
    field: str | None = Field(
        description="`outstanding`, `overdue_since`, `principal_overdue`, `interest_overdue` "
        "or `status`; null for `unknown_contract`"
    )
    ours: str | None = Field(description="the service's books")
    theirs: str | None = Field(description="the bank's file")


class StatusReportOut(BaseModel):
    """One submission (a version) of a bank's monthly status file and its reconciliation."""

    id: int
    bank_code: str
    year: int
    month: int
    month_end: date = Field(description="the date the books are compared as of")
    version: int = Field(description="1, 2, …: every different content is a new version")
    latest_version: int
    sha256: str = Field(description="SHA-256 of the canonical rows (not of the bytes)")
    media_type: str = Field(description="how this version was first sent")
    due_on: date = Field(description="the deadline: the programmes' report day of next month")
    submitted_on: date = Field(description="the business date of the submission")
    late: bool = Field(description="submitted after `due_on`")
    row_count: int
    difference_count: int = Field(description="the differences the caller sees (`scoped`)")
    counts: dict[str, int] = Field(description="the differences the caller sees, by kind")
    scoped: bool = Field(
        False,
        description="true: the differences, counts and `difference_count` are only those of "
        "the loans in the caller's scope (a city reviewer: its region's enterprises; a fund "
        "manager: its programme's loans), without unknown contracts; false: the whole file's",
    )
    submitted_by_id: int
    created_at: datetime
    replayed: bool = Field(
        False,
        description="the same content as the latest version: that version is returned and "
        "nothing was written",
    )
    differences: Page[DifferenceOut] = Field(
        description="the differences, in file order then missing loans; page on with "
        "`GET /status-reports/{year}/{month}?version=&cursor=`"
    )


class BankMonthOut(BaseModel):
    bank_code: str
    bank_name: str
    expected: bool = Field(
        description="an agreement active or suspended at the month end obliges the bank to "
        "report; a bank that reported without one is listed too"
    )
    due_on: date
    state: Literal["submitted", "missing", "not_yet_due"] = Field(
        description="`missing`: nothing submitted and the due date has passed"
    )
    report_id: int | None = None
    version: int | None = Field(None, description="the latest version")
    submitted_on: date | None = None
    late: bool | None = None
    difference_count: int | None = Field(
        None, description="the differences the caller sees in the latest version (`scoped`)"
    )
    scoped: bool = Field(
        False,
        description="true: `difference_count` counts only the loans in the caller's scope",
    )


class MonthOut(BaseModel):
    year: int
    month: int
    month_end: date
    today: date
    banks: list[BankMonthOut]
