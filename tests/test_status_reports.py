"""XB-Rep: the banks' monthly loan-level status files — CSV or JSON, every malformed row
refused at once, idempotent by content, versioned, reconciled against the books as of
the month end (SPEC M-6 arrears), recorded as the bank's delinquency reports, due by the
programmes' report day of the next month, and append-only."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from typing import Any

import pytest
from sqlalchemy import Connection, Engine, func, select, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session, sessionmaker

from app.config import Settings
from app.loans.arrears import arrears_of
from app.models import (
    DelinquencyReport,
    Loan,
    StatusReport,
    StatusReportDifference,
    StatusReportRow,
)
from app.programs.base import get_program
from app.status_reports import files
from app.status_reports import service as status_reports
from tests.fixtures.api import Api, api_fixture
from tests.fixtures.factories import principal, repayment, skd_loan, xb_loan
from tests.fixtures.ledger import raw_refused

MARCH = "/status-reports/2026/3"
END = date(2026, 3, 31)  # the month end the books are compared as of
DUE = date(2026, 4, 10)  # status_report_day 10 of the month after
ON_TIME, LATE = "2026-04-08", "2026-04-13"
HEADER = ",".join(files.FIELDS)
TABLES = (StatusReport, StatusReportRow, StatusReportDifference, DelinquencyReport)


@pytest.fixture
def api(  # type: ignore[no-untyped-def]
    settings: Settings, engine: Engine, session_factory: sessionmaker[Session], auth
) -> Iterator[Api]:
    yield from api_fixture(settings, engine, session_factory, auth)


# --- building and sending files --------------------------------------------------------
def row(
    contract: str,
    outstanding: str,
    since: str = "",
    principal: str = "0.00",
    interest: str = "0.00",
    status: str = "current",
) -> tuple[str, ...]:
    return (contract, outstanding, since, principal, interest, status)


def csv_body(rows: list[tuple[str, ...]], *, bom: bool = False, crlf: bool = False) -> bytes:
    end = "\r\n" if crlf else "\n"
    content = end.join([HEADER, *(",".join(r) for r in rows)]) + end
    return (b"\xef\xbb\xbf" if bom else b"") + content.encode()


def json_body(rows: list[tuple[str, ...]]) -> dict[str, Any]:
    items = []
    for r in rows:
        item: dict[str, Any] = dict(zip(files.FIELDS, r, strict=True))
        item["overdue_since"] = item["overdue_since"] or None
        items.append(item)
    return {"rows": items}


def send(
    api: Api,
    day: str,
    body: bytes | dict[str, Any],
    *,
    user: str = "bank_jsb",
    expect: int = 201,
    url: str = MARCH,
    content_type: str = "text/csv",
) -> Any:
    headers = api.auth(user)
    client = api.on(day)
    if isinstance(body, dict):
        r = client.post("/api/v1" + url, json=body, headers=headers)
    else:
        r = client.post(
            "/api/v1" + url, content=body, headers=headers | {"Content-Type": content_type}
        )
    assert r.status_code == expect, r.text
    return r.json()


def counts(session: Session) -> dict[str, int]:
    return {
        t.__tablename__: int(session.scalar(select(func.count()).select_from(t)) or 0)
        for t in TABLES
    }


def diffs(out: dict[str, Any]) -> set[tuple[Any, ...]]:
    return {
        (d["kind"], d["contract_no"], d["field"], d["ours"], d["theirs"])
        for d in out["differences"]["items"]
    }


# --- a bank's book -----------------------------------------------------------------------
@dataclass(frozen=True)
class Book:
    performing: Loan
    late_on_our_books: Loan  # matured 2026-03-10, unpaid: in arrears since 2026-03-11
    interest_late: Loan  # interest due 2026-02-28 unpaid: in arrears since 2026-03-01
    late_at_the_bank: Loan  # current on our books, the bank reports it overdue
    part_repaid: Loan
    settled: Loan
    written_off: Loan
    unlisted: Loan  # owing at the month end, left out of the file
    settled_unlisted: Loan
    disbursed_after: Loan
    other_bank: Loan


def jsb_book(session: Session) -> Book:
    """江苏银行's loans in both programmes, and one of 工商银行."""
    jsb: dict[str, Any] = {"bank": "bank_jsb", "region": "320100"}
    book = Book(
        performing=skd_loan(
            session,
            **jsb,
            principal_yuan="5000000.00",
            disbursed=date(2026, 1, 12),
            maturity=date(2027, 1, 12),
        ),
        late_on_our_books=skd_loan(
            session,
            **jsb,
            principal_yuan="2000000.00",
            disbursed=date(2025, 3, 10),
            maturity=date(2026, 3, 10),
        ),
        interest_late=skd_loan(
            session,
            **jsb,
            disbursed=date(2026, 1, 12),
            maturity=date(2027, 1, 12),
            schedule=[
                {"due_on": "2026-02-28", "principal": "0", "interest": "3000.00"},
                {"due_on": "2027-01-12", "principal": "1000000.00", "interest": "30000.00"},
            ],
        ),
        late_at_the_bank=xb_loan(session, bank="bank_jsb", maturity=date(2027, 6, 25)),
        part_repaid=skd_loan(
            session,
            **jsb,
            principal_yuan="3000000.00",
            disbursed=date(2026, 1, 12),
            maturity=date(2026, 12, 12),
        ),
        settled=skd_loan(session, **jsb, disbursed=date(2025, 9, 1), maturity=date(2026, 3, 1)),
        written_off=skd_loan(
            session, **jsb, disbursed=date(2026, 1, 12), maturity=date(2027, 1, 12)
        ),
        unlisted=xb_loan(
            session, bank="bank_jsb", principal_yuan="2000000.00", maturity=date(2027, 6, 25)
        ),
        settled_unlisted=skd_loan(
            session, **jsb, disbursed=date(2025, 9, 1), maturity=date(2026, 2, 1)
        ),
        disbursed_after=skd_loan(
            session, **jsb, disbursed=date(2026, 4, 2), maturity=date(2027, 4, 2)
        ),
        other_bank=skd_loan(session, bank="bank_icbc", region="320100"),
    )
    repayment(session, book.part_repaid, on=date(2026, 2, 10), principal_fen=1_000_000_00)
    repayment(session, book.settled, on=date(2026, 3, 1), principal_fen=1_000_000_00)
    repayment(session, book.settled_unlisted, on=date(2026, 2, 1), principal_fen=1_000_000_00)
    session.execute(
        text("UPDATE loans SET status = 'written_off' WHERE id = :id"),
        {"id": book.written_off.id},
    )
    # the bank already reported it overdue during the month: the worse view would agree
    # with the file, our own books do not
    session.add(
        DelinquencyReport(
            loan_id=book.late_at_the_bank.id,
            as_of=date(2026, 3, 20),
            overdue_since=date(2026, 2, 15),
            principal_overdue_fen=100_000_00,
            interest_overdue_fen=5_000_00,
            source="bank",
            reported_by_id=principal(session, "bank_jsb").user_id,
        )
    )
    session.commit()
    return book


