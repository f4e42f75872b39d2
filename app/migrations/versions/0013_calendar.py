"""working-day calendar as data (M-3): publications and their days, loan events,
provisional flags on stored deadlines; a recovery's due date may be recomputed

Revision ID: 0013_calendar
Revises: 0012_day_totals
Create Date: 2026-12-02 00:20:22.551220
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0013_calendar'
down_revision: str | None = '0012_day_totals'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


# Publications, their days and loan events are records: never rewritten (M-3's history).
APPEND_ONLY = ("calendar_publications", "calendar_days", "loan_events")
# a recovery's XB-R1 due date is recomputed when its calendar year is published; every
# other column of a recovery stays as recorded (SKD-C1)
RECOVERY_FIXED = (
    "id", "claim_id", "recovered_on", "amount_fen", "costs_fen", "returned_fen",
    "returned_shares", "recorded_by_id", "ledger_entry_ids", "created_at",
)
PG_DUE_ONLY = """
CREATE FUNCTION claim_recovery_due_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF to_jsonb(NEW) - 'due_on' - 'due_on_provisional'
     = to_jsonb(OLD) - 'due_on' - 'due_on_provisional' THEN
    RETURN NEW;
  END IF;
  RAISE EXCEPTION 'claim records are append-only (SKD-C1): UPDATE on % refused',
    TG_TABLE_NAME USING ERRCODE = 'insufficient_privilege';
