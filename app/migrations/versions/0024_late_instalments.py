"""loan_late_instalments: the instalments that fell into arrears, with the dates they
were paid in full (SPEC M-6), kept by the database

Revision ID: 0024_late_instalments
Revises: 0023_audit
Create Date: 2026-12-03 21:10:00

An instalment's principal is paid in full on the first payment date by which the
principal repaid (every repayment dated by then, whenever recorded) covers its principal
and that of every instalment due before it — principal settles the earliest instalments
first, interest likewise (`app.loans.arrears.compute`). The instalment is in arrears on a
date D after its due date exactly while that date is after D (or there is none yet).

`loan_late_instalments` holds one row per instalment whose principal or interest was
not paid in full by its due date, or is not paid in full yet (every other instalment
was paid on time), with both dates (NULL: not paid in full yet; the due date itself
when nothing of that kind is due). A loan is then at least N days past due on D on its own books when one of its rows
is due on or before D − N and not paid in full by D: one scan of a table holding the few
instalments that were ever late, instead of summing every loan's schedule and payments
(the quarterly report's and the quarter-end evaluations' NPL figure, #14).

A loan without instalment rows (written outside the service) is its bullet instalment
at maturity, seq 0, as `app.loans.arrears` reads it.

The rows are the database's own, like `loan_day_totals`: after every insert into
`loans`, `loan_instalments`, `loan_repayments` or `loan_interest_payments` (a filing, a
batch, COPY, a renewal, a seed), a trigger recomputes the rows of the loans written, in
the same transaction. The records are append-only and the loan's principal and maturity
fixed (0012), so nothing else changes them. Backfilled here in one statement.

On PostgreSQL the index of the repayments by loan and date also carries their principal
and recording time, so the principal a late loan still owes on a date (as of a cut-off)
is summed from the index alone.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0024_late_instalments"
down_revision: str | None = "0023_audit"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
SOURCES = ("loan_instalments", "loan_repayments", "loan_interest_payments")


def late_rows(loans: str, loan_ids: str) -> str:
    """SELECT of the rows of the loans matched by `loans` (a condition on `loan_id`; the
    same on `loans.id` is `loan_ids`). A loan without instalment rows is its bullet
    instalment at maturity (seq 0), as `app.loans.arrears` reads it. No WITH clause:
    SQLite allows none inside a trigger."""
    plan = (
        "SELECT loan_id, seq, due_on, principal_fen, interest_fen FROM loan_instalments"
        f" WHERE {loans}"
        " UNION ALL SELECT l.id, 0, l.maturity_on, l.principal_fen, 0 FROM loans l"
        f" WHERE {loan_ids} AND NOT EXISTS"
        " (SELECT 1 FROM loan_instalments k WHERE k.loan_id = l.id)"
    )
    need = (
        "SELECT loan_id, seq, due_on,"
        " sum(principal_fen) OVER w AS p_need, sum(interest_fen) OVER w AS i_need"
        f" FROM ({plan}) s"
        " WINDOW w AS (PARTITION BY loan_id ORDER BY due_on, seq ROWS UNBOUNDED PRECEDING)"
    )

    def paid_in_full(table: str, column: str, needed: str) -> str:
        # per instalment, the first payment date by which the payments cover `needed`
        running = (
            f"SELECT loan_id, paid_on, sum(sum({column})) OVER"
            " (PARTITION BY loan_id ORDER BY paid_on) AS paid"
            f" FROM {table} WHERE {loans} GROUP BY loan_id, paid_on"
        )
        return (
            "SELECT n.loan_id, n.seq, min(r.paid_on) AS paid_on"
            f" FROM ({need}) n JOIN ({running}) r"
            f" ON r.loan_id = n.loan_id AND r.paid >= n.{needed}"
            " GROUP BY n.loan_id, n.seq"
        )

    return (
        "SELECT loan_id, seq, due_on, p_on, i_on FROM ("
        " SELECT n.loan_id, n.seq, n.due_on,"
        " CASE WHEN n.p_need = 0 THEN n.due_on ELSE p.paid_on END AS p_on,"
        " CASE WHEN n.i_need = 0 THEN n.due_on ELSE i.paid_on END AS i_on"
        f" FROM ({need}) n"
        f" LEFT JOIN ({paid_in_full('loan_repayments', 'principal_fen', 'p_need')}) p"
        " ON p.loan_id = n.loan_id AND p.seq = n.seq"
        f" LEFT JOIN ({paid_in_full('loan_interest_payments', 'interest_fen', 'i_need')}) i"
        " ON i.loan_id = n.loan_id AND i.seq = n.seq"
        ") x WHERE p_on IS NULL OR p_on > due_on OR i_on IS NULL OR i_on > due_on"
    )


COLUMNS = "loan_id, seq, due_on, principal_paid_on, interest_paid_on"


PG_REFRESH = f"""
CREATE FUNCTION loan_late_instalments_of(ids bigint[]) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
  DELETE FROM loan_late_instalments WHERE loan_id = ANY (ids);
  INSERT INTO loan_late_instalments ({COLUMNS})
  {late_rows("loan_id = ANY (ids)", "l.id = ANY (ids)")};
