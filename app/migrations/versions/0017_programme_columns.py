"""programme codes as a reference table; loans.fund_code; claim shares as rows; loan
status history; day totals keyed by fund

Revision ID: 0017_programme_columns
Revises: 0016_claim_returns
Create Date: 2026-12-03 09:00:00

1. `programs` holds the programme codes (SKD, XB inserted here; a programme added later
   brings its row with a data migration, or `ensure_program_rows` at seed time). Every
   `program` column references it: the CHECK (program IN ('SKD', 'XB')) of funds,
   agreements, loans and claims is replaced by the foreign key, and program_quotas,
   quarter_evaluations and library_events (no CHECK before) get it too. loan_day_totals
   is derived from loans (which reference it) and has none.
2. `loans.fund_code` (SKD the city fund, XB the sub-fund), so far read from
   `loans.extra`, backfilled from it (or, where `extra` names no known fund, from the
   loan's agreement, whose fund it is by construction). Part of the fixed loan terms.
3. `claim_shares`: the requested and approved splits (`claims.shares`,
   `claims.approved_shares`) as rows, backfilled, append-only like the other claim
   records (0007).
4. `loan_transitions`: one append-only row per loan status change.
5. `loan_day_totals` keyed by bank × programme × fund × product × day: rebuilt from the
   loans and repayments, its triggers (0012) redefined to carry the loan's fund.

SQLite cannot add or drop a constraint of an existing table, and a batch rebuild of
`loans` or `claims` fails on a database with rows under foreign keys (see 0016) and would
drop their triggers. The constraint's text is therefore rewritten in the schema (SQLite's
documented procedure for constraints the stored rows already satisfy), checked with
`PRAGMA foreign_key_check` and `PRAGMA integrity_check` afterwards; the tables keep their
rows, indexes and triggers. Columns are added and dropped with plain ALTER TABLE.
"""
from collections.abc import Sequence
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

revision: str = '0017_programme_columns'
down_revision: str | None = '0016_claim_returns'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# as registered in app/programs/base.py at this revision
PROGRAMMES = (
    ("SKD", "苏科贷", "Su Ke Dai (provincial tech-SME credit loans)"),
    ("XB", "连云港市小微企业信用保证基金", "Xin Bao (Lianyungang SME credit guarantee fund)"),
)
CHECKED = ("funds", "agreements", "loans", "claims")  # CHECK (program IN ('SKD', 'XB'))
UNCHECKED = ("program_quotas", "quarter_evaluations", "library_events")
PROGRAM_CHECK = "program IN ('SKD', 'XB')"

ID = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')
RECORDS_FORBID = """
CREATE FUNCTION loan_records_forbid_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION 'loan records are append-only: % on % refused',
    TG_OP, TG_TABLE_NAME USING ERRCODE = 'insufficient_privilege';
END $$;
"""


def _postgres() -> bool:
    return op.get_bind().dialect.name == "postgresql"


# --- SQLite: constraints changed by rewriting the table's text in the schema ---------------

def _fk_text(table: str) -> str:
    return f"CONSTRAINT fk_{table}_program_programs FOREIGN KEY(program) REFERENCES programs (code)"


def _check_text(table: str) -> str:
    return f"CONSTRAINT ck_{table}_program CHECK ({PROGRAM_CHECK})"


