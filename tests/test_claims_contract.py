"""The claims side of the contract a generated client and the console rely on: every
claim in its own programme's words and naming its loan (SKD-C1, XB-C2), every workflow
status as a filter, `awaiting=me` per role and scope read from the workflows, the
overdue steps as a page (XB-C2), `Location` on 201, `ETag` / `If-None-Match` → 304 /
stale `If-Match` → 412 with nothing written, another programme's stage as a documented
409, a stable top-level `code`, and request examples that are valid."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from typing import Any

import pytest
from pydantic import BaseModel
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session, sessionmaker

from app.claims import endpoints, returns
from app.claims import schemas as s
from app.claims.schemas import OverdueOut
from app.config import Settings
from app.models import Claim, ClaimTransition
from app.programs.base import registered_programs
from app.programs.fields import claim_statuses
from tests.fixtures.api import PDF, Api, api_fixture
from tests.fixtures.factories import NOW, principal, skd_claim, xb_claim, xb_loan


@pytest.fixture
def api(  # type: ignore[no-untyped-def]
    settings: Settings, engine: Engine, session_factory: sessionmaker[Session], auth
) -> Iterator[Api]:
    yield from api_fixture(settings, engine, session_factory, auth)


def _raw(api: Api, day: str, user: str, method: str, url: str, **kw: Any) -> Any:
    headers = api.auth(user) | kw.pop("headers", {})
    return api.on(day).request(method, "/api/v1" + url, headers=headers, **kw)


def _documented(api: Api, method: str, path: str, status: int) -> list[str]:
    doc = api.on("2026-03-31").app.openapi()  # type: ignore[attr-defined]
    response = doc["paths"]["/api/v1" + path][method]["responses"].get(str(status), {})
    return list(response.get("x-problem-codes", []))


def _returned(session: Session, claim: Claim, by: str, deficiencies: list[str]) -> Claim:
    returns.return_for_correction(
        session,
        claim_id=claim.id,
        deficiencies=[returns.Deficiency(code, "见说明") for code in deficiencies],
        comment="请补正后重新提交",
        actor=principal(session, by),
        today=claim.filed_on,
        now=NOW,
    )
    session.commit()
    return claim


# --- XB wording and the loan's names -----------------------------------------------
def test_xb_c2_claims_speak_their_own_programme_and_name_their_loan(
    api: Api, session: Session
) -> None:
    """XB-C2: a paid XB claim says 已支付代偿资金 (never SKD's 已拨付银行，待省级归垫); one
    waiting for the committee names the committee; each claim carries its loan's
    contract number and enterprise, in the list and alone."""
    loans = [xb_loan(session) for _ in range(2)]  # filed before an approval uses XB-Q1
    paid = xb_claim(session, loan=loans[0], status="paid")
    waiting = xb_claim(session, loan=loans[1], status="manager_reviewed")
    skd = skd_claim(session, status="paid")
    one = api.call("2026-03-31", "regulator", "GET", f"/claims/{paid.id}")
    assert one["status"] == "paid"
    assert (one["status_zh"], one["status_en"]) == ("已支付代偿资金，办结", "compensation paid")
    assert one["next_step"] is None
    skd_view = api.call("2026-09-30", "regulator", "GET", f"/claims/{skd.id}")
    assert skd_view["status_zh"] == "已拨付银行，待省级归垫"  # the same status, SKD's words
    assert skd_view["next_step"]["stage"] == "province_reimbursement"
    queue = api.call("2026-03-31", "committee", "GET", f"/claims/{waiting.id}")
    assert queue["status_zh"] == "基金管理人已出具尽职审查意见，待会审"
    assert queue["next_step"] == {
        "stage": "committee_decision",
        "who": "the committee 补偿会审",
        "endpoint": f"POST /api/v1/claims/{waiting.id}/committee-decision",
    }
    loan = api.call("2026-03-31", "regulator", "GET", f"/loans/{paid.loan_id}")
    assert one["contract_no"] == loan["contract_no"]
    assert one["enterprise_credit_code"] == loan["enterprise_credit_code"]
    assert one["enterprise_name"] and one["enterprise_name"] == loan["enterprise_name"]
    listed = api.call("2026-03-31", "regulator", "GET", "/claims?program=XB")["items"]
    by_id = {c["id"]: c for c in listed}
    assert by_id[paid.id]["contract_no"] == loan["contract_no"]
    assert by_id[waiting.id]["contract_no"] != loan["contract_no"]


def test_claims_filter_by_contract_number_and_enterprise(api: Api, session: Session) -> None:
    a, b = xb_claim(session), skd_claim(session)
    a_view = api.call("2026-03-31", "regulator", "GET", f"/claims/{a.id}")
    b_view = api.call("2026-03-31", "regulator", "GET", f"/claims/{b.id}")
    by_contract = api.call(
        "2026-03-31", "regulator", "GET", f"/claims?contract_no={a_view['contract_no']}"
    )["items"]
    assert [c["id"] for c in by_contract] == [a.id]
    code = b_view["enterprise_credit_code"]
    by_enterprise = api.call(
        "2026-03-31", "regulator", "GET", f"/claims?enterprise_credit_code={code}"
    )["items"]
    assert [c["id"] for c in by_enterprise] == [b.id]
    # another bank's claim is not found by its contract number
    other = api.call(
        "2026-03-31", "bank_ccb", "GET", f"/claims?contract_no={a_view['contract_no']}"
    )["items"]
    assert other == []


# --- status filter ---------------------------------------------------------------------
def test_every_workflow_status_is_a_filter_and_a_wrong_one_lists_them(
    api: Api, session: Session
) -> None:
    """Every status of every programme's workflow is accepted (`manager_reviewed`, XB's
    committee queue, among them); another is 422 naming the allowed values."""
    waiting = xb_claim(session, status="manager_reviewed")
    statuses = claim_statuses()
    derived = set().union(*(p.workflow.statuses for p in registered_programs()))
    assert set(statuses) == derived and "manager_reviewed" in statuses
    for status in statuses:
        r = _raw(api, "2026-03-31", "regulator", "GET", f"/claims?status={status}")
        assert r.status_code == 200, (status, r.text)
    queue = api.call("2026-03-31", "committee", "GET", "/claims?status=manager_reviewed")
    assert [c["id"] for c in queue["items"]] == [waiting.id]
    wrong = _raw(api, "2026-03-31", "regulator", "GET", "/claims?status=waiting")
    assert wrong.status_code == 422
    body = wrong.json()
    assert body["code"] == "validation_error"
    assert body["errors"][0]["loc"] == ["query", "status"]
    assert "manager_reviewed" in body["errors"][0]["msg"] and "city_approved" in str(body)
    doc = api.on("2026-03-31").app.openapi()  # type: ignore[attr-defined]
    param = next(
        p for p in doc["paths"]["/api/v1/claims"]["get"]["parameters"] if p["name"] == "status"
    )
    enum = param["schema"].get("enum") or next(
        x["enum"] for x in param["schema"].get("anyOf", []) if "enum" in x
    )
    assert set(enum) == set(statuses)


# --- awaiting=me -----------------------------------------------------------------------
def test_awaiting_me_per_role_and_scope(api: Api, session: Session) -> None:
    """SKD-C1, SKD-C3, XB-C2: `awaiting=me` is the caller's queue, read from the
    workflows: a city reviewer its region's pending city reviews only; the province its
    reviews; a city fund's manager its fund's payments; the province fund's manager the
    reimbursements; the XB managers the due-diligence reviews and the payments they did
    not review (maker-checker); the committee its decisions; a bank its claims returned
    to it for correction."""
    sz = skd_claim(session)  # 苏州, waiting for the city review
    nj = skd_claim(session, bank="bank_jsb", region="320100")  # 南京
    city_ok = skd_claim(session, status="city_approved")
    approved = skd_claim(session, status="approved")
    paid = skd_claim(session, status="paid")
    skd_back = _returned(session, skd_claim(session), "city_suzhou", ["document_missing"])
    loans = [xb_loan(session) for _ in range(4)]  # filed before an approval uses XB-Q1
    x_new = xb_claim(session, loan=loans[0])
    x_reviewed = xb_claim(session, loan=loans[1], status="manager_reviewed")
    x_approved = xb_claim(session, loan=loans[2], status="approved")
    x_back = _returned(session, xb_claim(session, loan=loans[3]), "fund_xb", ["other"])
    skd_claim(session, status="reimbursed")  # decided: waits for nobody

    def queue(user: str, day: str = "2026-09-30") -> set[int]:
        page = api.call(day, user, "GET", "/claims?awaiting=me&limit=500")
        assert page["next_cursor"] is None
        return {c["id"] for c in page["items"]}

    assert queue("city_suzhou") == {sz.id}
    assert queue("city_nanjing") == {nj.id}
    assert queue("city_lyg") == set()
    assert queue("province") == {city_ok.id}
    assert queue("fund_suzhou") == {approved.id}
    assert queue("fund_nanjing") == set()
    assert queue("fund_province") == {paid.id}
    assert queue("fund_xb") == {x_new.id}  # it reviewed x_approved: another pays (SKD-C3)
    assert queue("fund_xb_pay") == {x_new.id, x_approved.id}
    assert queue("committee") == {x_reviewed.id}
    assert queue("bank_ccb") == {skd_back.id}
    assert queue("bank_lyg") == {x_back.id}
    assert queue("bank_jsb") == set()
    assert queue("regulator") == set()
    # each listed claim's next step is the caller's
    mine = api.call("2026-09-30", "committee", "GET", "/claims?awaiting=me")["items"]
    assert [c["next_step"]["stage"] for c in mine] == ["committee_decision"]
    # filters combine with it
    assert api.call("2026-09-30", "fund_xb_pay", "GET", "/claims?awaiting=me&status=approved")[
        "items"
    ][0]["id"] == (x_approved.id)
    # the bank resubmits: the claim is back in the queue of the reviewer who returned it,
    # who may review it again (a return is acting on that stage, SKD-C3)
    api.call(
        "2026-09-02",
        "bank_ccb",
        "POST",
        f"/claims/{skd_back.id}/resubmission",
        json={"comment": "已补充逾期证明"},
    )
    assert queue("bank_ccb") == set()
    assert queue("city_suzhou") == {sz.id, skd_back.id}
    api.review("city-review", "city_suzhou", skd_back.id, "2026-09-03")
    assert queue("city_suzhou") == {sz.id}
    assert queue("province") == {city_ok.id, skd_back.id}


# --- the overdue steps, a page ---------------------------------------------------------
def test_xb_c2_overdue_steps_are_a_page_with_the_same_items(api: Api, session: Session) -> None:
    """XB-C2: three claims whose manager's opinion is past due, two a page; the items
    keep their fields; a cursor this list did not issue is refused."""
    late = [xb_claim(session) for _ in range(3)]
    first = api.call("2026-03-31", "fund_xb", "GET", "/claims/overdue?limit=2")
    assert set(first) == {"items", "next_cursor"} and len(first["items"]) == 2
    assert all(set(x) == set(OverdueOut.model_fields) for x in first["items"])
    assert first["next_cursor"]
    rest = api.call(
        "2026-03-31", "fund_xb", "GET", f"/claims/overdue?limit=2&cursor={first['next_cursor']}"
    )
    assert len(rest["items"]) == 1 and rest["next_cursor"] is None
    items = first["items"] + rest["items"]
    assert sorted(x["claim_id"] for x in items) == sorted(c.id for c in late)
    assert {x["stage"] for x in items} == {"manager_review"}
    assert items == sorted(items, key=lambda x: (x["deadline"], x["claim_id"]))
    whole = api.call("2026-03-31", "fund_xb", "GET", "/claims/overdue")
    assert whole["items"] == items and whole["next_cursor"] is None
    for bad in ("nonsense", "eyJrIjogMX0"):  # garbage; a cursor of another list ({"k": 1})
        r = _raw(api, "2026-03-31", "fund_xb", "GET", f"/claims/overdue?cursor={bad}")
        assert (r.status_code, r.json()["code"]) == (422, "invalid_cursor")


# --- Location, ETag, If-None-Match, If-Match --------------------------------------------
def test_location_on_a_filed_claim_and_its_documents(api: Api, session: Session) -> None:
    r = _raw(
        api,
        "2026-02-10",
        "bank_lyg",
        "POST",
        "/claims",
        json={
            "loan_id": _fresh_xb_loan(session),
            "lawsuit_case_no": "(2026)苏0706民初77号",
            "lawsuit_accepted_on": "2026-02-02",
        },
    )
    assert r.status_code == 201, r.text
    created = r.json()
    assert r.headers["Location"] == f"/api/v1/claims/{created['id']}"
    followed = _raw(api, "2026-02-10", "bank_lyg", "GET", r.headers["Location"][len("/api/v1") :])
    assert followed.status_code == 200 and followed.json()["id"] == created["id"]
    assert r.headers["ETag"] == followed.headers["ETag"]
    up = _raw(
        api,
        "2026-02-10",
        "bank_lyg",
        "POST",
        f"/claims/{created['id']}/documents",
        files={"file": ("申请书.pdf", PDF, "application/pdf")},
        data={"kind": "application"},
    )
    assert up.status_code == 201
    assert up.headers["Location"] == up.json()["download"]
    got = _raw(api, "2026-02-10", "bank_lyg", "GET", up.headers["Location"][len("/api/v1") :])
    assert got.status_code == 200 and got.content == PDF


def _fresh_xb_loan(session: Session) -> int:
    return xb_loan(session).id


def test_etag_if_none_match_and_a_stale_if_match(api: Api, session: Session) -> None:
    """SKD-C1 under concurrency of people: a reviewer who acts on a view that changed
    since they read it gets 412 and nothing is written; acting on the current view works
    and answers the ETag a GET then gives. 304 while the claim is unchanged."""
    claim = skd_claim(session)
    url = f"/claims/{claim.id}"
    first = _raw(api, "2026-09-02", "city_suzhou", "GET", url)
    tag = first.headers["ETag"]
    assert tag.startswith('"') and tag.endswith('"')
    same = _raw(api, "2026-09-02", "city_suzhou", "GET", url, headers={"If-None-Match": tag})
    assert (same.status_code, same.content, same.headers["ETag"]) == (304, b"", tag)
    again = _raw(api, "2026-09-02", "regulator", "GET", url)
    assert again.headers["ETag"] == tag  # the representation is the claim's, not the caller's
    # meanwhile the bank adds a document: the reviewer's view is stale
    api.upload("bank_ccb", claim.id, "2026-09-02")
    history = _history_count(session, claim.id)
    stale = _raw(
        api,
        "2026-09-02",
        "city_suzhou",
        "POST",
        f"{url}/city-review",
        json={"decision": "approve", "comment": "材料齐全"},
        headers={"If-Match": tag},
    )
    assert stale.status_code == 412
    body = stale.json()
    assert body["code"] == "precondition_failed"
    assert "precondition_failed" in _documented(api, "post", "/claims/{claim_id}/city-review", 412)
    session.expire_all()
    assert session.get(Claim, claim.id).status == "submitted"  # type: ignore[union-attr]
    assert _history_count(session, claim.id) == history
    now = _raw(api, "2026-09-02", "city_suzhou", "GET", url)
    assert now.headers["ETag"] != tag and stale.headers["ETag"] == now.headers["ETag"]
    done = _raw(
        api,
        "2026-09-02",
        "city_suzhou",
        "POST",
        f"{url}/city-review",
        json={"decision": "approve", "comment": "材料齐全"},
        headers={"If-Match": now.headers["ETag"]},
    )
    assert done.status_code == 200 and done.json()["status"] == "city_approved"
    after = _raw(api, "2026-09-02", "province", "GET", url)
    assert done.headers["ETag"] == after.headers["ETag"] != now.headers["ETag"]
    # any current tag (`*`) and no header at all are not conditional
    star = _raw(
        api,
        "2026-09-08",
        "province",
        "POST",
        f"{url}/return",
        json={"deficiencies": [{"code": "amount_wrong"}], "comment": "金额有误"},
        headers={"If-Match": "*"},
    )
    assert star.status_code == 200 and star.json()["status"] == "returned"
    # the bank resubmits on the view it read before the return: 412, still returned
    late = _raw(
        api,
        "2026-09-09",
        "bank_ccb",
        "POST",
        f"{url}/resubmission",
        json={"comment": "已更正"},
        headers={"If-Match": after.headers["ETag"]},
    )
    assert (late.status_code, late.json()["code"]) == (412, "precondition_failed")
    session.expire_all()
    assert session.get(Claim, claim.id).status == "returned"  # type: ignore[union-attr]


def _history_count(session: Session, claim_id: int) -> int:
    return int(
        session.scalar(
            select(func.count())
            .select_from(ClaimTransition)
            .where(ClaimTransition.claim_id == claim_id)
        )
        or 0
    )


def test_document_download_answers_304_while_unchanged(api: Api, session: Session) -> None:
    claim = skd_claim(session)
    view = api.call("2026-09-02", "bank_ccb", "GET", f"/claims/{claim.id}")
    url = view["documents"][0]["download"][len("/api/v1") :]
    first = _raw(api, "2026-09-02", "city_suzhou", "GET", url)
    assert (
        first.status_code == 200
        and first.headers["ETag"] == f'"{first.headers["X-Content-SHA256"]}"'
    )
    cached = _raw(
        api,
        "2026-09-02",
        "city_suzhou",
        "GET",
        url,
        headers={"If-None-Match": first.headers["ETag"]},
    )
    assert (cached.status_code, cached.content) == (304, b"")
    other = _raw(api, "2026-09-02", "city_suzhou", "GET", url, headers={"If-None-Match": '"x"'})
    assert other.status_code == 200 and other.content == first.content


# --- another programme's stage ------------------------------------------------------------
def test_a_stage_of_the_other_programme_is_a_documented_409(api: Api, session: Session) -> None:
    """SKD-C1, XB-C2: a stage endpoint called on a claim of the other programme is 409
    `stage_not_in_programme` (documented on the operation), never a 500; XB-R2's refunds
    and receipts on an SKD claim are 409 `not_offered_by_programme`."""
    xb = xb_claim(session, status="manager_reviewed")
    skd = skd_claim(session, status="approved")
    cases = [
        ("province", f"/claims/{xb.id}/province-review", {"decision": "approve"}),
        ("committee", f"/claims/{skd.id}/committee-decision", {"decision": "approve"}),
        ("fund_province", f"/claims/{skd.id}/payment", {"paid_on": "2026-09-20"}),
        ("fund_xb", f"/claims/{xb.id}/city-payment", {"paid_on": "2026-09-20"}),
        ("committee", f"/claims/{skd.id}/steps/committee_decision", {"decision": "approve"}),
    ]
    for user, url, body in cases:
        r = _raw(api, "2026-09-20", user, "POST", url, json=body)
        assert r.status_code == 409, (url, r.text)
        problem = r.json()
        assert problem["code"] == "stage_not_in_programme"
        assert problem["errors"][0]["loc"] == ["path", "stage"]
        template = "/claims/{claim_id}/" + url.split("/", 3)[3]
        if "/steps/" in url:
            template = "/claims/{claim_id}/steps/{stage}"
        assert "stage_not_in_programme" in _documented(api, "post", template, 409)
    session.expire_all()
    assert (session.get(Claim, xb.id).status, session.get(Claim, skd.id).status) == (  # type: ignore[union-attr]
        "manager_reviewed",
        "approved",
    )
    for path in ("receipts", "abandonment"):
        body = (
            {"received_on": "2026-09-20", "amount": "1.00"}
            if path == "receipts"
            else {"decided_on": "2026-09-20", "reason": "放弃催收"}
        )
        r = _raw(api, "2026-09-20", "fund_province", "POST", f"/claims/{skd.id}/{path}", json=body)
        assert (r.status_code, r.json()["code"]) == (409, "not_offered_by_programme")


# --- a stable top-level code ---------------------------------------------------------
def test_xb_c1_the_top_level_code_is_the_first_rules_whatever_the_count(
    api: Api, session: Session
) -> None:
    """XB-C1: a claim that breaks one rule and one that breaks three answer the same
    top-level `code` — the first rule's — with every rule in `errors`."""
    loan = xb_loan(session).id
    one = _raw(
        api,
        "2026-01-20",
        "bank_lyg",
        "POST",
        "/claims",
        json={
            "loan_id": loan,
            "lawsuit_case_no": "(2026)苏0706民初1号",
            "lawsuit_accepted_on": "2026-01-10",
        },
    ).json()
    three = _raw(api, "2026-01-20", "bank_lyg", "POST", "/claims", json={"loan_id": loan}).json()
    assert one["code"] == three["code"] == "not_yet_claimable"
    assert [e["code"] for e in three["errors"]] == [
        "not_yet_claimable",
        "lawsuit_required",
        "lawsuit_required",
    ]
    assert {e["rule"] for e in three["errors"]} == {"XB-C1"}
    assert three["type"] == "/problems/not_yet_claimable"
    assert all(e.get("msg_zh") for e in three["errors"])


