"""The journal's shape for batches (#16 part 3, docs/journal.md): a batch's guarantee
exposure is one balanced entry (L-1) with a leg pair per loan and fund book, each leg
naming its loan; the hash covers the loans (L-2), the Beancount export carries them
(L-5), statements and the entry filter find them."""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections import defaultdict
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Connection, func, select, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from app.kit.money import format_fen
from app.ledger import service as ledger
from app.ledger.export import export_beancount
from app.ledger.postings import (
    LedgerRuleError,
    LegSpec,
    credit,
    debit,
    entry_hash,
    hashed_leg,
    validate_legs,
)
from app.ledger.service import EntrySpec
from app.loans.service import exposure_entry
from app.models import LedgerEntry, LedgerLeg, Loan
from app.models.base import utcnow
from tests.fixtures.factories import member_enterprise, skd_filing, skd_loan, xb_enterprise

NOW_DAY = date(2026, 3, 31)


def _count(session: Session, model: type) -> int:
    return int(session.scalar(select(func.count()).select_from(model)) or 0)


def _file_batch(client: TestClient, auth, session: Session) -> list[int]:  # type: ignore[no-untyped-def]
    """Two SKD loans (the province's and Nanjing's funds) and an XB loan (the pool),
    filed in one batch by JSB, and one refused item."""
    a, b = member_enterprise(session).credit_code, member_enterprise(session).credit_code
    x = xb_enterprise(session).credit_code
    items = [
        skd_filing(a, "J-1"),
        skd_filing(b, "J-2", principal="2000000.00"),
        skd_filing(a, "J-3"),  # SKD-F3: refused, leaves no leg
        {**skd_filing(x, "J-4"), "program": "XB", "annual_rate_bp": 380},
    ]
    r = client.post("/api/v1/loans/batch", headers=auth("bank_jsb"), json={"items": items})
    assert r.status_code == 200, r.text
    results = r.json()["results"]
    assert [x["status"] for x in results] == ["accepted", "accepted", "refused", "accepted"]
    return [x["loan_id"] for x in results if x["loan_id"] is not None]


def _entries_of(client: TestClient, auth, who: str, loan_id: int) -> list[dict[str, Any]]:  # type: ignore[no-untyped-def]
    r = client.get("/api/v1/ledger/entries", headers=auth(who), params={"loan_id": loan_id})
    assert r.status_code == 200, r.text
    return list(r.json()["items"])


def test_a_batch_is_one_entry_per_set_of_books_with_a_leg_pair_per_loan(
    client: TestClient,
    auth,
    session: Session,  # type: ignore[no-untyped-def]
) -> None:
    """L-1: the batch's two Nanjing SKD loans share one entry (books SKD_PROV and
    SKD_CITY_320100), its XB loan has the pool's; each loan's legs name it, balance in
    each book on their own, and are exactly the legs its own filing would have posted."""
    entries = _count(session, LedgerEntry)
    loan_ids = _file_batch(client, auth, session)
    assert _count(session, LedgerEntry) == entries + 2
    (skd,) = _entries_of(client, auth, "regulator", loan_ids[1])
    (xb,) = _entries_of(client, auth, "regulator", loan_ids[2])
    assert _entries_of(client, auth, "regulator", loan_ids[0]) == [skd]
    assert (skd["event_type"], xb["event_type"]) == ("loan.batch_filed", "loan.batch_filed")
    assert (skd["event_id"], xb["event_id"]) == (str(loan_ids[0]), str(loan_ids[2]))
    assert skd["description"] == (
        "guarantee exposure of 2 loans filed in one batch by JSB (SKD_CITY_320100, SKD_PROV)"
    )
    assert xb["description"].endswith("1 loan filed in one batch by JSB (XB_POOL)")
    assert [g["loan_id"] for g in skd["legs"]] == [loan_ids[0]] * 4 + [loan_ids[1]] * 4
    assert [g["loan_id"] for g in xb["legs"]] == [loan_ids[2]] * 2
    by_loan: dict[int, list[tuple[str, str]]] = defaultdict(list)
    for leg in skd["legs"] + xb["legs"]:
        by_loan[leg["loan_id"]].append((leg["account_code"], leg["amount"]))
    for loan_id in loan_ids:
        loan = session.get_one(Loan, loan_id)
        own = exposure_entry(
            loan, 0, loan.principal_fen, loan.filed_on, event_type="x", key="x", why="x"
        )
        assert own is not None
        expected = [(g.account_code, format_fen(g.amount_fen)) for g in own.legs]
        assert sorted(by_loan[loan_id]) == sorted(expected)
        per_book: dict[str, int] = defaultdict(int)
        for g in own.legs:
            per_book[g.fund_code] += g.amount_fen
        assert set(per_book.values()) == {0}
    assert ledger.verify(session).ok

    # the statement of an exposure account: a line per loan's leg, naming it
    statement = client.get(
        "/api/v1/ledger/accounts/SKD_PROV:exposure_memo:JSB", headers=auth("regulator")
    ).json()
    lines = [ln for ln in statement["lines"] if ln["entry_id"] == skd["id"]]
    assert [ln["loan_id"] for ln in lines] == loan_ids[:2]  # a line per loan's leg
    assert [ln["amount"] for ln in lines] == ["400000.00", "800000.00"]  # 40 % (SKD-S1)


