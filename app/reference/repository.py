"""All SQL of the reference package."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import date
from typing import Any, cast

from sqlalchemy import RowMapping, Select, Table, func, insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, selectinload

from app.audit import capture as audit
from app.models import (
    Agreement,
    AgreementEvent,
    Bank,
    Enterprise,
    Fund,
    FundContributor,
    LprRate,
    Region,
)
from app.models.base import utcnow


def regions_query(*, level: str | None, parent_code: str | None) -> Select[Region]:
    stmt = select(Region)
    if level:
        stmt = stmt.where(Region.level == level)
    if parent_code:
        stmt = stmt.where(Region.parent_code == parent_code)
    return stmt


def banks_query() -> Select[Bank]:
    return select(Bank)


def funds_query(*, program: str | None, kind: str | None) -> Select[Fund]:
    stmt = select(Fund)
    if program:
        stmt = stmt.where(Fund.program == program)
    if kind:
        stmt = stmt.where(Fund.kind == kind)
    return stmt


def contributors(session: Session, fund_code: str) -> Sequence[FundContributor]:
    return session.scalars(
        select(FundContributor)
        .where(FundContributor.fund_code == fund_code)
        .order_by(FundContributor.id)
    ).all()


def contributors_query(fund_code: str) -> Select[FundContributor]:
    return select(FundContributor).where(FundContributor.fund_code == fund_code)


def fund_for_update(session: Session, code: str) -> Fund | None:
    """The fund, locked: registrations of its contributors wait for each other."""
    return session.scalars(
        select(Fund).where(Fund.code == code).with_for_update(key_share=True)
    ).first()


def contributor_clashes(
    session: Session, fund_code: str, *, code: str, name: str
) -> Sequence[FundContributor]:
    """The fund's contributors that already have this code or this name."""
    return session.scalars(
        select(FundContributor).where(
            FundContributor.fund_code == fund_code,
            (FundContributor.code == code) | (FundContributor.name == name),
        )
    ).all()


def city_funds_without_contributors(session: Session) -> Sequence[Fund]:
    has_contributor = select(FundContributor.id).where(FundContributor.fund_code == Fund.code)
    return session.scalars(
        select(Fund).where(Fund.kind == "city", ~has_contributor.exists()).order_by(Fund.code)
    ).all()


def agreements_query(
    *, bank_code: str | None, program: str | None, status: str | None, region_code: str | None
) -> Select[Agreement]:
    stmt = select(Agreement)
    if bank_code:
        stmt = stmt.where(Agreement.bank_code == bank_code)
    if program:
        stmt = stmt.where(Agreement.program == program)
    if status:
        stmt = stmt.where(Agreement.status == status)
    if region_code:
        stmt = stmt.where(Agreement.region_code == region_code)
    return stmt


def agreement_for_update(session: Session, agreement_id: int) -> Agreement | None:
    return session.scalars(
        select(Agreement).where(Agreement.id == agreement_id).with_for_update(key_share=True)
    ).first()


def agreement_history(session: Session, agreement_id: int) -> Sequence[AgreementEvent]:
    return session.scalars(
        select(AgreementEvent)
        .where(AgreementEvent.agreement_id == agreement_id)
        .order_by(AgreementEvent.id)
    ).all()


def lpr_query(*, since: date | None, until: date | None) -> Select[LprRate]:
    stmt = select(LprRate)
    if since:
        stmt = stmt.where(LprRate.effective_on >= since)
    if until:
        stmt = stmt.where(LprRate.effective_on <= until)
    return stmt


def lpr_in_force(session: Session, on: date) -> LprRate | None:
    return session.scalars(
        select(LprRate).where(LprRate.effective_on <= on).order_by(LprRate.effective_on.desc())
    ).first()


def lpr_on(session: Session, effective_on: date) -> LprRate | None:
    return session.scalars(select(LprRate).where(LprRate.effective_on == effective_on)).first()


def enterprise_by_code(session: Session, credit_code: str) -> Enterprise | None:
    return session.scalars(select(Enterprise).where(Enterprise.credit_code == credit_code)).first()


def enterprises_query(*, region_code: str | None, name: str | None) -> Select[Enterprise]:
    stmt = select(Enterprise).options(selectinload(Enterprise.controller))
    if region_code:
        stmt = stmt.where(Enterprise.region_code == region_code)
    if name:
        stmt = stmt.where(func.lower(Enterprise.name).contains(name.lower()))
    return stmt


def known_region_codes(session: Session, codes: Collection[str]) -> set[str]:
    """Which of these region codes exist (one query)."""
    if not codes:
        return set()
    return set(session.scalars(select(Region.code).where(Region.code.in_(list(codes)))))


def enterprise_rows_by_codes(session: Session, codes: Collection[str]) -> dict[str, RowMapping]:
    """The recorded columns of the enterprises with these credit codes, by code (one
    query, plain rows: nothing enters the session)."""
    if not codes:
        return {}
    table = Enterprise.__table__
    rows = session.execute(select(table).where(table.c.credit_code.in_(list(codes)))).mappings()
    return {row["credit_code"]: row for row in rows}


_ENTERPRISE_COLUMNS = [c.name for c in Enterprise.__table__.columns if c.name != "id"]


def insert_enterprises(session: Session, rows: list[dict[str, Any]]) -> list[int]:
    """Insert these enterprises (`_write_enterprises`), recorded in the audit trail."""
    ids = _write_enterprises(session, rows)
    audit.record_created(session, Enterprise, list(zip(ids, rows, strict=True)))
    return ids


def _write_enterprises(session: Session, rows: list[dict[str, Any]]) -> list[int]:
    """Insert these enterprises (column values, all present; none recorded yet); their
    ids, in order. Created and updated now, like a single insert. PostgreSQL: ids drawn
    from the sequence in one statement, then COPY (a multi-row INSERT of 10,000 rows
    spends seconds in the driver's parsing of the statement); elsewhere one executemany
    INSERT and one SELECT of the new ids by credit code."""
    if not rows:
        return []
    now = utcnow()
    stamped = [{**row, "created_at": now, "updated_at": now} for row in rows]
    conn = session.connection()
    if conn.dialect.name != "postgresql":
        table = cast(Table, Enterprise.__table__)
        session.execute(insert(table), stamped)
        found = session.execute(
            select(table.c.credit_code, table.c.id).where(
                table.c.credit_code.in_([r["credit_code"] for r in rows])
            )
        )
        ids = {code: int(enterprise_id) for code, enterprise_id in found}
        return [ids[r["credit_code"]] for r in rows]
    import psycopg

    driver = conn.connection.driver_connection
    assert driver is not None
    new_ids = [
        int(r[0])
        for r in driver.execute(
            "SELECT nextval(pg_get_serial_sequence('enterprises', 'id')) "
            "FROM generate_series(1, %s)",
            (len(rows),),
        )
    ]
    try:
        with (
            driver.cursor() as cur,
            cur.copy(f"COPY enterprises (id, {', '.join(_ENTERPRISE_COLUMNS)}) FROM STDIN") as copy,
        ):
            for enterprise_id, row in zip(new_ids, stamped, strict=True):
                copy.write_row([enterprise_id, *(row[c] for c in _ENTERPRISE_COLUMNS)])
    except psycopg.errors.IntegrityError as exc:
        # e.g. another request registered one of these credit codes meanwhile: a
        # conflict with existing data (409 at the boundary), nothing written
        raise IntegrityError("COPY enterprises", None, exc) from exc
    return new_ids
