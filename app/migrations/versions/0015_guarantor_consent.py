"""guarantor consent on guaranteed XB loans (XB-F2): the consent letter's reference and
date on loans; existing rows keep null (filed before the letter was recorded)

Revision ID: 0015_guarantor_consent
Revises: 0014_xb_limit_basis
Create Date: 2026-12-02 01:15:00
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0015_guarantor_consent'
down_revision: str | None = '0014_xb_limit_basis'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


COLUMNS = ('guarantor_consent_ref', 'guarantor_consent_on')


def upgrade() -> None:
    # plain ALTER TABLE on both databases: a batch rebuild would drop SQLite's triggers
    # on loans (migration 0012)
    op.add_column('loans', sa.Column('guarantor_consent_ref', sa.String(length=64), nullable=True))
    op.add_column('loans', sa.Column('guarantor_consent_on', sa.Date(), nullable=True))


def downgrade() -> None:
    # plain ALTER TABLE (SQLite ≥ 3.35 drops columns in place, keeping its triggers)
    for column in reversed(COLUMNS):
        op.execute(f'ALTER TABLE loans DROP COLUMN {column}')
