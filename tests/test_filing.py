"""苏科贷 filing (SKD-P1, P2, F1–F6) through POST /loans."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session, sessionmaker

from app.config import Settings
from app.kit.clock import Clock
from app.kit.money import format_fen, parse_yuan
from app.ledger import service as ledger
from app.main import create_app
from app.models import Enterprise, LedgerEntry, Loan
from tests.fixtures.factories import member_enterprise
from tests.fixtures.seed import LVYUAN


@dataclass(frozen=True)
class Members:
    sk1: str  # Nanjing, SKD1 band (18,000,000)
    sk2: str  # Nanjing, SKD2 band (45,000,000)
    sk3: str  # Suzhou, SKD3 band (260,000,000)


@pytest.fixture
def m(session: Session) -> Members:
    """Three fresh library members without loans."""
    return Members(
        sk1=member_enterprise(session, region="320100", revenue_yuan=18_000_000).credit_code,
        sk2=member_enterprise(session, region="320100", revenue_yuan=45_000_000).credit_code,
        sk3=member_enterprise(session, region="320500", revenue_yuan=260_000_000).credit_code,
    )


def loan(code: str, **over: Any) -> dict[str, Any]:
    body = {
        "program": "SKD",
        "enterprise_credit_code": code,
        "contract_no": "JSB-2026-001",
        "principal": "5000000.00",
        "annual_rate_bp": 350,
        "disbursed_on": "2026-03-24",
        "maturity_on": "2027-03-24",
        "security": "credit",
        "controller_guarantee": True,
    }
    return {**body, **over}


def codes(r: Any) -> set[str]:
    assert r.status_code == 422, r.text
    return {e["code"] for e in r.json()["errors"]}


def test_a_valid_skd1_filing_and_its_exposure(
    m: Members, client: TestClient, auth, session: Session
) -> None:  # type: ignore[no-untyped-def]
    r = client.post("/api/v1/loans", headers=auth("bank_jsb"), json=loan(m.sk1))
    assert r.status_code == 201, r.text
    body = r.json()
    assert (body["product"], body["status"], body["filing_deadline"]) == (
        "SKD1",
        "active",
        "2026-03-31",
    )
    assert body["principal"] == "5000000.00" and body["compensable"] and not body["filed_late"]
    # exposure: 40 % province, 40 % city (SKD-S1), posted to the memo accounts
    entry = session.scalars(
        select(LedgerEntry).where(
            LedgerEntry.event_type == "loan.filed", LedgerEntry.event_id == str(body["id"])
        )
    ).one()
    legs = {(g.account_code, g.amount_fen) for g in ledger.entry_legs(session, entry)}
    assert legs == {
        ("SKD_PROV:exposure_memo:JSB", 200_000_000),
        ("SKD_PROV:exposure_contra:JSB", -200_000_000),
        ("SKD_CITY_320100:exposure_memo:JSB", 200_000_000),
        ("SKD_CITY_320100:exposure_contra:JSB", -200_000_000),
    }
    assert all(b.balanced for b in ledger.trial_balance(session, as_of=None, funds=None))
    listed = client.get("/api/v1/loans?limit=500", headers=auth("bank_jsb")).json()["items"]
    assert "JSB-2026-001" in [x["contract_no"] for x in listed]
    assert {x["bank_code"] for x in listed} == {"JSB"}
    icbc = client.get("/api/v1/loans?limit=500", headers=auth("bank_icbc")).json()["items"]
    assert "JSB-2026-001" not in [x["contract_no"] for x in icbc]


@pytest.mark.parametrize(
    ("revenue", "product"),
    [
        ("20000000.00", "SKD1"),
        ("20000000.01", "SKD2"),
        ("50000000.00", "SKD2"),
        ("50000000.01", "SKD3"),
        ("400000000.00", "SKD3"),
    ],
)
def test_skd_p1_product_follows_revenue(
    m: Members, client: TestClient, auth, revenue: str, product: str
) -> None:  # type: ignore[no-untyped-def]
    client.patch(
        f"/api/v1/enterprises/{m.sk1}", headers=auth("admin"), json={"prior_year_revenue": revenue}
    )
    r = client.post(
        "/api/v1/loans",
        headers=auth("bank_jsb"),
        json=loan(m.sk1, principal="1000000.00", annual_rate_bp=350),
    )
    assert r.status_code == 201, r.text
    assert r.json()["product"] == product
    wrong = client.post(
        "/api/v1/loans",
        headers=auth("bank_icbc"),
        json=loan(m.sk1, principal="1000000.00", product="SKD9", contract_no="X"),
    )
    assert {"unknown_product"} <= codes(wrong)


def test_skd_p1_revenue_above_400m_is_refused(m: Members, client: TestClient, auth) -> None:  # type: ignore[no-untyped-def]
    client.patch(
        f"/api/v1/enterprises/{m.sk1}",
        headers=auth("admin"),
        json={"prior_year_revenue": "400000000.01"},
    )
    assert "revenue_above_skd3" in codes(
        client.post("/api/v1/loans", headers=auth("bank_jsb"), json=loan(m.sk1))
    )


def test_skd_p1_declared_product_must_match(m: Members, client: TestClient, auth) -> None:  # type: ignore[no-untyped-def]
    assert codes(
        client.post("/api/v1/loans", headers=auth("bank_jsb"), json=loan(m.sk1, product="SKD2"))
    ) == {"product_mismatch"}


@pytest.mark.parametrize(("credit_code", "cap"), [("sk1", "5000000"), ("sk2", "10000000")])
def test_skd_p1_principal_at_max_and_one_fen_over(
    m: Members, client: TestClient, auth, credit_code: str, cap: str
) -> None:  # type: ignore[no-untyped-def]
    over = client.post(
        "/api/v1/loans",
        headers=auth("bank_jsb"),
        json=loan(getattr(m, credit_code), principal=f"{cap}.01", annual_rate_bp=300),
    )
    assert codes(over) == {"principal_above_max"}
    at = client.post(
        "/api/v1/loans",
        headers=auth("bank_jsb"),
        json=loan(getattr(m, credit_code), principal=f"{cap}.00", annual_rate_bp=300),
    )
    assert at.status_code == 201, at.text


def test_skd3_principal_max_and_security_above_10m(m: Members, client: TestClient, auth) -> None:  # type: ignore[no-untyped-def]
    base = dict(enterprise_credit_code=m.sk3, annual_rate_bp=400, contract_no="SZ-1")
    over = client.post(
        "/api/v1/loans", headers=auth("bank_jsb"), json=loan(m.sk1, **base, principal="30000000.01")
    )
    assert "principal_above_max" in codes(over)
    collateral_small = client.post(
        "/api/v1/loans",
        headers=auth("bank_jsb"),
        json=loan(m.sk1, **base, principal="10000000.00", security="collateral"),
    )
    assert codes(collateral_small) == {"security_not_allowed"}
    collateral_big = client.post(
        "/api/v1/loans",
        headers=auth("bank_jsb"),
        json=loan(
            m.sk1,
            **base,
            principal="30000000.00",
            security="collateral",
            controller_guarantee=False,
        ),
    )
    assert collateral_big.status_code == 201, collateral_big.text
    assert collateral_big.json()["product"] == "SKD3"


@pytest.mark.parametrize(("rate", "ok"), [(350, True), (351, False)])
def test_skd_p1_rate_cap_against_lpr_on_disbursement(
    m: Members, client: TestClient, auth, rate: int, ok: bool
) -> None:  # type: ignore[no-untyped-def]
    """LPR on 2026-03-24 is 300 bp; SKD1 cap is LPR + 50 bp."""
    r = client.post(
        "/api/v1/loans", headers=auth("bank_jsb"), json=loan(m.sk1, annual_rate_bp=rate)
    )
    assert (r.status_code == 201) is ok, r.text
    if not ok:
        assert codes(r) == {"rate_above_cap"} and r.json()["code"] == "rate_above_cap"


@pytest.mark.parametrize(("maturity", "ok"), [("2027-03-24", True), ("2027-03-25", False)])
def test_term_exactly_one_year_and_one_day_over(
    m: Members, client: TestClient, auth, maturity: str, ok: bool
) -> None:  # type: ignore[no-untyped-def]
    r = client.post(
        "/api/v1/loans", headers=auth("bank_jsb"), json=loan(m.sk1, maturity_on=maturity)
    )
    assert (r.status_code == 201) is ok, r.text
    if not ok:
        assert codes(r) == {"term_too_long"}


@pytest.fixture
def app_on(settings: Settings, engine: Engine, session_factory: sessionmaker[Session]):  # type: ignore[no-untyped-def]
    def build(today: date) -> Iterator[TestClient]:
        app: FastAPI = create_app(
            settings, engine=engine, session_factory=session_factory, clock=Clock(today)
        )
        return TestClient(app, raise_server_exceptions=False)

    return build


@pytest.mark.parametrize(("today", "ok"), [(date(2025, 10, 14), True), (date(2025, 10, 15), False)])
def test_skd_f2_fifth_vs_sixth_working_day_across_national_day(
    m: Members, app_on, auth, today: date, ok: bool
) -> None:  # type: ignore[no-untyped-def]
    client = app_on(today)
    r = client.post(
        "/api/v1/loans",
        headers=auth("bank_jsb"),
        json=loan(m.sk1, disbursed_on="2025-09-30", maturity_on="2026-09-30", annual_rate_bp=350),
    )
    assert (r.status_code == 201) is ok, r.text
    if ok:
        assert r.json()["filing_deadline"] == "2025-10-14"
    else:
        assert (
            r.json()["code"] == "filing_deadline_passed"
            and r.json()["errors"][0]["rule"] == "SKD-F2"
        )


def test_every_failed_rule_is_listed_and_nothing_is_written(
    client: TestClient, auth, session: Session
) -> None:  # type: ignore[no-untyped-def]
    client.patch(
        f"/api/v1/enterprises/{LVYUAN}",
        headers=auth("admin"),
        json={"tax_credit_rating": "D", "dishonest_debtor": True, "overdue_loans_elsewhere": True},
    )
    loans, entries = (
        session.scalar(select(func.count()).select_from(m)) for m in (Loan, LedgerEntry)
    )
    r = client.post(
        "/api/v1/loans",
        headers=auth("bank_jsb"),
        json=loan(
            LVYUAN,
            principal="5000000.01",
            annual_rate_bp=400,
            disbursed_on="2026-03-02",
            maturity_on="2027-03-03",
            security="collateral",
            controller_guarantee=False,
            other_fiscal_support=True,
            product="SKD2",
        ),
    )
    # the code is the first failed rule's, in the order of the rules; errors[] lists all;
    # several rules: no top-level rule (docs/api.md Errors)
    body = r.json()
    assert body["code"] == body["errors"][0]["code"] == "enterprise_not_in_library"
    assert body["type"] == "/problems/enterprise_not_in_library" and "rule" not in body
    assert codes(r) == {
        "enterprise_not_in_library",
        "product_mismatch",
        "principal_above_max",
        "rate_above_cap",
        "security_not_allowed",
        "term_too_long",
        "filing_deadline_passed",
        "unpaid_overdue_loan",
        "dishonest_debtor",
        "environmental_rating",
        "tax_rating_d",
        "other_fiscal_support",
    }
    assert all(e["rule"].startswith(("SKD-", "M-")) for e in r.json()["errors"])
    assert (
        session.scalar(select(func.count()).select_from(Loan)),
        session.scalar(select(func.count()).select_from(LedgerEntry)),
    ) == (loans, entries)


def test_skd_p2_credit_loan_needs_controller_guarantee_and_no_fees(
    m: Members, client: TestClient, auth
) -> None:  # type: ignore[no-untyped-def]
    r = client.post(
        "/api/v1/loans",
        headers=auth("bank_jsb"),
        json=loan(m.sk1, controller_guarantee=False, fee_rate_bp=50),
    )
    assert codes(r) == {"controller_guarantee_required", "fees_not_allowed"}


def test_skd_f1_agreement_suspension_and_region(
    m: Members, client: TestClient, auth, session: Session
) -> None:  # type: ignore[no-untyped-def]
    lyg = member_enterprise(session, region="320706").credit_code  # only BOC, suspended
    # 中国银行's 连云港 agreement is suspended (SKD-Q3, in the seed)
    r = client.post(
        "/api/v1/loans",
        headers=auth("bank_boc"),
        json=loan(lyg, principal="1000000.00"),
    )
    assert codes(r) == {"bank_suspended"} and r.json()["code"] == "bank_suspended"
    # 江苏银行 has no 连云港 agreement
    r = client.post(
        "/api/v1/loans",
        headers=auth("bank_jsb"),
        json=loan(lyg, principal="1000000.00"),
    )
    assert codes(r) == {"no_agreement"}
    # an enterprise in a city without an SKD city fund
    e = session.scalars(select(Enterprise).where(Enterprise.credit_code == m.sk1)).one()
    e.region_code = "320300"
    session.commit()
    r = client.post("/api/v1/loans", headers=auth("bank_jsb"), json=loan(m.sk1))
    assert {"region_not_cooperating", "no_agreement"} <= codes(r)


def test_skd_f3_one_loan_per_enterprise_and_contract_numbers(
    m: Members, client: TestClient, auth
) -> None:  # type: ignore[no-untyped-def]
    assert (
        client.post("/api/v1/loans", headers=auth("bank_jsb"), json=loan(m.sk1)).status_code == 201
    )
    dup = client.post("/api/v1/loans", headers=auth("bank_jsb"), json=loan(m.sk1))
    assert dup.status_code == 409 and dup.json()["errors"][0]["loc"] == ["body", "contract_no"]
    second = client.post(
        "/api/v1/loans", headers=auth("bank_icbc"), json=loan(m.sk1, contract_no="ICBC-9")
    )
    assert codes(second) == {"enterprise_has_active_loan"}


def test_skd_f6_annual_quota(m: Members, client: TestClient, auth) -> None:  # type: ignore[no-untyped-def]
    assert (
        client.get("/api/v1/programs/SKD/quotas/2027", headers=auth("bank_jsb")).status_code == 404
    )
    used = parse_yuan(
        client.put(
            "/api/v1/programs/SKD/quotas/2026", headers=auth("province"), json={"amount": "0.00"}
        ).json()["used"]
    )
    q = client.put(
        "/api/v1/programs/SKD/quotas/2026",
        headers=auth("province"),
        json={"amount": format_fen(used + 6_000_000_00)},
    )
    assert q.status_code == 200 and q.json()["remaining"] == "6000000.00"
    assert (
        client.put(
            "/api/v1/programs/SKD/quotas/2026", headers=auth("bank_jsb"), json={"amount": "1.00"}
        ).status_code
        == 403
    )
    assert (
        client.post("/api/v1/loans", headers=auth("bank_jsb"), json=loan(m.sk1)).status_code == 201
    )
    over = client.post(
        "/api/v1/loans",
        headers=auth("bank_jsb"),
        json=loan(m.sk2, contract_no="JSB-2", principal="1000000.01", annual_rate_bp=380),
    )
    assert codes(over) == {"annual_quota_exceeded"}
    fits = client.post(
        "/api/v1/loans",
        headers=auth("bank_jsb"),
        json=loan(m.sk2, contract_no="JSB-3", principal="1000000.00", annual_rate_bp=380),
    )
    assert fits.status_code == 201, fits.text
    left = client.get("/api/v1/programs/SKD/quotas/2026", headers=auth("regulator")).json()
    assert left["remaining"] == "0.00"


def test_only_banks_file_and_bad_bodies_are_422(m: Members, client: TestClient, auth) -> None:  # type: ignore[no-untyped-def]
    assert (
        client.post("/api/v1/loans", headers=auth("regulator"), json=loan(m.sk1)).status_code == 403
    )
    r = client.post(
        "/api/v1/loans",
        headers=auth("bank_jsb"),
        json=loan(m.sk1, maturity_on="2026-03-01", principal="-5", program="XX"),
    )
    assert r.status_code == 422
    assert {tuple(e["loc"])[:2] for e in r.json()["errors"]} >= {
        ("body", "principal"),
        ("body", "program"),
    }
