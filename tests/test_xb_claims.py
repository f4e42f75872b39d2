"""XB claims through the HTTP API: SPEC §6 examples 4–5 to the fen, XB-C1 boundaries,
the manager's 7-working-day opinion across Spring Festival, every XB-N finding, the
annual bank limit (XB-Q1) and the fund-wide stop (XB-Q2)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from typing import Any

import pytest
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from app.config import Settings
from app.kit.money import parse_yuan
from app.ledger.postings import credit, debit
from tests.claims_helpers import Api, api_fixture
from tests.factories import new_bank, xb_enterprise
from tests.ledger_helpers import assert_books_balance, balance, legs_of, post, raw_refused
from tests.xb_helpers import (
    BANK,
    CLAIM_DAY,
    POOL,
    base_loans,
    decide,
    documents,
    review,
    to_approval,
    xb_claim,
    xb_loan,
)


@pytest.fixture(autouse=True)
def xb_bank(session: Session) -> str:
    """A bank of its own for these tests (the demo's 连云港农商行 has XB claims of its own),
    cooperating with both sub-funds since 2025-06-01."""
    return new_bank(session, "XBT", since=date(2025, 6, 1), xb_sub_funds=("XB_ZQCZD", "XB_KCD"))


@pytest.fixture
def api(  # type: ignore[no-untyped-def]
    settings: Settings, engine: Engine, session_factory: sessionmaker[Session], auth
) -> Iterator[Api]:
    yield from api_fixture(settings, engine, session_factory, auth)


# --- SPEC §6 example 4 ------------------------------------------------------------------
def test_spec_example_4_credit_and_guaranteed_losses(api: Api, session: Session) -> None:
    """XB-S1: a 2,000,000.00 loss on a credit loan → fund 1,600,000.00, bank 400,000.00;
    on a guaranteed loan → fund 1,000,000.00, guarantor 800,000.00, bank 200,000.00."""
    fund_before = api.call("2026-02-13", "regulator", "GET", "/funds/XB_POOL/capital")
    base_loans(api, session, BANK, 18, "3000000.00")  # 54,000,000 performing
    cred = xb_loan(api, session, BANK, "2000000.00")
    guar = xb_loan(api, session, BANK, "2000000.00", guaranteed=True)
    cash = balance(session, f"{POOL}:cash")

    a = to_approval(api, BANK, cred)
    assert a["shares"] == {"fund": "1600000.00", "guarantor": "0.00", "bank": "400000.00"}
    assert (a["status"], a["approved"], a["capped_by"]) == ("approved", "1600000.00", None)
    b = to_approval(api, BANK, guar)
    assert b["shares"] == {"fund": "1000000.00", "guarantor": "800000.00", "bank": "200000.00"}
    assert b["approved"] == "1000000.00"
    approval = b["history"][-1]["ledger_entry_ids"][0]
    assert legs_of(session, approval) == {
        (POOL, "compensation_expense", 100_000_000, "XBT"),
        (POOL, "payable_bank", -100_000_000, "XBT"),
        (POOL, "guarantor_obligation_memo", 80_000_000, "XBT"),
        (POOL, "guarantor_obligation_contra", -80_000_000, "XBT"),
        (POOL, "exposure_contra", 100_000_000, "XBT"),
        (POOL, "exposure_memo", -100_000_000, "XBT"),
    }
    # limit: 5 % of 58,000,000 = 2,900,000; 2,600,000 used is past the 50 % warning
    assert b["cap"]["annual_limit"] == "2900000.00" and b["cap"]["warning"] is True
    assert "risk warning" in b["history"][-1]["comment"]
    assert b["deadlines"] == {"manager_opinion": "2026-02-26", "payment": "2026-03-18"}

    # maker-checker: the manager who reviewed does not pay
    same = api.call(
        "2026-02-13",
        "fund_xb",
        "POST",
        f"/claims/{b['id']}/payment",
        409,
        json={"paid_on": "2026-02-13"},
    )
    assert same["code"] == "maker_checker"
    for c in (a, b):
        paid = api.call(
            "2026-02-13",
            "fund_xb_pay",
            "POST",
            f"/claims/{c['id']}/payment",
            200,
            json={"paid_on": "2026-02-13"},
        )
        assert paid["status"] == "paid"
    assert balance(session, f"{POOL}:cash") == cash - 260_000_000
    fund = api.call("2026-02-13", "regulator", "GET", "/funds/XB_POOL/capital")
    # net value falls by the 2,600,000 paid; loans under the fund grow by 54,000,000
    # performing + the two compensated loans' 4,000,000 still unpaid (XB-F1)
    assert parse_yuan(fund["net_value"]) == parse_yuan(fund_before["net_value"]) - 260_000_000
    loans = parse_yuan(fund["loans_outstanding"])
    assert loans == parse_yuan(fund_before["loans_outstanding"]) + 58_000_000_00
    hundredths = loans * 100 // parse_yuan(fund["net_value"])
    assert fund["leverage"] == f"{hundredths // 100}.{hundredths % 100:02d}"
    assert fund["leverage_target"] == 10
    assert_books_balance(session)


# --- SPEC §6 example 5 and XB-Q1 ----------------------------------------------------------
def test_spec_example_5_limit_warning_and_suspension(api: Api, session: Session) -> None:
    """XB-Q1: 50,000,000.00 outstanding at the last quarter end → limit 2,500,000.00,
    warning at 1,250,000.00, suspension at 2,500,000.00; the excess is the bank's."""
    bank = new_bank(session, "XB5", since=date(2025, 6, 1), xb_sub_funds=("XB_ZQCZD",))
    loans = [xb_loan(api, session, bank, "3000000.00") for _ in range(16)]
    loans.append(xb_loan(api, session, bank, "2000000.00"))  # 50,000,000 in all
    api.repay(bank, loans[0], "2026-01-05", "1500000.00")  # 1,500,000 unpaid: share 1,200,000
    api.repay(bank, loans[1], "2026-01-05", "2900000.00")  # 100,000 unpaid: share 80,000

    e = api.call(CLAIM_DAY, bank, "GET", "/banks/XB5/exposure?program=XB")["limit"]
    assert (
        e["quarter_end"],
        e["outstanding_at_quarter_end"],
        e["annual_limit"],
        e["warning_at"],
    ) == ("2025-12-31", "50000000.00", "2500000.00", "1250000.00")

    first = to_approval(api, bank, loans[0])
    assert (first["approved"], first["cap"]["warning"]) == ("1200000.00", False)
    second = to_approval(api, bank, loans[1])
    assert second["cap"]["warning"] is True and second["cap"]["used_after"] == "1280000.00"
    third = to_approval(api, bank, loans[2])  # share 2,400,000; 1,220,000 left
    assert (third["approved"], third["capped_by"]) == ("1220000.00", "XB-Q1")
    assert third["approved_shares"] == {
        "fund": "1220000.00",
        "guarantor": "0.00",
        "bank": "1780000.00",
    }
    assert third["cap"]["suspended_agreement_ids"]
    after = api.call("2026-02-12", bank, "GET", "/banks/XB5/exposure?program=XB")
    assert after["suspended"] is True and after["limit"]["limit_reached"] is True
    assert after["limit"]["headroom"] == "0.00"
    refused = api.file_loan(
        bank,
        xb_enterprise(session).credit_code,
        "1.00",
        "2026-02-12",
        "2026-12-12",
        program="XB",
        rate=380,
        expect=422,
    )
    assert {e["code"] for e in refused["errors"]} == {"bank_suspended"}
    # nothing is left this year: the next approval pays nothing
    fourth = to_approval(api, bank, loans[3])
    assert (fourth["status"], fourth["approved"]) == ("closed", "0.00")
    # the committee lifts the suspension (XB-Q1)
    agreement = third["cap"]["suspended_agreement_ids"][0]
    api.call(
        "2026-02-13",
        "committee",
        "POST",
        f"/agreements/{agreement}/resume",
        200,
        json={"reason": "整改到位，恢复合作"},
    )
    api.file_loan(
        bank,
        xb_enterprise(session).credit_code,
        "1.00",
        "2026-02-13",
        "2026-12-13",
        program="XB",
        rate=380,
    )
    assert_books_balance(session)


# --- XB-C1 -----------------------------------------------------------------------------
def test_xb_c1_45_days_lawsuit_and_documents(api: Api, session: Session) -> None:
    loan = xb_loan(api, session, BANK, "1000000.00")
    early = xb_claim(api, BANK, loan, "2026-02-09", expect=422)  # 44 days
    assert early["code"] == "not_yet_claimable" and early["errors"][0]["rule"] == "XB-C1"
    no_suit = api.call(CLAIM_DAY, BANK, "POST", "/claims", 422, json={"loan_id": loan})
    assert [e["code"] for e in no_suit["errors"]] == ["lawsuit_required", "lawsuit_required"]
    c = xb_claim(api, BANK, loan)  # 45 days
    assert (c["days_past_due"], c["requested"], c["next_step"]["stage"]) == (
        45,
        "800000.00",
        "manager_review",
    )
    api.upload(BANK, c["id"], CLAIM_DAY)  # the application only
    missing = review(api, c["id"], "2026-02-11", expect=422)
    assert {e["msg"] for e in missing["errors"]} == {
        "the collection plan document is missing",
        "the due diligence document is missing",
    }
    late = xb_loan(api, session, BANK, "1000000.00", filed_on="2025-07-14")
    refused = xb_claim(api, BANK, late, expect=422)
    assert refused["code"] == "not_compensable" and refused["errors"][0]["rule"] == "XB-N7"


def test_xb_c2_opinion_deadline_across_spring_festival(api: Api, session: Session) -> None:
    """Filed 2026-02-10: the 7th working day is 2026-02-26 (the make-up Saturday 2026-02-14
    counts, the Festival does not); an opinion on 2026-02-27 is late and listed."""
    on_time = xb_claim(api, BANK, xb_loan(api, session, BANK, "1000000.00"))
    late = xb_claim(api, BANK, xb_loan(api, session, BANK, "1000000.00"))
    for c in (on_time, late):
        assert c["deadlines"] == {"manager_opinion": "2026-02-26"}
        documents(api, BANK, c["id"])
    assert api.call("2026-02-26", BANK, "GET", "/claims/overdue") == []
    review(api, on_time["id"], "2026-02-26")
    overdue = api.call("2026-02-27", BANK, "GET", "/claims/overdue")
    assert [(x["claim_id"], x["stage"], x["days_overdue"]) for x in overdue] == [
        (late["id"], "manager_review", 1)
    ]
    done = review(api, late["id"], "2026-02-27")
    assert "after the deadline 2026-02-26" in done["history"][-1]["comment"]
    assert api.call("2026-02-27", BANK, "GET", "/claims/overdue") == []


@pytest.mark.parametrize("finding", [f"XB-N{i}" for i in range(1, 10)])
def test_every_xb_n_finding_means_no_compensation(api: Api, session: Session, finding: str) -> None:
    c = xb_claim(api, BANK, xb_loan(api, session, BANK, "1000000.00"))
    documents(api, BANK, c["id"])
    bad = review(api, c["id"], "2026-02-11", expect=422, findings=[finding])
    assert bad["code"] == "findings_bar_compensation" and bad["errors"][0]["rule"] == finding
    r = review(api, c["id"], "2026-02-11", decision="reject", findings=[finding])
    assert (r["status"], r["findings"]) == ("manager_reviewed", [finding])
    refused = decide(api, c["id"], "2026-02-12", expect=422)
    assert refused["errors"][0]["rule"] == finding
    rejected = decide(api, c["id"], "2026-02-12", decision="reject", comment=f"{finding} 不予补偿")
    assert rejected["status"] == "rejected"
    loan = api.call("2026-02-12", BANK, "GET", f"/loans/{c['loan_id']}")
    assert loan["status"] == "active"


# --- XB-Q2 ------------------------------------------------------------------------------
def test_xb_q2_fund_stops_at_half_its_capital_until_the_committee_resumes(
    api: Api, session: Session
) -> None:
    """With 2,000,000.00 of capital left in the pool (the rest returned for the test), a
    1,000,000.00 compensation reaches 50 % and stops new business."""
    returned = [
        ("LYG_CITY", 50_000_000_00),
        ("HAIZHOU", 22_000_000_00),
        ("KFQ", 20_000_000_00),
        ("LIANYUN", 6_000_000_00),
    ]
    post(
        session,
        [
            *(debit(POOL, "contributed_capital", a, c) for c, a in returned),
            credit(POOL, "cash", sum(a for _, a in returned)),
        ],
    )
    session.commit()
    base_loans(api, session, BANK, 10, "3000000.00")
    loan = xb_loan(api, session, BANK, "1250000.00")  # fund share 1,000,000.00
    c = to_approval(api, BANK, loan)
    assert c["cap"]["fund_stopped"] is True and "XB-Q2" in c["history"][-1]["comment"]
    refused = api.file_loan(
        BANK,
        xb_enterprise(session).credit_code,
        "1.00",
        "2026-02-12",
        "2026-12-12",
        program="XB",
        rate=380,
        expect=422,
    )
    assert {e["code"] for e in refused["errors"]} == {"fund_stopped"}
    api.call(
        "2026-02-13",
        "committee",
        "POST",
        "/funds/XB_POOL/resume",
        200,
        json={"reason": "落实措施，风险可控"},
    )
    api.file_loan(
        BANK,
        xb_enterprise(session).credit_code,
        "1.00",
        "2026-02-13",
        "2026-12-13",
        program="XB",
        rate=380,
    )


# --- XB-R1, XB-R2 -------------------------------------------------------------------------
def _paid_claim(api: Api, session: Session, principal: str = "1000000.00") -> Any:
    loan = xb_loan(api, session, BANK, principal)
    c = to_approval(api, BANK, loan)
    return api.call(
        "2026-02-13",
        "fund_xb_pay",
        "POST",
        f"/claims/{c['id']}/payment",
        200,
        json={"paid_on": "2026-02-13"},
    )


def test_xb_r1_collections_are_due_within_10_working_days_until_received(
    api: Api, session: Session
) -> None:
    base_loans(api, session, BANK, 10, "3000000.00")
    c = _paid_claim(api, session)  # 800,000.00 paid on a 1,000,000.00 loss
    r = api.call(
        "2026-03-02",
        BANK,
        "POST",
        f"/claims/{c['id']}/recoveries",
        201,
        json={"recovered_on": "2026-03-02", "amount": "500000.00", "costs": "50000.00"},
    )
    # net 450,000 × 80 % = 360,000, due 10 working days later
    assert (r["returned"], r["returned_shares"], r["due_on"]) == (
        "360000.00",
        {"fund": "360000.00"},
        "2026-03-16",
    )
    assert legs_of(session, r["ledger_entry_ids"][0]) == {
        (POOL, "receivable_bank", 36_000_000, "XBT"),
        (POOL, "recovery_income", -36_000_000, "XBT"),
    }
    view = api.call("2026-03-16", "fund_xb", "GET", f"/claims/{c['id']}")
    assert view["receivable"] == "360000.00"
    assert api.call("2026-03-16", BANK, "GET", "/claims/overdue") == []
    late = api.call("2026-03-17", BANK, "GET", "/claims/overdue")
    assert [(x["claim_id"], x["stage"], x["deadline"]) for x in late] == [
        (c["id"], "recovery_distribution", "2026-03-16")
    ]
    cash = balance(session, f"{POOL}:cash")
    over = api.call(
        "2026-03-17",
        "fund_xb",
        "POST",
        f"/claims/{c['id']}/receipts",
        422,
        json={"received_on": "2026-03-17", "amount": "360000.01"},
    )
    assert over["code"] == "overpayment"
    got = api.call(
        "2026-03-17",
        "fund_xb",
        "POST",
        f"/claims/{c['id']}/receipts",
        201,
        json={"received_on": "2026-03-17", "amount": "360000.00"},
    )
    assert got["receivable_after"] == "0.00"
    assert balance(session, f"{POOL}:cash") == cash + 36_000_000
    assert api.call("2026-03-17", BANK, "GET", "/claims/overdue") == []
    assert_books_balance(session)


def test_xb_r2_abandonment_refunds_what_was_not_returned(api: Api, session: Session) -> None:
    base_loans(api, session, BANK, 10, "3000000.00")
    c = _paid_claim(api, session)
    api.call(
        "2026-03-02",
        BANK,
        "POST",
        f"/claims/{c['id']}/recoveries",
        201,
        json={"recovered_on": "2026-03-02", "amount": "450000.00"},
    )  # 360,000 returned
    api.call(
        "2026-03-05",
        BANK,
        "POST",
        f"/claims/{c['id']}/abandonment",
        403,
        json={"decided_on": "2026-03-05", "reason": "x" * 5},
    )
    refund = api.call(
        "2026-03-05",
        "fund_xb",
        "POST",
        f"/claims/{c['id']}/abandonment",
        201,
        json={"decided_on": "2026-03-05", "reason": "无正当理由放弃催收"},
    )
    assert (refund["kind"], refund["amount"]) == ("abandonment", "440000.00")
    assert legs_of(session, refund["ledger_entry_ids"][0]) == {
        (POOL, "receivable_bank", 44_000_000, "XBT"),
        (POOL, "compensation_refunds", -44_000_000, "XBT"),
    }
    view = api.call("2026-03-05", "fund_xb", "GET", f"/claims/{c['id']}")
    assert (view["returned"], view["receivable"]) == ("800000.00", "800000.00")
    again = api.call(
        "2026-03-05",
        "fund_xb",
        "POST",
        f"/claims/{c['id']}/abandonment",
        409,
        json={"decided_on": "2026-03-05", "reason": "again"},
    )
    assert again["code"] == "nothing_to_refund"
    assert_books_balance(session)


def test_xb_r2_fraud_refunds_in_full_and_terminates_the_agreements(
    api: Api, session: Session
) -> None:
    base_loans(api, session, BANK, 10, "3000000.00")
    c = _paid_claim(api, session)
    api.call(
        "2026-03-05",
        "fund_xb",
        "POST",
        f"/claims/{c['id']}/fraud-refund",
        403,
        json={"decided_on": "2026-03-05", "reason": "置换"},
    )
    refund = api.call(
        "2026-03-05",
        "committee",
        "POST",
        f"/claims/{c['id']}/fraud-refund",
        201,
        json={"decided_on": "2026-03-05", "reason": "存量不良贷款置换"},
    )
    assert (refund["kind"], refund["amount"]) == ("fraud", "800000.00")
    statuses = {
        a["fund_code"]: a["status"]
        for a in api.call("2026-03-05", "regulator", "GET", "/agreements?bank_code=XBT&program=XB")[
            "items"
        ]
    }
    assert statuses == {"XB_ZQCZD": "terminated", "XB_KCD": "terminated"}
    refused = api.file_loan(
        BANK,
        xb_enterprise(session).credit_code,
        "1.00",
        "2026-03-05",
        "2026-12-05",
        program="XB",
        rate=380,
        expect=422,
    )
    assert {e["code"] for e in refused["errors"]} == {"agreement_not_active"}
    assert_books_balance(session)


def test_clawbacks_and_receipts_are_append_only(
    api: Api, session: Session, connection: Any
) -> None:
    base_loans(api, session, BANK, 10, "3000000.00")
    c = _paid_claim(api, session)
    api.call(
        "2026-03-05",
        "fund_xb",
        "POST",
        f"/claims/{c['id']}/abandonment",
        201,
        json={"decided_on": "2026-03-05", "reason": "放弃催收"},
    )
    api.call(
        "2026-03-06",
        "fund_xb",
        "POST",
        f"/claims/{c['id']}/receipts",
        201,
        json={"received_on": "2026-03-06", "amount": "1.00"},
    )
    for table in ("claim_clawbacks", "claim_receipts"):
        for sql in (f"UPDATE {table} SET amount_fen = 0", f"DELETE FROM {table}"):
            assert "append-only" in raw_refused(connection, sql), sql


def test_xb_e2_no_new_support_within_3_years_of_a_compensation(api: Api, session: Session) -> None:
    from app.models import Enterprise, Loan

    base_loans(api, session, BANK, 10, "3000000.00")
    c = _paid_claim(api, session)  # paid on 2026-02-13
    loan = session.get(Loan, c["loan_id"])
    assert loan is not None
    enterprise = session.get(Enterprise, loan.enterprise_id)
    assert enterprise is not None
    refused = api.file_loan(
        BANK,
        enterprise.credit_code,
        "1.00",
        "2026-03-02",
        "2026-12-02",
        program="XB",
        rate=380,
        expect=422,
    )
    assert {e["code"] for e in refused["errors"]} == {"compensated_within_3_years"}
    assert refused["errors"][0]["rule"] == "XB-E2"


def test_xb_e2_ban_ends_three_years_after_the_compensation() -> None:
    """Pure rule (the PRC calendar in use ends in 2026): paid 2026-02-13, a loan disbursed
    2029-02-12 is refused, one disbursed 2029-02-13 is not."""
    from app.programs.xinbao.filing import FilingFacts, check_filing

    def codes_on(day: date) -> set[str]:
        facts = FilingFacts(
            principal_fen=100_00,
            annual_rate_bp=380,
            fee_rate_bp=0,
            disbursed_on=day,
            maturity_on=date(day.year + 1, 1, 31),
            security="credit",
            guarantor=None,
            controller_guarantee=True,
            today=day,
            filing_deadline=day,
            lpr_bp=300,
            region_code="320706",
            registered_on=date(2019, 1, 1),
            outstanding_fen=0,
            last_compensation_on=date(2026, 2, 13),
            agreement_status="active",
        )
        return {v.code or "" for v in check_filing(facts).violations}

    assert codes_on(date(2029, 2, 12)) == {"compensated_within_3_years"}
    assert codes_on(date(2029, 2, 13)) == set()
