"""Every input a 4xx (M-5, API.md Conventions): every list's `cursor` and every date
query parameter of every GET operation in the document, crafted or extreme, answers a
problem the operation documents or a page — never a 5xx."""

from __future__ import annotations

import base64
import json
from datetime import UTC, date, datetime
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from app.config import Settings
from app.kit import dates
from app.main import create_app

PATH_VALUES = {
    "bank_code": "JSB",
    "code": "SKD_PROV",
    "credit_code": "91320100MA1XA00014",
    "program": "SKD",
    "year": "2026",
    "month": "3",
}


def _cursor(payload: Any) -> str:
    raw = json.dumps(payload).encode() if not isinstance(payload, bytes) else payload
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


CRAFTED = [
    _cursor({"k": "abc"}),
    _cursor({"k": 5}),
    _cursor({"k": -(2**70)}),
    _cursor({"d": "2026-01-01"}),
    _cursor({"d": "0001-01-01"}),
    _cursor({"k": None}),
    _cursor({"k": 1.5}),
    _cursor({"k": [1]}),
    _cursor({"k": "x" * 300}),
    _cursor({"k": "2026-01-01|1|x"}),
    _cursor({"k": "\x00"}),  # PostgreSQL's text cannot hold a NUL (a 500 hypothesis found)
    _cursor([]),
    _cursor(b"\xff\xfe"),
    "not base64 !",
    "",
]
# cursors that are well-formed keys of some list (an id, a code, a date), and the empty
# one some lists read as "the first page"
USABLE = {
    "",
    _cursor({"k": "abc"}),
    _cursor({"k": 5}),
    _cursor({"d": "2026-01-01"}),
    _cursor({"d": "0001-01-01"}),
    _cursor({"k": "x" * 300}),
    _cursor({"k": "2026-01-01|1|x"}),
}
DATES = ["0001-01-01", "1900-01-01", "9999-12-31", "2026-02-30", "20260101", "-1"]


def _gets(app: FastAPI, param_kind: str) -> list[tuple[str, str]]:
    """(path, query parameter) of every GET taking a `cursor` (param_kind "cursor") or
    a date-typed query parameter (param_kind "date")."""
    out = []
    for path, ops in app.openapi()["paths"].items():
        op = ops.get("get")
        if op is None or not path.startswith("/api/v1/"):
            continue
        if any(f"{{{p}}}" in path for p in ("claim_id", "loan_id", "run_id", "entry_id")):
            continue  # an object id: covered by the ObjectId bounds
        url = path
        for name, value in PATH_VALUES.items():
            url = url.replace(f"{{{name}}}", value)
        if "{" in url:
            continue
        for param in op.get("parameters", []):
            if param["in"] != "query":
                continue
            schema = json.dumps(param.get("schema", {}))
            if (param_kind == "cursor" and param["name"] == "cursor") or (
                param_kind == "date" and '"format": "date"' in schema
            ):
                out.append((url, param["name"]))
    return out


def _problem_or_ok(r: Any, where: str) -> None:
    assert r.status_code < 500, (where, r.status_code, r.text[:300])
    if r.status_code >= 400:
        assert r.headers["content-type"].startswith("application/problem+json"), where


@pytest.mark.parametrize("user", ["admin", "regulator"])
def test_every_list_refuses_a_crafted_cursor_with_a_4xx(
    app: FastAPI,
    client: TestClient,
    auth,
    user: str,  # type: ignore[no-untyped-def]
) -> None:
    lists = _gets(app, "cursor")
    assert len(lists) >= 15
    for url, name in lists:
        for cursor in CRAFTED:
            r = client.get(url, params={name: cursor}, headers=auth(user))
            _problem_or_ok(r, f"{url}?cursor={cursor}")
            refused = r.status_code == 422 and r.json()["code"] == "invalid_cursor"
            # a crafted cursor is refused, unless the list refused the call before
            # reading it (a missing parameter, a role) or it decodes to a usable key
            assert refused or r.status_code != 200 or cursor in USABLE, (url, cursor)


