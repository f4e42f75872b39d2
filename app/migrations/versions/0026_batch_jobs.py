"""batch_jobs, batch_job_items: batches of loan filings run as jobs (#16 part 5)

Revision ID: 0026_batch_jobs
Revises: 0025_day_totals_security
Create Date: 2026-12-04 00:10:00

`POST /loans/batch` with `Prefer: respond-async` stores the batch as a job (queued) and
its items, one row each; a worker of the service (app/loans/jobs.py) files them in
chunks, each chunk in its own transaction that also writes the chunk's results into its
items' rows and moves the job's counters on. Any worker can answer `GET` on the job,
and a job outlives the worker that ran it. Self-contained: two new tables, nothing else
touched.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0026_batch_jobs"
down_revision: str | None = "0025_day_totals_security"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
WHEN = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "batch_jobs",
        sa.Column("id", ID, autoincrement=True, nullable=False),
        sa.Column("bank_code", sa.String(32), nullable=False),
        sa.Column("submitted_by_id", ID, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("business_date", sa.Date(), nullable=False),
        sa.Column("total", sa.Integer(), nullable=False),
        sa.Column("done", sa.Integer(), nullable=False),
        sa.Column("accepted", sa.Integer(), nullable=False),
        sa.Column("refused", sa.Integer(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("worker", sa.String(64), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("created_at", WHEN, nullable=False),
        sa.Column("started_at", WHEN, nullable=True),
        sa.Column("heartbeat_at", WHEN, nullable=True),
        sa.Column("finished_at", WHEN, nullable=True),
        sa.CheckConstraint(
            "status IN ('queued', 'running', 'succeeded', 'failed')",
            name=op.f("ck_batch_jobs_status"),
        ),
        sa.CheckConstraint("done >= 0 AND done <= total", name=op.f("ck_batch_jobs_done_in_range")),
        sa.CheckConstraint("accepted + refused = done", name=op.f("ck_batch_jobs_counts_add_up")),
        sa.ForeignKeyConstraint(
            ["bank_code"], ["banks.code"], name=op.f("fk_batch_jobs_bank_code_banks")
        ),
        sa.ForeignKeyConstraint(
            ["submitted_by_id"], ["users.id"], name=op.f("fk_batch_jobs_submitted_by_id_users")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_batch_jobs")),
    )
    op.create_index("ix_batch_jobs_bank_code", "batch_jobs", ["bank_code"])
    op.create_index("ix_batch_jobs_submitted_by_id", "batch_jobs", ["submitted_by_id"])
    op.create_index("ix_batch_jobs_status_id", "batch_jobs", ["status", "id"])
    op.create_table(
        "batch_job_items",
        sa.Column("job_id", ID, nullable=False),
        sa.Column("idx", sa.Integer(), nullable=False),
        sa.Column("item", sa.JSON(), nullable=False),
        sa.Column("result", sa.JSON(), nullable=True),
        sa.ForeignKeyConstraint(
            ["job_id"],
            ["batch_jobs.id"],
            name=op.f("fk_batch_job_items_job_id_batch_jobs"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("job_id", "idx", name=op.f("pk_batch_job_items")),
    )


def downgrade() -> None:
    op.drop_table("batch_job_items")
    op.drop_table("batch_jobs")
