"""loan_day_totals keyed by the loan's security too

Revision ID: 0025_day_totals_security
Revises: 0024_late_instalments
Create Date: 2026-12-03 23:50:00

The day totals (0012, keyed by fund since 0017) are kept per programme, bank, fund,
product, security (credit, guaranteed, collateral, ip_pledge: `loans.security`) and day.
XB's quarterly report groups its book by sub-fund and security: with the security a key
of the day totals, its outstanding per product is read from them like SKD's, instead of
summing every XB loan and its repayments per request. Every other reader sums over the
new key, so its figures are unchanged.

The table is rebuilt from the loans and repayments (one INSERT … SELECT, as 0017 did),
its triggers redefined to carry the loan's security, and the security joins the loan
terms that cannot change once written (the fixed-terms trigger of 0012). Downgrade
rebuilds the table without the security, as 0017 left it.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0025_day_totals_security"
down_revision: str | None = "0024_late_instalments"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

FIXED = "loan terms summed in loan_day_totals cannot change (%s on %s refused)"
SQLITE_TRIGGERS = ("loans_day_totals", "loan_repayments_day_totals", "loans_terms_fixed")


def key_columns(security: bool) -> list[str]:
    return ["program", "bank_code", "fund_code", "product", *(["security"] if security else []), "day"]


def _days(dialect: str) -> str:
    if dialect == "postgresql":
        return "(maturity_on - disbursed_on)"
    return "CAST(julianday(maturity_on) - julianday(disbursed_on) AS INTEGER)"


def backfill(dialect: str, security: bool = True) -> str:
    """INSERT … SELECT of every day row from the loans and their repayments (also used by
    `bench/report_data.py` after its COPY)."""
    key = ", ".join(key_columns(security))
    columns = f"{key}, loans, disbursed_fen, disbursed_days_fen, repaid_fen"
    sec = "security, " if security else ""
    return (
        f"INSERT INTO loan_day_totals ({columns}) SELECT {key}, sum(loans), sum(disbursed),"
        " sum(disbursed_days), sum(repaid) FROM ("
        " SELECT program, bank_code, COALESCE(fund_code, '') AS fund_code,"
        f" COALESCE(product, '') AS product, {sec}disbursed_on AS day, 1 AS loans,"
        f" principal_fen AS disbursed, principal_fen * {_days(dialect)} AS disbursed_days,"
        " 0 AS repaid FROM loans"
        " UNION ALL SELECT l.program, l.bank_code, COALESCE(l.fund_code, ''),"
        f" COALESCE(l.product, ''), {'l.security, ' if security else ''}r.paid_on, 0, 0, 0,"
        " r.principal_fen FROM loan_repayments r JOIN loans l ON l.id = r.loan_id"
        f") AS x GROUP BY {key}"
    )


def _triggers(security: bool) -> tuple[str, list[str]]:
    """(PostgreSQL functions, SQLite triggers) keeping the day totals with (`security`)
    or without the loan's security in the key."""
    key = ", ".join(key_columns(security))
    columns = f"{key}, loans, disbursed_fen, disbursed_days_fen, repaid_fen"
    groups = ", ".join(str(i) for i in range(1, len(key_columns(security)) + 1))
    terms = ("program", "bank_code", "product", "principal_fen", "disbursed_on", "maturity_on")
    terms += ("fund_code", "security") if security else ("fund_code",)

    def sec(prefix: str = "") -> str:
        return f"{prefix}security, " if security else ""

    same_security = "\n       AND NEW.security = OLD.security" if security else ""
    pg = f"""
CREATE OR REPLACE FUNCTION loan_day_totals_add_loans() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO loan_day_totals AS t ({columns})
  SELECT program, bank_code, COALESCE(fund_code, ''), COALESCE(product, ''), {sec()}disbursed_on,
         count(*), sum(principal_fen), sum(principal_fen * (maturity_on - disbursed_on)), 0
  FROM new_loans GROUP BY {groups} ORDER BY {groups}
  ON CONFLICT ({key}) DO UPDATE SET loans = t.loans + EXCLUDED.loans,
    disbursed_fen = t.disbursed_fen + EXCLUDED.disbursed_fen,
    disbursed_days_fen = t.disbursed_days_fen + EXCLUDED.disbursed_days_fen;
  RETURN NULL;
END $$;

CREATE OR REPLACE FUNCTION loan_day_totals_add_repayments() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO loan_day_totals AS t ({columns})
  SELECT l.program, l.bank_code, COALESCE(l.fund_code, ''), COALESCE(l.product, ''),
         {sec("l.")}r.paid_on, 0, 0, 0, sum(r.principal_fen)
  FROM new_repayments r JOIN loans l ON l.id = r.loan_id
  GROUP BY {groups} ORDER BY {groups}
  ON CONFLICT ({key}) DO UPDATE SET repaid_fen = t.repaid_fen + EXCLUDED.repaid_fen;
  UPDATE loans l SET settled_on = s.last_paid
  FROM (SELECT loan_id, max(paid_on) AS last_paid, sum(principal_fen) AS repaid
        FROM loan_repayments
        WHERE loan_id IN (SELECT loan_id FROM new_repayments) GROUP BY loan_id) s
  WHERE l.id = s.loan_id AND s.repaid >= l.principal_fen
    AND l.settled_on IS DISTINCT FROM s.last_paid;
  RETURN NULL;
END $$;

CREATE OR REPLACE FUNCTION loan_terms_fixed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'UPDATE' AND TG_TABLE_NAME = 'loans' THEN
    IF NEW.program = OLD.program AND NEW.bank_code = OLD.bank_code
       AND NEW.product IS NOT DISTINCT FROM OLD.product
       AND NEW.principal_fen = OLD.principal_fen AND NEW.disbursed_on = OLD.disbursed_on
       AND NEW.maturity_on = OLD.maturity_on
       AND NEW.fund_code IS NOT DISTINCT FROM OLD.fund_code{same_security} THEN
      RETURN NEW;
    END IF;
  END IF;
  RAISE EXCEPTION '{FIXED.replace("%s", "%")}', TG_OP, TG_TABLE_NAME
    USING ERRCODE = 'insufficient_privilege';
END $$;
"""
    sqlite = [
        f"""CREATE TRIGGER loans_day_totals AFTER INSERT ON loans BEGIN
  INSERT INTO loan_day_totals ({columns})
  VALUES (NEW.program, NEW.bank_code, COALESCE(NEW.fund_code, ''), COALESCE(NEW.product, ''),
          {sec("NEW.")}NEW.disbursed_on, 1, NEW.principal_fen, NEW.principal_fen
            * CAST(julianday(NEW.maturity_on) - julianday(NEW.disbursed_on) AS INTEGER), 0)
  ON CONFLICT ({key}) DO UPDATE SET loans = loans + 1,
    disbursed_fen = disbursed_fen + excluded.disbursed_fen,
    disbursed_days_fen = disbursed_days_fen + excluded.disbursed_days_fen;
END""",
        f"""CREATE TRIGGER loan_repayments_day_totals AFTER INSERT ON loan_repayments BEGIN
  INSERT INTO loan_day_totals ({columns})
  SELECT program, bank_code, COALESCE(fund_code, ''), COALESCE(product, ''), {sec()}NEW.paid_on,
         0, 0, 0, NEW.principal_fen
  FROM loans WHERE id = NEW.loan_id
  ON CONFLICT ({key}) DO UPDATE SET repaid_fen = repaid_fen + excluded.repaid_fen;
  UPDATE loans SET settled_on = (SELECT max(paid_on) FROM loan_repayments
                                 WHERE loan_id = NEW.loan_id)
  WHERE id = NEW.loan_id AND principal_fen <= (SELECT sum(principal_fen)
                                               FROM loan_repayments WHERE loan_id = NEW.loan_id);
END""",
        f"""CREATE TRIGGER loans_terms_fixed BEFORE UPDATE OF {', '.join(terms)} ON loans BEGIN
  SELECT RAISE(ABORT, '{FIXED % ("UPDATE", "loans")}');
END""",
    ]
    return pg, sqlite


