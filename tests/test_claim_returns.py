"""Return for correction (退回补正) through the HTTP API: every review stage returns a claim
with coded deficiencies listed at once, the bank corrects and resubmits, the claim is
back at the stage that returned it (SKD-C1, XB-C2); maker-checker (SKD-C3) reads a
return as acting on its stage; the manager's 7-working-day clock pauses while the claim
is with the bank (XB-C2, on the 2026 calendar); nothing is posted."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from typing import Any

import pytest
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session, sessionmaker

from app.config import Settings
from app.models import ClaimReturn, LedgerEntry
from tests.fixtures.api import Api, api_fixture
from tests.fixtures.factories import member_enterprise, new_bank
from tests.fixtures.ledger import assert_books_balance, raw_refused
from tests.fixtures.xb import CLAIM_DAY, documents, review, xb_claim, xb_loan

XB_BANK = "bank_xbr"


@pytest.fixture
def api(  # type: ignore[no-untyped-def]
    settings: Settings, engine: Engine, session_factory: sessionmaker[Session], auth
) -> Iterator[Api]:
    yield from api_fixture(settings, engine, session_factory, auth)


@pytest.fixture
def xb_bank(session: Session) -> str:
    """A bank of its own cooperating with the base sub-fund since 2025-06-01."""
    return new_bank(session, "XBR", since=date(2025, 6, 1), xb_sub_funds=("XB_ZQCZD",))


def skd_claim(api: Api, session: Session, region: str = "320500") -> dict[str, Any]:
    """A 建设银行 claim in 苏州 on 2026-08-31 (90 days past due), waiting for the city."""
    code = member_enterprise(session, region=region, revenue_yuan=15_000_000).credit_code
    loan = api.file_loan("bank_ccb", code, "1000000.00", "2026-03-02", "2026-06-02")
    return dict(api.claim("bank_ccb", loan, "2026-08-31"))


def give_back(
    api: Api, user: str, claim_id: int, day: str, *items: tuple[str, str | None], **kw: Any
) -> Any:
    body = {
        "deficiencies": [{"code": c} | ({"detail": d} if d else {}) for c, d in items],
        "comment": kw.pop("comment", "请补正后重新提交"),
    }
    return api.call(
        day, user, "POST", f"/claims/{claim_id}/return", kw.pop("expect", 200), json=body
    )


def resubmit(api: Api, bank: str, claim_id: int, day: str, expect: int = 200) -> Any:
    return api.call(
        day,
        bank,
        "POST",
        f"/claims/{claim_id}/resubmission",
        expect,
        json={"comment": "已补正"},
    )


def entries(session: Session) -> int:
    return int(session.scalar(select(func.count()).select_from(LedgerEntry)) or 0)


# --- SKD ------------------------------------------------------------------------------
def test_skd_c1_city_review_returns_with_two_deficiencies_bank_resubmits_city_approves(
    api: Api, session: Session
) -> None:
    c = skd_claim(api, session)
    before = entries(session)
    r = give_back(
        api,
        "city_suzhou",
        c["id"],
        "2026-09-01",
        ("document_missing", "缺少逾期证明"),
        ("overdue_date_wrong", "逾期日应为 2026-06-02"),
    )
    assert (r["status"], r["status_zh"]) == ("returned", "退回补正，待合作银行补正后重新提交")
    assert r["next_step"] == {
        "stage": "resubmission",
        "who": "the claiming bank corrects and resubmits 合作银行补正后重新提交",
        "endpoint": f"POST /api/v1/claims/{c['id']}/resubmission",
    }
    open_ = r["returned_for"]
    assert (open_["stage"], open_["returned_by"], open_["returned_by_role"]) == (
        "city_review",
        "city_suzhou",
        "city_reviewer",
    )
    assert open_["returned_on"] == "2026-09-01" and open_["paused_deadline"] is None
    assert [(d["code"], d["label_zh"], d["detail"]) for d in open_["deficiencies"]] == [
        ("document_missing", "申请材料缺失", "缺少逾期证明"),
        ("overdue_date_wrong", "逾期日期有误", "逾期日应为 2026-06-02"),
    ]
    last = r["history"][-1]
    assert (last["action"], last["from_status"], last["to_status"], last["actor"]) == (
        "return_city_review",
        "submitted",
        "returned",
        "city_suzhou",
    )
    assert (last["actor_role"], last["business_date"], last["comment"]) == (
        "city_reviewer",
        "2026-09-01",
        "请补正后重新提交",
    )
    assert [d["code"] for d in last["deficiencies"]] == ["document_missing", "overdue_date_wrong"]
    loan = api.call("2026-09-01", "bank_ccb", "GET", f"/loans/{c['loan_id']}")
    assert loan["status"] == "claimed"
    listed = api.call("2026-09-01", "bank_ccb", "GET", "/claims?status=returned")["items"]
    assert c["id"] in [x["id"] for x in listed]

    # the claim is with the bank: no review meanwhile, documents may be uploaded
    held = api.review("city-review", "city_suzhou", c["id"], "2026-09-02", expect=409)
    assert held["code"] == "claim_returned"
    api.upload("bank_ccb", c["id"], "2026-09-03")
    api.upload("bank_ccb", c["id"], "2026-09-03", data={"kind": "overdue_proof"})
    back = resubmit(api, "bank_ccb", c["id"], "2026-09-03")
    assert (back["status"], back["returned_for"], back["next_step"]["stage"]) == (
        "submitted",
        None,
        "city_review",
    )
    h = back["history"][-1]
    assert (h["action"], h["from_status"], h["to_status"], h["actor"], h["comment"]) == (
        "resubmit_city_review",
        "returned",
        "submitted",
        "bank_ccb",
        "已补正",
    )
    # the reviewer who returned it reviews it again: the same stage (SKD-C3)
    ok = api.review("city-review", "city_suzhou", c["id"], "2026-09-04")
    assert ok["status"] == "city_approved"
    assert [x["action"] for x in ok["history"]] == [
        "submit",
        "return_city_review",
        "resubmit_city_review",
        "city_approve",
    ]
    assert entries(session) == before  # returns post nothing
    assert_books_balance(session)


def test_skd_c1_province_review_returns_back_to_province_review(api: Api, session: Session) -> None:
    c = skd_claim(api, session)
    api.upload("bank_ccb", c["id"], "2026-08-31")
    api.review("city-review", "city_suzhou", c["id"], "2026-09-01")
    before = entries(session)
    # the claim waits for the province: the city reviewer no longer returns it
    wrong = give_back(api, "city_suzhou", c["id"], "2026-09-02", ("other", "x"), expect=403)
    assert wrong["code"] == "role_not_allowed"
    r = give_back(api, "province", c["id"], "2026-09-02", ("amount_wrong", "申请金额与合同不符"))
    assert r["returned_for"]["stage"] == "province_review"
    assert r["history"][-1]["from_status"] == "city_approved"
    back = resubmit(api, "bank_ccb", c["id"], "2026-09-05")
    assert (back["status"], back["next_step"]["stage"]) == ("city_approved", "province_review")
    done = api.review("province-review", "province", c["id"], "2026-09-08")
    assert done["status"] == "approved"
    assert entries(session) == before + 1  # the approval only
    assert_books_balance(session)


def test_skd_c1_refusals_write_nothing(api: Api, session: Session) -> None:
    c = skd_claim(api, session)
    url = f"/claims/{c['id']}/return"
    # wrong role for the stage, another region's reviewer (the claim is out of scope)
    role = give_back(api, "province", c["id"], "2026-09-01", ("other", "x"), expect=403)
    assert role["code"] == "role_not_allowed"
    region = give_back(api, "city_nanjing", c["id"], "2026-09-01", ("other", "x"), expect=404)
    assert region["code"] == "not_found"
    bank = give_back(api, "bank_ccb", c["id"], "2026-09-01", ("other", "x"), expect=403)
    assert bank["code"] == "role_not_allowed"
    # unknown codes: every bad item listed; `other` without its detail
    bad = give_back(
        api,
        "city_suzhou",
        c["id"],
        "2026-09-01",
        ("document_missing", None),
        ("no_such_code", None),
        ("lawsuit_case_no_missing", None),  # an XB code
        ("other", None),
        expect=422,
    )
    assert bad["code"] == "unknown_deficiency"  # the first item's, with every item listed
    assert [(e["loc"], e["code"], e["rule"]) for e in bad["errors"]] == [
        (["body", "deficiencies", 1, "code"], "unknown_deficiency", "SKD-C1"),
        (["body", "deficiencies", 2, "code"], "unknown_deficiency", "SKD-C1"),
        (["body", "deficiencies", 3, "detail"], "deficiency_detail_required", "SKD-C1"),
    ]
    empty = api.call(
        "2026-09-01", "city_suzhou", "POST", url, 422, json={"deficiencies": [], "comment": "x"}
    )
    assert empty["code"] == "validation_error"
    assert empty["errors"][0]["loc"] == ["body", "deficiencies"]
    # resubmission when not returned, by the bank
    not_returned = resubmit(api, "bank_ccb", c["id"], "2026-09-01", expect=409)
    assert not_returned["code"] == "not_returned"
    unchanged = api.call("2026-09-01", "regulator", "GET", f"/claims/{c['id']}")
    assert (unchanged["status"], len(unchanged["history"])) == ("submitted", 1)
    assert session.scalar(select(func.count()).where(ClaimReturn.claim_id == c["id"])) == 0

    give_back(api, "city_suzhou", c["id"], "2026-09-01", ("document_unreadable", None))
    # resubmission by another bank: not its claim
    other = resubmit(api, "bank_boc", c["id"], "2026-09-02", expect=404)
    assert other["code"] == "not_found"
    twice = give_back(api, "city_suzhou", c["id"], "2026-09-02", ("other", "x"), expect=409)
    assert twice["code"] == "claim_returned"
    # a returned claim is with the bank: not rejected meanwhile
    reject = api.review(
        "city-review", "city_suzhou", c["id"], "2026-09-02", decision="reject", expect=409
    )
    assert reject["code"] == "claim_returned"
    assert api.call("2026-09-02", "regulator", "GET", f"/claims/{c['id']}")["status"] == "returned"


def test_skd_c1_return_only_at_a_review_stage(api: Api, session: Session) -> None:
    c = skd_claim(api, session)
    api.upload("bank_ccb", c["id"], "2026-08-31")
    api.review("city-review", "city_suzhou", c["id"], "2026-09-01")
    api.review("province-review", "province", c["id"], "2026-09-02")  # approved
    for user in ("fund_suzhou", "province"):
        late = give_back(api, user, c["id"], "2026-09-03", ("other", "x"), expect=409)
        assert late["code"] == "not_at_review_stage"
        assert late["errors"][0]["rule"] == "SKD-C1"


def test_skd_c3_returning_is_acting_on_the_stage(api: Api, session: Session) -> None:
    """The province reviewer who returned a claim may review it again; the XB manager who
    returned a claim reviews it again but may not pay it (another stage)."""
    c = skd_claim(api, session)
    api.upload("bank_ccb", c["id"], "2026-08-31")
    api.review("city-review", "city_suzhou", c["id"], "2026-09-01")
    give_back(api, "province", c["id"], "2026-09-02", ("document_missing", "借款合同"))
    resubmit(api, "bank_ccb", c["id"], "2026-09-03")
    give_back(api, "province", c["id"], "2026-09-04", ("document_unreadable", "扫描不清"))
    resubmit(api, "bank_ccb", c["id"], "2026-09-05")
    assert api.review("province-review", "province", c["id"], "2026-09-07")["status"] == "approved"


def test_skd_c1_claim_returns_are_append_only(api: Api, session: Session, connection: Any) -> None:
    c = skd_claim(api, session)
    give_back(api, "city_suzhou", c["id"], "2026-09-01", ("document_missing", None))
    for sql in ("UPDATE claim_returns SET comment = 'x'", "DELETE FROM claim_returns"):
        assert "append-only" in raw_refused(connection, sql), sql


# --- XB -------------------------------------------------------------------------------
def test_xb_c2_manager_return_pauses_the_7_working_days_and_continues(
    api: Api, session: Session, xb_bank: str
) -> None:
    """Filed 2026-02-10: the opinion is due 2026-02-26 (7 working days, the make-up
    Saturday 2026-02-14 counts, the Spring Festival does not). Returned on 2026-02-12 (2
    days used, 5 left) and resubmitted on 2026-02-25: due 2026-03-03 (02-26, 02-27, the
    make-up Saturday 02-28, 03-02, 03-03). Returned again on 2026-02-27 (2 more used: 3
    left) and resubmitted on 2026-03-02: due 2026-03-05."""
    c = xb_claim(api, xb_bank, xb_loan(api, session, xb_bank, "1000000.00"))
    assert c["deadlines"] == {"manager_opinion": "2026-02-26"}
    before = entries(session)
    r = give_back(
        api,
        "fund_xb",
        c["id"],
        "2026-02-12",
        ("lawsuit_case_no_missing", "缺少受理通知书"),
        ("collection_plan_incomplete", None),
    )
    assert r["status"] == "returned" and r["deadlines"] == {}
    assert r["provisional_deadlines"] == []
    open_ = r["returned_for"]
    assert (open_["stage"], open_["paused_deadline"], open_["deadline_was"]) == (
        "manager_review",
        "manager_opinion",
        "2026-02-26",
    )
    assert open_["working_days_left"] == 5
    assert (
        "manager_opinion deadline 2026-02-26 paused: 5 working day(s) left"
        in (r["history"][-1]["comment"])
    )
    # with the bank: not overdue, however long it takes
    for day in ("2026-02-27", "2026-03-20"):
        assert api.call(day, xb_bank, "GET", "/claims/overdue")["items"] == [], day
    assert review(api, c["id"], "2026-02-13", expect=409)["code"] == "claim_returned"

    documents(api, xb_bank, c["id"], "2026-02-24")
    back = resubmit(api, xb_bank, c["id"], "2026-02-25")
    assert (back["status"], back["next_step"]["stage"]) == ("submitted", "manager_review")
    assert back["deadlines"] == {"manager_opinion": "2026-03-03"}
    assert "manager_opinion deadline continues: 2026-03-03" in back["history"][-1]["comment"]
    assert api.call("2026-03-03", xb_bank, "GET", "/claims/overdue")["items"] == []
    late = api.call("2026-03-04", xb_bank, "GET", "/claims/overdue")["items"]
    assert [(x["claim_id"], x["stage"], x["deadline"], x["days_overdue"]) for x in late] == [
        (c["id"], "manager_review", "2026-03-03", 1)
    ]

    again = give_back(api, "fund_xb", c["id"], "2026-02-27", ("due_diligence_incomplete", None))
    assert (again["returned_for"]["deadline_was"], again["returned_for"]["working_days_left"]) == (
        "2026-03-03",
        3,
    )
    assert resubmit(api, xb_bank, c["id"], "2026-03-02")["deadlines"] == {
        "manager_opinion": "2026-03-05"
    }
    # the manager who returned it reviews it (the same stage), on time
    done = review(api, c["id"], "2026-03-05")
    assert done["status"] == "manager_reviewed"
    assert "after the deadline" not in done["history"][-1]["comment"]
    assert entries(session) == before
    assert_books_balance(session)


def test_xb_c2_committee_returns_and_the_returning_manager_may_not_pay(
    api: Api, session: Session, xb_bank: str
) -> None:
    from tests.fixtures.xb import base_loans, decide

    base_loans(api, session, xb_bank, 10, "3000000.00")
    c = xb_claim(api, xb_bank, xb_loan(api, session, xb_bank, "1000000.00"))
    documents(api, xb_bank, c["id"])
    give_back(api, "fund_xb", c["id"], "2026-02-11", ("document_unreadable", "尽职情况说明"))
    resubmit(api, xb_bank, c["id"], "2026-02-12")
    review(api, c["id"], "2026-02-12")
    # the committee's stage has no stored deadline: nothing pauses
    r = give_back(api, "committee", c["id"], "2026-02-13", ("amount_wrong", "本金余额"))
    assert (r["returned_for"]["stage"], r["returned_for"]["paused_deadline"]) == (
        "committee_decision",
        None,
    )
    wrong = give_back(api, "fund_xb", c["id"], "2026-02-13", ("other", "x"), expect=409)
    assert wrong["code"] == "claim_returned"
    back = resubmit(api, xb_bank, c["id"], "2026-02-24")
    assert (back["status"], back["next_step"]["stage"]) == (
        "manager_reviewed",
        "committee_decision",
    )
    approved = decide(api, c["id"], "2026-02-24")
    assert approved["status"] == "approved"
    pay = {"paid_on": "2026-02-25"}
    url = f"/claims/{c['id']}/payment"
    same = api.call("2026-02-25", "fund_xb", "POST", url, 409, json=pay)
    assert same["code"] == "maker_checker"
    assert api.call("2026-02-25", "fund_xb_pay", "POST", url, 200, json=pay)["status"] == "paid"
    assert_books_balance(session)


def test_xb_c2_refusals(api: Api, session: Session, xb_bank: str) -> None:
    c = xb_claim(api, xb_bank, xb_loan(api, session, xb_bank, "1000000.00"))
    # the committee does not act at the manager's stage; a city fund's manager sees no XB
    role = give_back(api, "committee", c["id"], CLAIM_DAY, ("other", "x"), expect=403)
    assert role["code"] == "role_not_allowed"
    scope = give_back(api, "fund_suzhou", c["id"], CLAIM_DAY, ("other", "x"), expect=404)
    assert scope["code"] == "not_found"
    bad = give_back(
        api, "fund_xb", c["id"], CLAIM_DAY, ("loan_contract_mismatch", None), expect=422
    )  # an SKD code
    assert (bad["code"], bad["errors"][0]["rule"]) == ("unknown_deficiency", "XB-C2")
    assert api.call(CLAIM_DAY, "regulator", "GET", f"/claims/{c['id']}")["deadlines"] == {
        "manager_opinion": "2026-02-26"
    }
