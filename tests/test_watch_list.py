"""SPEC M-6: the watch list (loans about to cross a claim threshold — SKD-C2, XB-C1 — or
the NPL boundary, SKD-Q3) and the delinquency buckets, per bank and in the exposure view."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, timedelta
from typing import Any

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session, sessionmaker

from app.config import Settings
from app.evaluations.service import bank_ratios
from app.kit.money import format_fen
from app.loans import delinquency
from app.loans.arrears import arrears_of, bullet, schedules
from app.loans.delinquency import (
    _interest_paid,
    buckets,
    crossings,
    watch_candidates,
    watch_list,
)
from app.models import Loan
from app.programs.base import get_program
from app.programs.sukedai.policy import QUARTER_END
from tests.fixtures.api import Api, api_fixture
from tests.fixtures.factories import member_enterprise, xb_enterprise

D = date.fromisoformat


@pytest.fixture
def api(  # type: ignore[no-untyped-def]
    settings: Settings, engine: Engine, session_factory: sessionmaker[Session], auth
) -> Iterator[Api]:
    yield from api_fixture(settings, engine, session_factory, auth)


def _skd(
    api: Api,
    session: Session,
    maturity: str,
    *,
    bank: str = "bank_jsb",
    principal: str = "1000000.00",
    disbursed: str = "2026-01-15",
    **extra: Any,
) -> int:
    code = member_enterprise(session, region="320100").credit_code
    return api.file_loan(bank, code, principal, disbursed, maturity, **extra)


MONTHLY = [f"2026-{m:02d}-28" for m in range(2, 13)]


def _xb_monthly(api: Api, session: Session) -> int:
    """An XB loan of 1,000,000.00 from 2026-01-28: 10,000.00 + 900.00 interest due on the
    28th of each month of 2026, the rest at maturity 2028-12-28."""
    plan = [{"due_on": d, "principal": "10000.00", "interest": "900.00"} for d in MONTHLY]
    plan.append({"due_on": "2028-12-28", "principal": "890000.00", "interest": "900.00"})
    return api.file_loan(
        "bank_lyg",
        xb_enterprise(session).credit_code,
        "1000000.00",
        "2026-01-28",
        "2028-12-28",
        program="XB",
        rate=380,
        schedule=plan,
    )


def _watch(api: Api, day: str, user: str = "province", **query: Any) -> Any:
    q = "&".join(f"{k}={v}" for k, v in {"as_of": day, **query}.items())
    return api.call(day, user, "GET", f"/loans/watch?{q}")


def _entry(page: Any, loan_id: int) -> Any:
    found = [x for x in page["items"] if x["loan_id"] == loan_id]
    return found[0] if found else None


def _crossing(entry: Any, rule: str) -> Any:
    return next(c for c in entry["crossings"] if c["rule"] == rule)


# --- the watch list --------------------------------------------------------------------
def test_bullet_loan_approaching_90_days_appears_then_drops_off_once_crossed(
    api: Api, session: Session
) -> None:
    """SKD-C2 / SKD-Q3: a bullet loan matured 2026-03-16 is 90 days past due on
    2026-06-14 (overdue since 03-17): listed within the window before, gone from that day."""
    loan = _skd(api, session, "2026-03-16")
    page = _watch(api, "2026-06-04")
    entry = _entry(page, loan)
    assert (entry["overdue_since"], entry["days_past_due"]) == ("2026-03-17", 80)
    assert (entry["program"], entry["bank_code"], entry["outstanding"]) == (
        "SKD",
        "JSB",
        "1000000.00",
    )
    claim = _crossing(entry, "SKD-C2")
    assert (claim["purpose"], claim["days"], claim["label_en"]) == (
        "claim",
        90,
        "claim threshold",
    )
    assert (claim["crosses_on"], claim["days_left"], claim["if_unpaid"]) == (
        "2026-06-14",
        10,
        False,
    )
    assert claim["days_past_due"] == 80 and claim["counts_interest"] is False
    npl = _crossing(entry, "SKD-Q3")
    assert (npl["purpose"], npl["crosses_on"], npl["days_left"]) == ("npl", "2026-06-14", 10)
    assert (page["as_of"], page["within_days"], page["until"]) == ("2026-06-04", 15, "2026-06-19")
    assert _crossing(_entry(_watch(api, "2026-06-13"), loan), "SKD-C2")["days_left"] == 1
    assert _entry(_watch(api, "2026-06-14"), loan) is None  # crossed: 90 days today
    # the window's edge: crossing on 06-14 is as_of + 16 from 05-29
    assert _entry(_watch(api, "2026-05-29"), loan) is None
    assert _entry(_watch(api, "2026-05-29", within_days=16), loan) is not None
    # repaid in full: nothing to watch
    api.repay("bank_jsb", loan, "2026-06-05", "1000000.00")
    assert _entry(_watch(api, "2026-06-05"), loan) is None
    assert _entry(_watch(api, "2026-06-04"), loan) is not None  # as of before the payment


def test_xb_instalment_40_days_unpaid_crosses_xb_c1_in_5_days(api: Api, session: Session) -> None:
    """XB-C1 (45 days, principal or interest): February paid, March's instalment (due
    2026-03-28) unpaid is 40 days past due on 2026-05-07 and reaches 45 on 05-12. The NPL
    boundary (90 days, 06-26) lies beyond the default 15 days."""
    loan = _xb_monthly(api, session)
    api.call(
        "2026-02-28",
        "bank_lyg",
        "POST",
        f"/loans/{loan}/repayments",
        201,
        json={"paid_on": "2026-02-28", "principal": "10000.00", "interest": "900.00"},
    )
    entry = _entry(_watch(api, "2026-05-07", user="bank_lyg"), loan)
    assert (entry["overdue_since"], entry["days_past_due"]) == ("2026-03-29", 40)
    assert [c["rule"] for c in entry["crossings"]] == ["XB-C1"]
    c1 = entry["crossings"][0]
    assert (c1["crosses_on"], c1["days_left"], c1["days"], c1["if_unpaid"]) == (
        "2026-05-12",
        5,
        45,
        False,
    )
    assert c1["counts_interest"] is True and c1["label_zh"] == "代偿申请门槛"
    wide = _entry(_watch(api, "2026-05-07", user="bank_lyg", within_days=50), loan)
    assert [(c["rule"], c["crosses_on"]) for c in wide["crossings"]] == [
        ("XB-C1", "2026-05-12"),
        ("M-6", "2026-06-26"),
    ]
    # interest unpaid alone keeps it on the list for the rules counting interest
    api.call(
        "2026-05-07",
        "bank_lyg",
        "POST",
        f"/loans/{loan}/repayments",
        201,
        json={"paid_on": "2026-05-07", "principal": "10000.00"},
    )
    still = _entry(_watch(api, "2026-05-07", user="bank_lyg"), loan)
    assert _crossing(still, "XB-C1")["crosses_on"] == "2026-05-12"


def test_current_loan_with_an_instalment_due_soon_is_listed_if_unpaid(
    api: Api, session: Session
) -> None:
    """M-6: current on 2026-02-25, its first instalment due 02-28 — if left unpaid it is 45
    days past due (XB-C1) on 04-14, 48 days on: listed with `if_unpaid` in a 60-day
    window, not in 47 days (nor the default 15: a 45-day threshold is never 15 days off
    for a loan that is current)."""
    loan = _xb_monthly(api, session)
    entry = _entry(_watch(api, "2026-02-25", within_days=60), loan)
    assert (entry["overdue_since"], entry["days_past_due"]) == (None, 0)
    assert [c["rule"] for c in entry["crossings"]] == ["XB-C1"]  # 90 days: 05-29, too far
    c1 = entry["crossings"][0]
    assert (c1["crosses_on"], c1["days_left"], c1["if_unpaid"], c1["days_past_due"]) == (
        "2026-04-14",
        48,
        True,
        0,
    )
    assert _entry(_watch(api, "2026-02-25", within_days=47), loan) is None
    assert _entry(_watch(api, "2026-02-25"), loan) is None
    # paid on the due date: the next instalment (03-28) is the one to watch
    api.call(
        "2026-02-28",
        "bank_lyg",
        "POST",
        f"/loans/{loan}/repayments",
        201,
        json={"paid_on": "2026-02-28", "principal": "10000.00", "interest": "900.00"},
    )
    assert _entry(_watch(api, "2026-02-28", within_days=60), loan) is None
    after = _crossing(_entry(_watch(api, "2026-02-28", within_days=75), loan), "XB-C1")
    assert (after["crosses_on"], after["days_left"], after["if_unpaid"]) == ("2026-05-12", 73, True)


def test_principal_only_rule_ignores_interest_arrears_skd_c2_against_skd_q3(
    api: Api, session: Session
) -> None:
    """SKD-C2 counts principal only, SKD-Q3 principal or interest: principal paid on
    2026-04-15, interest not — SKD-Q3 crosses 07-14 (90 days from 04-16); SKD-C2 has only
    the 07-15 principal instalment to watch, if unpaid crossing 10-13."""
    plan = [
        {"due_on": "2026-04-15", "principal": "250000.00", "interest": "8500.00"},
        {"due_on": "2026-07-15", "principal": "250000.00", "interest": "6400.00"},
        {"due_on": "2026-10-15", "principal": "250000.00", "interest": "4300.00"},
        {"due_on": "2027-01-15", "principal": "250000.00", "interest": "2100.00"},
    ]
    loan = _skd(api, session, "2027-01-15", schedule=plan)
    api.repay("bank_jsb", loan, "2026-04-15", "250000.00")
    entry = _entry(_watch(api, "2026-07-05"), loan)
    assert [c["rule"] for c in entry["crossings"]] == ["SKD-Q3"]
    q3 = entry["crossings"][0]
    assert (q3["crosses_on"], q3["days_left"], q3["days_past_due"], q3["if_unpaid"]) == (
        "2026-07-14",
        9,
        81,
        False,
    )
    wide = _entry(_watch(api, "2026-07-05", within_days=100), loan)
    c2 = _crossing(wide, "SKD-C2")
    assert (c2["crosses_on"], c2["days_left"], c2["if_unpaid"], c2["days_past_due"]) == (
        "2026-10-13",
        100,
        True,
        0,
    )


def test_a_bank_sees_only_its_own_loans(api: Api, session: Session) -> None:
    """Scoped like `GET /loans`: each bank its own, the province every bank's; a bank
    naming another bank's code gets nothing."""
    jsb = _skd(api, session, "2026-03-16")
    icbc = _skd(api, session, "2026-03-18", bank="bank_icbc")
    everyone = {x["loan_id"] for x in _watch(api, "2026-06-04")["items"]}
    assert {jsb, icbc} <= everyone
    assert {x["loan_id"] for x in _watch(api, "2026-06-04", user="bank_jsb")["items"]} == {jsb}
    assert {x["loan_id"] for x in _watch(api, "2026-06-04", user="bank_icbc")["items"]} == {icbc}
    assert _watch(api, "2026-06-04", user="bank_jsb", bank_code="ICBC_JS")["items"] == []
    assert {x["loan_id"] for x in _watch(api, "2026-06-04", bank_code="ICBC_JS")["items"]} == {icbc}
    assert _watch(api, "2026-06-04", program="XB")["items"] == []
    nanjing = {x["loan_id"] for x in _watch(api, "2026-06-04", user="city_nanjing")["items"]}
    assert {jsb, icbc} <= nanjing  # a city reviewer: its region's enterprises
    assert _watch(api, "2026-06-04", user="city_suzhou")["items"] == []
    buckets_of_jsb = api.call("2026-06-04", "bank_jsb", "GET", "/loans/buckets?as_of=2026-06-04")
    assert {g["bank_code"] for g in buckets_of_jsb["items"]} == {"JSB"}


