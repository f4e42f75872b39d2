"""The working-day calendar as data (SPEC M-3): seeded years, provisional and refused
unpublished years, publishing a year from a notice, and the recompute of stored
deadlines (SKD-F2, XB-F2/N7, XB-C2, XB-R1) with history, across 2026 → 2027."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Connection, Engine, func, insert, select
from sqlalchemy.orm import Session, sessionmaker

from app.calendar.library import library_years
from app.calendar.service import working_calendar
from app.config import Settings
from app.models import CalendarDay, CalendarPublication, ClaimRecovery
from tests.fixtures import factories
from tests.fixtures.api import Api, api_fixture
from tests.fixtures.factories import member_enterprise, new_bank, xb_enterprise
from tests.fixtures.ledger import raw_refused
from tests.fixtures.xb import base_loans, to_approval, xb_loan

SKD_BANK, XB_BANK = "bank_cal", "bank_xbt"

# A schedule for 2027 as the tests' notice gives it (not the State Council's).
NOTICE = "测试〔2027〕1号"
HOLIDAYS_2027 = (
    [("2027-01-01", "元旦"), ("2027-01-02", "元旦"), ("2027-01-03", "元旦")]
    + [(f"2027-02-{d:02d}", "春节") for d in range(6, 13)]
    + [(f"2027-10-{d:02d}", "国庆节") for d in range(1, 8)]
)
WORKDAYS_2027 = [("2027-02-20", "春节调休"), ("2027-10-09", "国庆节调休")]


def notice(
    holidays: list[tuple[str, str]] = HOLIDAYS_2027,
    workdays: list[tuple[str, str]] = WORKDAYS_2027,
    number: str = NOTICE,
) -> dict[str, Any]:
    return {
        "notice_no": number,
        "notice_title": "关于2027年部分节假日安排的通知（测试）",
        "holidays": [{"date": d, "name": n} for d, n in holidays],
        "workdays": [{"date": d, "name": n} for d, n in workdays],
    }


@pytest.fixture(autouse=True)
def banks(session: Session) -> None:
    new_bank(session, "CAL", since=date(2025, 1, 1), region="320100")
    new_bank(session, "XBT", since=date(2025, 6, 1), region=None, xb_sub_funds=("XB_ZQCZD",))


@pytest.fixture
def api(  # type: ignore[no-untyped-def]
    settings: Settings, engine: Engine, session_factory: sessionmaker[Session], auth
) -> Iterator[Api]:
    yield from api_fixture(settings, engine, session_factory, auth)


def skd(api: Api, session: Session, disbursed: str, filed: str, expect: int = 201) -> Any:
    return api.file_loan(
        SKD_BANK,
        member_enterprise(session).credit_code,
        "1000000.00",
        disbursed,
        str(date.fromisoformat(disbursed).replace(year=date.fromisoformat(disbursed).year + 1)),
        filed_on=filed,
        expect=expect,
    )


def xb(api: Api, session: Session, disbursed: str, filed: str) -> int:
    return int(
        api.file_loan(
            XB_BANK,
            xb_enterprise(session).credit_code,
            "500000.00",
            disbursed,
            "2027-12-20",
            program="XB",
            rate=380,
            filed_on=filed,
        )
    )


def loan(api: Api, loan_id: int, day: str = "2027-01-08") -> Any:
    return api.call(day, "regulator", "GET", f"/loans/{loan_id}")


# --- seeded and provisional years ----------------------------------------------------
def test_m3_years_of_the_package_are_seeded_with_their_source(api: Api) -> None:
    """seed-reference stores every year chinesecalendar covers, as data with its source."""
    year = api.call("2026-12-02", "bank_jsb", "GET", "/calendar/2026")
    assert (year["source"], year["provisional"], year["in_force"]) == ("library", False, True)
    days = {d["date"]: d for d in year["holidays"]}
    assert days["2026-02-17"]["name"].startswith("春节")
    assert [(d["date"], d["weekday"]) for d in year["workdays"]][:3] == [
        ("2026-01-04", "Sun"),
        ("2026-02-14", "Sat"),
        ("2026-02-28", "Sat"),
    ]
    assert year["publications"][0]["library_version"]
    assert year["working_days"] == sum(
        library_years()[2026].is_working_day(date.fromordinal(o))
        for o in range(date(2026, 1, 1).toordinal(), date(2027, 1, 1).toordinal())
    )
    overview = api.call("2026-12-02", "bank_jsb", "GET", "/calendar")
    assert {y["year"] for y in overview["years"]} >= set(range(2019, 2027))
    assert (overview["next_year"], overview["next_year_published"]) == (2027, False)
    assert "2027" in overview["warning"] and "provisional" in overview["warning"]
    # before October 1 nobody is warned yet
    assert api.call("2026-09-30", "bank_jsb", "GET", "/calendar")["warning"] is None


def test_m3_unpublished_year_is_provisional_weekdays_minus_statutory_holidays(api: Api) -> None:
    year = api.call("2026-12-02", "bank_jsb", "GET", "/calendar/2027")
    assert (year["source"], year["provisional"], year["in_force"]) == ("provisional", True, True)
    assert year["publications"] == [] and year["workdays"] == []
    assert "2027-01-01" in {d["date"] for d in year["holidays"]}


def test_m3_skd_f2_filing_across_new_year_on_a_provisional_2027(api: Api, session: Session) -> None:
    """Disbursed 2026-12-25: the 5th working day is 2027-01-04 (元旦 provisional), and
    both the acceptance and the refusal say it rests on a provisional day."""
    on_time = loan(api, skd(api, session, "2026-12-25", "2027-01-04"))
    assert (on_time["filing_deadline"], on_time["filing_deadline_provisional"]) == (
        "2027-01-04",
        True,
    )
    refused = skd(api, session, "2026-12-25", "2027-01-05", expect=422)
    [late] = [e for e in refused["errors"] if e["code"] == "filing_deadline_passed"]
    assert late["rule"] == "SKD-F2"
    assert "provisional" in late["msg"] and "2027-01-04" in late["msg"]
    # a deadline wholly inside published 2026 is not provisional
    inside = loan(api, skd(api, session, "2026-12-24", "2026-12-31"))
    assert (inside["filing_deadline"], inside["filing_deadline_provisional"]) == (
        "2026-12-31",
        False,
    )


def test_m3_refuse_setting_refuses_an_unpublished_year_until_it_is_published(
    settings: Settings,
    engine: Engine,
    session_factory: sessionmaker[Session],
    auth: Any,
    session: Session,
) -> None:
    strict = settings.model_copy(update={"calendar_unpublished": "refuse"})
    for api in api_fixture(strict, engine, session_factory, auth):
        refused = skd(api, session, "2026-12-25", "2026-12-28", expect=422)
        assert (refused["code"], refused["rule"]) == ("calendar_year_unsupported", "M-3")
        overview = api.call("2026-12-28", "regulator", "GET", "/calendar")
        assert overview["unpublished_years"] == "refuse"
        assert "refused" in overview["warning"]
        assert api.call("2026-12-28", "bank_jsb", "GET", "/calendar/2027")["in_force"] is False
        api.call("2026-12-28", "admin", "PUT", "/calendar/2027", json=notice())
        accepted = loan(api, skd(api, session, "2026-12-25", "2026-12-28"))
        assert (accepted["filing_deadline"], accepted["filing_deadline_provisional"]) == (
            "2027-01-04",
            False,
        )


# --- published data: Spring Festival and National Day edges ---------------------------
@pytest.mark.parametrize(
    ("disbursed", "last_day", "first_late"),
    [
        # 2026 from the package: the make-up Saturday 2026-02-14 counts, 02-15…23 do not
        ("2026-02-13", "2026-02-27", "2026-02-28"),
        # 国庆 2026: 10-01…07 off, the make-up Saturday 10-10 counts
        ("2026-09-30", "2026-10-13", "2026-10-14"),
    ],
)
def test_m3_skd_f2_deadline_edges_on_published_2026(
    api: Api, session: Session, disbursed: str, last_day: str, first_late: str
) -> None:
    ok = loan(api, skd(api, session, disbursed, last_day), last_day)
    assert (ok["filing_deadline"], ok["filing_deadline_provisional"]) == (last_day, False)
    late = skd(api, session, disbursed, first_late, expect=422)
    assert "filing_deadline_passed" in {e["code"] for e in late["errors"]}
    assert all("provisional" not in e["msg"] for e in late["errors"])


def test_m3_deadline_edges_on_a_published_2027(api: Api, session: Session) -> None:
    """On the notice's 2027: 春节 02-06…12 off and the make-up Saturday 02-20 worked;
    国庆 10-01…07 off and Saturday 10-09 worked."""
    api.call("2026-12-02", "admin", "PUT", "/calendar/2027", json=notice())
    spring = loan(api, skd(api, session, "2027-02-05", "2027-02-19"), "2027-02-19")
    assert (spring["filing_deadline"], spring["filing_deadline_provisional"]) == (
        "2027-02-19",
        False,
    )
    skd(api, session, "2027-02-05", "2027-02-20", expect=422)  # the make-up Saturday
    # 09-30 + 5: 10-08, 10-09 (make-up Saturday), 10-11, 10-12, 10-13
    autumn = loan(api, skd(api, session, "2027-09-30", "2027-10-13"), "2027-10-13")
    assert autumn["filing_deadline"] == "2027-10-13"
    # XB-F2, 10 working days from 2026-12-18 on the published 2027: 2027-01-04
    b = loan(api, xb(api, session, "2026-12-18", "2027-01-04"))
    assert (b["filing_deadline"], b["filing_deadline_provisional"], b["compensable"]) == (
        "2027-01-04",
        False,
        True,
    )


# --- publishing ---------------------------------------------------------------------
def test_m3_publishing_is_refused_with_every_problem_listed(api: Api) -> None:
    bad = notice(
        holidays=[("2027-01-01", "元旦"), ("2028-01-01", "元旦"), ("2027-02-20", " ")],
        workdays=[("2027-01-04", "调休"), ("2027-01-01", "元旦")],
    )
    r = api.call("2026-12-02", "admin", "PUT", "/calendar/2027", 422, json=bad)
    assert r["code"] == "validation_error"  # the blank name is refused by the schema first
    bad["holidays"][2]["name"] = "春节"
    r = api.call("2026-12-02", "admin", "PUT", "/calendar/2027", 422, json=bad)
    assert (r["code"], r["rule"]) == ("calendar_invalid", "M-3")
    assert sorted(tuple(e["loc"]) for e in r["errors"]) == sorted(
        [
            ("holidays", 1, "date"),  # 2028
            ("workdays", 0, "date"),  # a Monday
            ("workdays", 1, "date"),  # already a holiday
            ("workdays", 1, "date"),  # and a Friday
        ]
    )
    assert api.call("2026-12-02", "bank_jsb", "PUT", "/calendar/2027", 403, json=notice())
    assert api.call("2026-12-02", "bank_jsb", "GET", "/calendar/2027")["source"] == "provisional"


def test_m3_publishing_the_same_schedule_again_stores_nothing_and_heals_a_raced_deadline(
    api: Api, session: Session, connection: Connection
) -> None:
    first = api.call("2026-12-02", "admin", "PUT", "/calendar/2027", json=notice())
    again = api.call("2026-12-02", "admin", "PUT", "/calendar/2027", json=notice())
    assert (first["changed"], again["changed"], again["recomputed"]) == (True, False, [])
    assert len(again["publications"]) == 1
    assert (again["source"], again["notice_no"]) == ("notice", NOTICE)
    # a filing that computed its deadline on the provisional year while the year was
    # being published keeps a provisional deadline; the same PUT brings it in line
    raced = skd(api, session, "2026-12-25", "2026-12-28")
    connection.exec_driver_sql(
        "UPDATE loans SET filing_deadline_provisional = true, filing_deadline = '2027-01-04' "
        f"WHERE id = {raced}"
    )
    healed = api.call("2026-12-28", "admin", "PUT", "/calendar/2027", json=notice())
    assert healed["changed"] is False
    assert [
        (x["id"], x["old_provisional"], x["new_provisional"]) for x in healed["recomputed"]
    ] == [(raced, True, False)]
    assert loan(api, raced)["filing_deadline_provisional"] is False


def test_m3_publishing_2027_recomputes_stored_deadlines_with_history(
    api: Api, session: Session
) -> None:
    """SKD-F2, XB-F2/N7, XB-C2, XB-R1: deadlines computed on the provisional 2027 are
    recomputed when 2027 is published, in the same transaction, each change in its
    object's history; a late-filed XB loan found on time becomes compensable again, and
    one found late stops being so."""
    base_loans(api, session, XB_BANK, 12, "3000000.00")
    a = skd(api, session, "2026-12-25", "2026-12-28")  # deadline 2027-01-04 (provisional)
    b = xb(api, session, "2026-12-18", "2027-01-04")  # 10th working day 2027-01-04
    c = xb(api, session, "2026-12-21", "2027-01-06")  # 10th is 2027-01-05: late
    assert (loan(api, c)["filed_late"], loan(api, c)["compensable"]) == (True, False)
    assert "provisional" in loan(api, c)["flags"][0]
    # an approved claim waits for payment: 20 working days from 2026-12-10
    approved = to_approval(api, XB_BANK, xb_loan(api, session, XB_BANK, "500000.00"), "2026-12-10")
    assert approved["deadlines"]["payment"] == "2027-01-08"
    assert approved["provisional_deadlines"] == ["payment"]

    def overdue(day: str) -> list[tuple[int, str, bool]]:
        mine = {approved["id"], paid["id"]}
        return [
            (x["claim_id"], x["stage"], x["provisional"])
            for x in api.call(day, "fund_xb", "GET", "/claims/overdue")["items"]
            if x["claim_id"] in mine
        ]

    # a paid claim's collection share is due 10 working days after 2026-12-24
    paid = to_approval(api, XB_BANK, xb_loan(api, session, XB_BANK, "500000.00"), "2026-12-10")
    api.call(
        "2026-12-11",
        "fund_xb_pay",
        "POST",
        f"/claims/{paid['id']}/payment",
        json={"paid_on": "2026-12-11"},
    )
    rec = api.call(
        "2026-12-24",
        XB_BANK,
        "POST",
        f"/claims/{paid['id']}/recoveries",
        201,
        json={"recovered_on": "2026-12-24", "amount": "100000.00", "costs": "0.00"},
    )
    assert (rec["due_on"], rec["due_on_provisional"]) == ("2027-01-08", True)
    assert overdue("2027-01-11") == [
        (approved["id"], "payment", True),
        (paid["id"], "recovery_distribution", True),
    ]

    # The notice keeps 01-01…03 off, and the tests' 2027 also keeps 01-04 off.
    jan4 = [*HOLIDAYS_2027, ("2027-01-04", "元旦")]
    out = api.call("2027-01-07", "admin", "PUT", "/calendar/2027", json=notice(jan4))
    changes = {(x["object"], x["id"], x["deadline"]): x for x in out["recomputed"]}
    assert {k: (v["old"], v["new"], v["new_provisional"]) for k, v in changes.items()} == {
        ("loan", a, "filing"): ("2027-01-04", "2027-01-05", False),
        ("loan", b, "filing"): ("2027-01-04", "2027-01-05", False),
        ("loan", c, "filing"): ("2027-01-05", "2027-01-06", False),
        ("claim", approved["id"], "payment"): ("2027-01-08", "2027-01-11", False),
        # paid already, but its payment deadline was provisional: settled too
        ("claim", paid["id"], "payment"): ("2027-01-08", "2027-01-11", False),
        ("recovery", rec["id"], "distribution"): ("2027-01-08", "2027-01-11", False),
    }
    assert "compensable again" in changes[("loan", c, "filing")]["consequence"]
    assert (loan(api, c)["filed_late"], loan(api, c)["compensable"], loan(api, c)["flags"]) == (
        False,
        True,
        [],
    )
    [event] = loan(api, a)["history"]
    assert event["action"] == "deadline_recomputed" and NOTICE in event["comment"]
    assert event["details"]["old_provisional"] is True
    view = api.call("2027-01-08", "fund_xb", "GET", f"/claims/{approved['id']}")
    assert (view["deadlines"]["payment"], view["provisional_deadlines"]) == ("2027-01-11", [])
    assert view["history"][-1]["action"] == "deadline_recomputed"
    assert view["history"][-1]["from_status"] == view["history"][-1]["to_status"] == "approved"
    assert overdue("2027-01-11") == []
    recovered = api.call("2027-01-08", "fund_xb", "GET", f"/claims/{paid['id']}")
    assert recovered["recoveries"][0]["due_on"] == "2027-01-11"

    # A corrected notice: 01-02 (Saturday) worked, so b's 10th working day is 01-02 and
    # b, filed 01-04, turns out late: XB-N7, not compensable.
    fixed = [h for h in HOLIDAYS_2027 if h[0] != "2027-01-02"]
    again = api.call(
        "2027-01-07",
        "admin",
        "PUT",
        "/calendar/2027",
        json=notice(fixed, [("2027-01-02", "元旦调休"), *WORKDAYS_2027], "测试〔2027〕2号"),
    )
    moved = {(x["object"], x["id"]): x for x in again["recomputed"]}
    assert moved[("loan", b)]["new"] == "2027-01-02"
    assert "not compensable (XB-N7)" in moved[("loan", b)]["consequence"]
    after = loan(api, b)
    assert (after["filed_late"], after["compensable"]) == (True, False)
    assert after["flags"] == ["XB-N7: filed after the deadline 2027-01-02; not compensable"]
    assert len(after["history"]) == 2
    assert [p["notice_no"] for p in again["publications"]] == [NOTICE, "测试〔2027〕2号"]


def test_m3_a_publication_by_another_process_is_seen_at_the_next_request(
    connection: Connection, session_factory: sessionmaker[Session]
) -> None:
    """The in-process calendar is keyed on the newest publication: rows written by
    another process (plain SQL here) take effect at the next session."""
    with session_factory() as first:
        assert working_calendar(first).is_provisional(date(2027, 3, 1))
    pub = connection.execute(
        insert(CalendarPublication)
        .values(
            year=2027,
            source="notice",
            notice_no="X",
            token="other-process",
            published_at=datetime(2026, 12, 2, tzinfo=UTC),
        )
        .returning(CalendarPublication.id)
    ).scalar_one()
    connection.execute(
        insert(CalendarDay).values(
            publication_id=pub, day=date(2027, 3, 1), kind="holiday", name="测试"
        )
    )
    with session_factory() as second:
        calendar = working_calendar(second)
        assert not calendar.is_provisional(date(2027, 3, 1))
        assert not calendar.is_working_day(date(2027, 3, 1))  # a Monday, off by the notice


def test_m3_publications_are_append_only_and_a_recovery_only_moves_its_due_date(
    api: Api, connection: Connection, session: Session
) -> None:
    api.call("2026-12-02", "admin", "PUT", "/calendar/2027", json=notice())
    assert "append-only" in raw_refused(connection, "UPDATE calendar_publications SET year = 2028")
    assert "append-only" in raw_refused(connection, "DELETE FROM calendar_days")
    paid = factories.xb_claim(session, status="paid")  # 连云港农商行's, paid 2026-02-13
    factories.recovery(session, paid, on=date(2026, 9, 1), amount_fen=60_000_00)
    rec = session.scalars(select(ClaimRecovery).limit(1)).first()
    assert rec is not None  # the paid XB claim's recovery
    assert "append-only" in raw_refused(
        connection, f"UPDATE claim_recoveries SET amount_fen = amount_fen + 1 WHERE id = {rec.id}"
    )
    nested = connection.begin_nested()
    connection.exec_driver_sql(
        f"UPDATE claim_recoveries SET due_on_provisional = true WHERE id = {rec.id}"
    )
    nested.rollback()


# --- the command line -----------------------------------------------------------------
def test_m3_cli_publishes_a_year_from_a_csv_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from app.auth.service import ensure_admin
    from app.cli import main, migrate
    from app.config import get_settings
    from app.db import make_engine
    from app.seed.loader import seed_reference

    url = f"sqlite:///{tmp_path / 'cli.db'}"
    migrate(url)
    engine = make_engine(url)
    with Session(engine) as s, s.begin():
        seed_reference(s)
        ensure_admin(s, username="ops", password="ops-password-2026")
    monkeypatch.setenv("DATABASE_URL", url)
    get_settings.cache_clear()
    try:
        bad = tmp_path / "bad.csv"
        bad.write_text("date,kind,name\n2027-01-01,休,元旦\n2027-01-04,班,调休\n2027-13-01,休,x\n")
        with pytest.raises(SystemExit) as refused:
            main(["calendar-publish", str(bad), "--notice-no", NOTICE])
        assert refused.value.code == 2
        err = capsys.readouterr().err
        assert "row.4.date" in err
        good = tmp_path / "2027.csv"
        good.write_text(
            "date,kind,name\n"
            + "".join(f"{d},holiday,{n}\n" for d, n in HOLIDAYS_2027)
            + "".join(f"{d},workday,{n}\n" for d, n in WORKDAYS_2027),
            encoding="utf-8",
        )
        with pytest.raises(SystemExit) as done:
            main(["calendar-publish", str(good), "--notice-no", NOTICE, "--by", "ops"])
        assert done.value.code == 0
        assert "2027 published" in capsys.readouterr().out
        with Session(engine) as s:
            pub = s.scalars(
                select(CalendarPublication).where(CalendarPublication.year == 2027)
            ).one()
            assert (pub.source, pub.notice_no) == ("notice", NOTICE)
            assert working_calendar(s).is_working_day(date(2027, 2, 20))  # make-up Saturday
    finally:
        get_settings.cache_clear()
        engine.dispose()


def test_m3_the_example_file_holds_the_2026_schedule_of_the_package() -> None:
    from app.calendar.files import read_schedule

    example = Path(__file__).parent.parent / "docs" / "examples" / "calendar-2026.csv"
    year, body = read_schedule(example, year=None, notice_no="示例", notice_title=None)
    lib = library_years()[2026]
    assert year == 2026
    assert {d.date for d in body.holidays} == set(lib.holidays)
    assert {d.date for d in body.workdays} == set(lib.workdays)


def test_m3_batch_results_say_when_a_deadline_is_provisional(api: Api, session: Session) -> None:
    items = [
        {
            "program": "SKD",
            "enterprise_credit_code": member_enterprise(session).credit_code,
            "contract_no": f"CAL-B-{disbursed}",
            "principal": "1000000.00",
            "annual_rate_bp": 340,
            "disbursed_on": disbursed,
            "maturity_on": "2027-12-20",
            "security": "credit",
            "controller_guarantee": True,
        }
        for disbursed in ("2026-12-24", "2026-12-25")
    ]
    out = api.call("2026-12-28", SKD_BANK, "POST", "/loans/batch", json={"items": items})
    assert [
        (r["status"], r["filing_deadline"], r["filing_deadline_provisional"])
        for r in out["results"]
    ] == [("accepted", "2026-12-31", False), ("accepted", "2027-01-04", True)]


def test_xb_c2_a_late_opinion_on_a_provisional_deadline_says_so(api: Api, session: Session) -> None:
    """Filed 2026-12-24: the 7th working day is 2027-01-05 on the provisional 2027; an
    opinion on 01-06 is noted late, and the note says the deadline is provisional."""
    from tests.fixtures.xb import documents, review, xb_claim

    base_loans(api, session, XB_BANK, 12, "3000000.00")
    c = xb_claim(api, XB_BANK, xb_loan(api, session, XB_BANK, "500000.00"), day="2026-12-24")
    assert (c["deadlines"]["manager_opinion"], c["provisional_deadlines"]) == (
        "2027-01-05",
        ["manager_opinion"],
    )
    documents(api, XB_BANK, c["id"], day="2026-12-24")
    reviewed = review(api, c["id"], "2027-01-06")
    note = reviewed["history"][-1]["comment"]
    assert "after the deadline 2027-01-05" in note and "provisional" in note


def test_m3_cli_refuses_an_unreadable_file_without_a_traceback(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from app.cli import main

    with pytest.raises(SystemExit) as missing:
        main(["calendar-publish", str(tmp_path / "absent.csv"), "--notice-no", NOTICE])
    assert missing.value.code == 2
    assert "refused" in capsys.readouterr().err


def test_m3_a_write_beside_a_publication_waits_and_uses_the_published_year(
    pg_engine: Engine, backend: str
) -> None:
    """PostgreSQL, real connections: while a publication of 2027 is uncommitted, a filing
    whose deadline reaches into 2027 waits for it (the calendar lock), then counts on the
    published days instead of storing a provisional deadline nobody recomputes."""
    import threading

    from app.calendar.service import CALENDAR_LOCK
    from app.kit.clock import Clock
    from app.main import create_app
    from tests.conftest import token_for

    if backend != "postgresql":
        pytest.skip("the calendar lock is PostgreSQL's (SQLite serialises writers)")
    url = pg_engine.url.render_as_string(hide_password=False)
    settings = Settings(database_url=url, app_env="demo", log_json=False)
    with Session(pg_engine) as s:
        code = member_enterprise(s).credit_code
        headers = {"Authorization": f"Bearer {token_for(settings, s, 'bank_jsb')}"}
    body = {
        "program": "SKD",
        "enterprise_credit_code": code,
        "contract_no": "CAL-RACE-1",
        "principal": "1000000.00",
        "annual_rate_bp": 340,
        "disbursed_on": "2026-12-25",
        "maturity_on": "2027-12-20",
        "security": "credit",
        "controller_guarantee": True,
    }
    app = create_app(settings, engine=pg_engine, clock=Clock(date(2026, 12, 28)))
    answer: dict[str, Any] = {}
    with pg_engine.connect() as publisher, TestClient(app) as client:
        tx = publisher.begin()
        publisher.execute(select(func.pg_advisory_xact_lock(CALENDAR_LOCK)))
        pub = publisher.execute(
            insert(CalendarPublication)
            .values(
                year=2027,
                source="notice",
                notice_no=NOTICE,
                token="race",
                published_at=datetime(2026, 12, 28, tzinfo=UTC),
            )
            .returning(CalendarPublication.id)
        ).scalar_one()
        publisher.execute(
            insert(CalendarDay),
            [
                {"publication_id": pub, "day": date(2027, 1, d), "kind": "holiday", "name": "元旦"}
                for d in (1, 2, 3, 4)
            ],
        )

        def file() -> None:
            r = client.post("/api/v1/loans", json=body, headers=headers)
            answer.update(status=r.status_code, body=r.json())

        filing = threading.Thread(target=file)
        filing.start()
        filing.join(1.5)
        assert filing.is_alive(), "the filing did not wait for the publication"
        tx.commit()
        filing.join(30)
    assert answer["status"] == 201, answer
    assert (answer["body"]["filing_deadline"], answer["body"]["filing_deadline_provisional"]) == (
        "2027-01-05",
        False,
    )


def test_xb_f2_publishing_never_makes_a_guaranteed_loan_late(api: Api, session: Session) -> None:
    """XB-F2: the 10 working days bind credit loans only. Disbursed 2026-12-18 and filed
    2027-01-04 (the 10th working day on the provisional 2027), a credit and a guaranteed
    loan; a notice that works 01-02 makes 01-02 the 10th: the credit loan turns out late
    and not compensable (XB-N7), the guaranteed one's deadline moves and it stays
    compensable, as does a guaranteed loan filed after either deadline."""
    from tests.fixtures.xb import GUARANTOR, consent

    def guaranteed(filed: str) -> int:
        return int(
            api.file_loan(
                XB_BANK,
                xb_enterprise(session).credit_code,
                "500000.00",
                "2026-12-18",
                "2027-12-20",
                program="XB",
                security="guaranteed",
                guarantor=GUARANTOR,
                rate=330,
                filed_on=filed,
                guarantor_consent=consent("2026-12-16"),
            )
        )

    credit = xb(api, session, "2026-12-18", "2027-01-04")
    g, g_later = guaranteed("2027-01-04"), guaranteed("2027-01-06")
    assert (loan(api, g_later)["filed_late"], loan(api, g_later)["compensable"]) == (False, True)
    worked = [h for h in HOLIDAYS_2027 if h[0] != "2027-01-02"]
    out = api.call(
        "2027-01-07",
        "admin",
        "PUT",
        "/calendar/2027",
        json=notice(worked, [("2027-01-02", "元旦调休"), *WORKDAYS_2027]),
    )
    moved = {x["id"]: x for x in out["recomputed"] if x["object"] == "loan"}
    assert {i: moved[i]["new"] for i in (credit, g, g_later)} == dict.fromkeys(
        (credit, g, g_later), "2027-01-02"
    )
    assert "not compensable (XB-N7)" in moved[credit]["consequence"]
    assert "XB-F2" in moved[g]["consequence"]
    assert (loan(api, credit)["filed_late"], loan(api, credit)["compensable"]) == (True, False)
    for i in (g, g_later):
        view = loan(api, i)
        assert (view["filed_late"], view["compensable"], view["flags"]) == (False, True, [])
        assert (view["filing_deadline"], view["filing_deadline_applies"]) == ("2027-01-02", False)
        assert view["history"][0]["action"] == "deadline_recomputed"
