"""repayment schedules, interest payments, bank-reported arrears, monthly status files

Revision ID: 0018_arrears
Revises: 0017_programme_columns
Create Date: 2026-12-03 13:53:28

1. `loan_instalments`: every loan's repayment schedule (SPEC M-6). A loan filed before
   this revision gets the schedule it was filed with by default: one bullet instalment
   of its whole principal at maturity, no interest.
2. `loan_interest_payments`: interest the bank reports paid.
3. `loan_delinquency_reports`: arrears as reported by the bank's core system, one row
   per report, never overwritten.
4. `status_reports`, `status_report_rows`, `status_report_differences`: the banks'
   monthly loan-level status files (XB-Rep) and their reconciliation.

All six are append-only (the loan records' guard of 0017 on PostgreSQL, triggers
raising on UPDATE and DELETE on SQLite).
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0018_arrears'
down_revision: str | None = '0017_programme_columns'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

APPEND_ONLY = (
    "loan_instalments",
    "loan_interest_payments",
    "loan_delinquency_reports",
    "status_reports",
    "status_report_rows",
    "status_report_differences",
)
MESSAGE = "loan records are append-only"


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
    op.create_table('status_reports',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('bank_code', sa.String(length=32), nullable=False),
    sa.Column('year', sa.Integer(), nullable=False),
    sa.Column('month', sa.Integer(), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('content_sha256', sa.String(length=64), nullable=False),
    sa.Column('media_type', sa.String(length=32), nullable=False),
    sa.Column('due_on', sa.Date(), nullable=False),
    sa.Column('submitted_on', sa.Date(), nullable=False),
    sa.Column('late', sa.Boolean(), nullable=False),
    sa.Column('row_count', sa.Integer(), nullable=False),
    sa.Column('difference_count', sa.Integer(), nullable=False),
    sa.Column('summary', sa.JSON(), nullable=False),
    sa.Column('submitted_by_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint('month BETWEEN 1 AND 12', name=op.f('ck_status_reports_month')),
    sa.ForeignKeyConstraint(['bank_code'], ['banks.code'], name=op.f('fk_status_reports_bank_code_banks')),
    sa.ForeignKeyConstraint(['submitted_by_id'], ['users.id'], name=op.f('fk_status_reports_submitted_by_id_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_status_reports')),
    sa.UniqueConstraint('bank_code', 'year', 'month', 'version', name=op.f('uq_status_reports_bank_code_year_month_version'))
    )
    with op.batch_alter_table('status_reports', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_status_reports_bank_code'), ['bank_code'], unique=False)
        batch_op.create_index(batch_op.f('ix_status_reports_submitted_by_id'), ['submitted_by_id'], unique=False)

    op.create_table('loan_delinquency_reports',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('loan_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('as_of', sa.Date(), nullable=False),
    sa.Column('overdue_since', sa.Date(), nullable=True),
    sa.Column('principal_overdue_fen', sa.BigInteger(), nullable=False),
    sa.Column('interest_overdue_fen', sa.BigInteger(), nullable=False),
    sa.Column('outstanding_fen', sa.BigInteger(), nullable=True),
    sa.Column('source', sa.String(length=16), nullable=False),
    sa.Column('status_report_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('comment', sa.Text(), nullable=False),
    sa.Column('reported_by_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint("source IN ('bank', 'status_file')", name=op.f('ck_loan_delinquency_reports_source')),
    sa.CheckConstraint('principal_overdue_fen >= 0 AND interest_overdue_fen >= 0', name=op.f('ck_loan_delinquency_reports_amounts')),
    sa.ForeignKeyConstraint(['loan_id'], ['loans.id'], name=op.f('fk_loan_delinquency_reports_loan_id_loans')),
    sa.ForeignKeyConstraint(['reported_by_id'], ['users.id'], name=op.f('fk_loan_delinquency_reports_reported_by_id_users')),
    sa.ForeignKeyConstraint(['status_report_id'], ['status_reports.id'], name=op.f('fk_loan_delinquency_reports_status_report_id_status_reports')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_loan_delinquency_reports'))
    )
    with op.batch_alter_table('loan_delinquency_reports', schema=None) as batch_op:
        batch_op.create_index('ix_loan_delinquency_reports_loan_as_of', ['loan_id', 'as_of'], unique=False)
        batch_op.create_index(batch_op.f('ix_loan_delinquency_reports_reported_by_id'), ['reported_by_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_loan_delinquency_reports_status_report_id'), ['status_report_id'], unique=False)

    op.create_table('loan_instalments',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('loan_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('seq', sa.Integer(), nullable=False),
    sa.Column('due_on', sa.Date(), nullable=False),
    sa.Column('principal_fen', sa.BigInteger(), nullable=False),
    sa.Column('interest_fen', sa.BigInteger(), nullable=False),
    sa.CheckConstraint('principal_fen + interest_fen > 0', name=op.f('ck_loan_instalments_something_due')),
    sa.CheckConstraint('principal_fen >= 0 AND interest_fen >= 0', name=op.f('ck_loan_instalments_amounts')),
    sa.ForeignKeyConstraint(['loan_id'], ['loans.id'], name=op.f('fk_loan_instalments_loan_id_loans')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_loan_instalments')),
    sa.UniqueConstraint('loan_id', 'seq', name=op.f('uq_loan_instalments_loan_id_seq'))
    )
    with op.batch_alter_table('loan_instalments', schema=None) as batch_op:
        batch_op.create_index('ix_loan_instalments_loan_due', ['loan_id', 'due_on'], unique=False)

    op.create_table('loan_interest_payments',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('loan_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('paid_on', sa.Date(), nullable=False),
    sa.Column('interest_fen', sa.BigInteger(), nullable=False),
    sa.Column('recorded_by_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint('interest_fen > 0', name=op.f('ck_loan_interest_payments_interest_positive')),
    sa.ForeignKeyConstraint(['loan_id'], ['loans.id'], name=op.f('fk_loan_interest_payments_loan_id_loans')),
    sa.ForeignKeyConstraint(['recorded_by_id'], ['users.id'], name=op.f('fk_loan_interest_payments_recorded_by_id_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_loan_interest_payments'))
    )
    with op.batch_alter_table('loan_interest_payments', schema=None) as batch_op:
        batch_op.create_index('ix_loan_interest_payments_loan_paid', ['loan_id', 'paid_on'], unique=False)
        batch_op.create_index(batch_op.f('ix_loan_interest_payments_recorded_by_id'), ['recorded_by_id'], unique=False)

    op.create_table('status_report_differences',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('report_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('kind', sa.String(length=32), nullable=False),
    sa.Column('row_no', sa.Integer(), nullable=True),
    sa.Column('contract_no', sa.String(length=64), nullable=False),
    sa.Column('loan_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('field', sa.String(length=32), nullable=True),
    sa.Column('ours', sa.String(length=64), nullable=True),
    sa.Column('theirs', sa.String(length=64), nullable=True),
    sa.ForeignKeyConstraint(['loan_id'], ['loans.id'], name=op.f('fk_status_report_differences_loan_id_loans')),
    sa.ForeignKeyConstraint(['report_id'], ['status_reports.id'], name=op.f('fk_status_report_differences_report_id_status_reports')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_status_report_differences'))
    )
    with op.batch_alter_table('status_report_differences', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_status_report_differences_loan_id'), ['loan_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_status_report_differences_report_id'), ['report_id'], unique=False)

    op.create_table('status_report_rows',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('report_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('row_no', sa.Integer(), nullable=False),
    sa.Column('contract_no', sa.String(length=64), nullable=False),
    sa.Column('loan_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('outstanding_fen', sa.BigInteger(), nullable=False),
    sa.Column('overdue_since', sa.Date(), nullable=True),
    sa.Column('principal_overdue_fen', sa.BigInteger(), nullable=False),
    sa.Column('interest_overdue_fen', sa.BigInteger(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.ForeignKeyConstraint(['loan_id'], ['loans.id'], name=op.f('fk_status_report_rows_loan_id_loans')),
    sa.ForeignKeyConstraint(['report_id'], ['status_reports.id'], name=op.f('fk_status_report_rows_report_id_status_reports')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_status_report_rows')),
    sa.UniqueConstraint('report_id', 'row_no', name=op.f('uq_status_report_rows_report_id_row_no'))
    )
    with op.batch_alter_table('status_report_rows', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_status_report_rows_loan_id'), ['loan_id'], unique=False)

    op.execute(
        "INSERT INTO loan_instalments (loan_id, seq, due_on, principal_fen, interest_fen)"
        " SELECT id, 1, maturity_on, principal_fen, 0 FROM loans ORDER BY id"
    )
    for table in APPEND_ONLY:
        _append_only(table)


def downgrade() -> None:
    for table in APPEND_ONLY:
        _drop_append_only(table)
    with op.batch_alter_table('status_report_rows', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_status_report_rows_loan_id'))

    op.drop_table('status_report_rows')
    with op.batch_alter_table('status_report_differences', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_status_report_differences_report_id'))
        batch_op.drop_index(batch_op.f('ix_status_report_differences_loan_id'))

    op.drop_table('status_report_differences')
    with op.batch_alter_table('loan_interest_payments', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_loan_interest_payments_recorded_by_id'))
        batch_op.drop_index('ix_loan_interest_payments_loan_paid')

    op.drop_table('loan_interest_payments')
    with op.batch_alter_table('loan_instalments', schema=None) as batch_op:
        batch_op.drop_index('ix_loan_instalments_loan_due')

    op.drop_table('loan_instalments')
    with op.batch_alter_table('loan_delinquency_reports', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_loan_delinquency_reports_status_report_id'))
        batch_op.drop_index(batch_op.f('ix_loan_delinquency_reports_reported_by_id'))
        batch_op.drop_index('ix_loan_delinquency_reports_loan_as_of')

    op.drop_table('loan_delinquency_reports')
    with op.batch_alter_table('status_reports', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_status_reports_submitted_by_id'))
        batch_op.drop_index(batch_op.f('ix_status_reports_bank_code'))

    op.drop_table('status_reports')
