"""Refused filings (SKD-A1): every rule refusal of a well-formed filing is kept as one
append-only `FilingRefusal` row — the bank, the enterprise, the contract number, the
rule IDs and codes, when — while the loan, the quota and the ledger stay untouched.

Well-formed means: the body passed validation, the enterprise is known, and the
programme's rules refused it (a 422 whose violations carry rule IDs). A malformed body
(422 `validation_error`), an unknown enterprise, a duplicate contract (409), a role
refusal (403) or a fault of the service (5xx) records nothing.

How the row is written: the refused request's own transaction is rolled back, as for
any refusal, and the row is written after that rollback on the same session (so on the
same database connection) in a transaction of its own (`app.kit.uow.after_rollback`).
A batch answers 200 with its refused items listed, so their rows are written with the
batch, at its commit; if the batch is refused whole at commit (SKD-F6's quota counted
again), they are written after its rollback, together with one row per item the quota
refused. The same refusal (same rules and codes) of the same filing by the same user
on the same business day is recorded once, so a request retried with its
`Idempotency-Key` — a refusal is not stored as the key's answer, so the retry runs
again — adds no second row. `GET /loans/refusals` lists them. Mounted before the loans
router, whose `/loans/{loan_id}` would otherwise take the path."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import Select, insert, select
from sqlalchemy.orm import Session

from app.auth.principal import CurrentPrincipal, Principal
from app.db import get_session
from app.errors import AppError, Unprocessable, problems
from app.kit.at_commit import pending
from app.kit.money import Yuan
from app.kit.pagination import PAGE_REFUSALS, Page, PageParams, page_params, paginate
from app.kit.uow import TransactionalRoute, after_rollback
from app.loans.schemas import LoanFile
from app.models import Enterprise, FilingRefusal, Fund
from app.programs.fields import ProgramCode

Row = dict[str, Any]


# --- what a refusal is --------------------------------------------------------------------
def rule_refusal(error: BaseException | None) -> tuple[list[str], list[str]] | None:
    """(rule IDs, codes) when `error` is a programme's rule refusal — a 422 whose
    violations (or itself) name rules — else None."""
    if not isinstance(error, Unprocessable):
        return None
    rules = {v.rule for v in error.errors if v.rule}
    if error.rule:
        rules.add(error.rule)
    if not rules:
        return None
    codes = list(dict.fromkeys(v.code or error.code for v in error.errors)) or [error.code]
    return sorted(rules), codes


def _writes_after(error: BaseException | None) -> bool:
    """A request that ended in a refusal (4xx) keeps its refusal records; one that ended
    in a fault of the service (5xx, or an exception that is not a refusal) keeps none."""
    return error is None or (isinstance(error, AppError) and error.status < 500)


def _row(
    data: LoanFile,
    *,
    enterprise_id: int,
    principal: Principal,
    today: date,
    now: datetime,
) -> Row:
    return {
        "bank_code": principal.bank_code,
        "program": data.program,
        "enterprise_credit_code": data.enterprise_credit_code.upper(),
        "enterprise_id": enterprise_id,
        "contract_no": data.contract_no,
        "principal_fen": data.principal,
        "disbursed_on": data.disbursed_on,
        "business_date": today,
        "refused_by_id": principal.user_id,
        "at": now,
    }


CHUNK = 2_000  # contract numbers per look-up of earlier records


def _identity(row: Row) -> tuple[Any, ...]:
    """What makes two records the same refusal: everything but the time."""
    return tuple(
        tuple(v) if isinstance(v, list) else v for k, v in sorted(row.items()) if k != "at"
    )


def _write(session: Session, rows: list[Row]) -> None:
    """Insert the rows, but none already recorded: the same refusal of the same filing by
    the same user on the same business day (a retried request)."""
    if not rows:
        return
    seen: set[tuple[Any, ...]] = set()
    columns = [getattr(FilingRefusal, k) for k in sorted(rows[0]) if k not in ("at", "id")]
    contracts = sorted({r["contract_no"] for r in rows})
    for start in range(0, len(contracts), CHUNK):
        found = session.execute(
            select(*columns).where(
                FilingRefusal.refused_by_id.in_(sorted({r["refused_by_id"] for r in rows})),
                FilingRefusal.business_date.in_(sorted({r["business_date"] for r in rows})),
                FilingRefusal.contract_no.in_(contracts[start : start + CHUNK]),
            )
        )
        keys = [c.key for c in columns]
        seen |= {_identity(dict(zip(keys, values, strict=True))) for values in found}
    fresh = []
    for row in rows:
        if (identity := _identity(row)) not in seen:
            seen.add(identity)
            fresh.append(row)
    if fresh:  # one multi-row statement (refusals are not in the audit trail)
        session.execute(insert(FilingRefusal), fresh)


# --- noting refusals during a filing request --------------------------------------------
_NOTED = "filing_refusals.noted"


@dataclass
class _Noted:
    """The request's refusals to keep if it is rolled back: rows with their own rules
    (`own`), and rows of filings that passed, refused only if the request ends in a rule
    refusal at commit (they take its rules)."""

    own: list[Row] = field(default_factory=list)
    if_refused: list[Row] = field(default_factory=list)

    def after(self, session: Session, error: BaseException | None) -> None:
        rows = list(self.own) if _writes_after(error) else []
        found = rule_refusal(error)
        if found is not None:
            rules, codes = found
            rows += [row | {"rules": rules, "codes": codes} for row in self.if_refused]
        _write(session, rows)


def _noted(session: Session) -> _Noted:
    noted: _Noted | None = session.info.get(_NOTED)
    if noted is None:
        noted = session.info[_NOTED] = _Noted()
        after_rollback(session, noted.after)
    return noted


def refused(
    session: Session,
    data: LoanFile,
    error: AppError,
    *,
    enterprise: Enterprise | None,
    principal: Principal,
    today: date,
    now: datetime,
    with_request: bool,
) -> None:
    """Note the refusal of `data` by `error`, if it is a rule refusal of a well-formed
    filing. `with_request`: the request goes on and commits (a batch's refused item) —
    the row is written at its commit; in any case it is written after the request's
    rollback should the request end in a refusal."""
    found = rule_refusal(error)
    if found is None or enterprise is None or principal.bank_code is None:
        return
    rules, codes = found
    row = _row(data, enterprise_id=enterprise.id, principal=principal, today=today, now=now)
    row |= {"rules": rules, "codes": codes}
    if with_request:
        mine: list[Row] = []
        rows = pending(session, "filing_refusals", lambda: mine, lambda s: _write(s, mine))
        rows.append(row)
    _noted(session).own.append(row)


def refused_at_commit(
    session: Session,
    items: list[tuple[LoanFile, Enterprise]],
    *,
    principal: Principal,
    today: date,
    now: datetime,
) -> None:
    """The filings in `items` passed the programme's rules but may still be refused when
    the request commits (SKD-F6's quota is counted again then): should the request end
    in a rule refusal, each gets its row, naming that refusal's rules."""
    if not items or principal.bank_code is None:
        return
    _noted(session).if_refused.extend(
        _row(data, enterprise_id=enterprise.id, principal=principal, today=today, now=now)
        for data, enterprise in items
    )


# --- GET /loans/refusals -----------------------------------------------------------------
router = APIRouter(route_class=TransactionalRoute)
SessionDep = Annotated[Session, Depends(get_session)]


class FilingRefusalOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    bank_code: str
    program: str
    enterprise_credit_code: str
    contract_no: str
    principal: Yuan = Field(validation_alias="principal_fen")
    disbursed_on: date
    rules: list[str] = Field(description="the SPEC rule IDs that refused the filing")
    codes: list[str] = Field(description="the refusal codes, as in the 422's `errors`")
    business_date: date = Field(description="the business day of the refused request")
    refused_by_id: int = Field(description="the bank user who sent the filing")
    at: datetime


def scoped_refusals(session: Session, principal: Principal) -> Select[Any]:
    """What the caller may see: a bank its own refusals; a fund manager those of its
    fund's programme; a city reviewer those of its region's enterprises; others all."""
    stmt = select(FilingRefusal)
    if principal.is_bank:
        stmt = stmt.where(FilingRefusal.bank_code == principal.bank_code)
    elif principal.role == "fund_manager":
        program = session.scalar(select(Fund.program).where(Fund.code == principal.fund_code))
        stmt = stmt.where(FilingRefusal.program == program)
    elif principal.role == "city_reviewer":
        stmt = stmt.join(Enterprise, Enterprise.id == FilingRefusal.enterprise_id).where(
            Enterprise.region_code == principal.region_code
        )
    return stmt


@router.get(
    "/loans/refusals",
    tags=["loans"],
    summary="Refused filings 备案拒绝记录 (SKD-A1)",
    description="Every filing the programme's rules refused (a 422 naming rule IDs, "
    "single or in a batch), kept for the annual assessment: bank, enterprise, contract "
    "number, principal, rule IDs and codes, business day and time. Append-only; the "
    "refused loan, the quota and the ledger were never touched. A bank sees its own, a "
    "fund manager its programme's, a city reviewer its region's enterprises'; others "
    "all. Filters: `program`, `bank_code`, `year` (of the business day).",
    responses=problems(*PAGE_REFUSALS),
)
def list_filing_refusals(
    session: SessionDep,
    principal: CurrentPrincipal,
    page: Annotated[PageParams, Depends(page_params)],
    program: Annotated[
        ProgramCode | None, Query(description="only this programme's", examples=["SKD"])
    ] = None,
    bank_code: Annotated[
        str | None, Query(max_length=32, description="only this bank's 银行代码", examples=["JSB"])
    ] = None,
    year: Annotated[
        int | None,
        Query(ge=2000, le=2100, description="refused in this year 年度", examples=[2026]),
    ] = None,
) -> Page[FilingRefusalOut]:
    stmt = scoped_refusals(session, principal)
    if program:
        stmt = stmt.where(FilingRefusal.program == program)
    if bank_code:
        stmt = stmt.where(FilingRefusal.bank_code == bank_code)
    if year is not None:
        stmt = stmt.where(
            FilingRefusal.business_date >= date(year, 1, 1),
            FilingRefusal.business_date <= date(year, 12, 31),
        )
    rows, cursor = paginate(session, stmt, FilingRefusal.id, page)
    return Page(items=[FilingRefusalOut.model_validate(r) for r in rows], next_cursor=cursor)
