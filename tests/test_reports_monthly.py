"""The monthly report of one bank (XB-Rep; the SKD banks' month too) with the SKD-R2
台账 reconciliation, on small books built with the factories, figures to the fen: the
month's filings, repayments, arrears by bucket (SPEC M-6), claims, recoveries, the
loan-level status file and its differences, the ledger beside what the bank reported —
reproducible as of a cut-off, and scoped to the caller."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.claims import service as claims
from app.errors import Forbidden, NotFound
from app.ledger import service as ledger
from app.models import Claim, LedgerEntry, Loan
from app.reports.document import ReportDocument, canonical_json, to_json_obj
from app.reports.monthly import build_monthly
from app.status_reports import files
from app.status_reports import service as status_reports
from tests.fixtures.factories import (
    NOW,
    principal,
    recovery,
    repayment,
    skd_claim,
    skd_loan,
    xb_claim,
)


def rows(doc: ReportDocument, key: str, by: str | None = None) -> Any:
    section = doc.section(key).rows
    return {r[by]: r for r in section} if by else list(section)


def monthly(session: Session, program: str, bank: str, year: int, month: int, **kw: Any) -> Any:
    return build_monthly(
        session,
        program=program,
        bank_code=bank,
        year=year,
        month=month,
        principal=kw.pop("principal", principal(session, "regulator")),
        cutoff_at=kw.pop("cutoff_at", datetime.now(UTC)),
        **kw,
    )


@dataclass(frozen=True)
class Book:
    claimed: Loan  # 1,000,000.00 due 2026-06-02, claimed 09-01, paid 09-04
    amortising: Loan  # 2,000,000.00, 500,000.00 + 30,000.00 interest paid on 09-09
    new: Loan  # 600,000.00 filed 2026-09-07
    late: Loan  # 400,000.00, its 100,000.00 due 2026-08-20 unpaid
    claim: Claim


@pytest.fixture
def book(session: Session) -> Book:
    """建设银行's SKD book in 苏州, looked at in September 2026."""
    claimed = skd_loan(session)
    amortising = skd_loan(
        session,
        principal_yuan="2000000.00",
        disbursed=date(2026, 3, 9),
        maturity=date(2026, 12, 9),
        schedule=[
            {"due_on": "2026-09-09", "principal": "500000.00", "interest": "30000.00"},
            {"due_on": "2026-12-09", "principal": "1500000.00", "interest": "40000.00"},
        ],
    )
    late = skd_loan(
        session,
        principal_yuan="400000.00",
        disbursed=date(2026, 3, 16),
        maturity=date(2026, 12, 16),
        schedule=[
            {"due_on": "2026-08-20", "principal": "100000.00"},
            {"due_on": "2026-12-16", "principal": "300000.00"},
        ],
    )
    new = skd_loan(
        session,
        principal_yuan="600000.00",
        disbursed=date(2026, 9, 7),
        maturity=date(2027, 3, 7),
    )
    repayment(
        session,
        amortising,
        on=date(2026, 9, 9),
        principal_fen=500_000_00,
        interest_fen=30_000_00,
    )
    # SKD-S1: 80 % of 1,000,000.00; 建设银行 is in its first year (SKD-Q2: no cap)
    claim = skd_claim(session, loan=claimed, status="paid")
    # SKD-R1: (200,000.00 − 10,000.00) × 800,000.00 ÷ 1,000,000.00 = 152,000.00
    recovery(session, claim, on=date(2026, 9, 20), amount_fen=200_000_00, costs_fen=10_000_00)
    return Book(claimed, amortising, new, late, claim)