def test_sorted_by_earliest_crossing_and_paginated_with_a_cursor(
    api: Api, session: Session
) -> None:
    """Earliest crossing first; `limit` and `next_cursor` page through the list; a cursor
    this list did not issue, a window of 0 or 367 days are refused (422)."""
    late = _skd(api, session, "2026-03-20")  # crosses 06-18
    early = _skd(api, session, "2026-03-16")  # crosses 06-14
    mid = _skd(api, session, "2026-03-18")  # crosses 06-16
    first = _watch(api, "2026-06-04", limit=2)
    assert [x["loan_id"] for x in first["items"]] == [early, mid]
    assert first["next_cursor"]
    rest = _watch(api, "2026-06-04", limit=2, cursor=first["next_cursor"])
    assert [x["loan_id"] for x in rest["items"]] == [late] and rest["next_cursor"] is None
    for bad in ("within_days=0", "within_days=367", "cursor=eyJrIjogMX0"):
        r = api.on("2026-06-04").get(f"/api/v1/loans/watch?{bad}", headers=api.auth("province"))
        assert r.status_code == 422, r.text


@pytest.mark.parametrize(
    "url",
    [
        "/loans/watch?as_of=9999-12-31",
        "/loans/watch?as_of=0001-01-01",
        "/loans/watch?as_of=2200-01-01",
        "/loans/watch?as_of=1989-12-31",
        "/loans/buckets?as_of=0001-01-01",
        "/loans/buckets?as_of=9999-12-31",
        "/banks/JSB/exposure?program=SKD&as_of=0001-01-01",
        "/banks/JSB/exposure?program=SKD&as_of=9999-12-31",
    ],
)
def test_m6_as_of_outside_the_business_range_is_422_naming_it(
    api: Api, session: Session, url: str
) -> None:
    """M-6: `as_of` is a business date, 1990-01-01 … 2199-12-31 — at the ends of the
    calendar the thresholds and the window would overflow the date: a 422 naming
    `as_of`, never a server error."""
    _skd(api, session, "2026-03-16")
    r = api.on("2026-06-04").get("/api/v1" + url, headers=api.auth("province"))
    assert r.status_code == 422, r.text
    assert [e["loc"] for e in r.json()["errors"]] == [["query", "as_of"]]


