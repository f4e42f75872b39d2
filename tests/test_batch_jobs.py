"""POST /loans/batch with `Prefer: respond-async` (#16 part 5): a job kept in the database,
filed in chunks by a worker, with its progress and per-item results readable by the
submitting bank and the administrator.

Most tests drive the worker by hand (`JobWorker.run_pending`, chunks of 2 items) on the
suite's rolled-back connection; the last ones run the worker the app starts, on a
database of their own where commits are real."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Connection, func, select, update
from sqlalchemy.orm import Session

from app.config import Settings
from app.db import make_engine
from app.kit.clock import Clock
from app.loans import jobs
from app.loans import repository as loans_repo
from app.loans.jobs import MAX_ATTEMPTS, JobWorker
from app.main import create_app
from app.models import BatchJob, BatchJobItem, FilingRefusal, LedgerEntry, Loan
from tests.conftest import TEST_TODAY, seeded_database_url
from tests.fixtures.factories import member_enterprise, skd_filing, xb_enterprise

ASYNC = {"Prefer": "respond-async"}


def _xb(code: str, contract: str, principal: str) -> dict[str, Any]:
    return {
        **skd_filing(code, contract, principal=principal),
        "program": "XB",
        "annual_rate_bp": 380,
    }


def _count(session: Session, model: Any) -> int:
    return int(session.scalar(select(func.count()).select_from(model)) or 0)


def _worker(app: FastAPI, settings: Settings, chunk: int = 2, **over: Any) -> JobWorker:
    tuned = settings.model_copy(update={"batch_job_chunk": chunk, **over})
    return JobWorker(app.state.sessionmaker, tuned, app.state.clock)


def _items(session: Session, tag: str) -> list[dict[str, Any]]:
    """Items whose decisions depend on each other across chunks of 2: SKD-F3, a contract
    number taken, XB-P1's limit per enterprise summed over the batch."""
    a, b = member_enterprise(session).credit_code, member_enterprise(session).credit_code
    x = xb_enterprise(session).credit_code
    return [
        skd_filing(a, f"{tag}-1"),
        skd_filing(b, f"{tag}-2", annual_rate_bp=351, principal="5000000.01"),  # two rules broken
        {"program": "SKD", "contract_no": f"{tag}-3", "principal": "12.345"},  # malformed
        skd_filing(a, f"{tag}-4"),  # SKD-F3: item 0 (an earlier chunk) took the enterprise
        _xb(x, f"{tag}-5", "2000000.00"),
        _xb(x, f"{tag}-6", "1000000.00"),  # 3,000,000 in all: XB-P1's limit, inclusive
        _xb(x, f"{tag}-7", "0.01"),  # over it, counting items 4 and 5 (another chunk)
        skd_filing(b, f"{tag}-1"),  # the contract number item 0 used
        skd_filing(b, f"{tag}-9"),
    ]


def _page_all(client: TestClient, headers: dict[str, str], url: str) -> list[dict[str, Any]]:
    out, cursor = [], None
    while True:
        params: dict[str, Any] = {"limit": 4} | ({"cursor": cursor} if cursor else {})
        r = client.get(url, headers=headers, params=params)
        assert r.status_code == 200, r.text
        out += r.json()["items"]
        cursor = r.json()["next_cursor"]
        if cursor is None:
            return out


