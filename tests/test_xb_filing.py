"""XB filing (XB-E1, E2, P1, F2) through POST /loans, with its boundaries."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from typing import Any

import pytest
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from app.calendar.library import library_years
from app.config import Settings
from app.kit.calendar import WorkingCalendar
from app.models import Fund
from tests.claims_helpers import Api, api_fixture
from tests.factories import xb_enterprise
from tests.ledger_helpers import balance

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
    g = {"security": "guaranteed", "guarantor": "连云港信用融资担保有限公司"}
    xb(api, code, "100000.00", rate=330, fee_rate_bp=50, **g)
    refused = xb(api, code, "100000.00", rate=331, fee_rate_bp=51, expect=422, **g)
    assert codes(refused) == {"rate_above_cap", "guarantee_fee_above_cap"}
    no_guarantor = xb(api, code, "100000.00", rate=330, security="guaranteed", expect=422)
    assert codes(no_guarantor) == {"guarantor_required"}
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
