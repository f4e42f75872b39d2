"""What an integrator of the loans side relies on (issue: a contract a generated client
can trust): `Location` on every 201, a strong `ETag` on a loan with `If-None-Match` → 304
and `If-Match` → 412 on the calls that change it, the list's filters (`contract_no`
after a timeout, `enterprise_credit_code`, every loan status and only those), the
enterprise on every loan, a stable top-level `code` (the first failed rule's, every one
in `errors`), a page under `/problems/` for every code, cross-field problems listed at
once, and request examples that the service accepts."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.errors import ERRORS
from app.loans.schedule import violations as schedule_violations
from app.loans.schemas import (
    RENEWAL_EXAMPLE,
    SKD_FILING_EXAMPLE,
    SKD_SCHEDULE_EXAMPLE,
    XB_CREDIT_FILING_EXAMPLE,
    XB_GUARANTEED_FILING_EXAMPLE,
    LoanFile,
    LoanRenewal,
)
from app.loans.status import loan_statuses
from app.models import DelinquencyReport, LoanRepayment
from tests.fixtures.factories import enterprise, member_enterprise, xb_enterprise

URL = "/api/v1/loans"
Headers = Any  # the conftest's `auth` fixture: auth("bank_jsb") → headers


def _skd(code: str, contract: str, **kw: Any) -> dict[str, Any]:
    """A valid SKD1 filing at 江苏银行 on the suite's business date (2026-03-31)."""
    body = {
        "program": "SKD",
        "enterprise_credit_code": code,
        "contract_no": contract,
        "principal": "1000000.00",
        "annual_rate_bp": 345,
        "disbursed_on": "2026-03-30",
        "maturity_on": "2027-03-30",
        "security": "credit",
        "controller_guarantee": True,
    }
    return {**body, **kw}


def _file(client: TestClient, auth: Headers, body: dict[str, Any], bank: str = "bank_jsb") -> Any:
    r = client.post(URL, headers=auth(bank), json=body)
    assert r.status_code == 201, r.text
    return r


def _problem_page(client: TestClient, code: str) -> dict[str, Any]:
    page = client.get(f"/problems/{code}", headers={"Accept": "application/json"})
    assert page.status_code == 200, (code, page.text)
    return page.json()  # type: ignore[no-any-return]


# --- Location ---------------------------------------------------------------------------
def test_a_filing_answers_location_and_it_reads_the_loan_with_its_enterprise(
    client: TestClient, auth: Headers, session: Session
) -> None:
    member = member_enterprise(session, region="320100")
    r = _file(client, auth, _skd(member.credit_code, "LC-LOC-1"))
    loan = r.json()
    assert r.headers["Location"] == f"{URL}/{loan['id']}"
    assert (loan["enterprise_credit_code"], loan["enterprise_name"]) == (
        member.credit_code,
        member.name,
    )
    there = client.get(r.headers["Location"], headers=auth("bank_jsb"))
    assert there.status_code == 200
    detail = there.json()
    assert (detail["id"], detail["contract_no"], detail["enterprise_name"]) == (
        loan["id"],
        "LC-LOC-1",
        member.name,
    )
    listed = client.get(URL, headers=auth("bank_jsb"), params={"contract_no": "LC-LOC-1"})
    [item] = listed.json()["items"]
    assert (item["enterprise_credit_code"], item["enterprise_name"]) == (
        member.credit_code,
        member.name,
    )


