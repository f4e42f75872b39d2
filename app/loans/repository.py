from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import date
from typing import Any, cast

from sqlalchemy import BindParameter, Select, Subquery, Table, func, insert, select, update
from sqlalchemy.orm import Session

from app.audit import capture as audit
from app.auth.principal import Principal
from app.models import (
    Agreement,
    DelinquencyReport,
    Enterprise,
    Loan,
    LoanEvent,
    LoanRepayment,
    LoanTransition,
    ProgramQuota,
)
from app.models.base import utcnow


def scoped_loans(principal: Principal) -> Select[Loan]:
    """Loans the caller may see: a bank its own; a city reviewer its region's enterprises."""
    stmt = select(Loan)
    if principal.is_bank:
        stmt = stmt.where(Loan.bank_code == principal.bank_code)
    elif principal.role == "city_reviewer":
        stmt = stmt.join(Enterprise, Enterprise.id == Loan.enterprise_id).where(
            Enterprise.region_code == principal.region_code
        )
    return stmt


def filter_loans(
    stmt: Select[Loan],
    *,
    program: str | None,
    bank_code: str | None,
    status: str | None,
    contract_no: str | None = None,
    enterprise_credit_code: str | None = None,
) -> Select[Loan]:
    if program:
        stmt = stmt.where(Loan.program == program)
    if bank_code:
        stmt = stmt.where(Loan.bank_code == bank_code)
    if status:
        stmt = stmt.where(Loan.status == status)
    if contract_no:
        stmt = stmt.where(Loan.contract_no == contract_no)
    if enterprise_credit_code:
        enterprise = select(Enterprise.id).where(
            Enterprise.credit_code == enterprise_credit_code.upper()
        )
        stmt = stmt.where(Loan.enterprise_id.in_(enterprise))
    return stmt


def enterprises_of(session: Session, loans: Sequence[Loan]) -> dict[int, tuple[str, str]]:
    """(credit code, name) of the loans' enterprises, by enterprise id (one query)."""
    ids = sorted({x.enterprise_id for x in loans})
    if not ids:
        return {}
    rows = session.execute(
        select(Enterprise.id, Enterprise.credit_code, Enterprise.name).where(Enterprise.id.in_(ids))
    )
    return {i: (code, name) for i, code, name in rows}


def enterprise_for_update(session: Session, credit_code: str) -> Enterprise | None:
    """The enterprise row, locked: two filings for one enterprise go one after the other."""
    return session.scalars(
        select(Enterprise)
        .where(Enterprise.credit_code == credit_code)
        .with_for_update(key_share=True)
    ).first()


def lock_enterprises(session: Session, credit_codes: list[str]) -> None:
    """Lock the enterprises with these credit codes, in id order (one statement)."""
    codes = sorted({c.upper() for c in credit_codes})
    if codes:
        session.execute(
            select(Enterprise.id)
            .where(Enterprise.credit_code.in_(codes))
            .order_by(Enterprise.id)
            .with_for_update(key_share=True)
        )


def has_active_loan(session: Session, enterprise_id: int, program: str) -> bool:
    return (
        session.scalars(
            select(Loan.id).where(
                Loan.enterprise_id == enterprise_id,
                Loan.program == program,
                Loan.status == "active",
            )
        ).first()
        is not None
    )


def contract_exists(session: Session, bank_code: str, contract_no: str) -> bool:
    return (
        session.scalars(
            select(Loan.id).where(Loan.bank_code == bank_code, Loan.contract_no == contract_no)
        ).first()
        is not None
    )


def agreement_covering(
    session: Session, *, bank_code: str, program: str, fund_code: str, on: date
) -> Agreement | None:
    return session.scalars(
        select(Agreement)
        .where(
            Agreement.bank_code == bank_code,
            Agreement.program == program,
            Agreement.fund_code == fund_code,
            Agreement.start_on <= on,
            Agreement.end_on > on,
        )
        .order_by(Agreement.start_on.desc())
    ).first()


def quota(session: Session, program: str, year: int) -> ProgramQuota | None:
    """The quota, read without a lock (for display)."""
    return session.scalars(
        select(ProgramQuota).where(ProgramQuota.program == program, ProgramQuota.year == year)
    ).first()


