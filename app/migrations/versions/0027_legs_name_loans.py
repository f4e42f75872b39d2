"""ledger_legs.loan_id: a guarantee exposure's legs name their loan (#16 part 3)

Revision ID: 0027_legs_name_loans
Revises: 0026_batch_jobs
Create Date: 2026-12-04 04:00:00

A batch of filings now posts its guarantee exposure as one entry, a balanced leg pair per
loan and book, instead of one entry per loan: the journal gets one entry row and one hash
per batch, and each leg says which loan it concerns. Single filings, exposure changes and
a claim's release of exposure name their loan the same way.

1. `ledger_legs.loan_id` (nullable, a foreign key to `loans`), with a partial index for
   "every leg of this loan". Legs posted before this revision keep NULL: the ledger is
   append-only (L-2) and their hashes were computed without a loan, so nothing is
   back-filled; their entry's `event_id` is the loan.
2. `ledger_legs.position` becomes an INTEGER (it was a SMALLINT): a batch of 10,000
   loans carries up to 40,000 legs in one entry.

3. PostgreSQL's check of every new entry (the statement trigger of 0002) groups the legs
   by book and loan: the legs naming one loan must balance in each book on their own,
   as `validate_legs` requires (the legs naming none then balance too, since the book
   does). Its cost is the same single grouped probe per entry.

On SQLite the table is rebuilt (its two append-only triggers dropped first and created
again after); PostgreSQL alters it in place (its triggers are unaffected).

Downgrading is refused once a leg names a loan: the entries' hashes cover their legs'
loans, so dropping the column would leave them failing `ledger verify` under the older
code — restore a backup instead. `alembic -x discard_leg_loans=yes downgrade …` drops
them anyway (a test or scratch database). It also fails on PostgreSQL if an entry has
more than 32,767 legs.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import context, op

revision: str = "0027_legs_name_loans"
down_revision: str | None = "0026_batch_jobs"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

LOAN_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
INDEX_WHERE = sa.text("loan_id IS NOT NULL")


# the check of 0002 (`with_loan=False`), or its grouping by book extended to (book, loan)
def _balanced(with_loan: bool) -> str:
    loan_col, loan_group = (", b.loan", ", l.loan_id") if with_loan else ("", "")
    loan_select = ", l.loan_id AS loan" if with_loan else ""
    loan_raise = (
        """
    IF bad.loan IS NOT NULL THEN
      RAISE EXCEPTION 'ledger entry % does not balance in book % for loan % (L-1)',
        bad.id, bad.book, bad.loan USING ERRCODE = 'check_violation';
    END IF;"""
        if with_loan
        else ""
    )
    return f"""
CREATE OR REPLACE FUNCTION ledger_entries_balanced() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  bad record;
BEGIN
  SELECT e.id, c.legs, b.book{loan_col} INTO bad
    FROM new_entries e
    CROSS JOIN LATERAL (
      SELECT count(*) AS legs FROM ledger_legs l WHERE l.entry_id = e.id) c
    LEFT JOIN LATERAL (
      SELECT l.fund_code AS book{loan_select} FROM ledger_legs l WHERE l.entry_id = e.id
       GROUP BY l.fund_code{loan_group} HAVING sum(l.amount_fen) <> 0 LIMIT 1) b ON true
   WHERE c.legs < 2 OR b.book IS NOT NULL
   LIMIT 1;
  IF bad.id IS NOT NULL THEN
    IF bad.legs < 2 THEN
      RAISE EXCEPTION 'ledger entry % has % leg(s); at least two are required (L-1)',
        bad.id, bad.legs USING ERRCODE = 'check_violation';
    END IF;{loan_raise}
    RAISE EXCEPTION 'ledger entry % does not balance in book % (L-1)', bad.id, bad.book
      USING ERRCODE = 'check_violation';
  END IF;
  RETURN NULL;
END $$;
"""


def _sqlite_triggers(create: bool) -> None:
    for op_name in ("UPDATE", "DELETE"):
        name = f"ledger_legs_no_{op_name.lower()}"
        if create:
            op.execute(
                f"CREATE TRIGGER {name} BEFORE {op_name} ON ledger_legs "
                f"BEGIN SELECT RAISE(ABORT, 'ledger is append-only (L-2): {op_name} on "
                "ledger_legs refused; post a reversing entry'); END"
            )
        else:
            op.execute(f"DROP TRIGGER IF EXISTS {name}")


def upgrade() -> None:
    sqlite = op.get_bind().dialect.name == "sqlite"
    if sqlite:
        _sqlite_triggers(create=False)
    with op.batch_alter_table("ledger_legs", recreate="auto") as batch:
        batch.alter_column(
            "position",
            existing_type=sa.SmallInteger(),
            type_=sa.Integer(),
            existing_nullable=False,
        )
        batch.add_column(sa.Column("loan_id", LOAN_ID, nullable=True))
        batch.create_foreign_key(
            op.f("fk_ledger_legs_loan_id_loans"), "loans", ["loan_id"], ["id"]
        )
    op.create_index(
        "ix_ledger_legs_loan",
        "ledger_legs",
        ["loan_id"],
        postgresql_where=INDEX_WHERE,
        sqlite_where=INDEX_WHERE,
    )
    if sqlite:
        _sqlite_triggers(create=True)
    else:
        op.execute(_balanced(with_loan=True))


def _discard_allowed() -> bool:
    cfg = context.config
    return bool(cfg.attributes.get("discard_leg_loans")) or (
        context.get_x_argument(as_dictionary=True).get("discard_leg_loans") == "yes"
    )


def downgrade() -> None:
    bind = op.get_bind()
    named = bind.execute(sa.text("SELECT 1 FROM ledger_legs WHERE loan_id IS NOT NULL LIMIT 1"))
    if named.first() is not None and not _discard_allowed():
        raise RuntimeError(
            "ledger legs name their loans and their entries' hashes cover them: a downgrade "
            "past 0027_legs_name_loans would leave those entries failing `ledger verify`; "
            "restore a backup, or pass -x discard_leg_loans=yes on a scratch database"
        )
    sqlite = bind.dialect.name == "sqlite"
    if not sqlite:
        op.execute(_balanced(with_loan=False))
    op.drop_index("ix_ledger_legs_loan", table_name="ledger_legs")
    if sqlite:
        _sqlite_triggers(create=False)
    with op.batch_alter_table("ledger_legs", recreate="auto") as batch:
        batch.drop_constraint(op.f("fk_ledger_legs_loan_id_loans"), type_="foreignkey")
        batch.drop_column("loan_id")
        batch.alter_column(
            "position",
            existing_type=sa.Integer(),
            type_=sa.SmallInteger(),
            existing_nullable=False,
        )
    if sqlite:
        _sqlite_triggers(create=True)