def test_repayment_arrears_report_and_renewal_answer_location(
    client: TestClient, auth: Headers, session: Session
) -> None:
    """Repayments and arrears reports point at the loan they are listed on; a renewal
    (SKD-F7) at the new loan."""
    member = member_enterprise(session, region="320100")
    loan_id = _file(client, auth, _skd(member.credit_code, "LC-LOC-2")).json()["id"]
    paid = client.post(
        f"{URL}/{loan_id}/repayments",
        headers=auth("bank_jsb"),
        json={"paid_on": "2026-03-31", "principal": "100.00"},
    )
    assert paid.status_code == 201, paid.text
    assert paid.headers["Location"] == f"{URL}/{loan_id}"
    report = client.post(
        f"{URL}/{loan_id}/delinquency",
        headers=auth("bank_jsb"),
        json={
            "as_of": "2026-03-31",
            "overdue_since": None,
            "principal_overdue": "0.00",
            "interest_overdue": "0.00",
        },
    )
    assert report.status_code == 201, report.text
    assert report.headers["Location"] == f"{URL}/{loan_id}"
    renewal = client.post(
        f"{URL}/{loan_id}/renewal",
        headers=auth("bank_jsb"),
        json={**RENEWAL_EXAMPLE, "disbursed_on": "2026-03-31", "maturity_on": "2027-03-31"},
    )
    assert renewal.status_code == 201, renewal.text
    new = renewal.json()
    assert renewal.headers["Location"] == f"{URL}/{new['id']}" and new["id"] != loan_id
    assert new["renewed_from_id"] == loan_id


def test_library_admission_and_status_file_answer_location(
    client: TestClient, auth: Headers, session: Session
) -> None:
    candidate = enterprise(session, region="320100")
    admitted = client.post(
        f"/api/v1/enterprises/{candidate.credit_code}/library-admission",
        headers=auth("city_nanjing"),
        json={"comment": "符合条件"},
    )
    assert admitted.status_code == 201, admitted.text
    where = admitted.headers["Location"]
    assert where == f"/api/v1/enterprises/{candidate.credit_code}/library"
    assert client.get(where, headers=auth("bank_jsb")).json()["member"] is True
    sent = client.post(
        "/api/v1/status-reports/2026/2",
        headers={**auth("bank_jsb"), "Content-Type": "application/json"},
        content=b'{"rows": []}',
    )
    assert sent.status_code == 201, sent.text
    where = sent.headers["Location"]
    assert where == f"/api/v1/status-reports/2026/2?version={sent.json()['version']}"
    assert client.get(where, headers=auth("bank_jsb")).json()["id"] == sent.json()["id"]


# --- ETag, If-None-Match, If-Match ---------------------------------------------------
def test_a_loan_has_a_strong_etag_and_if_none_match_answers_304(
    client: TestClient, auth: Headers, session: Session
) -> None:
    member = member_enterprise(session, region="320100")
    loan_id = _file(client, auth, _skd(member.credit_code, "LC-TAG-1")).json()["id"]
    url = f"{URL}/{loan_id}"
    first = client.get(url, headers=auth("bank_jsb"))
    etag = first.headers["ETag"]
    assert etag.startswith('"') and etag.endswith('"') and not etag.startswith("W/")
    assert client.get(url, headers=auth("bank_jsb")).headers["ETag"] == etag  # stable
    same = client.get(url, headers={**auth("bank_jsb"), "If-None-Match": etag})
    assert same.status_code == 304 and same.content == b"" and same.headers["ETag"] == etag
    other_day = client.get(url, headers=auth("bank_jsb"), params={"as_of": "2026-12-31"})
    assert other_day.headers["ETag"] != etag  # another representation, another tag
    stale = client.get(url, headers={**auth("bank_jsb"), "If-None-Match": '"stale"'})
    assert stale.status_code == 200 and stale.json()["id"] == loan_id
    client.post(
        f"{url}/repayments",
        headers=auth("bank_jsb"),
        json={"paid_on": "2026-03-31", "principal": "1000.00"},
    )
    changed = client.get(url, headers={**auth("bank_jsb"), "If-None-Match": etag})
    assert changed.status_code == 200 and changed.headers["ETag"] != etag
    assert changed.json()["outstanding_principal"] == "999000.00"


