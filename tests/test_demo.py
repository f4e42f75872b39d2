"""The demo `make run` serves (`ledger migrate`, then `ledger seed-demo`): it seeds
without error on both databases, its journal verifies, seeding it again adds nothing,
and it holds what it is there to show in Swagger UI — a library history, a suspended
bank, a claim returned for correction, the XB 2025-Q4 evaluation the approvals read.

These are the only tests that read the demo: the rest of the suite stands on the minimal
seed of `tests.fixtures.seed` (`tests/test_suite_hygiene.py` keeps it so). The demo is
seeded through the command line into a database of this module's own, once per backend
and worker; each test runs in a rolled-back transaction on it."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from alembic import command
from fastapi.testclient import TestClient
from sqlalchemy import Connection, Engine, func, inspect, select
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session, sessionmaker

from app import cli
from app.cli import _alembic_config
from app.config import Settings, get_settings
from app.db import make_engine
from app.kit.clock import Clock
from app.ledger import service as ledger
from app.main import create_app
from app.models import (
    Claim,
    ClaimReturn,
    FundContributor,
    LedgerEntry,
    Loan,
    LoanRepayment,
    User,
)
from app.models.base import Base
from app.seed.loader import DEMO_PASSWORD, DEMO_USERS, seed_demo
from tests.conftest import (
    TEST_TODAY,
    drop_postgres_database,
    empty_database_url,
    pg_database_name,
    token_for,
)
from tests.fixtures.seed import credit_code
from tests.fixtures.xb import GUARANTOR

pytestmark = pytest.mark.xdist_group("demo")  # under --dist loadgroup, on one worker

ZHIXIN = credit_code("320100", "MA1XA0001")  # the demo's 南京 member since 2025-02-10
LVYUAN = credit_code("320500", "MA1XA0004")  # the demo's admitted, then removed


def _cli(url: str, *args: str) -> None:
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("DATABASE_URL", url)
        get_settings.cache_clear()
        try:
            cli.main(list(args))
        finally:
            get_settings.cache_clear()


@dataclass
class DemoDatabase:
    url: str
    engine: Engine


@pytest.fixture(scope="session")
def demo_databases() -> Iterator[dict[str, DemoDatabase]]:
    """The demo's database of each backend, made on first use and kept for the session:
    however xdist interleaves this module with others, the demo is seeded once."""
    made: dict[str, DemoDatabase] = {}
    yield made
    for backend, db in made.items():
        db.engine.dispose()
        if backend == "postgresql":
            drop_postgres_database(pg_database_name("demo"))


@pytest.fixture
def demo_url(
    backend: str,
    tmp_path_factory: pytest.TempPathFactory,
    demo_databases: dict[str, DemoDatabase],
) -> str:
    """`make run`'s two steps, `ledger migrate` and `ledger seed-demo`, on an empty
    database of this backend."""
    if backend not in demo_databases:
        url = empty_database_url(backend, tmp_path_factory, "demo")
        _cli(url, "migrate")
        _cli(url, "seed-demo")
        demo_databases[backend] = DemoDatabase(url, make_engine(url))
    return demo_databases[backend].url


@pytest.fixture
def demo_engine(demo_url: str, backend: str, demo_databases: dict[str, DemoDatabase]) -> Engine:
    return demo_databases[backend].engine


@pytest.fixture
def demo_connection(demo_engine: Engine) -> Iterator[Connection]:
    conn = demo_engine.connect()
    trans = conn.begin()
    yield conn
    trans.rollback()
    conn.close()


@pytest.fixture
def session(demo_connection: Connection) -> Iterator[Session]:
    factory = sessionmaker(
        bind=demo_connection, join_transaction_mode="create_savepoint", expire_on_commit=False
    )
    with factory() as s:
        yield s


@pytest.fixture
def demo_settings(demo_url: str) -> Settings:
    return Settings(database_url=demo_url, app_env="demo", app_today=TEST_TODAY, log_json=False)


@pytest.fixture
def client(
    demo_settings: Settings, demo_engine: Engine, demo_connection: Connection
) -> Iterator[TestClient]:
    factory = sessionmaker(
        bind=demo_connection, join_transaction_mode="create_savepoint", expire_on_commit=False
    )
    app = create_app(
        demo_settings, engine=demo_engine, session_factory=factory, clock=Clock(TEST_TODAY)
    )
    with TestClient(app, raise_server_exceptions=False) as c:
        yield c


@pytest.fixture
def auth(demo_settings: Settings, session: Session):  # type: ignore[no-untyped-def]
    """auth("bank_lyg") → headers with a bearer token for that demo user."""

    def headers(username: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {token_for(demo_settings, session, username)}"}

    return headers


def _count(session: Session, model: type[Base]) -> int:
    return int(session.scalar(select(func.count()).select_from(model)) or 0)


def _bank(result: dict[str, Any], code: str) -> dict[str, Any]:
    return next(b for b in result["banks"] if b["bank_code"] == code)


# --- `make run` ----------------------------------------------------------------------------
def test_make_run_seeds_the_demo_and_its_journal_verifies(
    client: TestClient, session: Session
) -> None:
    """The demo seeded through `ledger seed-demo`: every demo user logs in with the
    printed password, every book sums to zero and the hash chain verifies."""
    users = {u.username for u in session.scalars(select(User))}
    assert {u for u, *_ in DEMO_USERS} <= users
    r = client.post("/api/v1/auth/token", data={"username": "bank_lyg", "password": DEMO_PASSWORD})
    assert r.status_code == 200, r.text
    books = ledger.trial_balance(session, as_of=None, funds=None)
    assert books and all(b.balanced for b in books)
    assert ledger.verify(session).ok
    assert _count(session, Loan) and _count(session, Claim) and _count(session, LoanRepayment)


def test_the_demo_leaves_an_audit_trail_to_read(client: TestClient, auth) -> None:  # type: ignore[no-untyped-def]
    """What the seed wrote is in the audit trail as `system:seed`, newest first, for a
    regulator to read in Swagger UI: the filed loans, the claims' steps."""
    r = client.get(
        "/api/v1/audit",
        params={"actor": "system:seed", "action": "loan.filed", "limit": 500},
        headers=auth("regulator"),
    )
    assert r.status_code == 200, r.text
    filed = r.json()["items"]
    assert filed and all(e["actor_user_id"] is None and e["request_id"] is None for e in filed)
    assert [e["id"] for e in filed] == sorted((e["id"] for e in filed), reverse=True)
    assert all(e["after"]["principal_fen"] > 0 for e in filed)
    steps = client.get(
        "/api/v1/audit", params={"action": "claim.*", "limit": 500}, headers=auth("regulator")
    ).json()["items"]
    assert {"claim.filed", "claim.city_approved", "claim.approved"} <= {e["action"] for e in steps}


