"""loan day totals kept by the database; loans.settled_on

Revision ID: 0012_day_totals
Revises: 0011_quota_used
Create Date: 2026-11-23 13:15:00

The caps and exposure figures (SKD-Q1, Q2, Q3, XB-Q1) sum per-day rows instead of every
loan of a bank. Triggers add each inserted loan and repayment to its day row in the same
transaction, whatever wrote it (the service, a batch, COPY); `loans.settled_on` (the day
the principal was repaid in full) is set by the repayment trigger. The loan terms the
totals depend on, and the repayments, cannot be changed or deleted afterwards.
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0012_day_totals'
down_revision: str | None = '0011_quota_used'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

KEY = "program, bank_code, product, day"
COLUMNS = f"{KEY}, loans, disbursed_fen, disbursed_days_fen, repaid_fen"
TERMS = ("program", "bank_code", "product", "principal_fen", "disbursed_on", "maturity_on")
FIXED = "loan terms summed in loan_day_totals cannot change (%s on %s refused)"

PG_UP = f"""
CREATE FUNCTION loan_day_totals_add_loans() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO loan_day_totals AS t ({COLUMNS})
  SELECT program, bank_code, COALESCE(product, ''), disbursed_on, count(*),
         sum(principal_fen), sum(principal_fen * (maturity_on - disbursed_on)), 0
  FROM new_loans GROUP BY 1, 2, 3, 4 ORDER BY 1, 2, 3, 4
  ON CONFLICT ({KEY}) DO UPDATE SET loans = t.loans + EXCLUDED.loans,
    disbursed_fen = t.disbursed_fen + EXCLUDED.disbursed_fen,
    disbursed_days_fen = t.disbursed_days_fen + EXCLUDED.disbursed_days_fen;
  RETURN NULL;
END $$;
CREATE TRIGGER loans_day_totals AFTER INSERT ON loans REFERENCING NEW TABLE AS new_loans
  FOR EACH STATEMENT EXECUTE FUNCTION loan_day_totals_add_loans();

CREATE FUNCTION loan_day_totals_add_repayments() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO loan_day_totals AS t ({COLUMNS})
  SELECT l.program, l.bank_code, COALESCE(l.product, ''), r.paid_on, 0, 0, 0,
         sum(r.principal_fen)
  FROM new_repayments r JOIN loans l ON l.id = r.loan_id
  GROUP BY 1, 2, 3, 4 ORDER BY 1, 2, 3, 4
  ON CONFLICT ({KEY}) DO UPDATE SET repaid_fen = t.repaid_fen + EXCLUDED.repaid_fen;
  UPDATE loans l SET settled_on = s.last_paid
  FROM (SELECT loan_id, max(paid_on) AS last_paid, sum(principal_fen) AS repaid
        FROM loan_repayments
        WHERE loan_id IN (SELECT loan_id FROM new_repayments) GROUP BY loan_id) s
  WHERE l.id = s.loan_id AND s.repaid >= l.principal_fen
    AND l.settled_on IS DISTINCT FROM s.last_paid;
  RETURN NULL;
END $$;
CREATE TRIGGER loan_repayments_day_totals AFTER INSERT ON loan_repayments
  REFERENCING NEW TABLE AS new_repayments
  FOR EACH STATEMENT EXECUTE FUNCTION loan_day_totals_add_repayments();

CREATE FUNCTION loan_terms_fixed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'UPDATE' AND TG_TABLE_NAME = 'loans' THEN
    IF NEW.program = OLD.program AND NEW.bank_code = OLD.bank_code
       AND NEW.product IS NOT DISTINCT FROM OLD.product
       AND NEW.principal_fen = OLD.principal_fen AND NEW.disbursed_on = OLD.disbursed_on
       AND NEW.maturity_on = OLD.maturity_on THEN
      RETURN NEW;
    END IF;
  END IF;
  RAISE EXCEPTION '{FIXED.replace("%s", "%")}', TG_OP, TG_TABLE_NAME
    USING ERRCODE = 'insufficient_privilege';
END $$;
CREATE TRIGGER loans_terms_fixed BEFORE UPDATE OR DELETE ON loans
  FOR EACH ROW EXECUTE FUNCTION loan_terms_fixed();
CREATE TRIGGER loan_repayments_fixed BEFORE UPDATE OR DELETE ON loan_repayments
  FOR EACH ROW EXECUTE FUNCTION loan_terms_fixed();
"""

SQLITE_UP = [
    f"""CREATE TRIGGER loans_day_totals AFTER INSERT ON loans BEGIN
  INSERT INTO loan_day_totals ({COLUMNS})
  VALUES (NEW.program, NEW.bank_code, COALESCE(NEW.product, ''), NEW.disbursed_on, 1,
          NEW.principal_fen, NEW.principal_fen
            * CAST(julianday(NEW.maturity_on) - julianday(NEW.disbursed_on) AS INTEGER), 0)
  ON CONFLICT ({KEY}) DO UPDATE SET loans = loans + 1,
    disbursed_fen = disbursed_fen + excluded.disbursed_fen,
    disbursed_days_fen = disbursed_days_fen + excluded.disbursed_days_fen;
