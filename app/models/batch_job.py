"""Batches of loan filings run as jobs (`POST /loans/batch` with `Prefer: respond-async`,
#16 part 5): the job, and one row per item with its filing and, once its chunk has
committed, its result."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import JSON, CheckConstraint, ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import Base, BigIntPK, utcnow
from app.models.reference import _in

JOB_STATUSES = ("queued", "running", "succeeded", "failed")


class BatchJob(Base):
    __tablename__ = "batch_jobs"
    __table_args__ = (
        CheckConstraint(_in("status", JOB_STATUSES), name="status"),
        CheckConstraint("done >= 0 AND done <= total", name="done_in_range"),
        CheckConstraint("accepted + refused = done", name="counts_add_up"),
        Index("ix_batch_jobs_status_id", "status", "id"),
    )

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    bank_code: Mapped[str] = mapped_column(ForeignKey("banks.code"), index=True)
    submitted_by_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    status: Mapped[str] = mapped_column(String(16), default="queued")
    # the business date the items are filed on: the submission's (SPEC M-5)
    business_date: Mapped[date]
    total: Mapped[int]
    done: Mapped[int] = mapped_column(default=0)  # items whose chunk has committed
    accepted: Mapped[int] = mapped_column(default=0)
    refused: Mapped[int] = mapped_column(default=0)
    attempts: Mapped[int] = mapped_column(default=0)  # times a worker claimed it
    worker: Mapped[str | None] = mapped_column(String(64))  # the worker running it
    error: Mapped[str | None] = mapped_column(Text)  # why it failed
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    started_at: Mapped[datetime | None]
    # the running worker's last sign of life: set when it claims the job and at each
    # committed chunk; a running job silent for longer than BATCH_JOB_STALE_SECONDS is
    # taken back (app/loans/jobs.py)
    heartbeat_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]


class BatchJobItem(Base):
    __tablename__ = "batch_job_items"

    job_id: Mapped[int] = mapped_column(
        ForeignKey("batch_jobs.id", ondelete="CASCADE"), primary_key=True
    )
    idx: Mapped[int] = mapped_column(primary_key=True)  # the item's position in the batch
    item: Mapped[Any] = mapped_column(JSON)  # the filing as sent
    result: Mapped[dict[str, Any] | None] = mapped_column(JSON)  # as the batch answers it
