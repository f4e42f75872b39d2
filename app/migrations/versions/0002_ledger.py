"""ledger: accounts, entries, legs, chain head, guards

Revision ID: 0002_ledger
Revises: 0001_foundation
Create Date: 2026-11-23 08:39:37.229078
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0002_ledger'
down_revision: str | None = '0001_foundation'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


GENESIS_HASH = "0" * 64

# L-2: entries and legs are append-only; PostgreSQL also forbids TRUNCATE.
PG_APPEND_ONLY = """
CREATE FUNCTION ledger_forbid_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION 'ledger is append-only (L-2): % on % refused; post a reversing entry',
    TG_OP, TG_TABLE_NAME USING ERRCODE = 'insufficient_privilege';
END $$;
"""

# L-1, set-based: an entry's legs are inserted first (their foreign key to the entry is
# DEFERRABLE INITIALLY DEFERRED, checked at COMMIT), then the entry row. The statement that
# inserts entries checks every new entry against all its legs: at least two, summing to
# zero in each fund's book. Legs can never be added to an entry that already exists, and
# legs whose entry never arrives fail the foreign key at COMMIT. Statement-level triggers
# with transition tables cost one query per statement, not one per row: a per-row deferred
# plpgsql check was measured to take minutes for a 20,000-entry batch.
PG_BALANCED = """
CREATE FUNCTION ledger_legs_for_new_entries_only() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  existing bigint;
BEGIN
  -- one primary-key probe per distinct entry of the statement (LATERAL … LIMIT keeps the
  -- plan a nested loop over the index, whatever the size of the journal)
  SELECT n.entry_id INTO existing
    FROM (SELECT DISTINCT entry_id FROM new_legs) n
    CROSS JOIN LATERAL (SELECT 1 FROM ledger_entries e WHERE e.id = n.entry_id LIMIT 1) found
   LIMIT 1;
  IF existing IS NOT NULL THEN
    RAISE EXCEPTION 'legs may not be added to existing ledger entry % (L-1, L-2)', existing
      USING ERRCODE = 'check_violation';
  END IF;
  RETURN NULL;
END $$;

CREATE FUNCTION ledger_entries_balanced() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  bad record;
BEGIN
  SELECT e.id, c.legs, b.book INTO bad
    FROM new_entries e
    CROSS JOIN LATERAL (
      SELECT count(*) AS legs FROM ledger_legs l WHERE l.entry_id = e.id) c
    LEFT JOIN LATERAL (
      SELECT l.fund_code AS book FROM ledger_legs l WHERE l.entry_id = e.id
       GROUP BY l.fund_code HAVING sum(l.amount_fen) <> 0 LIMIT 1) b ON true
   WHERE c.legs < 2 OR b.book IS NOT NULL
   LIMIT 1;
  IF bad.id IS NOT NULL THEN
    IF bad.legs < 2 THEN
      RAISE EXCEPTION 'ledger entry % has % leg(s); at least two are required (L-1)',
        bad.id, bad.legs USING ERRCODE = 'check_violation';
    END IF;
    RAISE EXCEPTION 'ledger entry % does not balance in book % (L-1)', bad.id, bad.book
      USING ERRCODE = 'check_violation';
  END IF;
  RETURN NULL;
END $$;

CREATE TRIGGER ledger_legs_new_entries_only AFTER INSERT ON ledger_legs
  REFERENCING NEW TABLE AS new_legs
  FOR EACH STATEMENT EXECUTE FUNCTION ledger_legs_for_new_entries_only();
CREATE TRIGGER ledger_entries_balanced AFTER INSERT ON ledger_entries
  REFERENCING NEW TABLE AS new_entries
  FOR EACH STATEMENT EXECUTE FUNCTION ledger_entries_balanced();
