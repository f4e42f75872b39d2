"""SKD enterprise library events

Revision ID: 0003_library
Revises: 0002_ledger
Create Date: 2026-11-23 09:21:22.823442
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0003_library'
down_revision: str | None = '0002_ledger'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('library_events',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('enterprise_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('program', sa.String(length=8), nullable=False),
    sa.Column('action', sa.String(length=16), nullable=False),
    sa.Column('effective_on', sa.Date(), nullable=False),
    sa.Column('comment', sa.Text(), nullable=False),
    sa.Column('criteria', sa.JSON(), nullable=False),
    sa.Column('actor_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint("action IN ('admitted', 'updated', 'removed')", name=op.f('ck_library_events_action')),
    sa.ForeignKeyConstraint(['actor_id'], ['users.id'], name=op.f('fk_library_events_actor_id_users')),
    sa.ForeignKeyConstraint(['enterprise_id'], ['enterprises.id'], name=op.f('fk_library_events_enterprise_id_enterprises')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_library_events'))
    )
    with op.batch_alter_table('library_events', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_library_events_actor_id'), ['actor_id'], unique=False)
        batch_op.create_index('ix_library_events_enterprise_program', ['enterprise_id', 'program', 'id'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('library_events', schema=None) as batch_op:
        batch_op.drop_index('ix_library_events_enterprise_program')
        batch_op.drop_index(batch_op.f('ix_library_events_actor_id'))

    op.drop_table('library_events')
