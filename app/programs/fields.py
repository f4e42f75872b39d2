"""The programme code as a request field: any registered programme, listed as an enum in
the OpenAPI document (read from the registry when the document is built)."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import AfterValidator, Field

from app.programs.base import program_codes, registered_programs

# The programme a request means when it names none (the exposure view; the contract's
# default since v1).
DEFAULT_PROGRAM = "SKD"


def _known(code: str) -> str:
    if code not in program_codes():
        raise ValueError(f"unknown programme {code!r}; known: {', '.join(program_codes())}")
    return code


def _enum(schema: dict[str, Any]) -> None:
    schema["enum"] = list(program_codes())
    names = "; ".join(f"{p.code} {p.name_zh}" for p in registered_programs())
    schema["description"] = f"programme code: {names}"


ProgramCode = Annotated[str, AfterValidator(_known), Field(json_schema_extra=_enum)]


def claim_statuses() -> list[str]:
    found: set[str] = set()
    for p in registered_programs():
        found |= p.workflow.statuses
    return sorted(found)


def _known_status(status: str) -> str:
    if status not in claim_statuses():
        raise ValueError(f"unknown claim status {status!r}; known: {', '.join(claim_statuses())}")
    return status


def _status_enum(schema: dict[str, Any]) -> None:
    schema["enum"] = claim_statuses()


ClaimStatus = Annotated[str, AfterValidator(_known_status), Field(json_schema_extra=_status_enum)]


def quota_programs() -> list[str]:
    return [p.code for p in registered_programs() if p.has_quota]


def _quota_program(code: str) -> str:
    if code not in quota_programs():
        raise ValueError(f"{code!r} has no issuance quota; quotas: {', '.join(quota_programs())}")
    return code


def _quota_enum(schema: dict[str, Any]) -> None:
    schema["enum"] = quota_programs()


# a programme with an annual issuance quota (SKD-F6)
QuotaProgramCode = Annotated[
    str, AfterValidator(_quota_program), Field(json_schema_extra=_quota_enum)
]
