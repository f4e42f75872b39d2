"""replayed headers, revoked tokens, log-in failures

Revision ID: 0021_sessions
Revises: 0020_reports
Create Date: 2026-12-03 18:10:00

1. `idempotency_records.response_headers`: a replayed answer carries the headers a
   client acts on (`Location` of a 201, `ETag`, `Content-Disposition`) as the first
   answer did; a JSON object, empty for answers stored before.
2. `revoked_tokens`: bearer tokens revoked before their expiry (`POST /auth/logout`),
   by their `jti`.
3. `login_failures`: failed log-ins by username and client address, which throttle
   further attempts.
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0021_sessions'
down_revision: str | None = '0020_reports'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("idempotency_records") as batch:
        batch.add_column(
            sa.Column("response_headers", sa.Text(), nullable=False, server_default="{}")
        )
    op.create_table(
        "revoked_tokens",
        sa.Column("jti", sa.String(64), nullable=False),
        sa.Column("user_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_revoked_tokens_user_id_users")
        ),
        sa.PrimaryKeyConstraint("jti", name=op.f("pk_revoked_tokens")),
    )
    op.create_index("ix_revoked_tokens_user_id", "revoked_tokens", ["user_id"])
    op.create_index("ix_revoked_tokens_expires_at", "revoked_tokens", ["expires_at"])
    op.create_table(
        "login_failures",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("username", sa.String(64), nullable=False),
        sa.Column("address", sa.String(64), nullable=False),
        sa.Column("failed_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_login_failures")),
    )
    op.create_index("ix_login_failures_username_at", "login_failures", ["username", "failed_at"])
    op.create_index("ix_login_failures_address_at", "login_failures", ["address", "failed_at"])


def downgrade() -> None:
    op.drop_table("login_failures")
    op.drop_table("revoked_tokens")
    with op.batch_alter_table("idempotency_records") as batch:
        batch.drop_column("response_headers")