def test_XB_Rep_the_banks_month_to_the_fen(session: Session, book: Book) -> None:
    """Filings, repayments, arrears by bucket at the month end, claims and recoveries of
    建设银行's September 2026 (SPEC M-6 buckets, SKD-S1, SKD-R1)."""
    doc = monthly(session, "SKD", "CCB_JS", 2026, 9)
    assert (doc.kind, doc.period, doc.scope) == ("monthly", "2026-09", "CCB_JS")
    assert (doc.period_start, doc.period_end) == (date(2026, 9, 1), date(2026, 9, 30))
    filed = rows(doc, "filings", "line")
    assert filed["SKD1"] | {} == {
        "line": "SKD1",
        "loans": 1,
        "principal": 600_000_00,
        "enterprises": 1,
        "filed_late": 0,
    }
    assert filed["total"]["principal"] == 600_000_00
    paid = rows(doc, "repayments", "line")["total"]
    assert (paid["loans"], paid["principal"], paid["principal_renewed"], paid["interest"]) == (
        1,
        500_000_00,
        0,
        30_000_00,
    )
    buckets = {r["bucket"]: (r["loans"], r["outstanding"]) for r in rows(doc, "arrears")}
    assert buckets == {
        "current": (2, 2_100_000_00),  # 1,500,000.00 + 600,000.00
        "1-30": (0, 0),
        "31-44": (1, 400_000_00),  # overdue since 08-21: 41 days on 09-30
        "45-89": (0, 0),
        "90+": (1, 1_000_000_00),  # overdue since 06-03: 120 days
        "total": (4, 3_500_000_00),
    }
    got = {r["item"]: (r["claims"], r["amount"]) for r in rows(doc, "claims")}
    assert got == {
        "filed": (1, 800_000_00),
        "approved": (1, 800_000_00),
        "capped": (0, 0),
        "paid": (1, 800_000_00),
        "rejected": (0, 0),
    }
    rec = {r["item"]: (r["count"], r["amount"]) for r in rows(doc, "recoveries")}
    assert rec == {
        "recovered": (1, 200_000_00),
        "costs": (1, 10_000_00),
        "returns_due": (1, 152_000_00),
        "refunds_decided": (0, 0),
        "received": (None, 152_000_00),  # SKD-R1: returned as cash at once
    }
    # August: the loans, nothing of September's flows
    august = monthly(session, "SKD", "CCB_JS", 2026, 8)
    assert rows(august, "claims", "item")["filed"]["claims"] == 0
    # on 08-31 the new loan is not disbursed, the late one 11 days past due
    assert {r["bucket"]: r["loans"] for r in rows(august, "arrears")} == {
        "current": 1,
        "1-30": 1,
        "31-44": 0,
        "45-89": 0,
        "90+": 1,
        "total": 3,
    }
    # the JSON rendering carries money as yuan strings
    as_json = to_json_obj(doc)
    assert as_json["sections"][0]["rows"][0]["principal"] == "600000.00"


def test_SKD_R2_the_ledgers_side_by_side_and_every_difference(session: Session, book: Book) -> None:
    """The claim's payment, the bank's reported collection and its return beside the
    ledger: equal by construction; a reversed payment entry (L-2) is a difference."""
    doc = monthly(session, "SKD", "CCB_JS", 2026, 9)
    (line,) = rows(doc, "ledger_reconciliation")
    assert line == {
        "claim_id": book.claim.id,
        "contract_no": book.claimed.contract_no,
        "approved": 800_000_00,
        "paid_record": 800_000_00,
        "paid_ledger": 800_000_00,
        "recovered_bank": 200_000_00,
        "costs_bank": 10_000_00,
        "returns_bank": 152_000_00,
        "returns_ledger": 152_000_00,
        "refunds_ledger": 0,
        "received_ledger": 152_000_00,
        "owed_ledger": 0,
        "differences": 0,
    }
    assert rows(doc, "ledger_differences") == []
    assert "reversing entry" in doc.section("ledger_reconciliation").note
    payment = session.scalars(
        select(LedgerEntry).where(
            LedgerEntry.event_type == "claim.city_payment",
            LedgerEntry.event_id == str(book.claim.id),
        )
    ).one()
    ledger.reverse(
        session,
        entry_id=payment.id,
        business_date=date(2026, 9, 25),
        reason="paid to the wrong account",
        now=NOW,
    )
    session.commit()
    after = monthly(session, "SKD", "CCB_JS", 2026, 9)
    assert rows(after, "ledger_reconciliation")[0]["paid_ledger"] == 0
    (diff,) = rows(after, "ledger_differences")
    assert (diff["kind"], diff["expected"], diff["ledger"], diff["difference"]) == (
        "paid",
        800_000_00,
        0,
        800_000_00,
    )
    # dated after August's end, the reversal is not in August's books
    assert rows(monthly(session, "SKD", "CCB_JS", 2026, 8), "ledger_differences") == []


def test_XB_Rep_SKD_R2_a_return_not_yet_received_is_listed(session: Session) -> None:
    """XB: the committee's approval capped by XB-Q1 (5 % of the bank's base principal at
    the last quarter end, 1,000,000.00 → 50,000.00), a collection whose return is a
    receivable (XB-R1) partly received: the rest is a difference, due since its date."""
    claim = xb_claim(session, status="paid")
    assert (claim.approved_fen, claim.capped_by) == (50_000_00, "XB-Q1")
    rec = recovery(session, claim, on=date(2026, 2, 20), amount_fen=100_000_00)
    assert rec.returned_fen == 5_000_00  # 100,000.00 × 50,000.00 ÷ 1,000,000.00
    claims.receive(
        session,
        claim_id=claim.id,
        received_on=date(2026, 2, 25),
        amount_fen=2_000_00,
        actor=principal(session, "fund_xb"),
        today=date(2026, 2, 25),
        now=NOW,
    )
    session.commit()
    doc = monthly(session, "XB", "LYG_RCB", 2026, 2)
    got = {r["item"]: (r["claims"], r["amount"]) for r in rows(doc, "claims")}
    assert got == {
        "filed": (1, 800_000_00),  # XB-S1: 80 % of the 1,000,000.00 loss
        "approved": (1, 50_000_00),
        "capped": (1, 750_000_00),
        "paid": (1, 50_000_00),
        "rejected": (0, 0),
    }
    assert rows(doc, "recoveries", "item")["received"]["amount"] == 2_000_00
    (line,) = rows(doc, "ledger_reconciliation")
    assert (line["returns_bank"], line["returns_ledger"], line["received_ledger"]) == (
        5_000_00,
        5_000_00,
        2_000_00,
    )
    assert line["owed_ledger"] == 3_000_00
    (diff,) = rows(doc, "ledger_differences")
    assert (diff["kind"], diff["difference"], diff["due_since"]) == (
        "not_received",
        3_000_00,
        rec.due_on,
    )