def test_async_batch_answers_202_with_the_job_and_shows_progress(
    client: TestClient, auth, session: Session, app: FastAPI, settings: Settings
) -> None:  # type: ignore[no-untyped-def]
    """#16 part 5: 202 Accepted, `Location` the job, `Preference-Applied`; the job queued,
    then running with the items of each committed chunk counted, then succeeded."""
    bank = auth("bank_jsb")
    items = _items(session, "P")
    r = client.post("/api/v1/loans/batch", headers={**bank, **ASYNC}, json={"items": items})
    assert r.status_code == 202, r.text
    assert r.headers["preference-applied"] == "respond-async"
    job = r.json()
    assert r.headers["location"] == f"/api/v1/loans/batch/jobs/{job['id']}"
    assert (job["status"], job["total"], job["done"], job["accepted"], job["refused"]) == (
        "queued",
        9,
        0,
        0,
        0,
    )
    assert job["business_date"] == TEST_TODAY.isoformat() and job["finished_at"] is None
    before = _count(session, Loan)

    worker = _worker(app, settings)
    job_id = worker.claim()
    assert job_id == job["id"]
    assert worker.run_chunk(job_id) is True  # items 0 and 1
    seen = client.get(r.headers["location"], headers=bank).json()
    assert (seen["status"], seen["done"], seen["accepted"], seen["refused"]) == (
        "running",
        2,
        1,
        1,
    )
    assert seen["started_at"] is not None
    partial = client.get(seen["results_url"], headers=bank).json()["items"]
    assert [x["index"] for x in partial] == [0, 1]
    assert _count(session, Loan) == before + 1  # the first chunk is committed

    worker.run_pending()
    done = client.get(r.headers["location"], headers=bank).json()
    assert (done["status"], done["done"], done["accepted"], done["refused"]) == (
        "succeeded",
        9,
        4,
        5,
    )
    assert done["finished_at"] is not None and done["error"] is None
    assert _count(session, Loan) == before + 4


def test_a_jobs_results_are_the_synchronous_answer(
    client: TestClient,
    auth,
    session: Session,
    app: FastAPI,
    settings: Settings,
    connection: Connection,
) -> None:  # type: ignore[no-untyped-def]
    """#16 part 5: the same items filed synchronously (then rolled back) and as a job in
    chunks of 2 give the same result for every item — accepted ones with their deadline
    and flags, refused ones with every error, rule and location — though SKD-F3, a taken
    contract number and XB-P1's limit each decide across a chunk boundary."""
    bank = auth("bank_jsb")
    items = _items(session, "E")
    loans, entries = _count(session, Loan), _count(session, LedgerEntry)
    savepoint = connection.begin_nested()
    sync = client.post("/api/v1/loans/batch", headers=bank, json={"items": items})
    assert sync.status_code == 200, sync.text
    savepoint.rollback()
    assert _count(session, Loan) == loans

    r = client.post("/api/v1/loans/batch", headers={**bank, **ASYNC}, json={"items": items})
    assert r.status_code == 202, r.text
    _worker(app, settings).run_pending()
    job = client.get(r.headers["location"], headers=bank).json()
    results = _page_all(client, bank, job["results_url"])
    expected = sync.json()["results"]
    assert [x["status"] for x in expected] == [
        "accepted",
        "refused",
        "refused",
        "refused",
        "accepted",
        "accepted",
        "refused",
        "refused",
        "accepted",
    ]
    assert {e["code"] for e in expected[1]["errors"]} == {"rate_above_cap", "principal_above_max"}
    assert expected[3]["code"] == "enterprise_has_active_loan"
    assert expected[6]["code"] == "enterprise_limit_exceeded"
    assert expected[7]["code"] == "already_exists"
    assert expected[2]["errors"][0]["loc"][:2] == ["items", 2]
    assert results == [
        {**x, "loan_id": y["loan_id"]} for x, y in zip(expected, results, strict=True)
    ]
    assert all((x["loan_id"] is None) == (x["status"] == "refused") for x in results)
    assert (job["accepted"], job["refused"]) == (sync.json()["accepted"], sync.json()["refused"])
    assert _count(session, Loan) == loans + 4
    # one exposure entry per chunk that accepted loans: chunks (0, 1), (4, 5) and (8)
    assert _count(session, LedgerEntry) == entries + 3
    filed = session.scalars(
        select(Loan.contract_no).where(Loan.id.in_([x["loan_id"] for x in results]))
    ).all()
    assert sorted(filed) == ["E-1", "E-5", "E-6", "E-9"]