def march_file(book: Book) -> list[tuple[str, ...]]:
    return [
        row(book.performing.contract_no, "5000000.00"),
        row(book.late_on_our_books.contract_no, "2000000.00"),  # the bank: current
        row(book.interest_late.contract_no, "1000000.00"),  # the bank: current
        row(
            book.late_at_the_bank.contract_no,
            "1000000.00",
            "2026-02-15",
            "100000.00",
            "5000.00",
            "overdue",
        ),
        row(book.part_repaid.contract_no, "2500000.00"),
        row(book.settled.contract_no, "0.00"),  # the bank: current
        row(book.written_off.contract_no, "1000000.00"),  # the bank: current
        row(book.other_bank.contract_no, "1000000.00"),
        row("NO-SUCH-1", "100.00"),
    ]


# --- reconciliation ----------------------------------------------------------------------
def test_xb_rep_csv_with_bom_is_reconciled_against_the_books_as_of_the_month_end(
    api: Api, session: Session
) -> None:
    """XB-Rep, M-6: each kind of difference — an unknown contract (also another bank's),
    outstanding, overdue (our own overdue date, not the worse-of-both view: a loan in
    arrears on our books reported current, by principal and by interest alone, and a
    loan current on our books reported overdue), status (overdue, settled, written off)
    and the loans owing at the month end that the file leaves out, in any programme."""
    book = jsb_book(session)
    out = send(api, ON_TIME, csv_body(march_file(book), bom=True))
    assert (out["version"], out["latest_version"], out["replayed"]) == (1, 1, False)
    assert (out["due_on"], out["submitted_on"], out["late"]) == (str(DUE), ON_TIME, False)
    assert (out["month_end"], out["media_type"], out["row_count"]) == (str(END), "text/csv", 9)
    b = book
    assert diffs(out) == {
        ("overdue_mismatch", b.late_on_our_books.contract_no, "overdue_since", "2026-03-11", None),
        (
            "overdue_mismatch",
            b.late_on_our_books.contract_no,
            "principal_overdue",
            "2000000.00",
            "0.00",
        ),
        ("status_mismatch", b.late_on_our_books.contract_no, "status", "overdue", "current"),
        ("overdue_mismatch", b.interest_late.contract_no, "overdue_since", "2026-03-01", None),
        ("overdue_mismatch", b.interest_late.contract_no, "interest_overdue", "3000.00", "0.00"),
        ("status_mismatch", b.interest_late.contract_no, "status", "overdue", "current"),
        ("overdue_mismatch", b.late_at_the_bank.contract_no, "overdue_since", None, "2026-02-15"),
        (
            "overdue_mismatch",
            b.late_at_the_bank.contract_no,
            "principal_overdue",
            "0.00",
            "100000.00",
        ),
        (
            "overdue_mismatch",
            b.late_at_the_bank.contract_no,
            "interest_overdue",
            "0.00",
            "5000.00",
        ),
        ("status_mismatch", b.late_at_the_bank.contract_no, "status", "current", "overdue"),
        (
            "outstanding_mismatch",
            b.part_repaid.contract_no,
            "outstanding",
            "2000000.00",
            "2500000.00",
        ),
        ("status_mismatch", b.settled.contract_no, "status", "settled", "current"),
        ("status_mismatch", b.written_off.contract_no, "status", "written_off", "current"),
        ("unknown_contract", b.other_bank.contract_no, None, None, None),
        ("unknown_contract", "NO-SUCH-1", None, None, None),
        ("missing_loan", b.unlisted.contract_no, "outstanding", "2000000.00", None),
    }
    assert out["counts"] == {
        "unknown_contract": 2,
        "outstanding_mismatch": 1,
        "overdue_mismatch": 7,
        "status_mismatch": 5,
        "missing_loan": 1,
    }
    assert out["difference_count"] == 16 == sum(out["counts"].values())
    rows = {d["contract_no"]: d["row_no"] for d in out["differences"]["items"]}
    assert rows["NO-SUCH-1"] == 9 and rows[b.unlisted.contract_no] is None
    # the bank reads the same back
    got = api.call(ON_TIME, "bank_jsb", "GET", MARCH)
    assert got["id"] == out["id"] and diffs(got) == diffs(out)


