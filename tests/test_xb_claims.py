"""XB claims through the HTTP API: SPEC §6 examples 4–5 to the fen, XB-C1 boundaries,
the manager's 7-working-day opinion across Spring Festival, every XB-N finding, the
annual bank limit (XB-Q1) and the fund-wide stop (XB-Q2)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from typing import Any

import pytest
from sqlalchemy import Engine, select, update
from sqlalchemy.orm import Session, sessionmaker

from app.config import Settings
from app.evaluations.service import bank_ratios
from app.kit.money import parse_yuan
from app.ledger.postings import credit, debit
from app.models import Agreement, Fund, QuarterBankResult
from app.programs.sukedai.policy import QUARTER_END
from app.programs.xinbao.claims import BankLimit
from app.programs.xinbao.policy import LIMITS, limit_policy
from tests.fixtures.api import Api, api_fixture
from tests.fixtures.factories import new_bank, xb_enterprise
from tests.fixtures.ledger import assert_books_balance, balance, legs_of, post, raw_refused
from tests.fixtures.xb import (
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
    """A bank of its own for these tests (the seed's 连云港农商行 is other tests' bank),
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
    on a guaranteed loan → fund 1,000,000.00, guarantor 800,000.00, bank 200,000.00.
    XB-F1 as far as it is built: the pool's capital view reports the loans under the
    fund, the leverage on its net value and the target of 10."""
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
    # no XB evaluation of 2025-12-31 holds this bank: the basis is computed, and says so
    assert (e["fund_code"], e["basis_source"], e["evaluation_id"]) == ("XB_ZQCZD", "computed", None)

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
# --- XB-Q1 per sub-fund (第十六条: base sub-fund business only) ------------------------------
def _agreement(session: Session, bank: str, fund: str) -> Agreement:
    return session.scalars(
        select(Agreement).where(Agreement.bank_code == bank, Agreement.fund_code == fund)
    ).one()


def _kcd_limits(session: Session, **limits: int) -> None:
    """科创贷's own XB-Q1 settings for the test (rolled back with it)."""
    fund = session.get(Fund, "XB_KCD")
    assert fund is not None
    fund.params = {**fund.params, "limits": limits}
    session.commit()


def _late_loan(api: Api, session: Session, **kw: Any) -> Any:
    """A filing on 2026-02-12 (after the approvals): its id, or the refusal."""
    code = xb_enterprise(session).credit_code
    return api.file_loan(
        BANK, code, "100000.00", "2026-02-12", "2026-12-12", program="XB", rate=380, **kw
    )


def _sub_fund(exposure: dict[str, Any], code: str) -> dict[str, Any]:
    return next(x for x in exposure["sub_funds"] if x["fund_code"] == code)


