"""The audit trail (API.md `GET /audit`): every change of a business record and every
successful state-changing request, in the request's own transaction, with who, when,
the request id and the values before and after; append-only on both databases."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Connection, Engine, func, select
from sqlalchemy.orm import Session, sessionmaker

from app.audit import capture
from app.config import Settings
from app.models import AuditEvent, Bank, Loan, User
from tests.fixtures.api import Api, api_fixture
from tests.fixtures.factories import member_enterprise, skd_claim
from tests.fixtures.ledger import raw_refused
from tests.fixtures.seed import CITY_REVIEWERS, credit_code


@pytest.fixture
def api(  # type: ignore[no-untyped-def]
    settings: Settings, engine: Engine, session_factory: sessionmaker[Session], auth
) -> Iterator[Api]:
    yield from api_fixture(settings, engine, session_factory, auth)


def rows(session: Session, request_id: str) -> list[AuditEvent]:
    session.expire_all()
    return list(
        session.scalars(
            select(AuditEvent).where(AuditEvent.request_id == request_id).order_by(AuditEvent.id)
        )
    )


def audit_count(session: Session) -> int:
    return int(session.scalar(select(func.count()).select_from(AuditEvent)) or 0)


def filing(code: str, contract_no: str = "AUD-2026-001") -> dict[str, Any]:
    return {
        "program": "SKD",
        "enterprise_credit_code": code,
        "contract_no": contract_no,
        "principal": "5000000.00",
        "annual_rate_bp": 350,
        "disbursed_on": "2026-03-24",
        "maturity_on": "2027-03-24",
        "security": "credit",
        "controller_guarantee": True,
    }


def test_a_filing_is_recorded_with_its_caller_request_and_values(
    client: TestClient, auth, session: Session
) -> None:  # type: ignore[no-untyped-def]
    """SKD-F1: the filed loan's row names the bank user, the request id the service
    echoes, the operation and every column (money in integer fen); the request's own row
    carries the status and the Location."""
    code = member_enterprise(session, region="320100", revenue_yuan=18_000_000).credit_code
    session.commit()
    headers = auth("bank_jsb") | {"X-Request-ID": "audit-filing-1"}
    r = client.post("/api/v1/loans", headers=headers, json=filing(code))
    assert r.status_code == 201, r.text
    assert r.headers["x-request-id"] == "audit-filing-1"
    loan_id = r.json()["id"]
    found = rows(session, "audit-filing-1")
    user = session.scalars(select(User).where(User.username == "bank_jsb")).one()
    assert {(e.actor, e.actor_user_id, e.actor_role) for e in found} == {
        ("bank_jsb", user.id, "bank")
    }
    assert {(e.method, e.path, e.operation_id, e.status) for e in found} == {
        ("POST", "/api/v1/loans", "file_loan", 201)
    }
    filed = [e for e in found if e.action == "loan.filed"]
    assert len(filed) == 1 and filed[0].subject_type == "loan"
    assert filed[0].subject_id == str(loan_id)
    assert filed[0].before is None and filed[0].after is not None
    assert filed[0].after["principal_fen"] == 500_000_000
    assert filed[0].after["contract_no"] == "AUD-2026-001"
    assert filed[0].after["disbursed_on"] == "2026-03-24"
    request = [e for e in found if e.action == "request"]
    assert len(request) == 1
    assert request[0].after == {"status": 201, "location": r.headers["location"]}
    assert (request[0].subject_type, request[0].subject_id) == ("loan", str(loan_id))
    assert found[-1].occurred_at.tzinfo is not None


def test_a_claim_step_records_the_status_change_before_and_after(
    api: Api, session: Session, auth
) -> None:  # type: ignore[no-untyped-def]
    """SKD-C1: the city review of a submitted claim: the claim's row has the status
    before and after and the reviewer; the request row names the claim."""
    claim = skd_claim(session)
    assert claim.status == "submitted" and claim.city_fund_code is not None
    reviewer = CITY_REVIEWERS[claim.city_fund_code[-6:]]
    r = api.on("2026-09-02").post(
        f"/api/v1/claims/{claim.id}/city-review",
        headers=auth(reviewer) | {"X-Request-ID": "audit-city-review"},
        json={"decision": "approve", "comment": "材料齐全"},
    )
    assert r.status_code == 200, r.text
    found = rows(session, "audit-city-review")
    step = [e for e in found if e.subject_type == "claim" and e.action != "request"]
    assert len(step) == 1, [(e.action, e.subject_type) for e in found]
    assert step[0].action == "claim.city_approved"
    assert step[0].subject_id == str(claim.id)
    assert step[0].before is not None and step[0].after is not None
    assert step[0].before["status"] == "submitted"
    assert step[0].after["status"] == "city_approved"
    assert set(step[0].before) == set(step[0].after)  # the changed columns only
    assert "loan_id" not in step[0].after
    assert {e.actor for e in found} == {reviewer}
    request = [e for e in found if e.action == "request"]
    assert [(e.subject_type, e.subject_id, e.status) for e in request] == [
        ("claim", str(claim.id), 200)
    ]
    assert request[0].operation_id == "city_review"


def test_admin_actions_user_creation_and_agreement_suspension(
    client: TestClient, auth, session: Session
) -> None:  # type: ignore[no-untyped-def]
    """An admin's new user (its password hash never copied), a suspension of an agreement
    by the programme's authority with its status before and after."""
    r = client.post(
        "/api/v1/users",
        headers=auth("admin") | {"X-Request-ID": "audit-new-user"},
        json={"username": "regulator_two", "password": "Js-regulator-2026!", "role": "regulator"},
    )
    assert r.status_code == 201, r.text
    created = [e for e in rows(session, "audit-new-user") if e.action == "user.created"]
    assert len(created) == 1 and created[0].subject_id == str(r.json()["id"])
    assert created[0].after is not None
    assert created[0].after["username"] == "regulator_two"
    assert created[0].after["password_hash"] == capture.REDACTED_VALUE
    assert created[0].actor == "admin" and created[0].actor_role == "admin"

    a = client.post(
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
    assert a.status_code == 201, a.text
    s = client.post(
        f"/api/v1/agreements/{a.json()['id']}/suspend",
        headers=auth("province") | {"X-Request-ID": "audit-suspend"},
        json={"reason": "不良率超过3%（SKD-Q3）"},
    )
    assert s.status_code == 200, s.text
    found = rows(session, "audit-suspend")
    suspended = [e for e in found if e.action == "agreement.suspended"]
    assert len(suspended) == 1 and suspended[0].subject_id == str(a.json()["id"])
    assert suspended[0].before == {"status": "active"}
    assert suspended[0].after == {"status": "suspended"}
    events = [e for e in found if e.subject_type == "agreement_event"]
    assert len(events) == 1 and events[0].after is not None
    assert events[0].after["reason"] == "不良率超过3%（SKD-Q3）"  # text as written


def test_a_user_disabled_outside_a_request_is_recorded_as_the_system(session: Session) -> None:
    """Work outside HTTP: no request fields, the label of who acts (`cli` here)."""
    user = session.scalars(select(User).where(User.username == "regulator")).one()
    capture.acting_as(session, "cli")
    user.is_active = False
    session.commit()
    e = session.scalars(
        select(AuditEvent)
        .where(AuditEvent.subject_type == "user", AuditEvent.subject_id == str(user.id))
        .order_by(AuditEvent.id.desc())
    ).first()
    assert e is not None
    assert (e.action, e.actor, e.actor_user_id, e.request_id, e.method, e.status) == (
        "user.disabled",
        "cli",
        None,
        None,
        None,
        None,
    )
    assert (e.before, e.after) == ({"is_active": True}, {"is_active": False})


def test_refused_requests_leave_no_audit_row(client: TestClient, auth, session: Session) -> None:  # type: ignore[no-untyped-def]
    """A refusal rolls the request back with its audit rows: a filing refused by a rule
    (its refusal is kept as a refused filing, not in the trail), a role refused, a
    conflict, bad input."""
    code = member_enterprise(session, region="320100", revenue_yuan=18_000_000).credit_code
    session.commit()
    before = audit_count(session)
    refused = [
        ("bank_jsb", "POST", "/api/v1/loans", filing(code) | {"principal": "99000000.00"}),
        ("bank_jsb", "POST", "/api/v1/users", {"username": "x", "password": "y", "role": "admin"}),
        ("admin", "POST", "/api/v1/users", {"username": "admin", "password": "Zq8#rT2!vLp9"}),
        ("admin", "POST", "/api/v1/banks", {"code": ""}),
    ]
    for n, (user, method, url, body) in enumerate(refused):
        rid = f"audit-refused-{n}"
        r = client.request(method, url, headers=auth(user) | {"X-Request-ID": rid}, json=body)
        assert 400 <= r.status_code < 500, (url, r.status_code, r.text)
        assert rows(session, rid) == [], url
    assert audit_count(session) == before


def test_reads_leave_no_audit_row(client: TestClient, auth, session: Session) -> None:  # type: ignore[no-untyped-def]
    r = client.get("/api/v1/loans", headers=auth("regulator") | {"X-Request-ID": "audit-read"})
    assert r.status_code == 200
    assert rows(session, "audit-read") == []


def test_a_rolled_back_savepoint_drops_what_was_captured_inside_it(session: Session) -> None:
    before = audit_count(session)
    bank = session.get(Bank, "JSB")
    assert bank is not None
    with session.begin_nested() as nested:
        bank.name = bank.name + " (renamed)"
        session.flush()
        nested.rollback()
    session.add(User(username="auditor_kept", password_hash="x", role="regulator"))
    session.commit()
    session.expire_all()
    new = list(session.scalars(select(AuditEvent).where(AuditEvent.id > 0)))[before:]
    assert [(e.action, e.subject_type) for e in new] == [("user.created", "user")]


def test_the_trail_is_append_only_on_both_databases(
    session: Session, connection: Connection, backend: str
) -> None:
    """UPDATE and DELETE of audit rows are refused by the database itself, whoever
    connects; TRUNCATE too on PostgreSQL."""
    bank = session.get(Bank, "JSB")
    assert bank is not None
    bank.name = bank.name + " 分行"
    session.commit()
    assert audit_count(session) >= 1
    for sql in (
        "UPDATE audit_events SET actor = 'someone else'",
        "UPDATE audit_events SET after = NULL WHERE id = (SELECT max(id) FROM audit_events)",
        "DELETE FROM audit_events",
    ):
        assert "append-only" in raw_refused(connection, sql), sql
    if backend == "postgresql":
        assert "append-only" in raw_refused(connection, "TRUNCATE audit_events")


def test_roles_bank_is_refused_regulator_and_admin_read(
    client: TestClient, auth, session: Session
) -> None:  # type: ignore[no-untyped-def]
    bank = session.get(Bank, "JSB")
    assert bank is not None
    bank.name = bank.name + " 总行"
    session.commit()
    refused = client.get("/api/v1/audit", headers=auth("bank_jsb"))
    assert refused.status_code == 403 and refused.json()["code"] == "role_not_allowed"
    assert client.get("/api/v1/audit").status_code == 401
    for user in ("regulator", "admin"):
        r = client.get("/api/v1/audit", headers=auth(user))
        assert r.status_code == 200, r.text
        first = r.json()["items"][0]
        assert (first["action"], first["subject_type"], first["subject_id"]) == (
            "bank.updated",
            "bank",
            "JSB",
        )
        one = client.get(f"/api/v1/audit/{first['id']}", headers=auth(user))
        assert one.status_code == 200 and one.json() == first
    assert client.get(f"/api/v1/audit/{first['id']}", headers=auth("bank_jsb")).status_code == 403
    missing = client.get("/api/v1/audit/999999999", headers=auth("regulator"))
    assert missing.status_code == 404 and missing.json()["code"] == "not_found"


def test_pages_newest_first_and_filters(client: TestClient, auth, session: Session) -> None:  # type: ignore[no-untyped-def]
    for n in range(5):
        r = client.post(
            "/api/v1/users",
            headers=auth("admin") | {"X-Request-ID": f"audit-page-{n}"},
            json={
                "username": f"regulator_p{n}",
                "password": "Js-regulator-2026!",
                "role": "regulator",
            },
        )
        assert r.status_code == 201, r.text
    reader = auth("regulator")
    query = {"action": "user.created", "actor": "admin", "limit": 2}
    seen: list[int] = []
    cursor = None
    while True:
        page = client.get(
            "/api/v1/audit", headers=reader, params=query | ({"cursor": cursor} if cursor else {})
        ).json()
        assert len(page["items"]) <= 2
        seen += [e["id"] for e in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == sorted(seen, reverse=True) and len(seen) == len(set(seen)) >= 5

    def ids(**params: Any) -> list[int]:
        r = client.get("/api/v1/audit", headers=reader, params=params | {"limit": 500})
        assert r.status_code == 200, r.text
        return [e["id"] for e in r.json()["items"]]

    by_request = client.get(
        "/api/v1/audit", headers=reader, params={"request_id": "audit-page-3"}
    ).json()["items"]
    assert {e["action"] for e in by_request} == {"user.created", "request"}
    created = next(e for e in by_request if e["action"] == "user.created")
    # the user's row and the request's (its Location names the user)
    assert set(ids(subject_type="user", subject_id=created["subject_id"])) == {
        e["id"] for e in by_request
    }
    assert set(ids(action="user.*")) >= set(seen[:5])
    assert ids(action="user_*") == []  # `_` is no wildcard
    assert ids(operation_id="create_user", request_id="audit-page-0") != []
    assert ids(actor="nobody") == []
    at = datetime.fromisoformat(created["occurred_at"])
    assert created["id"] in ids(since=(at - timedelta(seconds=1)).isoformat())
    assert created["id"] not in ids(until=(at - timedelta(seconds=1)).isoformat())
    assert created["id"] in ids(until=at.isoformat(), since=at.isoformat())
    assert ids(since="2199-01-01T00:00:00") == []  # no offset: UTC
    for bad in ({"since": "0001-01-01T00:00:00+14:00"}, {"until": "9999-12-31T23:59:59"}):
        r = client.get("/api/v1/audit", headers=reader, params=bad)
        assert r.status_code == 422 and r.json()["code"] == "validation_error", r.text
    crafted = client.get("/api/v1/audit", headers=reader, params={"cursor": "eyJrIjogImEifQ"})
    assert crafted.status_code == 422 and crafted.json()["code"] == "invalid_cursor"


def test_a_batch_of_enterprises_is_recorded_by_the_batch_writer(
    client: TestClient, auth, session: Session
) -> None:  # type: ignore[no-untyped-def]
    """Core inserts bypass the ORM's events: the batch writer records them itself — a
    row each up to `BULK_DETAIL`, above it one row with the count and the ids."""

    def item(n: int) -> dict[str, Any]:
        return {
            "credit_code": credit_code("320706", f"MA1U{n:05d}"),
            "name": f"连云港审计批量{n}号有限公司",
            "region_code": "320706",
            "registered_on": "2019-03-01",
            "prior_year_revenue": "8600000.00",
            "employees": 40,
        }

    few = client.post(
        "/api/v1/enterprises/batch",
        headers=auth("bank_lyg") | {"X-Request-ID": "audit-batch-few"},
        json={"items": [item(n) for n in range(2)]},
    )
    assert few.status_code == 200, few.text
    ids = [x["enterprise_id"] for x in few.json()["results"]]
    found = [e for e in rows(session, "audit-batch-few") if e.action == "enterprise.created"]
    assert [e.subject_id for e in found] == [str(i) for i in ids]
    assert found[0].after is not None and found[0].after["employees"] == 40
    assert found[0].after["prior_year_revenue_fen"] == 8_600_000_00

    many = client.post(
        "/api/v1/enterprises/batch",
        headers=auth("bank_lyg") | {"X-Request-ID": "audit-batch-many"},
        json={"items": [item(n) for n in range(100, 101 + capture.BULK_DETAIL)]},
    )
    assert many.status_code == 200, many.text
    ids = [x["enterprise_id"] for x in many.json()["results"]]
    found = [e for e in rows(session, "audit-batch-many") if e.action == "enterprise.created"]
    assert [(e.subject_type, e.subject_id) for e in found] == [("enterprise", None)]
    assert found[0].after == {"count": len(ids), "ids": ids}


def test_loans_inserted_by_core_are_recorded_one_by_one(session: Session) -> None:
    """Loans are inserted by a Core statement (COPY on PostgreSQL): each is recorded."""
    from tests.fixtures.factories import skd_loan

    before = audit_count(session)
    loan = skd_loan(session)
    session.commit()
    filed = session.scalars(
        select(AuditEvent).where(
            AuditEvent.action == "loan.filed", AuditEvent.subject_id == str(loan.id)
        )
    ).all()
    assert len(filed) == 1 and filed[0].after is not None
    assert filed[0].after["principal_fen"] == session.get(Loan, loan.id).principal_fen  # type: ignore[union-attr]
    assert audit_count(session) > before


def test_plain_values_as_json() -> None:
    assert capture.plain(date(2026, 3, 1)) == "2026-03-01"
    assert capture.plain(datetime(2026, 3, 1, 8, tzinfo=UTC)) == "2026-03-01T08:00:00+00:00"
    assert capture.plain(b"%PDF")["bytes"] == 4
    assert capture.plain("x" * 5000)["chars"] == 5000
    assert capture.plain({"a": [date(2026, 1, 1)]}) == {"a": ["2026-01-01"]}


@pytest.mark.parametrize(
    ("route", "params", "location", "subject"),
    [
        ("/api/v1/loans", {}, "http://testserver/api/v1/loans/17", ("loan", "17")),
        ("/api/v1/claims/{claim_id}/city-review", {"claim_id": 5}, None, ("claim", "5")),
        (
            "/api/v1/claims/{claim_id}/documents",
            {"claim_id": 5},
            "/api/v1/claims/5/documents/3",
            ("claim", "5"),
        ),
        (
            "/api/v1/status-reports/{year}/{month}",
            {"year": 2026, "month": 3},
            None,
            ("status_report", "2026/3"),
        ),
        ("/api/v1/banks", {}, "/api/v1/banks/JSB", ("bank", "JSB")),
        ("/api/v1/reports/runs", {}, "/api/v1/reports/runs/9", ("report_run", "9")),
        (
            "/api/v1/ledger/entries/{entry_id}/reversal",
            {"entry_id": 8},
            None,
            ("ledger_entry", "8"),
        ),
        ("/api/v1/auth/logout", {}, None, (None, None)),
    ],
)
def test_the_subject_of_a_request_row(
    route: str, params: dict[str, Any], location: str | None, subject: Any
) -> None:
    """The request row names what the path acts on, else what its `Location` created."""
    assert capture.request_subject(route, params, location) == subject
