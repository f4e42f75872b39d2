"""loan repayments

Revision ID: 0005_repayments
Revises: 0004_quotas
Create Date: 2026-11-23 09:38:15.551502
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0005_repayments'
down_revision: str | None = '0004_quotas'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('loan_repayments',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('loan_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('paid_on', sa.Date(), nullable=False),
    sa.Column('principal_fen', sa.BigInteger(), nullable=False),
    sa.Column('recorded_by_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint('principal_fen > 0', name=op.f('ck_loan_repayments_principal_positive')),
    sa.ForeignKeyConstraint(['loan_id'], ['loans.id'], name=op.f('fk_loan_repayments_loan_id_loans')),
    sa.ForeignKeyConstraint(['recorded_by_id'], ['users.id'], name=op.f('fk_loan_repayments_recorded_by_id_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_loan_repayments'))
    )
    with op.batch_alter_table('loan_repayments', schema=None) as batch_op:
        batch_op.create_index('ix_loan_repayments_loan_paid', ['loan_id', 'paid_on'], unique=False)
        batch_op.create_index(batch_op.f('ix_loan_repayments_recorded_by_id'), ['recorded_by_id'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('loan_repayments', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_loan_repayments_recorded_by_id'))
        batch_op.drop_index('ix_loan_repayments_loan_paid')

    op.drop_table('loan_repayments')