def test_xb_q1_spec_example_5_holds_for_the_base_sub_fund_beside_kcd(
    api: Api, session: Session
) -> None:
    """A bank with loans in both sub-funds: 科创贷 principal stays out of the base basis
    and 科创贷 compensation out of the base usage; the base figures are SPEC §6 example 5;
    reaching the base limit suspends the base agreement only, and the bank still files
    科创贷 loans."""
    _kcd_limits(session, bank_limit_bp=300, warning_share_bp=5_000)
    base = [xb_loan(api, session, BANK, "3000000.00") for _ in range(16)]
    base.append(xb_loan(api, session, BANK, "2000000.00"))  # 50,000,000 base
    kcd = [xb_loan(api, session, BANK, "3000000.00", sub_fund="XB_KCD") for _ in range(10)]
    api.repay(BANK, kcd[0], "2026-01-05", "2000000.00")  # 1,000,000 unpaid: share 700,000
    api.repay(BANK, base[0], "2026-01-05", "1500000.00")  # share 1,200,000
    api.repay(BANK, base[1], "2026-01-05", "2900000.00")  # share 80,000

    e = api.call(CLAIM_DAY, BANK, "GET", "/banks/XBT/exposure?program=XB")
    limit, kcd_limit = e["limit"], _sub_fund(e, "XB_KCD")
    assert [x["fund_code"] for x in e["sub_funds"]] == ["XB_ZQCZD", "XB_KCD"]
    assert e["sub_funds"][0] == limit
    assert (
        limit["outstanding_at_quarter_end"],
        limit["annual_limit"],
        limit["warning_at"],
        limit["limit_rate_bp"],
    ) == ("50000000.00", "2500000.00", "1250000.00", 500)
    assert (
        kcd_limit["outstanding_at_quarter_end"],
        kcd_limit["annual_limit"],
        kcd_limit["warning_at"],
        kcd_limit["limit_rate_bp"],
    ) == ("30000000.00", "900000.00", "450000.00", 300)
    # the two bases make up the bank's whole XB principal at the quarter end
    whole = bank_ratios(session, "XB", date(2025, 12, 31), QUARTER_END, bank_code="XBT")["XBT"]
    assert whole.outstanding_fen == 80_000_000_00

    k = to_approval(api, BANK, kcd[0])  # 科创贷: its own limit, its own warning
    assert (k["approved"], k["capped_by"]) == ("700000.00", None)
    assert (k["cap"]["fund_code"], k["cap"]["annual_limit"]) == ("XB_KCD", "900000.00")
    assert k["cap"]["warning"] is True and k["cap"]["suspended_agreement_ids"] == []

    first = to_approval(api, BANK, base[0])  # the 700,000 above is not base usage
    assert (first["approved"], first["cap"]["used_before"]) == ("1200000.00", "0.00")
    assert first["cap"]["warning"] is False
    second = to_approval(api, BANK, base[1])
    assert second["cap"]["warning"] is True and second["cap"]["used_after"] == "1280000.00"
    third = to_approval(api, BANK, base[2])
    assert (third["approved"], third["capped_by"]) == ("1220000.00", "XB-Q1")
    base_agreement = _agreement(session, "XBT", "XB_ZQCZD")
    assert third["cap"]["suspended_agreement_ids"] == [base_agreement.id]
    session.expire_all()
    assert _agreement(session, "XBT", "XB_ZQCZD").status == "suspended"
    assert _agreement(session, "XBT", "XB_KCD").status == "active"

    refused = _late_loan(api, session, expect=422)
    assert {x["code"] for x in refused["errors"]} == {"bank_suspended"}
    _late_loan(api, session, sub_fund="XB_KCD")
    after = api.call("2026-02-12", BANK, "GET", "/banks/XBT/exposure?program=XB")
    assert after["limit"]["suspended"] is True and after["limit"]["limit_reached"] is True
    assert after["limit"]["suspended_agreement_ids"] == [base_agreement.id]
    kcd_after = _sub_fund(after, "XB_KCD")
    assert (kcd_after["used"], kcd_after["suspended"]) == ("700000.00", False)
    assert after["suspended"] is True  # one of the bank's XB agreements is suspended
    assert_books_balance(session)


def test_xb_q1_kcd_claim_is_capped_by_its_own_setting(api: Api, session: Session) -> None:
    """科创贷 at 1 % of its 30,000,000 basis: a 2,100,000 fund share is paid 300,000; the
    科创贷 agreement is suspended, the base business goes on."""
    _kcd_limits(session, bank_limit_bp=100)
    base_loans(api, session, BANK, 10, "3000000.00")
    kcd = [xb_loan(api, session, BANK, "3000000.00", sub_fund="XB_KCD") for _ in range(10)]
    c = to_approval(api, BANK, kcd[0])
    assert (c["approved"], c["capped_by"]) == ("300000.00", "XB-Q1")
    assert c["approved_shares"] == {"fund": "300000.00", "guarantor": "0.00", "bank": "2700000.00"}
    cap = c["cap"]
    assert (cap["fund_code"], cap["limit_rate_bp"], cap["warning_share_bp"]) == (
        "XB_KCD",
        100,
        5000,
    )
    assert (cap["outstanding_at_quarter_end"], cap["annual_limit"]) == ("30000000.00", "300000.00")
    kcd_agreement = _agreement(session, "XBT", "XB_KCD")
    assert cap["suspended_agreement_ids"] == [kcd_agreement.id]
    assert "under XB_KCD is reached" in c["history"][-1]["comment"]
    e = api.call("2026-02-12", BANK, "GET", "/banks/XBT/exposure?program=XB")
    assert (e["limit"]["used"], e["limit"]["annual_limit"], e["limit"]["suspended"]) == (
        "0.00",
        "1500000.00",
        False,
    )
    assert _sub_fund(e, "XB_KCD")["limit_reached"] is True
    _late_loan(api, session)
    refused = _late_loan(api, session, sub_fund="XB_KCD", expect=422)
    assert {x["code"] for x in refused["errors"]} == {"bank_suspended"}


