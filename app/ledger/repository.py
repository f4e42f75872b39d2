"""All SQL of the ledger."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlalchemy import ColumnElement, Select, Table, func, insert, select, union, update
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from app.ledger.postings import LegSpec
from app.models import Fund, LedgerAccount, LedgerChainHead, LedgerEntry, LedgerLeg

_HEAD: Table = LedgerChainHead.__table__  # type: ignore[assignment]
_ENTRIES: Table = LedgerEntry.__table__  # type: ignore[assignment]
_ACCOUNTS: Table = LedgerAccount.__table__  # type: ignore[assignment]
_LEGS: Table = LedgerLeg.__table__  # type: ignore[assignment]


@dataclass
class PostingView:
    """What a writer needs, read under the chain head's lock."""

    account_ids: dict[str, int]
    last_id: int
    last_hash: str
    existing_keys: dict[str, int]


# PostgreSQL hot path: the writer's statements go through the driver in pipeline mode,
# several statements to one round trip (SQLAlchemy costs ~100 µs a statement here).
_PG_ACCOUNTS = "SELECT code, id FROM ledger_accounts WHERE code = ANY(%s)"
_PG_LOCK = "SELECT last_seq, last_hash FROM ledger_chain_head WHERE id = 1 FOR NO KEY UPDATE"
_PG_KEYS = "SELECT idempotency_key, id FROM ledger_entries WHERE idempotency_key = ANY(%s)"
_PG_HEAD = "UPDATE ledger_chain_head SET last_seq = %s, last_hash = %s WHERE id = 1"


def _driver(session: Session) -> Any | None:
    """The psycopg connection inside the session's transaction, or None off PostgreSQL."""
    conn = session.connection()
    if conn.dialect.name != "postgresql":
        return None
    return conn.connection.driver_connection


def read_for_posting(session: Session, codes: Sequence[str], keys: Sequence[str]) -> PostingView:
    """Account ids, then the chain head locked until the transaction ends, then the keys
    already posted — read after the lock, so a concurrent writer's commit is seen."""
    driver = _driver(session)
    if driver is not None:
        with driver.pipeline():
            accounts = driver.execute(_PG_ACCOUNTS, (list(codes),))
            head_row = driver.execute(_PG_LOCK)
            known = driver.execute(_PG_KEYS, (list(keys),))
        last_id, last_hash = head_row.fetchone()
        return PostingView(
            dict(accounts.fetchall()), int(last_id), str(last_hash), dict(known.fetchall())
        )
    conn = session.connection()
    ids = account_ids_by_code(session, codes)
    row = conn.execute(
        select(_HEAD.c.last_seq, _HEAD.c.last_hash)
        .where(_HEAD.c.id == 1)
        .with_for_update(key_share=True)
    ).one()
    known_keys = conn.execute(
        select(_ENTRIES.c.idempotency_key, _ENTRIES.c.id).where(
            _ENTRIES.c.idempotency_key.in_(list(keys))
        )
    )
    return PostingView(ids, int(row[0]), str(row[1]), {str(k): int(i) for k, i in known_keys})


def head(session: Session) -> tuple[int, str]:
    row = (
        session.connection()
        .execute(select(_HEAD.c.last_seq, _HEAD.c.last_hash).where(_HEAD.c.id == 1))
        .one()
    )
    return int(row[0]), str(row[1])


def account_ids_by_code(session: Session, codes: Iterable[str]) -> dict[str, int]:
    rows = session.connection().execute(
        select(_ACCOUNTS.c.code, _ACCOUNTS.c.id).where(_ACCOUNTS.c.code.in_(list(codes)))
    )
    return {str(c): int(i) for c, i in rows}


LEG_COLUMNS = ("entry_id", "position", "account_id", "fund_code", "amount_fen", "loan_id")
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
COPY_THRESHOLD = 200  # rows; below it the pipelined INSERTs are as fast


def _insert_sql(table: str, columns: Sequence[str]) -> str:
    placeholders = ", ".join(["%s"] * len(columns))
    return f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({placeholders})"  # noqa: S608 - constant names


_PG_INSERT_LEGS = _insert_sql("ledger_legs", LEG_COLUMNS)
_PG_INSERT_ENTRIES = _insert_sql("ledger_entries", ENTRY_COLUMNS)


