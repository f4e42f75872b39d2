"""Command line: `ledger migrate | seed-reference | seed-demo | create-admin | openapi |
verify | export-beancount | import-enterprises | calendar-publish`."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from app.config import get_settings


def _alembic_config():  # type: ignore[no-untyped-def]
    from alembic.config import Config

    # The migrations ship inside the package (app/migrations), so an installed wheel
    # finds them wherever site-packages is; no alembic.ini is needed at run time.
    cfg = Config()
    cfg.set_main_option("script_location", str(Path(__file__).resolve().parent / "migrations"))
    return cfg


def migrate(url: str | None = None, revision: str = "head", *, app_role: str | None = None) -> None:
    """Upgrade under the start-up lock, so replicas starting together migrate in turn;
    then, on PostgreSQL with `app_role`, grant that role the service's privileges (and no
    more: app/db_roles.py). `url` defaults to MIGRATION_DATABASE_URL, else DATABASE_URL."""
    from alembic import command

    from app.bootstrap import startup_lock

    url = url or get_settings().migration_url
    cfg = _alembic_config()
    cfg.attributes["database_url"] = url
    with startup_lock(url):
        command.upgrade(cfg, revision)
        if app_role:
            grant_privileges(url, app_role)


def grant_privileges(url: str, role: str) -> None:
    """Grant `role` the service's privileges on the database at `url` (its owner's URL)."""
    from sqlalchemy.engine import make_url

    from app.db import make_engine, normalize_url
    from app.db_roles import RoleSetupError, grant_app_role

    if make_url(normalize_url(url)).get_backend_name() != "postgresql":
        print(f"DB_APP_ROLE {role} ignored: SQLite has no roles")
        return
    engine = make_engine(url, pool_size=1)
    try:
        with engine.begin() as conn:
            grants = grant_app_role(conn, role)
    except RoleSetupError as exc:
        raise SystemExit(f"refused: {exc}") from exc
    finally:
        engine.dispose()
    if grants is None:
        print(f"migrated as {role} itself: nothing granted (the owner's `ledger migrate` does)")
        return
    print(f"privileges of {role}: {grants.summary()}")


def _session():  # type: ignore[no-untyped-def]
    from app.audit import capture as audit
    from app.calendar.service import MODE_KEY
    from app.db import make_engine, make_sessionmaker

    settings = get_settings()
    session = make_sessionmaker(make_engine(settings.database_url))()
    session.info[MODE_KEY] = settings.calendar_unpublished
    audit.acting_as(session, "cli")  # the audit trail names the command line as the actor
    return session


def seed_reference_cmd() -> None:
    from app.bootstrap import startup_lock
    from app.seed.loader import seed_reference

    # Under the start-up lock: two replicas inserting the same missing rows would collide.
    with startup_lock(get_settings().database_url), _session() as session, session.begin():
        counts = seed_reference(session)
    print("reference data:", ", ".join(f"{k} +{v}" for k, v in counts.items()))


def seed_demo_cmd() -> None:
    from app.seed.loader import DEMO_PASSWORD, seed_demo

    settings = get_settings()
    if settings.is_production:
        sys.exit("refused: demo data is never loaded when APP_ENV=production")
    with _session() as session, session.begin():
        users = seed_demo(session)
    print(f"\nDemo users (password for all: {DEMO_PASSWORD})")
    print(f"  {'username':<15} {'role':<18} scope")
    for username, role, scope in users:
        print(f"  {username:<15} {role:<18} {scope}")
    # Where `make run` serves (it passes HOST and PORT to uvicorn and to this step); a
    # wildcard address listens everywhere, this machine included.
    import os

    host = os.environ.get("HOST") or "127.0.0.1"
    port = os.environ.get("PORT") or "8000"
    if host in ("0.0.0.0", "::"):  # noqa: S104 - not a bind: the URL to open on this machine
        host = "127.0.0.1"
    elif ":" in host and not host.startswith("["):
        host = f"[{host}]"  # an IPv6 address in a URL
    print(f"\nSwagger UI: http://{host}:{port}/docs  → Authorize → log in as one of them.\n")


def create_admin_cmd(username: str, password: str) -> None:
    from app.auth.service import ensure_admin

    with _session() as session, session.begin():
        created = ensure_admin(session, username=username, password=password)
    print("created" if created else "already exists")


def backup_cmd(out: str) -> None:
    """A consistent copy of the database while the service runs: SQLite's online backup
    into `out`, or `pg_dump --format=custom` of PostgreSQL into `out`."""
    import shutil
    import sqlite3
    import subprocess

    from sqlalchemy.engine import make_url

    from app.db import normalize_url

    url = make_url(normalize_url(get_settings().database_url))
    target = Path(out)
    if target.exists():
        raise SystemExit(f"{out} exists; choose a new file")
    if url.get_backend_name() == "sqlite":
        if not url.database or url.database == ":memory:":
            raise SystemExit("an in-memory database cannot be backed up")
        with sqlite3.connect(url.database) as source, sqlite3.connect(out) as copy:
            source.backup(copy)
        print(
            f"wrote {out} (SQLite online backup); restore: stop the service, put it back "
            "as the database file, run `ledger verify`"
        )
        return
    pg_dump = shutil.which("pg_dump")
    if pg_dump is None:
        raise SystemExit("pg_dump is not on PATH (Debian: apt-get install postgresql-client)")
    plain = url.set(drivername="postgresql").render_as_string(hide_password=False)
    subprocess.run(  # noqa: S603 - our own URL, no shell
        [pg_dump, "--format=custom", "--no-owner", "--file", out, plain], check=True
    )
    print(
        f"wrote {out} (pg_dump custom format); restore: createdb NEW && pg_restore "
        f"--no-owner --dbname NEW {out}, then DATABASE_URL=…/NEW ledger verify"
    )


def _checkpoint_key() -> bytes:
    key = get_settings().ledger_checkpoint_key
    if key is None:
        raise SystemExit("LEDGER_CHECKPOINT_KEY is not set: checkpoints are signed with it")
    return key.get_secret_value().encode()


def checkpoint_cmd(out: str | None) -> None:
    """Sign the chain head and print it, or append it to `out` (a JSON line)."""
    from datetime import UTC, datetime

    from app.ledger.checkpoints import take

    key = _checkpoint_key()
    with _session() as session:
        line = take(session, key=key, now=datetime.now(UTC)).line()
    if out is None:
        print(line)
        return
    with open(out, "a", encoding="utf-8") as fh:
        fh.write(line + "\n")
    print(f"appended to {out}: {line}")


def verify_cmd(checkpoints: str | None = None) -> int:
    """Recompute the journal's hash chain and per-book sums; exit 1 on the first break.
    With `checkpoints`, also check every signed checkpoint in that file."""
    from app.ledger.checkpoints import Checkpoint, problems
    from app.ledger.service import verify

    found: list[str] = []
    with _session() as session:
        report = verify(session)
        if checkpoints is not None:
            with open(checkpoints, encoding="utf-8") as fh:
                kept = [Checkpoint.parse(ln) for ln in fh if ln.strip()]
            found = problems(session, kept, key=_checkpoint_key())
            print(f"checkpoints checked: {len(kept)}")
    for problem in found:
        print(f"LEDGER BROKEN: {problem}")
    sums = ", ".join(f"{book} {total}" for book, total in report.book_sums.items())
    print(f"entries checked: {report.entries_checked}; chain head: {report.head_entry_id}")
    print(f"book sums (fen): {sums or '-'}")
    if report.ok and not found:
        print("ledger verified: hash chain intact, every book sums to zero")
        return 0
    if report.ok:
        return 1
    brk = report.first_break
    where = f"entry {brk.entry_id}" if brk and brk.entry_id is not None else "journal"
    print(f"LEDGER BROKEN at {where}: {brk.problem if brk else 'a book does not sum to zero'}")
    return 1


def export_beancount_cmd(out: str) -> None:
    from app.ledger.export import export_beancount

    with _session() as session, open(out, "w", encoding="utf-8") as fh:
        fh.writelines(export_beancount(session))
    print(f"wrote {out}; check it with: bean-check {out}")


def import_enterprises_cmd(
    file: str, *, bank: str | None, report: str | None, encoding: str
) -> int:
    """Register the CSV's enterprises through the batch service; commit the accepted rows."""
    from app.reference.enterprise_csv import import_file

    with _session() as session, session.begin():
        return import_file(
            session,
            Path(file),
            bank=bank,
            report=Path(report) if report else None,
            person_key=get_settings().person_id_key.get_secret_value(),
            encoding=encoding,
            out=sys.stdout,
            err=sys.stderr,
        )


