"""Reference data (SPEC §2): regions, banks, funds, agreements, enterprises, LPR."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.models import Agreement, AgreementEvent, Enterprise, FundContributor
from tests.fixtures.factories import loan_book
from tests.fixtures.seed import ZHIXIN, credit_code

JIANGSU_CITIES = {f"32{n:02d}00" for n in range(1, 14)}


def _all(client: TestClient, url: str, headers: dict[str, str]) -> list[dict]:  # type: ignore[type-arg]
    items, cursor = [], None
    while True:
        sep = "&" if "?" in url else "?"
        page = client.get(
            f"{url}{sep}limit=5" + (f"&cursor={cursor}" if cursor else ""), headers=headers
        )
        assert page.status_code == 200, page.text
        items += page.json()["items"]
        cursor = page.json()["next_cursor"]
        if cursor is None:
            return items


def test_regions_seeded_with_13_cities_and_lianyungang_zones(client: TestClient, auth) -> None:  # type: ignore[no-untyped-def]
    cities = _all(client, "/api/v1/regions?level=city", auth("regulator"))
    assert {c["code"] for c in cities} == JIANGSU_CITIES
    lyg = _all(client, "/api/v1/regions?parent_code=320700", auth("regulator"))
    names = {r["name"] for r in lyg}
    assert {"海州区", "连云区", "徐圩新区", "云台山景区"} <= names
    assert any(r["level"] == "functional_zone" and "开发区" in r["name"] for r in lyg)


def test_pagination_walks_every_row_once(client: TestClient, auth) -> None:  # type: ignore[no-untyped-def]
    everything = client.get("/api/v1/regions?limit=500", headers=auth("regulator")).json()["items"]
    paged = _all(client, "/api/v1/regions", auth("regulator"))
    assert [r["code"] for r in paged] == [r["code"] for r in everything]
    assert len(paged) == len({r["code"] for r in paged}) > 5


def test_invalid_cursor_and_limit_are_422(client: TestClient, auth) -> None:  # type: ignore[no-untyped-def]
    r = client.get("/api/v1/banks?cursor=@@@", headers=auth("regulator"))
    assert r.status_code == 422 and r.json()["errors"][0]["loc"] == ["query", "cursor"]
    r = client.get("/api/v1/banks?limit=0", headers=auth("regulator"))
    assert r.status_code == 422 and r.json()["errors"][0]["loc"] == ["query", "limit"]


def test_region_create_checks_parent(client: TestClient, auth) -> None:  # type: ignore[no-untyped-def]
    r = client.post(
        "/api/v1/regions",
        headers=auth("admin"),
        json={"code": "320115", "name": "江宁区", "level": "county", "parent_code": "999999"},
    )
    assert r.status_code == 422
    assert r.json()["errors"][0]["loc"] == ["body", "parent_code"]
    ok = client.post(
        "/api/v1/regions",
        headers=auth("admin"),
        json={"code": "320115", "name": "江宁区", "level": "county", "parent_code": "320100"},
    )
    assert ok.status_code == 201
    assert client.get("/api/v1/regions/320115", headers=auth("bank_jsb")).json()["name"] == "江宁区"


def test_lpr_in_force_on_a_date_m4(client: TestClient, auth) -> None:  # type: ignore[no-untyped-def]
    h = auth("bank_jsb")
    assert (
        client.get("/api/v1/lpr-rates/in-force?on=2019-08-20", headers=h).json()["rate_bp"] == 425
    )
    assert (
        client.get("/api/v1/lpr-rates/in-force?on=2024-10-20", headers=h).json()["rate_bp"] == 335
    )
    assert (
        client.get("/api/v1/lpr-rates/in-force?on=2024-10-21", headers=h).json()["rate_bp"] == 310
    )
    assert (
        client.get("/api/v1/lpr-rates/in-force?on=2026-03-31", headers=h).json()["rate_bp"] == 300
    )
    assert client.get("/api/v1/lpr-rates/in-force?on=2019-01-01", headers=h).status_code == 404
    history = _all(client, "/api/v1/lpr-rates", h)
    assert history[0] == {"effective_on": "2019-08-20", "rate_bp": 425}
    dup = client.post(
        "/api/v1/lpr-rates",
        headers=auth("admin"),
        json={"effective_on": "2025-05-20", "rate_bp": 290},
    )
    assert dup.status_code == 409
    new = client.post(
        "/api/v1/lpr-rates",
        headers=auth("admin"),
        json={"effective_on": "2026-06-22", "rate_bp": 290},
    )
    assert new.status_code == 201
    assert (
        client.get("/api/v1/lpr-rates/in-force?on=2026-07-01", headers=h).json()["rate_bp"] == 290
    )


def test_xb_pool_contributor_schedule_xb_f0(client: TestClient, auth) -> None:  # type: ignore[no-untyped-def]
    pool = client.get("/api/v1/funds/XB_POOL", headers=auth("regulator")).json()
    assert pool["committed_capital"] == "500000000.00"
    committed = {c["name"]: c["committed"] for c in pool["contributors"]}
    assert committed == {
        "连云港市级财政": "250000000.00",
        "海州区": "110000000.00",
        "连云区": "30000000.00",
        "市开发区": "100000000.00",
        "徐圩新区": "7000000.00",
        "云台山景区": "3000000.00",
    }
    subs = _all(client, "/api/v1/funds?kind=sub_fund", auth("regulator"))
    assert {f["code"] for f in subs} >= {"XB_ZQCZD", "XB_KCD"}
    assert all(f["parent_code"] == "XB_POOL" for f in subs)


def test_fund_consistency_rules(client: TestClient, auth) -> None:  # type: ignore[no-untyped-def]
    r = client.post(
        "/api/v1/funds",
        headers=auth("admin"),
        json={"code": "SKD_CITY_X", "name": "x", "program": "SKD", "kind": "city"},
    )
    assert r.status_code == 422 and r.json()["errors"][0]["loc"] == ["body", "region_code"]
    r = client.post(
        "/api/v1/funds",
        headers=auth("admin"),
        json={
            "code": "XB_SUB_X",
            "name": "x",
            "program": "XB",
            "kind": "sub_fund",
            "parent_code": "SKD_PROV",
        },
    )
    assert r.status_code == 422 and r.json()["errors"][0]["loc"] == ["body", "parent_code"]
    ok = client.post(
        "/api/v1/funds",
        headers=auth("admin"),
        json={
            "code": "SKD_CITY_320200",
            "name": "无锡市苏科贷风险补偿资金",
            "program": "SKD",
            "kind": "city",
            "region_code": "320200",
        },
    )
    assert ok.status_code == 201, ok.text
    # the city fund comes with its finance bureau as contributor, no committed schedule
    detail = client.get("/api/v1/funds/SKD_CITY_320200", headers=auth("regulator")).json()
    assert detail["contributors"] == [
        {
            "fund_code": "SKD_CITY_320200",
            "code": "FINANCE_320200",
            "name": "无锡市财政局",
            "region_code": "320200",
            "committed": "0.00",
        }
    ]


def test_agreement_lifecycle_with_history(client: TestClient, auth, session: Session) -> None:  # type: ignore[no-untyped-def]
    created = client.post(
        "/api/v1/agreements",
        headers=auth("admin"),
        json={
            "bank_code": "CCB_JS",
            "program": "SKD",
            "fund_code": "SKD_CITY_320100",
            "region_code": "320100",
            "start_on": "2026-01-15",
        },
    )
    assert created.status_code == 201, created.text
    a = created.json()
    assert a["end_on"] == "2029-01-15" and a["status"] == "active"  # SKD term: 3 years
    url = f"/api/v1/agreements/{a['id']}"
    s = client.post(f"{url}/suspend", headers=auth("province"), json={"reason": "SKD-Q3 3 %"})
    assert s.status_code == 200 and s.json()["status"] == "suspended"
    again = client.post(f"{url}/suspend", headers=auth("province"), json={"reason": "again"})
    assert again.status_code == 409 and again.json()["code"] == "invalid_transition"
    assert (
        client.post(f"{url}/resume", headers=auth("province"), json={"reason": "below 3 %"}).json()[
            "status"
        ]
        == "active"
    )
    t = client.post(f"{url}/terminate", headers=auth("province"), json={"reason": "term ended"})
    assert t.json()["status"] == "terminated"
    assert (
        client.post(f"{url}/resume", headers=auth("province"), json={"reason": "no"}).status_code
        == 409
    )
    history = client.get(url, headers=auth("bank_icbc")).status_code
    assert history == 404  # another bank
    detail = client.get(url, headers=auth("regulator")).json()
    assert [(h["action"], h["from_status"], h["to_status"]) for h in detail["history"]] == [
        ("create", None, "active"),
        ("suspend", "active", "suspended"),
        ("resume", "suspended", "active"),
        ("terminate", "active", "terminated"),
    ]
    assert detail["history"][1]["reason"] == "SKD-Q3 3 %"


def test_agreement_authority_per_programme(client: TestClient, auth) -> None:  # type: ignore[no-untyped-def]
    xb = client.get("/api/v1/agreements?program=XB&status=active", headers=auth("regulator"))
    xb_id = xb.json()["items"][0]["id"]
    r = client.post(
        f"/api/v1/agreements/{xb_id}/suspend", headers=auth("province"), json={"reason": "not mine"}
    )
    assert r.status_code == 403
    r = client.post(
        f"/api/v1/agreements/{xb_id}/suspend",
        headers=auth("committee"),
        json={"reason": "XB-Q1 limit reached"},
    )
    assert r.status_code == 200
    bank = client.post(
        f"/api/v1/agreements/{xb_id}/resume", headers=auth("bank_lyg"), json={"reason": "please"}
    )
    assert bank.status_code == 403
    # API.md names the province reviewer (SKD) and the committee (XB), not the admin
    for action in ("resume", "suspend", "terminate"):
        admin = client.post(
            f"/api/v1/agreements/{xb_id}/{action}", headers=auth("admin"), json={"reason": "x"}
        )
        assert admin.status_code == 403 and admin.json()["code"] == "role_not_allowed"
    status = client.get(f"/api/v1/agreements/{xb_id}", headers=auth("regulator")).json()
    assert status["status"] == "suspended"


def test_agreement_refusal_lists_every_problem_and_writes_nothing(
    client: TestClient,
    auth,
    session: Session,  # type: ignore[no-untyped-def]
) -> None:
    before = session.scalar(select(func.count()).select_from(Agreement))
    events = session.scalar(select(func.count()).select_from(AgreementEvent))
    r = client.post(
        "/api/v1/agreements",
        headers=auth("admin"),
        json={
            "bank_code": "NOPE",
            "program": "SKD",
            "fund_code": "XB_POOL",
            "region_code": "000000",
            "start_on": "2026-01-01",
        },
    )
    assert r.status_code == 422
    assert {tuple(e["loc"]) for e in r.json()["errors"]} == {
        ("body", "bank_code"),
        ("body", "fund_code"),
        ("body", "region_code"),
    }
    assert session.scalar(select(func.count()).select_from(Agreement)) == before
    assert session.scalar(select(func.count()).select_from(AgreementEvent)) == events


def test_suspended_bank_is_visible(client: TestClient, auth) -> None:  # type: ignore[no-untyped-def]
    """中国银行's 连云港 agreement is suspended in the seed (SKD-Q3)."""
    r = client.get("/api/v1/agreements?status=suspended", headers=auth("bank_boc")).json()
    assert [a["bank_code"] for a in r["items"]] == ["BOC_JS"]