def test_demo_contributors_go_through_the_service_and_seeding_twice_adds_none(
    session: Session,
) -> None:
    """The demo's SKD contributors are the service's rows (省财政 from the reference data,
    each city's finance bureau); seeding again adds no contributor and no entry."""
    rows = {
        (c.fund_code, c.code, c.name)
        for c in session.scalars(
            select(FundContributor).where(FundContributor.fund_code.like("SKD_%"))
        )
    }
    assert rows == {
        ("SKD_PROV", "JS_FINANCE", "江苏省财政厅"),
        ("SKD_CITY_320100", "NJ_FINANCE", "南京市财政局"),
        ("SKD_CITY_320500", "SZ_FINANCE", "苏州市财政局"),
        ("SKD_CITY_320700", "LYG_FINANCE", "连云港市财政局"),
    }
    before = (_count(session, FundContributor), session.scalar(select(func.count(LedgerEntry.id))))
    seed_demo(session)
    assert (
        _count(session, FundContributor),
        session.scalar(select(func.count(LedgerEntry.id))),
    ) == before


def test_demo_library_state(client: TestClient, auth) -> None:  # type: ignore[no-untyped-def]
    h = auth("regulator")
    zhixin = client.get(f"/api/v1/enterprises/{ZHIXIN}/library", headers=h).json()
    assert zhixin["member"] and zhixin["member_since"] == "2025-02-10"
    lvyuan = client.get(f"/api/v1/enterprises/{LVYUAN}/library", headers=h).json()
    assert not lvyuan["member"]
    assert [e["action"] for e in lvyuan["history"]] == ["admitted", "removed"]
    assert "red" in lvyuan["history"][-1]["comment"]
    missing = client.get("/api/v1/enterprises/91320100MA1XB00011/library", headers=h)
    assert missing.status_code == 404


