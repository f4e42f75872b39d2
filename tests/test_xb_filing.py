"""XB filing (XB-E1, E2, P1, F2) through POST /loans, with its boundaries."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from typing import Any

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session, sessionmaker

from app.calendar.library import library_years
from app.config import Settings
from app.kit.calendar import WorkingCalendar
from app.models import Fund, Loan
from tests.fixtures.api import Api, api_fixture
from tests.fixtures.factories import member_enterprise, xb_enterprise
from tests.fixtures.ledger import balance
from tests.fixtures.xb import GUARANTOR, consent

# 2026-03-02 is a Monday; LPR 3.00 % (300 bp) is in force.
DISBURSED = "2026-03-02"


@pytest.fixture
def api(  # type: ignore[no-untyped-def]
    settings: Settings, engine: Engine, session_factory: sessionmaker[Session], auth
) -> Iterator[Api]:
    yield from api_fixture(settings, engine, session_factory, auth)


def xb(api: Api, code: str, principal: str = "1000000.00", **kw: Any) -> Any:
    kw.setdefault("rate", 380)
    return api.file_loan(
        "bank_lyg",
        code,
        principal,
        kw.pop("disbursed", DISBURSED),
        kw.pop("maturity", "2027-03-02"),
        program="XB",
        **kw,
    )


def codes(refusal: dict[str, Any]) -> set[str]:
    return {e["code"] for e in refusal["errors"]}


def test_credit_and_guaranteed_loans_are_filed_with_their_exposure(
    api: Api, session: Session
) -> None:
    memo = balance(session, "XB_POOL:exposure_memo:LYG_RCB")
    credit = xb(api, xb_enterprise(session).credit_code)
    view = api.call(DISBURSED, "bank_lyg", "GET", f"/loans/{credit}")
    assert (view["program"], view["fund_code"], view["compensable"], view["flags"]) == (
        "XB",
        "XB_ZQCZD",
        True,
        [],
    )
    guaranteed = xb(
        api,
        xb_enterprise(session).credit_code,
        security="guaranteed",
        guarantor="连云港信用融资担保有限公司",
        rate=330,
        fee_rate_bp=50,
        guarantor_consent=consent(DISBURSED),
    )
    # XB-S1 exposure: 80 % of 1,000,000 (credit) + 50 % of 1,000,000 (guaranteed)
    assert balance(session, "XB_POOL:exposure_memo:LYG_RCB") == memo + 80_000_000 + 50_000_000
    assert guaranteed > credit


def test_xb_p1_per_enterprise_limit_is_3000000_inclusive(api: Api, session: Session) -> None:
    code = xb_enterprise(session).credit_code
    xb(api, code, "2000000.00")
    xb(api, code, "1000000.00")  # exactly 3,000,000.00 outstanding
    over = xb(api, code, "0.01", expect=422)
    assert codes(over) == {"enterprise_limit_exceeded"} and over["errors"][0]["rule"] == "XB-P1"


def test_xb_p1_term_rate_fee_and_guarantor(api: Api, session: Session) -> None:
    code = xb_enterprise(session).credit_code
    ok = xb(api, code, "100000.00", maturity="2029-03-02")  # exactly 36 months
    view = api.call(DISBURSED, "bank_lyg", "GET", f"/loans/{ok}")
    assert view["flags"] == ["XB-P1: term outside the usual 6 months to 2 years"]
    assert codes(xb(api, code, "100000.00", maturity="2029-03-03", expect=422)) == {"term_too_long"}
    assert codes(xb(api, code, "100000.00", rate=381, expect=422)) == {"rate_above_cap"}
    g = {
        "security": "guaranteed",
        "guarantor": "连云港信用融资担保有限公司",
        "guarantor_consent": consent(DISBURSED),
    }
    xb(api, code, "100000.00", rate=330, fee_rate_bp=50, **g)
    refused = xb(api, code, "100000.00", rate=331, fee_rate_bp=51, expect=422, **g)
    assert codes(refused) == {"rate_above_cap", "guarantee_fee_above_cap"}
    no_guarantor = xb(api, code, "100000.00", rate=330, security="guaranteed", expect=422)
    assert codes(no_guarantor) == {"guarantor_required", "guarantor_consent_missing"}
    assert codes(xb(api, code, "100000.00", fee_rate_bp=10, expect=422)) == {"fees_not_allowed"}
    short = xb(api, code, "100000.00", maturity="2026-09-01")  # under 6 months: flagged
    assert api.call(DISBURSED, "bank_lyg", "GET", f"/loans/{short}")["flags"]


def test_xb_f2_late_filing_is_accepted_but_not_compensable(api: Api, session: Session) -> None:
    """XB-F2/N7: the 10th working day is on time, the 11th is late (accepted)."""
    deadline = WorkingCalendar(library_years()).add_working_days(date(2026, 3, 2), 10)
    assert deadline.on == date(2026, 3, 16)
    on_time = xb(api, xb_enterprise(session).credit_code, filed_on="2026-03-16")
    late = xb(api, xb_enterprise(session).credit_code, filed_on="2026-03-17")
    a = api.call("2026-03-17", "bank_lyg", "GET", f"/loans/{on_time}")
    b = api.call("2026-03-17", "bank_lyg", "GET", f"/loans/{late}")
    assert (a["filed_late"], a["compensable"]) == (False, True)
    assert (b["filed_late"], b["compensable"], b["filing_deadline"]) == (
        True,
        False,
        "2026-03-16",
    )
    assert b["flags"][0].startswith("XB-N7")


def test_xb_eligibility_refusals_are_listed_together(api: Api, session: Session) -> None:
    outside = xb_enterprise(session, region="320100").credit_code  # 南京: not a contributor
    assert codes(xb(api, outside, expect=422)) == {"region_not_eligible"}
    young = xb_enterprise(session, registered_on=date(2025, 6, 1)).credit_code
    assert codes(xb(api, young, expect=422)) == {"in_business_under_a_year"}
    bad = xb_enterprise(
        session, malicious_default_blacklist=True, overdue_loans_elsewhere=True
    ).credit_code
    refused = xb(api, bad, controller_guarantee=False, expect=422)
    assert codes(refused) == {
        "blacklisted",
        "unpaid_overdue_loan",
        "controller_guarantee_required",
    }
    assert {e["rule"] for e in refused["errors"]} == {"XB-E1", "XB-E2", "XB-N2"}
    assert codes(xb(api, xb_enterprise(session).credit_code, sub_fund="NOPE", expect=422)) == {
        "unknown_sub_fund"
    }
    # 江苏银行 has no agreement with the second sub-fund
    jsb = api.file_loan(
        "bank_jsb",
        xb_enterprise(session).credit_code,
        "100000.00",
        DISBURSED,
        "2027-03-02",
        program="XB",
        rate=380,
        sub_fund="XB_KCD",
        expect=422,
    )
    assert codes(jsb) == {"no_agreement"}


def test_xb_q2_a_stopped_fund_takes_no_new_business(api: Api, session: Session) -> None:
    pool = session.get(Fund, "XB_POOL")
    assert pool is not None
    pool.status = "stopped"
    session.commit()
    assert codes(xb(api, xb_enterprise(session).credit_code, expect=422)) == {"fund_stopped"}


def test_second_sub_fund_uses_its_own_ratios(api: Api, session: Session) -> None:
    memo = balance(session, "XB_POOL:exposure_memo:LYG_RCB")
    loan = xb(api, xb_enterprise(session).credit_code, sub_fund="XB_KCD")
    assert api.call(DISBURSED, "bank_lyg", "GET", f"/loans/{loan}")["fund_code"] == "XB_KCD"
    assert balance(session, "XB_POOL:exposure_memo:LYG_RCB") == memo + 70_000_000  # 70 %
    sk = api.call(
        DISBURSED,
        "bank_jsb",
        "POST",
        "/loans",
        422,
        json={
            "program": "SKD",
            "sub_fund": "XB_KCD",
            "enterprise_credit_code": "x" * 18,
            "contract_no": "x",
            "principal": "1.00",
            "annual_rate_bp": 300,
            "disbursed_on": DISBURSED,
            "maturity_on": "2027-03-01",
            "security": "credit",
            "controller_guarantee": True,
        },
    )
    assert "sub_fund" in str(sk["errors"])


def test_xb_e1_no_malicious_overdue_in_the_prior_two_years(api: Api, session: Session) -> None:
    """XB-E1: a malicious overdue on 2024-03-02 bars a filing on 2026-03-01 and not one
    on 2026-03-02 (two years later)."""
    code = xb_enterprise(session).credit_code
    r = api.call(
        DISBURSED,
        "admin",
        "PATCH",
        f"/enterprises/{code}",
        200,
        json={"last_malicious_overdue_on": "2024-03-02"},
    )
    assert r["last_malicious_overdue_on"] == "2024-03-02"
    refused = xb(api, code, disbursed="2026-02-27", filed_on="2026-03-01", expect=422)
    assert codes(refused) == {"malicious_overdue_within_2_years"}
    xb(api, code, disbursed="2026-03-02", filed_on="2026-03-02")


# --- XB-F2: the guarantor's consent letter instead of a filing deadline ----------------
def guaranteed(api: Api, session: Session, **kw: Any) -> Any:
    kw.setdefault("guarantor", GUARANTOR)
    return xb(api, xb_enterprise(session).credit_code, security="guaranteed", rate=330, **kw)


def loan_count(session: Session) -> int:
    session.expire_all()
    return len(session.scalars(select(Loan.id)).all())


def test_xb_f2_guaranteed_loan_without_consent_is_refused_with_every_rule_listed(
    api: Api, session: Session
) -> None:
    before = loan_count(session)
    alone = guaranteed(api, session, expect=422)
    assert alone["code"] == "guarantor_consent_missing"
    [error] = alone["errors"]
    assert (error["rule"], error["loc"]) == ("XB-F2", ["body", "guarantor_consent"])
    several = guaranteed(api, session, fee_rate_bp=51, controller_guarantee=False, expect=422)
    # the first failure's code (XB-E1 comes before XB-F2 and XB-P1 in the rules)
    assert several["code"] == several["errors"][0]["code"] == "controller_guarantee_required"
    assert "rule" not in several
    assert codes(several) == {
        "guarantor_consent_missing",
        "guarantee_fee_above_cap",
        "controller_guarantee_required",
    }
    assert {e["rule"] for e in several["errors"]} == {"XB-F2", "XB-P1", "XB-E1"}
    assert loan_count(session) == before  # a refused filing writes nothing


def test_xb_f2_consent_is_accepted_and_shown(api: Api, session: Session) -> None:
    letter = consent("2026-02-26", "连信担确〔2026〕9号")
    loan = guaranteed(api, session, guarantor_consent=letter)
    view = api.call(DISBURSED, "bank_lyg", "GET", f"/loans/{loan}")
    assert view["guarantor_consent"] == {
        "guarantor": GUARANTOR,
        "reference": "连信担确〔2026〕9号",
        "dated_on": "2026-02-26",
    }
    assert (view["filing_deadline"], view["filing_deadline_applies"]) == ("2026-03-16", False)
    credit_id = xb(api, xb_enterprise(session).credit_code)
    credit = api.call(DISBURSED, "bank_lyg", "GET", f"/loans/{credit_id}")
    assert (credit["guarantor_consent"], credit["filing_deadline_applies"]) == (None, True)
    session.expire_all()
    stored = session.get(Loan, loan)
    assert stored is not None
    assert (stored.guarantor_consent_ref, stored.guarantor_consent_on) == (
        "连信担确〔2026〕9号",
        date(2026, 2, 26),
    )


def test_xb_f2_consent_is_dated_before_disbursement_within_12_months(
    api: Api, session: Session
) -> None:
    """On the disbursement day and exactly 12 months before it are accepted; a day after
    the disbursement, or a day more than 12 months before it, are refused."""
    guaranteed(api, session, guarantor_consent=consent(DISBURSED))
    guaranteed(api, session, guarantor_consent=consent("2025-03-02"))
    after = guaranteed(api, session, guarantor_consent=consent("2026-03-03"), expect=422)
    assert after["code"] == "guarantor_consent_after_disbursement"
    assert after["errors"][0]["loc"] == ["body", "guarantor_consent", "dated_on"]
    old = guaranteed(api, session, guarantor_consent=consent("2025-03-01"), expect=422)
    assert (old["code"], old["errors"][0]["rule"]) == ("guarantor_consent_too_old", "XB-F2")
    blank = guaranteed(api, session, guarantor_consent=consent(DISBURSED, " "), expect=422)
    assert blank["code"] == "validation_error"


def test_xb_f2_guaranteed_loan_filed_after_the_10th_working_day_stays_compensable(
    api: Api, session: Session
) -> None:
    """XB-F2: the 10 working days bind credit loans (第十一条(四)); a guaranteed loan filed
    on the 11th working day, or months later, is neither late nor non-compensable, while a
    credit loan filed on the 11th is (XB-N7)."""
    late_day = "2026-03-17"  # the 11th working day after 2026-03-02
    ids = [
        guaranteed(api, session, filed_on=day, guarantor_consent=consent(DISBURSED))
        for day in (late_day, "2026-06-30")
    ]
    for loan in ids:
        view = api.call("2026-06-30", "bank_lyg", "GET", f"/loans/{loan}")
        assert (view["filed_late"], view["compensable"], view["flags"]) == (False, True, [])
        assert (view["filing_deadline"], view["filing_deadline_applies"]) == (
            "2026-03-16",
            False,
        )
    credit = xb(api, xb_enterprise(session).credit_code, filed_on=late_day)
    view = api.call(late_day, "bank_lyg", "GET", f"/loans/{credit}")
    assert (view["filed_late"], view["compensable"]) == (True, False)
    assert view["flags"][0].startswith("XB-N7")


def test_xb_f2_consent_on_a_credit_loan_or_an_skd_loan_is_refused(
    api: Api, session: Session
) -> None:
    before = loan_count(session)
    code = xb_enterprise(session).credit_code
    credit = xb(api, code, guarantor_consent=consent(DISBURSED), expect=422)
    assert (credit["code"], credit["errors"][0]["rule"]) == (
        "guarantor_consent_not_applicable",
        "XB-F2",
    )
    skd = api.file_loan(
        "bank_jsb",
        member_enterprise(session).credit_code,
        "1000000.00",
        DISBURSED,
        "2027-03-01",
        guarantor_consent=consent(DISBURSED),
        expect=422,
    )
    assert skd["code"] == "guarantor_consent_not_applicable"
    assert skd["errors"][0]["loc"] == ["body", "guarantor_consent"]
    assert loan_count(session) == before


def test_xb_f2_the_batch_decides_alike(api: Api, session: Session) -> None:
    def item(contract: str, **over: Any) -> dict[str, Any]:
        return {
            "program": "XB",
            "enterprise_credit_code": xb_enterprise(session).credit_code,
            "contract_no": contract,
            "principal": "500000.00",
            "annual_rate_bp": 330,
            "disbursed_on": DISBURSED,
            "maturity_on": "2027-03-02",
            "security": "guaranteed",
            "guarantor": GUARANTOR,
            "controller_guarantee": True,
            **over,
        }

    skd = {
        "program": "SKD",
        "enterprise_credit_code": member_enterprise(session).credit_code,
        "contract_no": "F2-B-5",
        "principal": "1000000.00",
        "annual_rate_bp": 340,
        "disbursed_on": "2026-03-16",  # within SKD-F2's 5 working days
        "maturity_on": "2027-03-15",
        "security": "credit",
        "controller_guarantee": True,
        "guarantor_consent": consent("2026-03-16"),
    }
    credit = {"security": "credit", "annual_rate_bp": 380, "guarantor": None}
    items = [
        item("F2-B-1"),  # no consent
        item("F2-B-2", guarantor_consent=consent(DISBURSED), fee_rate_bp=50),
        item("F2-B-3", guarantor_consent=consent(DISBURSED), **credit),
        item("F2-B-4", guarantor_consent=consent("2026-03-03"), fee_rate_bp=51),
        skd,
    ]
    before = loan_count(session)
    out = api.call("2026-03-17", "bank_jsb", "POST", "/loans/batch", json={"items": items})
    res = out["results"]
    assert [r["status"] for r in res] == ["refused", "accepted", "refused", "refused", "refused"]
    assert (res[0]["code"], res[0]["errors"][0]["rule"]) == ("guarantor_consent_missing", "XB-F2")
    assert res[0]["errors"][0]["loc"] == ["items", 0, "guarantor_consent"]
    # filed on the 11th working day: a guaranteed loan stays compensable
    assert (res[1]["filing_deadline_applies"], res[1]["compensable"], res[1]["flags"]) == (
        False,
        True,
        [],
    )
    assert res[2]["code"] == "guarantor_consent_not_applicable"
    assert {e["code"] for e in res[3]["errors"]} == {
        "guarantor_consent_after_disbursement",
        "guarantee_fee_above_cap",
    }
    assert res[4]["code"] == "guarantor_consent_not_applicable"
    assert loan_count(session) == before + 1
    view = api.call("2026-03-17", "bank_jsb", "GET", f"/loans/{res[1]['loan_id']}")
    assert view["guarantor_consent"]["dated_on"] == DISBURSED


def test_xb_f2_the_batch_insert_writes_the_consent_columns(api: Api, session: Session) -> None:
    """SKD items of a batch are inserted together (COPY on PostgreSQL) with the consent
    columns, null: an SKD loan carries no consent letter."""
    items = [
        {
            "program": "SKD",
            "enterprise_credit_code": member_enterprise(session).credit_code,
            "contract_no": f"F2-SKD-{i}",
            "principal": "1000000.00",
            "annual_rate_bp": 340,
            "disbursed_on": DISBURSED,
            "maturity_on": "2027-03-01",
            "security": "credit",
            "controller_guarantee": True,
        }
        for i in range(2)
    ]
    out = api.call(DISBURSED, "bank_jsb", "POST", "/loans/batch", json={"items": items})
    assert out["accepted"] == 2
    session.expire_all()
    for r in out["results"]:
        stored = session.get(Loan, r["loan_id"])
        assert stored is not None
        assert (stored.guarantor_consent_ref, stored.guarantor_consent_on) == (None, None)
        assert r["filing_deadline_applies"] is True


def test_xb_f2_a_renewed_guaranteed_loan_carries_a_new_consent(api: Api, session: Session) -> None:
    old = guaranteed(api, session, guarantor_consent=consent(DISBURSED))
    terms = {
        "contract_no": "F2-RENEW-1",
        "principal": "1000000.00",
        "annual_rate_bp": 330,
        "disbursed_on": "2026-09-01",
        "maturity_on": "2027-09-01",
        "security": "guaranteed",
        "guarantor": GUARANTOR,
        "controller_guarantee": True,
    }
    url = f"/loans/{old}/renewal"
    refused = api.call("2026-09-01", "bank_lyg", "POST", url, 422, json=terms)
    assert refused["code"] == "guarantor_consent_missing"
    assert api.call("2026-09-01", "bank_lyg", "GET", f"/loans/{old}")["status"] == "active"
    letter = consent("2026-08-28", "连信担确〔2026〕31号")
    new = api.call(
        "2026-09-01", "bank_lyg", "POST", url, 201, json=terms | {"guarantor_consent": letter}
    )
    assert (new["renewed_from_id"], new["guarantor_consent"]["reference"]) == (
        old,
        "连信担确〔2026〕31号",
    )