def test_a_change_on_a_stale_view_is_412_and_writes_nothing(
    client: TestClient, auth: Headers, session: Session
) -> None:
    """Two clerks read the loan; one repays with If-Match; the other's If-Match is then
    stale: 412 `precondition_failed` on a repayment, an arrears report and a renewal,
    nothing written. With the current tag, or without If-Match, the call goes through."""
    member = member_enterprise(session, region="320100")
    loan_id = _file(client, auth, _skd(member.credit_code, "LC-TAG-2")).json()["id"]
    url = f"{URL}/{loan_id}"
    read = client.get(url, headers=auth("bank_jsb")).headers["ETag"]
    repay = {"paid_on": "2026-03-31", "principal": "100.00"}
    first = client.post(
        f"{url}/repayments", headers={**auth("bank_jsb"), "If-Match": read}, json=repay
    )
    assert first.status_code == 201, first.text
    repayments = session.scalar(select(func.count()).select_from(LoanRepayment))
    reports = session.scalar(select(func.count()).select_from(DelinquencyReport))
    stale = {**auth("bank_jsb"), "If-Match": read}
    calls = [
        ("repayments", repay),
        (
            "delinquency",
            {
                "as_of": "2026-03-31",
                "overdue_since": None,
                "principal_overdue": "0.00",
                "interest_overdue": "0.00",
            },
        ),
        ("renewal", {**RENEWAL_EXAMPLE, "disbursed_on": "2026-03-31", "maturity_on": "2027-03-31"}),
    ]
    for path, body in calls:
        r = client.post(f"{url}/{path}", headers=stale, json=body)
        assert r.status_code == 412, (path, r.text)
        problem = r.json()
        assert problem["code"] == "precondition_failed" and problem["detail_zh"]
        assert r.headers["ETag"] != read  # the current tag, to read again with
    session.expire_all()
    assert session.scalar(select(func.count()).select_from(LoanRepayment)) == repayments
    assert session.scalar(select(func.count()).select_from(DelinquencyReport)) == reports
    view = client.get(url, headers=auth("bank_jsb"))
    assert view.json()["status"] == "active"
    current = {**auth("bank_jsb"), "If-Match": view.headers["ETag"]}
    ok = client.post(f"{url}/repayments", headers=current, json=repay)
    assert ok.status_code == 201, ok.text
    anyway = client.post(f"{url}/repayments", headers=auth("bank_jsb"), json=repay)
    assert anyway.status_code == 201, anyway.text
    star = client.post(
        f"{url}/repayments", headers={**auth("bank_jsb"), "If-Match": "*"}, json=repay
    )
    assert star.status_code == 201, star.text
    page = _problem_page(client, "precondition_failed")
    assert page["status"] == 412 and "report_repayment" in page["operations"]


def test_if_match_on_another_banks_loan_is_404_not_412(
    client: TestClient, auth: Headers, session: Session
) -> None:
    member = member_enterprise(session, region="320100")
    loan_id = _file(client, auth, _skd(member.credit_code, "LC-TAG-3")).json()["id"]
    r = client.post(
        f"{URL}/{loan_id}/repayments",
        headers={**auth("bank_icbc"), "If-Match": '"whatever"'},
        json={"paid_on": "2026-03-31", "principal": "1.00"},
    )
    assert r.status_code == 404 and r.json()["code"] == "not_found"