def test_demo_q2_suspended_boc(client: TestClient, auth) -> None:  # type: ignore[no-untyped-def]
    runs = client.get("/api/v1/evaluations", headers=auth("regulator")).json()["items"]
    q2 = next(r for r in runs if (r["year"], r["quarter"]) == (2026, 2))
    boc = _bank(q2, "BOC_JS")
    assert (boc["npl_ratio_bp"], boc["breached"], boc["decision"]) == (10000, True, "suspended")
    # a bank sees only its own row
    own = client.get(f"/api/v1/evaluations/{q2['id']}", headers=auth("bank_icbc")).json()
    assert [b["bank_code"] for b in own["banks"]] == ["ICBC_JS"]


def test_xb_q1_demo_2025_q4_evaluation_is_stored_and_read(client: TestClient, auth) -> None:  # type: ignore[no-untyped-def]
    """The demo's XB 2025-Q4 evaluation, run by the XB fund manager: 连云港农商行's base
    basis is its 55,300,000 of 助企成长贷 principal at 2025-12-31 (the 科创贷 loan came
    later and carries 科创贷's own 3 % setting); the demo's approvals and the exposure view
    read that stored row."""
    runs = client.get("/api/v1/evaluations", headers=auth("regulator")).json()["items"]
    xb = next(r for r in runs if (r["program"], r["year"], r["quarter"]) == ("XB", 2025, 4))
    rows = {(b["bank_code"], b["fund_code"]): b for b in xb["banks"]}
    base, kcd = rows[("LYG_RCB", "XB_ZQCZD")], rows[("LYG_RCB", "XB_KCD")]
    assert (base["outstanding_principal"], base["limit"]["annual_limit"]) == (
        "55300000.00",
        "2765000.00",
    )
    assert (kcd["outstanding_principal"], kcd["threshold_bp"]) == ("0.00", 300)
    e = client.get(
        "/api/v1/banks/LYG_RCB/exposure?program=XB&as_of=2026-03-31", headers=auth("regulator")
    ).json()
    assert (e["limit"]["basis_source"], e["limit"]["evaluation_id"]) == ("evaluation", xb["id"])
    assert e["limit"]["used"] == "2600000.00"  # the two approvals: 1,600,000 + 1,000,000
    approved = [
        c
        for c in client.get(
            "/api/v1/claims?program=XB&bank_code=LYG_RCB", headers=auth("regulator")
        ).json()["items"]
        if c["approved"] is not None
    ]
    assert approved and {c["cap"]["evaluation_id"] for c in approved} == {xb["id"]}


def test_xb_f2_the_demo_guaranteed_loan_carries_its_consent_letter(
    client: TestClient, auth: Any
) -> None:
    page = client.get("/api/v1/loans?program=XB&limit=200", headers=auth("fund_xb")).json()
    demo = [x for x in page["items"] if x["security"] == "guaranteed"]
    assert demo and all(x["guarantor_consent"] for x in demo)
    letter = demo[0]["guarantor_consent"]
    assert letter["guarantor"] == GUARANTOR and letter["dated_on"] <= demo[0]["disbursed_on"]
    assert demo[0]["filing_deadline_applies"] is False