def _sqlite_rewrite(changes: dict[str, list[tuple[str, str]]]) -> None:
    """Replace, in each table's CREATE TABLE text, every `before` (found exactly once)
    by its `after`; then make SQLite re-read its schema and check the rows against it."""
    conn = op.get_bind()
    texts = {}
    for table, replacements in changes.items():
        sql = conn.exec_driver_sql(
            "SELECT sql FROM sqlite_master WHERE type = 'table' AND name = ?", (table,)
        ).scalar_one()
        for before, after in replacements:
            if sql.count(before) != 1:
                raise RuntimeError(f"{table}: schema text not found as expected: {before}")
            sql = sql.replace(before, after)
        texts[table] = sql
    version = conn.exec_driver_sql("PRAGMA schema_version").scalar_one()
    conn.exec_driver_sql("PRAGMA writable_schema = ON")
    for table, sql in texts.items():
        conn.exec_driver_sql(
            "UPDATE sqlite_master SET sql = ? WHERE type = 'table' AND name = ?", (sql, table)
        )
    conn.exec_driver_sql(f"PRAGMA schema_version = {int(version) + 1}")
    conn.exec_driver_sql("PRAGMA writable_schema = OFF")
    check = conn.exec_driver_sql("PRAGMA integrity_check").scalar_one()
    if check != "ok":
        raise RuntimeError(f"integrity check after the constraint change: {check}")
    for table in texts:
        bad = conn.exec_driver_sql(f"PRAGMA foreign_key_check({table})").first()
        if bad is not None:
            raise RuntimeError(f"{table}: a row breaks a foreign key after the change: {bad}")


def _programme_keys_up() -> None:
    if _postgres():
        for table in CHECKED + UNCHECKED:
            if table in CHECKED:
                op.drop_constraint(op.f(f'ck_{table}_program'), table, type_='check')
            op.create_foreign_key(
                op.f(f'fk_{table}_program_programs'), table, 'programs', ['program'], ['code']
            )
        return
    changes = {t: [(_check_text(t), _fk_text(t))] for t in CHECKED}
    changes |= {t: [("\n)", f", \n\t{_fk_text(t)}\n)")] for t in UNCHECKED}
    _sqlite_rewrite(changes)


def _programme_keys_down() -> None:
    if _postgres():
        for table in CHECKED + UNCHECKED:
            op.drop_constraint(op.f(f'fk_{table}_program_programs'), table, type_='foreignkey')
            if table in CHECKED:
                op.create_check_constraint(op.f(f'ck_{table}_program'), table, PROGRAM_CHECK)
        return
    conn = op.get_bind()
    for table in CHECKED:  # the CHECK is only written back when the rows satisfy it
        bad = conn.exec_driver_sql(
            f"SELECT program FROM {table} WHERE NOT ({PROGRAM_CHECK}) LIMIT 1"
        ).first()
        if bad is not None:
            raise RuntimeError(f"{table}: programme {bad[0]!r} is outside {PROGRAM_CHECK}")
    changes = {t: [(_fk_text(t), _check_text(t))] for t in CHECKED}
    changes |= {t: [(f", \n\t{_fk_text(t)}\n)", "\n)")] for t in UNCHECKED}
    _sqlite_rewrite(changes)


# --- loans.fund_code ------------------------------------------------------------------

def _loans_fund_code_up() -> None:
    if _postgres():
        op.add_column('loans', sa.Column('fund_code', sa.String(length=32), nullable=True))
        op.create_foreign_key(
            op.f('fk_loans_fund_code_funds'), 'loans', 'funds', ['fund_code'], ['code']
        )
        named = "COALESCE(NULLIF(extra->>'city_fund', ''), NULLIF(extra->>'sub_fund', ''))"
    else:
        op.execute("ALTER TABLE loans ADD COLUMN fund_code VARCHAR(32) REFERENCES funds (code)")
        named = (
            "COALESCE(NULLIF(json_extract(extra, '$.city_fund'), ''),"
            " NULLIF(json_extract(extra, '$.sub_fund'), ''))"
        )
    op.create_index(op.f('ix_loans_fund_code'), 'loans', ['fund_code'], unique=False)
    # the fund `extra` names (what Loan.fund_code read until now), when it is a fund …
    op.execute(
        f"UPDATE loans SET fund_code = (SELECT f.code FROM funds f WHERE f.code = {named})"
    )
    # … else the fund of the loan's agreement (the city fund / sub-fund it was filed under)
    op.execute(
        "UPDATE loans SET fund_code = (SELECT a.fund_code FROM agreements a"
        " WHERE a.id = loans.agreement_id) WHERE fund_code IS NULL"
    )


