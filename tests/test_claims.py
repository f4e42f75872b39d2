"""SKD claims through the HTTP API: SPEC §6 examples 1–3 to the fen, the workflow's
guards (SKD-C1…C3), SKD-S2, documents, recoveries (SKD-R1) and the exposure view."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from datetime import UTC, date, datetime
from typing import Any

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session, sessionmaker

from app.auth.principal import Principal
from app.claims import service as claims
from app.config import Settings
from app.errors import Conflict
from app.ledger import service as ledger
from app.models import LedgerEntry, User
from tests.fixtures.api import PDF, Api, api_fixture
from tests.fixtures.factories import member_enterprise, new_bank
from tests.fixtures.ledger import assert_books_balance, balance, legs_of, raw_refused

CITY_SZ, PROV = "SKD_CITY_320500", "SKD_PROV"


@pytest.fixture
def api(  # type: ignore[no-untyped-def]
    settings: Settings, engine: Engine, session_factory: sessionmaker[Session], auth
) -> Iterator[Api]:
    yield from api_fixture(settings, engine, session_factory, auth)


def overdue_loan(
    api: Api,
    session: Session,
    *,
    principal: str,
    unpaid_repay: str | None,
    revenue: int = 15_000_000,
    **kw: Any,
) -> int:
    """A 中国建设银行 loan in 苏州 (agreement from 2026-03-01: the first cooperation year,
    so SKD-Q2 exempts it from the cap), disbursed 2026-03-02, due 2026-06-02."""
    code = member_enterprise(session, region="320500", revenue_yuan=revenue).credit_code
    loan = api.file_loan("bank_ccb", code, principal, "2026-03-02", "2026-06-02", **kw)
    if unpaid_repay:
        api.repay("bank_ccb", loan, "2026-05-20", unpaid_repay)
    return loan


# --- SPEC §6 example 1 -----------------------------------------------------------------
def test_spec_example_1_skd1_claim_payment_reimbursement_and_recovery(
    api: Api, session: Session
) -> None:
    """SKD-S1, C1, R1: 5,000,000.00 SKD1 loan, 3,000,000.00 unpaid → province
    1,200,000.00, city 1,200,000.00, bank 600,000.00; the city pays 2,400,000.00, the
    province reimburses 1,200,000.00; a 1,000,000.00 recovery with 50,000.00 costs
    returns 760,000.00 (380,000.00 each). SKD-R2 as far as it is built: the payments, the
    recovery and its return are on the claim's history and in each fund's books."""
    loan = overdue_loan(api, session, principal="5000000.00", unpaid_repay="2000000.00")
    city_cash, prov_cash = balance(session, f"{CITY_SZ}:cash"), balance(session, f"{PROV}:cash")
    due_from = balance(session, f"{CITY_SZ}:due_from_fund:{PROV}")  # no other claim is open

    # 89 days past due on 2026-08-30: too early (SKD-C2); 90 on 2026-08-31
    early = api.claim("bank_ccb", loan, "2026-08-30", expect=422)
    assert early["code"] == "not_yet_claimable" and early["errors"][0]["rule"] == "SKD-C2"
    c = api.claim("bank_ccb", loan, "2026-08-31")
    assert (c["status"], c["days_past_due"], c["loss"], c["requested"]) == (
        "submitted",
        90,
        "3000000.00",
        "2400000.00",
    )
    assert c["shares"] == {"province": "1200000.00", "city": "1200000.00", "bank": "600000.00"}
    assert c["next_step"]["stage"] == "city_review"
    assert api.call("2026-08-31", "bank_ccb", "GET", f"/loans/{loan}")["status"] == "claimed"

    api.upload("bank_ccb", c["id"], "2026-08-31")
    c = api.review("city-review", "city_suzhou", c["id"], "2026-09-02")
    assert c["status"] == "city_approved"
    memo = balance(session, f"{CITY_SZ}:exposure_memo:CCB_JS")
    c = api.review("province-review", "province", c["id"], "2026-09-08")
    assert (c["status"], c["approved"], c["capped_by"]) == ("approved", "2400000.00", None)
    assert c["cap"]["exempt"] is True  # SKD-Q2: CCB's first year, under 200,000,000
    approval = c["history"][-1]["ledger_entry_ids"][0]
    assert legs_of(session, approval) == {
        (CITY_SZ, "compensation_expense", 120_000_000, "CCB_JS"),
        (CITY_SZ, "due_from_fund", 120_000_000, PROV),
        (CITY_SZ, "payable_bank", -240_000_000, "CCB_JS"),
        (PROV, "compensation_expense", 120_000_000, "CCB_JS"),
        (PROV, "due_to_fund", -120_000_000, CITY_SZ),
        # the guarantee exposure on the 3,000,000.00 ends with the decision
        (PROV, "exposure_contra", 120_000_000, "CCB_JS"),
        (PROV, "exposure_memo", -120_000_000, "CCB_JS"),
        (CITY_SZ, "exposure_contra", 120_000_000, "CCB_JS"),
        (CITY_SZ, "exposure_memo", -120_000_000, "CCB_JS"),
    }
    assert balance(session, f"{CITY_SZ}:exposure_memo:CCB_JS") == memo - 120_000_000

    c = api.pay("city-payment", "fund_suzhou", c["id"], "2026-09-10")
    assert (c["status"], c["paid_on"]) == ("paid", "2026-09-10")
    assert balance(session, f"{CITY_SZ}:cash") == city_cash - 240_000_000
    c = api.pay("province-reimbursement", "fund_province", c["id"], "2026-09-15")
    assert c["status"] == "reimbursed" and c["next_step"] is None
    assert balance(session, f"{CITY_SZ}:cash") == city_cash - 120_000_000
    assert balance(session, f"{PROV}:cash") == prov_cash - 120_000_000
    assert balance(session, f"{CITY_SZ}:due_from_fund:{PROV}") == due_from  # settled
    assert balance(session, f"{PROV}:due_to_fund:{CITY_SZ}") == -due_from

    r = api.call(
        "2026-10-20",
        "bank_ccb",
        "POST",
        f"/claims/{c['id']}/recoveries",
        201,
        json={"recovered_on": "2026-10-20", "amount": "1000000.00", "costs": "50000.00"},
    )
    assert (r["net"], r["returned"], r["returned_shares"]) == (
        "950000.00",
        "760000.00",
        {"province": "380000.00", "city": "380000.00"},
    )
    assert balance(session, f"{CITY_SZ}:cash") == city_cash - 120_000_000 + 38_000_000
    assert balance(session, f"{PROV}:cash") == prov_cash - 120_000_000 + 38_000_000
    assert balance(session, f"{CITY_SZ}:recovery_income:CCB_JS") == -38_000_000
    assert balance(session, f"{PROV}:recovery_income:CCB_JS") == -38_000_000
    history = [
        (h["action"], h["actor"])
        for h in api.call("2026-10-20", "regulator", "GET", f"/claims/{c['id']}")["history"]
    ]
    assert history == [
        ("submit", "bank_ccb"),
        ("city_approve", "city_suzhou"),
        ("province_approve", "province"),
        ("city_pay", "fund_suzhou"),
        ("province_reimburse", "fund_province"),
    ]
    assert_books_balance(session)


def test_spec_example_2_skd3_loss_in_full(api: Api, session: Session) -> None:
    """SKD-S1: SKD3 20,000,000.00 lost in full → 3,000,000.00 / 3,000,000.00 /
    14,000,000.00."""
    loan = overdue_loan(
        api,
        session,
        principal="20000000.00",
        unpaid_repay=None,
        revenue=120_000_000,
        security="guaranteed",
        guarantor="苏州信保融资担保有限公司",
    )
    c = api.claim("bank_ccb", loan, "2026-09-01")
    assert c["product"] == "SKD3" and c["loss"] == "20000000.00"
    assert c["shares"] == {"province": "3000000.00", "city": "3000000.00", "bank": "14000000.00"}
    c = api.through_reviews("bank_ccb", "city_suzhou", c["id"], "2026-09-01", "2026-09-03")
    assert (c["approved"], c["approved_shares"]) == (
        "6000000.00",
        {"province": "3000000.00", "city": "3000000.00", "bank": "14000000.00"},
    )
    assert_books_balance(session)


# --- SPEC §6 example 3 (SKD-Q1) --------------------------------------------------------
@pytest.fixture
def year_two_bank(session: Session) -> str:
    """A bank cooperating since 2025-01-01 (so in year 2 during 2026) with 南京's fund."""
    return new_bank(session, "EX3", since=date(2025, 1, 1))


