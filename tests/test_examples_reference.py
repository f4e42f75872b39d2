"""The console's prefilled requests work (issue #15 part 5), for the reference data,
users, ledger, calendar, reports and evaluations: every request example the served
document gives — a request model's `examples` and an operation's named examples — is
sent as the user it is meant for and is accepted (2xx); each 201 names the created
object in `Location`, and that URL reads it back. Every parameter of these operations
carries a description (English and Chinese) and, but the opaque cursor, an example.

Examples are taken from `app.openapi()`, as Swagger UI shows them, and sent on the
minimal seed (the same banks, funds and usernames as the demo) with the business date
2026-12-01, so the 2026-Q3 evaluations and reports the examples name are closed."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import date
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session, sessionmaker

from app.auth.principal import Principal
from app.config import Settings
from app.kit.clock import Clock
from app.main import create_app
from app.models import Agreement, Fund, LedgerEntry, User
from app.reference import service as reference

EXAMPLES_TODAY = date(2026, 12, 1)

# the operations these tests cover: reference data, users, ledger, calendar, reports and
# evaluations (the library's and the claims' routes under these paths are not theirs)
MINE = re.compile(
    r"^/api/v1/(auth|users|regions|banks(/[^/]+)?$|funds|lpr-rates|agreements"
    r"|enterprises(/batch|/\{credit_code\})?$|ledger|calendar|reports|evaluations)"
)


@pytest.fixture
def app(settings: Settings, engine: Engine, session_factory: sessionmaker[Session]) -> FastAPI:
    return create_app(
        settings, engine=engine, session_factory=session_factory, clock=Clock(EXAMPLES_TODAY)
    )


@pytest.fixture
def client(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app, raise_server_exceptions=False) as c:
        yield c


def _operations(app: FastAPI) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, methods in app.openapi()["paths"].items():
        if MINE.match(path):
            for method, op in methods.items():
                yield method, path, op


def _body_examples(doc: dict[str, Any], op: dict[str, Any]) -> list[tuple[str, Any]]:
    """(name, example) of the operation's JSON body as Swagger UI offers them: its named
    examples (the dropdown) where it has some, else its schema's `examples`."""
    media = op.get("requestBody", {}).get("content", {}).get("application/json")
    if media is None:
        return []
    named = [(name, e["value"]) for name, e in media.get("examples", {}).items()]
    if named:
        return named
    schema = media["schema"]
    if "$ref" in schema:
        schema = doc["components"]["schemas"][schema["$ref"].rsplit("/", 1)[-1]]
    return [(f"schema[{i}]", e) for i, e in enumerate(schema.get("examples", []))]


def _path_example(op: dict[str, Any], name: str) -> Any:
    param = next(p for p in op.get("parameters", []) if p["in"] == "path" and p["name"] == name)
    return (param.get("examples") or [param["schema"].get("examples", [None])[0]])[0]


def _agreement(session: Session, bank: str, fund: str) -> int:
    return session.scalars(
        select(Agreement.id).where(Agreement.bank_code == bank, Agreement.fund_code == fund)
    ).one()


def _entries(session: Session, n: int) -> list[int]:
    return list(session.scalars(select(LedgerEntry.id).order_by(LedgerEntry.id).limit(n)))


