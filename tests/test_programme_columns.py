"""Migration 0017 and what uses it: programme codes as a reference table (every `program`
column a foreign key to `programs`, a programme registered at runtime given its row by
`ensure_program_rows`), `loans.fund_code` as a column set by every filing path, loan
status changes through `set_status` with their history, and the append-only
`loan_transitions` and `claim_shares`."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime

import pytest
from sqlalchemy import Connection, Engine, func, select, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session, sessionmaker

from app.claims import repository as claims_repo
from app.config import Settings
from app.errors import Conflict
from app.loans.status import LOAN_TRANSITIONS, set_status
from app.models import Loan, LoanTransition, ProgramRecord, User
from app.programs.base import get_program, program_codes, register, unregister
from app.reference.programs import ensure_program_rows
from tests.fixtures.api import Api, api_fixture
from tests.fixtures.factories import member_enterprise, skd_claim, skd_loan, xb_enterprise
from tests.fixtures.ledger import raw_refused

NOW = datetime(2026, 3, 31, 9, tzinfo=UTC)
# every column of a loan a filing writes, to copy one in raw SQL
LOAN_COPY = [c.key for c in Loan.__table__.columns if c.key not in ("id", "closed_at")]


@pytest.fixture
def api(  # type: ignore[no-untyped-def]
    settings: Settings, engine: Engine, session_factory: sessionmaker[Session], auth
) -> Iterator[Api]:
    yield from api_fixture(settings, engine, session_factory, auth)


def _user_id(session: Session, username: str) -> int:
    return int(session.scalars(select(User.id).where(User.username == username)).one())


def _refused_by_key(connection: Connection, backend: str, table: str, sql: str) -> None:
    message = raw_refused(connection, sql)
    assert "foreign key" in message.lower(), (table, message)
    if backend == "postgresql":
        assert f"fk_{table}_program_programs" in message, message


# --- programmes ------------------------------------------------------------------------
def test_programme_codes_are_a_reference_table(
    backend: str, session: Session, connection: Connection
) -> None:
    """`programs` holds the registered programmes; a row naming an unknown programme is
    refused by the foreign key of every `program` column (the CHECK of funds, agreements,
    loans and claims is gone: the key alone decides), on both databases."""
    rows = {p.code: (p.name_zh, p.name_en) for p in session.scalars(select(ProgramRecord))}
    assert rows == {c: (get_program(c).name_zh, get_program(c).name_en) for c in program_codes()}
    assert {"SKD", "XB"} <= set(rows)
    claim = skd_claim(session)  # an SKD loan, its claim, a library admission
    admin = _user_id(session, "admin")
    copy = ", ".join(LOAN_COPY)
    values = ", ".join(
        "'ZZ'" if c == "program" else "'FK-ZZ-1'" if c == "contract_no" else c for c in LOAN_COPY
    )
    for table, sql in (
        ("funds", "UPDATE funds SET program = 'ZZ' WHERE code = 'XB_KCD'"),
        ("agreements", "UPDATE agreements SET program = 'ZZ'"),
        (
            "loans",
            f"INSERT INTO loans ({copy}) SELECT {values} FROM loans WHERE id = {claim.loan_id}",
        ),
        ("claims", f"UPDATE claims SET program = 'ZZ' WHERE id = {claim.id}"),
        ("program_quotas", "UPDATE program_quotas SET program = 'ZZ'"),
        ("library_events", "UPDATE library_events SET program = 'ZZ'"),
        (
            "quarter_evaluations",
            "INSERT INTO quarter_evaluations (program, year, quarter, quarter_end, actor_id,"
            f" run_at) VALUES ('ZZ', 2026, 1, '2026-03-31', {admin}, '2026-04-01 00:00:00')",
        ),
    ):
        _refused_by_key(connection, backend, table, sql)
    # the same statements with a known programme pass (the key refused, not the statement)
    nested = connection.begin_nested()
    connection.execute(text("UPDATE funds SET program = 'SKD' WHERE code = 'XB_KCD'"))
    known = values.replace("'ZZ'", "'SKD'")
    connection.execute(
        text(f"INSERT INTO loans ({copy}) SELECT {known} FROM loans WHERE id = {claim.loan_id}")
    )
    nested.rollback()


@dataclass(frozen=True)
class _PlugIn:
    """The part of a programme `ensure_program_rows` reads."""

    code: str
    name_zh: str
    name_en: str


def test_a_programme_registered_at_runtime_gets_its_row(
    session: Session, connection: Connection
) -> None:
    """SKD and XB come with the migration (nothing to add); a plug-in registered at runtime
    gets its `programs` row from `ensure_program_rows`, once, and its code is then
    accepted where it was refused."""
    assert ensure_program_rows(session) == 0
    assert (
        "foreign key"
        in raw_refused(connection, "UPDATE funds SET program = 'ZZ' WHERE code = 'XB_KCD'").lower()
    )
    register(_PlugIn("ZZ", "测试计划", "Test programme"))  # type: ignore[arg-type]
    try:
        assert ensure_program_rows(session) == 1
        assert ensure_program_rows(session) == 0
        row = session.get(ProgramRecord, "ZZ")
        assert row is not None and (row.name_zh, row.name_en) == ("测试计划", "Test programme")
        session.execute(text("UPDATE funds SET program = 'ZZ' WHERE code = 'XB_KCD'"))
        session.flush()
    finally:
        unregister("ZZ")


# --- loans.fund_code -------------------------------------------------------------------
def _rule(loan: Loan) -> str | None:
    """What the migration backfills and `_new_loan` sets: the fund `extra` names."""
    return loan.extra.get("city_fund") or loan.extra.get("sub_fund")


def test_fund_code_is_set_by_single_and_batch_filing(api: Api, session: Session) -> None:
    """SKD: the enterprise's city fund; XB: the sub-fund — whether filed one by one or in
    a batch (COPY on PostgreSQL, one multi-row INSERT elsewhere), and equal to what the
    migration backfills from `extra` for every loan; the API shows it."""
    skd = api.file_loan(
        "bank_ccb",
        member_enterprise(session, region="320500").credit_code,
        "1000000.00",
        "2026-03-02",
        "2026-09-02",
    )
    xb = api.file_loan(
        "bank_lyg",
        xb_enterprise(session).credit_code,
        "600000.00",
        "2026-01-05",
        "2026-07-05",
        program="XB",
        rate=380,
        sub_fund="XB_KCD",
    )
    body = {
        "program": "SKD",
        "principal": "1000000.00",
        "annual_rate_bp": 340,
        "disbursed_on": "2026-03-02",
        "maturity_on": "2026-09-02",
        "security": "credit",
        "controller_guarantee": True,
    }
    items = [
        {**body, "contract_no": f"FC-{region}", "enterprise_credit_code": code}
        for region, code in (
            (r, member_enterprise(session, region=r).credit_code) for r in ("320100", "320500")
        )
    ]
    batch = api.call("2026-03-04", "bank_jsb", "POST", "/loans/batch", json={"items": items})
    assert batch["accepted"] == 2, batch
    xb_batch = api.call(
        "2026-01-06",
        "bank_lyg",
        "POST",
        "/loans/batch",
        json={
            "items": [
                {
                    **body,
                    "program": "XB",
                    "annual_rate_bp": 380,
                    "disbursed_on": "2026-01-05",
                    "maturity_on": "2026-07-05",
                    "contract_no": "FC-XB-1",
                    "enterprise_credit_code": xb_enterprise(session).credit_code,
                }
            ]
        },
    )
    assert xb_batch["accepted"] == 1, xb_batch
    session.expire_all()
    got = {
        i: session.get(Loan, i)
        for i in [skd, xb]
        + [r["loan_id"] for r in batch["results"]]
        + [r["loan_id"] for r in xb_batch["results"]]
    }
    assert [x.fund_code for x in got.values() if x is not None] == [
        "SKD_CITY_320500",
        "XB_KCD",
        "SKD_CITY_320100",
        "SKD_CITY_320500",
        "XB_ZQCZD",  # the base sub-fund when the filing names none
    ]
    every = list(session.scalars(select(Loan)))
    assert every and all(x.fund_code is not None and x.fund_code == _rule(x) for x in every)
    assert api.call("2026-03-04", "regulator", "GET", f"/loans/{skd}")["fund_code"] == (
        "SKD_CITY_320500"
    )


# --- loan status -----------------------------------------------------------------------
def test_set_status_writes_a_history_row_and_refuses_an_invalid_transition(
    api: Api, session: Session
) -> None:
    """A repayment in full and a renewal change the loan's status through `set_status`:
    one history row each (action, from → to, actor, the business date it takes effect,
    reason), shown oldest first in `GET /loans/{id}` as `status_history`. An action the
    status does not allow is refused (409 invalid_transition) and writes nothing."""
    code = member_enterprise(session, region="320500").credit_code
    repaid = api.file_loan("bank_ccb", code, "1000000.00", "2026-03-02", "2026-09-02")
    api.repay("bank_ccb", repaid, "2026-05-20", "1000000.00")
    view = api.call("2026-05-21", "bank_ccb", "GET", f"/loans/{repaid}")
    assert view["status"] == "repaid" and view["history"] == []
    [row] = view["status_history"]
    assert {k: row[k] for k in ("action", "from_status", "to_status", "business_date")} == {
        "action": "repay_in_full",
        "from_status": "active",
        "to_status": "repaid",
        "business_date": "2026-05-20",
    }
    assert row["actor_id"] == _user_id(session, "bank_ccb") and "repaid in full" in row["reason"]

    renewed = api.file_loan(
        "bank_ccb",
        member_enterprise(session, region="320500").credit_code,
        "1000000.00",
        "2026-03-02",
        "2026-06-02",
    )
    new = api.call(
        "2026-06-03",
        "bank_ccb",
        "POST",
        f"/loans/{renewed}/renewal",
        201,
        json={
            "contract_no": "ST-RENEW-1",
            "principal": "1000000.00",
            "annual_rate_bp": 340,
            "disbursed_on": "2026-06-02",
            "maturity_on": "2027-06-02",
            "security": "credit",
            "controller_guarantee": True,
        },
    )
    old = api.call("2026-06-03", "bank_ccb", "GET", f"/loans/{renewed}")["status_history"]
    assert [(h["action"], h["to_status"], h["business_date"]) for h in old] == [
        ("renew", "renewed", "2026-06-02")
    ]
    assert api.call("2026-06-03", "bank_ccb", "GET", f"/loans/{new['id']}")["status_history"] == []

    # the function itself: a guarded change with its row, and a refusal that writes nothing
    loan = skd_loan(session)
    row = set_status(session, loan, "claim", actor_id=None, on=date(2026, 9, 1), now=NOW)
    session.flush()
    assert (loan.status, row.loan_id, row.from_status, row.to_status, row.reason) == (
        "claimed",
        loan.id,
        "active",
        "claimed",
        "",
    )
    assert row.id is not None and row.business_date == date(2026, 9, 1) and row.at == NOW
    with pytest.raises(Conflict) as refused:
        set_status(session, loan, "renew", actor_id=None, on=date(2026, 9, 2), now=NOW)
    assert refused.value.code == "invalid_transition" and refused.value.status == 409
    assert loan.status == "claimed"
    count = (
        select(func.count()).select_from(LoanTransition).where(LoanTransition.loan_id == loan.id)
    )
    assert session.scalar(count) == 1
    with pytest.raises(ValueError, match="unknown loan action"):
        set_status(session, loan, "write_off", actor_id=None, on=date(2026, 9, 2), now=NOW)
    # the table moved to app.loans.status; servicing still re-exports it
    from app.loans import servicing

    assert servicing.LOAN_TRANSITIONS is LOAN_TRANSITIONS


# --- append-only records ---------------------------------------------------------------
def _records(session: Session) -> tuple[int, int]:
    """A loan status change and a claim's approved split, recorded; (loan, claim) ids."""
    loan = skd_loan(session)
    set_status(session, loan, "claim", actor_id=None, on=date(2026, 9, 1), now=NOW)
    claim = skd_claim(session)
    claims_repo.record_shares(session, claim.id, "approved", {"province": 300, "city": 200})
    session.commit()
    return loan.id, claim.id