def test_spec_example_3_cap_approves_1000000_and_the_bank_bears_1400000(
    api: Api, session: Session, year_two_bank: str
) -> None:
    """SKD-Q1: annualized principal 400,000,000.00 (100 SKD1 loans of 5,000,000.00 for
    365 days at the funds' 80 %), 11,000,000.00 already compensated, year 2: a claim with
    a fund share of 2,400,000.00 is approved at 1,000,000.00 (500,000.00 each)."""
    bank = year_two_bank
    loans = [
        api.file_loan(
            bank,
            member_enterprise(session, region="320100").credit_code,
            "5000000.00",
            "2025-03-03",
            "2026-03-03",
        )
        for _ in range(100)
    ]
    for loan in loans[:5]:  # fund share 2,200,000.00 each: 11,000,000.00 in all
        api.repay(bank, loan, "2026-01-05", "2250000.00")
    api.repay(bank, loans[5], "2026-01-05", "2000000.00")
    for i, loan in enumerate(loans[:5]):
        c = api.claim(bank, loan, "2026-06-01")
        c = api.through_reviews(bank, "city_nanjing", c["id"], "2026-06-01", f"2026-06-0{2 + i}")
        assert (c["approved"], c["capped_by"]) == ("2200000.00", None)

    before = api.call("2026-06-10", bank, "GET", "/banks/EX3/exposure")
    assert before["total"]["annualized_principal"] == "400000000.00"
    assert before["products"][0] == {
        "product": "SKD1",
        "annualized_principal": "400000000.00",
        "compensated": "11000000.00",
        "compensation_rate": "2.7500",
    }
    assert (before["cap"], before["headroom"], before["exemption"]["applies"]) == (
        "12000000.00",
        "1000000.00",
        False,
    )

    c = api.claim(bank, loans[5], "2026-06-10")
    assert c["requested"] == "2400000.00"
    c = api.through_reviews(bank, "city_nanjing", c["id"], "2026-06-10", "2026-06-11")
    assert (c["status"], c["approved"], c["capped_by"]) == ("approved", "1000000.00", "SKD-Q1")
    assert c["approved_shares"] == {
        "province": "500000.00",
        "city": "500000.00",
        "bank": "2000000.00",
    }
    assert c["bank_bears_capped"] == "1400000.00"
    assert c["cap"]["headroom"] == "1000000.00" and "SKD-Q1" in c["history"][-1]["comment"]

    after = api.call("2026-06-11", "regulator", "GET", "/banks/EX3/exposure")
    assert (after["total"]["compensated"], after["total"]["compensation_rate"]) == (
        "12000000.00",
        "3.0000",
    )
    assert after["headroom"] == "0.00"
    # the cap exhausted: a further claim is closed with nothing payable
    c = api.claim(bank, loans[6], "2026-06-12")
    c = api.through_reviews(bank, "city_nanjing", c["id"], "2026-06-12", "2026-06-12")
    assert (c["status"], c["approved"], c["capped_by"]) == ("closed", "0.00", "SKD-Q1")
    assert_books_balance(session)