def test_every_request_example_is_accepted_as_its_user(
    client: TestClient, auth, session: Session, app: FastAPI
) -> None:  # type: ignore[no-untyped-def]
    """Each documented request example of these operations, sent as the role it is for
    (the operation's path parameters from the document's examples where they name seed
    objects), answers 2xx; a 201's `Location` reads the object back."""
    doc = app.openapi()
    # the one precondition the seed lacks: a fund-wide stop to lift (XB-Q2)
    pool = session.get(Fund, "XB_POOL")
    committee = session.scalars(select(User).where(User.username == "committee")).one()
    assert pool is not None
    reference.set_fund_status(
        session, pool, "stop", reason="代偿率超过警戒线", actor=Principal.of(committee)
    )
    session.commit()
    first, second = _entries(session, 2)

    def xb_run(period: str) -> int:
        body = {"kind": "quarterly", "program": "XB", "period": period}
        r = client.post("/api/v1/reports/runs", headers=auth("fund_xb"), json=body)
        assert r.status_code == 201, r.text
        return int(r.json()["id"])

    # (operationId, example name) -> (user, path parameters, or None: the document's)
    plan: dict[str, Any] = {
        "create_user": "admin",
        "create_region": "admin",
        "create_bank": "admin",
        "create_fund": "admin",
        "register_contributor": "admin",
        "resume_fund": "committee",
        "create_agreement": "admin",
        "suspend_agreement": (
            "province",
            lambda _: {"agreement_id": _agreement(session, "JSB", "SKD_CITY_320100")},
        ),
        "resume_agreement": (
            "province",
            lambda _: {"agreement_id": _agreement(session, "BOC_JS", "SKD_CITY_320700")},
        ),
        "terminate_agreement": (
            "province",
            lambda _: {"agreement_id": _agreement(session, "ICBC_JS", "SKD_CITY_320100")},
        ),
        "create_lpr": "admin",
        "create_enterprise": "admin",
        "create_enterprise_batch": "bank_jsb",
        "update_enterprise": "admin",
        "reverse_entry": ("admin", lambda name: {"entry_id": first if name == "today" else second}),
        "contribute": (
            "admin",
            lambda name: {"code": "XB_POOL" if name == "xb_district" else "SKD_PROV"},
        ),
        "publish_calendar_year": "admin",
        "rerun": lambda name: "fund_xb" if name in ("monthly", "annual") else "regulator",
        "submit_report_run": (
            "fund_xb",
            lambda name: {"run_id": xb_run({"default": "2026-Q3"}.get(name, "2026-Q2"))},
        ),
        "quarter_end": lambda name: "fund_xb" if name == "xb" else "province",
    }
    sent: list[str] = []
    for method, path, op in _operations(app):
        examples = _body_examples(doc, op)
        if not examples:
            continue
        op_id = op["operationId"]
        assert op_id in plan, f"{op_id} has request examples and no user in this test"
        for name, body in examples:
            how = plan[op_id]
            user, params = how if isinstance(how, tuple) else (how, None)
            user = user(name) if callable(user) else user
            values = params(name) if params else {}
            url = re.sub(
                r"\{([^}]+)\}",
                lambda m, op=op, values=values: str(
                    values.get(m.group(1), _path_example(op, m.group(1)))
                ),
                path,
            )
            r = client.request(method.upper(), url, headers=auth(user), json=body)
            assert 200 <= r.status_code < 300, f"{op_id} example {name}: {r.status_code} {r.text}"
            if r.status_code == 201:
                where = r.headers.get("location")
                assert where and where.startswith("/api/v1/"), f"{op_id}: no Location"
                back = client.get(where, headers=auth(user if user != "bank_jsb" else "admin"))
                assert back.status_code == 200, f"{op_id}: GET {where} {back.status_code}"
            sent.append(f"{op_id}:{name}")
    # every operation with a body of these modules was tried, each with its examples
    assert {s.split(":")[0] for s in sent} == set(plan)
    assert len(sent) >= 30


def test_location_names_what_was_created(client: TestClient, auth) -> None:  # type: ignore[no-untyped-def]
    """`Location` of a 201 is the created object's own URL, read back identical."""
    h = auth("admin")
    bank = client.post(
        "/api/v1/banks",
        headers=h,
        json={
            "code": "ABC_JS",
            "name": "中国农业银行江苏省分行",
            "unit_level": "provincial_branch",
        },
    )
    assert bank.status_code == 201 and bank.headers["location"] == "/api/v1/banks/ABC_JS"
    assert client.get(bank.headers["location"], headers=h).json() == bank.json()
    agreement = client.post(
        "/api/v1/agreements",
        headers=h,
        json={
            "bank_code": "ABC_JS",
            "program": "SKD",
            "fund_code": "SKD_CITY_320500",
            "region_code": "320500",
            "start_on": "2026-04-01",
        },
    )
    assert agreement.status_code == 201, agreement.text
    assert agreement.headers["location"] == f"/api/v1/agreements/{agreement.json()['id']}"
    assert client.get(agreement.headers["location"], headers=h).json() == agreement.json()
    paid = client.post(
        "/api/v1/funds/SKD_PROV/contributions",
        headers=h,
        json={"contributor": "JS_FINANCE", "amount": "1000.00", "paid_on": "2026-03-31"},
    )
    assert paid.status_code == 201, paid.text
    entry = client.get(paid.headers["location"], headers=h).json()
    assert entry["id"] == paid.json()["entry_id"] and entry["event_type"] == "contribution"
    rate = client.post(
        "/api/v1/lpr-rates", headers=h, json={"effective_on": "2026-11-20", "rate_bp": 295}
    )
    assert rate.headers["location"] == "/api/v1/lpr-rates/in-force?on=2026-11-20"
    assert client.get(rate.headers["location"], headers=h).json() == rate.json()


def test_every_parameter_is_described_with_an_example(app: FastAPI) -> None:
    """Query and path parameters carry a description in English and Chinese and an
    example (the opaque `cursor` has no meaningful example)."""
    missing = []
    for method, path, op in _operations(app):
        for p in op.get("parameters", []):
            if p["in"] not in ("query", "path"):
                continue
            where = f"{method.upper()} {path} {p['name']}"
            text = p.get("description", "")
            if not re.search(r"[\u4e00-\u9fff]", text) or not re.search(r"[A-Za-z]{3}", text):
                missing.append(f"{where}: description {text!r}")
            has_example = "examples" in p or "example" in p or "examples" in p.get("schema", {})
            if p["name"] != "cursor" and not has_example:
                missing.append(f"{where}: no example")
    assert missing == []