def test_enterprise_credit_code_check_digit(client: TestClient, auth, session: Session) -> None:  # type: ignore[no-untyped-def]
    good = credit_code("320100", "MA1XB0009")
    wrong_digit = good[:-1] + ("0" if good[-1] != "0" else "1")
    facts = {
        "name": "测试科技有限公司",
        "region_code": "320100",
        "registered_on": "2019-03-01",
        "prior_year_revenue": "20000000.00",
        "employees": 50,
    }
    bad = client.post(
        "/api/v1/enterprises", headers=auth("admin"), json={**facts, "credit_code": wrong_digit}
    )
    assert bad.status_code == 422
    assert bad.json()["errors"][0]["loc"] == ["body", "credit_code"]
    assert (
        session.scalar(
            select(func.count())
            .select_from(Enterprise)
            .where(Enterprise.credit_code == wrong_digit)
        )
        == 0
    )
    ok = client.post(
        "/api/v1/enterprises", headers=auth("admin"), json={**facts, "credit_code": good.lower()}
    )
    assert ok.status_code == 201, ok.text
    assert ok.json()["credit_code"] == good
    assert ok.json()["prior_year_revenue"] == "20000000.00"
    dup = client.post(
        "/api/v1/enterprises", headers=auth("admin"), json={**facts, "credit_code": good}
    )
    assert dup.status_code == 409


