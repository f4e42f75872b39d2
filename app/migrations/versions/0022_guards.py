"""guards: the chart of accounts and a claim's approved amount

Revision ID: 0022_guards
Revises: 0021_sessions
Create Date: 2026-12-03 18:50:00

1. `ledger_accounts` is append-only like the entries (L-2): an account's code, kind,
   counterparty and book are what every leg posted to it means, so an `UPDATE … SET
   counterparty` would re-attribute a bank's postings in every statement and export
   while the hash chain still verified. PostgreSQL also refuses TRUNCATE.
2. `claims.approved_fen`, which SKD-Q1 and XB-Q1 add up against the caps, cannot change
   once a claim is approved, and `claims.returned_fen` (recoveries and refunds returned
   to the funds) never decreases.
"""
from collections.abc import Sequence

from alembic import op

revision: str = '0022_guards'
down_revision: str | None = '0021_sessions'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

PG_CLAIMS = """
CREATE FUNCTION claims_money_guard() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF OLD.approved_fen IS NOT NULL AND NEW.approved_fen IS DISTINCT FROM OLD.approved_fen THEN
    RAISE EXCEPTION 'claims.approved_fen cannot change once the claim is approved (claim %)',
      OLD.id USING ERRCODE = 'insufficient_privilege';
  END IF;
  IF NEW.returned_fen < OLD.returned_fen THEN
    RAISE EXCEPTION 'claims.returned_fen never decreases (claim %)', OLD.id
      USING ERRCODE = 'insufficient_privilege';
  END IF;
  RETURN NEW;
END $$;
"""


def _postgres() -> bool:
    return op.get_bind().dialect.name == "postgresql"


def upgrade() -> None:
    if _postgres():
        op.execute(
            "CREATE TRIGGER ledger_accounts_append_only BEFORE UPDATE OR DELETE ON "
            "ledger_accounts FOR EACH ROW EXECUTE FUNCTION ledger_forbid_change()"
        )
        op.execute(
            "CREATE TRIGGER ledger_accounts_no_truncate BEFORE TRUNCATE ON ledger_accounts "
            "FOR EACH STATEMENT EXECUTE FUNCTION ledger_forbid_change()"
        )
        op.execute(PG_CLAIMS)
        op.execute(
            "CREATE TRIGGER claims_money_guard BEFORE UPDATE ON claims "
            "FOR EACH ROW EXECUTE FUNCTION claims_money_guard()"
        )
    else:
        for verb in ("UPDATE", "DELETE"):
            op.execute(
                f"CREATE TRIGGER ledger_accounts_no_{verb.lower()} BEFORE {verb} ON "
                f"ledger_accounts BEGIN SELECT RAISE(ABORT, 'ledger is append-only (L-2): "
                f"{verb} on ledger_accounts refused'); END"
            )
        op.execute(
            "CREATE TRIGGER claims_approved_fixed BEFORE UPDATE OF approved_fen ON claims "
            "WHEN OLD.approved_fen IS NOT NULL AND NEW.approved_fen IS NOT OLD.approved_fen "
            "BEGIN SELECT RAISE(ABORT, 'claims.approved_fen cannot change once the claim is "
            "approved'); END"
        )
        op.execute(
            "CREATE TRIGGER claims_returned_grows BEFORE UPDATE OF returned_fen ON claims "
            "WHEN NEW.returned_fen < OLD.returned_fen "
            "BEGIN SELECT RAISE(ABORT, 'claims.returned_fen never decreases'); END"
        )


def downgrade() -> None:
    if _postgres():
        op.execute("DROP TRIGGER IF EXISTS claims_money_guard ON claims")
        op.execute("DROP FUNCTION IF EXISTS claims_money_guard()")
        op.execute("DROP TRIGGER IF EXISTS ledger_accounts_no_truncate ON ledger_accounts")
        op.execute("DROP TRIGGER IF EXISTS ledger_accounts_append_only ON ledger_accounts")
    else:
        op.execute("DROP TRIGGER IF EXISTS claims_returned_grows")
        op.execute("DROP TRIGGER IF EXISTS claims_approved_fixed")
        for verb in ("update", "delete"):
            op.execute(f"DROP TRIGGER IF EXISTS ledger_accounts_no_{verb}")