# --- refusals and guards ---------------------------------------------------------------
def test_claim_refusals_list_their_rules(api: Api, session: Session) -> None:
    loan = overdue_loan(api, session, principal="1000000.00", unpaid_repay=None)
    other = api.claim("bank_jsb", loan, "2026-09-01", expect=422)  # not JSB's loan
    assert other["code"] == "unknown_loan"
    c = api.claim("bank_ccb", loan, "2026-09-01")
    dup = api.claim("bank_ccb", loan, "2026-09-02", expect=409)
    assert dup["code"] == "claim_exists"
    # a claimed loan takes no repayments
    api.call(
        "2026-09-02",
        "bank_ccb",
        "POST",
        f"/loans/{loan}/repayments",
        409,
        json={"paid_on": "2026-09-02", "principal": "1.00"},
    )
    # city approval needs the application documents (SKD-C1)
    missing = api.review("city-review", "city_suzhou", c["id"], "2026-09-02", expect=422)
    assert missing["code"] == "documents_missing" and missing["errors"][0]["rule"] == "SKD-C1"
    # the province cannot review before the city
    early = api.review("province-review", "province", c["id"], "2026-09-02", expect=409)
    assert early["code"] == "invalid_transition"
    # a reviewer of another city sees nothing
    api.review("city-review", "city_nanjing", c["id"], "2026-09-02", expect=404)
    api.review("city-review", "province", c["id"], "2026-09-02", expect=403)
    # rejection needs a reason
    api.review(
        "city-review",
        "city_suzhou",
        c["id"],
        "2026-09-02",
        decision="reject",
        comment="",
        expect=422,
    )