def write_entries(
    session: Session,
    leg_rows: list[tuple[Any, ...]],
    entry_rows: list[tuple[Any, ...]],
    *,
    last_id: int,
    last_hash: str,
) -> None:
    """Legs first, then their entries (the database checks each whole entry as its row
    arrives), then the chain head. PostgreSQL: COPY for large batches, else one pipelined
    round trip; elsewhere multi-row INSERTs."""
    if not entry_rows:
        return
    driver = _driver(session)
    if driver is None:
        conn = session.connection()
        conn.execute(insert(_LEGS), [dict(zip(LEG_COLUMNS, r, strict=True)) for r in leg_rows])
        conn.execute(
            insert(_ENTRIES), [dict(zip(ENTRY_COLUMNS, r, strict=True)) for r in entry_rows]
        )
        conn.execute(
            update(_HEAD).where(_HEAD.c.id == 1).values(last_seq=last_id, last_hash=last_hash)
        )
        return
    if len(leg_rows) + len(entry_rows) >= COPY_THRESHOLD:
        with driver.cursor() as cur:
            for table, columns, rows in (
                ("ledger_legs", LEG_COLUMNS, leg_rows),
                ("ledger_entries", ENTRY_COLUMNS, entry_rows),
            ):
                with cur.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
                    for row in rows:
                        copy.write_row(row)
            cur.execute(_PG_HEAD, (last_id, last_hash))
        return
    with driver.pipeline(), driver.cursor() as cur:
        cur.executemany(_PG_INSERT_LEGS, leg_rows)
        cur.executemany(_PG_INSERT_ENTRIES, entry_rows)
        cur.execute(_PG_HEAD, (last_id, last_hash))


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
        .order_by(LedgerLeg.entry_id, LedgerLeg.position)
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


def _account_ids_of(funds: set[str]) -> Select[int]:
    """Legs are found by account (indexed), a book's accounts by their fund."""
    return select(LedgerAccount.id).where(LedgerAccount.fund_code.in_(sorted(funds)))


# the events whose entries name their loan by `event_id` (before legs named loans)
LOAN_EVENTS = ("loan.filed", "loan.repaid", "loan.renewed")


def entries_query(
    *,
    funds: set[str] | None,
    fund_code: str | None,
    account_code: str | None,
    event_type: str | None,
    event_id: str | None,
    since: date | None,
    until: date | None,
    loan_id: int | None = None,
) -> Select[LedgerEntry]:
    stmt = select(LedgerEntry)
    leg_filter: list[ColumnElement[bool]] = []
    if funds is not None:
        leg_filter.append(LedgerLeg.account_id.in_(_account_ids_of(funds)))
    if fund_code:
        leg_filter.append(LedgerLeg.account_id.in_(_account_ids_of({fund_code})))
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
    if loan_id is not None:
        # a leg naming the loan (its partial index), or an entry of the loan's own event
        # posted before legs named loans (the events' index)
        stmt = stmt.where(
            LedgerEntry.id.in_(
                union(
                    select(LedgerLeg.entry_id).where(LedgerLeg.loan_id == loan_id),
                    select(LedgerEntry.id).where(
                        LedgerEntry.event_type.in_(LOAN_EVENTS),
                        LedgerEntry.event_id == str(loan_id),
                    ),
                )
            )
        )
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
        sums = sums.where(LedgerLeg.account_id.in_(_account_ids_of(funds)))
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
        select(LedgerEntry, LedgerLeg.amount_fen, LedgerLeg.loan_id)
        .join(LedgerLeg, LedgerLeg.entry_id == LedgerEntry.id)
        .where(LedgerLeg.account_id == account_id)
    )
    if since:
        stmt = stmt.where(LedgerEntry.business_date >= since)
    if until:
        stmt = stmt.where(LedgerEntry.business_date <= until)
    return session.execute(
        stmt.order_by(LedgerEntry.business_date, LedgerEntry.id, LedgerLeg.position)
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
        for entry_id, code, fund, kind, counterparty, amount, loan in session.execute(
            select(
                LedgerLeg.entry_id,
                LedgerAccount.code,
                LedgerLeg.fund_code,
                LedgerAccount.kind,
                LedgerAccount.counterparty,
                LedgerLeg.amount_fen,
                LedgerLeg.loan_id,
            )
            .join(LedgerAccount, LedgerAccount.id == LedgerLeg.account_id)
            .where(LedgerLeg.entry_id.in_(ids))
            .order_by(LedgerLeg.entry_id, LedgerLeg.position)
        ).all():
            legs[entry_id].append((code, LegSpec(fund, kind, amount, counterparty, loan)))
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
