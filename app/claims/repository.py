"""All SQL of the claims package."""

from __future__ import annotations

import functools
from datetime import date
from typing import Any

from sqlalchemy import ColumnElement, Select, and_, bindparam, exists, false, func, or_, select
from sqlalchemy.orm import Session, defer

from app.auth.principal import Principal
from app.models import (
    Agreement,
    Bank,
    Claim,
    ClaimClawback,
    ClaimDocument,
    ClaimReceipt,
    ClaimRecovery,
    ClaimReturn,
    ClaimShare,
    ClaimTransition,
    Enterprise,
    Fund,
    Loan,
    LoanDayTotal,
    Region,
)
from app.programs.base import registered_programs


def region_descendants(session: Session, code: str) -> list[str]:
    """The region and every region below it (counties, districts, functional zones)."""
    found, frontier = [code], [code]
    while frontier:
        children = list(
            session.scalars(select(Region.code).where(Region.parent_code.in_(frontier)))
        )
        frontier = [c for c in children if c not in found]
        found += frontier
    return found


def scoped_claims(session: Session, principal: Principal) -> Select[Claim]:
    """Claims the caller may see: a bank its own; a city reviewer its region's, in the
    programmes that have a city review; a fund manager what a programme gives its fund
    (the SKD province fund's manager every SKD claim, the XB pool's every XB claim), else
    the claims its city fund pays."""
    stmt = select(Claim)
    if principal.is_bank:
        stmt = stmt.where(Claim.bank_code == principal.bank_code)
    elif principal.role == "city_reviewer":
        regions = region_descendants(session, principal.region_code or "")
        programs = [
            p.code
            for p in registered_programs()
            if any(s.role == principal.role for s in p.workflow.stages.values())
        ]
        stmt = stmt.where(Claim.program.in_(programs), Claim.region_code.in_(regions))
    elif principal.role == "fund_manager":
        scopes = [c for p in registered_programs() if (c := p.claim_scope(principal)) is not None]
        stmt = stmt.where(or_(*scopes) if scopes else Claim.city_fund_code == principal.fund_code)
    return stmt


def awaiting(principal: Principal) -> ColumnElement[bool]:
    """Claims waiting for the caller's action, read from the programmes' workflows: in a
    status whose stage the caller's role acts on, of the stage's fund where it names one
    (SKD: the claim's city fund pays, the province fund reimburses), and not a claim the
    caller already acted on at another stage (maker-checker, SKD-C3); for the role that
    resubmits (the bank), claims returned for correction. The caller's scope
    (`scoped_claims`) narrows it further: a city reviewer's region, a bank's own claims."""
    found: list[ColumnElement[bool]] = []
    for program in registered_programs():
        wf = program.workflow
        for status, stage in wf.waiting_for(principal.role):
            cond = and_(Claim.program == program.code, Claim.status == status)
            where = getattr(stage.acting_fund, "where", None)
            if where is not None:
                cond = and_(cond, where(principal.fund_code))
            acted = exists().where(
                ClaimTransition.claim_id == Claim.id,
                ClaimTransition.actor_id == principal.user_id,
                ClaimTransition.action != stage.return_action,
            )
            found.append(and_(cond, ~acted))
        if principal.role == wf.resubmission_role:
            found.append(and_(Claim.program == program.code, Claim.status == "returned"))
    return or_(*found) if found else false()


def filter_claims(
    stmt: Select[Claim],
    *,
    program: str | None,
    status: str | None,
    bank_code: str | None,
    loan_id: int | None,
    contract_no: str | None = None,
    enterprise_credit_code: str | None = None,
    waiting_for: Principal | None = None,
) -> Select[Claim]:
    if program:
        stmt = stmt.where(Claim.program == program)
    if status:
        stmt = stmt.where(Claim.status == status)
    if bank_code:
        stmt = stmt.where(Claim.bank_code == bank_code)
    if loan_id is not None:
        stmt = stmt.where(Claim.loan_id == loan_id)
    if contract_no:
        stmt = stmt.where(Claim.loan_id.in_(select(Loan.id).where(Loan.contract_no == contract_no)))
    if enterprise_credit_code:
        stmt = stmt.where(
            Claim.loan_id.in_(
                select(Loan.id)
                .join(Enterprise, Enterprise.id == Loan.enterprise_id)
                .where(Enterprise.credit_code == enterprise_credit_code)
            )
        )
    if waiting_for is not None:
        stmt = stmt.where(awaiting(waiting_for))
    return stmt