def _loans_fund_code_down() -> None:
    op.drop_index(op.f('ix_loans_fund_code'), table_name='loans')
    if _postgres():
        op.drop_constraint(op.f('fk_loans_fund_code_funds'), 'loans', type_='foreignkey')
    op.execute("ALTER TABLE loans DROP COLUMN fund_code")


# --- loan_day_totals (0012) with or without the fund in the key ---------------------------

def _day_totals_sql(fund: bool) -> tuple[str, list[str], str]:
    """(PostgreSQL functions, SQLite triggers, backfill) of the day totals keyed with the
    loan's fund (`fund`) or without it (as 0012 made them)."""
    key = "program, bank_code, fund_code, product, day" if fund else "program, bank_code, product, day"
    columns = f"{key}, loans, disbursed_fen, disbursed_days_fen, repaid_fen"
    n = 5 if fund else 4
    groups = ", ".join(str(i) for i in range(1, n + 1))
    terms = ("program", "bank_code", "product", "principal_fen", "disbursed_on", "maturity_on")
    terms += ("fund_code",) if fund else ()
    fixed = "loan terms summed in loan_day_totals cannot change (%s on %s refused)"

    def f(prefix: str = "", alias: str = "") -> str:  # the fund's key value, "" for none
        return f"COALESCE({prefix}fund_code, ''){alias}, " if fund else ""

    same_fund = "\n       AND NEW.fund_code IS NOT DISTINCT FROM OLD.fund_code" if fund else ""
    pg = f"""
CREATE OR REPLACE FUNCTION loan_day_totals_add_loans() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO loan_day_totals AS t ({columns})
  SELECT program, bank_code, {f()}COALESCE(product, ''), disbursed_on, count(*),
         sum(principal_fen), sum(principal_fen * (maturity_on - disbursed_on)), 0
  FROM new_loans GROUP BY {groups} ORDER BY {groups}
  ON CONFLICT ({key}) DO UPDATE SET loans = t.loans + EXCLUDED.loans,
    disbursed_fen = t.disbursed_fen + EXCLUDED.disbursed_fen,
    disbursed_days_fen = t.disbursed_days_fen + EXCLUDED.disbursed_days_fen;
  RETURN NULL;
END $$;

CREATE OR REPLACE FUNCTION loan_day_totals_add_repayments() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO loan_day_totals AS t ({columns})
  SELECT l.program, l.bank_code, {f("l.")}COALESCE(l.product, ''), r.paid_on, 0, 0, 0,
         sum(r.principal_fen)
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
       AND NEW.maturity_on = OLD.maturity_on{same_fund} THEN
      RETURN NEW;
    END IF;
  END IF;
  RAISE EXCEPTION '{fixed.replace("%s", "%")}', TG_OP, TG_TABLE_NAME
    USING ERRCODE = 'insufficient_privilege';
END $$;
"""
    sqlite = [
        f"""CREATE TRIGGER loans_day_totals AFTER INSERT ON loans BEGIN
  INSERT INTO loan_day_totals ({columns})
  VALUES (NEW.program, NEW.bank_code, {f("NEW.")}COALESCE(NEW.product, ''), NEW.disbursed_on, 1,
          NEW.principal_fen, NEW.principal_fen
            * CAST(julianday(NEW.maturity_on) - julianday(NEW.disbursed_on) AS INTEGER), 0)
  ON CONFLICT ({key}) DO UPDATE SET loans = loans + 1,
    disbursed_fen = disbursed_fen + excluded.disbursed_fen,
    disbursed_days_fen = disbursed_days_fen + excluded.disbursed_days_fen;
END""",
        f"""CREATE TRIGGER loan_repayments_day_totals AFTER INSERT ON loan_repayments BEGIN
  INSERT INTO loan_day_totals ({columns})
  SELECT program, bank_code, {f()}COALESCE(product, ''), NEW.paid_on, 0, 0, 0, NEW.principal_fen
  FROM loans WHERE id = NEW.loan_id
  ON CONFLICT ({key}) DO UPDATE SET repaid_fen = repaid_fen + excluded.repaid_fen;
  UPDATE loans SET settled_on = (SELECT max(paid_on) FROM loan_repayments
                                 WHERE loan_id = NEW.loan_id)
  WHERE id = NEW.loan_id AND principal_fen <= (SELECT sum(principal_fen)
                                               FROM loan_repayments WHERE loan_id = NEW.loan_id);
END""",
        f"""CREATE TRIGGER loans_terms_fixed BEFORE UPDATE OF {', '.join(terms)} ON loans BEGIN
  SELECT RAISE(ABORT, '{fixed % ("UPDATE", "loans")}');
END""",
    ]
    days = (
        "(maturity_on - disbursed_on)" if _postgres()
        else "CAST(julianday(maturity_on) - julianday(disbursed_on) AS INTEGER)"
    )
    backfill = (
        f"INSERT INTO loan_day_totals ({columns}) SELECT {key}, sum(loans), sum(disbursed),"
        " sum(disbursed_days), sum(repaid) FROM ("
        f" SELECT program, bank_code, {f(alias=' AS fund_code')}COALESCE(product, '') AS product,"
        " disbursed_on AS day,"
        f" 1 AS loans, principal_fen AS disbursed, principal_fen * {days}"
        " AS disbursed_days, 0 AS repaid FROM loans"
        f" UNION ALL SELECT l.program, l.bank_code, {f('l.')}COALESCE(l.product, ''), r.paid_on,"
        " 0, 0, 0, r.principal_fen FROM loan_repayments r JOIN loans l ON l.id = r.loan_id"
        f") AS x GROUP BY {key}"
    )
    return pg, sqlite, backfill