END $$;
"""


def _pg_function(name: str, key: str) -> str:
    """The refresh of the loans written by the statement (`key`: their id in new_rows),
    through `loan_late_instalments_of`, whose statements are planned once per session
    (a statement reading the transition table would be planned on every write)."""
    return f"""
CREATE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  PERFORM loan_late_instalments_of(ARRAY(SELECT DISTINCT {key} FROM new_rows));
  RETURN NULL;
END $$;
"""


def _postgres() -> bool:
    return op.get_bind().dialect.name == "postgresql"


def upgrade() -> None:
    op.create_table(
        "loan_late_instalments",
        sa.Column("loan_id", ID, nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("due_on", sa.Date(), nullable=False),
        sa.Column("principal_paid_on", sa.Date(), nullable=True),
        sa.Column("interest_paid_on", sa.Date(), nullable=True),
        sa.ForeignKeyConstraint(
            ["loan_id"], ["loans.id"], name=op.f("fk_loan_late_instalments_loan_id_loans")
        ),
        sa.PrimaryKeyConstraint("loan_id", "seq", name=op.f("pk_loan_late_instalments")),
    )
    op.create_index(
        op.f("ix_loan_late_instalments_due"),
        "loan_late_instalments",
        ["due_on", "loan_id", "principal_paid_on", "interest_paid_on"],
        unique=False,
    )
    op.execute(f"INSERT INTO loan_late_instalments ({COLUMNS}) {late_rows('1 = 1', '1 = 1')}")
    if _postgres():
        op.execute(PG_REFRESH)
        op.execute(_pg_function("loan_late_instalments_refresh", "loan_id"))
        op.execute(_pg_function("loan_late_instalments_refresh_loans", "id"))
        for table in (*SOURCES, "loans"):
            function = "refresh_loans" if table == "loans" else "refresh"
            op.execute(
                f"CREATE TRIGGER {table}_late_instalments AFTER INSERT ON {table}"
                " REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT"
                f" EXECUTE FUNCTION loan_late_instalments_{function}()"
            )
        op.execute("ANALYZE loan_late_instalments")
        # the repayments by loan and date carry what their sums read (index-only lookups)
        op.execute("DROP INDEX ix_loan_repayments_loan_paid")
        op.execute(
            "CREATE INDEX ix_loan_repayments_loan_paid ON loan_repayments (loan_id, paid_on)"
            " INCLUDE (principal_fen, created_at)"
        )
    else:
        for table in (*SOURCES, "loans"):
            key = "NEW.id" if table == "loans" else "NEW.loan_id"
            op.execute(
                f"CREATE TRIGGER {table}_late_instalments AFTER INSERT ON {table} BEGIN"
                f" DELETE FROM loan_late_instalments WHERE loan_id = {key};"
                f" INSERT INTO loan_late_instalments ({COLUMNS})"
                f" {late_rows(f'loan_id = {key}', f'l.id = {key}')};"
                " END"
            )


def downgrade() -> None:
    for table in (*SOURCES, "loans"):
        if _postgres():
            op.execute(f"DROP TRIGGER IF EXISTS {table}_late_instalments ON {table}")
        else:
            op.execute(f"DROP TRIGGER IF EXISTS {table}_late_instalments")
    if _postgres():
        op.execute("DROP INDEX ix_loan_repayments_loan_paid")
        op.execute(
            "CREATE INDEX ix_loan_repayments_loan_paid ON loan_repayments (loan_id, paid_on)"
        )
        op.execute("DROP FUNCTION IF EXISTS loan_late_instalments_refresh()")
        op.execute("DROP FUNCTION IF EXISTS loan_late_instalments_refresh_loans()")
        op.execute("DROP FUNCTION IF EXISTS loan_late_instalments_of(bigint[])")
    op.drop_index(op.f("ix_loan_late_instalments_due"), table_name="loan_late_instalments")
    op.drop_table("loan_late_instalments")