END""",
    f"""CREATE TRIGGER loan_repayments_day_totals AFTER INSERT ON loan_repayments BEGIN
  INSERT INTO loan_day_totals ({COLUMNS})
  SELECT program, bank_code, COALESCE(product, ''), NEW.paid_on, 0, 0, 0, NEW.principal_fen
  FROM loans WHERE id = NEW.loan_id
  ON CONFLICT ({KEY}) DO UPDATE SET repaid_fen = repaid_fen + excluded.repaid_fen;
  UPDATE loans SET settled_on = (SELECT max(paid_on) FROM loan_repayments
                                 WHERE loan_id = NEW.loan_id)
  WHERE id = NEW.loan_id AND principal_fen <= (SELECT sum(principal_fen)
                                               FROM loan_repayments WHERE loan_id = NEW.loan_id);
END""",
    f"""CREATE TRIGGER loans_terms_fixed BEFORE UPDATE OF {', '.join(TERMS)} ON loans BEGIN
  SELECT RAISE(ABORT, '{FIXED % ("UPDATE", "loans")}');
END""",
    f"""CREATE TRIGGER loans_no_delete BEFORE DELETE ON loans BEGIN
  SELECT RAISE(ABORT, '{FIXED % ("DELETE", "loans")}');
END""",
    f"""CREATE TRIGGER loan_repayments_no_update BEFORE UPDATE ON loan_repayments BEGIN
  SELECT RAISE(ABORT, '{FIXED % ("UPDATE", "loan_repayments")}');
END""",
    f"""CREATE TRIGGER loan_repayments_no_delete BEFORE DELETE ON loan_repayments BEGIN
  SELECT RAISE(ABORT, '{FIXED % ("DELETE", "loan_repayments")}');
END""",
]

SQLITE_DOWN = [
    "loans_day_totals", "loan_repayments_day_totals", "loans_terms_fixed", "loans_no_delete",
    "loan_repayments_no_update", "loan_repayments_no_delete",
]


def _days(dialect: str) -> str:
    if dialect == "postgresql":
        return "(maturity_on - disbursed_on)"
    return "CAST(julianday(maturity_on) - julianday(disbursed_on) AS INTEGER)"


def upgrade() -> None:
    op.create_table('loan_day_totals',
    sa.Column('program', sa.String(length=8), nullable=False),
    sa.Column('bank_code', sa.String(length=32), nullable=False),
    sa.Column('product', sa.String(length=16), nullable=False),
    sa.Column('day', sa.Date(), nullable=False),
    sa.Column('loans', sa.Integer(), nullable=False),
    sa.Column('disbursed_fen', sa.BigInteger(), nullable=False),
    sa.Column('disbursed_days_fen', sa.BigInteger(), nullable=False),
    sa.Column('repaid_fen', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('program', 'bank_code', 'product', 'day', name=op.f('pk_loan_day_totals'))
    )
    with op.batch_alter_table('loans', schema=None) as batch_op:
        batch_op.add_column(sa.Column('settled_on', sa.Date(), nullable=True))
        batch_op.create_index('ix_loans_bank_program_settled', ['bank_code', 'program', 'settled_on'], unique=False)
        batch_op.create_index('ix_loans_unsettled_maturity', ['bank_code', 'program', 'maturity_on'], unique=False, postgresql_where=sa.text('settled_on IS NULL'), sqlite_where=sa.text('settled_on IS NULL'))

    dialect = op.get_bind().dialect.name
    # backfill from what is already there
    op.execute(
        f"INSERT INTO loan_day_totals ({COLUMNS}) SELECT {KEY}, sum(loans), sum(disbursed),"
        " sum(disbursed_days), sum(repaid) FROM ("
        " SELECT program, bank_code, COALESCE(product, '') AS product, disbursed_on AS day,"
        f" 1 AS loans, principal_fen AS disbursed, principal_fen * {_days(dialect)}"
        " AS disbursed_days, 0 AS repaid FROM loans"
        " UNION ALL SELECT l.program, l.bank_code, COALESCE(l.product, ''), r.paid_on, 0, 0, 0,"
        " r.principal_fen FROM loan_repayments r JOIN loans l ON l.id = r.loan_id"
        f") AS x GROUP BY {KEY}"
    )
    op.execute(
        "UPDATE loans SET settled_on = (SELECT max(paid_on) FROM loan_repayments r"
        " WHERE r.loan_id = loans.id) WHERE principal_fen <= (SELECT COALESCE(sum(principal_fen), 0)"
        " FROM loan_repayments r WHERE r.loan_id = loans.id)"
    )
    if dialect == "postgresql":
        op.execute(PG_UP)
    else:
        for statement in SQLITE_UP:
            op.execute(statement)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS loans_day_totals ON loans")
        op.execute("DROP TRIGGER IF EXISTS loan_repayments_day_totals ON loan_repayments")
        op.execute("DROP TRIGGER IF EXISTS loans_terms_fixed ON loans")
        op.execute("DROP TRIGGER IF EXISTS loan_repayments_fixed ON loan_repayments")
        for fn in ("loan_day_totals_add_loans", "loan_day_totals_add_repayments", "loan_terms_fixed"):
            op.execute(f"DROP FUNCTION IF EXISTS {fn}()")
    else:
        for name in SQLITE_DOWN:
            op.execute(f"DROP TRIGGER IF EXISTS {name}")
    with op.batch_alter_table('loans', schema=None) as batch_op:
        batch_op.drop_index('ix_loans_unsettled_maturity', postgresql_where=sa.text('settled_on IS NULL'), sqlite_where=sa.text('settled_on IS NULL'))
        batch_op.drop_index('ix_loans_bank_program_settled')
        batch_op.drop_column('settled_on')
    op.drop_table('loan_day_totals')