def test_repaid_loan_cannot_be_claimed(api: Api, session: Session) -> None:
    loan = overdue_loan(api, session, principal="1000000.00", unpaid_repay="1000000.00")
    refused = api.claim("bank_ccb", loan, "2026-09-01", expect=422)
    assert {e["code"] for e in refused["errors"]} == {"loan_not_claimable", "nothing_outstanding"}


def test_rejection_returns_the_loan_and_skd_s2_ends_compensation(
    api: Api, session: Session
) -> None:
    """A rejected claim frees the loan for a new claim; a finding that the loan was not
    eligible when granted (SKD-S2) means no compensation ever."""
    loan = overdue_loan(api, session, principal="1000000.00", unpaid_repay=None)
    c = api.claim("bank_ccb", loan, "2026-09-01")
    api.upload("bank_ccb", c["id"], "2026-09-01")
    c = api.review(
        "city-review",
        "city_suzhou",
        c["id"],
        "2026-09-02",
        decision="reject",
        comment="催收记录不全",
    )
    assert (c["status"], c["rejection_reason"]) == ("rejected", "催收记录不全")
    assert api.call("2026-09-02", "bank_ccb", "GET", f"/loans/{loan}")["status"] == "active"

    again = api.claim("bank_ccb", loan, "2026-09-03")
    api.upload("bank_ccb", again["id"], "2026-09-03")
    api.review("city-review", "city_suzhou", again["id"], "2026-09-03")
    again = api.review(
        "province-review",
        "province",
        again["id"],
        "2026-09-04",
        decision="reject",
        comment="放款时企业为失信被执行人 (SKD-F4)",
        ineligible_at_grant=True,
    )
    assert again["status"] == "rejected"
    view = api.call("2026-09-04", "bank_ccb", "GET", f"/loans/{loan}")
    assert view["compensable"] is False and any("SKD-S2" in f for f in view["flags"])
    third = api.claim("bank_ccb", loan, "2026-09-05", expect=422)
    assert third["code"] == "not_compensable" and third["errors"][0]["rule"] == "SKD-S2"
    listed = api.call("2026-09-05", "bank_ccb", "GET", f"/claims?loan_id={loan}")["items"]
    assert [x["status"] for x in listed] == ["rejected", "rejected"]


def test_payments_are_made_by_the_right_fund_manager(api: Api, session: Session) -> None:
    loan = overdue_loan(api, session, principal="1000000.00", unpaid_repay=None)
    c = api.claim("bank_ccb", loan, "2026-09-01")
    c = api.through_reviews("bank_ccb", "city_suzhou", c["id"], "2026-09-01", "2026-09-02")
    api.pay("city-payment", "fund_nanjing", c["id"], "2026-09-03", expect=404)  # not its claim
    wrong = api.pay("city-payment", "fund_province", c["id"], "2026-09-03", expect=403)
    assert wrong["code"] == "wrong_fund"
    early = api.pay("province-reimbursement", "fund_province", c["id"], "2026-09-03", 409)
    assert early["code"] == "invalid_transition"
    before = api.call(
        "2026-09-03",
        "fund_suzhou",
        "POST",
        f"/claims/{c['id']}/city-payment",
        422,
        json={"paid_on": "2026-09-01"},
    )  # before the approval
    assert before["code"] == "invalid_date"
    api.pay("city-payment", "fund_suzhou", c["id"], "2026-09-03")
    api.pay("city-payment", "fund_suzhou", c["id"], "2026-09-03", expect=409)  # once only