def test_m6_as_of_at_the_ends_of_the_business_range_is_answered(api: Api, session: Session) -> None:
    """M-6: the first and last business dates are answered, the widest window too."""
    _skd(api, session, "2026-03-16")
    for url in (
        "/loans/watch?as_of=1990-01-01",
        "/loans/watch?as_of=2199-12-31&within_days=366",
        "/loans/buckets?as_of=1990-01-01",
        "/loans/buckets?as_of=2199-12-31",
        "/banks/JSB/exposure?program=SKD&as_of=2199-12-31",
    ):
        api.call("2026-06-04", "province", "GET", url)


def test_m6_watch_list_and_buckets_computed_in_chunks_answer_the_same(
    api: Api, session: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    """M-6: the candidates are computed CHUNK loans at a time — no id list longer than
    CHUNK reaches the database (PostgreSQL takes at most 65,535 parameters), however wide
    the window — and the watch list, its pages and the buckets are the same with a
    chunk of 2 as in one go."""
    loans = [_skd(api, session, f"2026-03-{d}") for d in (20, 16, 18, 17, 19)]
    loans.append(_skd(api, session, "2026-12-31"))  # current: crosses only if unpaid
    _xb_monthly(api, session)
    scope = select(Loan)
    day, wide = D("2026-06-04"), 300

    def key(ws: list[Any]) -> list[Any]:
        return [(w.loan.id, w.crossings) for w in ws]

    whole = key(watch_list(session, scope, day, within_days=wide))
    assert [i for i, _ in whole] == [loans[n] for n in (1, 3, 2, 4, 0, 5)]  # XB: crossed
    candidates = watch_candidates(session, scope, day, wide, None)
    groups = buckets(session, scope, day)
    sizes: list[int] = []
    real = delinquency.arrears_of

    def spy(session: Session, some: Any, as_of: date) -> Any:
        sizes.append(len(some))
        return real(session, some, as_of)

    monkeypatch.setattr(delinquency, "arrears_of", spy)
    monkeypatch.setattr(delinquency, "CHUNK", 2)
    assert key(watch_list(session, scope, day, within_days=wide)) == whole
    assert max(sizes) == 2 and sum(sizes) == len(candidates) == 6
    sizes.clear()
    assert buckets(session, scope, day) == groups
    assert max(sizes) == 2 and sum(sizes) == 6  # the loans in arrears on 06-04, XB's too
    # a page: the first two after a key, kept while the chunks go by
    full = watch_list(session, scope, day, within_days=wide)
    page = watch_list(session, scope, day, within_days=wide, after=full[1].key, limit=2)
    assert key(page) == whole[2:4]
    # through the endpoint, page by page
    got: list[int] = []
    cursor = ""
    while True:
        q = f"/loans/watch?as_of=2026-06-04&within_days={wide}&limit=2" + cursor
        out = api.call("2026-06-04", "province", "GET", q)
        got += [x["loan_id"] for x in out["items"]]
        if out["next_cursor"] is None:
            break
        cursor = f"&cursor={out['next_cursor']}"
    assert got == [i for i, _ in whole]


# --- buckets ---------------------------------------------------------------------------
AS_OF = "2026-06-30"
# days past due on 2026-06-30 → maturity
BOUNDARIES = {
    0: "2026-06-30",
    1: "2026-06-29",
    30: "2026-05-31",
    31: "2026-05-30",
    44: "2026-05-17",
    45: "2026-05-16",
    89: "2026-04-02",
    90: "2026-04-01",
}


def _buckets(api: Api, user: str = "province", **query: Any) -> Any:
    q = "&".join(f"{k}={v}" for k, v in {"as_of": AS_OF, **query}.items())
    return api.call(AS_OF, user, "GET", f"/loans/buckets?{q}")


def _group(out: Any, bank: str, program: str = "SKD") -> Any:
    return next(g for g in out["items"] if g["bank_code"] == bank and g["program"] == program)


def _cells(group: Any) -> dict[str, tuple[int, str]]:
    return {b["bucket"]: (b["count"], b["outstanding"]) for b in group["buckets"]}


def test_buckets_at_each_boundary(api: Api, session: Session) -> None:
    """M-6 buckets (policy): 0 → current, 1 and 30 → 1-30, 31 and 44 → 31-44, 45 and 89 →
    45-89, 90 → 90+; a loan repaid in full before the date is not counted, one partly
    repaid counts what it still owes; the buckets sum to the total."""
    for n, (_days, maturity) in enumerate(sorted(BOUNDARIES.items())):
        _skd(api, session, maturity, principal=f"{100000 * (n + 1)}.00")
    part = _skd(api, session, "2026-06-29", principal="50000.00")
    api.repay("bank_jsb", part, "2026-06-01", "20000.00")
    gone = _skd(api, session, "2026-05-01", principal="70000.00")
    api.repay("bank_jsb", gone, "2026-04-30", "70000.00")
    group = _group(_buckets(api), "JSB")
    assert (group["rule"], group["counts_interest"]) == ("SKD-Q3", True)
    assert _cells(group) == {
        "current": (1, "100000.00"),  # 0 days
        "1-30": (3, "530000.00"),  # 1 and 30 days, and the part-repaid loan's 30,000.00
        "31-44": (2, "900000.00"),  # 31 and 44 days
        "45-89": (2, "1300000.00"),  # 45 and 89 days
        "90+": (1, "800000.00"),  # 90 days
    }
    assert (group["count"], group["outstanding"]) == (9, "3630000.00")
    # a day later every loan moves on: 0 → 1-30, 30 → 31-44, 44 → 45-89, 89 → 90+
    later = _cells(_group(_buckets(api, as_of="2026-07-01"), "JSB"))
    assert {k: v[0] for k, v in later.items()} == {
        "current": 0,
        "1-30": 3,
        "31-44": 2,
        "45-89": 2,
        "90+": 2,
    }


def test_bank_reported_arrears_move_a_loan_to_a_worse_bucket(api: Api, session: Session) -> None:
    """M-6: a loan current on our books (bullet, due at year end) that the bank reports
    in arrears since 2026-05-12 is 50 days past due on 06-30 (45-89); and it joins the
    watch list — SKD-C2 reached on 08-09, 40 days on."""
    loan = _skd(api, session, "2026-12-31", principal="300000.00")
    assert _cells(_group(_buckets(api), "JSB"))["current"] == (1, "300000.00")
    assert _entry(_watch(api, AS_OF, within_days=40), loan) is None
    body = {
        "as_of": AS_OF,
        "overdue_since": "2026-05-12",
        "principal_overdue": "100000.00",
        "interest_overdue": "0",
    }
    api.call(AS_OF, "bank_jsb", "POST", f"/loans/{loan}/delinquency", 201, json=body)
    cells = _cells(_group(_buckets(api), "JSB"))
    assert cells["current"] == (0, "0.00") and cells["45-89"] == (1, "300000.00")
    assert _cells(_group(_buckets(api, as_of="2026-06-29"), "JSB"))["current"][0] == 1
    entry = _entry(_watch(api, AS_OF, within_days=40), loan)
    assert (entry["overdue_since"], entry["days_past_due"]) == ("2026-05-12", 50)
    c2 = _crossing(entry, "SKD-C2")
    assert (c2["crosses_on"], c2["days_left"], c2["if_unpaid"]) == ("2026-08-09", 40, False)
    assert _entry(_watch(api, AS_OF, within_days=39), loan) is None


def test_exposure_view_carries_the_buckets(api: Api, session: Session) -> None:
    """SKD-Q3 / XB exposure views: `delinquency_buckets` of the bank and programme as of
    the date, the same figures as `GET /loans/buckets`; every bucket listed."""
    _skd(api, session, "2026-05-16", principal="200000.00")  # 45 days
    _skd(api, session, "2026-12-31", principal="100000.00")
    view = api.call(AS_OF, "province", "GET", f"/banks/JSB/exposure?program=SKD&as_of={AS_OF}")
    assert view["delinquency_buckets"] == _group(_buckets(api), "JSB")["buckets"]
    assert {b["bucket"]: b["count"] for b in view["delinquency_buckets"]} == {
        "current": 1,
        "1-30": 0,
        "31-44": 0,
        "45-89": 1,
        "90+": 0,
    }
    _xb_monthly(api, session)
    xb_view = api.call(
        "2026-05-07", "bank_lyg", "GET", "/banks/LYG_RCB/exposure?program=XB&as_of=2026-05-07"
    )
    # nothing paid: due 02-28, 68 days past due on 05-07
    assert [
        (b["bucket"], b["count"], b["outstanding"]) for b in xb_view["delinquency_buckets"]
    ] == [
        ("current", 0, "0.00"),
        ("1-30", 0, "0.00"),
        ("31-44", 0, "0.00"),
        ("45-89", 1, "1000000.00"),
        ("90+", 0, "0.00"),
    ]
    empty = api.call(AS_OF, "province", "GET", f"/banks/BOC_JS/exposure?program=SKD&as_of={AS_OF}")
    assert [b["count"] for b in empty["delinquency_buckets"]] == [0, 0, 0, 0, 0]


def test_exposure_figures_follow_the_bank_and_the_date_asked(api: Api, session: Session) -> None:
    """SKD-Q3 / M-6: the exposure view's statements are built once and read with the bank
    and the date as parameters. Read one after another for two banks on two dates, each
    view carries its own bank's and date's figures: the buckets of `GET /loans/buckets`
    and the NPL part (≥ 90 days past due) and outstanding principal of the all-banks
    `bank_ratios`."""
    for n, (_days, maturity) in enumerate(sorted(BOUNDARIES.items())):
        _skd(api, session, maturity, principal=f"{100000 * (n + 1)}.00")
    _skd(api, session, "2026-04-01", bank="bank_icbc", principal="400000.00")  # 90 days
    views = {
        (bank, day): api.call(
            "2026-07-01", "province", "GET", f"/banks/{bank}/exposure?program=SKD&as_of={day}"
        )
        for day in (AS_OF, "2026-07-01")
        for bank in ("JSB", "ICBC_JS")
    }
    figures = {
        key: (v["outstanding_principal"], v["npl_principal"], v["npl_ratio"])
        for key, v in views.items()
    }
    assert figures == {
        # 100,000.00 … 800,000.00 at 0 … 90 days past due: the 90-day one is NPL; a day
        # later the 89-day one (700,000.00) too
        ("JSB", AS_OF): ("3600000.00", "800000.00", "22.2222"),
        ("JSB", "2026-07-01"): ("3600000.00", "1500000.00", "41.6666"),
        ("ICBC_JS", AS_OF): ("400000.00", "400000.00", "100.0000"),
        ("ICBC_JS", "2026-07-01"): ("400000.00", "400000.00", "100.0000"),
    }
    for (bank, day), view in views.items():
        ratio = bank_ratios(session, "SKD", D(day), QUARTER_END)[bank]
        assert (view["outstanding_principal"], view["npl_principal"]) == (
            format_fen(ratio.outstanding_fen),
            format_fen(ratio.npl_fen),
        )
        assert view["delinquency_buckets"] == _group(_buckets(api, as_of=day), bank)["buckets"]
    assert {
        b["bucket"]: b["count"] for b in views[("JSB", "2026-07-01")]["delinquency_buckets"]
    } == {
        "current": 0,
        "1-30": 2,
        "31-44": 2,
        "45-89": 2,
        "90+": 2,
    }


# --- the candidate filter is exact -------------------------------------------------------
def test_candidate_filter_loses_no_loan_and_loads_few(api: Api, session: Session) -> None:
    """M-6: over a mixed book and every day of a season, the watch list and the buckets
    from SQL candidates equal the same figures computed on every loan; the candidates
    leave out loans far from any threshold (performing far from a due date, long past
    90 days)."""
    far = _skd(api, session, "2026-12-31")
    long_late = _skd(api, session, "2026-01-31")
    soon = _skd(api, session, "2026-03-16")
    reported = _skd(api, session, "2026-12-30", principal="300000.00")
    xb = _xb_monthly(api, session)
    api.call(
        "2026-02-28",
        "bank_lyg",
        "POST",
        f"/loans/{xb}/repayments",
        201,
        json={"paid_on": "2026-02-28", "principal": "10000.00", "interest": "900.00"},
    )
    body = {
        "as_of": "2026-05-20",
        "overdue_since": "2026-05-12",
        "principal_overdue": "0",
        "interest_overdue": "900.00",
    }
    api.call("2026-05-20", "bank_jsb", "POST", f"/loans/{reported}/delinquency", 201, json=body)
    every = list(session.scalars(select(Loan).order_by(Loan.id)))
    scope = select(Loan)
    ids_on = set(watch_candidates(session, scope, D("2026-06-04"), 15, None))
    assert soon in ids_on and far not in ids_on and long_late not in ids_on
    day = D("2026-02-01")
    while day <= D("2026-08-31"):
        for within in (15, 60):
            got = [
                (w.loan.id, w.crossings)
                for w in watch_list(session, scope, day, within_days=within)
            ]
            assert got == _brute_watch(session, every, day, within), (day, within)
        assert _bucket_counts(buckets(session, scope, day)) == _brute_buckets(
            session, every, day
        ), day
        day += timedelta(days=3)


def _brute_watch(session: Session, loans: list[Loan], day: date, within: int) -> list[Any]:
    arrears = arrears_of(session, loans, day)
    plans = schedules(session, [x.id for x in loans])
    paid = _interest_paid(session, [x.id for x in loans], day)
    out = []
    for loan in loans:
        if loan.disbursed_on > day or (loan.settled_on is not None and loan.settled_on <= day):
            continue
        found = crossings(
            loan,
            arrears[loan.id],
            plans.get(loan.id) or bullet(loan),
            paid.get(loan.id, 0),
            day,
            day + timedelta(days=within),
        )
        if found:
            out.append((found[0].crosses_on, loan.id, found))
    return [(i, f) for _, i, f in sorted(out, key=lambda x: (x[0], x[1]))]


def _bucket_counts(groups: Any) -> dict[tuple[str, str, str], tuple[int, int]]:
    return {
        (g.program, g.bank_code, b.bucket): (b.count, b.outstanding)
        for g in groups
        for b in g.buckets
        if b.count
    }


def _brute_buckets(
    session: Session, loans: list[Loan], day: date
) -> dict[tuple[str, str, str], tuple[int, int]]:
    arrears = arrears_of(session, loans, day)
    out: dict[tuple[str, str, str], tuple[int, int]] = {}
    for loan in loans:
        a = arrears[loan.id]
        if loan.disbursed_on > day or a.outstanding_fen <= 0:
            continue
        policy = get_program(loan.program).policy
        name = policy.bucket(a.days_for(policy.arrears_rule("npl")))
        n, fen = out.get((loan.program, loan.bank_code, name), (0, 0))
        out[(loan.program, loan.bank_code, name)] = (n + 1, fen + a.outstanding_fen)
    return out