def test_xb_rep_each_known_row_is_recorded_as_the_banks_view_and_feeds_days_past_due(
    api: Api, session: Session
) -> None:
    """XB-Rep, M-6: every row naming a loan of the bank still owing at the month end
    becomes a delinquency report (source status_file, as of the month end, with its
    amounts and the submission), so the bank's reported arrears count in days past due
    (the worse view); unknown contracts and a loan settled by the month end record
    nothing."""
    book = jsb_book(session)
    out = send(api, ON_TIME, csv_body(march_file(book)))
    reports = session.scalars(
        select(DelinquencyReport).where(DelinquencyReport.status_report_id == out["id"])
    ).all()
    assert len(reports) == 6  # nine rows, two unknown contracts, one settled loan
    assert {r.source for r in reports} == {"status_file"} and {r.as_of for r in reports} == {END}
    by_loan = {r.loan_id: r for r in reports}
    assert book.other_bank.id not in by_loan and book.settled.id not in by_loan
    bank_view = by_loan[book.late_at_the_bank.id]
    assert (bank_view.overdue_since, bank_view.principal_overdue_fen) == (
        date(2026, 2, 15),
        100_000_00,
    )
    assert (bank_view.interest_overdue_fen, bank_view.outstanding_fen) == (5_000_00, 1_000_000_00)
    arrears = arrears_of(session, [book.late_at_the_bank, book.late_on_our_books], END)
    worse = arrears[book.late_at_the_bank.id]
    assert worse.bank is not None and worse.bank.source == "status_file"
    assert (worse.own_days(), worse.days_past_due()) == (0, 45)  # 2026-02-15 … 2026-03-31
    # the bank reporting a late loan current does not make it current: ours is worse
    ours = arrears[book.late_on_our_books.id]
    assert ours.bank is not None and ours.bank.overdue_since is None
    assert ours.days_past_due() == ours.own_days() == 21


# --- idempotency and versions ------------------------------------------------------------
def test_xb_rep_the_same_rows_as_csv_then_json_are_one_submission_and_a_change_a_new_version(
    api: Api, session: Session
) -> None:
    """XB-Rep: the content is identified by its canonical rows — the same rows as CSV,
    as JSON (reordered, "100" for "100.00"), with a byte-order mark or CRLF lines answer
    200 with the stored submission and write nothing; a change is version 2 (201) with
    its own delinquency reports, version 1 and its reports kept; the content of version
    1 sent again after version 2 is version 3, the bank's current file."""
    loan = skd_loan(
        session,
        bank="bank_jsb",
        region="320100",
        disbursed=date(2026, 1, 12),
        maturity=date(2027, 1, 12),
    )
    rows = [row(loan.contract_no, "1000000.00"), row("NO-SUCH-2", "50.00")]
    first = send(api, ON_TIME, csv_body(rows))
    written = counts(session)
    assert written["status_report_rows"] == 2 and written["loan_delinquency_reports"] == 1
    same = [
        row("NO-SUCH-2", "50"),
        row(loan.contract_no, "1000000", "", "0", "0.0"),
    ]
    for body in (json_body(same), csv_body(rows, bom=True, crlf=True)):
        again = send(api, LATE, body, expect=200)
        assert (again["id"], again["version"], again["replayed"]) == (first["id"], 1, True)
        assert again["sha256"] == first["sha256"] and again["submitted_on"] == ON_TIME
        assert again["media_type"] == "text/csv" and again["late"] is False
    assert counts(session) == written
    changed = [row(loan.contract_no, "900000.00"), row("NO-SUCH-2", "50.00")]
    second = send(api, LATE, json_body(changed))
    assert (second["version"], second["latest_version"], second["late"]) == (2, 2, True)
    assert second["media_type"] == "application/json" and second["sha256"] != first["sha256"]
    assert ("outstanding_mismatch", loan.contract_no, "outstanding", "1000000.00", "900000.00") in (
        diffs(second)
    )
    reports = session.scalars(
        select(DelinquencyReport)
        .where(DelinquencyReport.loan_id == loan.id)
        .order_by(DelinquencyReport.id)
    ).all()
    assert [(r.status_report_id, r.outstanding_fen) for r in reports] == [
        (first["id"], 1_000_000_00),
        (second["id"], 900_000_00),
    ]
    latest = api.call(LATE, "bank_jsb", "GET", MARCH)
    assert (latest["id"], latest["version"]) == (second["id"], 2)
    older = api.call(LATE, "bank_jsb", "GET", MARCH + "?version=1")
    assert (older["id"], older["latest_version"], diffs(older)) == (first["id"], 2, diffs(first))
    api.call(LATE, "bank_jsb", "GET", MARCH + "?version=3", 404)
    third = send(api, LATE, csv_body(rows))
    assert (third["version"], third["sha256"]) == (3, first["sha256"])


