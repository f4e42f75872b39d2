"""claims returned for correction and resubmitted (SKD-C1, XB-C2)

Revision ID: 0016_claim_returns
Revises: 0015_guarantor_consent
Create Date: 2026-12-02 01:15:00
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0016_claim_returns'
down_revision: str | None = '0015_guarantor_consent'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


STATUSES_BEFORE = (
    "'submitted', 'city_approved', 'manager_reviewed', 'approved', 'paid', 'reimbursed', "
    "'rejected', 'closed'"
)
STATUSES_AFTER = STATUSES_BEFORE + ", 'returned'"


def _postgres() -> bool:
    return op.get_bind().dialect.name == "postgresql"


def _append_only(table: str) -> None:
    """The guard of 0007 (claim_records_forbid_change on PostgreSQL): returns are records."""
    if _postgres():
        op.execute(
            f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table} "
            "FOR EACH ROW EXECUTE FUNCTION claim_records_forbid_change()"
        )
    else:
        for verb in ("UPDATE", "DELETE"):
            op.execute(
                f"CREATE TRIGGER {table}_no_{verb.lower()} BEFORE {verb} ON {table} "
                f"BEGIN SELECT RAISE(ABORT, 'claim records are append-only (SKD-C1): "
                f"{verb} on {table} refused'); END"
            )


def _drop_append_only(table: str) -> None:
    if _postgres():
        op.execute(f"DROP TRIGGER IF EXISTS {table}_append_only ON {table}")
    else:
        for verb in ("update", "delete"):
            op.execute(f"DROP TRIGGER IF EXISTS {table}_no_{verb}")


def _claim_statuses(old: str, new: str) -> None:
    """Change the IN list of ck_claims_status.

    PostgreSQL: drop and add the constraint. SQLite cannot alter a CHECK, and a batch
    rebuild of `claims` fails on a database that holds claims: dropping the old table
    orphans the rows of claim_transitions, claim_documents … while foreign keys are on
    (they cannot be turned off inside the migration's transaction). The constraint's text
    is therefore rewritten in the schema, SQLite's documented procedure for changing a
    CHECK that the stored rows already satisfy (upgrade: the list only grows; downgrade:
    returned claims are put back first); `claims` keeps its rows, indexes and triggers."""
    if _postgres():
        op.drop_constraint(op.f('ck_claims_status'), 'claims', type_='check')
        op.create_check_constraint(op.f('ck_claims_status'), 'claims', f"status IN ({new})")
        return
    conn = op.get_bind()
    before = f"CONSTRAINT ck_claims_status CHECK (status IN ({old}))"
    after = f"CONSTRAINT ck_claims_status CHECK (status IN ({new}))"
    sql = conn.exec_driver_sql(
        "SELECT sql FROM sqlite_master WHERE type = 'table' AND name = 'claims'"
    ).scalar_one()
    if sql.count(before) != 1:
        raise RuntimeError(f"claims: constraint not found as expected: {before}")
    version = conn.exec_driver_sql("PRAGMA schema_version").scalar_one()
    conn.exec_driver_sql("PRAGMA writable_schema = ON")
    conn.exec_driver_sql(
        "UPDATE sqlite_master SET sql = ? WHERE type = 'table' AND name = 'claims'",
        (sql.replace(before, after),),
    )
    conn.exec_driver_sql(f"PRAGMA schema_version = {int(version) + 1}")
    conn.exec_driver_sql("PRAGMA writable_schema = OFF")
    check = conn.exec_driver_sql("PRAGMA integrity_check").scalar_one()
    if check != "ok":
        raise RuntimeError(f"claims: integrity check after the constraint change: {check}")


def upgrade() -> None:
    op.create_table('claim_returns',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('claim_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('transition_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('stage', sa.String(length=32), nullable=False),
    sa.Column('from_status', sa.String(length=16), nullable=False),
    sa.Column('deficiencies', sa.JSON(), nullable=False),
    sa.Column('comment', sa.Text(), nullable=False),
    sa.Column('returned_on', sa.Date(), nullable=False),
    sa.Column('returned_by_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('paused_deadline', sa.String(length=32), nullable=True),
    sa.Column('deadline_was', sa.Date(), nullable=True),
    sa.Column('working_days_left', sa.Integer(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint('working_days_left IS NULL OR working_days_left >= 0', name=op.f('ck_claim_returns_working_days_left')),
    sa.ForeignKeyConstraint(['claim_id'], ['claims.id'], name=op.f('fk_claim_returns_claim_id_claims')),
    sa.ForeignKeyConstraint(['returned_by_id'], ['users.id'], name=op.f('fk_claim_returns_returned_by_id_users')),
    sa.ForeignKeyConstraint(['transition_id'], ['claim_transitions.id'], name=op.f('fk_claim_returns_transition_id_claim_transitions')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_claim_returns')),
    sa.UniqueConstraint('transition_id', name=op.f('uq_claim_returns_transition_id'))
    )
    op.create_index(op.f('ix_claim_returns_claim_id'), 'claim_returns', ['claim_id'], unique=False)
    op.create_index(op.f('ix_claim_returns_returned_by_id'), 'claim_returns', ['returned_by_id'], unique=False)
    _append_only('claim_returns')
    _claim_statuses(STATUSES_BEFORE, STATUSES_AFTER)


def downgrade() -> None:
    # a claim waiting for the bank's correction goes back to the stage that returned it
    op.execute(
        "UPDATE claims SET status = (SELECT r.from_status FROM claim_returns r "
        "WHERE r.claim_id = claims.id ORDER BY r.id DESC LIMIT 1) WHERE status = 'returned'"
    )
    _claim_statuses(STATUSES_AFTER, STATUSES_BEFORE)
    _drop_append_only('claim_returns')
    op.drop_index(op.f('ix_claim_returns_returned_by_id'), table_name='claim_returns')
    op.drop_index(op.f('ix_claim_returns_claim_id'), table_name='claim_returns')
    op.drop_table('claim_returns')