def test_every_date_query_parameter_refuses_extremes_with_a_4xx(
    app: FastAPI,
    client: TestClient,
    auth,  # type: ignore[no-untyped-def]
) -> None:
    params = _gets(app, "date")
    assert len(params) >= 10
    for url, name in params:
        for day in DATES:
            r = client.get(url, params={name: day}, headers=auth("regulator"))
            _problem_or_ok(r, f"{url}?{name}={day}")


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    payload=st.recursive(
        st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=40),
        lambda inner: (
            st.lists(inner, max_size=3)
            | st.dictionaries(st.sampled_from(["k", "d", "x"]), inner, max_size=2)
        ),
        max_leaves=6,
    )
)
def test_random_cursors_never_reach_the_database_as_a_wrong_type(
    client: TestClient,
    auth,
    payload: Any,  # type: ignore[no-untyped-def]
) -> None:
    headers = auth("regulator")
    for url in ("/api/v1/loans", "/api/v1/ledger/accounts", "/api/v1/claims/overdue"):
        r = client.get(url, params={"cursor": _cursor(payload)}, headers=headers)
        _problem_or_ok(r, f"{url} {payload!r}")


@pytest.mark.parametrize("day", ["0001-01-01", "1900-01-01", "9999-12-31"])
def test_absurd_dates_in_bodies_are_422_and_write_nothing(
    client: TestClient,
    auth,
    day: str,  # type: ignore[no-untyped-def]
) -> None:
    """A contribution dated 9999-12-31 once made the Beancount export fail for good."""
    headers = auth("admin")
    before = client.get("/api/v1/ledger/trial-balance", headers=auth("regulator")).json()
    r = client.post(
        "/api/v1/funds/SKD_CITY_320100/contributions",
        headers=headers,
        json={"contributor": "FINANCE_320100", "amount": "1000.00", "paid_on": day},
    )
    assert r.status_code == 422, r.text
    (error,) = r.json()["errors"]
    assert error["loc"] == ["body", "paid_on"] and "must be on or" in error["msg"]
    after = client.get("/api/v1/ledger/trial-balance", headers=auth("regulator")).json()
    assert after == before
    export = client.get("/api/v1/ledger/export.beancount", headers=auth("regulator"))
    assert export.status_code == 200
    r = client.post(
        "/api/v1/lpr-rates",
        headers=headers,
        json={"effective_on": day, "one_year_bp": 300, "five_year_bp": 350},
    )
    assert r.status_code == 422
    assert any(e["loc"][:2] == ["body", "effective_on"] for e in r.json()["errors"]), r.json()


def test_the_input_window_is_a_setting(
    engine: Engine, session_factory: sessionmaker[Session]
) -> None:
    """INPUT_DATE_MIN and INPUT_YEARS_AHEAD set the window of body dates: a service
    configured for 2000-01-01 … 5 years ahead refuses 1999-12-31 and a date 6 years
    ahead, which the default window (1950 … 50 years) accepts."""
    base = Settings(_env_file=None, database_url=str(engine.url))  # type: ignore[call-arg]
    first = datetime.now(UTC).date().replace(day=1)
    ahead = first.replace(year=first.year + 6)
    narrow = base.model_copy(update={"input_date_min": date(2000, 1, 1), "input_years_ahead": 5})
    try:
        create_app(narrow, engine=engine, session_factory=session_factory)
        assert dates.input_date_problem(date(1999, 12, 31)) == "must be on or after 2000-01-01"
        assert "at most 5 years ahead" in (dates.input_date_problem(ahead) or "")
        assert dates.input_date_problem(date(2000, 1, 1)) is None
    finally:
        create_app(base, engine=engine, session_factory=session_factory)
    assert dates.input_date_problem(date(1999, 12, 31)) is None
    assert dates.input_date_problem(ahead) is None