def _rebuild(security: bool) -> None:
    """Rebuild loan_day_totals with (or without) the security in its key, fill it from
    the loans and repayments, and point its triggers at the new key."""
    dialect = op.get_bind().dialect.name
    pg, sqlite = _triggers(security)
    if dialect != "postgresql":
        for name in SQLITE_TRIGGERS:
            op.execute(f"DROP TRIGGER IF EXISTS {name}")
    op.drop_table("loan_day_totals")
    op.create_table(
        "loan_day_totals",
        sa.Column("program", sa.String(length=8), nullable=False),
        sa.Column("bank_code", sa.String(length=32), nullable=False),
        sa.Column("fund_code", sa.String(length=32), nullable=False),
        sa.Column("product", sa.String(length=16), nullable=False),
        *([sa.Column("security", sa.String(length=16), nullable=False)] if security else []),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("loans", sa.Integer(), nullable=False),
        sa.Column("disbursed_fen", sa.BigInteger(), nullable=False),
        sa.Column("disbursed_days_fen", sa.BigInteger(), nullable=False),
        sa.Column("repaid_fen", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint(*key_columns(security), name=op.f("pk_loan_day_totals")),
    )
    op.execute(backfill(dialect, security))
    if dialect == "postgresql":
        op.execute(pg)
        op.execute("ANALYZE loan_day_totals")
    else:
        for statement in sqlite:
            op.execute(statement)


def upgrade() -> None:
    _rebuild(security=True)


def downgrade() -> None:
    _rebuild(security=False)
