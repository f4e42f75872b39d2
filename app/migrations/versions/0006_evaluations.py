"""quarter-end evaluations

Revision ID: 0006_evaluations
Revises: 0005_repayments
Create Date: 2026-11-23 09:42:00.298547
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0006_evaluations'
down_revision: str | None = '0005_repayments'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('quarter_evaluations',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('program', sa.String(length=8), nullable=False),
    sa.Column('year', sa.Integer(), nullable=False),
    sa.Column('quarter', sa.Integer(), nullable=False),
    sa.Column('quarter_end', sa.Date(), nullable=False),
    sa.Column('actor_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('run_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['actor_id'], ['users.id'], name=op.f('fk_quarter_evaluations_actor_id_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_quarter_evaluations'))
    )
    with op.batch_alter_table('quarter_evaluations', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_quarter_evaluations_actor_id'), ['actor_id'], unique=False)

    op.create_table('quarter_bank_results',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('evaluation_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('bank_code', sa.String(length=32), nullable=False),
    sa.Column('outstanding_fen', sa.BigInteger(), nullable=False),
    sa.Column('npl_fen', sa.BigInteger(), nullable=False),
    sa.Column('threshold_bp', sa.Integer(), nullable=False),
    sa.Column('breached', sa.Boolean(), nullable=False),
    sa.Column('decision', sa.String(length=16), nullable=False),
    sa.Column('agreement_ids', sa.JSON(), nullable=False),
    sa.ForeignKeyConstraint(['bank_code'], ['banks.code'], name=op.f('fk_quarter_bank_results_bank_code_banks')),
    sa.ForeignKeyConstraint(['evaluation_id'], ['quarter_evaluations.id'], name=op.f('fk_quarter_bank_results_evaluation_id_quarter_evaluations')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_quarter_bank_results'))
    )
    with op.batch_alter_table('quarter_bank_results', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_quarter_bank_results_bank_code'), ['bank_code'], unique=False)
        batch_op.create_index(batch_op.f('ix_quarter_bank_results_evaluation_id'), ['evaluation_id'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('quarter_bank_results', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_quarter_bank_results_evaluation_id'))
        batch_op.drop_index(batch_op.f('ix_quarter_bank_results_bank_code'))

    op.drop_table('quarter_bank_results')
    with op.batch_alter_table('quarter_evaluations', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_quarter_evaluations_actor_id'))

    op.drop_table('quarter_evaluations')