def loan_facts(session: Session, loan_ids: list[int]) -> dict[int, tuple[str, str, str]]:
    """Per loan: (contract number, enterprise name, enterprise credit code)."""
    if not loan_ids:
        return {}
    rows = session.execute(
        select(Loan.id, Loan.contract_no, Enterprise.name, Enterprise.credit_code)
        .join(Enterprise, Enterprise.id == Loan.enterprise_id)
        .where(Loan.id.in_(set(loan_ids)))
    )
    return {int(i): (str(c), str(n), str(cc)) for i, c, n, cc in rows}


def live_claim_for_loan(session: Session, loan_id: int) -> Claim | None:
    return session.scalars(
        select(Claim).where(Claim.loan_id == loan_id, Claim.status != "rejected")
    ).first()


def lock_bank(session: Session, bank_code: str) -> None:
    """Serialise cap decisions for one bank (SKD-Q1 under concurrency)."""
    session.execute(select(Bank.code).where(Bank.code == bank_code).with_for_update(key_share=True))


def lock_fund(session: Session, fund_code: str) -> None:
    """Serialise payments out of one fund (its cash may not go below zero)."""
    session.execute(select(Fund.code).where(Fund.code == fund_code).with_for_update(key_share=True))


def cooperation_start(session: Session, bank_code: str, program: str) -> date | None:
    """The start of the bank's cooperation: its earliest agreement in the programme."""
    return session.scalar(_cooperation_start_statement(), {"bank": bank_code, "program": program})


def cap_sums(
    session: Session, bank_code: str, program: str, *, start: date, until: date
) -> list[tuple[str, int, int]]:
    """Per product: Σ principal and Σ principal × contractual days of the bank's loans
    disbursed in [start, until] (SKD-Q1's annualized principal before the share), summed
    over the bank's day totals (one row per fund, product, security and day, kept by the
    database; summed over the funds and securities here); renewals count as the new loans
    they are."""
    params = {"bank": bank_code, "program": program, "start": start, "until": until}
    rows = session.execute(_cap_sums_statement(), params)
    return [(str(p or ""), int(a or 0), int(pd or 0)) for p, a, pd in rows]


def compensated_by_product(
    session: Session, bank_code: str, program: str, *, until: date, excluding: int | None = None
) -> dict[str, int]:
    """Compensation approved for the bank up to `until`, per product."""
    params: dict[str, Any] = {"bank": bank_code, "program": program, "until": until}
    if excluding is not None:
        params["excluding"] = excluding
    stmt = _compensated_statement(excluding is not None)
    return {str(p or ""): int(t or 0) for p, t in session.execute(stmt, params)}


_Rows = Select[*tuple[Any, ...]]


# The cap figures' statements, built once each (read by every exposure read and cap
# check): the bank, programme and dates are bound parameters.
@functools.cache
def _cooperation_start_statement() -> Select[Any]:
    return select(func.min(Agreement.start_on)).where(
        Agreement.bank_code == bindparam("bank"), Agreement.program == bindparam("program")
    )


@functools.cache
def _cap_sums_statement() -> _Rows:
    return (
        select(
            LoanDayTotal.product,
            func.sum(LoanDayTotal.disbursed_fen),
            func.sum(LoanDayTotal.disbursed_days_fen),
        )
        .where(
            LoanDayTotal.bank_code == bindparam("bank"),
            LoanDayTotal.program == bindparam("program"),
            LoanDayTotal.day >= bindparam("start"),
            LoanDayTotal.day <= bindparam("until"),
        )
        .group_by(LoanDayTotal.product)
    )


@functools.cache
def _compensated_statement(excluding: bool) -> _Rows:
    stmt = (
        select(Claim.product, func.sum(Claim.approved_fen))
        .where(
            Claim.bank_code == bindparam("bank"),
            Claim.program == bindparam("program"),
            Claim.approved_fen.is_not(None),
            Claim.approved_on <= bindparam("until"),
        )
        .group_by(Claim.product)
    )
    if excluding:
        stmt = stmt.where(Claim.id != bindparam("excluding"))
    return stmt


