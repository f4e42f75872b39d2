"""actual controllers as persons: `persons`, `enterprises.controller_id`

Revision ID: 0019_controllers
Revises: 0018_arrears
Create Date: 2026-12-04 09:00:00

1. `persons`: the people an enterprise names as its actual controller (实际控制人), each
   known by `id_hash`, the HMAC-SHA256 of the normalised resident ID number (居民身份证号,
   GB 11643) under the server's PERSON_ID_KEY. The number itself is never stored.
2. `enterprises.controller_id` (nullable): the enterprise's actual controller. SKD-F4 and
   XB-N2 at filing look at the loans of every enterprise with the same controller.
   Enterprises recorded before this revision have none until one is given.

On SQLite the column is added with plain ALTER TABLE ADD COLUMN … REFERENCES (allowed for
a column whose default is NULL) and dropped with ALTER TABLE DROP COLUMN: a batch rebuild
of `enterprises` fails on a database with rows under foreign keys (see 0016, 0017).
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0019_controllers'
down_revision: str | None = '0018_arrears'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ID = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')


def _postgres() -> bool:
    return op.get_bind().dialect.name == "postgresql"


def upgrade() -> None:
    op.create_table('persons',
    sa.Column('id', ID, autoincrement=True, nullable=False),
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('id_hash', sa.String(length=64), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_persons')),
    sa.UniqueConstraint('id_hash', name=op.f('uq_persons_id_hash'))
    )
    if _postgres():
        op.add_column('enterprises', sa.Column('controller_id', ID, nullable=True))
        op.create_foreign_key(
            op.f('fk_enterprises_controller_id_persons'),
            'enterprises',
            'persons',
            ['controller_id'],
            ['id'],
        )
    else:
        op.execute("ALTER TABLE enterprises ADD COLUMN controller_id INTEGER REFERENCES persons (id)")
    op.create_index(
        op.f('ix_enterprises_controller_id'), 'enterprises', ['controller_id'], unique=False
    )


def downgrade() -> None:
    op.drop_index(op.f('ix_enterprises_controller_id'), table_name='enterprises')
    if _postgres():
        op.drop_constraint(
            op.f('fk_enterprises_controller_id_persons'), 'enterprises', type_='foreignkey'
        )
    op.execute("ALTER TABLE enterprises DROP COLUMN controller_id")
    op.drop_table('persons')
