"""enterprise last malicious overdue date

Revision ID: 0010_clean_record
Revises: 0009_clawbacks
Create Date: 2026-11-23 11:17:48.286740
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0010_clean_record'
down_revision: str | None = '0009_clawbacks'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('enterprises', schema=None) as batch_op:
        batch_op.add_column(sa.Column('last_malicious_overdue_on', sa.Date(), nullable=True))



def downgrade() -> None:
    with op.batch_alter_table('enterprises', schema=None) as batch_op:
        batch_op.drop_column('last_malicious_overdue_on')