def calendar_publish_cmd(
    file: str, *, year: int | None, notice_no: str | None, notice_title: str | None, by: str | None
) -> int:
    """Publish a year from the State Council notice (SPEC M-3), as PUT /calendar/{year}."""
    from datetime import UTC, datetime

    from sqlalchemy import select

    from app.calendar.files import read_schedule
    from app.calendar.service import publish_notice
    from app.errors import AppError
    from app.kit.clock import CHINA_TZ
    from app.models import User

    try:
        year, body = read_schedule(
            Path(file), year=year, notice_no=notice_no, notice_title=notice_title
        )
        with _session() as session, session.begin():
            who = select(User).where(User.role == "admin", User.is_active)
            admin = session.scalars(
                who.where(User.username == by) if by else who.order_by(User.id).limit(1)
            ).first()
            if admin is None:
                print(f"refused: no active admin {by or ''}".rstrip(), file=sys.stderr)
                return 2
            now = datetime.now(UTC)
            outcome = publish_notice(
                session,
                year=year,
                notice=body,
                actor_id=admin.id,
                today=now.astimezone(CHINA_TZ).date(),
                now=now,
            )
    except AppError as exc:
        print(f"refused: {exc.detail}", file=sys.stderr)
        for v in exc.errors:
            print(f"  {'.'.join(str(p) for p in v.loc) or '-'}: {v.msg}", file=sys.stderr)
        return 2
    except (OSError, UnicodeDecodeError, ValueError) as exc:  # unreadable file, bad year
        print(f"refused: {file}: {exc}", file=sys.stderr)
        return 2
    if not outcome.changed:
        print(f"{year}: this schedule is already in force; nothing changed")
        return 0
    print(
        f"{year} published from {body.notice_no} by {admin.username}: "
        f"{len(body.holidays)} holidays, {len(body.workdays)} make-up workdays; "
        f"{len(outcome.changes)} stored deadline(s) recomputed"
    )
    for c in outcome.changes:
        print(f"  {c.object} {c.id} {c.deadline}: {c.old} → {c.new} {c.consequence}".rstrip())
    return 0