# --- filters and the enterprise on every loan ----------------------------------------
def test_contract_no_finds_a_filing_whose_answer_was_lost(
    client: TestClient, auth: Headers, session: Session
) -> None:
    """A bank whose filing timed out looks it up by its contract number: exactly that
    loan, and only its own bank's."""
    member = member_enterprise(session, region="320100")
    other = member_enterprise(session, region="320100")
    client.post(URL, headers=auth("bank_jsb"), json=_skd(member.credit_code, "LC-LOST-1"))
    _file(client, auth, _skd(other.credit_code, "LC-LOST-2"))
    found = client.get(URL, headers=auth("bank_jsb"), params={"contract_no": "LC-LOST-1"})
    assert found.status_code == 200, found.text
    [loan] = found.json()["items"]
    assert (loan["contract_no"], loan["enterprise_credit_code"]) == (
        "LC-LOST-1",
        member.credit_code,
    )
    none = client.get(URL, headers=auth("bank_jsb"), params={"contract_no": "LC-LOST-9"})
    assert none.json()["items"] == []
    elsewhere = client.get(URL, headers=auth("bank_icbc"), params={"contract_no": "LC-LOST-1"})
    assert elsewhere.json()["items"] == []  # another bank does not see it
    by_code = client.get(
        URL,
        headers=auth("bank_jsb"),
        params={"enterprise_credit_code": other.credit_code.lower()},
    )
    assert [x["contract_no"] for x in by_code.json()["items"]] == ["LC-LOST-2"]
    # the watch list names the enterprise too (M-6: due 2027-03-30, claim threshold +90)
    watched = client.get(
        f"{URL}/watch",
        headers=auth("bank_jsb"),
        params={"as_of": "2027-06-01", "within_days": 60},
    )
    assert watched.status_code == 200, watched.text
    mine = {x["contract_no"]: x for x in watched.json()["items"]}
    assert (mine["LC-LOST-2"]["enterprise_credit_code"], mine["LC-LOST-2"]["enterprise_name"]) == (
        other.credit_code,
        other.name,
    )


def test_status_takes_every_loan_status_and_refuses_another_naming_them(
    client: TestClient, auth: Headers, session: Session
) -> None:
    member = member_enterprise(session, region="320100")
    _file(client, auth, _skd(member.credit_code, "LC-STATUS-1"))
    assert set(loan_statuses()) >= {"active", "repaid", "renewed", "claimed", "compensated"}
    for status in loan_statuses():
        r = client.get(URL, headers=auth("bank_jsb"), params={"status": status})
        assert r.status_code == 200, (status, r.text)
        assert all(x["status"] == status for x in r.json()["items"])
    active = client.get(URL, headers=auth("bank_jsb"), params={"status": "active"}).json()
    assert "LC-STATUS-1" in {x["contract_no"] for x in active["items"]}
    wrong = client.get(URL, headers=auth("bank_jsb"), params={"status": "manager_reviewed"})
    assert wrong.status_code == 422
    problem = wrong.json()
    assert problem["code"] == "validation_error"
    [error] = problem["errors"]
    assert error["loc"] == ["query", "status"]
    assert all(s in error["msg"] for s in loan_statuses())
    enum = client.app.openapi()["paths"][URL]["get"]["parameters"]  # type: ignore[attr-defined]
    status_param = next(p for p in enum if p["name"] == "status")
    assert status_param["schema"]["anyOf"][0]["enum"] == list(loan_statuses())


# --- a stable top-level code ------------------------------------------------------------
def test_two_failed_rules_answer_the_first_ones_code_and_list_both(
    client: TestClient, auth: Headers, session: Session
) -> None:
    """SKD-P1 (rate cap) is checked before SKD-P2 (no fees on a credit loan): `code` is
    rate_above_cap with both in `errors`; with only the fee wrong it is fees_not_allowed.
    Every code of `errors` has its page under /problems."""
    member = member_enterprise(session, region="320100")
    two = client.post(
        URL,
        headers=auth("bank_jsb"),
        json=_skd(member.credit_code, "LC-CODE-1", annual_rate_bp=351, fee_rate_bp=10),
    )
    assert two.status_code == 422, two.text
    body = two.json()
    assert body["code"] == "rate_above_cap" and body["type"] == "/problems/rate_above_cap"
    assert [(e["code"], e["rule"]) for e in body["errors"]] == [
        ("rate_above_cap", "SKD-P1"),
        ("fees_not_allowed", "SKD-P2"),
    ]
    assert "rule" not in body  # two rules: none is the whole refusal's
    assert all(e["msg_zh"] == ERRORS[e["code"]].title_zh for e in body["errors"])
    one = client.post(
        URL,
        headers=auth("bank_jsb"),
        json=_skd(member.credit_code, "LC-CODE-2", fee_rate_bp=10),
    )
    assert one.status_code == 422
    assert (one.json()["code"], one.json()["rule"]) == ("fees_not_allowed", "SKD-P2")
    for code in {e["code"] for e in body["errors"]} | {one.json()["code"]}:
        page = _problem_page(client, code)
        assert page["title_zh"] and "file_loan" in page["operations"]