def test_a_job_left_running_by_a_dead_worker_is_resumed_after_its_last_chunk(
    client: TestClient, auth, session: Session, app: FastAPI, settings: Settings
) -> None:  # type: ignore[no-untyped-def]
    """#16 part 5: a worker commits one chunk and dies; while its heartbeat is fresh the
    job stays its own; once stale, another worker queues it again and files the rest
    from the first uncommitted item — nothing filed twice, nothing skipped. The dead
    worker, were it to wake, finds the job no longer its own and writes nothing."""
    bank = auth("bank_jsb")
    items = [skd_filing(member_enterprise(session).credit_code, f"R-{i}") for i in range(5)]
    r = client.post("/api/v1/loans/batch", headers={**bank, **ASYNC}, json={"items": items})
    job_id = r.json()["id"]
    loans = _count(session, Loan)
    dead = _worker(app, settings)
    assert dead.claim() == job_id and dead.run_chunk(job_id)  # items 0, 1; then it dies

    other = _worker(app, settings)
    assert other.recover() == 0 and other.run_pending() == 0  # heartbeat still fresh
    assert client.get(r.headers["location"], headers=bank).json()["status"] == "running"

    stale = datetime.now(UTC) - timedelta(seconds=settings.batch_job_stale_seconds + 1)
    session.execute(update(BatchJob).where(BatchJob.id == job_id).values(heartbeat_at=stale))
    session.commit()
    assert other.recover() == 1
    assert other.claim() == job_id and other.run_chunk(job_id)  # items 2, 3
    assert dead.run_chunk(job_id) is False  # wakes up: not its job any more
    assert _count(session, Loan) == loans + 4
    assert session.scalar(select(BatchJob.done).where(BatchJob.id == job_id)) == 4
    assert other.run_pending() == 1
    job = client.get(r.headers["location"], headers=bank).json()
    assert (job["status"], job["done"], job["accepted"]) == ("succeeded", 5, 5)
    assert _count(session, Loan) == loans + 5
    results = _page_all(client, bank, job["results_url"])
    assert [x["index"] for x in results] == [0, 1, 2, 3, 4]
    assert len({x["loan_id"] for x in results}) == 5
    assert session.scalar(select(BatchJob.attempts).where(BatchJob.id == job_id)) == 2


def test_a_worker_stopped_with_the_app_gives_its_job_back_between_chunks(
    client: TestClient, auth, session: Session, app: FastAPI, settings: Settings
) -> None:  # type: ignore[no-untyped-def]
    """#16 part 5: the app stopping (a deploy) lets the chunk in hand commit, then queues
    the job again at once — the next worker resumes it without waiting for it to go
    stale."""
    bank = auth("bank_jsb")
    items = [skd_filing(member_enterprise(session).credit_code, f"S-{i}") for i in range(3)]
    r = client.post("/api/v1/loans/batch", headers={**bank, **ASYNC}, json={"items": items})
    worker = _worker(app, settings)
    worker._stop = asyncio.Event()
    chunk = worker.run_chunk

    def then_stop(job_id: int) -> bool:
        more = chunk(job_id)
        assert worker._stop is not None
        worker._stop.set()
        return more

    worker.run_chunk = then_stop  # type: ignore[method-assign]
    assert worker.run_pending() == 0
    job = client.get(r.headers["location"], headers=bank).json()
    assert (job["status"], job["done"]) == ("queued", 2)
    assert _worker(app, settings).run_pending() == 1
    job = client.get(r.headers["location"], headers=bank).json()
    assert (job["status"], job["done"], job["accepted"]) == ("succeeded", 3, 3)