END $$;
"""


def _postgres() -> bool:
    return op.get_bind().dialect.name == "postgresql"


def _append_only(tables: tuple[str, ...]) -> None:
    """The guard of 0007 (claim_records_forbid_change on PostgreSQL)."""
    for table in tables:
        if _postgres():
            op.execute(
                f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table} "
                "FOR EACH ROW EXECUTE FUNCTION claim_records_forbid_change()"
            )
        else:
            for verb in ("UPDATE", "DELETE"):
                op.execute(
                    f"CREATE TRIGGER {table}_no_{verb.lower()} BEFORE {verb} ON {table} "
                    f"BEGIN SELECT RAISE(ABORT, 'records are append-only: "
                    f"{verb} on {table} refused'); END"
                )


def _drop_append_only(tables: tuple[str, ...]) -> None:
    for table in tables:
        if _postgres():
            op.execute(f"DROP TRIGGER IF EXISTS {table}_append_only ON {table}")
        else:
            for verb in ("update", "delete"):
                op.execute(f"DROP TRIGGER IF EXISTS {table}_no_{verb}")


def _recoveries_due_may_change() -> None:
    if _postgres():
        op.execute("DROP TRIGGER IF EXISTS claim_recoveries_append_only ON claim_recoveries")
        op.execute(PG_DUE_ONLY)
        op.execute(
            "CREATE TRIGGER claim_recoveries_no_delete BEFORE DELETE ON claim_recoveries "
            "FOR EACH ROW EXECUTE FUNCTION claim_records_forbid_change()"
        )
        op.execute(
            "CREATE TRIGGER claim_recoveries_due_only BEFORE UPDATE ON claim_recoveries "
            "FOR EACH ROW EXECUTE FUNCTION claim_recovery_due_only()"
        )
    else:
        op.execute("DROP TRIGGER IF EXISTS claim_recoveries_no_update")
        op.execute(
            f"CREATE TRIGGER claim_recoveries_no_update BEFORE UPDATE OF "
            f"{', '.join(RECOVERY_FIXED)} ON claim_recoveries BEGIN SELECT RAISE(ABORT, "
            "'claim records are append-only (SKD-C1): UPDATE on claim_recoveries refused'); END"
        )


def _drop_recovery_guard() -> None:
    if _postgres():
        op.execute("DROP TRIGGER IF EXISTS claim_recoveries_due_only ON claim_recoveries")
        op.execute("DROP TRIGGER IF EXISTS claim_recoveries_no_delete ON claim_recoveries")
    else:
        for verb in ("update", "delete"):
            op.execute(f"DROP TRIGGER IF EXISTS claim_recoveries_no_{verb}")


def upgrade() -> None:
    op.create_table('calendar_publications',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('year', sa.Integer(), nullable=False),
    sa.Column('source', sa.String(length=16), nullable=False),
    sa.Column('notice_no', sa.String(length=100), nullable=True),
    sa.Column('notice_title', sa.Text(), nullable=True),
    sa.Column('library_version', sa.String(length=32), nullable=True),
    sa.Column('token', sa.String(length=32), nullable=False),
    sa.Column('published_by_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('published_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint("source <> 'notice' OR notice_no IS NOT NULL", name=op.f('ck_calendar_publications_notice_no')),
    sa.CheckConstraint("source IN ('library', 'notice')", name=op.f('ck_calendar_publications_source')),
    sa.CheckConstraint('year BETWEEN 1949 AND 2200', name=op.f('ck_calendar_publications_year')),
    sa.ForeignKeyConstraint(['published_by_id'], ['users.id'], name=op.f('fk_calendar_publications_published_by_id_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_calendar_publications')),
    sa.UniqueConstraint('token', name=op.f('uq_calendar_publications_token'))
    )
    with op.batch_alter_table('calendar_publications', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_calendar_publications_published_by_id'), ['published_by_id'], unique=False)
        batch_op.create_index('ix_calendar_publications_year_id', ['year', 'id'], unique=False)

    op.create_table('calendar_days',
    sa.Column('publication_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('day', sa.Date(), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.CheckConstraint("kind IN ('holiday', 'workday')", name=op.f('ck_calendar_days_kind')),
    sa.ForeignKeyConstraint(['publication_id'], ['calendar_publications.id'], name=op.f('fk_calendar_days_publication_id_calendar_publications')),
    sa.PrimaryKeyConstraint('publication_id', 'day', name=op.f('pk_calendar_days'))
    )
    op.create_table('loan_events',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('loan_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('action', sa.String(length=32), nullable=False),
    sa.Column('comment', sa.Text(), nullable=False),
    sa.Column('details', sa.JSON(), nullable=False),
    sa.Column('actor_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('business_date', sa.Date(), nullable=False),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['actor_id'], ['users.id'], name=op.f('fk_loan_events_actor_id_users')),
    sa.ForeignKeyConstraint(['loan_id'], ['loans.id'], name=op.f('fk_loan_events_loan_id_loans')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_loan_events'))
    )
    with op.batch_alter_table('loan_events', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_loan_events_actor_id'), ['actor_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_loan_events_loan_id'), ['loan_id'], unique=False)

    # plain ALTER TABLE on both databases: a batch rebuild would drop SQLite's triggers
    op.add_column('claim_recoveries', sa.Column('due_on_provisional', sa.Boolean(), server_default='0', nullable=False))
    op.add_column('claims', sa.Column('provisional_deadlines', sa.JSON(), server_default='[]', nullable=False))
    op.add_column('loans', sa.Column('filing_deadline_provisional', sa.Boolean(), server_default='0', nullable=False))
    _recoveries_due_may_change()
    _seed_library_years()
    _append_only(APPEND_ONLY)


def _seed_library_years() -> None:
    """The years the installed chinesecalendar covers, so that a deployment upgraded with
    `ledger migrate` alone keeps the calendar it had (seed-reference adds later years)."""
    import uuid
    from datetime import UTC, datetime

    from app.calendar.library import library_version, library_years

    pubs = sa.table(
        'calendar_publications',
        sa.column('id', sa.Integer), sa.column('year', sa.Integer), sa.column('source', sa.String),
        sa.column('library_version', sa.String), sa.column('token', sa.String),
        sa.column('published_at', sa.DateTime(timezone=True)),
    )
    days = sa.table(
        'calendar_days',
        sa.column('publication_id', sa.Integer), sa.column('day', sa.Date),
        sa.column('kind', sa.String), sa.column('name', sa.String),
    )
    now, version = datetime.now(UTC), library_version()
    for number, (year, cal) in enumerate(sorted(library_years().items()), start=1):
        op.bulk_insert(pubs, [{
            'id': number, 'year': year, 'source': 'library', 'library_version': version,
            'token': uuid.uuid4().hex, 'published_at': now,
        }])
        op.bulk_insert(days, [
            {'publication_id': number, 'day': d, 'kind': kind, 'name': n}
            for kind, rows in (('holiday', cal.holidays), ('workday', cal.workdays))
            for d, n in sorted(rows.items())
        ])
    if op.get_bind().dialect.name == 'postgresql':
        op.execute(
            "SELECT setval(pg_get_serial_sequence('calendar_publications', 'id'), "
            "(SELECT max(id) FROM calendar_publications))"
        )


def downgrade() -> None:
    _drop_append_only(APPEND_ONLY)
    _drop_recovery_guard()
    # plain ALTER TABLE (SQLite ≥ 3.35 drops columns in place, keeping its triggers)
    for table, column in (
        ('loans', 'filing_deadline_provisional'),
        ('claims', 'provisional_deadlines'),
        ('claim_recoveries', 'due_on_provisional'),
    ):
        op.execute(f'ALTER TABLE {table} DROP COLUMN {column}')
    _append_only(('claim_recoveries',))

    with op.batch_alter_table('loan_events', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_loan_events_loan_id'))
        batch_op.drop_index(batch_op.f('ix_loan_events_actor_id'))

    op.drop_table('loan_events')
    op.drop_table('calendar_days')
    with op.batch_alter_table('calendar_publications', schema=None) as batch_op:
        batch_op.drop_index('ix_calendar_publications_year_id')
        batch_op.drop_index(batch_op.f('ix_calendar_publications_published_by_id'))

    op.drop_table('calendar_publications')
    if op.get_bind().dialect.name == 'postgresql':
        op.execute('DROP FUNCTION IF EXISTS claim_recovery_due_only()')