def test_a_repayment_refusal_names_its_first_problem(
    client: TestClient, auth: Headers, session: Session
) -> None:
    member = member_enterprise(session, region="320100")
    loan_id = _file(client, auth, _skd(member.credit_code, "LC-CODE-3")).json()["id"]
    r = client.post(
        f"{URL}/{loan_id}/repayments",
        headers=auth("bank_jsb"),
        json={"paid_on": "2026-04-01", "principal": "1000000.01"},
    )
    assert r.status_code == 422
    body = r.json()
    assert body["code"] == "in_future"
    assert [e["code"] for e in body["errors"]] == ["in_future", "overpayment"]
    for code in ("in_future", "overpayment"):
        _problem_page(client, code)


def test_every_code_the_loan_routes_document_has_a_page_and_a_chinese_title(
    client: TestClient,
) -> None:
    doc = client.app.openapi()  # type: ignore[attr-defined]
    mine = [
        op
        for path, methods in doc["paths"].items()
        if path.startswith(("/api/v1/loans", "/api/v1/status-reports", "/api/v1/programs"))
        or path.endswith(("/library", "/library-admission", "/library-removal"))
        for op in methods.values()
    ]
    codes = {
        code
        for op in mine
        for response in op["responses"].values()
        for code in response.get("x-problem-codes", [])
    }
    assert {"filing_deadline_passed", "precondition_failed", "status_file_refused"} <= codes
    for code in sorted(codes):
        page = _problem_page(client, code)
        assert page["title_zh"] and page["title_zh"] != page["title"], code


def test_the_status_files_row_codes_have_pages(client: TestClient, auth: Headers) -> None:
    """A refused status file keeps its summary code (`status_file_refused`); each row's
    code in `errors` has its own page."""
    r = client.post(
        "/api/v1/status-reports/2026/2",
        headers={**auth("bank_jsb"), "Content-Type": "text/csv"},
        content=(
            b"contract_no,outstanding,overdue_since,principal_overdue,interest_overdue,status\n"
            b"A-1,12.345,,0.00,0.00,current\n"
            b"A-1,1.00,2026-02-30,0.00,0.00,lost\n"
        ),
    )
    assert r.status_code == 422, r.text
    body = r.json()
    assert body["code"] == "status_file_refused"
    found = {e["code"] for e in body["errors"]}
    assert {"invalid_amount", "invalid_date", "invalid_status"} <= found
    for code in found:
        _problem_page(client, code)


# --- cross-field problems at once; examples the service takes -------------------------
def test_cross_field_problems_of_a_filing_are_listed_at_once(
    client: TestClient, auth: Headers, session: Session
) -> None:
    member = member_enterprise(session, region="320100")
    r = client.post(
        URL,
        headers=auth("bank_jsb"),
        json=_skd(
            member.credit_code,
            "LC-X-1",
            principal="0.00",
            maturity_on="2026-03-01",
            sub_fund="XB_KCD",
        ),
    )
    assert r.status_code == 422 and r.json()["code"] == "validation_error"
    assert sorted(tuple(e["loc"]) for e in r.json()["errors"]) == [
        ("body", "maturity_on"),
        ("body", "principal"),
        ("body", "sub_fund"),
    ]


@pytest.mark.parametrize(
    "example",
    [
        SKD_FILING_EXAMPLE,
        SKD_SCHEDULE_EXAMPLE,
        XB_CREDIT_FILING_EXAMPLE,
        XB_GUARANTEED_FILING_EXAMPLE,
    ],
)
def test_the_filing_examples_are_well_formed(example: dict[str, Any]) -> None:
    """The documented examples pass the request's own checks (fields, cross-field, the
    schedule, M-6); the demo's data decides the rest."""
    data = LoanFile.model_validate(example)
    assert schedule_violations(data) == []
    LoanRenewal.model_validate(RENEWAL_EXAMPLE)


