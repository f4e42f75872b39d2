"""Batches of loan filings run as jobs (#16 part 5).

`POST /loans/batch` with `Prefer: respond-async` stores the batch — the job, queued, and
one row per item — and answers 202 at once. A worker in each process of the service
(`JobWorker`, started with the app) files the items:

* **Claiming.** A worker takes the oldest queued job: `SELECT … FOR UPDATE SKIP LOCKED`
  on PostgreSQL, so two workers never take the same job and neither waits for the other;
  SQLite has one writer at a time anyway. The job becomes `running`, named after the
  worker, its `attempts` counted.
* **Chunks.** The items are filed `BATCH_JOB_CHUNK` (1,000) at a time, in order, each
  chunk exactly as a synchronous batch of those items (`service.file_batch`, with the
  job's business date and the submitting user), in a transaction of its own that also
  stores the chunk's results in its items' rows and moves the job's counters (`done`,
  `accepted`, `refused`) and heartbeat on. A chunk is atomic: either its loans, ledger
  entries, results and counters are all committed, or none is (a chunk refused at its
  commit keeps its refusal records in a transaction of their own first, then its
  results and counters; a crash between the two runs the chunk again, and the refusal
  records are not written twice). The
  chunk's transaction takes the job's row lock first and checks the job is still this
  worker's; then the locks of any batch (enterprises, the quota at commit, the ledger's
  chain head last).
* **What commits together.** A synchronous batch commits all its accepted items in one
  transaction; a job commits chunk by chunk. Items of later chunks see the loans of the
  earlier ones (SKD-F3, F6 and XB-P1 apply across the whole batch, as committed), but a
  failure stops the job after its last committed chunk, whose loans stay filed. When
  SKD-F6's quota, counted again at a chunk's commit, no longer fits, that chunk's
  accepted items are refused (`annual_quota_exceeded`, with a refusal record each, as a
  batch refused whole at commit keeps them) and the job goes on with the next chunk.
* **A worker that dies** (killed, its machine lost) leaves its job `running` with a
  heartbeat that no longer moves. Every worker, at start and whenever it looks for work,
  takes back a running job whose heartbeat is older than `BATCH_JOB_STALE_SECONDS`: it
  is queued again and resumes after its last committed chunk — safe because a chunk is
  atomic (the dead worker's unfinished chunk was rolled back by the database with its
  connection) and `done` moved with it. A job whose worker died for the
  `MAX_ATTEMPTS`-th time (3) is marked failed instead, so a batch that kills its
  worker cannot take every worker down in turn. A worker stopped with the app (a
  deploy) gives its job back to the queue between two chunks. Re-queuing rather than
  failing keeps a deploy or a crash from losing the submitter's batch; the stale delay
  keeps a slow but live worker's job from being taken over (its next chunk would find
  the job no longer its own and stop).
* **An error** that is not a refusal (a fault of the service) fails the job with a
  message; contention (deadlocks, serialization failures, lock and statement timeouts)
  is retried like a request's (`uow.ATTEMPTS`), then the job is queued again and the
  worker pauses. A submitter disabled (or moved to another bank) meanwhile fails the
  job: its remaining items are not filed in their name. A job handed back by a stopping
  worker does not count as one of its `MAX_ATTEMPTS`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random
import socket
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

import psycopg
from sqlalchemy import delete, event, insert, select, update
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session, sessionmaker
from starlette.concurrency import run_in_threadpool

from app.audit import capture as audit
from app.auth.principal import Principal
from app.calendar.service import MODE_KEY as CALENDAR_MODE
from app.calendar.service import share_with_writers
from app.config import Settings
from app.errors import BUSY_SQLSTATES, AppError
from app.kit.clock import Clock
from app.kit.uow import ATTEMPTS, retryable, roll_back_and_keep, sqlstate
from app.loans import service
from app.loans.schemas import BatchItemError, BatchItemResult
from app.models import BatchJob, BatchJobItem, User

log = logging.getLogger("app.jobs")
MAX_ATTEMPTS = 3  # claims of one job before a worker that keeps dying fails it


def submit(
    session: Session,
    *,
    items: Sequence[dict[str, Any]],
    principal: Principal,
    today: date,
    now: datetime,
) -> BatchJob:
    """Store the batch as a queued job, its items one row each (in the caller's
    transaction)."""
    assert principal.bank_code is not None  # the endpoint takes banks only
    job = BatchJob(
        bank_code=principal.bank_code,
        submitted_by_id=principal.user_id,
        status="queued",
        business_date=today,
        total=len(items),
        done=0,
        accepted=0,
        refused=0,
        attempts=0,
        created_at=now,
    )
    session.add(job)
    session.flush()
    session.execute(
        insert(BatchJobItem),
        [{"job_id": job.id, "idx": i, "item": item} for i, item in enumerate(items)],
    )
    return job


def purge_finished(session: Session, *, before: datetime) -> int:
    """Forget the jobs that finished before `before`, with their items and results
    (`ledger purge-expired`, after the idempotency retention: a retried submission can no
    longer name them either); the loans they filed stay. Returns how many jobs."""
    old = select(BatchJob.id).where(
        BatchJob.status.in_(("succeeded", "failed")), BatchJob.finished_at < before
    )
    ids = list(session.scalars(old))
    for start in range(0, len(ids), 1000):
        part = ids[start : start + 1000]
        session.execute(delete(BatchJobItem).where(BatchJobItem.job_id.in_(part)))
        session.execute(delete(BatchJob).where(BatchJob.id.in_(part)))
    return len(ids)


def visible(job: BatchJob | None, principal: Principal) -> bool:
    """The submitting bank's users and the administrator see a job; nobody else (404)."""
    if job is None:
        return False
    return principal.role == "admin" or (
        principal.role == "bank" and principal.bank_code == job.bank_code
    )