def _day_totals(fund: bool) -> None:
    """Rebuild loan_day_totals with (or without) the fund in its key and point its
    triggers at the new key."""
    pg, sqlite, backfill = _day_totals_sql(fund)
    if not _postgres():
        for name in ("loans_day_totals", "loan_repayments_day_totals", "loans_terms_fixed"):
            op.execute(f"DROP TRIGGER IF EXISTS {name}")
    op.drop_table('loan_day_totals')
    key = ['program', 'bank_code', *(['fund_code'] if fund else []), 'product', 'day']
    op.create_table('loan_day_totals',
    sa.Column('program', sa.String(length=8), nullable=False),
    sa.Column('bank_code', sa.String(length=32), nullable=False),
    *([sa.Column('fund_code', sa.String(length=32), nullable=False)] if fund else []),
    sa.Column('product', sa.String(length=16), nullable=False),
    sa.Column('day', sa.Date(), nullable=False),
    sa.Column('loans', sa.Integer(), nullable=False),
    sa.Column('disbursed_fen', sa.BigInteger(), nullable=False),
    sa.Column('disbursed_days_fen', sa.BigInteger(), nullable=False),
    sa.Column('repaid_fen', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint(*key, name=op.f('pk_loan_day_totals'))
    )
    op.execute(backfill)
    if _postgres():
        op.execute(pg)
    else:
        for statement in sqlite:
            op.execute(statement)


# --- append-only record tables -------------------------------------------------------

def _append_only(table: str, function: str, message: str) -> None:
    if _postgres():
        op.execute(
            f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table} "
            f"FOR EACH ROW EXECUTE FUNCTION {function}()"
        )
    else:
        for verb in ("UPDATE", "DELETE"):
            op.execute(
                f"CREATE TRIGGER {table}_no_{verb.lower()} BEFORE {verb} ON {table} "
                f"BEGIN SELECT RAISE(ABORT, '{message}: {verb} on {table} refused'); END"
            )


def _drop_append_only(table: str) -> None:
    if _postgres():
        op.execute(f"DROP TRIGGER IF EXISTS {table}_append_only ON {table}")
    else:
        for verb in ("update", "delete"):
            op.execute(f"DROP TRIGGER IF EXISTS {table}_no_{verb}")