def test_enterprise_patch_and_read(client: TestClient, auth) -> None:  # type: ignore[no-untyped-def]
    code = ZHIXIN
    url = f"/api/v1/enterprises/{code}"
    r = client.patch(
        url,
        headers=auth("admin"),
        json={"tax_credit_rating": "D", "prior_year_revenue": "21000000.50"},
    )
    assert r.status_code == 200, r.text
    seen = client.get(url, headers=auth("bank_jsb")).json()
    assert seen["tax_credit_rating"] == "D" and seen["prior_year_revenue"] == "21000000.50"
    cleared = client.patch(url, headers=auth("admin"), json={"tax_credit_rating": None})
    assert cleared.json()["tax_credit_rating"] is None
    null_name = client.patch(url, headers=auth("admin"), json={"name": None, "employees": None})
    assert null_name.status_code == 422
    assert {tuple(e["loc"]) for e in null_name.json()["errors"]} == {
        ("body", "employees"),
        ("body", "name"),
    }
    assert client.patch(url, headers=auth("bank_jsb"), json={"ip_count": 3}).status_code == 403
    found = client.get("/api/v1/enterprises?name=智芯", headers=auth("bank_jsb")).json()["items"]
    assert [e["credit_code"] for e in found] == [code]


def test_banks_list_only_their_own_loans(client: TestClient, auth, session: Session) -> None:  # type: ignore[no-untyped-def]
    loan_book(session)  # loans of 江苏银行, 工商银行, 建设银行 (SKD) and 连云港农商行 (XB)
    r = client.get("/api/v1/loans?limit=200", headers=auth("bank_lyg"))
    assert r.status_code == 200
    own = r.json()["items"]  # 连云港农商行 has only XB loans
    assert own and {(x["bank_code"], x["program"]) for x in own} == {("LYG_RCB", "XB")}
    jsb = client.get("/api/v1/loans", headers=auth("bank_jsb")).json()["items"]
    assert jsb and {x["bank_code"] for x in jsb} == {"JSB"}
    icbc_loan = client.get("/api/v1/loans", headers=auth("bank_icbc")).json()["items"][0]["id"]
    assert client.get(f"/api/v1/loans/{icbc_loan}", headers=auth("bank_jsb")).status_code == 404
    assert client.get(f"/api/v1/loans/{icbc_loan}", headers=auth("regulator")).status_code == 200