def test_the_filing_examples_are_accepted_on_a_business_day_that_fits(
    client: TestClient, auth: Headers, session: Session
) -> None:
    """The SKD and both XB examples, with this suite's enterprises and dates (the demo's
    differ), are filed as they stand: 201, the XB guaranteed one with its letter."""
    member = member_enterprise(session, region="320100")
    moved = {"disbursed_on": "2026-03-30", "maturity_on": "2027-03-30"}
    skd = {**SKD_FILING_EXAMPLE, **moved, "enterprise_credit_code": member.credit_code}
    assert _file(client, auth, skd).json()["product"] == "SKD1"
    for example in (XB_CREDIT_FILING_EXAMPLE, XB_GUARANTEED_FILING_EXAMPLE):
        body = {**example, **moved, "enterprise_credit_code": xb_enterprise(session).credit_code}
        if "guarantor_consent" in body:
            body["guarantor_consent"] = {**body["guarantor_consent"], "dated_on": "2026-03-27"}
        loan = _file(client, auth, body, bank="bank_lyg").json()
        assert loan["compensable"] is True, loan


def test_every_request_body_of_the_loans_side_has_an_example(client: TestClient) -> None:
    doc = client.app.openapi()  # type: ignore[attr-defined]
    schemas = doc["components"]["schemas"]
    for name in (
        "LoanFile",
        "LoanRenewal",
        "LoanBatchIn",
        "RepaymentIn",
        "DelinquencyIn",
        "QuotaIn",
        "AdmissionIn",
        "RemovalIn",
        "InstalmentIn",
        "GuarantorConsentIn",
    ):
        assert schemas[name].get("examples"), name
    filing = doc["paths"][URL]["post"]["requestBody"]["content"]["application/json"]
    assert {"skd", "xb_credit", "xb_guaranteed"} <= set(filing["examples"])


def test_the_demo_documents_filing_examples_move_with_its_business_date(
    settings: Any, engine: Any, session_factory: Any, session: Session, auth: Headers
) -> None:
    """The demo's Swagger UI prefills a filing disbursed on its business date, whatever
    that date (SKD-F2, XB-F2: the examples, written for 2026-12-01, would be filed late a
    week later): on 2027-03-15 every filing example of `POST /loans` is disbursed that day
    with its other dates moved alike, and the SKD one, sent as served (this suite's
    enterprise), is filed on time. The committed contract keeps the written dates."""
    from app.kit.clock import Clock
    from app.main import create_app
    from app.openapi_export import export_openapi

    later = create_app(
        settings, engine=engine, session_factory=session_factory, clock=Clock(date(2027, 3, 15))
    )
    doc = later.openapi()
    named = doc["paths"]["/api/v1/loans"]["post"]["requestBody"]["content"]["application/json"]
    served = {name: e["value"] for name, e in named["examples"].items()}
    assert served and {e["disbursed_on"] for e in served.values()} == {"2027-03-15"}
    assert {e["maturity_on"] for e in served.values()} == {"2028-03-14"}  # 104 days later too
    consent = [e["guarantor_consent"]["dated_on"] for e in served.values() if "guarantor" in e]
    assert consent == ["2027-03-11"]  # four days before, as written
    skd = next(e for e in served.values() if e["program"] == "SKD" and "schedule" not in e)
    member = member_enterprise(session, region="320100")
    body = {**skd, "enterprise_credit_code": member.credit_code}
    with TestClient(later, raise_server_exceptions=False) as c:
        r = c.post("/api/v1/loans", json=body, headers=auth("bank_jsb"))
    assert r.status_code == 201, r.text
    assert r.json()["filed_late"] is False and r.json()["compensable"] is True
    assert SKD_FILING_EXAMPLE["disbursed_on"] == "2026-12-01"  # the written examples unmoved
    assert '"disbursed_on": "2026-12-01"' in export_openapi()
