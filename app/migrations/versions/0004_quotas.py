"""SKD annual issuance quotas

Revision ID: 0004_quotas
Revises: 0003_library
Create Date: 2026-11-23 09:25:48.253053
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0004_quotas'
down_revision: str | None = '0003_library'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('program_quotas',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('program', sa.String(length=8), nullable=False),
    sa.Column('year', sa.Integer(), nullable=False),
    sa.Column('amount_fen', sa.BigInteger(), nullable=False),
    sa.Column('set_by_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint('amount_fen >= 0', name=op.f('ck_program_quotas_amount_non_negative')),
    sa.ForeignKeyConstraint(['set_by_id'], ['users.id'], name=op.f('fk_program_quotas_set_by_id_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_program_quotas')),
    sa.UniqueConstraint('program', 'year', name=op.f('uq_program_quotas_program_year'))
    )
    with op.batch_alter_table('program_quotas', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_program_quotas_set_by_id'), ['set_by_id'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('program_quotas', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_program_quotas_set_by_id'))

    op.drop_table('program_quotas')