# --- fund contributors ---------------------------------------------------------------
def _contributors(session: Session) -> int:
    return int(session.scalar(select(func.count()).select_from(FundContributor)) or 0)


def test_contributor_registered_through_the_api_takes_capital(client: TestClient, auth) -> None:  # type: ignore[no-untyped-def]
    """An SKD contributor without a committed schedule pays capital in with no ceiling;
    it is listed with the fund's others and readable by the fund's manager."""
    url = "/api/v1/funds/SKD_CITY_320100/contributors"
    body = {"code": "NJ_TECH", "name": "南京市科学技术局", "region_code": "320100"}
    r = client.post(url, headers=auth("admin"), json=body)
    assert r.status_code == 201, r.text
    assert r.json() == {"fund_code": "SKD_CITY_320100", "committed": "0.00", **body}
    paid = client.post(
        "/api/v1/funds/SKD_CITY_320100/contributions",
        headers=auth("admin"),
        json={"contributor": "NJ_TECH", "amount": "3000000.00", "paid_on": "2026-03-31"},
    )
    assert paid.status_code == 201, paid.text
    assert (paid.json()["paid_to_date"], paid.json()["committed"]) == ("3000000.00", "0.00")
    capital = client.get("/api/v1/funds/SKD_CITY_320100/capital", headers=auth("regulator"))
    row = next(c for c in capital.json()["contributors"] if c["contributor"] == "NJ_TECH")
    assert (row["paid_in"], row["unpaid"]) == ("3000000.00", "0.00")
    for reader in ("admin", "fund_nanjing", "regulator"):
        listed = _all(client, url, auth(reader))
        assert [c["code"] for c in listed] == ["FINANCE_320100", "NJ_TECH"], reader
    assert client.get(url, headers=auth("bank_jsb")).status_code == 403
    assert client.get(url, headers=auth("city_nanjing")).status_code == 403


