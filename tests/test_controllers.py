"""The actual controller (实际控制人) as a person, and the overdue loans on the service's own
books at filing (SKD-F4; XB-N2 at filing).

An enterprise names its controller by name and resident ID number (GB 11643); only the
number's keyed hash is kept, and the same number on two enterprises is one person. A
filing is refused for every loan recorded here, in any programme, of the enterprise or
of another enterprise with the same controller, that is in arrears on the filing date
(principal or interest, M-6), each loan its own reason; the flags declared on the
enterprise still count."""

from __future__ import annotations

import csv
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, inspect, select, text
from sqlalchemy.orm import Session, sessionmaker

from app import cli
from app.config import DEFAULT_PERSON_ID_KEY, Settings
from app.models import Enterprise, Person
from app.reference.enterprise_csv import FIELDS
from app.reference.persons import check_character, id_hash, normalise_id_number
from tests.fixtures.api import Api, api_fixture
from tests.fixtures.factories import member_enterprise, new_bank, xb_enterprise
from tests.fixtures.seed import credit_code

TODAY = "2026-03-31"  # the suite's business date


def id_number(seq: int, *, region: str = "320706", born: str = "19800101") -> str:
    """A resident ID number with a valid GB 11643 check character."""
    body = f"{region}{born}{seq:03d}"
    return body + check_character(body)


# one that ends in X, to send with a lowercase x
ENDS_IN_X = next(n for n in (id_number(s, born="19750615") for s in range(1, 999)) if n[-1] == "X")


@pytest.fixture
def api(  # type: ignore[no-untyped-def]
    settings: Settings, engine: Engine, session_factory: sessionmaker[Session], auth
) -> Iterator[Api]:
    yield from api_fixture(settings, engine, session_factory, auth)


@pytest.fixture
def banks(session: Session) -> tuple[str, str]:
    """Two banks cooperating in 连云港 since 2025 under both programmes (SKD with the
    连云港 city fund, XB with the base sub-fund): their users."""
    return tuple(  # type: ignore[return-value]
        new_bank(session, code, since=date(2025, 1, 1), region="320700", xb_sub_funds=("XB_ZQCZD",))
        for code in ("LYG_A", "LYG_B")
    )


def set_controller(api: Api, code: str, name: str, number: str, expect: int = 200) -> Any:
    body = {"controller": {"name": name, "id_number": number}}
    return api.call(TODAY, "admin", "PATCH", f"/enterprises/{code}", expect, json=body)


def errors(refusal: dict[str, Any]) -> list[tuple[str | None, str, str]]:
    return [(e.get("rule"), e["code"], e["msg"]) for e in refusal["errors"]]


def in_books(refusal: dict[str, Any]) -> list[str]:
    """The messages of the refusal's overdue loans on the service's own books."""
    return [e["msg"] for e in refusal["errors"] if e["code"] == "overdue_loan_in_books"]


def skd(api: Api, bank: str, code: str, expect: int = 201) -> Any:
    """An SKD credit loan disbursed the day before the business date."""
    return api.file_loan(
        bank, code, "500000.00", "2026-03-30", "2027-03-30", filed_on=TODAY, expect=expect
    )


def xb(api: Api, bank: str, code: str, expect: int = 201, **kw: Any) -> Any:
    """An XB credit loan, by default disbursed the day before the business date."""
    return api.file_loan(
        bank,
        code,
        kw.pop("principal", "500000.00"),
        kw.pop("disbursed", "2026-03-30"),
        kw.pop("maturity", "2027-03-30"),
        program="XB",
        rate=380,
        filed_on=kw.pop("filed_on", TODAY),
        expect=expect,
        **kw,
    )


def bullet_xb(api: Api, bank: str, code: str) -> int:
    """An XB loan disbursed 2025-09-01, due in one bullet on 2026-03-01 and never repaid:
    30 days past due on 2026-03-31, in arrears since 2026-03-02."""
    return int(
        xb(api, bank, code, disbursed="2025-09-01", maturity="2026-03-01", filed_on="2025-09-01")
    )


