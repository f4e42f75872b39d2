"""claims, documents, recoveries; repayment kind

Revision ID: 0007_claims
Revises: 0006_evaluations
Create Date: 2026-11-23 10:21:08.497820
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0007_claims'
down_revision: str | None = '0006_evaluations'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


# SKD-C1: a claim's history, documents and recoveries are records, never rewritten.
HISTORY_TABLES = ("claim_transitions", "claim_documents", "claim_recoveries")
PG_FORBID = """
CREATE FUNCTION claim_records_forbid_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION 'claim records are append-only (SKD-C1): % on % refused',
    TG_OP, TG_TABLE_NAME USING ERRCODE = 'insufficient_privilege';
END $$;
"""


def _guards_up() -> None:
    dialect = op.get_bind().dialect.name
    if dialect == "postgresql":
        op.execute(PG_FORBID)
    for table in HISTORY_TABLES:
        if dialect == "postgresql":
            op.execute(
                f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table} "
                "FOR EACH ROW EXECUTE FUNCTION claim_records_forbid_change()"
            )
        else:
            for verb in ("UPDATE", "DELETE"):
                op.execute(
                    f"CREATE TRIGGER {table}_no_{verb.lower()} BEFORE {verb} ON {table} "
                    f"BEGIN SELECT RAISE(ABORT, 'claim records are append-only (SKD-C1): "
                    f"{verb} on {table} refused'); END"
                )


def _guards_down() -> None:
    dialect = op.get_bind().dialect.name
    for table in HISTORY_TABLES:
        if dialect == "postgresql":
            op.execute(f"DROP TRIGGER IF EXISTS {table}_append_only ON {table}")
        else:
            for verb in ("update", "delete"):
                op.execute(f"DROP TRIGGER IF EXISTS {table}_no_{verb}")
    if dialect == "postgresql":
        op.execute("DROP FUNCTION IF EXISTS claim_records_forbid_change()")


def upgrade() -> None:
    op.create_table('claims',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('program', sa.String(length=8), nullable=False),
    sa.Column('loan_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('bank_code', sa.String(length=32), nullable=False),
    sa.Column('product', sa.String(length=16), nullable=True),
    sa.Column('city_fund_code', sa.String(length=32), nullable=True),
    sa.Column('region_code', sa.String(length=16), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('filed_on', sa.Date(), nullable=False),
    sa.Column('days_past_due', sa.Integer(), nullable=False),
    sa.Column('loss_fen', sa.BigInteger(), nullable=False),
    sa.Column('requested_fen', sa.BigInteger(), nullable=False),
    sa.Column('shares', sa.JSON(), nullable=False),
    sa.Column('approved_fen', sa.BigInteger(), nullable=True),
    sa.Column('approved_shares', sa.JSON(), nullable=True),
    sa.Column('approved_on', sa.Date(), nullable=True),
    sa.Column('capped_by', sa.String(length=16), nullable=True),
    sa.Column('cap_detail', sa.JSON(), nullable=True),
    sa.Column('paid_on', sa.Date(), nullable=True),
    sa.Column('reimbursed_on', sa.Date(), nullable=True),
    sa.Column('returned_fen', sa.BigInteger(), nullable=False),
    sa.Column('lawsuit_case_no', sa.String(length=64), nullable=True),
    sa.Column('lawsuit_accepted_on', sa.Date(), nullable=True),
    sa.Column('deadlines', sa.JSON(), nullable=False),
    sa.Column('rejection_reason', sa.Text(), nullable=True),
    sa.Column('filed_by_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint("program IN ('SKD', 'XB')", name=op.f('ck_claims_program')),
    sa.CheckConstraint("status IN ('submitted', 'city_approved', 'approved', 'paid', 'reimbursed', 'rejected', 'closed')", name=op.f('ck_claims_status')),
    sa.CheckConstraint('approved_fen IS NULL OR (approved_fen >= 0 AND approved_fen <= requested_fen)', name=op.f('ck_claims_approved')),
    sa.CheckConstraint('loss_fen > 0', name=op.f('ck_claims_loss_positive')),
    sa.CheckConstraint('requested_fen >= 0 AND requested_fen <= loss_fen', name=op.f('ck_claims_requested')),
    sa.CheckConstraint('returned_fen >= 0', name=op.f('ck_claims_returned')),
    sa.ForeignKeyConstraint(['bank_code'], ['banks.code'], name=op.f('fk_claims_bank_code_banks')),
    sa.ForeignKeyConstraint(['city_fund_code'], ['funds.code'], name=op.f('fk_claims_city_fund_code_funds')),
    sa.ForeignKeyConstraint(['filed_by_id'], ['users.id'], name=op.f('fk_claims_filed_by_id_users')),
    sa.ForeignKeyConstraint(['loan_id'], ['loans.id'], name=op.f('fk_claims_loan_id_loans')),
    sa.ForeignKeyConstraint(['region_code'], ['regions.code'], name=op.f('fk_claims_region_code_regions')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_claims'))
    )
    with op.batch_alter_table('claims', schema=None) as batch_op:
        batch_op.create_index('ix_claims_bank_program_status', ['bank_code', 'program', 'status'], unique=False)
        batch_op.create_index(batch_op.f('ix_claims_city_fund_code'), ['city_fund_code'], unique=False)
        batch_op.create_index(batch_op.f('ix_claims_filed_by_id'), ['filed_by_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_claims_loan_id'), ['loan_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_claims_region_code'), ['region_code'], unique=False)
        batch_op.create_index('uq_claims_live_loan', ['loan_id'], unique=True, sqlite_where=sa.text("status <> 'rejected'"), postgresql_where=sa.text("status <> 'rejected'"))

    op.create_table('claim_documents',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('claim_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('kind', sa.String(length=32), nullable=False),
    sa.Column('filename', sa.String(length=200), nullable=False),
    sa.Column('content_type', sa.String(length=100), nullable=False),
    sa.Column('size_bytes', sa.BigInteger(), nullable=False),
    sa.Column('sha256', sa.String(length=64), nullable=False),
    sa.Column('content', sa.LargeBinary(), nullable=False),
    sa.Column('uploaded_by_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('uploaded_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint('size_bytes > 0', name=op.f('ck_claim_documents_size_positive')),
    sa.ForeignKeyConstraint(['claim_id'], ['claims.id'], name=op.f('fk_claim_documents_claim_id_claims')),
    sa.ForeignKeyConstraint(['uploaded_by_id'], ['users.id'], name=op.f('fk_claim_documents_uploaded_by_id_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_claim_documents'))
    )
    with op.batch_alter_table('claim_documents', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_claim_documents_claim_id'), ['claim_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_claim_documents_sha256'), ['sha256'], unique=False)

    op.create_table('claim_recoveries',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('claim_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('recovered_on', sa.Date(), nullable=False),
    sa.Column('amount_fen', sa.BigInteger(), nullable=False),
    sa.Column('costs_fen', sa.BigInteger(), nullable=False),
    sa.Column('returned_fen', sa.BigInteger(), nullable=False),
    sa.Column('returned_shares', sa.JSON(), nullable=False),
    sa.Column('recorded_by_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('ledger_entry_ids', sa.JSON(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint('amount_fen > 0', name=op.f('ck_claim_recoveries_amount_positive')),
    sa.CheckConstraint('costs_fen >= 0 AND costs_fen <= amount_fen', name=op.f('ck_claim_recoveries_costs')),
    sa.CheckConstraint('returned_fen >= 0', name=op.f('ck_claim_recoveries_returned')),
    sa.ForeignKeyConstraint(['claim_id'], ['claims.id'], name=op.f('fk_claim_recoveries_claim_id_claims')),
    sa.ForeignKeyConstraint(['recorded_by_id'], ['users.id'], name=op.f('fk_claim_recoveries_recorded_by_id_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_claim_recoveries'))
    )
    with op.batch_alter_table('claim_recoveries', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_claim_recoveries_claim_id'), ['claim_id'], unique=False)

    op.create_table('claim_transitions',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('claim_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('action', sa.String(length=32), nullable=False),
    sa.Column('from_status', sa.String(length=16), nullable=True),
    sa.Column('to_status', sa.String(length=16), nullable=False),
    sa.Column('actor_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('actor_role', sa.String(length=20), nullable=False),
    sa.Column('comment', sa.Text(), nullable=False),
    sa.Column('business_date', sa.Date(), nullable=False),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('ledger_entry_ids', sa.JSON(), nullable=False),
    sa.ForeignKeyConstraint(['actor_id'], ['users.id'], name=op.f('fk_claim_transitions_actor_id_users')),
    sa.ForeignKeyConstraint(['claim_id'], ['claims.id'], name=op.f('fk_claim_transitions_claim_id_claims')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_claim_transitions'))
    )
    with op.batch_alter_table('claim_transitions', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_claim_transitions_actor_id'), ['actor_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_claim_transitions_claim_id'), ['claim_id'], unique=False)

    with op.batch_alter_table('loan_repayments', schema=None) as batch_op:
        batch_op.add_column(sa.Column('kind', sa.String(length=16), server_default='cash', nullable=False))
        batch_op.create_check_constraint(op.f('ck_loan_repayments_kind'), "kind IN ('cash', 'renewal')")

    _guards_up()


def downgrade() -> None:
    _guards_down()
    with op.batch_alter_table('loan_repayments', schema=None) as batch_op:
        batch_op.drop_constraint(op.f('ck_loan_repayments_kind'), type_='check')
        batch_op.drop_column('kind')

    with op.batch_alter_table('claim_transitions', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_claim_transitions_claim_id'))
        batch_op.drop_index(batch_op.f('ix_claim_transitions_actor_id'))

    op.drop_table('claim_transitions')
    with op.batch_alter_table('claim_recoveries', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_claim_recoveries_claim_id'))

    op.drop_table('claim_recoveries')
    with op.batch_alter_table('claim_documents', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_claim_documents_sha256'))
        batch_op.drop_index(batch_op.f('ix_claim_documents_claim_id'))

    op.drop_table('claim_documents')
    with op.batch_alter_table('claims', schema=None) as batch_op:
        batch_op.drop_index('uq_claims_live_loan', sqlite_where=sa.text("status <> 'rejected'"), postgresql_where=sa.text("status <> 'rejected'"))
        batch_op.drop_index(batch_op.f('ix_claims_region_code'))
        batch_op.drop_index(batch_op.f('ix_claims_loan_id'))
        batch_op.drop_index(batch_op.f('ix_claims_filed_by_id'))
        batch_op.drop_index(batch_op.f('ix_claims_city_fund_code'))
        batch_op.drop_index('ix_claims_bank_program_status')

    op.drop_table('claims')
