"""Small factories for ledger tests."""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from datetime import UTC, date, datetime

import pytest
from sqlalchemy import Connection, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from app.errors import NotFound
from app.ledger import service as ledger
from app.ledger.postings import LegSpec, credit, debit
from app.models import LedgerEntry

_keys = itertools.count(1)
NOW = datetime(2026, 3, 31, 8, 0, tzinfo=UTC)


def post(
    session: Session,
    legs: Sequence[LegSpec],
    *,
    on: date = date(2026, 1, 5),
    key: str | None = None,
    event_type: str = "test",
    event_id: str = "t",
) -> LedgerEntry:
    return ledger.post(
        session,
        event_type=event_type,
        event_id=event_id,
        idempotency_key=key or f"test-{next(_keys)}",
        business_date=on,
        legs=legs,
        now=NOW,
    )


def skd_example_1(session: Session, *, bank: str = "JSB") -> dict[str, LedgerEntry]:
    """SPEC §6 example 1 as money events (amounts in fen), each a ledger entry:
    the city fund pays the whole fund share 2,400,000.00 to the bank, the province
    reimburses its 1,200,000.00, the bank returns 760,000.00 of recoveries and the city
    passes the province's 380,000.00 on."""
    city, prov = "SKD_CITY_320100", "SKD_PROV"
    e: dict[str, LedgerEntry] = {}
    e["approval"] = post(
        session,
        [
            debit(city, "compensation_expense", 120_000_000, bank),
            debit(city, "due_from_fund", 120_000_000, prov),
            credit(city, "payable_bank", 240_000_000, bank),
            debit(prov, "compensation_expense", 120_000_000, bank),
            credit(prov, "due_to_fund", 120_000_000, city),
        ],
        on=date(2026, 2, 2),
        event_type="claim.approved",
        event_id="1",
    )
    e["city_payment"] = post(
        session,
        [
            debit(city, "payable_bank", 240_000_000, bank),
            credit(city, "cash", 240_000_000),
        ],
        on=date(2026, 2, 10),
        event_type="claim.city_payment",
        event_id="1",
    )
    e["reimbursement"] = post(
        session,
        [
            debit(prov, "due_to_fund", 120_000_000, city),
            credit(prov, "cash", 120_000_000),
            debit(city, "cash", 120_000_000),
            credit(city, "due_from_fund", 120_000_000, prov),
        ],
        on=date(2026, 2, 20),
        event_type="claim.province_reimbursement",
        event_id="1",
    )
    e["recovery"] = post(
        session,
        [
            debit(city, "cash", 76_000_000),
            credit(city, "recovery_income", 38_000_000, bank),
            credit(city, "due_to_fund", 38_000_000, prov),
            debit(prov, "due_from_fund", 38_000_000, city),
            credit(prov, "recovery_income", 38_000_000, bank),
        ],
        on=date(2026, 3, 2),
        event_type="claim.recovery",
        event_id="1",
    )
    e["pass_on"] = post(
        session,
        [
            debit(city, "due_to_fund", 38_000_000, prov),
            credit(city, "cash", 38_000_000),
            debit(prov, "cash", 38_000_000),
            credit(prov, "due_from_fund", 38_000_000, city),
        ],
        on=date(2026, 3, 3),
        event_type="claim.recovery_pass_on",
        event_id="1",
    )
    return e


def balance(session: Session, code: str) -> int:
    """An account's balance; an account never opened holds nothing."""
    try:
        return ledger.account_balance(session, code, as_of=None)
    except NotFound:
        return 0


def legs_of(session: Session, entry_id: int) -> set[tuple[str, str, int, str | None]]:
    entry = session.get(LedgerEntry, entry_id)
    assert entry is not None
    return {
        (x.fund_code, x.kind, x.amount_fen, x.counterparty)
        for x in ledger.entry_legs(session, entry)
    }


def assert_books_balance(session: Session) -> None:
    """L-1, L-3: every book sums to zero and the hash chain verifies."""
    books = ledger.trial_balance(session, as_of=None, funds=None)
    assert books and all(b.balanced for b in books)
    assert ledger.verify(session).ok


def raw_refused(connection: Connection, sql: str) -> str:
    """Run raw SQL that the database must refuse; the refusal's message."""
    nested = connection.begin_nested()
    try:
        with pytest.raises(DBAPIError) as info:
            connection.execute(text(sql))
            if connection.dialect.name == "postgresql":
                connection.execute(text("SET CONSTRAINTS ALL IMMEDIATE"))
    finally:
        nested.rollback()
    return str(info.value.orig)