# --- refusals ----------------------------------------------------------------------------
def test_xb_rep_every_malformed_row_is_listed_in_one_refusal_and_nothing_is_written(
    api: Api, session: Session
) -> None:
    """XB-Rep: one 422 names every bad row (row number, field, message): amounts that
    are not yuan strings, dates, statuses, duplicate contracts, an overdue date after
    the month end, an overdue date without overdue amounts and the reverse; the valid
    rows are not written either."""
    loan = skd_loan(session, bank="bank_jsb", region="320100", disbursed=date(2026, 1, 12))
    before = counts(session)
    bad = [
        row(loan.contract_no, "1000000.00"),  # 1: fine
        row("A-2", '"1,000.00"'),  # 2: a thousands separator
        row("A-3", "-5"),  # 3
        row("A-4", "1.005"),  # 4
        row("A-5", "1.00", "2026/03/01", "1.00"),  # 5
        row("A-6", "1.00", status="bad"),  # 6
        row(loan.contract_no, "1.00"),  # 7: duplicate of row 1
        row("A-8", "1.00", "2026-04-01", "1.00"),  # 8: after the month end
        row("A-9", "1.00", "2026-03-01"),  # 9: a date, nothing overdue
        row("A-10", "1.00", "", "0.00", "3.00"),  # 10: interest overdue, no date
        row("", "1.00"),  # 11: no contract
        row("A-12", "", status="overdue"),  # 12: no outstanding
    ]
    refused = send(api, ON_TIME, csv_body(bad, bom=True), expect=422)
    assert refused["code"] == "status_file_refused" and refused["rule"] == "XB-Rep"
    found = {(e["loc"][2], e["loc"][3], e["code"]) for e in refused["errors"]}
    assert found == {
        (2, "outstanding", "invalid_amount"),
        (3, "outstanding", "invalid_amount"),
        (4, "outstanding", "invalid_amount"),
        (5, "overdue_since", "invalid_date"),
        (6, "status", "invalid_status"),
        (7, "contract_no", "duplicate_contract"),
        (8, "overdue_since", "overdue_since_after_month_end"),
        (9, "overdue_since", "overdue_since_without_amounts"),
        (10, "overdue_since", "overdue_amounts_without_since"),
        (11, "contract_no", "missing_field"),
        (12, "outstanding", "missing_field"),
    }
    assert all(e["loc"][:2] == ["body", "rows"] for e in refused["errors"])
    assert "(line 3)" in next(e["msg"] for e in refused["errors"] if e["loc"][2] == 2)
    assert "11 row(s)" in refused["detail"]
    # JSON: amounts must be strings, no unknown fields, a row is an object
    items = json_body([row(loan.contract_no, "1000000.00"), row("B-2", "1.00")])["rows"]
    items[1]["outstanding"] = 1
    items.append({**items[0], "contract_no": "B-3", "colour": "red"})
    items.append("B-4")
    refused = send(api, ON_TIME, {"rows": items}, expect=422)
    assert {(e["loc"][2], e["loc"][-1], e["code"]) for e in refused["errors"]} == {
        (2, "outstanding", "invalid_amount"),
        (3, "colour", "unknown_field"),
        (4, 4, "invalid_row"),
    }
    assert counts(session) == before