def test_a_fund_manager_sees_a_batchs_entries_only_for_their_books(
    client: TestClient,
    auth,
    session: Session,  # type: ignore[no-untyped-def]
) -> None:
    """An entry touches the books one loan's own entry would: Nanjing's and the
    province's managers see the SKD loans' entry, the pool's the XB loan's, Suzhou's
    neither — as when every loan had its own entry."""
    loan_ids = _file_batch(client, auth, session)
    seen = {
        who: [len(_entries_of(client, auth, who, i)) for i in (loan_ids[0], loan_ids[2])]
        for who in ("fund_nanjing", "fund_province", "fund_xb", "fund_suzhou")
    }
    assert seen == {
        "fund_nanjing": [1, 0],
        "fund_province": [1, 0],
        "fund_xb": [0, 1],
        "fund_suzhou": [0, 0],
    }


def test_a_single_filing_names_its_loan_and_the_filter_finds_older_entries(
    client: TestClient,
    auth,
    session: Session,  # type: ignore[no-untyped-def]
) -> None:
    """A single filing's own `loan.filed` entry names its loan on every leg; the loan
    filter also finds an entry of the loan's own event whose legs name no loan (posted
    before legs named loans) and nothing of other loans."""
    code = member_enterprise(session).credit_code
    r = client.post("/api/v1/loans", headers=auth("bank_jsb"), json=skd_filing(code, "S-1"))
    assert r.status_code == 201, r.text
    loan_id = r.json()["id"]
    older = ledger.post(
        session,
        event_type="loan.filed",
        event_id=str(loan_id),
        idempotency_key="older-shape",
        business_date=NOW_DAY,
        legs=[
            debit("SKD_PROV", "exposure_memo", 1, "JSB"),
            credit("SKD_PROV", "exposure_contra", 1, "JSB"),
        ],
        now=utcnow(),
    )
    session.flush()
    items = client.get(
        "/api/v1/ledger/entries", headers=auth("regulator"), params={"loan_id": loan_id}
    ).json()["items"]
    assert [e["event_type"] for e in items] == ["loan.filed", "loan.filed"]
    assert items[1]["id"] == older.id
    assert {leg["loan_id"] for leg in items[0]["legs"]} == {loan_id}
    assert {leg["loan_id"] for leg in items[1]["legs"]} == {None}
    none = client.get(
        "/api/v1/ledger/entries", headers=auth("regulator"), params={"loan_id": 10**12}
    )
    assert none.status_code == 200 and none.json()["items"] == []


def test_l1_legs_naming_a_loan_balance_per_loan_and_book() -> None:
    """Legs that balance per book but cross two loans' pairs are refused, naming both."""
    crossed = [
        debit("SKD_PROV", "exposure_memo", 100, "JSB", loan_id=1),
        credit("SKD_PROV", "exposure_contra", 100, "JSB", loan_id=2),
    ]
    with pytest.raises(LedgerRuleError) as caught:
        validate_legs(crossed)
    assert caught.value.problems == [
        "legs of loan 1 in book SKD_PROV sum to 100 fen, not zero",
        "legs of loan 2 in book SKD_PROV sum to -100 fen, not zero",
    ]
    validate_legs(  # the same with the loans paired is a valid batch of two
        [
            debit("SKD_PROV", "exposure_memo", 100, "JSB", loan_id=1),
            credit("SKD_PROV", "exposure_contra", 100, "JSB", loan_id=1),
            debit("SKD_PROV", "exposure_memo", 50, "JSB", loan_id=2),
            credit("SKD_PROV", "exposure_contra", 50, "JSB", loan_id=2),
        ]
    )


