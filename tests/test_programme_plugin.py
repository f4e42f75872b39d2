"""A third programme as a plug-in (ARCHITECTURE style 8): 苏贸贷, defined only in
`tests/plugin_programme.py`, registers itself and runs filing → claim → review → payment
→ recovery through the HTTP API, its ledger balanced, without a line of `app/loans/`,
`app/claims/` or `app/ledger/` naming it.

Figures (SMD-S1: province 40 %, city 30 %, bank 30 %): a 1,000,000.00 loan unpaid at
maturity; the loss 1,000,000.00 → province 400,000.00, city 300,000.00, bank 300,000.00.
A 200,000.00 recovery with 20,000.00 costs: net 180,000.00 × 700,000 / 1,000,000 =
126,000.00 back, 72,000.00 to the province fund and 54,000.00 to the city fund (SMD-R1)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session, sessionmaker

from app.config import Settings
from app.models import Claim, LedgerEntry, Loan
from app.programs.base import get_program, program_codes, register, unregister
from app.reference.programs import ensure_program_rows
from tests import plugin_programme as smd
from tests.fixtures.api import Api, Headers, api_fixture
from tests.fixtures.ledger import balance
from tests.fixtures.seed import TEST_PASSWORD, ZHIXIN


@pytest.fixture
def plugin(session: Session) -> Iterator[None]:
    """The programme registered for this test only, with its row in `programs`."""
    try:
        register(smd.PROGRAM)
        ensure_program_rows(session)
        session.commit()
        yield
    finally:
        unregister(smd.CODE)


@pytest.fixture
def api(
    plugin: None,
    settings: Settings,
    engine: Engine,
    session_factory: sessionmaker[Session],
    auth: Headers,
) -> Iterator[Api]:
    yield from api_fixture(settings, engine, session_factory, auth)


SETUP = "2025-06-02"


def _set_up(api: Api) -> None:
    """The programme's funds, capital, the bank's agreement and the fund's manager, all
    through the reference endpoints every programme uses."""
    admin = "admin"
    for code, kind, region in (
        (smd.PROVINCE_FUND, "province", None),
        (smd.CITY_FUND, "city", "320100"),
    ):
        body: dict[str, Any] = {
            "code": code,
            "name": f"{code} 资金",
            "program": smd.CODE,
            "kind": kind,
        }
        if region:
            body["region_code"] = region
        api.call(SETUP, admin, "POST", "/funds", 201, json=body)
    for fund, amount in ((smd.PROVINCE_FUND, "5000000.00"), (smd.CITY_FUND, "3000000.00")):
        api.call(
            SETUP,
            admin,
            "POST",
            f"/funds/{fund}/contributors",
            201,
            json={"code": "SMD_FINANCE", "name": "苏贸贷出资方"},
        )
        api.call(
            SETUP,
            admin,
            "POST",
            f"/funds/{fund}/contributions",
            201,
            json={"contributor": "SMD_FINANCE", "amount": amount, "paid_on": SETUP},
        )
    api.call(
        SETUP,
        admin,
        "POST",
        "/agreements",
        201,
        json={
            "bank_code": "JSB",
            "program": smd.CODE,
            "fund_code": smd.PROVINCE_FUND,
            "start_on": "2025-06-01",
        },
    )
    api.call(
        SETUP,
        admin,
        "POST",
        "/users",
        201,
        json={
            "username": "smd_fund",
            "password": TEST_PASSWORD,
            "role": "fund_manager",
            "fund_code": smd.PROVINCE_FUND,
        },
    )


def test_a_third_programme_runs_end_to_end_through_the_api(api: Api, session: Session) -> None:
    assert smd.CODE in program_codes() and get_program(smd.CODE) is smd.PROGRAM
    _set_up(api)

    # SMD-P1, SMD-P2: a refusal lists every rule of the programme, and writes nothing
    loans_before = session.scalar(select(func.count()).select_from(Loan))
    refused = api.file_loan(
        "bank_jsb", ZHIXIN, "6000000.00", SETUP, "2027-12-02", program=smd.CODE, expect=422
    )
    assert {e["rule"] for e in refused["errors"]} == {"SMD-P1", "SMD-P2"}
    assert refused["code"] == "principal_above_max"  # the service's class, SMD's rule
    assert session.scalar(select(func.count()).select_from(Loan)) == loans_before

    loan_id = api.file_loan("bank_jsb", ZHIXIN, "1000000.00", SETUP, "2025-12-02", program=smd.CODE)
    loan = api.call(SETUP, "bank_jsb", "GET", f"/loans/{loan_id}")
    assert loan["program"] == smd.CODE and loan["status"] == "active"
    # the funds carry their shares as exposure (SMD-S1)
    assert balance(session, f"{smd.PROVINCE_FUND}:exposure_memo:JSB") == 400_000_00
    assert balance(session, f"{smd.CITY_FUND}:exposure_memo:JSB") == 300_000_00

    # SMD-C1: not yet 60 days past due, then a claim with the three-party shares
    early = api.claim("bank_jsb", loan_id, "2026-01-20", expect=422)
    assert (early["code"], early["rule"]) == ("not_yet_claimable", "SMD-C1")
    day = "2026-02-16"
    claim = api.claim("bank_jsb", loan_id, day)
    assert claim["program"] == smd.CODE and claim["status"] == "submitted"
    assert claim["shares"] == {"province": "400000.00", "city": "300000.00", "bank": "300000.00"}
    assert claim["requested"] == "700000.00"
    assert claim["next_step"]["stage"] == "committee_review"
    assert claim["next_step"]["endpoint"].endswith(f"/claims/{claim['id']}/steps/committee_review")
    cid = claim["id"]

    # the programme's transition rule: no document, no approval
    problem = api.call(
        day,
        "committee",
        "POST",
        f"/claims/{cid}/steps/committee_review",
        422,
        json={"decision": "approve"},
    )
    assert problem["code"] == "documents_missing"
    assert problem["errors"][0]["rule"] == "SMD-C1"
    # another programme's stage is not this claim's
    other = api.call(
        day,
        "committee",
        "POST",
        f"/claims/{cid}/steps/province_review",
        409,
        json={"decision": "approve"},
    )
    assert other["code"] == "stage_not_in_programme"
    # the stage's role: a fund manager does not review
    api.call(
        day,
        "smd_fund",
        "POST",
        f"/claims/{cid}/steps/committee_review",
        403,
        json={"decision": "approve"},
    )

    api.upload("bank_jsb", cid, day)
    approved = api.call(
        "2026-02-20",
        "committee",
        "POST",
        f"/claims/{cid}/steps/committee_review",
        json={"decision": "approve", "comment": "同意"},
    )
    assert approved["status"] == "approved"
    assert approved["status_zh"] == "评审通过，待拨付"
    assert approved["approved"] == "700000.00"
    assert approved["next_step"]["stage"] == "payment"
    assert balance(session, f"{smd.PROVINCE_FUND}:exposure_memo:JSB") == 0
    assert balance(session, f"{smd.CITY_FUND}:exposure_memo:JSB") == 0

    paid = api.call(
        "2026-02-25",
        "smd_fund",
        "POST",
        f"/claims/{cid}/steps/payment",
        json={"paid_on": "2026-02-25"},
    )
    assert paid["status"] == "paid" and paid["paid_on"] == "2026-02-25"
    assert [h["action"] for h in paid["history"]] == ["submit", "approve", "pay"]
    api.call("2026-02-25", "bank_jsb", "GET", f"/loans/{loan_id}")

    recovery = api.call(
        "2026-03-10",
        "bank_jsb",
        "POST",
        f"/claims/{cid}/recoveries",
        201,
        json={"recovered_on": "2026-03-10", "amount": "200000.00", "costs": "20000.00"},
    )
    assert recovery["returned"] == "126000.00"
    assert recovery["returned_shares"] == {"province": "72000.00", "city": "54000.00"}

    # the cash of each fund, computed here from the figures above
    assert balance(session, f"{smd.PROVINCE_FUND}:cash") == 5_000_000_00 - 400_000_00 + 72_000_00
    assert balance(session, f"{smd.CITY_FUND}:cash") == 3_000_000_00 - 300_000_00 + 54_000_00
    verify = api.call("2026-03-10", "regulator", "GET", "/ledger/verify")
    assert verify["ok"] is True
    assert all(v == "0.00" for v in verify["book_sums"].values())
    assert {smd.PROVINCE_FUND, smd.CITY_FUND} <= set(verify["book_sums"])

    # the claim is the programme's: its fund's manager sees it, the SKD province's does not
    assert [c["id"] for c in api.call("2026-03-10", "smd_fund", "GET", "/claims")["items"]] == [cid]
    skd_view = api.call("2026-03-10", "fund_province", "GET", "/claims")["items"]
    assert cid not in [c["id"] for c in skd_view]
    row = session.get(Claim, cid)
    assert row is not None and row.program == smd.CODE
    entries = session.scalars(
        select(LedgerEntry.event_type).where(LedgerEntry.event_id == str(cid))
    ).all()
    assert {"claim.approved", "claim.payment", "claim.recovery"} <= set(entries)


def test_an_unregistered_programme_is_refused(api: Api) -> None:
    """Without its registration the code is unknown to the contract (422, nothing
    filed)."""
    unregister(smd.CODE)
    problem = api.file_loan(
        "bank_jsb", ZHIXIN, "1000000.00", SETUP, "2025-12-02", program=smd.CODE, expect=422
    )
    assert "program" in str(problem["errors"][0]["loc"])