def test_XB_Rep_the_status_file_missing_then_reconciled(session: Session, book: Book) -> None:
    doc = monthly(session, "SKD", "CCB_JS", 2026, 9)
    (head,) = rows(doc, "status_file")
    # 建设银行's agreement covers the month end; the cut-off's date is after 2026-10-10
    assert (head["state"], head["due_on"], head["version"]) == ("missing", date(2026, 10, 10), None)
    header = ",".join(files.FIELDS)
    lines = [
        f"{book.claimed.contract_no},1000000.00,2026-06-03,1000000.00,0.00,overdue",
        f"{book.amortising.contract_no},1500000.00,,0.00,0.00,current",
        f"{book.late.contract_no},350000.00,2026-08-21,100000.00,0.00,overdue",
    ]  # the new loan is missing; the late one's outstanding is wrong
    status_reports.submit(
        session,
        bank_code="CCB_JS",
        year=2026,
        month=9,
        body=("\n".join([header, *lines]) + "\n").encode(),
        media_type="text/csv",
        actor=principal(session, "bank_ccb"),
        today=date(2026, 10, 12),
    )
    session.commit()
    doc = monthly(session, "SKD", "CCB_JS", 2026, 9)
    (head,) = rows(doc, "status_file")
    assert (head["state"], head["version"], head["late"], head["rows"], head["differences"]) == (
        "submitted",
        1,
        True,
        3,
        2,
    )
    kinds = {r["kind"]: r["differences"] for r in rows(doc, "status_differences_by_kind")}
    assert kinds == {"missing_loan": 1, "outstanding_mismatch": 1}
    found = {
        (r["kind"], r["contract_no"], r["ours"], r["theirs"])
        for r in rows(doc, "status_differences")
    }
    assert found == {
        ("outstanding_mismatch", book.late.contract_no, "400000.00", "350000.00"),
        ("missing_loan", book.new.contract_no, "600000.00", None),
    }


def test_the_month_is_reproducible_as_of_a_cut_off(session: Session, book: Book) -> None:
    """Rows recorded after the cut-off leave the report as it was; a later cut-off
    shows them."""
    cut = datetime.now(UTC)
    first = canonical_json(to_json_obj(monthly(session, "SKD", "CCB_JS", 2026, 9, cutoff_at=cut)))
    repayment(session, book.new, on=date(2026, 9, 28), principal_fen=100_000_00)  # late posting
    again = canonical_json(to_json_obj(monthly(session, "SKD", "CCB_JS", 2026, 9, cutoff_at=cut)))
    assert again == first
    later = monthly(session, "SKD", "CCB_JS", 2026, 9)
    assert rows(later, "repayments", "line")["total"]["principal"] == 600_000_00
    # as of an earlier date in the month (a month not over yet): nothing due later counts
    mid = monthly(session, "SKD", "CCB_JS", 2026, 9, as_of=date(2026, 9, 8))
    assert rows(mid, "repayments", "line")["total"]["principal"] == 0
    assert rows(mid, "claims", "item")["paid"]["claims"] == 1


def test_XB_Rep_a_bank_reads_only_its_own_month(session: Session, book: Book) -> None:
    def as_(user: str, program: str = "SKD") -> ReportDocument:
        return monthly(session, program, "CCB_JS", 2026, 9, principal=principal(session, user))

    assert as_("bank_ccb").scope == "CCB_JS"
    assert as_("fund_suzhou").scope == as_("city_suzhou").scope == "CCB_JS"
    with pytest.raises(NotFound):
        as_("bank_jsb")
    with pytest.raises(NotFound):
        as_("city_nanjing")  # 建设银行 has no agreement in 南京
    with pytest.raises(Forbidden):
        as_("fund_xb")  # an XB fund manager reads XB's reports
    with pytest.raises(NotFound):
        monthly(session, "SKD", "NO_SUCH_BANK", 2026, 9)