def test_l2_the_hash_covers_a_legs_loan_and_legs_without_one_hash_as_before() -> None:
    common = dict(
        prev_hash="0" * 64,
        seq=1,
        event_type="loan.batch_filed",
        event_id="1",
        idempotency_key="k",
        business_date=NOW_DAY,
        recorded_at=utcnow(),
        description="",
        reverses_entry_id=None,
    )
    plain = entry_hash(**common, legs=[("A", 1), ("B", -1)])  # type: ignore[arg-type]
    assert hashed_leg("A", 1, None) == ("A", 1)
    assert entry_hash(**common, legs=[hashed_leg("A", 1, None), hashed_leg("B", -1, None)]) == plain  # type: ignore[arg-type]
    one = entry_hash(**common, legs=[hashed_leg("A", 1, 7), hashed_leg("B", -1, 7)])  # type: ignore[arg-type]
    other = entry_hash(**common, legs=[hashed_leg("A", 1, 8), hashed_leg("B", -1, 8)])  # type: ignore[arg-type]
    assert len({plain, one, other}) == 3


def _bypass(connection: Connection, backend: str, sql: str) -> None:
    """Alter the journal as an attacker with DDL rights would: around the triggers."""
    if backend == "postgresql":
        connection.execute(text("SET LOCAL session_replication_role = replica"))
        connection.execute(text(sql))
        connection.execute(text("SET LOCAL session_replication_role = origin"))
    else:
        connection.execute(text("DROP TRIGGER IF EXISTS ledger_legs_no_update"))
        connection.execute(text(sql))


def test_l2_verify_catches_a_leg_moved_to_another_loan(
    client: TestClient,
    auth,
    session: Session,
    connection: Connection,
    backend: str,  # type: ignore[no-untyped-def]
) -> None:
    """Moving one loan's pair to another loan keeps every book and every pair balanced:
    only the hash, which covers the loans, tells."""
    loan_ids = _file_batch(client, auth, session)
    entry_id = session.scalar(
        select(LedgerLeg.entry_id).where(LedgerLeg.loan_id == loan_ids[0]).limit(1)
    )
    assert ledger.verify(session).ok
    _bypass(
        connection,
        backend,
        f"UPDATE ledger_legs SET loan_id = {loan_ids[1]} WHERE loan_id = {loan_ids[0]}",
    )
    session.expire_all()
    report = ledger.verify(session)
    assert report.first_break is not None and report.first_break.entry_id == entry_id
    assert "hash" in report.first_break.problem


def test_a_batch_entry_reversed_names_the_same_loans(
    client: TestClient,
    auth,
    session: Session,  # type: ignore[no-untyped-def]
) -> None:
    loan_ids = _file_batch(client, auth, session)
    entry_id = session.scalar(
        select(LedgerLeg.entry_id).where(LedgerLeg.loan_id == loan_ids[0]).limit(1)
    )
    r = client.post(
        f"/api/v1/ledger/entries/{entry_id}/reversal",
        headers=auth("admin"),
        json={"reason": "batch filed twice"},
    )
    assert r.status_code == 201, r.text
    original = client.get(f"/api/v1/ledger/entries/{entry_id}", headers=auth("regulator"))
    reversal = r.json()
    assert [(g["account_code"], g["loan_id"]) for g in reversal["legs"]] == [
        (g["account_code"], g["loan_id"]) for g in original.json()["legs"]
    ]
    assert ledger.verify(session).ok


def test_l5_a_batch_exports_to_beancount_with_each_postings_loan(
    client: TestClient,
    auth,
    session: Session,
    tmp_path: Path,  # type: ignore[no-untyped-def]
) -> None:
    from beancount import loader

    loan_ids = _file_batch(client, auth, session)
    path = tmp_path / "ledger.beancount"
    path.write_text("".join(export_beancount(session)), encoding="utf-8")
    exe = shutil.which("bean-check") or str(Path(sys.executable).parent / "bean-check")
    checked = subprocess.run([exe, str(path)], capture_output=True, text=True, timeout=120)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    entries, errors, _ = loader.load_file(str(path))
    assert not errors
    batch = [
        e
        for e in entries
        if getattr(e, "payee", None) == "loan.batch_filed"
        and e.meta["event"]
        in {f"loan.batch_filed:{loan_ids[0]}", f"loan.batch_filed:{loan_ids[2]}"}
    ]
    assert batch, "the batch's transactions"
    named = {p.meta["loan"] for t in batch for p in t.postings}
    assert named == {str(i) for i in loan_ids}
    per_loan: dict[tuple[str, str], int] = defaultdict(int)
    for t in batch:
        for p in t.postings:
            per_loan[(t.meta["book"], p.meta["loan"])] += int(p.units.number * 100)
    assert set(per_loan.values()) == {0}