def history(session: Session, claim_ids: list[int]) -> dict[int, list[ClaimTransition]]:
    out: dict[int, list[ClaimTransition]] = {i: [] for i in claim_ids}
    if claim_ids:
        for t in session.scalars(
            select(ClaimTransition)
            .where(ClaimTransition.claim_id.in_(claim_ids))
            .order_by(ClaimTransition.id)
        ):
            out[t.claim_id].append(t)
    return out


def returns(session: Session, claim_ids: list[int]) -> dict[int, list[ClaimReturn]]:
    """Returns for correction (退回补正), oldest first."""
    out: dict[int, list[ClaimReturn]] = {i: [] for i in claim_ids}
    if claim_ids:
        for r in session.scalars(
            select(ClaimReturn).where(ClaimReturn.claim_id.in_(claim_ids)).order_by(ClaimReturn.id)
        ):
            out[r.claim_id].append(r)
    return out


def documents(session: Session, claim_ids: list[int]) -> dict[int, list[ClaimDocument]]:
    """Document metadata (the content column is not loaded)."""
    out: dict[int, list[ClaimDocument]] = {i: [] for i in claim_ids}
    if claim_ids:
        stmt = (
            select(ClaimDocument)
            .where(ClaimDocument.claim_id.in_(claim_ids))
            .order_by(ClaimDocument.id)
        )
        for d in session.scalars(stmt.options(defer(ClaimDocument.content, raiseload=True))):
            out[d.claim_id].append(d)
    return out


def document(session: Session, claim_id: int, document_id: int) -> ClaimDocument | None:
    return session.scalars(
        select(ClaimDocument).where(
            ClaimDocument.claim_id == claim_id, ClaimDocument.id == document_id
        )
    ).first()


def recoveries(session: Session, claim_ids: list[int]) -> dict[int, list[ClaimRecovery]]:
    out: dict[int, list[ClaimRecovery]] = {i: [] for i in claim_ids}
    if claim_ids:
        for r in session.scalars(
            select(ClaimRecovery)
            .where(ClaimRecovery.claim_id.in_(claim_ids))
            .order_by(ClaimRecovery.id)
        ):
            out[r.claim_id].append(r)
    return out


def clawbacks(session: Session, claim_ids: list[int]) -> dict[int, list[ClaimClawback]]:
    out: dict[int, list[ClaimClawback]] = {i: [] for i in claim_ids}
    if claim_ids:
        stmt = select(ClaimClawback).where(ClaimClawback.claim_id.in_(claim_ids))
        for r in session.scalars(stmt.order_by(ClaimClawback.id)):
            out[r.claim_id].append(r)
    return out


def receipts(session: Session, claim_ids: list[int]) -> dict[int, list[ClaimReceipt]]:
    out: dict[int, list[ClaimReceipt]] = {i: [] for i in claim_ids}
    if claim_ids:
        stmt = select(ClaimReceipt).where(ClaimReceipt.claim_id.in_(claim_ids))
        for r in session.scalars(stmt.order_by(ClaimReceipt.id)):
            out[r.claim_id].append(r)
    return out


def record_shares(session: Session, claim_id: int, kind: str, shares: dict[str, int]) -> None:
    """Store a split of the claim (`kind` "requested" or "approved"), one row per party
    (append-only: a claim has one split of each kind)."""
    session.add_all(
        ClaimShare(claim_id=claim_id, kind=kind, party=party, fen=int(fen))
        for party, fen in shares.items()
    )


def shares_rows(session: Session, claim_ids: list[int]) -> dict[int, dict[str, dict[str, int]]]:
    """Per claim, its splits by kind, party → fen, in the order they were recorded ({}
    for a claim without rows)."""
    out: dict[int, dict[str, dict[str, int]]] = {i: {} for i in claim_ids}
    if claim_ids:
        rows = session.execute(
            select(ClaimShare.claim_id, ClaimShare.kind, ClaimShare.party, ClaimShare.fen)
            .where(ClaimShare.claim_id.in_(claim_ids))
            .order_by(ClaimShare.id)
        )
        for claim_id, kind, party, fen in rows:
            out[claim_id].setdefault(kind, {})[party] = int(fen)
    return out