def test_xb_f0_contributor_needs_a_commitment_and_refusals_list_every_field(
    client: TestClient,
    auth,
    session: Session,  # type: ignore[no-untyped-def]
) -> None:
    before = _contributors(session)
    url = "/api/v1/funds/XB_POOL/contributors"
    r = client.post(
        url,
        headers=auth("admin"),
        json={"code": "GUANNAN", "name": "灌南县", "region_code": "999999"},
    )
    # every failure listed; the top-level code is the first one's (docs/api.md Errors)
    assert r.status_code == 422 and r.json()["code"] == "unknown_reference"
    assert r.headers["content-type"] == "application/problem+json"
    assert {(tuple(e["loc"]), e["code"]) for e in r.json()["errors"]} == {
        (("body", "region_code"), "unknown_reference"),
        (("body", "committed"), "commitment_required"),
    }
    assert next(e["rule"] for e in r.json()["errors"] if e["code"] == "commitment_required") == (
        "XB-F0"
    )
    bad = client.post(
        url,
        headers=auth("admin"),
        json={"code": "lower case", "name": "", "committed": "1.001", "name_en": "x"},
    )
    assert bad.status_code == 422 and bad.json()["code"] == "validation_error"
    assert {tuple(e["loc"]) for e in bad.json()["errors"]} == {
        ("body", "code"),
        ("body", "name"),
        ("body", "committed"),
        ("body", "name_en"),
    }
    assert _contributors(session) == before
    ok = client.post(
        url,
        headers=auth("admin"),
        json={
            "code": "GUANNAN",
            "name": "灌南县",
            "region_code": "320700",
            "committed": "5000000.00",
        },
    )
    assert ok.status_code == 201, ok.text
    over = client.post(
        "/api/v1/funds/XB_POOL/contributions",
        headers=auth("admin"),
        json={"contributor": "GUANNAN", "amount": "5000000.01", "paid_on": "2026-03-31"},
    )
    assert over.status_code == 422
    assert over.json()["errors"][0]["code"] == "contribution_exceeds_commitment"


def test_contributor_refusals_unknown_fund_duplicate_and_role(
    client: TestClient,
    auth,
    session: Session,  # type: ignore[no-untyped-def]
) -> None:
    before = _contributors(session)
    body = {"code": "JS_FINANCE", "name": "江苏省财政厅"}
    missing = client.post("/api/v1/funds/NOPE/contributors", headers=auth("admin"), json=body)
    assert missing.status_code == 404 and missing.json()["code"] == "not_found"
    listed = client.get("/api/v1/funds/NOPE/contributors", headers=auth("regulator"))
    assert listed.status_code == 404
    dup = client.post("/api/v1/funds/SKD_PROV/contributors", headers=auth("admin"), json=body)
    assert dup.status_code == 409 and dup.json()["code"] == "already_exists"
    assert [e["loc"] for e in dup.json()["errors"]] == [["body", "code"], ["body", "name"]]
    # the same code on another fund is another contributor's account
    assert client.post(
        "/api/v1/funds/SKD_PROV/contributors",
        headers=auth("admin"),
        json={"code": "FINANCE_320100", "name": "江苏省财政厅"},
    ).json()["errors"] == [
        {
            "loc": ["body", "name"],
            "msg": "SKD_PROV already has a contributor 江苏省财政厅",
            "msg_zh": "对象已存在",
            "code": "already_exists",
        }
    ]
    for user in ("fund_province", "regulator", "bank_jsb"):
        r = client.post(
            "/api/v1/funds/SKD_PROV/contributors",
            headers=auth(user),
            json={"code": "JS_TECH", "name": "江苏省科学技术厅"},
        )
        assert r.status_code == 403 and r.json()["code"] == "role_not_allowed", user
    assert _contributors(session) == before


def test_l4_contributor_registration_replays_by_idempotency_key(
    client: TestClient,
    auth,
    session: Session,  # type: ignore[no-untyped-def]
) -> None:
    headers = {**auth("admin"), "Idempotency-Key": "contributor-1"}
    body = {"code": "JS_TECH", "name": "江苏省科学技术厅", "region_code": "320000"}
    first = client.post("/api/v1/funds/SKD_PROV/contributors", headers=headers, json=body)
    assert first.status_code == 201 and "idempotent-replayed" not in first.headers
    again = client.post("/api/v1/funds/SKD_PROV/contributors", headers=headers, json=body)
    assert (again.status_code, again.json()) == (201, first.json())
    assert again.headers["idempotent-replayed"] == "true"
    other = client.post(
        "/api/v1/funds/SKD_PROV/contributors", headers=headers, json={**body, "code": "JS_TECH2"}
    )
    assert other.status_code == 409 and other.json()["code"] == "idempotency_key_reused"
    rows = session.scalars(
        select(FundContributor.code).where(FundContributor.fund_code == "SKD_PROV")
    ).all()
    assert sorted(rows) == ["JS_FINANCE", "JS_TECH"]