# --- examples --------------------------------------------------------------------------
_BODIES: dict[str, type[BaseModel]] = {
    "FILE_EXAMPLES": s.ClaimFile,
    "REVIEW_EXAMPLES": s.ReviewIn,
    "MANAGER_REVIEW_EXAMPLES": s.ManagerReviewIn,
    "COMMITTEE_EXAMPLES": s.CommitteeIn,
    "PAYMENT_EXAMPLES": s.PaymentIn,
    "STEP_EXAMPLES": s.StepIn,
    "RETURN_EXAMPLES": s.ReturnIn,
    "RECOVERY_EXAMPLES": s.RecoveryIn,
    "ABANDONMENT_EXAMPLES": s.ClawbackIn,
    "FRAUD_EXAMPLES": s.ClawbackIn,
    "RECEIPT_EXAMPLES": s.ReceiptIn,
    "RESUBMISSION_EXAMPLES": s.ResubmissionIn,
}


def test_every_claim_request_example_is_valid_and_consistent() -> None:
    """Every example Swagger prefills validates against its model; the XB manager's
    review examples agree with XB-N (an approval with no finding, a rejection with
    one); deficiency codes are of the programmes' lists."""
    deficiency_codes = set().union(*(p.workflow.deficiencies for p in registered_programs()))
    for name, model in _BODIES.items():
        for key, example in getattr(endpoints, name).items():
            body = model.model_validate(example["value"])  # type: ignore[index]
            assert body is not None, (name, key)
            due_diligence = isinstance(body, s.ManagerReviewIn) or (
                isinstance(body, s.StepIn) and body.opinion
            )
            if due_diligence and body.decision is not None:  # type: ignore[union-attr]
                agrees = (body.decision == "approve") == (not body.findings)  # type: ignore[union-attr]
                assert agrees, (name, key)
            if isinstance(body, s.ReturnIn):
                assert {d.code for d in body.deficiencies} <= deficiency_codes
    for model in {*_BODIES.values(), s.DeficiencyIn}:
        for example in (model.model_config.get("json_schema_extra") or {}).get("examples", []):  # type: ignore[union-attr]
            model.model_validate(example)
    review = endpoints.MANAGER_REVIEW_EXAMPLES
    assert review["approve"]["value"]["findings"] == []  # type: ignore[index]
    assert review["reject"]["value"]["findings"] == ["XB-N8"]  # type: ignore[index]