def test_xb_rep_refusals_of_the_file_as_a_whole(
    api: Api, session: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    """XB-Rep: a month not yet over, a header without the six columns, text that is not
    UTF-8, another media type (415), a body over the file cap (413), more rows than the
    cap, and a caller who is not a bank — each problem+json, nothing written."""
    before = counts(session)
    ok = csv_body([row("C-1", "1.00")])
    refused = send(api, "2026-03-31", ok, expect=422)
    assert refused["code"] == "month_not_over" and refused["rule"] == "XB-Rep"
    send(api, ON_TIME, ok, url="/status-reports/2026/4", expect=422)
    refused = send(api, ON_TIME, b"contract_no,outstanding,colour\nC-1,1.00,red\n", expect=422)
    assert {e["code"] for e in refused["errors"]} == {"invalid_header"}
    assert len(refused["errors"]) == 2  # an unknown column, missing columns
    refused = send(api, ON_TIME, HEADER.encode() + b"\n\xff\xfe,1\n", expect=422)
    assert refused["errors"][0]["code"] == "not_utf8"
    refused = send(api, ON_TIME, b"{rows: []", content_type="application/json", expect=422)
    assert refused["errors"][0]["code"] == "invalid_json"
    refused = send(api, ON_TIME, ok, content_type="text/plain", expect=415)
    assert refused["code"] == "unsupported_media_type"
    send(api, ON_TIME, ok, user="regulator", expect=403)
    monkeypatch.setattr(files, "MAX_ROWS", 2)
    many = csv_body([row("C-1", "1.00"), row("C-2", "1.00"), row("C-3", "1.00")])
    refused = send(api, ON_TIME, many, expect=422)
    assert refused["errors"][0]["code"] == "too_many_rows"
    refused = send(api, ON_TIME, json_body([row(f"C-{i}", "1.00") for i in range(3)]), expect=422)
    assert refused["errors"][0]["code"] == "too_many_rows"
    monkeypatch.setattr(files, "MAX_FILE_BYTES", len(ok) - 1)
    assert send(api, ON_TIME, ok, expect=413)["code"] == "payload_too_large"
    assert counts(session) == before
    monkeypatch.undo()
    assert send(api, ON_TIME, ok)["version"] == 1  # the same file, once acceptable


FEBRUARY = "/status-reports/2026/2"
FEB_END = date(2026, 2, 28)


def test_xb_rep_m6_each_known_row_is_checked_as_the_banks_arrears_report(
    api: Api, session: Session
) -> None:
    """XB-Rep, M-6: a row naming a loan of the bank passes the checks of `POST
    /loans/{id}/delinquency` as of the month end — an overdue date after the
    disbursement (a loan disbursed 2026-01-15 cannot be overdue since 2025-06-01), the
    loan disbursed by the month end, principal overdue and outstanding at most its
    principal, nothing in arrears on a loan settled by the month end. One 422 lists every
    such row (row, field, code) and nothing is written: the loan is not made 275 days
    past due. A settled loan listed as settled with nothing overdue passes and is not
    recorded as a report; a loan repaid after the month end still owed then: its arrears
    are accepted and recorded."""
    jsb: dict[str, Any] = {"bank": "bank_jsb", "region": "320100"}
    young = skd_loan(session, **jsb, disbursed=date(2026, 1, 15), maturity=date(2027, 1, 15))
    small = skd_loan(session, **jsb, disbursed=date(2026, 1, 15), maturity=date(2027, 1, 15))
    later = skd_loan(session, **jsb, disbursed=date(2026, 3, 2), maturity=date(2027, 3, 2))
    settled = skd_loan(session, **jsb, disbursed=date(2025, 9, 1), maturity=date(2026, 2, 10))
    quiet = skd_loan(session, **jsb, disbursed=date(2025, 9, 1), maturity=date(2026, 2, 10))
    paid_since = skd_loan(session, **jsb, disbursed=date(2025, 8, 1), maturity=date(2026, 1, 31))
    for loan in (settled, quiet):
        repayment(session, loan, on=date(2026, 2, 10), principal_fen=1_000_000_00)
    repayment(session, paid_since, on=date(2026, 3, 3), principal_fen=1_000_000_00)
    before = counts(session)
    bad = [
        row(young.contract_no, "1000000.00", "2025-06-01", "1.00", "0.00", "overdue"),  # 1
        row(small.contract_no, "3000000.00", "2026-02-01", "2000000.00", "0.00", "overdue"),  # 2
        row(later.contract_no, "1000000.00"),  # 3: disbursed after the month end
        row(settled.contract_no, "0.00", "2026-02-11", "0.00", "100.00", "overdue"),  # 4
        row(quiet.contract_no, "0.00", status="settled"),  # 5: fine
        row(paid_since.contract_no, "1000000.00", "2026-02-01", "1000000.00", "0.00", "overdue"),
    ]
    refused = send(api, "2026-03-05", csv_body(bad), url=FEBRUARY, expect=422)
    assert refused["code"] == "status_file_refused" and refused["rule"] == "XB-Rep"
    assert {(e["loc"][2], e["loc"][3], e["code"]) for e in refused["errors"]} == {
        (1, "overdue_since", "not_after_disbursement"),
        (2, "principal_overdue", "exceeds_principal"),
        (2, "outstanding", "exceeds_principal"),
        (3, "contract_no", "loan_not_disbursed"),
        (4, "overdue_since", "loan_not_owing"),
    }
    assert all(e["loc"][:2] == ["body", "rows"] for e in refused["errors"])
    assert "2026-01-15" in next(e["msg"] for e in refused["errors"] if e["loc"][2] == 1)
    assert "4 row(s)" in refused["detail"]
    assert counts(session) == before
    young_now = arrears_of(session, [young], date(2026, 3, 5))[young.id]
    assert young_now.bank is None and young_now.days_past_due() == 0
    # the same file as JSON is refused alike
    refused = send(api, "2026-03-05", json_body(bad), url=FEBRUARY, expect=422)
    assert len(refused["errors"]) == 5 and counts(session) == before
    good = [
        row(young.contract_no, "1000000.00"),
        row(small.contract_no, "1000000.00", "2026-02-01", "1000.00", "0.00", "overdue"),
        row(settled.contract_no, "0.00", status="settled"),
        row(quiet.contract_no, "0.00", status="settled"),
        bad[5],
    ]
    out = send(api, "2026-03-05", csv_body(good), url=FEBRUARY)
    recorded = session.scalars(
        select(DelinquencyReport.loan_id).where(DelinquencyReport.status_report_id == out["id"])
    ).all()
    assert sorted(recorded) == sorted([young.id, small.id, paid_since.id])
    assert {d["contract_no"] for d in out["differences"]["items"]} == {small.contract_no}
    owed = arrears_of(session, [paid_since], FEB_END)[paid_since.id]
    assert owed.bank is not None and owed.bank.source == "status_file"


def test_xb_rep_a_json_body_nested_too_deeply_is_refused_not_a_server_error(
    api: Api, session: Session
) -> None:
    """XB-Rep: a JSON body nested deeper than the decoder goes (20,000 brackets, well
    under the file cap) is a 422 naming the body, never a 500: the request boundary
    refuses any JSON body nested that deep (`validation_error`) before a parser recurses
    into it; nothing is written. A status file is three levels deep."""
    before = counts(session)
    for body in (b"[" * 20_000, b'{"rows": ' + b"[" * 20_000 + b"]" * 20_000 + b"}"):
        refused = send(api, ON_TIME, body, content_type="application/json", expect=422)
        assert refused["code"] == "validation_error"
        assert [e["loc"] for e in refused["errors"]] == [["body"]]
    assert counts(session) == before
    # the reader's own guard, for a body that reaches it (e.g. from the command line)
    with pytest.raises(files.StatusFileRefused) as caught:
        files.parse(b"[" * 20_000, files.JSON_TYPE, month_end=END)
    assert [e.code for e in caught.value.errors] == ["invalid_json"]


# --- the deadline, who has reported --------------------------------------------------------
def test_xb_rep_late_submission_and_the_months_missing_list(api: Api, session: Session) -> None:
    """XB-Rep: every bank with an active or suspended agreement covering the month end
    is expected (中国建设银行 from 2026-03-01, 中国银行 suspended); before the 10th of the
    next month they are not yet due, after it those without a file are missing and a
    file is late. A bank sees its own row, a fund manager the banks of its programme, a
    city reviewer those with an agreement in its region."""
    overview = api.call(ON_TIME, "regulator", "GET", "/status-reports?year=2026&month=3")
    assert overview["month_end"] == str(END)
    assert {b["bank_code"]: (b["state"], b["due_on"]) for b in overview["banks"]} == {
        code: ("not_yet_due", str(DUE))
        for code in ("BOC_JS", "CCB_JS", "ICBC_JS", "JSB", "LYG_RCB")
    }
    out = send(api, LATE, csv_body([]))  # nothing on the book: an empty file
    assert (out["late"], out["due_on"], out["row_count"]) == (True, str(DUE), 0)
    overview = api.call(LATE, "regulator", "GET", "/status-reports?year=2026&month=3")
    states = {b["bank_code"]: b for b in overview["banks"]}
    assert {c: b["state"] for c, b in states.items()} == {
        "BOC_JS": "missing",
        "CCB_JS": "missing",
        "ICBC_JS": "missing",
        "JSB": "submitted",
        "LYG_RCB": "missing",
    }
    jsb = states["JSB"]
    assert (jsb["version"], jsb["submitted_on"], jsb["late"], jsb["expected"]) == (
        1,
        LATE,
        True,
        True,
    )
    assert states["JSB"]["bank_name"] == "江苏银行"
    # the day itself is still on time
    on_due = api.call(str(DUE), "regulator", "GET", "/status-reports?year=2026&month=3")
    assert {b["state"] for b in on_due["banks"] if b["bank_code"] != "JSB"} == {"not_yet_due"}

    def seen(user: str) -> list[str]:
        got = api.call(LATE, user, "GET", "/status-reports?year=2026&month=3")
        return [b["bank_code"] for b in got["banks"]]

    assert seen("bank_jsb") == ["JSB"]
    assert seen("bank_lyg") == ["LYG_RCB"]
    assert seen("fund_xb") == ["JSB", "LYG_RCB"]
    assert seen("fund_nanjing") == ["BOC_JS", "CCB_JS", "ICBC_JS", "JSB"]
    assert seen("city_nanjing") == ["ICBC_JS", "JSB"]
    assert len(seen("committee")) == 5


def test_xb_rep_due_by_the_earliest_report_day_of_the_banks_programmes(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    """XB-Rep: a bank in two programmes reports by the earlier of their report days; a
    bank in one by its own (here XB's day moved to the 5th)."""
    xb = get_program("XB")
    monkeypatch.setattr(xb, "policy", dataclasses.replace(xb.policy, status_report_day=5))
    overview = api.call(ON_TIME, "regulator", "GET", "/status-reports?year=2026&month=3")
    due = {b["bank_code"]: (b["due_on"], b["state"]) for b in overview["banks"]}
    assert due["JSB"] == due["LYG_RCB"] == ("2026-04-05", "missing")
    assert due["ICBC_JS"] == ("2026-04-10", "not_yet_due")
    out = send(api, ON_TIME, csv_body([]))
    assert (out["due_on"], out["late"]) == ("2026-04-05", True)
    december = send(api, "2027-01-04", csv_body([]), url="/status-reports/2026/12")
    assert (december["due_on"], december["late"]) == ("2027-01-05", False)


# --- scope -----------------------------------------------------------------------------------
def test_xb_rep_a_bank_cannot_read_another_banks_file(api: Api, session: Session) -> None:
    """XB-Rep: another bank's file is 404 for a bank (as is a file that does not exist);
    a fund manager reads the banks of its programme only (and no unknown contract in
    them); other roles name the bank; differences are paged and filtered by kind."""
    loans = [
        skd_loan(session, bank="bank_jsb", region="320100", disbursed=date(2026, 1, 12))
        for _ in range(3)
    ]
    send(api, ON_TIME, csv_body([row("NO-SUCH-3", "1.00")]))
    send(api, ON_TIME, csv_body([]), user="bank_lyg")
    url = MARCH + "?bank_code=JSB"
    api.call(ON_TIME, "bank_lyg", "GET", url, 404)
    api.call(ON_TIME, "bank_icbc", "GET", MARCH, 404)  # none of its own either
    api.call(ON_TIME, "fund_nanjing", "GET", MARCH + "?bank_code=LYG_RCB", 404)  # XB only
    assert api.call(ON_TIME, "fund_xb", "GET", MARCH + "?bank_code=LYG_RCB")["row_count"] == 0
    refused = api.call(ON_TIME, "regulator", "GET", MARCH, 422)
    assert refused["code"] == "bank_code_required"
    first = api.call(ON_TIME, "fund_nanjing", "GET", url + "&kind=missing_loan&limit=2")
    page = first["differences"]
    assert [d["loan_id"] for d in page["items"]] == [loans[0].id, loans[1].id]
    rest = api.call(
        ON_TIME, "regulator", "GET", url + f"&kind=missing_loan&cursor={page['next_cursor']}"
    )
    assert [d["loan_id"] for d in rest["differences"]["items"]] == [loans[2].id]
    assert rest["differences"]["next_cursor"] is None
    assert first["counts"]["missing_loan"] == 3 and first["counts"]["unknown_contract"] == 0
    assert api.call(ON_TIME, "regulator", "GET", url)["counts"]["unknown_contract"] == 1


def test_xb_rep_differences_show_only_the_loans_in_the_readers_scope(
    api: Api, session: Session
) -> None:
    """XB-Rep: a city reviewer reads a bank's file (the bank has an agreement in its
    region) but sees only the differences of its region's enterprises' loans — not a
    Nanjing loan it cannot open with `GET /loans/{id}` — and a fund manager only those of
    its programme's loans; neither sees unknown contracts. The bank and the roles that
    see every loan see every difference. The counts are of what the caller sees
    (`scoped`), here and in `GET /status-reports`."""
    nanjing = skd_loan(session, bank="bank_jsb", region="320100", disbursed=date(2026, 1, 12))
    suzhou = skd_loan(session, bank="bank_jsb", region="320500", disbursed=date(2026, 1, 12))
    xb = xb_loan(session, bank="bank_jsb", maturity=date(2027, 6, 25))
    file = [row(suzhou.contract_no, "900000.00"), row("NO-SUCH-6", "1.00")]
    send(api, ON_TIME, csv_body(file))  # nanjing and xb: missing

    def seen(user: str) -> tuple[set[tuple[str, Any]], dict[str, int], int, Any]:
        got = api.call(ON_TIME, user, "GET", MARCH + "?bank_code=JSB")
        items = {(d["kind"], d["loan_id"]) for d in got["differences"]["items"]}
        return items, got["counts"], got["difference_count"], got.get("scoped")

    api.call(ON_TIME, "city_suzhou", "GET", f"/loans/{nanjing.id}", 404)
    items, by_kind, total, scoped = seen("city_suzhou")
    assert items == {("outstanding_mismatch", suzhou.id)}
    assert (total, scoped) == (1, True)
    assert by_kind == {
        "unknown_contract": 0,
        "outstanding_mismatch": 1,
        "overdue_mismatch": 0,
        "status_mismatch": 0,
        "missing_loan": 0,
    }
    every = {
        ("outstanding_mismatch", suzhou.id),
        ("unknown_contract", None),
        ("missing_loan", nanjing.id),
        ("missing_loan", xb.id),
    }
    for user in ("bank_jsb", "regulator", "province", "committee", "admin"):
        items, by_kind, total, scoped = seen(user)
        assert (items, total, sum(by_kind.values()), scoped) == (every, 4, 4, False), user
    items, _, total, _ = seen("city_nanjing")
    assert (items, total) == ({("missing_loan", nanjing.id)}, 1)
    assert seen("fund_xb")[0] == {("missing_loan", xb.id)}
    assert seen("fund_nanjing")[0] == {
        ("outstanding_mismatch", suzhou.id),
        ("missing_loan", nanjing.id),
    }
    # filtered by kind, the same scope
    url = MARCH + "?bank_code=JSB&kind=missing_loan"
    only = api.call(ON_TIME, "city_suzhou", "GET", url)
    assert only["differences"]["items"] == []

    def listed(user: str) -> tuple[int, Any]:
        got = api.call(ON_TIME, user, "GET", "/status-reports?year=2026&month=3")
        jsb = next(b for b in got["banks"] if b["bank_code"] == "JSB")
        return jsb["difference_count"], jsb.get("scoped")

    assert listed("regulator") == (4, False) and listed("bank_jsb") == (4, False)
    assert listed("city_suzhou") == (1, True) and listed("fund_xb") == (1, True)


# --- append-only --------------------------------------------------------------------------
def test_xb_rep_status_files_are_append_only(
    api: Api, session: Session, connection: Connection
) -> None:
    """XB-Rep: a submission, its rows and its differences are records: the database
    refuses UPDATE and DELETE on them whoever sends it."""
    out = send(api, ON_TIME, csv_body([row("NO-SUCH-4", "1.00")]))
    rid = out["id"]
    for sql in (
        f"UPDATE status_reports SET late = NOT late WHERE id = {rid}",
        f"DELETE FROM status_reports WHERE id = {rid}",
        f"UPDATE status_report_rows SET outstanding_fen = 0 WHERE report_id = {rid}",
        f"DELETE FROM status_report_rows WHERE report_id = {rid}",
        f"UPDATE status_report_differences SET ours = 'x' WHERE report_id = {rid}",
        f"DELETE FROM status_report_differences WHERE report_id = {rid}",
    ):
        assert "append-only" in raw_refused(connection, sql), sql


def test_xb_rep_append_only_on_committed_rows_over_real_postgresql_connections(
    pg_engine: Engine,
) -> None:
    """XB-Rep, PostgreSQL outside any test transaction: a committed submission cannot be
    updated or deleted from another connection, and stays as written."""
    with Session(pg_engine) as s:
        report, created = status_reports.submit(
            s,
            bank_code="LYG_RCB",
            year=2026,
            month=2,
            body=csv_body([row("NO-SUCH-5", "1.00")]),
            media_type="text/csv",
            actor=principal(s, "bank_lyg"),
            today=date(2026, 3, 2),
        )
        s.commit()
        rid = report.id
    assert created
    for sql in (
        f"UPDATE status_reports SET version = 9 WHERE id = {rid}",
        f"DELETE FROM status_reports WHERE id = {rid}",
        f"UPDATE status_report_rows SET status = 'settled' WHERE report_id = {rid}",
        f"DELETE FROM status_report_rows WHERE report_id = {rid}",
        f"UPDATE status_report_differences SET kind = 'x' WHERE report_id = {rid}",
        f"DELETE FROM status_report_differences WHERE report_id = {rid}",
    ):
        with pg_engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            with pytest.raises(DBAPIError) as info:
                conn.execute(text(sql))
            assert "append-only" in str(info.value.orig), sql
    with Session(pg_engine) as s:
        kept = s.get(StatusReport, rid)
        assert kept is not None and (kept.version, kept.difference_count) == (1, 1)
        assert s.scalar(select(func.count()).where(StatusReportRow.report_id == rid)) == 1


# --- the file itself, without a database --------------------------------------------------------
def test_xb_rep_a_whole_book_of_100000_rows_is_read_and_hashed_alike_in_both_formats() -> None:
    """XB-Rep: a bank's whole book — 100,000 rows — fits the caps as CSV and as JSON, and
    both read to the same canonical content."""
    rows = [
        row(f"HT-{n:06d}", "1000000.00", "2026-03-11", "1000.00", "10.50", "overdue")
        if n % 10 == 0
        else row(f"HT-{n:06d}", f"{n}.{n % 100:02d}")
        for n in range(1, 100_001)
    ]
    as_csv = csv_body(rows, bom=True)
    as_json = json.dumps(json_body(rows)).encode()
    assert max(len(as_csv), len(as_json)) <= files.MAX_FILE_BYTES
    from_csv = files.parse(as_csv, files.CSV_TYPE, month_end=END)
    from_json = files.parse(as_json, files.JSON_TYPE, month_end=END)
    assert len(from_csv) == len(from_json) == 100_000
    assert (
        from_csv[9].overdue_since == date(2026, 3, 11) and from_csv[9].interest_overdue_fen == 1050
    )
    assert files.content_sha256(from_csv) == files.content_sha256(from_json)
    assert files.content_sha256(from_csv[::-1]) == files.content_sha256(from_csv)
    assert files.content_sha256(from_csv[1:]) != files.content_sha256(from_csv)


def test_xb_rep_the_contract_offers_csv_and_json_bodies(app: Any) -> None:
    """XB-Rep: the OpenAPI document gives the status file's two media types, so Swagger
    UI and generated clients offer both."""
    spec = app.openapi()
    post = spec["paths"]["/api/v1/status-reports/{year}/{month}"]["post"]
    content = post["requestBody"]["content"]
    assert set(content) == {"text/csv", "application/json"}
    item = content["application/json"]["schema"]["properties"]["rows"]["items"]
    assert set(item["required"]) == set(files.FIELDS) - {"overdue_since"}
    assert content["text/csv"]["example"].startswith(HEADER)
    assert {"200", "201", "413", "415", "422"} <= set(post["responses"])
    assert any("status files" in tag for tag in post["tags"])