def test_skd_c3_maker_checker_refuses_a_second_stage_by_the_same_user(
    api: Api, session: Session
) -> None:
    """SKD-C3: a user who acted on one stage of a claim may not act on another, even
    when their role changes in between."""
    loan = overdue_loan(api, session, principal="1000000.00", unpaid_repay=None)
    c = api.claim("bank_ccb", loan, "2026-09-01")
    api.upload("bank_ccb", c["id"], "2026-09-01")
    api.review("city-review", "city_suzhou", c["id"], "2026-09-02")
    reviewer = session.scalars(select(User).where(User.username == "city_suzhou")).one()
    promoted = Principal(user_id=reviewer.id, username=reviewer.username, role="province_reviewer")
    now = datetime(2026, 9, 3, tzinfo=UTC)
    with pytest.raises(Conflict) as refused:
        claims.step(
            session,
            claim_id=c["id"],
            stage="province_review",
            approve=True,
            actor=promoted,
            today=date(2026, 9, 3),
            now=now,
        )
    assert refused.value.code == "maker_checker"
    assert refused.value.errors[0].rule == "SKD-C3"


# --- documents ---------------------------------------------------------------------------
def test_documents_are_checked_stored_with_sha256_and_downloadable(
    api: Api, session: Session, settings: Settings
) -> None:
    api.settings = settings.model_copy(update={"max_upload_bytes": 4096})
    loan = overdue_loan(api, session, principal="1000000.00", unpaid_repay=None)
    c = api.claim("bank_ccb", loan, "2026-09-01")
    doc = api.upload("bank_ccb", c["id"], "2026-09-01")
    assert doc["sha256"] == hashlib.sha256(PDF).hexdigest() and doc["size_bytes"] == len(PDF)
    r = api.on("2026-09-01").get(doc["download"], headers=api.auth("city_suzhou"))
    assert r.status_code == 200 and r.content == PDF
    assert r.headers["content-type"] == "application/pdf"
    assert r.headers["x-content-sha256"] == doc["sha256"]
    other = api.on("2026-09-01").get(doc["download"], headers=api.auth("bank_jsb"))
    assert other.status_code == 404

    def refused(name: str, content: bytes, ctype: str) -> set[str]:
        body = api.upload(
            "bank_ccb", c["id"], "2026-09-01", expect=422, files={"file": (name, content, ctype)}
        )
        return {e["code"] for e in body["errors"]}

    assert refused("a.exe", b"MZ\x90\x00", "application/x-msdownload") == {
        "document_type_not_accepted"
    }
    assert refused("fake.pdf", b"<html>", "application/pdf") == {"document_type_mismatch"}
    assert refused("empty.pdf", b"", "application/pdf") == {"document_empty"}
    big = PDF + b"0" * 4096  # over the document limit, under the request limit
    too_big = api.upload(
        "bank_ccb",
        c["id"],
        "2026-09-01",
        expect=413,
        files={"file": ("big.pdf", big, "application/pdf")},
    )
    assert too_big["code"] == "document_too_large"
    huge = PDF + b"0" * settings.max_request_bytes  # refused before it is read
    too_big = api.upload(
        "bank_ccb",
        c["id"],
        "2026-09-01",
        expect=413,
        files={"file": ("huge.pdf", huge, "application/pdf")},
    )
    assert too_big["code"] == "payload_too_large"
    api.upload("bank_ccb", c["id"], "2026-09-01", expect=422, data={"kind": "selfie"})
    view = api.call("2026-09-01", "bank_ccb", "GET", f"/claims/{c['id']}")
    assert [d["id"] for d in view["documents"]] == [doc["id"]]  # refusals stored nothing


