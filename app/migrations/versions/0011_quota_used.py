"""quota used counter

Revision ID: 0011_quota_used
Revises: 0010_clean_record
Create Date: 2026-11-23 11:29:10.972367
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0011_quota_used'
down_revision: str | None = '0010_clean_record'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('program_quotas', schema=None) as batch_op:
        batch_op.add_column(sa.Column('used_fen', sa.BigInteger(), server_default='0', nullable=False))
    # backfill: principal already filed with a disbursement in each quota's year
    op.execute(
        "UPDATE program_quotas SET used_fen = COALESCE((SELECT SUM(l.principal_fen) FROM loans l"
        " WHERE l.program = program_quotas.program AND l.disbursed_on >= "
        + ("make_date(program_quotas.year, 1, 1) AND l.disbursed_on <= make_date(program_quotas.year, 12, 31)"
           if op.get_bind().dialect.name == "postgresql" else
           "date(program_quotas.year || '-01-01') AND l.disbursed_on <= date(program_quotas.year || '-12-31')")
        + "), 0)"
    )


def downgrade() -> None:
    with op.batch_alter_table('program_quotas', schema=None) as batch_op:
        batch_op.drop_column('used_fen')

