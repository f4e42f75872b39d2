"""XB quarter-end limit basis (XB-Q1 per base sub-fund)

Claims name the fund they count under (SKD: the city fund; XB: the loan's sub-fund),
backfilled from the claim and its loan. Quarter-end results carry the XB sub-fund and
the limit figures the XB evaluation stores. Columns are added with plain ALTER TABLE,
never a batch rebuild (a rebuild on SQLite would drop the triggers of these tables).

Revision ID: 0014_xb_limit_basis
Revises: 0013_calendar
Create Date: 2026-12-02 01:15:00
"""
import json
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0014_xb_limit_basis'
down_revision: str | None = '0013_calendar'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BASE_SUB_FUND = "XB_ZQCZD"  # 助企成长贷, as of this revision
RESULT_COLUMNS = [
    ("warning_share_bp", sa.Integer()),
    ("limit_year", sa.Integer()),
    ("limit_fen", sa.BigInteger()),
    ("warning_fen", sa.BigInteger()),
    ("used_fen", sa.BigInteger()),
    ("warning", sa.Boolean()),
    ("suspended", sa.Boolean()),
]


def _add_fund_column(table: str) -> None:
    """A nullable `fund_code` referencing funds.code, added in place on both databases."""
    if op.get_bind().dialect.name == "sqlite":
        op.execute(f"ALTER TABLE {table} ADD COLUMN fund_code VARCHAR(32) REFERENCES funds (code)")
    else:
        op.add_column(table, sa.Column('fund_code', sa.String(length=32), nullable=True))
        op.create_foreign_key(
            op.f(f'fk_{table}_fund_code_funds'), table, 'funds', ['fund_code'], ['code']
        )
    op.create_index(op.f(f'ix_{table}_fund_code'), table, ['fund_code'], unique=False)


def _drop_fund_column(table: str) -> None:
    op.drop_index(op.f(f'ix_{table}_fund_code'), table_name=table)
    if op.get_bind().dialect.name != "sqlite":
        op.drop_constraint(op.f(f'fk_{table}_fund_code_funds'), table, type_='foreignkey')
    op.execute(f"ALTER TABLE {table} DROP COLUMN fund_code")


def upgrade() -> None:
    _add_fund_column('claims')
    _add_fund_column('quarter_bank_results')
    for name, type_ in RESULT_COLUMNS:
        op.add_column('quarter_bank_results', sa.Column(name, type_, nullable=True))

    # backfill: SKD claims count under their city fund, XB claims under their loan's sub-fund
    bind = op.get_bind()
    op.execute("UPDATE claims SET fund_code = city_fund_code WHERE program = 'SKD'")
    rows = bind.execute(
        sa.text(
            "SELECT c.id, l.extra FROM claims c JOIN loans l ON l.id = c.loan_id "
            "WHERE c.program = 'XB'"
        )
    ).all()
    for claim_id, extra in rows:
        data = json.loads(extra) if isinstance(extra, str) else (extra or {})
        bind.execute(
            sa.text("UPDATE claims SET fund_code = :f WHERE id = :i"),
            {"f": data.get("sub_fund") or BASE_SUB_FUND, "i": claim_id},
        )


def downgrade() -> None:
    for name, _ in reversed(RESULT_COLUMNS):
        op.execute(f"ALTER TABLE quarter_bank_results DROP COLUMN {name}")
    _drop_fund_column('quarter_bank_results')
    _drop_fund_column('claims')