# --- recoveries --------------------------------------------------------------------------
def test_skd_r1_cumulative_returns_never_exceed_compensation(api: Api, session: Session) -> None:
    loan = overdue_loan(api, session, principal="1000000.00", unpaid_repay=None)
    c = api.claim("bank_ccb", loan, "2026-09-01")
    early = api.call(
        "2026-09-01",
        "bank_ccb",
        "POST",
        f"/claims/{c['id']}/recoveries",
        409,
        json={"recovered_on": "2026-09-01", "amount": "1.00"},
    )
    assert early["code"] == "not_compensated"
    c = api.through_reviews("bank_ccb", "city_suzhou", c["id"], "2026-09-01", "2026-09-02")
    api.pay("city-payment", "fund_suzhou", c["id"], "2026-09-03")  # 800,000.00 paid

    def recover(amount: str, costs: str = "0.00", expect: int = 201) -> Any:
        return api.call(
            "2026-10-01",
            "bank_ccb",
            "POST",
            f"/claims/{c['id']}/recoveries",
            expect,
            json={"recovered_on": "2026-10-01", "amount": amount, "costs": costs},
        )

    assert recover("100.00", "100.01", expect=422)["errors"][0]["loc"] == ["body", "costs"]
    first = recover("900000.00", "100000.00")  # net 800,000 × 80 % = 640,000
    assert (first["returned"], first["returned_shares"]) == (
        "640000.00",
        {"province": "320000.00", "city": "320000.00"},
    )
    second = recover("500000.00")  # 400,000 due, only 160,000 left to return
    assert second["returned"] == "160000.00"
    third = recover("100.00")
    assert (third["returned"], third["ledger_entry_ids"]) == ("0.00", [])
    view = api.call("2026-10-01", "bank_ccb", "GET", f"/claims/{c['id']}")
    assert view["returned"] == view["approved"] == "800000.00"
    assert len(view["recoveries"]) == 3
    assert_books_balance(session)


# --- golden journal: each money event and its reversal -----------------------------------
def test_golden_journal_each_money_event_reverses_to_the_balances_before(
    api: Api, session: Session
) -> None:
    loan = overdue_loan(api, session, principal="1000000.01", unpaid_repay=None)
    c = api.claim("bank_ccb", loan, "2026-09-01")
    c = api.through_reviews("bank_ccb", "city_suzhou", c["id"], "2026-09-01", "2026-09-02")
    c = api.pay("city-payment", "fund_suzhou", c["id"], "2026-09-03")
    c = api.pay("province-reimbursement", "fund_province", c["id"], "2026-09-04")
    rec = api.call(
        "2026-10-01",
        "bank_ccb",
        "POST",
        f"/claims/{c['id']}/recoveries",
        201,
        json={"recovered_on": "2026-10-01", "amount": "100000.00"},
    )
    # M-2: 1,000,000.01 → province 400,000.00, city 400,000.00, bank 200,000.01
    assert c["approved_shares"] == {
        "province": "400000.00",
        "city": "400000.00",
        "bank": "200000.01",
    }
    entries = [i for h in c["history"] for i in h["ledger_entry_ids"]] + rec["ledger_entry_ids"]
    kinds = [session.get(LedgerEntry, i).event_type for i in entries]  # type: ignore[union-attr]
    assert kinds == [
        "claim.approved",
        "claim.city_payment",
        "claim.province_reimbursement",
        "claim.recovery",
        "claim.recovery_pass_on",
    ]
    expected = {
        "claim.city_payment": {
            (CITY_SZ, "payable_bank", 80_000_000, "CCB_JS"),
            (CITY_SZ, "cash", -80_000_000, None),
        },
        "claim.province_reimbursement": {
            (PROV, "due_to_fund", 40_000_000, CITY_SZ),
            (PROV, "cash", -40_000_000, None),
            (CITY_SZ, "cash", 40_000_000, None),
            (CITY_SZ, "due_from_fund", -40_000_000, PROV),
        },
        # net 100,000.00 × 800,000.00 / 1,000,000.01 = 79,999.99 (rounded down)
        "claim.recovery": {
            (CITY_SZ, "cash", 7_999_999, None),
            (CITY_SZ, "recovery_income", -4_000_000, "CCB_JS"),
            (CITY_SZ, "due_to_fund", -3_999_999, PROV),
            (PROV, "due_from_fund", 3_999_999, CITY_SZ),
            (PROV, "recovery_income", -3_999_999, "CCB_JS"),
        },
        "claim.recovery_pass_on": {
            (CITY_SZ, "due_to_fund", 3_999_999, PROV),
            (CITY_SZ, "cash", -3_999_999, None),
            (PROV, "cash", 3_999_999, None),
            (PROV, "due_from_fund", -3_999_999, CITY_SZ),
        },
    }
    for entry_id, kind in zip(entries[1:], kinds[1:], strict=True):
        assert legs_of(session, entry_id) == expected[kind], kind
    accounts = {(f, k, cp) for legs in expected.values() for f, k, _, cp in legs}
    codes = [f"{f}:{k}" + (f":{cp}" if cp else "") for f, k, cp in accounts]
    before = {code: balance(session, code) for code in codes}
    for entry_id in reversed(entries):
        original = legs_of(session, entry_id)
        reversal = ledger.reverse(
            session,
            entry_id=entry_id,
            business_date=date(2026, 10, 2),
            reason="golden test",
            now=datetime.now(UTC),
        )
        assert legs_of(session, reversal.id) == {(f, k, -a, cp) for f, k, a, cp in original}
    after = {code: balance(session, code) for code in codes}
    assert all(after[code] == before[code] - _net(session, entries, code) for code in codes)
    assert_books_balance(session)