def test_the_documented_examples_are_on_the_operations(api: Api) -> None:
    doc = api.on("2026-03-31").app.openapi()  # type: ignore[attr-defined]
    for path, name in [
        ("/claims", "FILE_EXAMPLES"),
        ("/claims/{claim_id}/city-review", "REVIEW_EXAMPLES"),
        ("/claims/{claim_id}/manager-review", "MANAGER_REVIEW_EXAMPLES"),
        ("/claims/{claim_id}/committee-decision", "COMMITTEE_EXAMPLES"),
        ("/claims/{claim_id}/return", "RETURN_EXAMPLES"),
        ("/claims/{claim_id}/recoveries", "RECOVERY_EXAMPLES"),
    ]:
        content = doc["paths"]["/api/v1" + path]["post"]["requestBody"]["content"]
        examples = content["application/json"]["examples"]
        assert set(examples) == set(getattr(endpoints, name)), path
        assert "string" not in str(examples)


def test_recovery_lists_every_problem_at_once(api: Api, session: Session) -> None:
    """SKD-R1: amount, costs and date are checked together: one call lists all."""
    claim = skd_claim(session, status="paid", filed=date(2026, 9, 1))
    r = _raw(
        api,
        "2026-09-10",
        "bank_ccb",
        "POST",
        f"/claims/{claim.id}/recoveries",
        json={"recovered_on": "2026-09-11", "amount": "0.00", "costs": "10.00"},
    )
    assert r.status_code == 422
    body = r.json()
    assert body["code"] == "recovery_not_positive"
    assert [(e["code"], e["loc"][-1]) for e in body["errors"]] == [
        ("recovery_not_positive", "amount"),
        ("costs_exceed_recovery", "costs"),
        ("invalid_date", "recovered_on"),
    ]
