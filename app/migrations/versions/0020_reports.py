"""report runs, submissions, filing refusals

Revision ID: 0020_reports
Revises: 0019_controllers
Create Date: 2026-12-03 14:40:00

1. `report_runs`: stored runs of regulators' reports for closed periods (content, its
   SHA-256, cut-off, ledger entry range, version, changes against the previous version).
2. `report_submissions`: a run marked as submitted (to whom, due date, late or not).
3. `filing_refusals`: every rule refusal of a well-formed filing (SKD-A1), written in a
   transaction of its own beside the refused request.

All three are append-only (the loan records' guard of 0017 on PostgreSQL, triggers on
SQLite).
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0020_reports'
down_revision: str | None = '0019_controllers'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

APPEND_ONLY = ("report_runs", "report_submissions", "filing_refusals")
MESSAGE = "report records are append-only"


def _postgres() -> bool:
    return op.get_bind().dialect.name == "postgresql"


def _append_only(table: str) -> None:
    if _postgres():  # the guard function of 0017
        op.execute(
            f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table} "
            "FOR EACH ROW EXECUTE FUNCTION loan_records_forbid_change()"
        )
    else:
        for verb in ("UPDATE", "DELETE"):
            op.execute(
                f"CREATE TRIGGER {table}_no_{verb.lower()} BEFORE {verb} ON {table} "
                f"BEGIN SELECT RAISE(ABORT, '{MESSAGE}: {verb} on {table} refused'); END"
            )


def _drop_append_only(table: str) -> None:
    if _postgres():
        op.execute(f"DROP TRIGGER IF EXISTS {table}_append_only ON {table}")
    else:
        for verb in ("update", "delete"):
            op.execute(f"DROP TRIGGER IF EXISTS {table}_no_{verb}")


def upgrade() -> None:
    op.create_table('filing_refusals',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('bank_code', sa.String(length=32), nullable=False),
    sa.Column('program', sa.String(length=8), nullable=False),
    sa.Column('enterprise_credit_code', sa.String(length=18), nullable=False),
    sa.Column('enterprise_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('contract_no', sa.String(length=64), nullable=False),
    sa.Column('principal_fen', sa.BigInteger(), nullable=False),
    sa.Column('disbursed_on', sa.Date(), nullable=False),
    sa.Column('rules', sa.JSON(), nullable=False),
    sa.Column('codes', sa.JSON(), nullable=False),
    sa.Column('business_date', sa.Date(), nullable=False),
    sa.Column('refused_by_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['bank_code'], ['banks.code'], name=op.f('fk_filing_refusals_bank_code_banks')),
    sa.ForeignKeyConstraint(['enterprise_id'], ['enterprises.id'], name=op.f('fk_filing_refusals_enterprise_id_enterprises')),
    sa.ForeignKeyConstraint(['program'], ['programs.code'], name=op.f('fk_filing_refusals_program_programs')),
    sa.ForeignKeyConstraint(['refused_by_id'], ['users.id'], name=op.f('fk_filing_refusals_refused_by_id_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_filing_refusals'))
    )
    with op.batch_alter_table('filing_refusals', schema=None) as batch_op:
        batch_op.create_index('ix_filing_refusals_bank_program_date', ['bank_code', 'program', 'business_date'], unique=False)
        batch_op.create_index(batch_op.f('ix_filing_refusals_enterprise_id'), ['enterprise_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_filing_refusals_refused_by_id'), ['refused_by_id'], unique=False)

    op.create_table('report_runs',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('program', sa.String(length=8), nullable=False),
    sa.Column('period', sa.String(length=16), nullable=False),
    sa.Column('scope', sa.String(length=64), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('period_end', sa.Date(), nullable=False),
    sa.Column('cutoff_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('ledger_first_entry_id', sa.BigInteger(), nullable=True),
    sa.Column('ledger_last_entry_id', sa.BigInteger(), nullable=True),
    sa.Column('content', sa.Text(), nullable=False),
    sa.Column('content_sha256', sa.String(length=64), nullable=False),
    sa.Column('changes', sa.JSON(), nullable=False),
    sa.Column('created_by_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint("kind IN ('quarterly', 'monthly', 'annual')", name=op.f('ck_report_runs_kind')),
    sa.ForeignKeyConstraint(['created_by_id'], ['users.id'], name=op.f('fk_report_runs_created_by_id_users')),
    sa.ForeignKeyConstraint(['program'], ['programs.code'], name=op.f('fk_report_runs_program_programs')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_report_runs')),
    sa.UniqueConstraint('kind', 'program', 'period', 'scope', 'version', name=op.f('uq_report_runs_kind_program_period_scope_version'))
    )
    with op.batch_alter_table('report_runs', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_report_runs_created_by_id'), ['created_by_id'], unique=False)

    op.create_table('report_submissions',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('run_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('submitted_to', sa.String(length=100), nullable=False),
    sa.Column('due_on', sa.Date(), nullable=True),
    sa.Column('late', sa.Boolean(), nullable=False),
    sa.Column('comment', sa.Text(), nullable=False),
    sa.Column('submitted_by_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['run_id'], ['report_runs.id'], name=op.f('fk_report_submissions_run_id_report_runs')),
    sa.ForeignKeyConstraint(['submitted_by_id'], ['users.id'], name=op.f('fk_report_submissions_submitted_by_id_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_report_submissions'))
    )
    with op.batch_alter_table('report_submissions', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_report_submissions_run_id'), ['run_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_report_submissions_submitted_by_id'), ['submitted_by_id'], unique=False)

    for table in APPEND_ONLY:
        _append_only(table)


def downgrade() -> None:
    for table in APPEND_ONLY:
        _drop_append_only(table)
    with op.batch_alter_table('report_submissions', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_report_submissions_submitted_by_id'))
        batch_op.drop_index(batch_op.f('ix_report_submissions_run_id'))

    op.drop_table('report_submissions')
    with op.batch_alter_table('report_runs', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_report_runs_created_by_id'))

    op.drop_table('report_runs')
    with op.batch_alter_table('filing_refusals', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_filing_refusals_refused_by_id'))
        batch_op.drop_index(batch_op.f('ix_filing_refusals_enterprise_id'))
        batch_op.drop_index('ix_filing_refusals_bank_program_date')

    op.drop_table('filing_refusals')