def store_reports_cmd(by: str, programs: list[str] | None) -> int:
    """Store the whole-programme reports of the last closed quarter and year (as their
    first pull would), each once; as the regulator or admin `by`."""
    from datetime import UTC, datetime

    from sqlalchemy import select

    from app.auth.principal import Principal
    from app.kit.clock import CHINA_TZ
    from app.models import User
    from app.programs.base import registered_programs
    from app.reports.runs import store_closed

    with _session() as session, session.begin():
        user = session.scalars(
            select(User).where(
                User.username == by, User.is_active, User.role.in_(("regulator", "admin"))
            )
        ).first()
        if user is None:
            print(f"refused: no active regulator or admin {by}", file=sys.stderr)
            return 2
        codes = programs or [p.code for p in registered_programs()]
        unknown = sorted(set(codes) - {p.code for p in registered_programs()})
        if unknown:
            print(f"refused: no programme {', '.join(unknown)}", file=sys.stderr)
            return 2
        now = datetime.now(UTC)
        actor = Principal(user.id, user.username, user.role)
        done = store_closed(
            session, codes, actor=actor, today=now.astimezone(CHINA_TZ).date(), now=now
        )
    for key, run, stored in done:
        what = "stored" if stored else "already stored"
        print(
            f"{key.kind} {key.program} {key.period.label}: {what}, version {run.version}, "
            f"sha256 {run.content_sha256}"
        )
    return 0


def openapi_cmd(out: str) -> None:
    from app.openapi_export import export_openapi

    text = export_openapi()
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    Path(out).write_text(text, encoding="utf-8")
    print(f"wrote {out} ({len(json.loads(text)['paths'])} paths)")


