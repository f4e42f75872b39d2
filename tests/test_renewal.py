"""SKD-F7 renewal (续贷): the old loan closes as renewed, the new one is re-checked and
linked, exposure moves from one to the other; a refused renewal changes nothing."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from app.config import Settings
from tests.fixtures.api import Api, api_fixture
from tests.fixtures.factories import member_enterprise
from tests.fixtures.ledger import balance

MEMO = "SKD_CITY_320500:exposure_memo:CCB_JS"


@pytest.fixture
def api(  # type: ignore[no-untyped-def]
    settings: Settings, engine: Engine, session_factory: sessionmaker[Session], auth
) -> Iterator[Api]:
    yield from api_fixture(settings, engine, session_factory, auth)


def _renewal(**over: Any) -> dict[str, Any]:
    return {
        "contract_no": over.pop("contract_no", "CCB-RENEW-1"),
        "principal": "2000000.00",
        "annual_rate_bp": 340,
        "disbursed_on": "2026-06-02",
        "maturity_on": "2027-06-02",
        "security": "credit",
        "controller_guarantee": True,
        **over,
    }


def test_skd_f7_renewal_closes_links_and_moves_the_exposure(api: Api, session: Session) -> None:
    code = member_enterprise(session, region="320500").credit_code
    memo = balance(session, MEMO)
    old = api.file_loan("bank_ccb", code, "3000000.00", "2026-03-02", "2026-06-02")
    assert balance(session, MEMO) == memo + 120_000_000  # 40 % of 3,000,000.00
    api.repay("bank_ccb", old, "2026-05-20", "1000000.00")

    new = api.call("2026-06-03", "bank_ccb", "POST", f"/loans/{old}/renewal", 201, json=_renewal())
    assert (new["renewed_from_id"], new["status"], new["product"]) == (old, "active", "SKD1")
    assert new["filing_deadline"] == "2026-06-09"  # 5 working days (端午 2026-06-19 later)
    was = api.call("2026-06-03", "bank_ccb", "GET", f"/loans/{old}")
    assert (was["status"], was["outstanding_principal"], was["days_past_due"]) == (
        "renewed",
        "0.00",
        0,
    )
    before = api.call("2026-06-03", "bank_ccb", "GET", f"/loans/{old}?as_of=2026-06-01")
    assert before["outstanding_principal"] == "2000000.00"
    # old exposure (2,000,000 × 40 %) released, new (2,000,000 × 40 %) posted
    assert balance(session, MEMO) == memo + 80_000_000
    # the renewed loan is closed: no second renewal, no claim
    again = api.call(
        "2026-06-03",
        "bank_ccb",
        "POST",
        f"/loans/{old}/renewal",
        409,
        json=_renewal(contract_no="CCB-RENEW-2"),
    )
    assert again["code"] == "invalid_transition"
    refused = api.claim("bank_ccb", old, "2026-09-05", expect=422)
    assert {e["code"] for e in refused["errors"]} == {"loan_not_claimable", "nothing_outstanding"}


def test_a_refused_renewal_changes_nothing(api: Api, session: Session) -> None:
    code = member_enterprise(session, region="320500").credit_code
    old = api.file_loan("bank_ccb", code, "3000000.00", "2026-03-02", "2026-06-02")
    memo = balance(session, MEMO)
    # one year and a day, and a rate over LPR + 50 bp: both listed, nothing written
    refused = api.call(
        "2026-06-03",
        "bank_ccb",
        "POST",
        f"/loans/{old}/renewal",
        422,
        json=_renewal(maturity_on="2027-06-03", annual_rate_bp=351),
    )
    assert {e["code"] for e in refused["errors"]} == {"rate_above_cap", "term_too_long"}
    view = api.call("2026-06-03", "bank_ccb", "GET", f"/loans/{old}")
    assert (view["status"], view["outstanding_principal"]) == ("active", "3000000.00")
    assert balance(session, MEMO) == memo
    early = api.call(
        "2026-06-03",
        "bank_ccb",
        "POST",
        f"/loans/{old}/renewal",
        422,
        json=_renewal(disbursed_on="2026-03-01", maturity_on="2027-03-01"),
    )
    assert early["code"] == "renewal_before_loan" and early["rule"] == "SKD-F7"
    assert [e["loc"] for e in early["errors"]] == [["body", "disbursed_on"]]
    api.call("2026-06-03", "bank_jsb", "POST", f"/loans/{old}/renewal", 404, json=_renewal())