def test_one_entry_may_carry_more_legs_than_a_smallint_counts(session: Session) -> None:
    """A batch of 10,000 loans carries up to 40,000 legs: positions past 32,767 are
    stored and the entry verifies."""
    pairs = 16_500
    legs: list[LegSpec] = []
    for _ in range(pairs):
        legs += [
            debit("SKD_PROV", "exposure_memo", 1, "JSB"),
            credit("SKD_PROV", "exposure_contra", 1, "JSB"),
        ]
    (entry_id,) = ledger.post_many(
        session,
        [EntrySpec("test.wide", "1", "wide-entry", NOW_DAY, legs)],
        now=utcnow(),
    )
    session.flush()
    top = session.scalar(select(func.max(LedgerLeg.position)).where(LedgerLeg.entry_id == entry_id))
    assert top == 2 * pairs - 1 > 32_767
    assert ledger.verify(session).ok


def test_l1_postgres_refuses_raw_legs_crossing_two_loans(
    session: Session, connection: Connection, backend: str
) -> None:
    """Raw SQL that skips the service: PostgreSQL refuses an entry whose book balances but
    whose legs naming a loan do not balance for that loan, and takes the same legs paired
    by loan."""
    if backend != "postgresql":
        pytest.skip("the database-side balance check is PostgreSQL's")
    loans = [skd_loan(session, bank="bank_jsb", region="320100").id for _ in range(2)]
    memo, contra = (
        int(
            connection.execute(
                text("SELECT id FROM ledger_accounts WHERE code = :c"),
                {"c": f"SKD_PROV:{kind}:JSB"},
            ).scalar_one()
        )
        for kind in ("exposure_memo", "exposure_contra")
    )

    def entry(entry_id: int, second_loan: int) -> None:
        for position, (account, fen, loan) in enumerate(
            ((memo, 100, loans[0]), (contra, -100, second_loan))
        ):
            connection.execute(
                text(
                    "INSERT INTO ledger_legs (entry_id, position, account_id, fund_code,"
                    " amount_fen, loan_id) VALUES (:e, :p, :a, 'SKD_PROV', :m, :loan)"
                ),
                {"e": entry_id, "p": position, "a": account, "m": fen, "loan": loan},
            )
        connection.execute(
            text(
                "INSERT INTO ledger_entries (id, event_type, event_id, idempotency_key,"
                " business_date, recorded_at, description, prev_hash, hash)"
                " VALUES (:e, 'raw', 'raw', :k, '2026-03-31', now(), '', '', '')"
            ),
            {"e": entry_id, "k": f"raw-{entry_id}"},
        )

    nested = connection.begin_nested()
    with pytest.raises(DBAPIError) as info:
        entry(90001, loans[1])
    nested.rollback()
    assert f"does not balance in book SKD_PROV for loan {loans[0]}" in str(info.value.orig)
    nested = connection.begin_nested()
    entry(90002, loans[0])  # the same legs, one loan's pair: accepted
    nested.rollback()


def test_l4_a_retry_across_the_upgrade_replays_and_another_loan_conflicts(
    session: Session,
) -> None:
    """L-4: an entry posted before legs named loans, re-posted with the same key and legs
    now naming a loan, is the same entry; once legs name a loan, the same key with
    another loan is a conflict."""
    loans = [skd_loan(session, bank="bank_jsb", region="320100").id for _ in range(2)]

    def legs(loan: int | None) -> list[LegSpec]:
        return [
            debit("SKD_PROV", "exposure_memo", 100, "JSB", loan_id=loan),
            credit("SKD_PROV", "exposure_contra", 100, "JSB", loan_id=loan),
        ]

    def post(key: str, loan: int | None) -> int:
        (entry_id,) = ledger.post_many(
            session, [EntrySpec("loan.filed", "1", key, NOW_DAY, legs(loan))], now=utcnow()
        )
        return entry_id

    older = post("retried-older", None)
    assert post("retried-older", loans[0]) == older
    named = post("retried-named", loans[0])
    assert post("retried-named", loans[0]) == named
    with pytest.raises(ledger.LedgerKeyReused):
        post("retried-named", loans[1])