def results_stmt(job_id: int) -> Any:
    return select(BatchJobItem).where(
        BatchJobItem.job_id == job_id, BatchJobItem.result.is_not(None)
    )


def _quota_refused(result: BatchItemResult, error: AppError) -> BatchItemResult:
    """An item the rules accepted, refused at its chunk's commit by SKD-F6's quota."""
    return BatchItemResult(
        index=result.index,
        contract_no=result.contract_no,
        status="refused",
        code=error.code,
        errors=[
            BatchItemError(
                loc=["items", result.index, *[str(p) for p in v.loc[1:]]],
                msg=v.msg,
                code=v.code,
                rule=v.rule,
            )
            for v in error.errors
        ]
        or [BatchItemError(loc=["items", result.index], msg=error.detail, code=error.code)],
    )


def file_next(
    session: Session, job: BatchJob, *, limit: int, now: datetime
) -> list[BatchItemResult]:
    """File the job's next `limit` items in the session's transaction, as the submitting
    user on the job's business date, and record their results (`record`)."""
    rows = session.scalars(
        select(BatchJobItem)
        .where(BatchJobItem.job_id == job.id, BatchJobItem.idx >= job.done)
        .order_by(BatchJobItem.idx)
        .limit(limit)
    ).all()
    user = session.get(User, job.submitted_by_id)
    assert user is not None  # users are never deleted
    if not user.is_active or user.role != "bank" or user.bank_code != job.bank_code:
        raise SubmitterGone(
            f"its submitter {user.username} was disabled or moved from bank {job.bank_code}; "
            "the remaining items were not filed"
        )
    principal = Principal(
        user_id=user.id, username=user.username, role="bank", bank_code=job.bank_code
    )
    audit.set_user(session, user_id=user.id, username=user.username, role="bank")
    results = service.file_batch(
        session,
        items=[r.item for r in rows],
        principal=principal,
        today=job.business_date,
        now=now,
        start=job.done,
    )
    record(job, rows, results, now=now)
    return results


def record(
    job: BatchJob, rows: Sequence[BatchJobItem], results: list[BatchItemResult], *, now: datetime
) -> None:
    """A chunk's results into its items; the job's counters and heartbeat moved on, and
    the job succeeded once every item has its result."""
    for row, result in zip(rows, results, strict=True):
        row.result = result.model_dump(mode="json")
    accepted = sum(1 for r in results if r.status == "accepted")
    job.done += len(results)
    job.accepted += accepted
    job.refused += len(results) - accepted
    job.heartbeat_at = now
    if job.done >= job.total:
        job.status, job.finished_at, job.worker = "succeeded", now, None


# how long the app's shutdown waits for the worker's chunk in hand
STOP_SECONDS = 1.0


class JobsBusy(Exception):
    """The database refused a chunk under contention every time: the job is queued
    again and the worker pauses before its next pass."""


def _contended(exc: BaseException) -> bool:
    return retryable(exc) or sqlstate(exc) in BUSY_SQLSTATES


class SubmitterGone(Exception):
    """The user who submitted the job was disabled, or no longer a user of its bank:
    its remaining items are not filed in their name."""


