"""Command line: `ledger migrate | seed-reference | seed-demo | create-admin | openapi |
verify | export-beancount`."""

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


def migrate(url: str | None = None, revision: str = "head") -> None:
    from alembic import command

    cfg = _alembic_config()
    if url:
        cfg.attributes["database_url"] = url
    command.upgrade(cfg, revision)


def _session():  # type: ignore[no-untyped-def]
    from app.db import make_engine, make_sessionmaker

    settings = get_settings()
    return make_sessionmaker(make_engine(settings.database_url))()


def seed_reference_cmd() -> None:
    from app.seed.loader import seed_reference

    with _session() as session, session.begin():
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
    print("\nSwagger UI: http://127.0.0.1:8000/docs  → Authorize → log in as one of them.\n")


def create_admin_cmd(username: str, password: str) -> None:
    from app.auth.service import ensure_admin

    with _session() as session, session.begin():
        created = ensure_admin(session, username=username, password=password)
    print("created" if created else "already exists")


def verify_cmd() -> int:
    """Recompute the journal's hash chain and per-book sums; exit 1 on the first break."""
    from app.ledger.service import verify

    with _session() as session:
        report = verify(session)
    sums = ", ".join(f"{book} {total}" for book, total in report.book_sums.items())
    print(f"entries checked: {report.entries_checked}; chain head: {report.head_entry_id}")
    print(f"book sums (fen): {sums or '-'}")
    if report.ok:
        print("ledger verified: hash chain intact, every book sums to zero")
        return 0
    brk = report.first_break
    where = f"entry {brk.entry_id}" if brk and brk.entry_id is not None else "journal"
    print(f"LEDGER BROKEN at {where}: {brk.problem if brk else 'a book does not sum to zero'}")
    return 1


def export_beancount_cmd(out: str) -> None:
    from app.ledger.export import export_beancount

    with _session() as session, open(out, "w", encoding="utf-8") as fh:
        fh.writelines(export_beancount(session))
    print(f"wrote {out}; check it with: bean-check {out}")


def openapi_cmd(out: str) -> None:
    from app.openapi_export import export_openapi

    text = export_openapi()
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    Path(out).write_text(text, encoding="utf-8")
    print(f"wrote {out} ({len(json.loads(text)['paths'])} paths)")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="ledger", description=__doc__)
    sub = parser.add_subparsers(dest="cmd", required=True)
    sub.add_parser("migrate", help="alembic upgrade head on DATABASE_URL")
    sub.add_parser("seed-reference", help="regions, LPR history, programme funds")
    sub.add_parser("seed-demo", help="demo banks, funds, agreements, enterprises, users")
    admin = sub.add_parser("create-admin", help="create an admin user if absent")
    admin.add_argument("username")
    admin.add_argument("password")
    sub.add_parser("verify", help="recompute the ledger's hash chain and book sums")
    bean = sub.add_parser("export-beancount", help="write the journal in Beancount syntax")
    bean.add_argument("--out", default="ledger.beancount")
    api = sub.add_parser("openapi", help="write the OpenAPI document")
    api.add_argument("--out", default="openapi/openapi.json")
    args = parser.parse_args(argv)
    if args.cmd == "migrate":
        migrate()
    elif args.cmd == "seed-reference":
        seed_reference_cmd()
    elif args.cmd == "seed-demo":
        seed_demo_cmd()
    elif args.cmd == "create-admin":
        create_admin_cmd(args.username, args.password)
    elif args.cmd == "openapi":
        openapi_cmd(args.out)
    elif args.cmd == "verify":
        sys.exit(verify_cmd())
    elif args.cmd == "export-beancount":
        export_beancount_cmd(args.out)


if __name__ == "__main__":
    main()