def test_every_request_body_has_an_example(app: FastAPI) -> None:
    doc = app.openapi()
    bare = [
        f"{method.upper()} {path}"
        for method, path, op in _operations(app)
        if "application/json" in op.get("requestBody", {}).get("content", {})
        and not _body_examples(doc, op)
    ]
    assert bare == []


def test_cross_field_problems_are_listed_at_once(client: TestClient, auth) -> None:  # type: ignore[no-untyped-def]
    """A fund and an agreement with several problems list every one, each with its code;
    the top-level code is the first one's (docs/api.md Errors)."""
    h = auth("admin")
    fund = client.post(
        "/api/v1/funds",
        headers=h,
        json={
            "code": "SKD_CITY_320200",
            "name": "无锡市苏科贷风险补偿资金",
            "program": "SKD",
            "kind": "city",
            "parent_code": "XB_POOL",
        },
    )
    assert fund.status_code == 422
    assert fund.json()["code"] == "field_required"
    assert [(e["loc"], e["code"]) for e in fund.json()["errors"]] == [
        (["body", "region_code"], "field_required"),
        (["body", "parent_code"], "field_not_allowed"),
    ]
    assert all(e["msg_zh"] for e in fund.json()["errors"])
    agreement = client.post(
        "/api/v1/agreements",
        headers=h,
        json={
            "bank_code": "NO_SUCH_BANK",
            "program": "XB",
            "fund_code": "SKD_CITY_320100",
            "region_code": "320500",
            "start_on": "2026-04-01",
        },
    )
    assert agreement.status_code == 422
    assert agreement.json()["code"] == "unknown_reference"
    assert [(e["loc"][-1], e["code"]) for e in agreement.json()["errors"]] == [
        ("bank_code", "unknown_reference"),
        ("fund_code", "fund_program_mismatch"),
        ("region_code", "agreement_region_mismatch"),
    ]
    assert agreement.json()["detail_zh"].startswith("引用的对象不存在")


def test_evaluations_are_a_page_newest_first(client: TestClient, auth) -> None:  # type: ignore[no-untyped-def]
    """SKD-Q3, XB-Q1: `GET /evaluations` answers a page (`items`, `next_cursor`) of the
    stored runs, newest first, filtered by `program`; a bank sees its own rows."""
    made = []
    for user, program, quarter in (
        ("province", "SKD", 2),
        ("fund_xb", "XB", 2),
        ("province", "SKD", 3),
    ):
        r = client.post(
            "/api/v1/evaluations/quarter-end",
            headers=auth(user),
            json={"program": program, "year": 2026, "quarter": quarter},
        )
        assert r.status_code == 201, r.text
        assert r.headers["location"] == f"/api/v1/evaluations/{r.json()['id']}"
        made.append(r.json()["id"])
    h = auth("regulator")
    first = client.get("/api/v1/evaluations?limit=2", headers=h).json()
    assert set(first) == {"items", "next_cursor"}
    assert [e["id"] for e in first["items"]] == [made[2], made[1]]
    rest = client.get(f"/api/v1/evaluations?limit=2&cursor={first['next_cursor']}", headers=h)
    assert [e["id"] for e in rest.json()["items"]][:1] == [made[0]]
    skd = client.get("/api/v1/evaluations?program=SKD", headers=h).json()["items"]
    assert [e["id"] for e in skd][:2] == [made[2], made[0]]
    assert all(e["program"] == "SKD" for e in skd)
    own = client.get("/api/v1/evaluations?limit=500", headers=auth("bank_jsb")).json()["items"]
    assert own and all(b["bank_code"] == "JSB" for e in own for b in e["banks"])
    bad = client.get("/api/v1/evaluations?cursor=@@@", headers=h)
    assert bad.status_code == 422 and bad.json()["code"] == "invalid_cursor"
    assert bad.json()["errors"][0]["loc"] == ["query", "cursor"]


def test_refusal_codes_of_these_modules_have_classes(app: FastAPI) -> None:
    """Every code these operations document is a registered error class with an
    English and a Chinese title (what `/problems/{code}` shows)."""
    from app.errors import ERRORS

    for _, _, op in _operations(app):
        for response in op["responses"].values():
            for code in response.get("x-problem-codes", []):
                error = ERRORS[code]
                assert error.title and re.search(r"[\u4e00-\u9fff]", error.title_zh), code