# --- migration 0016 on a database that holds claims -------------------------------------
@pytest.mark.xdist_group("migrations")
def test_skd_c1_migration_0016_down_and_up_with_returned_claims(
    backend: str, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """The claims status check changes in place on a populated database (SQLite cannot
    rebuild `claims` under its children's foreign keys); downgrading puts a returned
    claim back at the stage that returned it."""
    url = empty_database_url(backend, tmp_path_factory, "returns_migration")
    cfg = _alembic_config()
    cfg.attributes["database_url"] = url
    cfg.attributes["skip_logging"] = True
    engine = make_engine(url)
    try:
        command.upgrade(cfg, "head")
        with Session(engine) as s, s.begin():
            seed_demo(s)
        with Session(engine) as s:
            returned = s.scalars(select(Claim).where(Claim.status == "returned")).all()
            assert returned, "the demo has a claim returned for correction"
            ids = {
                c.id: s.scalars(
                    select(ClaimReturn.from_status).where(ClaimReturn.claim_id == c.id)
                ).one()
                for c in returned
            }
            total = s.scalar(select(func.count()).select_from(Claim))
        cfg.attributes["discard_leg_loans"] = True  # 0027: exposure legs name loans
        command.downgrade(cfg, "0015_guarantor_consent")
        engine.dispose()
        assert "claim_returns" not in inspect(engine).get_table_names()
        with Session(engine) as s:
            for claim_id, status in ids.items():
                assert s.get(Claim, claim_id).status == status  # type: ignore[union-attr]
            assert s.scalar(select(func.count()).select_from(Claim)) == total
        command.upgrade(cfg, "head")
        engine.dispose()
        with Session(engine) as s, s.begin():
            claim = s.get(Claim, next(iter(ids)))
            assert claim is not None
            claim.status = "returned"  # allowed again by the check
        with engine.connect() as conn:  # the status check is still in force
            bad = conn.begin()
            with pytest.raises(DBAPIError, match="ck_claims_status"):
                conn.exec_driver_sql("UPDATE claims SET status = 'nonsense'")
            bad.rollback()
    finally:
        engine.dispose()
        if backend == "postgresql":
            drop_postgres_database(pg_database_name("returns_migration"))


def test_m6_demo_amortising_arrears_and_the_watch_list(client: TestClient, auth) -> None:  # type: ignore[no-untyped-def]
    """M-6 in the demo, dated from the day it was seeded: an amortising XB loan in
    arrears before its maturity, and the watch list of loans about to cross XB-C1's 45
    days or the 90-day NPL boundary — one of them by the bank's own report."""
    from datetime import datetime

    from app.kit.clock import CHINA_TZ

    seeded = datetime.now(CHINA_TZ).date().isoformat()
    loans = client.get(
        f"/api/v1/loans?program=XB&bank_code=LYG_RCB&as_of={seeded}&limit=100",
        headers=auth("bank_lyg"),
    ).json()["items"]
    amortising = next(x for x in loans if x["contract_no"].startswith("LYG-XB-AM-"))
    assert amortising["days_past_due"] == 100
    assert amortising["maturity_on"] > seeded  # in arrears months before maturity
    watch = client.get(
        f"/api/v1/loans/watch?as_of={seeded}&within_days=15", headers=auth("fund_xb")
    ).json()["items"]
    crossings = sorted((c["rule"], c["days_left"]) for item in watch for c in item["crossings"])
    assert crossings == [("M-6", 10), ("XB-C1", 5), ("XB-C1", 10)]
    worse = [
        x for x in loans if x["arrears"]["bank_days_past_due"] > x["arrears"]["own_days_past_due"]
    ]  # the bank's own report is worse than our books on exactly one loan
    assert [(x["arrears"]["own_days_past_due"], x["days_past_due"]) for x in worse] == [(0, 35)]
    assert worse[0]["arrears"]["bank_report"]["source"] == "bank"
    assert worse[0]["id"] in {x["loan_id"] for x in watch}


def test_xb_rep_demo_status_file_with_two_differences(client: TestClient, auth) -> None:  # type: ignore[no-untyped-def]
    """XB-Rep in the demo: 连云港农商行's file for the month before seeding differs from
    our books in exactly two rows — an outstanding mismatch and an unknown contract."""
    from datetime import datetime, timedelta

    from app.kit.clock import CHINA_TZ

    end = datetime.now(CHINA_TZ).date().replace(day=1) - timedelta(days=1)
    r = client.get(
        f"/api/v1/status-reports/{end.year}/{end.month}?bank_code=LYG_RCB",
        headers=auth("regulator"),  # a fund manager sees no unknown contract
    )
    assert r.status_code == 200, r.text
    found = r.json()
    kinds = sorted(d["kind"] for d in found["differences"]["items"])
    assert kinds == ["outstanding_mismatch", "unknown_contract"]
    assert found["difference_count"] == 2


# --- the console walk-through (claims waiting for each role, the request examples) ---------
@pytest.fixture
def seeding_day_client(
    demo_settings: Settings, demo_engine: Engine, demo_connection: Connection
) -> Iterator[TestClient]:
    """The demo as the console shows it on the day it was seeded (its arrears are dated
    back from that day)."""
    from datetime import datetime

    from app.kit.clock import CHINA_TZ

    factory = sessionmaker(
        bind=demo_connection, join_transaction_mode="create_savepoint", expire_on_commit=False
    )
    app = create_app(
        demo_settings,
        engine=demo_engine,
        session_factory=factory,
        clock=Clock(datetime.now(CHINA_TZ).date()),
    )
    with TestClient(app, raise_server_exceptions=False) as c:
        yield c


def test_demo_queues_and_the_console_examples_work(seeding_day_client: TestClient, auth) -> None:  # type: ignore[no-untyped-def]
    """SKD-C1, XB-C2: each role finds its queue with `awaiting=me` — 苏州's city reviewer
    the claim waiting for its review, the XB committee its two decisions, each bank the
    claim returned to it — and the examples Swagger prefills are accepted: the city
    approves, the committee approves the claim with no finding (and cannot approve the
    one barred by XB-N8), the bank files the XB example claim on the demo's loan 100
    days past due."""
    from app.claims import endpoints

    client = seeding_day_client

    def queue(user: str) -> list[dict[str, Any]]:
        r = client.get("/api/v1/claims?awaiting=me", headers=auth(user))
        assert r.status_code == 200, r.text
        return list(r.json()["items"])

    city = queue("city_suzhou")
    assert [c["contract_no"] for c in city] == ["CCB-SKD-2026-0003"]
    assert city[0]["enterprise_name"] == "苏州凌云数控科技有限公司"
    assert queue("city_nanjing") == []
    review = endpoints.REVIEW_EXAMPLES["approve"]["value"]  # type: ignore[index]
    r = client.post(
        f"/api/v1/claims/{city[0]['id']}/city-review", json=review, headers=auth("city_suzhou")
    )
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "city_approved"
    assert queue("city_suzhou") == []
    assert city[0]["id"] in {c["id"] for c in queue("province")}

    committee = queue("committee")
    assert {c["status"] for c in committee} == {"manager_reviewed"} and len(committee) == 2
    barred = next(c for c in committee if c["findings"])
    clean = next(c for c in committee if not c["findings"])
    decision = endpoints.COMMITTEE_EXAMPLES["approve"]["value"]  # type: ignore[index]
    r = client.post(
        f"/api/v1/claims/{clean['id']}/committee-decision", json=decision, headers=auth("committee")
    )
    assert r.status_code == 200, r.text
    assert r.json()["status"] in ("approved", "closed")  # XB-Q1 may cap it
    r = client.post(
        f"/api/v1/claims/{barred['id']}/committee-decision",
        json=decision,
        headers=auth("committee"),
    )
    assert (r.status_code, r.json()["code"]) == (422, "findings_bar_compensation")

    assert [c["status"] for c in queue("bank_lyg")] == ["returned"]
    assert [c["contract_no"] for c in queue("bank_ccb")] == ["CCB-SKD-2026-0007"]
    assert [c["status"] for c in queue("fund_xb")] == ["submitted"]  # it reviewed the rest
    assert {c["status"] for c in queue("fund_xb_pay")} == {"submitted", "approved"}

    filing = endpoints.FILE_EXAMPLES["xb"]["value"]  # type: ignore[index]
    loan = client.get(f"/api/v1/loans/{filing['loan_id']}", headers=auth("bank_lyg")).json()
    assert loan["contract_no"].startswith("LYG-XB-AM-")  # the demo's loan 100 days past due
    r = client.post("/api/v1/claims", json=filing, headers=auth("bank_lyg"))
    assert r.status_code == 201, r.text
    assert r.headers["Location"] == f"/api/v1/claims/{r.json()['id']}"
    assert r.json()["contract_no"] == loan["contract_no"]


def test_the_demo_stores_the_last_closed_quarter_and_year_ahead(  # type: ignore[no-untyped-def]
    seeding_day_client: TestClient, auth
) -> None:
    """`make run` shows stored report runs (`ledger store-reports` at seed time): each
    programme's report of the last closed quarter and year, version 1, and a regulator's
    pull of that quarter is the stored run."""
    from datetime import datetime

    from app.kit.clock import CHINA_TZ
    from app.reports.runs import last_closed

    client = seeding_day_client
    quarter, year = last_closed(datetime.now(CHINA_TZ).date())
    r = client.get("/api/v1/reports/runs", headers=auth("regulator"))
    assert r.status_code == 200, r.text
    listed = {(x["kind"], x["program"], x["period"]): x for x in r.json()["items"]}
    expected = {
        (kind, program, period.label)
        for program in ("SKD", "XB")
        for kind, period in (("quarterly", quarter), ("annual", year))
    }
    assert set(listed) == expected
    assert {x["version"] for x in listed.values()} == {1}
    pulled = client.get(
        "/api/v1/reports/quarterly",
        params={"program": "XB", "year": quarter.year, "quarter": quarter.number},
        headers=auth("regulator"),
    )
    assert pulled.status_code == 200, pulled.text
    assert pulled.headers["X-Report-Run-Id"] == str(
        listed[("quarterly", "XB", quarter.label)]["id"]
    )


def test_the_demo_batch_job_is_finished_and_shown_to_its_bank(client: TestClient, auth) -> None:  # type: ignore[no-untyped-def]
    """#16 part 5: 中国工商银行's batch filed as a job — two loans accepted, three items
    refused (SKD-F3; three rules at once; a malformed item) — is job 1, readable by
    `bank_icbc` and not by another bank. Its first chunk's two loans are one ledger
    entry, a leg pair per loan and book (#16 part 3)."""
    h = auth("bank_icbc")
    job = client.get("/api/v1/loans/batch/jobs/1", headers=h).json()
    assert (job["status"], job["total"], job["accepted"], job["refused"]) == (
        "succeeded",
        5,
        2,
        3,
    )
    results = client.get(job["results_url"], headers=h).json()["items"]
    assert [(x["status"], x["code"]) for x in results] == [
        ("accepted", None),
        ("accepted", None),
        ("refused", "enterprise_has_active_loan"),
        ("refused", "principal_above_max"),
        ("refused", "validation_error"),
    ]
    assert {e["code"] for e in results[3]["errors"]} == {
        "principal_above_max",
        "rate_above_cap",
        "enterprise_has_active_loan",
    }
    loan = client.get(f"/api/v1/loans/{results[0]['loan_id']}", headers=h).json()
    assert loan["contract_no"] == "ICBC-SKD-2026-0201"
    both = [results[0]["loan_id"], results[1]["loan_id"]]
    (entry,) = client.get(
        "/api/v1/ledger/entries", headers=auth("regulator"), params={"loan_id": both[1]}
    ).json()["items"]
    assert entry["event_type"] == "loan.batch_filed"
    assert [g["loan_id"] for g in entry["legs"]] == [both[0]] * 4 + [both[1]] * 4
    assert client.get("/api/v1/loans/batch/jobs/1", headers=auth("bank_jsb")).status_code == 404