def contract(api: Api, loan_id: int, user: str) -> str:
    return str(api.call(TODAY, user, "GET", f"/loans/{loan_id}")["contract_no"])


# --- the ID number ---------------------------------------------------------------------
def test_id_number_check_character_normalisation_and_keyed_hash() -> None:
    """GB 11643: 17 digits and a check character (0-9 or X; x accepted); the hash is an
    HMAC under the server's key: the same for x and X, another under another key."""
    good = id_number(7)
    assert normalise_id_number(good) == good
    assert normalise_id_number(ENDS_IN_X.lower()) == ENDS_IN_X
    assert normalise_id_number("11010519491231002x") == "11010519491231002X"  # GB 11643 sample
    wrong = good[:-1] + ("0" if good[-1] != "0" else "1")
    cases = {
        good[:-1]: "18 characters, not 17",
        good + "1": "18 characters, not 19",
        good[:5] + "A" + good[6:]: "17 digits and a check character",
        good[:-1] + "Y": "17 digits and a check character",
        good[:10] + "13" + good[12:]: "not a date of birth",
        wrong: "check character does not match",
    }
    for bad, why in cases.items():
        with pytest.raises(ValueError, match=why) as info:
            normalise_id_number(bad)
        assert bad not in str(info.value) and good[:17] not in str(info.value)
    key = DEFAULT_PERSON_ID_KEY
    assert id_hash(ENDS_IN_X.lower(), key) == id_hash(ENDS_IN_X, key)
    assert len(id_hash(good, key)) == 64 and good not in id_hash(good, key)
    assert id_hash(good, key) != id_hash(good, key + "-other")
    assert id_hash(good, key) != id_hash(id_number(8), key)


def test_a_bad_id_number_is_refused_with_a_clear_message(api: Api) -> None:
    """The API refuses a number with a wrong check character and says why, without
    repeating it; with the right one the enterprise shows its controller's name and
    person id, not the number."""
    good = id_number(11)
    bad = good[:-1] + ("0" if good[-1] != "0" else "1")
    body = {
        "credit_code": credit_code("320706", "MA1CTL001"),
        "name": "控制人测试有限公司",
        "region_code": "320706",
        "registered_on": "2019-01-01",
        "prior_year_revenue": "8000000.00",
        "employees": 30,
        "controller": {"name": "张三", "id_number": bad},
    }
    r = api.on(TODAY).post("/api/v1/enterprises", headers=api.auth("admin"), json=body)
    assert r.status_code == 422, r.text
    (error,) = r.json()["errors"]
    assert error["loc"] == ["body", "controller", "id_number"]
    assert "check character does not match" in error["msg"]
    assert bad not in r.text
    body["controller"]["id_number"] = good
    r = api.on(TODAY).post("/api/v1/enterprises", headers=api.auth("admin"), json=body)
    assert r.status_code == 201, r.text
    controller = r.json()["controller"]
    assert controller == {"name": "张三", "person_id": controller["person_id"]}
    assert good not in r.text