def test_a_job_whose_worker_keeps_dying_fails(
    client: TestClient, auth, session: Session, app: FastAPI, settings: Settings
) -> None:  # type: ignore[no-untyped-def]
    """#16 part 5: its worker dead for the `MAX_ATTEMPTS`-th time, the job is failed with
    a reason, its committed items kept — a batch that kills its worker does not take every worker
    down in turn."""
    bank = auth("bank_jsb")
    items = [skd_filing(member_enterprise(session).credit_code, f"K-{i}") for i in range(3)]
    r = client.post("/api/v1/loans/batch", headers={**bank, **ASYNC}, json={"items": items})
    job_id = r.json()["id"]
    stale = datetime.now(UTC) - timedelta(hours=1)
    for attempt in range(1, MAX_ATTEMPTS + 1):
        worker = _worker(app, settings)
        assert worker.claim() == job_id
        if attempt == 1:
            worker.run_chunk(job_id)
        session.execute(update(BatchJob).where(BatchJob.id == job_id).values(heartbeat_at=stale))
        session.commit()
        assert worker.recover() == 1
    job = client.get(r.headers["location"], headers=bank).json()
    assert (job["status"], job["done"], job["accepted"]) == ("failed", 2, 2)
    assert "stopped 3 times" in job["error"] and job["finished_at"] is not None
    assert _worker(app, settings).run_pending() == 0