def metrics_dir_cmd() -> None:
    """Several workers add up their /metrics through files in PROMETHEUS_MULTIPROC_DIR;
    the files of a previous run must go before the workers start."""
    import os
    import shutil

    directory = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if not directory:
        return
    shutil.rmtree(directory, ignore_errors=True)
    Path(directory).mkdir(parents=True, exist_ok=True)
    print(f"metrics: workers share {directory}")


def purge_expired_cmd(days: int | None) -> None:
    """Idempotency answers older than the retention, revoked tokens past their expiry
    (they are refused by their expiry anyway), log-in failures older than a day and
    batch jobs that finished before the retention (with their items and results)."""
    from datetime import UTC, datetime, timedelta

    from sqlalchemy import delete

    from app.kit.uow import purge_expired
    from app.loans import jobs
    from app.models import LoginFailure, RevokedToken

    settings = get_settings()
    retention = days if days is not None else settings.idempotency_retention_days
    if retention < 1:
        raise SystemExit("--days must be at least 1")
    now = datetime.now(UTC)
    window = max(timedelta(days=1), timedelta(seconds=settings.login_failure_window_seconds))
    with _session() as session, session.begin():
        removed = purge_expired(session, now=now, retention_days=retention)
        finished = jobs.purge_finished(session, before=now - timedelta(days=retention))
        tokens = session.execute(delete(RevokedToken).where(RevokedToken.expires_at < now))
        failures = session.execute(
            delete(LoginFailure).where(LoginFailure.failed_at < now - window)
        )
    print(
        f"removed {removed} idempotency record(s) older than {retention} day(s), "
        f"{getattr(tokens, 'rowcount', 0)} expired revoked token(s), "
        f"{getattr(failures, 'rowcount', 0)} old log-in failure(s), "
        f"{finished} batch job(s) finished more than {retention} day(s) ago"
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="ledger", description=__doc__)
    sub = parser.add_subparsers(dest="cmd", required=True)
    sub.add_parser(
        "migrate",
        help="alembic upgrade head on MIGRATION_DATABASE_URL (default DATABASE_URL), then "
        "grant DB_APP_ROLE the service's privileges (PostgreSQL)",
    )
    sub.add_parser(
        "seed-reference",
        help="regions, LPR history, programme funds (as the service, on DATABASE_URL)",
    )
    sub.add_parser("seed-demo", help="demo banks, funds, agreements, enterprises, users")
    admin = sub.add_parser("create-admin", help="create an admin user if absent")
    admin.add_argument("username")
    admin.add_argument("password")
    ver = sub.add_parser("verify", help="recompute the ledger's hash chain and book sums")
    ver.add_argument(
        "--checkpoints",
        metavar="FILE",
        help="also check the signed checkpoints of this file (`ledger checkpoint --out`)",
    )
    bak = sub.add_parser(
        "backup", help="a consistent copy of the database (SQLite online backup, pg_dump)"
    )
    bak.add_argument("--out", required=True, metavar="FILE", help="a new file")
    chk = sub.add_parser(
        "checkpoint",
        help="sign the chain head (LEDGER_CHECKPOINT_KEY) to keep outside the database",
    )
    chk.add_argument("--out", metavar="FILE", help="append it to this file (default: print)")
    sub.add_parser(
        "metrics-dir",
        help="empty PROMETHEUS_MULTIPROC_DIR before the workers start (nothing if unset)",
    )
    purge = sub.add_parser(
        "purge-expired",
        help="forget Idempotency-Key answers and finished batch jobs older than "
        "IDEMPOTENCY_RETENTION_DAYS, expired revoked tokens and old log-in failures (run "
        "daily)",
    )
    purge.add_argument("--days", type=int, help="override the retention, in days (≥ 1)")
    store = sub.add_parser(
        "store-reports",
        help="store each programme's report of the last closed quarter and year, once (run "
        "daily: a regulator's first pull of a closed period is then served from storage)",
    )
    store.add_argument(
        "--by", required=True, metavar="USERNAME", help="the regulator or admin it runs as"
    )
    store.add_argument(
        "--program", action="append", metavar="CODE", help="one programme (default: all)"
    )
    bean = sub.add_parser("export-beancount", help="write the journal in Beancount syntax")
    bean.add_argument("--out", default="ledger.beancount")
    api = sub.add_parser("openapi", help="write the OpenAPI document")
    api.add_argument("--out", default="openapi/openapi.json")
    imp = sub.add_parser(
        "import-enterprises",
        help="register enterprises from a CSV file (as POST /enterprises/batch)",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Register the enterprises of a CSV file with the checks and outcomes of "
        "POST /enterprises/batch (at most 10,000 rows).\n\n"
        "Header: the JSON API's field names, any order; required: credit_code, name,\n"
        "region_code, registered_on, prior_year_revenue, employees. Empty cell = field\n"
        "left out. Booleans true/false, dates YYYY-MM-DD, amounts in yuan (20000000.00).\n"
        "The actual controller: columns controller.name and controller.id_number\n"
        "(居民身份证号; only its keyed hash is stored).\n"
        "Example: docs/examples/enterprises.csv.\n\n"
        "Each row is created, unchanged (already recorded with the same facts) or\n"
        "refused (every failed field listed). Recorded enterprises are never changed.\n"
        "The accepted rows ARE COMMITTED even when other rows are refused; fix the\n"
        "refused rows and import the file again (accepted rows then come back unchanged).\n\n"
        "Exit status: 0 every row accepted, 1 some rows refused, 2 file not usable\n"
        "(nothing written).",
    )
    imp.add_argument("file", metavar="FILE.csv")
    imp.add_argument(
        "--bank", metavar="CODE", help="import on behalf of this partner bank (default: admin)"
    )
    imp.add_argument(
        "--report",
        metavar="errors.csv",
        help="write one line per error: row, credit_code, field, code, message "
        "(default: errors printed to stderr)",
    )
    imp.add_argument(
        "--encoding", default="utf-8-sig", help="file encoding (default UTF-8; e.g. gb18030)"
    )
    cal = sub.add_parser(
        "calendar-publish",
        help="publish a year's holidays and make-up workdays from the State Council notice",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Publish a year of the PRC working-day calendar (SPEC M-3), as PUT "
        "/api/v1/calendar/{year}: stored deadlines of open loans and claims are recomputed "
        "in the same transaction.\n\n"
        "JSON: {year, notice_no, notice_title?, holidays: [{date, name}], workdays: [...]}\n"
        "CSV: header date,kind,name; kind holiday (休) or workday (班); give --notice-no.\n"
        "Example (the 2026 schedule): docs/examples/calendar-2026.csv.\n"
        "Exit status 0 published or unchanged, 2 refused (nothing written).",
    )
    cal.add_argument("file", metavar="FILE.json|FILE.csv")
    cal.add_argument("--year", type=int, help="default: the year of the file's days")
    cal.add_argument("--notice-no", help="the notice's 文号 (required for CSV)")
    cal.add_argument("--notice-title", help="the notice's title")
    cal.add_argument("--by", metavar="USERNAME", help="the publishing admin (default: the first)")
    args = parser.parse_args(argv)
    if args.cmd == "calendar-publish":
        sys.exit(
            calendar_publish_cmd(
                args.file,
                year=args.year,
                notice_no=args.notice_no,
                notice_title=args.notice_title,
                by=args.by,
            )
        )
    if args.cmd == "migrate":
        migrate(app_role=get_settings().app_role)
    elif args.cmd == "seed-reference":
        seed_reference_cmd()
    elif args.cmd == "seed-demo":
        seed_demo_cmd()
    elif args.cmd == "create-admin":
        create_admin_cmd(args.username, args.password)
    elif args.cmd == "openapi":
        openapi_cmd(args.out)
    elif args.cmd == "store-reports":
        sys.exit(store_reports_cmd(args.by, args.program))
    elif args.cmd == "verify":
        sys.exit(verify_cmd(args.checkpoints))
    elif args.cmd == "backup":
        backup_cmd(args.out)
    elif args.cmd == "checkpoint":
        checkpoint_cmd(args.out)
    elif args.cmd == "metrics-dir":
        metrics_dir_cmd()
    elif args.cmd == "purge-expired":
        purge_expired_cmd(args.days)
    elif args.cmd == "export-beancount":
        export_beancount_cmd(args.out)
    elif args.cmd == "import-enterprises":
        sys.exit(
            import_enterprises_cmd(
                args.file, bank=args.bank, report=args.report, encoding=args.encoding
            )
        )


if __name__ == "__main__":
    main()
