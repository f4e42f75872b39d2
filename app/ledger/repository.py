"""All SQL of the ledger."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from datetime import date
from typing import Any

from sqlalchemy import ColumnElement, Select, func, insert, select, update
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from app.ledger.postings import LegSpec
from app.models import Fund, LedgerAccount, LedgerChainHead, LedgerEntry, LedgerLeg
from app.models.base import Base


def lock_head(session: Session) -> tuple[int, str]:
    """(last id, last hash) of the chain, locked until the transaction ends."""
    row = session.execute(
        select(LedgerChainHead.last_seq, LedgerChainHead.last_hash)
        .where(LedgerChainHead.id == 1)
        .with_for_update()
    ).one()
    return int(row[0]), str(row[1])


def head(session: Session) -> tuple[int, str]:
    row = session.execute(
        select(LedgerChainHead.last_seq, LedgerChainHead.last_hash).where(LedgerChainHead.id == 1)
    ).one()
    return int(row[0]), str(row[1])


def move_head(session: Session, last_id: int, last_hash: str) -> None:
    session.execute(
        update(LedgerChainHead)
        .where(LedgerChainHead.id == 1)
        .values(last_seq=last_id, last_hash=last_hash)
    )


def entries_by_keys(session: Session, keys: Sequence[str]) -> dict[str, LedgerEntry]:
    rows = session.scalars(select(LedgerEntry).where(LedgerEntry.idempotency_key.in_(keys)))
    return {e.idempotency_key: e for e in rows}


LEG_COLUMNS = ("entry_id", "account_id", "fund_code", "amount_fen")
ENTRY_COLUMNS = (
    "id",
    "event_type",
    "event_id",
    "idempotency_key",
    "business_date",
    "recorded_at",
    "description",
    "reverses_entry_id",
    "actor_id",
    "prev_hash",
    "hash",
)
COPY_THRESHOLD = 200  # rows; below it a multi-row INSERT is as fast


def insert_rows(
    session: Session, model: type[Base], columns: Sequence[str], rows: list[tuple[Any, ...]]
) -> None:
    """Bulk insert: COPY on PostgreSQL for large batches, multi-row INSERT otherwise."""
    if not rows:
        return
    conn = session.connection()
    if conn.dialect.name == "postgresql" and len(rows) >= COPY_THRESHOLD:
        driver: Any = conn.connection.driver_connection  # a psycopg 3 connection
        table = model.__table__.name  # type: ignore[attr-defined]
        statement = f"COPY {table} ({', '.join(columns)}) FROM STDIN"
        with driver.cursor() as cur, cur.copy(statement) as copy:
            for row in rows:
                copy.write_row(row)
        return
    session.execute(insert(model), [dict(zip(columns, row, strict=True)) for row in rows])


def entry_by_key(session: Session, key: str) -> LedgerEntry | None:
    return session.scalars(select(LedgerEntry).where(LedgerEntry.idempotency_key == key)).first()


def entry_reversing(session: Session, entry_id: int) -> LedgerEntry | None:
    return session.scalars(
        select(LedgerEntry).where(LedgerEntry.reverses_entry_id == entry_id)
    ).first()


def accounts_by_code(session: Session, codes: Iterable[str]) -> dict[str, LedgerAccount]:
    rows = session.scalars(select(LedgerAccount).where(LedgerAccount.code.in_(list(codes))))
    return {a.code: a for a in rows}


def create_accounts(session: Session, rows: list[dict[str, Any]]) -> None:
    """Insert accounts, leaving alone any that a concurrent writer created first."""
    stmt: Any
    if session.get_bind().dialect.name == "postgresql":
        stmt = postgresql_insert(LedgerAccount)
    else:
        stmt = sqlite_insert(LedgerAccount)
    session.execute(stmt.values(rows).on_conflict_do_nothing(index_elements=["code"]))


def existing_funds(session: Session, codes: Iterable[str]) -> set[str]:
    return set(session.scalars(select(Fund.code).where(Fund.code.in_(list(codes)))).all())


def legs_of(
    session: Session, entry_ids: Sequence[int]
) -> dict[int, list[tuple[LedgerLeg, LedgerAccount]]]:
    out: dict[int, list[tuple[LedgerLeg, LedgerAccount]]] = {i: [] for i in entry_ids}
    if not entry_ids:
        return out
    rows = session.execute(
        select(LedgerLeg, LedgerAccount)
        .join(LedgerAccount, LedgerAccount.id == LedgerLeg.account_id)
        .where(LedgerLeg.entry_id.in_(entry_ids))
        .order_by(LedgerLeg.entry_id, LedgerLeg.id)
    ).all()
    for leg, account in rows:
        out[leg.entry_id].append((leg, account))
    return out


def reversals_of(session: Session, entry_ids: Sequence[int]) -> dict[int, int]:
    if not entry_ids:
        return {}
    rows = session.execute(
        select(LedgerEntry.reverses_entry_id, LedgerEntry.id).where(
            LedgerEntry.reverses_entry_id.in_(entry_ids)
        )
    ).all()
    return {orig: rev for orig, rev in rows if orig is not None}


def entries_query(
    *,
    funds: set[str] | None,
    fund_code: str | None,
    account_code: str | None,
    event_type: str | None,
    event_id: str | None,
    since: date | None,
    until: date | None,
) -> Select[LedgerEntry]:
    stmt = select(LedgerEntry)
    leg_filter: list[ColumnElement[bool]] = []
    if funds is not None:
        leg_filter.append(LedgerLeg.fund_code.in_(sorted(funds)))
    if fund_code:
        leg_filter.append(LedgerLeg.fund_code == fund_code)
    if account_code:
        leg_filter.append(
            LedgerLeg.account_id.in_(
                select(LedgerAccount.id).where(LedgerAccount.code == account_code)
            )
        )
    if leg_filter:
        stmt = stmt.where(LedgerEntry.id.in_(select(LedgerLeg.entry_id).where(*leg_filter)))
    if event_type:
        stmt = stmt.where(LedgerEntry.event_type == event_type)
    if event_id:
        stmt = stmt.where(LedgerEntry.event_id == event_id)
    if since:
        stmt = stmt.where(LedgerEntry.business_date >= since)
    if until:
        stmt = stmt.where(LedgerEntry.business_date <= until)
    return stmt


def balances(
    session: Session,
    *,
    as_of: date | None,
    funds: set[str] | None = None,
    account_ids: Sequence[int] | None = None,
    after_code: str | None = None,
    limit: int | None = None,
) -> list[tuple[LedgerAccount, int]]:
    """Every account (of the given funds) with the sum of its legs up to `as_of`."""
    sums = select(LedgerLeg.account_id, func.sum(LedgerLeg.amount_fen).label("total")).join(
        LedgerEntry, LedgerEntry.id == LedgerLeg.entry_id
    )
    if as_of is not None:
        sums = sums.where(LedgerEntry.business_date <= as_of)
    if funds is not None:
        sums = sums.where(LedgerLeg.fund_code.in_(sorted(funds)))
    if account_ids is not None:
        sums = sums.where(LedgerLeg.account_id.in_(account_ids))
    sub = sums.group_by(LedgerLeg.account_id).subquery()
    stmt = select(LedgerAccount, func.coalesce(sub.c.total, 0)).outerjoin(
        sub, sub.c.account_id == LedgerAccount.id
    )
    if funds is not None:
        stmt = stmt.where(LedgerAccount.fund_code.in_(sorted(funds)))
    if account_ids is not None:
        stmt = stmt.where(LedgerAccount.id.in_(account_ids))
    if after_code is not None:
        stmt = stmt.where(LedgerAccount.code > after_code)
    stmt = stmt.order_by(LedgerAccount.code)
    if limit is not None:
        stmt = stmt.limit(limit)
    rows = session.execute(stmt).all()
    return [(account, int(total)) for account, total in rows]


def account_by_code(session: Session, code: str) -> LedgerAccount | None:
    return session.scalars(select(LedgerAccount).where(LedgerAccount.code == code)).first()


def statement_lines(
    session: Session, account_id: int, *, since: date | None, until: date | None
) -> Sequence[Any]:
    stmt = (
        select(LedgerEntry, LedgerLeg.amount_fen)
        .join(LedgerLeg, LedgerLeg.entry_id == LedgerEntry.id)
        .where(LedgerLeg.account_id == account_id)
    )
    if since:
        stmt = stmt.where(LedgerEntry.business_date >= since)
    if until:
        stmt = stmt.where(LedgerEntry.business_date <= until)
    return session.execute(
        stmt.order_by(LedgerEntry.business_date, LedgerEntry.id, LedgerLeg.id)
    ).all()


def sum_before(session: Session, account_id: int, before: date) -> int:
    total = session.scalar(
        select(func.coalesce(func.sum(LedgerLeg.amount_fen), 0))
        .join(LedgerEntry, LedgerEntry.id == LedgerLeg.entry_id)
        .where(LedgerLeg.account_id == account_id, LedgerEntry.business_date < before)
    )
    return int(total or 0)


def chain_rows(
    session: Session, *, batch: int = 2000
) -> Iterator[tuple[LedgerEntry, list[tuple[str, LegSpec]]]]:
    """Entries in sequence order with their legs as (account code, leg)."""
    last_id = 0
    while True:
        entries = session.scalars(
            select(LedgerEntry)
            .where(LedgerEntry.id > last_id)
            .order_by(LedgerEntry.id)
            .limit(batch)
        ).all()
        if not entries:
            return
        ids = [e.id for e in entries]
        legs: dict[int, list[tuple[str, LegSpec]]] = {i: [] for i in ids}
        for entry_id, code, fund, kind, counterparty, amount in session.execute(
            select(
                LedgerLeg.entry_id,
                LedgerAccount.code,
                LedgerLeg.fund_code,
                LedgerAccount.kind,
                LedgerAccount.counterparty,
                LedgerLeg.amount_fen,
            )
            .join(LedgerAccount, LedgerAccount.id == LedgerLeg.account_id)
            .where(LedgerLeg.entry_id.in_(ids))
        ).all():
            legs[entry_id].append((code, LegSpec(fund, kind, amount, counterparty)))
        for e in entries:
            yield e, legs[e.id]
        last_id = entries[-1].id
        for e in entries:
            session.expunge(e)


def orphan_leg_entries(session: Session) -> list[int]:
    """Legs whose entry id is not a known entry (only possible with checks bypassed)."""
    return list(
        session.scalars(
            select(LedgerLeg.entry_id)
            .where(~LedgerLeg.entry_id.in_(select(LedgerEntry.id)))
            .limit(10)
        ).all()
    )
