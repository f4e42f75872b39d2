"""foundation: reference data, users, agreements, enterprises, loans, idempotency

Revision ID: 0001_foundation
Revises: 
Create Date: 2026-11-23 08:09:10.593983
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0001_foundation'
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('banks',
    sa.Column('code', sa.String(length=32), nullable=False),
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('name_en', sa.String(length=100), nullable=True),
    sa.Column('unit_level', sa.String(length=20), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint("unit_level IN ('head_office', 'provincial_branch')", name=op.f('ck_banks_unit_level')),
    sa.PrimaryKeyConstraint('code', name=op.f('pk_banks')),
    sa.UniqueConstraint('name', name=op.f('uq_banks_name'))
    )
    op.create_table('lpr_rates',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('effective_on', sa.Date(), nullable=False),
    sa.Column('rate_bp', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint('rate_bp > 0 AND rate_bp < 10000', name=op.f('ck_lpr_rates_rate_range')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_lpr_rates')),
    sa.UniqueConstraint('effective_on', name=op.f('uq_lpr_rates_effective_on'))
    )
    op.create_table('regions',
    sa.Column('code', sa.String(length=16), nullable=False),
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('name_en', sa.String(length=100), nullable=True),
    sa.Column('level', sa.String(length=20), nullable=False),
    sa.Column('parent_code', sa.String(length=16), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint("level IN ('province', 'city', 'county', 'functional_zone')", name=op.f('ck_regions_level')),
    sa.ForeignKeyConstraint(['parent_code'], ['regions.code'], name=op.f('fk_regions_parent_code_regions')),
    sa.PrimaryKeyConstraint('code', name=op.f('pk_regions'))
    )
    with op.batch_alter_table('regions', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_regions_parent_code'), ['parent_code'], unique=False)

    op.create_table('enterprises',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('credit_code', sa.String(length=18), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('region_code', sa.String(length=16), nullable=False),
    sa.Column('independent_legal_person', sa.Boolean(), nullable=False),
    sa.Column('registered_on', sa.Date(), nullable=False),
    sa.Column('prior_year_revenue_fen', sa.BigInteger(), nullable=False),
    sa.Column('employees', sa.Integer(), nullable=False),
    sa.Column('rd_staff_share_bp', sa.Integer(), nullable=False),
    sa.Column('rd_spend_share_bp', sa.Integer(), nullable=False),
    sa.Column('ip_count', sa.Integer(), nullable=False),
    sa.Column('dishonest_debtor', sa.Boolean(), nullable=False),
    sa.Column('controller_dishonest_debtor', sa.Boolean(), nullable=False),
    sa.Column('overdue_loans_elsewhere', sa.Boolean(), nullable=False),
    sa.Column('controller_overdue_loans', sa.Boolean(), nullable=False),
    sa.Column('tax_credit_rating', sa.String(length=1), nullable=True),
    sa.Column('env_credit_rating', sa.String(length=8), nullable=True),
    sa.Column('malicious_default_blacklist', sa.Boolean(), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint("env_credit_rating IS NULL OR env_credit_rating IN ('green', 'blue', 'yellow', 'red', 'black')", name=op.f('ck_enterprises_env_credit_rating')),
    sa.CheckConstraint("tax_credit_rating IS NULL OR tax_credit_rating IN ('A', 'B', 'M', 'C', 'D')", name=op.f('ck_enterprises_tax_credit_rating')),
    sa.CheckConstraint('prior_year_revenue_fen >= 0', name=op.f('ck_enterprises_revenue_non_negative')),
    sa.CheckConstraint('rd_spend_share_bp BETWEEN 0 AND 10000', name=op.f('ck_enterprises_rd_spend_share')),
    sa.CheckConstraint('rd_staff_share_bp BETWEEN 0 AND 10000', name=op.f('ck_enterprises_rd_staff_share')),
    sa.ForeignKeyConstraint(['region_code'], ['regions.code'], name=op.f('fk_enterprises_region_code_regions')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_enterprises')),
    sa.UniqueConstraint('credit_code', name=op.f('uq_enterprises_credit_code'))
    )
    with op.batch_alter_table('enterprises', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_enterprises_region_code'), ['region_code'], unique=False)

    op.create_table('funds',
    sa.Column('code', sa.String(length=32), nullable=False),
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('name_en', sa.String(length=100), nullable=True),
    sa.Column('program', sa.String(length=8), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('region_code', sa.String(length=16), nullable=True),
    sa.Column('parent_code', sa.String(length=32), nullable=True),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('params', sa.JSON(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint("kind IN ('province', 'city', 'pool', 'sub_fund')", name=op.f('ck_funds_kind')),
    sa.CheckConstraint("program IN ('SKD', 'XB')", name=op.f('ck_funds_program')),
    sa.CheckConstraint("status IN ('active', 'stopped')", name=op.f('ck_funds_status')),
    sa.ForeignKeyConstraint(['parent_code'], ['funds.code'], name=op.f('fk_funds_parent_code_funds')),
    sa.ForeignKeyConstraint(['region_code'], ['regions.code'], name=op.f('fk_funds_region_code_regions')),
    sa.PrimaryKeyConstraint('code', name=op.f('pk_funds'))
    )
    with op.batch_alter_table('funds', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_funds_parent_code'), ['parent_code'], unique=False)
        batch_op.create_index(batch_op.f('ix_funds_region_code'), ['region_code'], unique=False)

    op.create_table('agreements',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('bank_code', sa.String(length=32), nullable=False),
    sa.Column('program', sa.String(length=8), nullable=False),
    sa.Column('fund_code', sa.String(length=32), nullable=False),
    sa.Column('region_code', sa.String(length=16), nullable=True),
    sa.Column('start_on', sa.Date(), nullable=False),
    sa.Column('end_on', sa.Date(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('terms', sa.JSON(), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint("program IN ('SKD', 'XB')", name=op.f('ck_agreements_program')),
    sa.CheckConstraint("status IN ('active', 'suspended', 'terminated')", name=op.f('ck_agreements_status')),
    sa.CheckConstraint('end_on > start_on', name=op.f('ck_agreements_period')),
    sa.ForeignKeyConstraint(['bank_code'], ['banks.code'], name=op.f('fk_agreements_bank_code_banks')),
    sa.ForeignKeyConstraint(['fund_code'], ['funds.code'], name=op.f('fk_agreements_fund_code_funds')),
    sa.ForeignKeyConstraint(['region_code'], ['regions.code'], name=op.f('fk_agreements_region_code_regions')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_agreements'))
    )
    with op.batch_alter_table('agreements', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_agreements_bank_code'), ['bank_code'], unique=False)
        batch_op.create_index(batch_op.f('ix_agreements_fund_code'), ['fund_code'], unique=False)
        batch_op.create_index(batch_op.f('ix_agreements_region_code'), ['region_code'], unique=False)

    op.create_table('fund_contributors',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('fund_code', sa.String(length=32), nullable=False),
    sa.Column('code', sa.String(length=32), nullable=False),
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('region_code', sa.String(length=16), nullable=True),
    sa.Column('committed_fen', sa.BigInteger(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint('committed_fen >= 0', name=op.f('ck_fund_contributors_committed_non_negative')),
    sa.ForeignKeyConstraint(['fund_code'], ['funds.code'], name=op.f('fk_fund_contributors_fund_code_funds')),
    sa.ForeignKeyConstraint(['region_code'], ['regions.code'], name=op.f('fk_fund_contributors_region_code_regions')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_fund_contributors')),
    sa.UniqueConstraint('fund_code', 'code', name=op.f('uq_fund_contributors_fund_code_code'))
    )
    with op.batch_alter_table('fund_contributors', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_fund_contributors_fund_code'), ['fund_code'], unique=False)
        batch_op.create_index(batch_op.f('ix_fund_contributors_region_code'), ['region_code'], unique=False)

    op.create_table('users',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('username', sa.String(length=64), nullable=False),
    sa.Column('password_hash', sa.String(length=255), nullable=False),
    sa.Column('role', sa.String(length=20), nullable=False),
    sa.Column('bank_code', sa.String(length=32), nullable=True),
    sa.Column('region_code', sa.String(length=16), nullable=True),
    sa.Column('fund_code', sa.String(length=32), nullable=True),
    sa.Column('is_active', sa.Boolean(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint("role <> 'bank' OR bank_code IS NOT NULL", name=op.f('ck_users_bank_scope')),
    sa.CheckConstraint("role <> 'city_reviewer' OR region_code IS NOT NULL", name=op.f('ck_users_region_scope')),
    sa.CheckConstraint("role <> 'fund_manager' OR fund_code IS NOT NULL", name=op.f('ck_users_fund_scope')),
    sa.CheckConstraint("role IN ('admin', 'bank', 'city_reviewer', 'province_reviewer', 'fund_manager', 'committee', 'regulator')", name=op.f('ck_users_role')),
    sa.ForeignKeyConstraint(['bank_code'], ['banks.code'], name=op.f('fk_users_bank_code_banks')),
    sa.ForeignKeyConstraint(['fund_code'], ['funds.code'], name=op.f('fk_users_fund_code_funds')),
    sa.ForeignKeyConstraint(['region_code'], ['regions.code'], name=op.f('fk_users_region_code_regions')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_users')),
    sa.UniqueConstraint('username', name=op.f('uq_users_username'))
    )
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_users_bank_code'), ['bank_code'], unique=False)
        batch_op.create_index(batch_op.f('ix_users_fund_code'), ['fund_code'], unique=False)
        batch_op.create_index(batch_op.f('ix_users_region_code'), ['region_code'], unique=False)

    op.create_table('agreement_events',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('agreement_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('action', sa.String(length=20), nullable=False),
    sa.Column('from_status', sa.String(length=16), nullable=True),
    sa.Column('to_status', sa.String(length=16), nullable=False),
    sa.Column('reason', sa.Text(), nullable=False),
    sa.Column('actor_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['actor_id'], ['users.id'], name=op.f('fk_agreement_events_actor_id_users')),
    sa.ForeignKeyConstraint(['agreement_id'], ['agreements.id'], name=op.f('fk_agreement_events_agreement_id_agreements')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_agreement_events'))
    )
    with op.batch_alter_table('agreement_events', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_agreement_events_actor_id'), ['actor_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_agreement_events_agreement_id'), ['agreement_id'], unique=False)

    op.create_table('idempotency_records',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('user_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('key', sa.String(length=255), nullable=False),
    sa.Column('request_hash', sa.String(length=64), nullable=False),
    sa.Column('method', sa.String(length=8), nullable=False),
    sa.Column('path', sa.String(length=500), nullable=False),
    sa.Column('status_code', sa.Integer(), nullable=False),
    sa.Column('content_type', sa.String(length=100), nullable=False),
    sa.Column('response_body', sa.Text(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_idempotency_records_user_id_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_idempotency_records')),
    sa.UniqueConstraint('user_id', 'key', name=op.f('uq_idempotency_records_user_id_key'))
    )
    with op.batch_alter_table('idempotency_records', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_idempotency_records_user_id'), ['user_id'], unique=False)

    op.create_table('loans',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('program', sa.String(length=8), nullable=False),
    sa.Column('product', sa.String(length=16), nullable=True),
    sa.Column('bank_code', sa.String(length=32), nullable=False),
    sa.Column('agreement_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('enterprise_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('contract_no', sa.String(length=64), nullable=False),
    sa.Column('principal_fen', sa.BigInteger(), nullable=False),
    sa.Column('annual_rate_bp', sa.Integer(), nullable=False),
    sa.Column('fee_rate_bp', sa.Integer(), nullable=False),
    sa.Column('disbursed_on', sa.Date(), nullable=False),
    sa.Column('maturity_on', sa.Date(), nullable=False),
    sa.Column('security', sa.String(length=16), nullable=False),
    sa.Column('guarantor', sa.String(length=200), nullable=True),
    sa.Column('controller_guarantee', sa.Boolean(), nullable=False),
    sa.Column('other_fiscal_support', sa.Boolean(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('filed_on', sa.Date(), nullable=False),
    sa.Column('filing_deadline', sa.Date(), nullable=False),
    sa.Column('filed_late', sa.Boolean(), nullable=False),
    sa.Column('compensable', sa.Boolean(), nullable=False),
    sa.Column('flags', sa.JSON(), nullable=False),
    sa.Column('renewed_from_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('filed_by_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('extra', sa.JSON(), nullable=False),
    sa.Column('closed_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint("program IN ('SKD', 'XB')", name=op.f('ck_loans_program')),
    sa.CheckConstraint("security IN ('credit', 'guaranteed', 'collateral', 'ip_pledge')", name=op.f('ck_loans_security')),
    sa.CheckConstraint("status IN ('active', 'repaid', 'renewed', 'claimed', 'compensated', 'written_off')", name=op.f('ck_loans_status')),
    sa.CheckConstraint('maturity_on > disbursed_on', name=op.f('ck_loans_term')),
    sa.CheckConstraint('principal_fen > 0', name=op.f('ck_loans_principal_positive')),
    sa.ForeignKeyConstraint(['agreement_id'], ['agreements.id'], name=op.f('fk_loans_agreement_id_agreements')),
    sa.ForeignKeyConstraint(['bank_code'], ['banks.code'], name=op.f('fk_loans_bank_code_banks')),
    sa.ForeignKeyConstraint(['enterprise_id'], ['enterprises.id'], name=op.f('fk_loans_enterprise_id_enterprises')),
    sa.ForeignKeyConstraint(['filed_by_id'], ['users.id'], name=op.f('fk_loans_filed_by_id_users')),
    sa.ForeignKeyConstraint(['renewed_from_id'], ['loans.id'], name=op.f('fk_loans_renewed_from_id_loans')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_loans')),
    sa.UniqueConstraint('bank_code', 'contract_no', name=op.f('uq_loans_bank_code_contract_no'))
    )
    with op.batch_alter_table('loans', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_loans_agreement_id'), ['agreement_id'], unique=False)
        batch_op.create_index('ix_loans_bank_program_disbursed', ['bank_code', 'program', 'disbursed_on'], unique=False)
        batch_op.create_index(batch_op.f('ix_loans_enterprise_id'), ['enterprise_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_loans_filed_by_id'), ['filed_by_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_loans_renewed_from_id'), ['renewed_from_id'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('loans', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_loans_renewed_from_id'))
        batch_op.drop_index(batch_op.f('ix_loans_filed_by_id'))
        batch_op.drop_index(batch_op.f('ix_loans_enterprise_id'))
        batch_op.drop_index('ix_loans_bank_program_disbursed')
        batch_op.drop_index(batch_op.f('ix_loans_agreement_id'))

    op.drop_table('loans')
    with op.batch_alter_table('idempotency_records', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_idempotency_records_user_id'))

    op.drop_table('idempotency_records')
    with op.batch_alter_table('agreement_events', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_agreement_events_agreement_id'))
        batch_op.drop_index(batch_op.f('ix_agreement_events_actor_id'))

    op.drop_table('agreement_events')
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_users_region_code'))
        batch_op.drop_index(batch_op.f('ix_users_fund_code'))
        batch_op.drop_index(batch_op.f('ix_users_bank_code'))

    op.drop_table('users')
    with op.batch_alter_table('fund_contributors', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_fund_contributors_region_code'))
        batch_op.drop_index(batch_op.f('ix_fund_contributors_fund_code'))

    op.drop_table('fund_contributors')
    with op.batch_alter_table('agreements', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_agreements_region_code'))
        batch_op.drop_index(batch_op.f('ix_agreements_fund_code'))
        batch_op.drop_index(batch_op.f('ix_agreements_bank_code'))

    op.drop_table('agreements')
    with op.batch_alter_table('funds', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_funds_region_code'))
        batch_op.drop_index(batch_op.f('ix_funds_parent_code'))

    op.drop_table('funds')
    with op.batch_alter_table('enterprises', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_enterprises_region_code'))

    op.drop_table('enterprises')
    with op.batch_alter_table('regions', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_regions_parent_code'))

    op.drop_table('regions')
    op.drop_table('lpr_rates')
    op.drop_table('banks')