def _net(session: Session, entries: list[int], code: str) -> int:
    return sum(
        a
        for i in entries
        for f, k, a, cp in legs_of(session, i)
        if f"{f}:{k}" + (f":{cp}" if cp else "") == code
    )


# --- exposure view -------------------------------------------------------------------------
def test_exposure_is_scoped_and_shows_the_first_year_exemption(api: Api, session: Session) -> None:
    bank = new_bank(session, "FY1", since=date(2026, 3, 1), region="320500")
    code = member_enterprise(session, region="320500").credit_code
    api.file_loan(bank, code, "5000000.00", "2026-03-02", "2026-06-02")
    e = api.call("2026-09-01", bank, "GET", "/banks/FY1/exposure")
    assert e["exemption"] == {
        "rule": "SKD-Q2",
        "applies": True,
        "first_year_ends": "2027-03-01",
        "cumulative_principal": "5000000.00",
        "principal_threshold": "200000000.00",
    }
    assert e["headroom"] is None
    # 5,000,000 × 92 days / 365 × 80 % = 1,008,219.178… → 1,008,219.17
    assert e["total"]["annualized_principal"] == "1008219.17"
    assert e["cap"] == "30246.57"  # 3 % of the exact figure, rounded down
    assert (e["npl_principal"], e["npl_ratio"]) == ("5000000.00", "100.0000")
    later = api.call("2027-03-01", "regulator", "GET", "/banks/FY1/exposure")
    assert later["exemption"]["applies"] is False and later["headroom"] == "30246.57"
    assert later["as_of"] == "2027-03-01"
    api.call("2026-09-01", bank, "GET", "/banks/JSB/exposure", 404)
    api.call("2026-09-01", bank, "GET", "/banks/NOPE/exposure", 404)


def test_skd_q2_exemption_ends_above_200000000_of_principal() -> None:
    """SKD-Q2 boundaries: exempt in the first year only while cumulative principal is
    ≤ 200,000,000.00; the first year ends on the anniversary (exclusive)."""
    from fractions import Fraction

    from app.kit.calendar import add_months
    from app.programs.sukedai import claims as rules

    def pos(on: date, principal: int) -> rules.CapPosition:
        return rules.cap_position(
            rules.CapFacts(date(2026, 3, 1), on, principal, Fraction(400_000_000_00), 0)
        )

    assert pos(date(2027, 2, 28), 200_000_000_00).exempt
    assert not pos(date(2027, 2, 28), 200_000_000_01).exempt
    assert not pos(date(2027, 3, 1), 1).exempt
    assert pos(date(2027, 3, 1), 1).headroom_fen == 12_000_000_00
    assert add_months(date(2024, 2, 29), 12) == date(2025, 2, 28)