def quota_for_update(session: Session, program: str, year: int) -> ProgramQuota | None:
    return session.scalars(
        select(ProgramQuota)
        .where(ProgramQuota.program == program, ProgramQuota.year == year)
        .with_for_update(key_share=True)
    ).first()


def add_to_quota(session: Session, quota_id: int, principal_fen: int) -> bool:
    """Count `principal_fen` in, if it fits (SKD-F6); the row stays locked until the
    transaction ends. False when it does not fit, with nothing changed."""
    result = session.execute(
        update(ProgramQuota)
        .where(
            ProgramQuota.id == quota_id,
            ProgramQuota.used_fen + principal_fen <= ProgramQuota.amount_fen,
        )
        .values(used_fen=ProgramQuota.used_fen + principal_fen, updated_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    return bool(result.rowcount == 1)  # type: ignore[attr-defined]


def quota_figures(session: Session, quota_id: int) -> tuple[int, int]:
    """(amount, used) as committed now, not as the session first read them."""
    row = session.execute(
        select(ProgramQuota.amount_fen, ProgramQuota.used_fen).where(ProgramQuota.id == quota_id)
    ).one()
    return int(row[0]), int(row[1])


def principal_filed_in(session: Session, program: str, year: int) -> int:
    total = session.scalar(
        select(func.coalesce(func.sum(Loan.principal_fen), 0)).where(
            Loan.program == program,
            Loan.disbursed_on >= date(year, 1, 1),
            Loan.disbursed_on <= date(year, 12, 31),
        )
    )
    return int(total or 0)


def repaid_by(session: Session, loan_ids: list[int], as_of: date | None) -> dict[int, int]:
    """Principal repaid per loan up to `as_of` (inclusive), one query for a whole page."""
    if not loan_ids:
        return {}
    stmt = select(LoanRepayment.loan_id, func.sum(LoanRepayment.principal_fen)).where(
        LoanRepayment.loan_id.in_(loan_ids)
    )
    if as_of is not None:
        stmt = stmt.where(LoanRepayment.paid_on <= as_of)
    return {int(i): int(t) for i, t in session.execute(stmt.group_by(LoanRepayment.loan_id))}


def loan_for_update(session: Session, loan_id: int) -> Loan | None:
    return session.scalars(
        select(Loan).where(Loan.id == loan_id).with_for_update(key_share=True)
    ).first()


def outstanding_for_enterprise(session: Session, enterprise_id: int, program: str) -> int:
    """Principal the enterprise still owes on the programme's open loans."""
    return outstanding_for_enterprises(session, [enterprise_id], program).get(enterprise_id, 0)


def outstanding_for_enterprises(
    session: Session, enterprise_ids: list[int], program: str
) -> dict[int, int]:
    """Principal each enterprise still owes on the programme's open loans (those owing
    nothing left out), in two statements for any number of enterprises."""
    loans = list(
        session.execute(
            select(Loan.enterprise_id, Loan.id, Loan.principal_fen).where(
                Loan.enterprise_id.in_(enterprise_ids),
                Loan.program == program,
                Loan.status.in_(("active", "claimed", "compensated")),
            )
        )
    )
    repaid = repaid_by(session, [int(i) for _, i, _ in loans], None)
    owed: dict[int, int] = {}
    for enterprise_id, loan_id, principal_fen in loans:
        owed[int(enterprise_id)] = (
            owed.get(int(enterprise_id), 0) + int(principal_fen) - repaid.get(int(loan_id), 0)
        )
    return owed


def last_compensation_on(session: Session, enterprise_id: int, program: str) -> date | None:
    """When the programme last paid compensation on a loan of this enterprise."""
    return last_compensations_on(session, [enterprise_id], program).get(enterprise_id)


def last_compensations_on(
    session: Session, enterprise_ids: list[int], program: str
) -> dict[int, date]:
    """When the programme last paid compensation on a loan of each enterprise (those
    never compensated left out), in one statement."""
    from app.models import Claim

    return {
        int(enterprise_id): paid_on
        for enterprise_id, paid_on in session.execute(
            select(Loan.enterprise_id, func.max(Claim.paid_on))
            .join(Loan, Loan.id == Claim.loan_id)
            .where(
                Loan.enterprise_id.in_(enterprise_ids),
                Claim.program == program,
                Claim.paid_on.is_not(None),
            )
            .group_by(Loan.enterprise_id)
        )
        if paid_on is not None
    }


# every column a filing sets, fund_code and security included (the day-totals triggers
# key on them)
_LOAN_COLUMNS = [c.key for c in Loan.__table__.columns if c.key not in ("id", "closed_at")]
_LOAN_JSON = {"flags", "extra"}


def insert_loans(session: Session, loans: list[Loan]) -> list[int]:
    """Insert these (unsaved) loans; their ids, in order, recorded in the audit trail
    (the ORM's events do not see a Core insert)."""
    ids = _write_loans(session, loans)
    audit.record_created(session, Loan, [(i, vars(x)) for i, x in zip(ids, loans, strict=True)])
    return ids


def _write_loans(session: Session, loans: list[Loan]) -> list[int]:
    """Insert these (unsaved) loans; their ids, in order. PostgreSQL: ids drawn from the
    sequence in one statement, then COPY (the ORM's multi-row INSERT … RETURNING cost
    ~0.8 ms a loan in Python); elsewhere one multi-row INSERT … RETURNING."""
    now = utcnow()
    conn = session.connection()
    if conn.dialect.name != "postgresql":
        # a Core statement on the table: the ORM's bulk insert splits the rows into runs
        # of the same non-null columns (an SKD and an XB loan alternate: one statement
        # each) and joins their RETURNING rows quadratically
        rows = [{k: getattr(x, k) for k in _LOAN_COLUMNS} | {"created_at": now} for x in loans]
        table = cast(Table, Loan.__table__)
        stmt = insert(table).returning(table.c.id, sort_by_parameter_order=True)
        return [int(i) for i in conn.execute(stmt, rows).scalars().all()]
    driver = conn.connection.driver_connection
    assert driver is not None
    ids = [
        int(r[0])
        for r in driver.execute(
            "SELECT nextval(pg_get_serial_sequence('loans', 'id')) FROM generate_series(1, %s)",
            (len(loans),),
        )
    ]
    columns = ["id", *_LOAN_COLUMNS]
    with (
        driver.cursor() as cur,
        cur.copy(f"COPY loans ({', '.join(columns)}) FROM STDIN") as copy,
    ):
        for loan_id, loan in zip(ids, loans, strict=True):
            copy.write_row(
                [loan_id]
                + [
                    json.dumps(getattr(loan, k), ensure_ascii=False)
                    if k in _LOAN_JSON
                    else now
                    if k == "created_at"
                    else getattr(loan, k)
                    for k in _LOAN_COLUMNS
                ]
            )
    return ids


def events(session: Session, loan_id: int) -> Sequence[LoanEvent]:
    return session.scalars(
        select(LoanEvent).where(LoanEvent.loan_id == loan_id).order_by(LoanEvent.id)
    ).all()


def delinquency_reports(session: Session, loan_id: int) -> Sequence[DelinquencyReport]:
    """The bank's arrears reports on the loan, oldest first (SPEC M-6)."""
    return session.scalars(
        select(DelinquencyReport)
        .where(DelinquencyReport.loan_id == loan_id)
        .order_by(DelinquencyReport.as_of, DelinquencyReport.id)
    ).all()


def transitions(session: Session, loan_id: int) -> Sequence[LoanTransition]:
    """The loan's status changes, oldest first."""
    return session.scalars(
        select(LoanTransition).where(LoanTransition.loan_id == loan_id).order_by(LoanTransition.id)
    ).all()


def repaid_as_of(loan_ids: Select[Any], as_of: date | BindParameter[Any]) -> Subquery:
    """Principal repaid by `as_of`, per loan of `loan_ids` (columns loan_id, repaid)."""
    return (
        select(
            LoanRepayment.loan_id.label("loan_id"),
            func.sum(LoanRepayment.principal_fen).label("repaid"),
        )
        .where(LoanRepayment.loan_id.in_(loan_ids), LoanRepayment.paid_on <= as_of)
        .group_by(LoanRepayment.loan_id)
        .subquery()
    )