# --- one person, several enterprises -----------------------------------------------------
def test_two_enterprises_with_the_same_id_number_share_one_controller(
    api: Api, session: Session, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The same number (x or X) on enterprises registered by POST, PATCH, the batch and
    the CSV import is one person; the view shows the name and the person's id, never
    the number or its hash; a number recorded under another name is refused; PATCH null
    removes the controller. The number is in no column of any table."""
    number = ENDS_IN_X
    a, b = xb_enterprise(session), xb_enterprise(session)
    first = set_controller(api, a.credit_code, "李四", number)
    person = first["controller"]["person_id"]
    assert first["controller"] == {"name": "李四", "person_id": person}
    second = set_controller(api, b.credit_code, "李四", number.lower())
    assert second["controller"] == {"name": "李四", "person_id": person}
    other = set_controller(api, b.credit_code, "王五", id_number(21))["controller"]
    assert other["person_id"] != person
    refused = set_controller(api, b.credit_code, "李小四", number, expect=422)
    assert [(e["loc"], e["code"]) for e in refused["errors"]] == [
        (["body", "controller", "name"], "controller_name_mismatch")
    ]
    assert "李四" not in str(refused)  # the recorded name is not revealed
    # the batch: a new enterprise with the number, one naming it otherwise, a recorded
    # one whose controller differs
    new_code = credit_code("320706", "MA1CTL002")
    item = {
        "credit_code": new_code,
        "name": "批量控制人测试有限公司",
        "region_code": "320706",
        "registered_on": "2019-01-01",
        "prior_year_revenue": "8000000.00",
        "employees": 30,
    }
    items = [
        {**item, "controller": {"name": "李四", "id_number": number.lower()}},
        {
            **item,
            "credit_code": credit_code("320706", "MA1CTL003"),
            "controller": {"name": "李5", "id_number": number},
        },
        {
            "credit_code": b.credit_code,
            "name": b.name,
            "region_code": b.region_code,
            "registered_on": b.registered_on.isoformat(),
            "prior_year_revenue": "8000000.00",
            "employees": b.employees,
            "controller": {"name": "李四", "id_number": number},
        },
    ]
    batch = api.call(TODAY, "bank_lyg", "POST", "/enterprises/batch", json={"items": items})
    created, mismatch, exists = batch["results"]
    assert created["status"] == "created"
    assert (mismatch["code"], mismatch["errors"][0]["loc"]) == (
        "controller_name_mismatch",
        ["items", 1, "controller", "name"],
    )
    assert (exists["code"], [e["loc"][2:] for e in exists["errors"]]) == (
        "enterprise_exists",
        [["controller"]],
    )
    view = api.call(TODAY, "bank_lyg", "GET", f"/enterprises/{new_code}")
    assert view["controller"] == {"name": "李四", "person_id": person}
    # the CSV import: the controller as two columns
    csv_code = credit_code("320706", "MA1CTL004")
    path = tmp_path / "e.csv"
    with path.open("w", encoding="utf-8", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(FIELDS)
        row = {
            **item,
            "credit_code": csv_code,
            "controller.name": "李四",
            "controller.id_number": number,
        }
        w.writerow([row.get(c, "") for c in FIELDS])
    assert {"controller.name", "controller.id_number"} <= set(FIELDS)
    monkeypatch.setattr(cli, "_session", api.factory)
    with pytest.raises(SystemExit) as info:
        cli.main(["import-enterprises", str(path)])
    assert info.value.code == 0
    linked = session.scalars(
        select(Enterprise.controller_id).where(
            Enterprise.credit_code.in_([a.credit_code, new_code, csv_code])
        )
    ).all()
    assert linked == [person] * 3
    listed = api.call(TODAY, "bank_lyg", "GET", f"/enterprises?name={a.name}")["items"]
    assert [e["controller"] for e in listed] == [{"name": "李四", "person_id": person}]
    for shown in (view, listed[0]):
        assert number not in str(shown) and "id_hash" not in str(shown)
    # no column of any table holds the number, in either case
    _assert_stored_nowhere(session, [number, number.lower(), number[:17]])
    hashed = session.scalar(select(Person.id_hash).where(Person.id == person))
    assert hashed == id_hash(number, DEFAULT_PERSON_ID_KEY)
    # null: no controller any more
    cleared = api.call(
        TODAY, "admin", "PATCH", f"/enterprises/{a.credit_code}", json={"controller": None}
    )
    assert cleared["controller"] is None


def _assert_stored_nowhere(session: Session, needles: list[str]) -> None:
    conn = session.connection()
    tables = inspect(conn).get_table_names()
    assert "persons" in tables and "enterprises" in tables
    for table in tables:
        for row in conn.execute(text(f'SELECT * FROM "{table}"')):
            for value in row:
                if isinstance(value, bytes):
                    value = value.decode("utf-8", "replace")
                cell = str(value)
                assert not any(n in cell for n in needles), table


# --- SKD-F4, XB-N2 at filing: the service's own books -------------------------------------
def test_SKD_F4_the_enterprises_own_overdue_loan_in_the_other_programme(
    api: Api, session: Session, banks: tuple[str, str]
) -> None:
    """SKD-F4: an enterprise whose XB loan is 30 days past due on the filing date is
    refused an SKD loan, by the bank that filed the XB loan (its contract named) and by
    another bank (not named); once the loan is repaid the filing is accepted."""
    a, b = banks
    e = member_enterprise(session, region="320706")
    loan = bullet_xb(api, a, e.credit_code)
    mine = skd(api, a, e.credit_code, expect=422)
    assert errors(mine) == [
        (
            "SKD-F4",
            "overdue_loan_in_books",
            f"the enterprise's XB loan {contract(api, loan, a)} is 30 days past due "
            "(overdue since 2026-03-02) and unpaid",
        )
    ]
    assert mine["code"] == "overdue_loan_in_books"
    theirs = skd(api, b, e.credit_code, expect=422)
    assert in_books(theirs) == [
        "the enterprise's XB loan, a loan filed by another bank, is 30 days past due "
        "(overdue since 2026-03-02) and unpaid"
    ]
    assert contract(api, loan, a) not in str(theirs)
    api.repay(a, loan, TODAY, "500000.00")
    assert skd(api, b, e.credit_code) > 0


def test_XB_N2_the_controllers_other_enterprise_has_interest_in_arrears(
    api: Api, session: Session, banks: tuple[str, str]
) -> None:
    """XB-N2 at filing: the controller's other enterprise pays an instalment's principal
    but not its interest — 80 days in arrears (interest counts) on 2026-03-31 — so the
    filing is refused, naming that enterprise; once the interest is paid (the loan still
    runs) it is accepted. An enterprise without that controller is not concerned."""
    a, b = banks
    other, filer, stranger = xb_enterprise(session), xb_enterprise(session), xb_enterprise(session)
    for e in (other, filer):
        set_controller(api, e.credit_code, "赵六", id_number(31))
    schedule = [
        {"due_on": "2026-01-10", "principal": "250000.00", "interest": "9000.00"},
        {"due_on": "2026-04-10", "principal": "250000.00", "interest": "6800.00"},
    ]
    loan = xb(
        api,
        b,
        other.credit_code,
        disbursed="2025-10-10",
        maturity="2026-04-10",
        filed_on="2025-10-10",
        schedule=schedule,
    )
    api.call(
        "2026-01-10",
        b,
        "POST",
        f"/loans/{loan}/repayments",
        201,
        json={"paid_on": "2026-01-10", "principal": "250000.00"},
    )
    refused = xb(api, a, filer.credit_code, expect=422)
    assert errors(refused) == [
        (
            "XB-N2",
            "overdue_loan_in_books",
            f"its actual controller's other enterprise {other.credit_code}'s XB loan, a loan "
            "filed by another bank, is 80 days past due (overdue since 2026-01-11) and unpaid",
        )
    ]
    assert xb(api, a, stranger.credit_code) > 0
    api.call(
        TODAY,
        b,
        "POST",
        f"/loans/{loan}/repayments",
        201,
        json={"paid_on": TODAY, "interest": "9000.00"},
    )
    assert xb(api, a, filer.credit_code) > 0


def test_every_reason_is_listed_when_there_are_several(
    api: Api, session: Session, banks: tuple[str, str]
) -> None:
    """SKD-F4: the declared flag, the enterprise's own overdue loan and its controller's
    other enterprise's overdue loan are three reasons, in that order; the same under XB
    (XB-N2)."""
    a, b = banks
    filer, other = member_enterprise(session, region="320706"), xb_enterprise(session)
    for e in (filer, other):
        set_controller(api, e.credit_code, "钱七", id_number(41))
    own = bullet_xb(api, a, filer.credit_code)
    bullet_xb(api, b, other.credit_code)
    flag = {"overdue_loans_elsewhere": True}  # declared, as before
    api.call(TODAY, "admin", "PATCH", f"/enterprises/{filer.credit_code}", json=flag)
    expected = [
        f"the enterprise's XB loan {contract(api, own, a)} is 30 days past due "
        "(overdue since 2026-03-02) and unpaid",
        f"its actual controller's other enterprise {other.credit_code}'s XB loan, a loan "
        "filed by another bank, is 30 days past due (overdue since 2026-03-02) and unpaid",
    ]
    refused = skd(api, a, filer.credit_code, expect=422)
    assert [(r, c) for r, c, _ in errors(refused)] == [
        ("SKD-F4", "unpaid_overdue_loan"),
        ("SKD-F4", "overdue_loan_in_books"),
        ("SKD-F4", "overdue_loan_in_books"),
    ]
    assert in_books(refused) == expected
    assert refused["code"] == "unpaid_overdue_loan" and refused["rule"] == "SKD-F4"
    under_xb = xb(api, a, filer.credit_code, expect=422)
    assert [(r, c) for r, c, _ in errors(under_xb) if r == "XB-N2"] == [
        ("XB-N2", "unpaid_overdue_loan"),
        ("XB-N2", "overdue_loan_in_books"),
        ("XB-N2", "overdue_loan_in_books"),
    ]
    assert in_books(under_xb) == expected


def test_the_batch_refuses_the_same_way(api: Api, session: Session, banks: tuple[str, str]) -> None:
    """POST /loans/batch: the overdue loans of every item's enterprise and of its
    controller's other enterprises are looked up together; an item is refused for them
    as a single filing is, the others are accepted."""
    a, b = banks
    other, filer, clean = xb_enterprise(session), xb_enterprise(session), xb_enterprise(session)
    skd_filer = member_enterprise(session, region="320706")
    for e in (other, filer, skd_filer):
        set_controller(api, e.credit_code, "孙八", id_number(51))
    bullet_xb(api, b, other.credit_code)
    item = {
        "principal": "500000.00",
        "annual_rate_bp": 380,
        "disbursed_on": "2026-03-30",
        "maturity_on": "2027-03-30",
        "security": "credit",
        "controller_guarantee": True,
    }
    items = [
        {
            **item,
            "program": "XB",
            "enterprise_credit_code": filer.credit_code,
            "contract_no": "CTL-B1",
        },
        {
            **item,
            "program": "XB",
            "enterprise_credit_code": clean.credit_code,
            "contract_no": "CTL-B2",
        },
        {
            **item,
            "program": "SKD",
            "annual_rate_bp": 340,
            "enterprise_credit_code": skd_filer.credit_code,
            "contract_no": "CTL-B3",
        },
    ]
    out = api.call(TODAY, a, "POST", "/loans/batch", json={"items": items})
    refused, accepted, refused_skd = out["results"]
    msg = (
        f"its actual controller's other enterprise {other.credit_code}'s XB loan, a loan "
        "filed by another bank, is 30 days past due (overdue since 2026-03-02) and unpaid"
    )
    assert [(e["rule"], e["code"], e["msg"]) for e in refused["errors"]] == [
        ("XB-N2", "overdue_loan_in_books", msg)
    ]
    assert accepted["status"] == "accepted"
    assert [(e["rule"], e["code"], e["msg"]) for e in refused_skd["errors"]] == [
        ("SKD-F4", "overdue_loan_in_books", msg)
    ]