def _claim_shares_backfill() -> None:
    for kind, column in (("requested", "shares"), ("approved", "approved_shares")):
        if _postgres():
            op.execute(
                "INSERT INTO claim_shares (claim_id, kind, party, fen)"
                f" SELECT c.id, '{kind}', s.key, CAST(s.value AS BIGINT)"
                f" FROM claims c CROSS JOIN LATERAL json_each_text(c.{column}) AS s"
                f" WHERE json_typeof(c.{column}) = 'object' ORDER BY c.id"
            )
        else:
            op.execute(
                "INSERT INTO claim_shares (claim_id, kind, party, fen)"
                f" SELECT c.id, '{kind}', s.key, CAST(s.value AS INTEGER)"
                f" FROM claims c, json_each(c.{column}) AS s"
                f" WHERE json_type(c.{column}) = 'object' ORDER BY c.id"
            )


def upgrade() -> None:
    programs = op.create_table('programs',
    sa.Column('code', sa.String(length=8), nullable=False),
    sa.Column('name_zh', sa.String(length=100), nullable=False),
    sa.Column('name_en', sa.String(length=100), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('code', name=op.f('pk_programs'))
    )
    now = datetime.now(UTC)
    op.bulk_insert(programs, [
        {'code': code, 'name_zh': zh, 'name_en': en, 'created_at': now}
        for code, zh, en in PROGRAMMES
    ])
    _programme_keys_up()
    _loans_fund_code_up()
    _day_totals(fund=True)

    op.create_table('claim_shares',
    sa.Column('id', ID, autoincrement=True, nullable=False),
    sa.Column('claim_id', ID, nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('party', sa.String(length=16), nullable=False),
    sa.Column('fen', sa.BigInteger(), nullable=False),
    sa.CheckConstraint("kind IN ('requested', 'approved')", name=op.f('ck_claim_shares_kind')),
    sa.ForeignKeyConstraint(['claim_id'], ['claims.id'], name=op.f('fk_claim_shares_claim_id_claims')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_claim_shares')),
    sa.UniqueConstraint('claim_id', 'kind', 'party', name=op.f('uq_claim_shares_claim_id_kind_party'))
    )
    _claim_shares_backfill()
    # the guard of 0007 (claim_records_forbid_change on PostgreSQL)
    _append_only('claim_shares', 'claim_records_forbid_change', 'claim records are append-only (SKD-C1)')

    op.create_table('loan_transitions',
    sa.Column('id', ID, autoincrement=True, nullable=False),
    sa.Column('loan_id', ID, nullable=False),
    sa.Column('action', sa.String(length=32), nullable=False),
    sa.Column('from_status', sa.String(length=16), nullable=False),
    sa.Column('to_status', sa.String(length=16), nullable=False),
    sa.Column('actor_id', ID, nullable=True),
    sa.Column('reason', sa.Text(), nullable=False),
    sa.Column('business_date', sa.Date(), nullable=False),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['actor_id'], ['users.id'], name=op.f('fk_loan_transitions_actor_id_users')),
    sa.ForeignKeyConstraint(['loan_id'], ['loans.id'], name=op.f('fk_loan_transitions_loan_id_loans')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_loan_transitions'))
    )
    op.create_index(op.f('ix_loan_transitions_actor_id'), 'loan_transitions', ['actor_id'], unique=False)
    op.create_index(op.f('ix_loan_transitions_loan_id'), 'loan_transitions', ['loan_id'], unique=False)
    if _postgres():
        op.execute(RECORDS_FORBID)
    _append_only('loan_transitions', 'loan_records_forbid_change', 'loan records are append-only')


def downgrade() -> None:
    _drop_append_only('loan_transitions')
    if _postgres():
        op.execute("DROP FUNCTION IF EXISTS loan_records_forbid_change()")
    op.drop_index(op.f('ix_loan_transitions_loan_id'), table_name='loan_transitions')
    op.drop_index(op.f('ix_loan_transitions_actor_id'), table_name='loan_transitions')
    op.drop_table('loan_transitions')

    # claims.shares / approved_shares still hold the splits
    _drop_append_only('claim_shares')
    op.drop_table('claim_shares')

    _day_totals(fund=False)
    _loans_fund_code_down()  # loans.extra still names the fund
    _programme_keys_down()
    op.drop_table('programs')