def test_xb_q1_quarter_end_evaluation_stores_the_basis_and_the_approval_reads_it(
    api: Api, session: Session
) -> None:
    """The XB fund manager's 2025-Q4 evaluation stores, per bank and sub-fund, the basis,
    the limit, the usage and the state; the committee's cap rests on the stored figure
    (changed in the database, the cap follows) and the claim names the evaluation."""
    _kcd_limits(session, bank_limit_bp=300)
    base = [xb_loan(api, session, BANK, "3000000.00") for _ in range(16)]
    base.append(xb_loan(api, session, BANK, "2000000.00"))
    for _ in range(10):
        xb_loan(api, session, BANK, "3000000.00", sub_fund="XB_KCD")
    body = {"program": "XB", "year": 2025, "quarter": 4}
    day = "2026-01-08"
    for user in ("province", "fund_province", "bank_xbt"):  # the XB fund manager runs it
        refused = api.call(day, user, "POST", "/evaluations/quarter-end", 403, json=body)
        assert refused["code"] == "role_not_allowed"
    skd = {"program": "SKD", "year": 2025, "quarter": 4}
    api.call(day, "fund_xb", "POST", "/evaluations/quarter-end", 403, json=skd)
    early = api.call(
        day,
        "fund_xb",
        "POST",
        "/evaluations/quarter-end",
        422,
        json=body | {"year": 2026, "quarter": 1},
    )
    assert early["code"] == "quarter_not_ended"

    run = api.call(day, "fund_xb", "POST", "/evaluations/quarter-end", 201, json=body)
    assert (run["program"], run["quarter_end"]) == ("XB", "2025-12-31")
    rows = {(b["bank_code"], b["fund_code"]): b for b in run["banks"]}
    b = rows[("XBT", "XB_ZQCZD")]
    assert (b["outstanding_principal"], b["threshold_bp"], b["breached"]) == (
        "50000000.00",
        500,
        False,
    )
    assert b["limit"] == {
        "rule": "XB-Q1",
        "year": 2026,
        "limit_rate_bp": 500,
        "warning_share_bp": 5000,
        "annual_limit": "2500000.00",
        "warning_at": "1250000.00",
        "used": "0.00",
        "warning": False,
        "limit_reached": False,
        "suspended": False,
    }
    k = rows[("XBT", "XB_KCD")]
    assert (k["outstanding_principal"], k["limit"]["annual_limit"]) == ("30000000.00", "900000.00")
    # listed among the stored evaluations; a bank sees its own rows only
    listed = api.call(day, "regulator", "GET", "/evaluations")["items"]
    assert run["id"] in [r["id"] for r in listed]
    own = api.call(day, BANK, "GET", f"/evaluations/{run['id']}")
    assert {r["bank_code"] for r in own["banks"]} == {"XBT"}

    e = api.call(CLAIM_DAY, BANK, "GET", "/banks/XBT/exposure?program=XB")["limit"]
    assert (e["basis_source"], e["evaluation_id"]) == ("evaluation", run["id"])
    assert e["annual_limit"] == "2500000.00"

    # the stored figure is what counts: lowered in the database, the cap follows
    session.execute(
        update(QuarterBankResult)
        .where(
            QuarterBankResult.evaluation_id == run["id"],
            QuarterBankResult.bank_code == "XBT",
            QuarterBankResult.fund_code == "XB_ZQCZD",
        )
        .values(outstanding_fen=20_000_000_00)
    )
    session.commit()
    e = api.call(CLAIM_DAY, BANK, "GET", "/banks/XBT/exposure?program=XB")["limit"]
    assert (e["outstanding_at_quarter_end"], e["annual_limit"]) == ("20000000.00", "1000000.00")
    c = to_approval(api, BANK, base[0])  # fund share 2,400,000
    assert (c["approved"], c["capped_by"]) == ("1000000.00", "XB-Q1")
    assert (c["cap"]["basis_source"], c["cap"]["evaluation_id"]) == ("evaluation", run["id"])
    assert c["cap"]["outstanding_at_quarter_end"] == "20000000.00"
    assert c["cap"]["suspended_agreement_ids"] == [_agreement(session, "XBT", "XB_ZQCZD").id]

    # the next quarter end's evaluation records the usage and the suspension
    q1 = api.call(
        "2026-04-02",
        "fund_xb",
        "POST",
        "/evaluations/quarter-end",
        201,
        json=body | {"year": 2026, "quarter": 1},
    )
    r = next(x for x in q1["banks"] if (x["bank_code"], x["fund_code"]) == ("XBT", "XB_ZQCZD"))
    assert (r["limit"]["used"], r["limit"]["suspended"], r["decision"]) == (
        "1000000.00",
        True,
        "unchanged",
    )


