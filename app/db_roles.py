"""The service's PostgreSQL role owns nothing (L-2): the schema's owner migrates, and
`ledger migrate` then grants the service's role what the service does and no more.

A table's owner can switch its triggers off (`ALTER TABLE … DISABLE TRIGGER`), drop them
or truncate the table, so a service that owned the ledger's tables could defeat every
append-only guard. The service's role therefore gets, in the schema it uses:

- USAGE on the schema, never CREATE;
- SELECT and INSERT on every table; UPDATE and DELETE only where no guard refuses them:
  a row trigger that refuses a verb outright (the `*_forbid_change` functions of the
  migrations: ledger entries, legs and accounts, claim and loan records, …, and
  `ALSO_REFUSED`) withholds that verb's privilege too, so the privileges say what the
  triggers enforce;
- never TRUNCATE, REFERENCES or TRIGGER; only SELECT on `alembic_version`;
- USAGE and SELECT on the sequences (the ids of new rows).

The grants are computed from the catalogue and applied afresh at every `ledger migrate`,
after the upgrade, in one transaction: tables a migration adds get theirs at once, and a
guard a migration adds withdraws the matching privilege."""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import Connection, text

# The trigger functions that refuse a change outright (RAISE, whatever the row).
FORBID_SUFFIX = "_forbid_change"
# Verbs a guard with conditions refuses whatever the row: `loan_terms_fixed` (0012, 0017)
# lets a loan's status change but never deletes a loan, and fixes every repayment.
ALSO_REFUSED = {"loans": {"DELETE"}, "loan_repayments": {"UPDATE", "DELETE"}}
# pg_trigger.tgtype bits
_ROW, _BEFORE, _DELETE, _UPDATE = 1, 2, 8, 16
VERSION_TABLE = "alembic_version"


class RoleSetupError(RuntimeError):
    """The service's role cannot be made least-privileged as configured."""


@dataclass
class Grants:
    """What `grant_app_role` gave: table -> privileges, and the sequences."""

    schema: str
    tables: dict[str, tuple[str, ...]] = field(default_factory=dict)
    sequences: list[str] = field(default_factory=list)

    def summary(self) -> str:
        append_only = sorted(t for t, p in self.tables.items() if p == ("SELECT", "INSERT"))
        return (
            f"{len(self.tables)} tables in schema {self.schema} "
            f"({len(append_only)} append-only: SELECT, INSERT), "
            f"{len(self.sequences)} sequences"
        )


def _forbidden_verbs(conn: Connection, schema: str) -> dict[str, set[str]]:
    """Table -> the verbs a row trigger refuses outright."""
    rows = conn.execute(
        text(
            "SELECT c.relname, t.tgtype FROM pg_trigger t "
            "JOIN pg_class c ON c.oid = t.tgrelid "
            "JOIN pg_proc p ON p.oid = t.tgfoid "
            "WHERE c.relnamespace = CAST(:schema AS regnamespace) AND NOT t.tgisinternal "
            "AND t.tgenabled <> 'D' AND p.proname LIKE :suffix"
        ),
        {"schema": schema, "suffix": "%" + FORBID_SUFFIX.replace("_", r"\_")},
    )
    found: dict[str, set[str]] = {}
    for table, tgtype in rows:
        if tgtype & _ROW and tgtype & _BEFORE:
            verbs = found.setdefault(table, set())
            if tgtype & _UPDATE:
                verbs.add("UPDATE")
            if tgtype & _DELETE:
                verbs.add("DELETE")
    return found


def _check_role(conn: Connection, role: str, schema: str) -> None:
    me = conn.scalar(text("SELECT current_user"))
    row = conn.execute(
        text("SELECT rolsuper, rolbypassrls FROM pg_roles WHERE rolname = :r"), {"r": role}
    ).first()
    if row is None:
        raise RoleSetupError(
            f"DB_APP_ROLE {role} does not exist; create it first (CREATE ROLE {role} LOGIN "
            "PASSWORD '…', see .env.example)"
        )
    if row.rolsuper or row.rolbypassrls:
        raise RoleSetupError(f"DB_APP_ROLE {role} is a superuser or bypasses row security")
    if role != me and conn.scalar(
        text("SELECT pg_has_role(:r, current_user, 'MEMBER')"), {"r": role}
    ):
        raise RoleSetupError(
            f"DB_APP_ROLE {role} is a member of {me}, the owner, and so has its rights"
        )
    owned = conn.scalars(
        text(
            "SELECT c.relname FROM pg_class c WHERE c.relnamespace = "
            "CAST(:schema AS regnamespace) AND pg_has_role(:r, c.relowner, 'MEMBER') "
            "ORDER BY 1 LIMIT 5"
        ),
        {"schema": schema, "r": role},
    ).all()
    if owned and role == me:
        raise RoleSetupError(
            f"DB_APP_ROLE {role} is the role that migrates and owns the schema; the "
            "service needs a role of its own"
        )
    if owned:
        raise RoleSetupError(
            f"DB_APP_ROLE {role} owns {', '.join(owned)}…; hand its objects to the owner "
            f"first: REASSIGN OWNED BY {role} TO {me}"
        )


def grant_app_role(conn: Connection, role: str) -> Grants | None:
    """Give `role` exactly the service's privileges on the current schema's tables and
    sequences (revoking whatever it had there first). Runs as the schema's owner, inside
    the caller's transaction. Run as `role` itself (a service whose migrate found the
    schema current, the owner having migrated beforehand), it checks that the role owns
    nothing and grants nothing: None."""
    schema = str(conn.scalar(text("SELECT current_schema()")))
    _check_role(conn, role, schema)
    if role == conn.scalar(text("SELECT current_user")):
        return None
    quote = conn.dialect.identifier_preparer.quote
    who, where = quote(role), quote(schema)
    conn.execute(text(f"REVOKE ALL ON ALL TABLES IN SCHEMA {where} FROM {who}"))
    conn.execute(text(f"REVOKE ALL ON ALL SEQUENCES IN SCHEMA {where} FROM {who}"))
    conn.execute(text(f"REVOKE ALL ON SCHEMA {where} FROM {who}"))
    conn.execute(text(f"GRANT USAGE ON SCHEMA {where} TO {who}"))
    forbidden = _forbidden_verbs(conn, schema)
    tables = conn.scalars(
        text(
            "SELECT relname FROM pg_class WHERE relnamespace = CAST(:schema AS regnamespace) "
            "AND relkind IN ('r', 'p') ORDER BY 1"
        ),
        {"schema": schema},
    ).all()
    grants = Grants(schema)
    for table in tables:
        if table == VERSION_TABLE:
            privileges: tuple[str, ...] = ("SELECT",)
        else:
            refused = forbidden.get(table, set()) | ALSO_REFUSED.get(table, set())
            kept = [v for v in ("UPDATE", "DELETE") if v not in refused]
            privileges = ("SELECT", "INSERT", *kept)
        conn.execute(text(f"GRANT {', '.join(privileges)} ON {where}.{quote(table)} TO {who}"))
        grants.tables[table] = privileges
    grants.sequences = list(
        conn.scalars(
            text(
                "SELECT relname FROM pg_class WHERE relnamespace = "
                "CAST(:schema AS regnamespace) AND relkind = 'S' ORDER BY 1"
            ),
            {"schema": schema},
        )
    )
    if grants.sequences:
        conn.execute(text(f"GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA {where} TO {who}"))
    return grants
