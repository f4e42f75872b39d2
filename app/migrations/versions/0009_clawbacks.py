"""xb recoveries due dates, clawbacks, receipts

Revision ID: 0009_clawbacks
Revises: 0008_xb_claims
Create Date: 2026-11-23 11:02:18.170963
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0009_clawbacks'
down_revision: str | None = '0008_xb_claims'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _append_only(tables: tuple[str, ...]) -> None:
    """The same guard as 0007's (SKD-C1): claim records are never rewritten."""
    postgres = op.get_bind().dialect.name == "postgresql"
    for table in tables:
        if postgres:
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


def _drop_append_only(tables: tuple[str, ...]) -> None:
    postgres = op.get_bind().dialect.name == "postgresql"
    for table in tables:
        if postgres:
            op.execute(f"DROP TRIGGER IF EXISTS {table}_append_only ON {table}")
        else:
            for verb in ("update", "delete"):
                op.execute(f"DROP TRIGGER IF EXISTS {table}_no_{verb}")


def upgrade() -> None:
    op.create_table('claim_clawbacks',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('claim_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('amount_fen', sa.BigInteger(), nullable=False),
    sa.Column('decided_on', sa.Date(), nullable=False),
    sa.Column('reason', sa.Text(), nullable=False),
    sa.Column('actor_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('ledger_entry_ids', sa.JSON(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint("kind IN ('abandonment', 'fraud')", name=op.f('ck_claim_clawbacks_kind')),
    sa.CheckConstraint('amount_fen >= 0', name=op.f('ck_claim_clawbacks_amount')),
    sa.ForeignKeyConstraint(['actor_id'], ['users.id'], name=op.f('fk_claim_clawbacks_actor_id_users')),
    sa.ForeignKeyConstraint(['claim_id'], ['claims.id'], name=op.f('fk_claim_clawbacks_claim_id_claims')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_claim_clawbacks'))
    )
    with op.batch_alter_table('claim_clawbacks', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_claim_clawbacks_claim_id'), ['claim_id'], unique=False)

    op.create_table('claim_receipts',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('claim_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('received_on', sa.Date(), nullable=False),
    sa.Column('amount_fen', sa.BigInteger(), nullable=False),
    sa.Column('actor_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('ledger_entry_ids', sa.JSON(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint('amount_fen > 0', name=op.f('ck_claim_receipts_amount_positive')),
    sa.ForeignKeyConstraint(['actor_id'], ['users.id'], name=op.f('fk_claim_receipts_actor_id_users')),
    sa.ForeignKeyConstraint(['claim_id'], ['claims.id'], name=op.f('fk_claim_receipts_claim_id_claims')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_claim_receipts'))
    )
    with op.batch_alter_table('claim_receipts', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_claim_receipts_claim_id'), ['claim_id'], unique=False)

    # a plain ALTER TABLE on both databases: a batch rebuild would drop SQLite's triggers
    op.add_column('claim_recoveries', sa.Column('due_on', sa.Date(), nullable=True))
    _append_only(('claim_clawbacks', 'claim_receipts'))


def downgrade() -> None:
    _drop_append_only(('claim_clawbacks', 'claim_receipts', 'claim_recoveries'))
    with op.batch_alter_table('claim_recoveries', schema=None) as batch_op:
        batch_op.drop_column('due_on')
    _append_only(('claim_recoveries',))

    with op.batch_alter_table('claim_receipts', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_claim_receipts_claim_id'))

    op.drop_table('claim_receipts')
    with op.batch_alter_table('claim_clawbacks', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_claim_clawbacks_claim_id'))

    op.drop_table('claim_clawbacks')
