"""The double-entry ledger (SPEC §5: L-1…L-5)."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from datetime import date
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import Connection, func, select, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from app.errors import Conflict, Unprocessable
from app.kit.money import parse_yuan
from app.ledger import service as ledger
from app.ledger.export import export_beancount
from app.ledger.postings import GENESIS_HASH, credit, debit
from app.models import LedgerAccount, LedgerEntry, LedgerLeg
from tests.fixtures.ledger import NOW, post, raw_refused, reversed_contribution, skd_example_1

CITY, PROV, POOL = "SKD_CITY_320100", "SKD_PROV", "XB_POOL"
NANJING = "FINANCE_320100"  # the city fund's contributor, 南京市财政局


def _balance(session: Session, code: str, as_of: date | None = None) -> int:
    return ledger.account_balance(session, code, as_of=as_of)


def _counts(session: Session) -> tuple[int, int]:
    return (
        int(session.scalar(select(func.count()).select_from(LedgerEntry)) or 0),
        int(session.scalar(select(func.count()).select_from(LedgerLeg)) or 0),
    )


# --- L-1 the one writer --------------------------------------------------------------
def test_l1_post_links_entries_in_a_hash_chain(session: Session) -> None:
    head_before = ledger.repo.head(session)
    assert head_before is not None
    a = post(session, [debit(CITY, "cash", 500), credit(CITY, "contributed_capital", 500, NANJING)])
    b = post(session, [debit(CITY, "cash", 700), credit(CITY, "contributed_capital", 700, NANJING)])
    assert b.id == a.id + 1
    assert b.prev_hash == a.hash and len(a.hash) == 64 and a.hash != b.hash
    assert ledger.verify(session).ok


def test_l1_refuses_unbalanced_and_lists_every_problem(session: Session) -> None:
    before = _counts(session)
    with pytest.raises(Unprocessable) as info:
        post(
            session,
            [
                debit(CITY, "cash", 100),
                credit(CITY, "contributed_capital", 99, NANJING),
                debit(PROV, "cash", 0),
                debit(PROV, "nonsense", 5),
            ],
        )
    problems = [v.msg for v in info.value.errors]
    assert info.value.code == "unbalanced_entry" and info.value.rule == "L-1"
    assert any("sum to 1 fen" in p for p in problems)
    assert any("must not be zero" in p for p in problems)
    assert any("unknown account kind" in p for p in problems)
    assert _counts(session) == before


@pytest.mark.parametrize(
    "legs",
    [
        [],
        [debit(CITY, "cash", 100)],
        [debit(CITY, "cash", 100), credit(CITY, "payable_bank", 100)],  # bank account without bank
        [debit(CITY, "cash", 100), credit(CITY, "cash", 100, "JSB")],  # cash takes no counterparty
    ],
)
def test_l1_refuses_malformed_entries(session: Session, legs: list) -> None:  # type: ignore[type-arg]
    with pytest.raises(Unprocessable):
        post(session, legs)


def test_l1_balanced_overall_but_not_per_book_is_refused(session: Session) -> None:
    """A cross-fund movement needs due-to/due-from in each book, not one leg per book."""
    with pytest.raises(Unprocessable) as info:
        post(session, [debit(CITY, "cash", 100), credit(PROV, "cash", 100)])
    assert {v.msg for v in info.value.errors} == {
        f"legs in book {CITY} sum to 100 fen, not zero",
        f"legs in book {PROV} sum to -100 fen, not zero",
    }
    post(
        session,
        [
            debit(CITY, "cash", 100),
            credit(CITY, "due_to_fund", 100, PROV),
            debit(PROV, "due_from_fund", 100, CITY),
            credit(PROV, "cash", 100),
        ],
    )


def test_l1_unknown_counterparty_is_refused(session: Session) -> None:
    with pytest.raises(Unprocessable) as info:
        post(
            session,
            [
                debit(CITY, "compensation_expense", 1, "NOBANK"),
                credit(CITY, "payable_bank", 1, "NOBANK"),
            ],
        )
    assert "unknown bank 'NOBANK'" in {v.msg for v in info.value.errors}


def test_l4_reposting_a_key_returns_the_first_entry(session: Session) -> None:
    legs = [debit(CITY, "cash", 100), credit(CITY, "contributed_capital", 100, NANJING)]
    before = _balance(session, f"{CITY}:cash")
    first = post(session, legs, key="same-key")
    assert post(session, legs, key="same-key").id == first.id
    assert _balance(session, f"{CITY}:cash") == before + 100
    with pytest.raises(Conflict) as info:
        post(
            session,
            [debit(CITY, "cash", 101), credit(CITY, "contributed_capital", 101, NANJING)],
            key="same-key",
        )
    assert info.value.code == "ledger_key_reused"


# --- L-2 corrections by reversal -----------------------------------------------------
def test_l2_reversal_negates_and_links(session: Session) -> None:
    e = skd_example_1(session)["city_payment"]
    before = _balance(session, f"{CITY}:cash")
    rev = ledger.reverse(
        session, entry_id=e.id, business_date=date(2026, 2, 11), reason="wrong", now=NOW
    )
    assert rev.reverses_entry_id == e.id
    assert _balance(session, f"{CITY}:cash") == before + 240_000_000
    assert _balance(session, f"{CITY}:payable_bank:JSB") == -240_000_000
    # as of the day before the reversal, the payment still stands
    assert _balance(session, f"{CITY}:payable_bank:JSB", date(2026, 2, 10)) == 0
    again = ledger.reverse(
        session, entry_id=e.id, business_date=date(2026, 2, 11), reason="wrong", now=NOW
    )
    assert again.id == rev.id  # the same reversal, idempotently
    with pytest.raises(Conflict) as info:
        ledger.reverse(
            session,
            entry_id=e.id,
            business_date=date(2026, 2, 12),
            reason="x",
            now=NOW,
            idempotency_key="another",
        )
    assert info.value.code == "already_reversed"
    with pytest.raises(Conflict) as info:
        ledger.reverse(
            session, entry_id=rev.id, business_date=date(2026, 2, 12), reason="x", now=NOW
        )
    assert info.value.code == "cannot_reverse_reversal"
    with pytest.raises(Unprocessable):
        ledger.reverse(
            session,
            entry_id=e.id,
            business_date=date(2026, 1, 1),
            reason="x",
            now=NOW,
            idempotency_key="early",
        )


def test_l2_database_refuses_update_and_delete(session: Session, connection: Connection) -> None:
    e = post(session, [debit(CITY, "cash", 100), credit(CITY, "contributed_capital", 100, NANJING)])
    session.flush()
    for sql in (
        f"UPDATE ledger_legs SET amount_fen = amount_fen * 2 WHERE entry_id = {e.id}",
        f"DELETE FROM ledger_legs WHERE entry_id = {e.id}",
        f"UPDATE ledger_entries SET description = 'x' WHERE id = {e.id}",
        f"DELETE FROM ledger_entries WHERE id = {e.id}",
    ):
        assert "append-only" in raw_refused(connection, sql)


def test_l2_the_chart_of_accounts_is_append_only_too(
    session: Session, connection: Connection
) -> None:
    """An `UPDATE ledger_accounts SET counterparty=…` once re-attributed a bank's
    postings in every statement and export while `verify` still passed."""
    post(session, [debit(CITY, "cash", 100), credit(CITY, "contributed_capital", 100, NANJING)])
    session.flush()
    code = session.scalars(
        select(LedgerAccount.code).where(LedgerAccount.counterparty == NANJING)
    ).first()
    assert code is not None
    for sql in (
        f"UPDATE ledger_accounts SET counterparty = 'OTHER' WHERE code = '{code}'",
        f"UPDATE ledger_accounts SET code = code || 'X' WHERE code = '{code}'",
        f"DELETE FROM ledger_accounts WHERE code = '{code}'",
    ):
        assert "append-only" in raw_refused(connection, sql)


def test_l2_postgres_refuses_truncate(
    session: Session, connection: Connection, backend: str
) -> None:
    if backend != "postgresql":
        pytest.skip("TRUNCATE exists on PostgreSQL only")
    assert "append-only" in raw_refused(connection, "TRUNCATE ledger_legs CASCADE")


def _raw_entry(connection: Connection, entry_id: int, key: str) -> None:
    connection.execute(
        text(
            "INSERT INTO ledger_entries (id, event_type, event_id, idempotency_key, business_date,"
            " recorded_at, description, prev_hash, hash) VALUES (:id, 'raw', 'raw', :key,"
            " '2026-01-05', now(), '', :h, :h)"
        ),
        {"id": entry_id, "key": key, "h": GENESIS_HASH},
    )


def _raw_legs(connection: Connection, entry_id: int, *legs: tuple[int, int]) -> None:
    for account, amount in legs:
        connection.execute(
            text(
                "INSERT INTO ledger_legs (entry_id, position, account_id, fund_code, amount_fen) "
                "VALUES (:e, (SELECT count(*) FROM ledger_legs WHERE entry_id = :e), :a, :f, :m)"
            ),
            {"e": entry_id, "a": account, "f": CITY, "m": amount},
        )


def _account_id(connection: Connection, code: str) -> int:
    return int(
        connection.execute(
            text("SELECT id FROM ledger_accounts WHERE code = :c"), {"c": code}
        ).scalar_one()
    )


def _refused(connection: Connection, build) -> str:  # type: ignore[no-untyped-def]
    """Run raw SQL in a savepoint, force deferred checks, and return the refusal."""
    nested = connection.begin_nested()
    try:
        with pytest.raises(DBAPIError) as info:
            build()
            connection.execute(text("SET CONSTRAINTS ALL IMMEDIATE"))
    finally:
        nested.rollback()
    return str(info.value.orig)


def test_l1_postgres_refuses_raw_sql_that_does_not_balance(
    session: Session, connection: Connection, backend: str
) -> None:
    """Raw SQL that skips the service: PostgreSQL still refuses every entry that is not a
    balanced double entry, and legs added to an entry after the fact."""
    if backend != "postgresql":
        pytest.skip("the database-side balance check is PostgreSQL's")
    e = post(session, [debit(CITY, "cash", 100), credit(CITY, "contributed_capital", 100, NANJING)])
    session.flush()
    cash = _account_id(connection, f"{CITY}:cash")
    cap = _account_id(connection, f"{CITY}:contributed_capital:{NANJING}")

    def entry_after_legs(entry_id: int, *legs: tuple[int, int]):  # type: ignore[no-untyped-def]
        def build() -> None:
            _raw_legs(connection, entry_id, *legs)
            _raw_entry(connection, entry_id, f"raw-{entry_id}")

        return build

    assert "does not balance" in _refused(
        connection, entry_after_legs(90001, (cash, 100), (cap, -99))
    )
    assert "at least two" in _refused(connection, entry_after_legs(90002))
    assert "at least two" in _refused(connection, entry_after_legs(90003, (cash, 100)))
    assert "existing ledger entry" in _refused(
        connection, lambda: _raw_legs(connection, e.id, (cash, 5))
    )
    # legs whose entry never arrives fail the deferred foreign key at commit
    assert "foreign key" in _refused(
        connection, lambda: _raw_legs(connection, 90004, (cash, 7), (cap, -7))
    )
    # a balanced raw entry passes (the hash chain is verify's business)
    nested = connection.begin_nested()
    entry_after_legs(90005, (cash, 100), (cap, -100))()
    connection.execute(text("SET CONSTRAINTS ALL IMMEDIATE"))
    nested.rollback()


# --- tamper evidence -----------------------------------------------------------------
def _bypass_and_run(connection: Connection, backend: str, sql: str) -> None:
    """Alter the journal as an attacker with DDL rights would: around the triggers."""
    if backend == "postgresql":
        connection.execute(text("SET LOCAL session_replication_role = replica"))
        connection.execute(text(sql))
        connection.execute(text("SET LOCAL session_replication_role = origin"))
    else:
        for t in (
            "ledger_legs_no_update",
            "ledger_entries_no_update",
            "ledger_entries_no_delete",
            "ledger_legs_no_delete",
        ):
            connection.execute(text(f"DROP TRIGGER IF EXISTS {t}"))
        connection.execute(text(sql))


def test_verify_reports_the_first_altered_entry(
    session: Session, connection: Connection, backend: str
) -> None:
    entries = skd_example_1(session)
    session.flush()
    assert ledger.verify(session).ok
    target = entries["reimbursement"]
    _bypass_and_run(
        connection,
        backend,
        f"UPDATE ledger_legs SET amount_fen = amount_fen + 1 WHERE entry_id = {target.id} "
        f"AND amount_fen = 120000000 AND fund_code = '{CITY}'",
    )
    session.expire_all()
    report = ledger.verify(session)
    assert not report.ok
    assert report.first_break is not None and report.first_break.entry_id == target.id
    assert "L-1" in report.first_break.problem  # the book no longer sums to zero
    assert report.book_sums[CITY] == 1


def test_verify_detects_a_changed_description_and_a_removed_tail(
    session: Session, connection: Connection, backend: str
) -> None:
    entries = skd_example_1(session)
    session.flush()
    e = entries["city_payment"]
    _bypass_and_run(
        connection, backend, f"UPDATE ledger_entries SET description = 'edited' WHERE id = {e.id}"
    )
    session.expire_all()
    report = ledger.verify(session)
    assert report.first_break is not None and report.first_break.entry_id == e.id
    assert "hash" in report.first_break.problem


def test_verify_detects_removed_last_entry(
    session: Session, connection: Connection, backend: str
) -> None:
    last = skd_example_1(session)["pass_on"]
    session.flush()
    _bypass_and_run(connection, backend, f"DELETE FROM ledger_legs WHERE entry_id = {last.id}")
    _bypass_and_run(connection, backend, f"DELETE FROM ledger_entries WHERE id = {last.id}")
    session.expire_all()
    report = ledger.verify(session)
    assert report.first_break is not None and "chain head" in report.first_break.problem


# --- L-3 reads (cash = contributions − compensation + returns on real claims:
# tests/test_ledger_l3.py) -----------------------------------------------------------
def test_l3_spec_example_1_money_events_balance_per_book(session: Session) -> None:
    city_cash = _balance(session, f"{CITY}:cash")
    prov_cash = _balance(session, f"{PROV}:cash")
    skd_example_1(session)
    # city: paid 2,400,000, got 1,200,000 back, received 760,000, passed on 380,000
    assert (
        _balance(session, f"{CITY}:cash") - city_cash
        == -240_000_000 + 120_000_000 + 76_000_000 - 38_000_000
    )
    assert _balance(session, f"{PROV}:cash") - prov_cash == -120_000_000 + 38_000_000
    assert _balance(session, f"{CITY}:compensation_expense:JSB") == 120_000_000
    assert _balance(session, f"{PROV}:compensation_expense:JSB") == 120_000_000
    assert _balance(session, f"{CITY}:recovery_income:JSB") == -38_000_000
    assert _balance(session, f"{PROV}:recovery_income:JSB") == -38_000_000
    for code in (
        f"{CITY}:due_from_fund:{PROV}",
        f"{CITY}:due_to_fund:{PROV}",
        f"{PROV}:due_to_fund:{CITY}",
        f"{PROV}:due_from_fund:{CITY}",
        f"{CITY}:payable_bank:JSB",
    ):
        assert _balance(session, code) == 0, code
    # as of the day of the city payment the province still owes the city its part
    assert _balance(session, f"{CITY}:due_from_fund:{PROV}", date(2026, 2, 10)) == 120_000_000
    books = ledger.trial_balance(session, as_of=None, funds=None)
    assert books and all(b.balanced for b in books)


def test_statement_has_running_balance(session: Session) -> None:
    skd_example_1(session)
    account = ledger.repo.account_by_code(session, f"{CITY}:cash")
    assert account is not None
    st = ledger.statement(session, account, since=date(2026, 2, 1), until=date(2026, 3, 31))
    assert [ln.amount_fen for ln in st.lines] == [
        -240_000_000,
        120_000_000,
        76_000_000,
        -38_000_000,
    ]
    running = st.opening_fen
    for ln in st.lines:
        running += ln.amount_fen
        assert ln.running_fen == running
    assert st.closing_fen == _balance(session, f"{CITY}:cash", date(2026, 3, 31))


# --- L-5 Beancount -------------------------------------------------------------------
def _bean_check(path: Path) -> subprocess.CompletedProcess[str]:
    exe = shutil.which("bean-check") or str(Path(sys.executable).parent / "bean-check")
    return subprocess.run([exe, str(path)], capture_output=True, text=True, timeout=120)


def test_l5_export_passes_bean_check_and_a_one_fen_error_fails(
    session: Session, tmp_path: Path
) -> None:
    entries = skd_example_1(session)
    ledger.reverse(
        session,
        entry_id=entries["recovery"].id,
        business_date=date(2026, 3, 2),
        reason="recovery booked twice",
        now=NOW,
    )
    post(session, [debit(POOL, "cash", 1), credit(POOL, "contributed_capital", 1, "XUWEI")])
    text_export = "".join(export_beancount(session))
    good = tmp_path / "ledger.beancount"
    good.write_text(text_export, encoding="utf-8")
    ok = _bean_check(good)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "reverses:" in text_export and "Expenses:SKD-CITY-320100:Compensation:JSB" in text_export

    bad = tmp_path / "corrupt.beancount"
    needle = "  Assets:SKD-PROV:Cash  -1200000.00 CNY\n"
    assert needle in text_export
    bad.write_text(
        text_export.replace(needle, "  Assets:SKD-PROV:Cash  -1200000.01 CNY\n", 1),
        encoding="utf-8",
    )
    failed = _bean_check(bad)
    assert failed.returncode != 0
    assert "does not balance" in failed.stdout + failed.stderr


# --- API -----------------------------------------------------------------------------
def test_api_contribution_capital_and_entries(client: TestClient, auth) -> None:  # type: ignore[no-untyped-def]
    cap = client.get("/api/v1/funds/XB_POOL/capital", headers=auth("regulator")).json()
    assert cap["committed"] == "500000000.00" and cap["paid_in"] == "100000000.00"
    paid = {c["contributor"]: c["paid_in"] for c in cap["contributors"]}
    assert paid == {
        "LYG_CITY": "50000000.00",
        "HAIZHOU": "22000000.00",
        "LIANYUN": "6000000.00",
        "KFQ": "20000000.00",
        "XUWEI": "1400000.00",
        "YUNTAI": "600000.00",
    }

    cash = "/api/v1/ledger/accounts/XB_POOL:cash"
    before = parse_yuan(client.get(cash, headers=auth("fund_xb")).json()["closing_balance"])
    r = client.post(
        "/api/v1/funds/XB_POOL/contributions",
        headers=auth("admin"),
        json={"contributor": "XUWEI", "amount": "600000.00", "paid_on": "2026-03-02"},
    )
    assert r.status_code == 201, r.text
    assert r.json()["paid_to_date"] == "2000000.00" and r.json()["committed"] == "7000000.00"
    over = client.post(
        "/api/v1/funds/XB_POOL/contributions",
        headers=auth("admin"),
        json={"contributor": "XUWEI", "amount": "5000000.01", "paid_on": "2026-03-02"},
    )
    assert over.status_code == 422
    assert over.json()["errors"][0]["code"] == "contribution_exceeds_commitment"
    unknown = client.post(
        "/api/v1/funds/XB_POOL/contributions",
        headers=auth("admin"),
        json={"contributor": "NOBODY", "amount": "0", "paid_on": "2026-03-02"},
    )
    assert {tuple(e["loc"]) for e in unknown.json()["errors"]} == {
        ("body", "contributor"),
        ("body", "amount"),
    }

    entry = client.get(
        f"/api/v1/ledger/entries/{r.json()['entry_id']}", headers=auth("fund_xb")
    ).json()
    assert [(g["account_code"], g["side"], g["amount"]) for g in entry["legs"]] == [
        ("XB_POOL:cash", "debit", "600000.00"),
        ("XB_POOL:contributed_capital:XUWEI", "credit", "-600000.00"),
    ]
    stmt = client.get(cash, headers=auth("fund_xb")).json()
    assert parse_yuan(stmt["closing_balance"]) == before + 600_000_00
    assert stmt["lines"][-1]["running_balance"] == stmt["closing_balance"]


def test_api_scopes_books_to_the_fund_manager(client: TestClient, auth) -> None:  # type: ignore[no-untyped-def]
    tb = client.get("/api/v1/ledger/trial-balance", headers=auth("fund_nanjing")).json()
    assert [b["fund_code"] for b in tb["books"]] == [CITY] and tb["balanced"]
    assert (
        client.get(f"/api/v1/ledger/accounts/{POOL}:cash", headers=auth("fund_nanjing")).status_code
        == 404
    )
    entries = client.get("/api/v1/ledger/entries?limit=500", headers=auth("fund_nanjing")).json()[
        "items"
    ]
    assert entries and all(any(g["fund_code"] == CITY for g in e["legs"]) for e in entries)
    assert client.get("/api/v1/ledger/trial-balance", headers=auth("bank_jsb")).status_code == 403
    everything = client.get("/api/v1/ledger/trial-balance", headers=auth("regulator")).json()
    assert {b["fund_code"] for b in everything["books"]} >= {CITY, PROV, POOL}
    assert all(b["total_debit"] == b["total_credit"] for b in everything["books"])


def test_api_entries_filters_and_pages(client: TestClient, auth, session: Session) -> None:  # type: ignore[no-untyped-def]
    reversed_contribution(session)  # 12 entries with the seed's capital
    h = auth("regulator")
    seqs, cursor = [], None
    while True:
        page = client.get(
            "/api/v1/ledger/entries?limit=4" + (f"&cursor={cursor}" if cursor else ""), headers=h
        ).json()
        seqs += [e["id"] for e in page["items"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert seqs == sorted(seqs) and len(seqs) == len(set(seqs)) >= 12
    only = client.get(
        f"/api/v1/ledger/entries?fund_code={POOL}&event_type=contribution&until=2025-12-31",
        headers=h,
    ).json()
    assert len(only["items"]) == 6  # the XB-F0 initial capital, one entry per contributor
    reversals = [
        e
        for e in client.get("/api/v1/ledger/entries?fund_code=SKD_CITY_320500", headers=h).json()[
            "items"
        ]
        if e["reverses_entry_id"]
    ]
    assert len(reversals) == 1
    original = client.get(
        f"/api/v1/ledger/entries/{reversals[0]['reverses_entry_id']}", headers=h
    ).json()
    assert original["reversed_by_entry_id"] == reversals[0]["id"]


def parse_signed(text_amount: str) -> int:
    return -parse_yuan(text_amount[1:]) if text_amount.startswith("-") else parse_yuan(text_amount)


def test_api_reversal_endpoint(client: TestClient, auth) -> None:  # type: ignore[no-untyped-def]
    first = client.get(
        f"/api/v1/ledger/entries?fund_code={CITY}", headers=auth("regulator")
    ).json()["items"][0]
    r = client.post(
        f"/api/v1/ledger/entries/{first['id']}/reversal",
        headers=auth("admin"),
        json={"reason": "wrong contributor", "business_date": "2026-03-31"},
    )
    assert r.status_code == 201, r.text
    reversed_legs = [(g["account_code"], parse_signed(g["amount"])) for g in r.json()["legs"]]
    assert reversed_legs == [(g["account_code"], -parse_signed(g["amount"])) for g in first["legs"]]
    assert r.json()["reverses_entry_id"] == first["id"]
    again = client.post(
        f"/api/v1/ledger/entries/{first['id']}/reversal",
        headers=auth("admin"),
        json={"reason": "wrong contributor", "business_date": "2026-03-31"},
    )
    assert again.status_code == 201 and again.json()["id"] == r.json()["id"]
    assert (
        client.post(
            f"/api/v1/ledger/entries/{first['id']}/reversal",
            headers=auth("fund_nanjing"),
            json={"reason": "x"},
        ).status_code
        == 403
    )


def test_api_verify_and_export(client: TestClient, auth, session: Session) -> None:  # type: ignore[no-untyped-def]
    reversed_contribution(session)  # 12 entries with the seed's capital
    v = client.get("/api/v1/ledger/verify", headers=auth("regulator")).json()
    assert v["ok"] and v["first_break"] is None and v["entries_checked"] == v["head_entry_id"] >= 12
    assert set(v["book_sums"].values()) == {"0.00"}
    ex = client.get("/api/v1/ledger/export.beancount", headers=auth("fund_xb"))
    assert ex.status_code == 200 and ex.headers["content-type"].startswith("text/plain")
    assert "XB-POOL" in ex.text and "SKD-PROV" not in ex.text


def test_cli_verify_reports_ok_and_breaks(
    database_url: str,
    backend: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """`ledger verify` on the suite's committed journal (the seed's): intact, exit 0."""
    from app import cli
    from app.config import get_settings

    monkeypatch.setenv("DATABASE_URL", database_url)
    get_settings.cache_clear()
    try:
        with pytest.raises(SystemExit) as info:
            cli.main(["verify"])
    finally:
        get_settings.cache_clear()
    out = capsys.readouterr().out
    assert info.value.code == 0, out
    assert "ledger verified" in out and "entries checked: " in out


def test_cli_verify_exits_1_on_a_break(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from app import cli
    from app.ledger import service

    broken = service.VerifyReport(
        entries_checked=3,
        head_entry_id=3,
        book_sums={"SKD_PROV": 1},
        first_break=service.ChainBreak(entry_id=2, problem="content does not match"),
    )
    monkeypatch.setattr(service, "verify", lambda _session: broken)
    monkeypatch.setattr(cli, "_session", lambda: Session())
    assert cli.verify_cmd() == 1
    assert "LEDGER BROKEN at entry 2: content does not match" in capsys.readouterr().out


def test_l5_codes_that_differ_only_in_dash_and_underscore_keep_their_own_accounts(
    session: Session, tmp_path: Path
) -> None:
    """`LYG-RCB` and `LYG_RCB` once merged into one Beancount account and bean-check
    passed: every different code now names a different account."""
    from app.models import Bank

    if session.get(Bank, "LYG_RCB") is None:
        session.add(Bank(code="LYG_RCB", name="连云港农商行", unit_level="head_office"))
    session.add(Bank(code="LYG-RCB", name="另一家银行", unit_level="head_office"))
    session.flush()
    post(session, [debit(POOL, "cash", 100), credit(POOL, "recovery_income", 100, "LYG_RCB")])
    post(session, [debit(POOL, "cash", 7), credit(POOL, "recovery_income", 7, "LYG-RCB")])
    text_export = "".join(export_beancount(session))
    path = tmp_path / "ledger.beancount"
    path.write_text(text_export, encoding="utf-8")
    ok = _bean_check(path)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    lines = text_export.splitlines()
    assert any(ln.endswith(":LYG-RCB -1.00 CNY") for ln in lines), text_export[-2000:]
    assert any(ln.endswith(":XxLYGx2dRCB -0.07 CNY") for ln in lines), text_export[-2000:]


@given(st.text(min_size=1, max_size=12), st.text(min_size=1, max_size=12))
def test_l5_account_components_are_valid_and_never_shared(a: str, b: str) -> None:
    from app.ledger.postings import bean_component

    for code in (a, b):
        assert re.fullmatch(r"[A-Z0-9][A-Za-z0-9-]*", bean_component(code)), code
    if a != b:
        assert bean_component(a) != bean_component(b)