def test_xb_q1_limit_settings_over_the_base_defaults() -> None:
    """The base defaults (5 %, 50 %) and a sub-fund's own settings over them; SPEC §6
    example 5's boundaries exactly."""
    assert (LIMITS.bank_limit_bp, LIMITS.warning_share_bp) == (500, 5_000)
    assert limit_policy({}) == LIMITS and limit_policy(None) == LIMITS
    own = limit_policy({"ratios_bp": {}, "limits": {"bank_limit_bp": 300}})
    assert (own.bank_limit_bp, own.warning_share_bp) == (300, 5_000)
    lim = BankLimit(date(2025, 12, 31), 50_000_000_00, 0)
    assert (lim.limit_fen(), lim.warning_fen()) == (2_500_000_00, 1_250_000_00)
    assert lim.warning(1_250_000_00) and not lim.warning(1_249_999_99)
    assert lim.reached(2_500_000_00) and not lim.reached(2_499_999_99)
    assert not BankLimit(date(2025, 12, 31), 0, 0).reached()  # nothing outstanding
    kcd = BankLimit(date(2025, 12, 31), 30_000_000_00, 0, "XB_KCD", own)
    assert kcd.limit_fen() == 900_000_00


def test_xb_q1_sub_fund_limit_settings_are_validated(api: Api) -> None:
    fund = {
        "code": "XB_TEST",
        "name": "测试子基金",
        "program": "XB",
        "kind": "sub_fund",
        "region_code": "320700",
        "parent_code": "XB_POOL",
    }
    for bad in ({"bank_limit_bp": "5"}, {"bank_limit_bp": 10_001}, {"limit_bp": 300}, [1]):
        r = api.call(
            CLAIM_DAY, "admin", "POST", "/funds", 422, json=fund | {"params": {"limits": bad}}
        )
        assert r["status"] == 422
    made = api.call(
        CLAIM_DAY,
        "admin",
        "POST",
        "/funds",
        201,
        json=fund | {"params": {"limits": {"bank_limit_bp": 200, "warning_share_bp": 4000}}},
    )
    assert made["params"]["limits"] == {"bank_limit_bp": 200, "warning_share_bp": 4000}


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
    assert api.call("2026-02-26", BANK, "GET", "/claims/overdue")["items"] == []
    review(api, on_time["id"], "2026-02-26")
    overdue = api.call("2026-02-27", BANK, "GET", "/claims/overdue")["items"]
    assert [(x["claim_id"], x["stage"], x["days_overdue"]) for x in overdue] == [
        (late["id"], "manager_review", 1)
    ]
    done = review(api, late["id"], "2026-02-27")
    assert "after the deadline 2026-02-26" in done["history"][-1]["comment"]
    assert api.call("2026-02-27", BANK, "GET", "/claims/overdue")["items"] == []


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
    assert api.call("2026-03-16", BANK, "GET", "/claims/overdue")["items"] == []
    late = api.call("2026-03-17", BANK, "GET", "/claims/overdue")["items"]
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
    assert over["code"] == "receipt_exceeds_receivable"
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
    assert api.call("2026-03-17", BANK, "GET", "/claims/overdue")["items"] == []
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
    # the compensated loan itself is still unpaid and in arrears: XB-N2 on the own books
    assert [(e["rule"], e["code"]) for e in refused["errors"]] == [
        ("XB-N2", "overdue_loan_in_books"),
        ("XB-E2", "compensated_within_3_years"),
    ]


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