@dataclass
class JobWorker:
    """Runs the queued batch jobs of the database its sessions use."""

    sessions: sessionmaker[Session]
    settings: Settings
    clock: Clock
    name: str = field(
        default_factory=lambda: f"{socket.gethostname()[:40]}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
    )
    _stop: asyncio.Event | None = None
    _wake: asyncio.Event | None = None
    _loop: asyncio.AbstractEventLoop | None = None
    _task: asyncio.Task[None] | None = None

    # --- the background loop ---------------------------------------------------------
    def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop, self._wake = asyncio.Event(), asyncio.Event()
        self._task = asyncio.create_task(self._serve(), name="batch-jobs")

    async def stop(self, timeout: float = STOP_SECONDS) -> None:
        """Stop after the chunk in hand (committed or rolled back: never half), waiting
        at most `timeout` seconds: a worker blocked on the database (SQLite's write lock
        held by a long request that the server's shutdown cut off) must not keep the
        process alive. Left behind, its chunk's transaction is rolled back with the
        process's connections, and the job, silent, is taken back by the next worker."""
        if self._task is None or self._stop is None:
            return
        self._stop.set()
        self.wake()
        try:
            await asyncio.wait_for(asyncio.shield(self._task), timeout)
        except TimeoutError:
            log.warning("the batch jobs' worker did not stop within %s s; left behind", timeout)
        self._task = None

    def wake(self) -> None:
        """A job was queued (callable from any thread)."""
        if self._loop is not None and self._wake is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self._wake.set)

    def wake_after_commit(self, session: Session) -> None:
        """Wake the worker once `session`'s transaction has committed the new job."""
        event.listen(session, "after_commit", lambda _s: self.wake(), once=True)

    async def _serve(self) -> None:
        assert self._stop is not None and self._wake is not None
        failures = 0
        while not self._stop.is_set():
            self._wake.clear()
            try:
                await run_in_threadpool(self.run_pending)
                failures = 0
            except JobsBusy as exc:  # contention: the job is queued again; pause
                failures += 1
                log.warning("%s; the job is queued again", exc)
            except Exception:  # the database away: try again, less and less often
                failures += 1
                log.exception("the batch jobs' worker failed (%d in a row); retrying", failures)
            pause = self.settings.batch_job_poll_seconds * 2 ** min(failures, 6)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=min(pause, 60))

    def _stopping(self) -> bool:
        return self._stop is not None and self._stop.is_set()

    # --- one pass: take back, claim, run ---------------------------------------------
    def run_pending(self) -> int:
        """Take back stale jobs, then run queued jobs until none is left (or the worker
        is stopping); how many jobs this pass finished."""
        self.recover()
        finished = 0
        while not self._stopping():
            job_id = self.claim()
            if job_id is None:
                break
            while not self._stopping() and self.run_chunk(job_id):
                pass
            if self._stopping():
                self.release(job_id)
                break
            finished += 1
        return finished

    def release(self, job_id: int) -> None:
        """Give a running job of this worker's back to the queue (the app stops between
        two chunks): the next worker resumes it at once, without waiting for it to go
        stale."""
        with self.sessions() as session:
            session.execute(
                update(BatchJob)
                .where(
                    BatchJob.id == job_id,
                    BatchJob.status == "running",
                    BatchJob.worker == self.name,
                )
                # a job handed back is not a worker's death (MAX_ATTEMPTS counts those)
                .values(status="queued", worker=None, attempts=BatchJob.attempts - 1)
            )
            session.commit()

    def recover(self) -> int:
        """Queue again (or, after `MAX_ATTEMPTS`, fail) every running job whose worker
        has been silent for `BATCH_JOB_STALE_SECONDS`; how many."""
        now = self.clock.now()
        cutoff = now - timedelta(seconds=self.settings.batch_job_stale_seconds)
        with self.sessions() as session:
            stale = session.scalars(
                select(BatchJob)
                .where(BatchJob.status == "running", BatchJob.heartbeat_at < cutoff)
                .order_by(BatchJob.id)
                .with_for_update(skip_locked=True)
            ).all()
            for job in stale:
                log.warning(
                    "batch job %d: worker %s silent since %s; %s after item %d",
                    job.id,
                    job.worker,
                    job.heartbeat_at,
                    "failed" if job.attempts >= MAX_ATTEMPTS else "queued again",
                    job.done,
                )
                job.worker = None
                if job.attempts >= MAX_ATTEMPTS:
                    job.status, job.finished_at = "failed", now
                    job.error = (
                        f"its worker stopped {job.attempts} times before finishing; the "
                        f"first {job.done} items are filed (see the results)"
                    )
                else:
                    job.status = "queued"
            session.commit()
            return len(stale)

    def claim(self) -> int | None:
        """A running job of this worker's (one it was stopped in), else the oldest
        queued job, now this worker's; None when none waits."""
        now = self.clock.now()
        with self.sessions() as session:
            own = session.scalar(
                select(BatchJob.id)
                .where(BatchJob.status == "running", BatchJob.worker == self.name)
                .order_by(BatchJob.id)
                .limit(1)
            )
            if own is not None:
                session.rollback()
                return int(own)
            job_id = session.scalar(
                select(BatchJob.id)
                .where(BatchJob.status == "queued")
                .order_by(BatchJob.id)
                .limit(1)
                .with_for_update(skip_locked=True)
            )
            if job_id is None:
                session.rollback()
                return None
            session.execute(
                update(BatchJob)
                .where(BatchJob.id == job_id, BatchJob.status == "queued")
                .values(
                    status="running",
                    worker=self.name,
                    attempts=BatchJob.attempts + 1,
                    started_at=now,
                    heartbeat_at=now,
                )
            )
            session.commit()
            return int(job_id)

    def run_chunk(self, job_id: int) -> bool:
        """File the job's next chunk; True while items remain. Contention — a deadlock,
        a serialization failure, a lock or statement timeout, whether SQLAlchemy or the
        driver reports it — runs the chunk again (bounded, backing off), then gives the
        job back to the queue and raises `JobsBusy` so the worker waits before its next
        pass; a request would have answered 503. Another fault fails the job."""
        for attempt in range(1, ATTEMPTS + 1):
            try:
                return self._chunk(job_id)
            except (DBAPIError, psycopg.Error) as exc:
                if not _contended(exc):
                    return self._fail(job_id, exc)
                if attempt == ATTEMPTS:
                    self.release(job_id)
                    raise JobsBusy(f"batch job {job_id}: {sqlstate(exc)} {ATTEMPTS} times") from exc
                time.sleep(random.uniform(0.01, 0.04) * 2**attempt)  # noqa: S311
            except Exception as exc:
                return self._fail(job_id, exc)
        raise AssertionError("unreachable")  # pragma: no cover

    def _session(self) -> Session:
        session = self.sessions()
        session.info[CALENDAR_MODE] = self.settings.calendar_unpublished
        share_with_writers(session)  # a chunk computes filing deadlines (M-3)
        return session

    def _chunk(self, job_id: int) -> bool:
        session = self._session()
        try:
            job = session.scalars(
                select(BatchJob).where(BatchJob.id == job_id).with_for_update()
            ).one_or_none()
            if job is None or job.status != "running" or job.worker != self.name:
                session.rollback()  # taken back meanwhile: no longer this worker's
                return False
            start = job.done
            results = file_next(
                session, job, limit=self.settings.batch_job_chunk, now=self.clock.now()
            )
            job.heartbeat_at = self.clock.now()  # the chunk's end, not its start
            try:
                session.commit()
            except AppError as exc:  # SKD-F6 counted again at commit: the chunk refused
                roll_back_and_keep(session, exc)  # its refusal records (SKD-A1)
                self._refused_at_commit(job_id, start, results, exc)
            return self._more(job_id)
        finally:
            session.close()

    def _refused_at_commit(
        self, job_id: int, start: int, results: list[BatchItemResult], error: AppError
    ) -> None:
        session = self._session()
        try:
            job = session.scalars(
                select(BatchJob).where(BatchJob.id == job_id).with_for_update()
            ).one()
            if job.status != "running" or job.worker != self.name or job.done != start:
                session.rollback()
                return
            rows = session.scalars(
                select(BatchJobItem)
                .where(BatchJobItem.job_id == job_id, BatchJobItem.idx >= start)
                .order_by(BatchJobItem.idx)
                .limit(len(results))
            ).all()
            refused = [_quota_refused(r, error) if r.status == "accepted" else r for r in results]
            record(job, rows, refused, now=self.clock.now())
            session.commit()
        finally:
            session.close()

    def _more(self, job_id: int) -> bool:
        with self.sessions() as session:
            status = session.scalar(select(BatchJob.status).where(BatchJob.id == job_id))
            return status == "running"

    def _fail(self, job_id: int, exc: BaseException) -> bool:
        log.error("batch job %d failed", job_id, exc_info=exc)
        detail = (
            exc.detail
            if isinstance(exc, AppError)
            else str(exc)
            if isinstance(exc, SubmitterGone)
            else exc.__class__.__name__
        )
        with self.sessions() as session:
            job = session.get(BatchJob, job_id)
            if job is not None and job.status == "running" and job.worker == self.name:
                job.status, job.finished_at, job.worker = "failed", self.clock.now(), None
                job.error = (
                    f"a fault of the service while filing items from {job.done} on "
                    f"({detail}); the first {job.done} items are filed (see the results)"
                )
                session.commit()
        return False