def test_loan_transitions_and_claim_shares_are_append_only(
    session: Session, connection: Connection
) -> None:
    """Both are records: an UPDATE or DELETE is refused by the database whoever sends
    it; `shares_rows` reads the splits back by kind; a claim has one share per kind and
    party, and only the kinds requested / approved."""
    loan_id, claim_id = _records(session)
    got = claims_repo.shares_rows(session, [claim_id, 0])
    assert got[claim_id]["approved"] == {"province": 300, "city": 200} and got[0] == {}
    for sql in (
        f"UPDATE loan_transitions SET to_status = 'active' WHERE loan_id = {loan_id}",
        f"DELETE FROM loan_transitions WHERE loan_id = {loan_id}",
        f"UPDATE claim_shares SET fen = fen + 1 WHERE claim_id = {claim_id}",
        f"DELETE FROM claim_shares WHERE claim_id = {claim_id}",
    ):
        assert "append-only" in raw_refused(connection, sql), sql
    for sql in (
        "INSERT INTO claim_shares (claim_id, kind, party, fen)"
        f" VALUES ({claim_id}, 'approved', 'city', 1)",  # a second city share
        "INSERT INTO claim_shares (claim_id, kind, party, fen)"
        f" VALUES ({claim_id}, 'paid', 'city', 1)",  # not a kind of split
    ):
        raw_refused(connection, sql)


def test_append_only_on_committed_rows_over_real_postgresql_connections(
    pg_engine: Engine,
) -> None:
    """PostgreSQL, outside any test transaction: rows committed by one connection cannot
    be updated or deleted by another (autocommit, no savepoint), and stay as written."""
    with Session(pg_engine) as s:
        loan_id, claim_id = _records(s)
    for sql in (
        f"UPDATE loan_transitions SET reason = 'changed' WHERE loan_id = {loan_id}",
        f"DELETE FROM loan_transitions WHERE loan_id = {loan_id}",
        f"UPDATE claim_shares SET party = 'bank' WHERE claim_id = {claim_id}",
        f"DELETE FROM claim_shares WHERE claim_id = {claim_id}",
    ):
        with pg_engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            with pytest.raises(DBAPIError) as info:
                conn.execute(text(sql))
            assert "append-only" in str(info.value.orig), sql
    with Session(pg_engine) as s:
        assert [
            (t.action, t.reason)
            for t in s.scalars(select(LoanTransition).where(LoanTransition.loan_id == loan_id))
        ] == [("claim", "")]
        assert claims_repo.shares_rows(s, [claim_id])[claim_id]["approved"] == {
            "province": 300,
            "city": 200,
        }