def test_a_chunk_refused_by_the_quota_at_commit_refuses_its_items_and_the_job_goes_on(
    client: TestClient,
    auth,
    session: Session,
    app: FastAPI,
    settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # type: ignore[no-untyped-def]
    """SKD-F6 counted again at a chunk's commit (another filing took the quota
    meanwhile): that chunk's accepted items are refused `annual_quota_exceeded`, each
    with its refusal record (SKD-A1); items refused by their own rules keep their
    errors; the next chunk is filed."""
    bank = auth("bank_jsb")
    a, b, c = (member_enterprise(session).credit_code for _ in range(3))
    items = [skd_filing(a, "Q-1"), skd_filing(b, "Q-2", annual_rate_bp=351), skd_filing(c, "Q-3")]
    r = client.post("/api/v1/loans/batch", headers={**bank, **ASYNC}, json={"items": items})
    loans, refusals = _count(session, Loan), _count(session, FilingRefusal)
    real, calls = loans_repo.add_to_quota, []

    def full_once(s: Session, quota_id: int, fen: int) -> bool:
        calls.append(fen)
        return False if len(calls) == 1 else real(s, quota_id, fen)

    monkeypatch.setattr(loans_repo, "add_to_quota", full_once)
    _worker(app, settings).run_pending()
    job = client.get(r.headers["location"], headers=bank).json()
    assert (job["status"], job["accepted"], job["refused"]) == ("succeeded", 1, 2)
    results = _page_all(client, bank, job["results_url"])
    assert [(x["status"], x["code"]) for x in results] == [
        ("refused", "annual_quota_exceeded"),
        ("refused", "rate_above_cap"),
        ("accepted", None),
    ]
    assert results[0]["errors"][0]["rule"] == "SKD-F6"
    assert results[0]["errors"][0]["loc"][:2] == ["items", 0]
    assert _count(session, Loan) == loans + 1
    kept = session.scalars(
        select(FilingRefusal.contract_no).order_by(FilingRefusal.id).offset(refusals)
    ).all()
    assert sorted(kept) == ["Q-1", "Q-2"]


def test_only_the_submitting_bank_and_the_administrator_see_a_job(
    client: TestClient, auth, session: Session
) -> None:  # type: ignore[no-untyped-def]
    """#16 part 5: another bank, or another role, gets 404 for the job and its results,
    as for a job that does not exist."""
    items = [skd_filing(member_enterprise(session).credit_code, "V-1")]
    r = client.post(
        "/api/v1/loans/batch", headers={**auth("bank_jsb"), **ASYNC}, json={"items": items}
    )
    job = r.json()
    for who in ("bank_jsb", "admin"):
        assert client.get(r.headers["location"], headers=auth(who)).status_code == 200
        assert client.get(job["results_url"], headers=auth(who)).status_code == 200
    for who in ("bank_icbc", "city_nanjing", "province", "regulator"):
        seen = client.get(r.headers["location"], headers=auth(who))
        assert seen.status_code == 404 and seen.json()["code"] == "not_found", who
        assert client.get(job["results_url"], headers=auth(who)).status_code == 404
    missing = client.get(f"/api/v1/loans/batch/jobs/{job['id'] + 1000}", headers=auth("admin"))
    assert missing.status_code == 404


def test_an_idempotent_retry_returns_the_same_job(
    client: TestClient, auth, session: Session
) -> None:  # type: ignore[no-untyped-def]
    """#16 part 5, L-4: the same async batch sent again with its `Idempotency-Key` is the
    same job (replayed 202, same `Location`), and no second job is queued."""
    items = [skd_filing(member_enterprise(session).credit_code, "I-1")]
    h = {**auth("bank_jsb"), **ASYNC, "Idempotency-Key": "job-1"}
    jobs_before = _count(session, BatchJob)
    first = client.post("/api/v1/loans/batch", headers=h, json={"items": items})
    again = client.post("/api/v1/loans/batch", headers=h, json={"items": items})
    assert first.status_code == again.status_code == 202
    assert again.headers["idempotent-replayed"] == "true"
    assert again.headers["location"] == first.headers["location"]
    assert again.headers["preference-applied"] == "respond-async"
    assert again.json()["id"] == first.json()["id"]
    assert _count(session, BatchJob) == jobs_before + 1
    other = client.post("/api/v1/loans/batch", headers=h, json={"items": items * 2})
    assert other.status_code == 409


def test_bad_input_is_a_problem_never_a_500(
    client: TestClient, auth, session: Session, app: FastAPI, settings: Settings
) -> None:  # type: ignore[no-untyped-def]
    """#16 part 5: malformed bodies, ids and cursors are 4xx problems; a malformed item
    of a job is its refused result, as in the synchronous answer."""
    bank = {**auth("bank_jsb"), **ASYNC}
    url = "/api/v1/loans/batch"
    assert client.post(url, headers=bank, json={"items": []}).status_code == 422
    assert client.post(url, headers=bank, json={"items": [{}] * 10_001}).status_code == 422
    assert client.post(url, headers=bank, json={"items": "x"}).status_code == 422
    assert client.post(url, headers=bank, content=b"{").status_code == 422
    assert (
        client.post(url, headers={**auth("province"), **ASYNC}, json={"items": [{}]}).status_code
        == 403
    )
    for bad in ("0", "-1", "abc", str(2**63)):
        got = client.get(f"/api/v1/loans/batch/jobs/{bad}", headers=auth("admin"))
        assert got.status_code == 422, bad
    r = client.post(url, headers=bank, json={"items": [{"program": "SKD"}, [1], 7]})
    assert r.status_code == 422  # an item that is not an object, as synchronously
    r = client.post(url, headers=bank, json={"items": [{"program": "SKD", "principal": "x"}]})
    assert r.status_code == 202, r.text
    _worker(app, settings).run_pending()
    job = client.get(r.headers["location"], headers=auth("bank_jsb")).json()
    assert (job["status"], job["refused"]) == ("succeeded", 1)
    result = client.get(job["results_url"], headers=auth("bank_jsb")).json()["items"][0]
    assert result["code"] == "validation_error" and result["errors"]
    cursor = client.get(job["results_url"], headers=auth("bank_jsb"), params={"cursor": "!!"})
    assert cursor.status_code == 422 and cursor.json()["code"] == "invalid_cursor"
    # a synchronous request with another preference stays synchronous
    sync = client.post(
        url,
        headers={**auth("bank_jsb"), "Prefer": "return=minimal"},
        json={"items": [{"program": "SKD"}]},
    )
    assert sync.status_code == 200 and sync.json()["refused"] == 1


def test_finished_jobs_are_forgotten_after_the_retention_their_loans_kept(
    client: TestClient, auth, session: Session, app: FastAPI, settings: Settings
) -> None:  # type: ignore[no-untyped-def]
    """#16 part 5: `ledger purge-expired` forgets a job finished before the retention,
    its items and results with it (404 afterwards); a job finished since, or not
    finished, stays; the loans a job filed stay."""
    bank = auth("bank_jsb")
    urls = []
    for n in range(3):
        items = [skd_filing(member_enterprise(session).credit_code, f"G-{n}")]
        r = client.post("/api/v1/loans/batch", headers={**bank, **ASYNC}, json={"items": items})
        urls.append((r.json()["id"], r.headers["location"]))
        if n < 2:
            _worker(app, settings).run_pending()
    old, recent, queued = (job_id for job_id, _ in urls)
    now = datetime.now(UTC)
    session.execute(
        update(BatchJob).where(BatchJob.id == old).values(finished_at=now - timedelta(days=31))
    )
    loans = _count(session, Loan)
    assert jobs.purge_finished(session, before=now - timedelta(days=30)) == 1
    session.commit()
    assert [client.get(url, headers=bank).status_code for _, url in urls] == [404, 200, 200]
    assert (
        session.scalar(
            select(func.count()).select_from(BatchJobItem).where(BatchJobItem.job_id == old)
        )
        == 0
    )
    assert _count(session, Loan) == loans
    assert session.scalar(select(BatchJob.status).where(BatchJob.id == queued)) == "queued"
    assert recent != old


def test_prefer_parsing() -> None:
    from app.loans.endpoints import _prefers_async

    assert _prefers_async("respond-async")
    assert _prefers_async("return=minimal, Respond-Async; wait=5")
    assert not _prefers_async("return=minimal") and not _prefers_async(None)
    assert not _prefers_async("respond-asynchronously")


# --- the worker the app starts, on a database of its own ---------------------------------
@pytest.fixture
def live_url(backend: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    yield from seeded_database_url(backend, tmp_path_factory, "jobs")


def _wait(client: TestClient, headers: dict[str, str], location: str) -> dict[str, Any]:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        job = client.get(location, headers=headers).json()
        if job["status"] in ("succeeded", "failed"):
            return job
        time.sleep(0.1)
    raise AssertionError(f"the job did not finish: {job}")


def test_the_apps_worker_files_a_job_and_takes_back_a_dead_workers_job_at_start(
    live_url: str,
) -> None:
    """#16 part 5: the worker started with the app runs a submitted job to the end on
    its own; and a job a dead worker left running (stale heartbeat, one chunk
    committed) is queued again when the app starts and finished from its next item."""
    from tests.conftest import token_for

    settings = Settings(
        database_url=live_url,
        app_env="demo",
        app_today=TEST_TODAY,
        log_json=False,
        batch_job_chunk=2,
        batch_job_poll_seconds=0.1,
        batch_job_stale_seconds=5,
    )
    engine = make_engine(live_url)
    with Session(engine, expire_on_commit=False) as session:
        items = [skd_filing(member_enterprise(session).credit_code, f"L-{i}") for i in range(5)]
        token = token_for(settings, session, "bank_jsb")
        # a job a worker of an earlier process claimed, filed 2 items of, and died
        from app.auth.principal import Principal
        from app.models import User

        user = session.scalars(select(User).where(User.username == "bank_jsb")).one()
        job = jobs.submit(
            session,
            items=items,
            principal=Principal.of(user),
            today=TEST_TODAY,
            now=datetime.now(UTC),
        )
        session.commit()
        old = JobWorker(
            sessionmaker_of(engine), settings.model_copy(), Clock(TEST_TODAY), name="dead"
        )
        assert old.claim() == job.id and old.run_chunk(job.id)
        session.execute(
            update(BatchJob)
            .where(BatchJob.id == job.id)
            .values(heartbeat_at=datetime.now(UTC) - timedelta(minutes=5))
        )
        session.commit()
    headers = {"Authorization": f"Bearer {token}"}
    app = create_app(settings, engine=engine, clock=Clock(TEST_TODAY))
    with TestClient(app, raise_server_exceptions=False) as client:
        left = _wait(client, headers, f"/api/v1/loans/batch/jobs/{job.id}")
        assert (left["status"], left["done"], left["accepted"]) == ("succeeded", 5, 5)
        more = [skd_filing("91320100MA1ZZZZZZX", "L-9"), items[0]]
        r = client.post("/api/v1/loans/batch", headers={**headers, **ASYNC}, json={"items": more})
        assert r.status_code == 202, r.text
        new = _wait(client, headers, r.headers["location"])
        assert (new["status"], new["refused"]) == ("succeeded", 2)
        codes = [x["code"] for x in client.get(new["results_url"], headers=headers).json()["items"]]
        assert codes == ["unknown_enterprise", "already_exists"]
    with Session(engine) as session:
        assert (
            session.scalar(
                select(func.count()).select_from(Loan).where(Loan.contract_no.like("L-%"))
            )
            == 5
        )
        rows = session.scalar(
            select(func.count()).select_from(BatchJobItem).where(BatchJobItem.job_id == job.id)
        )
        assert rows == 5
    engine.dispose()


def sessionmaker_of(engine: Any) -> Any:
    from app.db import make_sessionmaker

    return make_sessionmaker(engine)


def test_two_workers_never_take_the_same_job_and_neither_waits(pg_engine: Any) -> None:
    """#16 part 5, PostgreSQL: a worker claims the oldest queued job with
    `FOR UPDATE SKIP LOCKED` — while another worker's claim holds the first job's row,
    this one takes the next job at once instead of waiting for it."""
    from concurrent.futures import ThreadPoolExecutor

    from app.auth.principal import Principal
    from app.db import make_sessionmaker
    from app.models import User

    settings = Settings(database_url="postgresql://unused", app_env="demo", log_json=False)
    sessions = make_sessionmaker(pg_engine)
    with sessions() as s:
        user = s.scalars(select(User).where(User.username == "bank_jsb")).one()
        first, second = (
            jobs.submit(
                s,
                items=[skd_filing("91320100MA1ZZZZZZX", f"W-{n}")],
                principal=Principal.of(user),
                today=TEST_TODAY,
                now=datetime.now(UTC),
            ).id
            for n in range(2)
        )
        s.commit()
    holder, pool = sessions(), ThreadPoolExecutor(1)
    try:
        held = holder.scalar(
            select(BatchJob.id)
            .where(BatchJob.status == "queued")
            .order_by(BatchJob.id)
            .limit(1)
            .with_for_update(skip_locked=True)
        )
        assert held == first  # a claim in flight on the oldest job
        worker = JobWorker(sessions, settings, Clock(TEST_TODAY))
        claimed = pool.submit(worker.claim).result(timeout=10)  # never waits for `held`
        assert claimed == second
    finally:
        holder.rollback()
        holder.close()
        pool.shutdown()
    assert JobWorker(sessions, settings, Clock(TEST_TODAY)).claim() == first
    with sessions() as s:
        s.execute(update(BatchJob).where(BatchJob.id.in_([first, second])).values(status="failed"))
        s.commit()


def test_contention_runs_a_chunk_again_then_queues_the_job_never_fails_it(
    client: TestClient,
    auth,  # type: ignore[no-untyped-def]
    session: Session,
    app: FastAPI,
    settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """#16 part 5: contention reported by the driver itself (psycopg's 40P01 from the
    ledger's pipeline or COPY, 55P03 a lock timeout) is not a fault: the chunk runs again
    and succeeds; when it never does, the job is queued again — not failed — the worker
    pauses (`JobsBusy`), and the handing back is not counted as a worker's death."""
    import psycopg

    monkeypatch.setattr(jobs.time, "sleep", lambda _s: None)
    bank = auth("bank_jsb")
    items = [skd_filing(member_enterprise(session).credit_code, f"C-{i}") for i in range(3)]
    r = client.post("/api/v1/loans/batch", headers={**bank, **ASYNC}, json={"items": items})
    job_id = r.json()["id"]
    worker = _worker(app, settings)
    chunk = worker._chunk
    raised: list[int] = []

    def once_deadlocked(job: int) -> bool:
        if not raised:
            raised.append(job)
            raise psycopg.errors.DeadlockDetected("deadlock detected")
        return chunk(job)

    worker._chunk = once_deadlocked  # type: ignore[method-assign]
    assert worker.claim() == job_id
    assert worker.run_chunk(job_id) is True and raised == [job_id]
    job = client.get(r.headers["location"], headers=bank).json()
    assert (job["status"], job["done"]) == ("running", 2)

    def always_locked(job: int) -> bool:
        raise psycopg.errors.LockNotAvailable("canceling statement due to lock timeout")

    worker._chunk = always_locked  # type: ignore[method-assign]
    with pytest.raises(jobs.JobsBusy):
        worker.run_chunk(job_id)
    stored = session.get(BatchJob, job_id)
    assert stored is not None
    session.refresh(stored)
    assert (stored.status, stored.worker, stored.done, stored.attempts) == ("queued", None, 2, 0)
    assert _worker(app, settings).run_pending() == 1
    job = client.get(r.headers["location"], headers=bank).json()
    assert (job["status"], job["done"], job["accepted"]) == ("succeeded", 3, 3)


def test_a_submitter_disabled_meanwhile_fails_the_job_and_nothing_more_is_filed(
    client: TestClient,
    auth,  # type: ignore[no-untyped-def]
    session: Session,
    app: FastAPI,
    settings: Settings,
) -> None:
    """#16 part 5: the items are filed in the submitter's name; once that user is
    disabled, the job stops with the reason and the chunks already committed stay."""
    from app.models import User

    bank = auth("bank_jsb")
    items = [skd_filing(member_enterprise(session).credit_code, f"D-{i}") for i in range(3)]
    r = client.post("/api/v1/loans/batch", headers={**bank, **ASYNC}, json={"items": items})
    job_id = r.json()["id"]
    worker = _worker(app, settings)
    assert worker.claim() == job_id and worker.run_chunk(job_id) is True
    loans_before = _count(session, Loan)
    session.execute(update(User).where(User.username == "bank_jsb").values(is_active=False))
    session.commit()
    assert worker.run_chunk(job_id) is False
    stored = session.get(BatchJob, job_id)
    assert stored is not None
    session.refresh(stored)
    assert (stored.status, stored.done, stored.accepted) == ("failed", 2, 2)
    assert stored.error is not None and "bank_jsb was disabled" in stored.error
    assert _count(session, Loan) == loans_before


def test_a_worker_blocked_on_the_database_does_not_hold_the_apps_shutdown(
    app: FastAPI, settings: Settings
) -> None:
    """#16 part 5: the app's shutdown waits for the worker's chunk in hand for a bounded
    time only — a worker stuck behind SQLite's write lock (held by a request the server's
    graceful timeout cut off) must not keep the process from exiting."""
    import threading

    worker = _worker(app, settings)
    blocked, release = threading.Event(), threading.Event()

    def stuck() -> int:
        blocked.set()
        release.wait(10)
        return 0

    worker.run_pending = stuck  # type: ignore[method-assign]

    async def main() -> float:
        worker.start()
        while not blocked.is_set():
            await asyncio.sleep(0.01)
        t = time.perf_counter()
        await worker.stop(timeout=0.2)
        return time.perf_counter() - t

    try:
        waited = asyncio.run(main())
    finally:
        release.set()
    assert 0.2 <= waited < 5, waited