def test_claim_records_are_append_only(api: Api, session: Session, connection: Any) -> None:
    """SKD-C1: history rows, documents and recoveries are never rewritten or removed."""
    loan = overdue_loan(api, session, principal="1000000.00", unpaid_repay=None)
    c = api.claim("bank_ccb", loan, "2026-09-01")
    c = api.through_reviews("bank_ccb", "city_suzhou", c["id"], "2026-09-01", "2026-09-02")
    api.pay("city-payment", "fund_suzhou", c["id"], "2026-09-03")
    api.call(
        "2026-10-01",
        "bank_ccb",
        "POST",
        f"/claims/{c['id']}/recoveries",
        201,
        json={"recovered_on": "2026-10-01", "amount": "10.00"},
    )
    cid = c["id"]
    for sql in (
        f"UPDATE claim_transitions SET comment = 'x' WHERE claim_id = {cid}",
        f"DELETE FROM claim_transitions WHERE claim_id = {cid}",
        f"UPDATE claim_documents SET sha256 = 'x' WHERE claim_id = {cid}",
        f"DELETE FROM claim_documents WHERE claim_id = {cid}",
        f"UPDATE claim_recoveries SET returned_fen = 0 WHERE claim_id = {cid}",
        f"DELETE FROM claim_recoveries WHERE claim_id = {cid}",
    ):
        assert "append-only" in raw_refused(connection, sql), sql


def test_l4_a_retried_upload_with_a_new_boundary_is_a_replay(api: Api, session: Session) -> None:
    """Idempotency-Key on a multipart upload: client libraries pick a fresh boundary on
    every retry; the same parts are still the same request. Another file is a 409."""
    loan = overdue_loan(api, session, principal="1000000.00", unpaid_repay=None)
    c = api.claim("bank_ccb", loan, "2026-09-01")
    client = api.on("2026-09-01")

    def send(boundary: str, content: bytes) -> Any:
        body = (
            (
                f'--{boundary}\r\nContent-Disposition: form-data; name="kind"\r\n\r\n'
                f'application\r\n--{boundary}\r\nContent-Disposition: form-data; name="file"; '
                f'filename="a.pdf"\r\nContent-Type: application/pdf\r\n\r\n'
            ).encode()
            + content
            + f"\r\n--{boundary}--\r\n".encode()
        )
        return client.post(
            f"/api/v1/claims/{c['id']}/documents",
            content=body,
            headers={
                **api.auth("bank_ccb"),
                "Idempotency-Key": "upload-1",
                "Content-Type": f"multipart/form-data; boundary={boundary}",
            },
        )

    first = send("aaaa1111", PDF)
    again = send("bbbb2222", PDF)
    assert first.status_code == again.status_code == 201, again.text
    assert again.headers.get("idempotent-replayed") == "true"
    assert again.json()["id"] == first.json()["id"]
    other = send("cccc3333", PDF + b"changed")
    assert other.status_code == 409, other.text
    view = api.call("2026-09-01", "bank_ccb", "GET", f"/claims/{c['id']}")
    assert len(view["documents"]) == 1


def test_city_payment_needs_cash_in_the_city_fund(api: Api, session: Session) -> None:
    """The city fund pays from its cash; short of it, the payment is refused (409) and
    nothing is written."""
    from app.ledger.postings import credit, debit
    from tests.fixtures.ledger import post

    loan = overdue_loan(api, session, principal="1000000.00", unpaid_repay=None)
    c = api.claim("bank_ccb", loan, "2026-09-01")
    c = api.through_reviews("bank_ccb", "city_suzhou", c["id"], "2026-09-01", "2026-09-02")
    cash = balance(session, f"{CITY_SZ}:cash")
    leave = 80_000_000 - 1  # one fen short of the 800,000.00 to pay
    post(
        session,
        [
            debit(CITY_SZ, "contributed_capital", cash - leave, "FINANCE_320500"),
            credit(CITY_SZ, "cash", cash - leave),
        ],
        on=date(2026, 9, 2),
    )
    session.commit()
    short = api.pay("city-payment", "fund_suzhou", c["id"], "2026-09-03", expect=409)
    assert short["code"] == "insufficient_funds"
    assert (
        api.call("2026-09-03", "fund_suzhou", "GET", f"/claims/{c['id']}")["status"] == "approved"
    )
    assert balance(session, f"{CITY_SZ}:cash") == leave