"""


def _guards_up() -> None:
    bind = op.get_bind()
    if bind.dialect.name == "postgresql":
        op.execute(PG_APPEND_ONLY)
        op.execute(PG_BALANCED)
        for table in ("ledger_entries", "ledger_legs"):
            op.execute(
                f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table} "
                "FOR EACH ROW EXECUTE FUNCTION ledger_forbid_change()"
            )
            op.execute(
                f"CREATE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON {table} "
                "FOR EACH STATEMENT EXECUTE FUNCTION ledger_forbid_change()"
            )
    elif bind.dialect.name == "sqlite":
        for table in ("ledger_entries", "ledger_legs"):
            for op_name in ("UPDATE", "DELETE"):
                op.execute(
                    f"CREATE TRIGGER {table}_no_{op_name.lower()} BEFORE {op_name} ON {table} "
                    f"BEGIN SELECT RAISE(ABORT, 'ledger is append-only (L-2): {op_name} on "
                    f"{table} refused; post a reversing entry'); END"
                )


def _guards_down() -> None:
    bind = op.get_bind()
    if bind.dialect.name == "postgresql":
        for table in ("ledger_entries", "ledger_legs"):
            op.execute(f"DROP TRIGGER IF EXISTS {table}_append_only ON {table}")
            op.execute(f"DROP TRIGGER IF EXISTS {table}_no_truncate ON {table}")
        op.execute("DROP TRIGGER IF EXISTS ledger_entries_balanced ON ledger_entries")
        op.execute("DROP TRIGGER IF EXISTS ledger_legs_new_entries_only ON ledger_legs")
        for fn in ("ledger_entries_balanced()", "ledger_legs_for_new_entries_only()",
                   "ledger_forbid_change()"):
            op.execute(f"DROP FUNCTION IF EXISTS {fn}")
    elif bind.dialect.name == "sqlite":
        for table in ("ledger_entries", "ledger_legs"):
            for op_name in ("update", "delete"):
                op.execute(f"DROP TRIGGER IF EXISTS {table}_no_{op_name}")


def upgrade() -> None:
    op.create_table('ledger_chain_head',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('last_seq', sa.BigInteger(), nullable=False),
    sa.Column('last_hash', sa.String(length=64), nullable=False),
    sa.CheckConstraint('id = 1', name=op.f('ck_ledger_chain_head_single_row')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_ledger_chain_head'))
    )
    op.create_table('ledger_accounts',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('code', sa.String(length=120), nullable=False),
    sa.Column('fund_code', sa.String(length=32), nullable=False),
    sa.Column('kind', sa.String(length=40), nullable=False),
    sa.Column('counterparty', sa.String(length=40), nullable=True),
    sa.Column('type', sa.String(length=10), nullable=False),
    sa.Column('normal_side', sa.String(length=6), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint("normal_side IN ('debit', 'credit')", name=op.f('ck_ledger_accounts_normal_side')),
    sa.CheckConstraint("type IN ('asset', 'liability', 'equity', 'income', 'expense', 'memo')", name=op.f('ck_ledger_accounts_type')),
    sa.ForeignKeyConstraint(['fund_code'], ['funds.code'], name=op.f('fk_ledger_accounts_fund_code_funds')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_ledger_accounts')),
    sa.UniqueConstraint('code', name=op.f('uq_ledger_accounts_code')),
    sa.UniqueConstraint('id', 'fund_code', name='uq_ledger_accounts_id_fund_code')
    )
    with op.batch_alter_table('ledger_accounts', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_ledger_accounts_fund_code'), ['fund_code'], unique=False)

    op.create_table('ledger_entries',
    sa.Column('id', sa.BigInteger(), autoincrement=False, nullable=False),
    sa.Column('event_type', sa.String(length=40), nullable=False),
    sa.Column('event_id', sa.String(length=64), nullable=False),
    sa.Column('idempotency_key', sa.String(length=200), nullable=False),
    sa.Column('business_date', sa.Date(), nullable=False),
    sa.Column('recorded_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('description', sa.Text(), nullable=False),
    sa.Column('reverses_entry_id', sa.BigInteger(), nullable=True),
    sa.Column('actor_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('prev_hash', sa.String(length=64), nullable=False),
    sa.Column('hash', sa.String(length=64), nullable=False),
    sa.CheckConstraint('id > 0', name=op.f('ck_ledger_entries_id_positive')),
    sa.ForeignKeyConstraint(['actor_id'], ['users.id'], name=op.f('fk_ledger_entries_actor_id_users')),
    sa.ForeignKeyConstraint(['reverses_entry_id'], ['ledger_entries.id'], name=op.f('fk_ledger_entries_reverses_entry_id_ledger_entries')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_ledger_entries')),
    sa.UniqueConstraint('idempotency_key', name=op.f('uq_ledger_entries_idempotency_key')),
    sa.UniqueConstraint('reverses_entry_id', name=op.f('uq_ledger_entries_reverses_entry_id'))
    )
    with op.batch_alter_table('ledger_entries', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_ledger_entries_business_date'), ['business_date'], unique=False)
        batch_op.create_index('ix_ledger_entries_event', ['event_type', 'event_id'], unique=False)

    op.create_table('ledger_legs',
    sa.Column('entry_id', sa.BigInteger(), nullable=False),
    sa.Column('position', sa.SmallInteger(), nullable=False),
    sa.Column('account_id', sa.BigInteger(), nullable=False),
    sa.Column('fund_code', sa.String(length=32), nullable=False),
    sa.Column('amount_fen', sa.BigInteger(), nullable=False),
    sa.CheckConstraint('amount_fen <> 0', name=op.f('ck_ledger_legs_non_zero')),
    sa.ForeignKeyConstraint(['account_id', 'fund_code'], ['ledger_accounts.id', 'ledger_accounts.fund_code'], name='fk_ledger_legs_account_book'),
    sa.ForeignKeyConstraint(['entry_id'], ['ledger_entries.id'], name=op.f('fk_ledger_legs_entry_id_ledger_entries'), initially='DEFERRED', deferrable=True),
    sa.PrimaryKeyConstraint('entry_id', 'position', name=op.f('pk_ledger_legs'))
    )
    with op.batch_alter_table('ledger_legs', schema=None) as batch_op:
        batch_op.create_index('ix_ledger_legs_account_entry', ['account_id', 'entry_id'], unique=False)


    head = sa.table("ledger_chain_head", sa.column("id", sa.Integer),
                    sa.column("last_seq", sa.BigInteger), sa.column("last_hash", sa.String))
    op.bulk_insert(head, [{"id": 1, "last_seq": 0, "last_hash": GENESIS_HASH}])
    _guards_up()

def downgrade() -> None:
    _guards_down()
    with op.batch_alter_table('ledger_legs', schema=None) as batch_op:
        batch_op.drop_index('ix_ledger_legs_account_entry')

    op.drop_table('ledger_legs')
    with op.batch_alter_table('ledger_entries', schema=None) as batch_op:
        batch_op.drop_index('ix_ledger_entries_event')
        batch_op.drop_index(batch_op.f('ix_ledger_entries_business_date'))

    op.drop_table('ledger_entries')
    with op.batch_alter_table('ledger_accounts', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_ledger_accounts_fund_code'))

    op.drop_table('ledger_accounts')
    op.drop_table('ledger_chain_head')
