"""xb claims: findings, opinion, manager_reviewed; fund events

Revision ID: 0008_xb_claims
Revises: 0007_claims
Create Date: 2026-11-23 10:54:25.550029
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0008_xb_claims'
down_revision: str | None = '0007_claims'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('fund_events',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('fund_code', sa.String(length=32), nullable=False),
    sa.Column('action', sa.String(length=20), nullable=False),
    sa.Column('from_status', sa.String(length=16), nullable=False),
    sa.Column('to_status', sa.String(length=16), nullable=False),
    sa.Column('reason', sa.Text(), nullable=False),
    sa.Column('actor_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['actor_id'], ['users.id'], name=op.f('fk_fund_events_actor_id_users')),
    sa.ForeignKeyConstraint(['fund_code'], ['funds.code'], name=op.f('fk_fund_events_fund_code_funds')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_fund_events'))
    )
    with op.batch_alter_table('fund_events', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_fund_events_actor_id'), ['actor_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_fund_events_fund_code'), ['fund_code'], unique=False)

    with op.batch_alter_table('claims', schema=None) as batch_op:
        batch_op.add_column(sa.Column('findings', sa.JSON(), server_default='[]', nullable=False))
        batch_op.add_column(sa.Column('opinion', sa.Text(), nullable=True))
        batch_op.drop_constraint(op.f('ck_claims_status'), type_='check')
        batch_op.create_check_constraint(op.f('ck_claims_status'), "status IN ('submitted', 'city_approved', 'manager_reviewed', 'approved', 'paid', 'reimbursed', 'rejected', 'closed')")


def downgrade() -> None:
    with op.batch_alter_table('claims', schema=None) as batch_op:
        batch_op.drop_constraint(op.f('ck_claims_status'), type_='check')
        batch_op.create_check_constraint(op.f('ck_claims_status'), "status IN ('submitted', 'city_approved', 'approved', 'paid', 'reimbursed', 'rejected', 'closed')")
        batch_op.drop_column('opinion')
        batch_op.drop_column('findings')

    with op.batch_alter_table('fund_events', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_fund_events_fund_code'))
        batch_op.drop_index(batch_op.f('ix_fund_events_actor_id'))

    op.drop_table('fund_events')
