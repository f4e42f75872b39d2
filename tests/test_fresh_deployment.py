"""A fresh deployment — migrations, `seed_reference` and one admin, no demo data — runs
both programmes' claim cycles through the HTTP API alone: the admin registers banks,
funds, contributors, capital, agreements, users and enterprises; every other step is
taken by the user whose job it is, on the business date it happens (M-5)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.auth.service import ensure_admin
from app.cli import migrate
from app.config import Settings
from app.db import make_engine
from app.kit.clock import Clock
from app.main import create_app
from app.models import Fund, FundContributor
from app.seed.loader import seed_reference
from tests.conftest import drop_postgres_database, empty_database_url, pg_database_name
from tests.fixtures.api import PDF
from tests.fixtures.seed import credit_code

ADMIN_PASSWORD = "fresh-admin-pass-2026"  # a test database only
PASSWORD = "fresh-user-pass-2026"  # a test database only
CITY, PROV, POOL = "SKD_CITY_320100", "SKD_PROV", "XB_POOL"
TAG = "fresh"


@pytest.fixture
def database(backend: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """An empty database per test: migrations, reference data and the first admin,
    committed — what `ledger migrate`, `ledger seed-reference` and APP_ADMIN_* leave."""
    url = empty_database_url(backend, tmp_path_factory, TAG)
    migrate(url)
    engine = make_engine(url)
    with Session(engine) as session, session.begin():
        seed_reference(session)
        ensure_admin(session, username="admin", password=ADMIN_PASSWORD)
    engine.dispose()
    yield url
    if backend == "postgresql":
        drop_postgres_database(pg_database_name(TAG))


class Deployment:
    """The HTTP API of one running service; `call` sets the business date first."""

    def __init__(self, app: FastAPI, client: TestClient) -> None:
        self.app, self.client = app, client
        self.tokens: dict[str, str] = {}

    def login(self, username: str, password: str = PASSWORD) -> None:
        r = self.client.post(
            "/api/v1/auth/token", data={"username": username, "password": password}
        )
        assert r.status_code == 200, r.text
        self.tokens[username] = r.json()["access_token"]

    def call(self, day: str, user: str, method: str, url: str, expect: int = 200, **kw: Any) -> Any:
        self.app.state.clock = Clock(date.fromisoformat(day))
        headers = {"Authorization": f"Bearer {self.tokens[user]}", **kw.pop("headers", {})}
        r = self.client.request(method, "/api/v1" + url, headers=headers, **kw)
        assert r.status_code == expect, (method, url, r.text)
        if expect >= 400:
            assert r.headers["content-type"] == "application/problem+json"
        return r.json()

    def user(self, day: str, username: str, role: str, **scope: str) -> None:
        body = {"username": username, "password": PASSWORD, "role": role, **scope}
        self.call(day, "admin", "POST", "/users", 201, json=body)
        self.login(username)

    def balance(self, account: str) -> str:
        return str(
            self.call("2026-12-31", "admin", "GET", f"/ledger/accounts/{account}")[
                "closing_balance"
            ]
        )

    def assert_books_close(self, day: str) -> None:
        """L-3: the hash chain and every book recompute; each book's trial balance is
        zero (debits equal credits)."""
        verify = self.call(day, "admin", "GET", "/ledger/verify")
        assert verify["ok"] is True and verify["first_break"] is None, verify
        assert verify["entries_checked"] > 0
        assert set(verify["book_sums"].values()) == {"0.00"}
        tb = self.call(day, "admin", "GET", "/ledger/trial-balance")
        assert tb["balanced"] is True and tb["books"]
        for book in tb["books"]:
            assert book["balanced"] and book["total_debit"] == book["total_credit"], book


@pytest.fixture
def deployment(database: str) -> Iterator[Deployment]:
    settings = Settings(
        database_url=database,
        app_env="production",
        jwt_secret="fresh-deployment-signing-key-0123456789",  # type: ignore[arg-type]
        person_id_key="fresh-deployment-person-id-key-0123456789",  # type: ignore[arg-type]
        log_json=False,
    )
    engine = make_engine(database)
    app = create_app(settings, engine=engine, clock=Clock(date(2026, 1, 5)))
    with TestClient(app, raise_server_exceptions=False) as client:
        d = Deployment(app, client)
        d.login("admin", ADMIN_PASSWORD)
        yield d
    engine.dispose()


def enterprise(d: Deployment, day: str, region: str, org: str, **facts: Any) -> str:
    code = credit_code(region[:6], org)
    body = {
        "credit_code": code,
        "name": f"{org}科技有限公司",
        "region_code": region,
        "registered_on": "2019-05-01",
        "prior_year_revenue": "18000000.00",
        "employees": 85,
        **facts,
    }
    d.call(day, "admin", "POST", "/enterprises", 201, json=body)
    return code


def file_loan(
    d: Deployment, day: str, bank: str, program: str, code: str, principal: str, **terms: Any
) -> Any:
    body = {
        "program": program,
        "enterprise_credit_code": code,
        "contract_no": f"{program}-{code[-8:]}",
        "principal": principal,
        "annual_rate_bp": 340,
        "disbursed_on": day,
        "maturity_on": "2026-12-31",
        "security": "credit",
        "controller_guarantee": True,
        **terms,
    }
    return d.call(day, bank, "POST", "/loans", 201, json=body)


# --- seed-reference ---------------------------------------------------------------------
def test_seed_reference_registers_skd_and_xb_f0_contributors_once(database: str) -> None:
    """省财政 for the SKD province fund and the XB-F0 schedule for the pool; a second run
    adds nothing; an SKD city fund without a contributor (from before contributors were
    registered with the fund) gets its finance bureau on the next run."""
    engine = make_engine(database)
    with Session(engine) as session, session.begin():
        rows = session.execute(
            select(
                FundContributor.fund_code, FundContributor.code, FundContributor.committed_fen
            ).order_by(FundContributor.id)
        ).all()
        assert [tuple(r) for r in rows] == [
            (PROV, "JS_FINANCE", 0),
            (POOL, "LYG_CITY", 250_000_000_00),
            (POOL, "HAIZHOU", 110_000_000_00),
            (POOL, "LIANYUN", 30_000_000_00),
            (POOL, "KFQ", 100_000_000_00),
            (POOL, "XUWEI", 7_000_000_00),
            (POOL, "YUNTAI", 3_000_000_00),
        ]
        again = seed_reference(session)
        assert again["contributors"] == 0 and set(again.values()) == {0}, again
        session.add(
            Fund(
                code="SKD_CITY_320200",
                name="无锡市苏科贷风险补偿资金",
                program="SKD",
                kind="city",
                region_code="320200",
                params={},
            )
        )
        session.flush()
        assert seed_reference(session)["contributors"] == 1
        assert seed_reference(session)["contributors"] == 0
        wuxi = session.scalars(
            select(FundContributor).where(FundContributor.fund_code == "SKD_CITY_320200")
        ).one()
        assert (wuxi.code, wuxi.name, wuxi.region_code) == (
            "FINANCE_320200",
            "无锡市财政局",
            "320200",
        )
        assert session.scalar(select(func.count()).select_from(FundContributor)) == 8
    engine.dispose()


# --- SKD ------------------------------------------------------------------------------
def test_skd_c1_c2_s1_r1_l3_fresh_deployment_pays_spec_example_1(deployment: Deployment) -> None:
    """SPEC §6 example 1 on a fresh deployment: SKD1 loan 5,000,000.00, 3,000,000.00
    unpaid → province 1,200,000.00, city 1,200,000.00, bank 600,000.00; the city fund pays
    2,400,000.00 once its capital is paid in (refused before), the province reimburses
    1,200,000.00; a 1,000,000.00 recovery less 50,000.00 costs returns 760,000.00."""
    d, setup = deployment, "2026-01-05"

    # reference data and capital: 省财政 comes with seed-reference; the city fund brings
    # its finance bureau
    prov = d.call(setup, "admin", "GET", f"/funds/{PROV}/contributors")["items"]
    assert [(c["code"], c["name"], c["committed"]) for c in prov] == [
        ("JS_FINANCE", "江苏省财政厅", "0.00")
    ]
    d.call(
        setup,
        "admin",
        "POST",
        "/banks",
        201,
        json={"code": "JSB", "name": "江苏银行", "unit_level": "head_office"},
    )
    d.call(
        setup,
        "admin",
        "POST",
        "/funds",
        201,
        json={
            "code": CITY,
            "name": "南京市苏科贷风险补偿资金",
            "program": "SKD",
            "kind": "city",
            "region_code": "320100",
        },
    )
    city = d.call(setup, "admin", "GET", f"/funds/{CITY}/contributors")["items"]
    assert [(c["code"], c["name"], c["region_code"]) for c in city] == [
        ("FINANCE_320100", "南京市财政局", "320100")
    ]
    twice = d.call(
        setup,
        "admin",
        "POST",
        f"/funds/{CITY}/contributors",
        409,
        json={"code": "NJ_FINANCE", "name": "南京市财政局", "region_code": "320100"},
    )
    assert twice["code"] == "already_exists"
    assert [e["loc"] for e in twice["errors"]] == [["body", "name"]]
    d.call(
        setup,
        "admin",
        "POST",
        f"/funds/{PROV}/contributions",
        201,
        json={"contributor": "JS_FINANCE", "amount": "10000000.00", "paid_on": setup},
    )

    d.call(
        setup,
        "admin",
        "POST",
        "/agreements",
        201,
        json={
            "bank_code": "JSB",
            "program": "SKD",
            "fund_code": CITY,
            "region_code": "320100",
            "start_on": "2026-01-01",
        },
    )
    d.user(setup, "bank_jsb", "bank", bank_code="JSB")
    d.user(setup, "city_nanjing", "city_reviewer", region_code="320100")
    d.user(setup, "province", "province_reviewer")
    d.user(setup, "fund_nanjing", "fund_manager", fund_code=CITY)
    d.user(setup, "fund_province", "fund_manager", fund_code=PROV)
    code = enterprise(
        d, setup, "320100", "MA1F00001", rd_staff_share_bp=2500, rd_spend_share_bp=800, ip_count=12
    )

    # SKD-E1 library, SKD-F6 quota, filing within 5 working days (SKD-F2)
    d.call(
        "2026-02-10",
        "city_nanjing",
        "POST",
        f"/enterprises/{code}/library-admission",
        201,
        json={"comment": "符合入库条件"},
    )
    d.call(
        "2026-02-10",
        "province",
        "PUT",
        "/programs/SKD/quotas/2026",
        200,
        json={"amount": "100000000.00"},
    )
    loan = file_loan(
        d, "2026-03-02", "bank_jsb", "SKD", code, "5000000.00", maturity_on="2026-06-02"
    )
    assert (loan["product"], loan["compensable"]) == ("SKD1", True)
    d.call(
        "2026-05-20",
        "bank_jsb",
        "POST",
        f"/loans/{loan['id']}/repayments",
        201,
        json={"paid_on": "2026-05-20", "principal": "2000000.00"},
    )

    # SKD-C2: 89 days past due is too early, 90 is a claim on the unpaid principal
    early = d.call("2026-08-30", "bank_jsb", "POST", "/claims", 422, json={"loan_id": loan["id"]})
    assert early["code"] == "not_yet_claimable" and early["errors"][0]["rule"] == "SKD-C2"
    c = d.call("2026-08-31", "bank_jsb", "POST", "/claims", 201, json={"loan_id": loan["id"]})
    assert (c["days_past_due"], c["loss"], c["requested"]) == (90, "3000000.00", "2400000.00")
    assert c["shares"] == {"province": "1200000.00", "city": "1200000.00", "bank": "600000.00"}
    doc = d.call(
        "2026-08-31",
        "bank_jsb",
        "POST",
        f"/claims/{c['id']}/documents",
        201,
        files={"file": ("代偿申请书.pdf", PDF, "application/pdf")},
        data={"kind": "application"},
    )
    assert len(doc["sha256"]) == 64

    review = {"decision": "approve", "comment": "材料齐全，同意"}
    c = d.call("2026-09-02", "city_nanjing", "POST", f"/claims/{c['id']}/city-review", json=review)
    assert c["status"] == "city_approved"
    c = d.call("2026-09-08", "province", "POST", f"/claims/{c['id']}/province-review", json=review)
    assert (c["status"], c["approved"], c["capped_by"]) == ("approved", "2400000.00", None)
    assert c["cap"]["exempt"] is True  # SKD-Q2: the first cooperation year

    # the city fund holds nothing yet: the payment waits for its capital
    pay = {"paid_on": "2026-09-10"}
    short = d.call(
        "2026-09-10", "fund_nanjing", "POST", f"/claims/{c['id']}/city-payment", 409, json=pay
    )
    assert short["code"] == "insufficient_funds"
    paid_in = d.call(
        "2026-09-10",
        "admin",
        "POST",
        f"/funds/{CITY}/contributions",
        201,
        json={"contributor": "FINANCE_320100", "amount": "5000000.00", "paid_on": "2026-09-10"},
    )
    assert (paid_in["paid_to_date"], paid_in["committed"]) == ("5000000.00", "0.00")
    assert d.balance(f"{CITY}:cash") == "5000000.00"
    c = d.call("2026-09-10", "fund_nanjing", "POST", f"/claims/{c['id']}/city-payment", json=pay)
    assert (c["status"], c["paid_on"]) == ("paid", "2026-09-10")
    assert d.balance(f"{CITY}:cash") == "2600000.00"
    c = d.call(
        "2026-09-15",
        "fund_province",
        "POST",
        f"/claims/{c['id']}/province-reimbursement",
        json={"paid_on": "2026-09-15"},
    )
    assert c["status"] == "reimbursed"
    assert d.balance(f"{CITY}:cash") == "3800000.00"
    assert d.balance(f"{PROV}:cash") == "8800000.00"

    # SKD-R1: the net recovery at the compensation ratio 2,400,000 ÷ 3,000,000
    r = d.call(
        "2026-10-20",
        "bank_jsb",
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

    # L-3: cash = contributions − compensation + returns, in each fund's book
    assert d.balance(f"{CITY}:cash") == "4180000.00"  # 5,000,000 − 1,200,000 + 380,000
    assert d.balance(f"{PROV}:cash") == "9180000.00"  # 10,000,000 − 1,200,000 + 380,000
    assert d.balance(f"{CITY}:contributed_capital:FINANCE_320100") == "-5000000.00"
    assert d.balance(f"{PROV}:contributed_capital:JS_FINANCE") == "-10000000.00"
    for fund, net in ((CITY, "4180000.00"), (PROV, "9180000.00")):
        capital = d.call("2026-10-20", "admin", "GET", f"/funds/{fund}/capital")
        assert (capital["net_value"], capital["committed"]) == (net, "0.00")
        assert [x["unpaid"] for x in capital["contributors"]] == ["0.00"]
    history = d.call("2026-10-20", "admin", "GET", f"/claims/{c['id']}")["history"]
    assert [(h["action"], h["actor"]) for h in history] == [
        ("submit", "bank_jsb"),
        ("city_approve", "city_nanjing"),
        ("province_approve", "province"),
        ("city_pay", "fund_nanjing"),
        ("province_reimburse", "fund_province"),
    ]
    d.assert_books_close("2026-10-20")


# --- XB -------------------------------------------------------------------------------
XB_F0_INITIAL = {  # XB-F0: 100,000,000.00 paid in, pro rata to the commitments
    "LYG_CITY": ("连云港市级财政", "250000000.00", "50000000.00"),
    "HAIZHOU": ("海州区", "110000000.00", "22000000.00"),
    "LIANYUN": ("连云区", "30000000.00", "6000000.00"),
    "KFQ": ("市开发区", "100000000.00", "20000000.00"),
    "XUWEI": ("徐圩新区", "7000000.00", "1400000.00"),
    "YUNTAI": ("云台山景区", "3000000.00", "600000.00"),
}
XB_DISTRICTS = ("320706", "320703", "320700-KFQ", "320700-XWXQ")


def test_xb_f0_c1_c2_s1_r1_l3_fresh_deployment_pays_a_credit_loss(
    deployment: Deployment,
) -> None:
    """On a fresh deployment the XB pool's contributors come with seed-reference and pay
    their initial capital through the API (XB-F0); a credit loan's 2,000,000.00 loss →
    fund 1,600,000.00, bank 400,000.00 (XB-S1, SPEC §6 example 4) within the bank's
    annual limit of 5 % of 50,000,000.00 (XB-Q1); filing → manager review → committee →
    payment → recovery (net 450,000.00 × 80 % = 360,000.00, XB-R1) → receipt."""
    d, setup = deployment, "2026-01-05"
    pool = d.call(setup, "admin", "GET", f"/funds/{POOL}/contributors")["items"]
    assert {c["code"]: (c["name"], c["committed"]) for c in pool} == {
        k: v[:2] for k, v in XB_F0_INITIAL.items()
    }
    for contributor, (_, _, amount) in XB_F0_INITIAL.items():
        d.call(
            setup,
            "admin",
            "POST",
            f"/funds/{POOL}/contributions",
            201,
            json={"contributor": contributor, "amount": amount, "paid_on": setup},
        )
    over = d.call(
        setup,
        "admin",
        "POST",
        f"/funds/{POOL}/contributions",
        422,
        json={"contributor": "XUWEI", "amount": "5600000.01", "paid_on": setup},
    )
    assert over["errors"][0]["code"] == "contribution_exceeds_commitment"
    capital = d.call(setup, "admin", "GET", f"/funds/{POOL}/capital")
    assert (capital["committed"], capital["paid_in"]) == ("500000000.00", "100000000.00")
    assert d.balance(f"{POOL}:cash") == "100000000.00"

    d.call(
        setup,
        "admin",
        "POST",
        "/banks",
        201,
        json={
            "code": "LYG_RCB",
            "name": "连云港农村商业银行",
            "unit_level": "head_office",
        },
    )
    d.call(
        setup,
        "admin",
        "POST",
        "/agreements",
        201,
        json={
            "bank_code": "LYG_RCB",
            "program": "XB",
            "fund_code": "XB_ZQCZD",
            "start_on": "2026-01-01",
        },
    )
    d.user(setup, "bank_lyg", "bank", bank_code="LYG_RCB")
    d.user(setup, "fund_xb", "fund_manager", fund_code=POOL)
    d.user(setup, "fund_xb_pay", "fund_manager", fund_code=POOL)
    d.user(setup, "committee", "committee")

    # 16 performing loans of 3,000,000.00 and the one that defaults: 50,000,000.00
    # outstanding at the 2026-06-30 quarter end (XB-Q1's base)
    codes = [
        enterprise(
            d,
            setup,
            XB_DISTRICTS[i % 4],
            f"MA1G{i:05d}",
            prior_year_revenue="8000000.00",
            employees=30,
        )
        for i in range(17)
    ]
    for code in codes[:16]:
        file_loan(d, setup, "bank_lyg", "XB", code, "3000000.00", annual_rate_bp=380)
    loan = file_loan(
        d,
        setup,
        "bank_lyg",
        "XB",
        codes[16],
        "2000000.00",
        annual_rate_bp=380,
        maturity_on="2026-07-06",
    )
    assert loan["compensable"] is True

    # XB-C1: 45 days past due, sued and accepted, with the three documents
    claim = {
        "loan_id": loan["id"],
        "lawsuit_case_no": "(2026)苏0706民初456号",
        "lawsuit_accepted_on": "2026-08-10",
    }
    early = d.call("2026-08-19", "bank_lyg", "POST", "/claims", 422, json=claim)
    assert early["code"] == "not_yet_claimable" and early["errors"][0]["rule"] == "XB-C1"
    c = d.call("2026-08-20", "bank_lyg", "POST", "/claims", 201, json=claim)
    assert (c["days_past_due"], c["loss"], c["requested"]) == (45, "2000000.00", "1600000.00")
    assert c["shares"] == {"fund": "1600000.00", "guarantor": "0.00", "bank": "400000.00"}
    for kind in ("application", "collection_plan", "due_diligence"):
        d.call(
            "2026-08-20",
            "bank_lyg",
            "POST",
            f"/claims/{c['id']}/documents",
            201,
            files={"file": (f"{kind}.pdf", PDF, "application/pdf")},
            data={"kind": kind},
        )

    # XB-C2: the manager's opinion, the committee, payment by another manager
    d.call(
        "2026-08-24",
        "fund_xb",
        "POST",
        f"/claims/{c['id']}/manager-review",
        json={"decision": "approve", "findings": [], "opinion": "经审查，合作银行已尽职。"},
    )
    c = d.call(
        "2026-08-26",
        "committee",
        "POST",
        f"/claims/{c['id']}/committee-decision",
        json={"decision": "approve", "comment": "同意补偿"},
    )
    assert (c["status"], c["approved"], c["capped_by"]) == ("approved", "1600000.00", None)
    assert (c["cap"]["outstanding_at_quarter_end"], c["cap"]["annual_limit"]) == (
        "50000000.00",
        "2500000.00",
    )
    c = d.call(
        "2026-08-28",
        "fund_xb_pay",
        "POST",
        f"/claims/{c['id']}/payment",
        json={"paid_on": "2026-08-28"},
    )
    assert c["status"] == "paid"
    assert d.balance(f"{POOL}:cash") == "98400000.00"

    # XB-R1: collections less costs at the 80 % ratio, due within 10 working days
    r = d.call(
        "2026-09-01",
        "bank_lyg",
        "POST",
        f"/claims/{c['id']}/recoveries",
        201,
        json={"recovered_on": "2026-09-01", "amount": "500000.00", "costs": "50000.00"},
    )
    assert (r["net"], r["returned"], r["returned_shares"]) == (
        "450000.00",
        "360000.00",
        {"fund": "360000.00"},
    )
    got = d.call(
        "2026-09-10",
        "fund_xb",
        "POST",
        f"/claims/{c['id']}/receipts",
        201,
        json={"received_on": "2026-09-10", "amount": "360000.00"},
    )
    assert got["receivable_after"] == "0.00"

    # L-3: cash = contributions − compensation + returns
    assert d.balance(f"{POOL}:cash") == "98760000.00"  # 100,000,000 − 1,600,000 + 360,000
    capital = d.call("2026-09-10", "admin", "GET", f"/funds/{POOL}/capital")
    assert (capital["paid_in"], capital["net_value"]) == ("100000000.00", "98760000.00")
    history = d.call("2026-09-10", "admin", "GET", f"/claims/{c['id']}")["history"]
    assert [h["actor"] for h in history] == ["bank_lyg", "fund_xb", "committee", "fund_xb_pay"]
    d.assert_books_close("2026-09-10")
