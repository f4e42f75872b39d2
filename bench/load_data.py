"""Realistic reference data for the load harness, in a fresh PostgreSQL database.

    .venv/bin/python bench/load_data.py [--admin-url URL] [--db ledger_load]
        [--enterprises 100000] [--banks 30] [--claims 1000]

Creates the database, migrates it, loads the demo (users, funds, LPR), then adds: an SKD
city fund with capital for each of Jiangsu's 13 cities, `--banks` banks each with an SKD
agreement in every city (since 2025-01-01) and a user `load_bankNN`, a city reviewer per
city, `--enterprises` SKD1 enterprises spread over the cities and admitted to the library
(written with COPY), quotas too large to bind, and `--claims` overdue loans whose claims passed
the city review and wait for the province (spread over the banks), for the approval
scenario. Prints a JSON summary the driver reads."""

from __future__ import annotations

import argparse
import json
import sys
import time
from datetime import UTC, date, datetime
from pathlib import Path

import psycopg
from sqlalchemy import create_engine, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from app.auth.passwords import hash_password  # noqa: E402
from app.auth.principal import Principal  # noqa: E402
from app.claims import service as claims  # noqa: E402
from app.cli import migrate  # noqa: E402
from app.db import make_engine, normalize_url  # noqa: E402
from app.ledger import capital  # noqa: E402
from app.loans import service as loans  # noqa: E402
from app.loans.schemas import LoanFile  # noqa: E402
from app.models import (  # noqa: E402
    Agreement,
    Bank,
    Fund,
    FundContributor,
    ProgramQuota,
    User,
)
from app.seed.loader import (  # noqa: E402
    DEMO_PASSWORD,
    demo_credit_code,
    file_claim_with_documents,
    seed_demo,
)

CITIES = [f"32{n:02d}00" for n in range(1, 14)]
NOW = datetime(2026, 3, 31, tzinfo=UTC)


def enterprise_code(i: int) -> str:
    return demo_credit_code(CITIES[i % 13], f"LD{i:07d}")


def fresh_database(admin_url: str, name: str) -> str:
    eng = create_engine(normalize_url(admin_url), isolation_level="AUTOCOMMIT")
    with eng.connect() as c:
        c.execute(text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        c.execute(text(f"CREATE DATABASE {name}"))
    eng.dispose()
    return make_url(normalize_url(admin_url)).set(database=name).render_as_string(False)


def reference(session: Session, banks: int) -> None:
    admin = session.scalars(select(User).where(User.username == "admin")).one()
    pw = hash_password(DEMO_PASSWORD)
    for city in CITIES:
        code = f"SKD_CITY_{city}"
        if session.get(Fund, code) is None:
            session.add(
                Fund(
                    code=code,
                    name=f"苏科贷市级资金 {city}",
                    program="SKD",
                    kind="city",
                    region_code=city,
                    params={},
                )
            )
            session.add(
                FundContributor(
                    fund_code=code,
                    code=f"FIN_{city}",
                    name=f"财政 {city}",
                    region_code=city,
                    committed_fen=100_000_000_00,
                )
            )
        if (
            session.scalars(select(User).where(User.username == f"load_city_{city}")).first()
            is None
        ):
            session.add(
                User(
                    username=f"load_city_{city}",
                    role="city_reviewer",
                    region_code=city,
                    password_hash=pw,
                )
            )
    session.flush()
    for city in CITIES:
        code = f"SKD_CITY_{city}"
        contributor = session.scalars(
            select(FundContributor).where(FundContributor.fund_code == code)
        ).first()
        assert contributor is not None
        if capital.paid_in(session, code, contributor.code, as_of=None) == 0:
            capital.contribute(
                session,
                fund_code=code,
                contributor_code=contributor.code,
                amount_fen=50_000_000_00,
                paid_on=date(2025, 1, 6),
                now=NOW,
                actor_id=admin.id,
            )
    for b in range(1, banks + 1):
        bank = f"LOAD{b:02d}"
        session.add(Bank(code=bank, name=f"压测银行{b:02d}", unit_level="provincial_branch"))
        session.flush()
        for city in CITIES:
            session.add(
                Agreement(
                    bank_code=bank,
                    program="SKD",
                    fund_code=f"SKD_CITY_{city}",
                    region_code=city,
                    start_on=date(2025, 1, 1),
                    end_on=date(2028, 1, 1),
                    status="active",
                )
            )
        session.add(
            User(username=f"load_bank{b:02d}", role="bank", bank_code=bank, password_hash=pw)
        )
    for quota in session.scalars(select(ProgramQuota)):
        quota.amount_fen = 10**15  # the quota (SKD-F6) is not what is measured


def enterprises(url: str, count: int, actor_id: int) -> None:
    """COPY: the enterprises and their library admissions (SKD-E1)."""
    with psycopg.connect(url.replace("postgresql+psycopg", "postgresql")) as conn:
        with conn.cursor() as cur:
            with cur.copy(
                "COPY enterprises (credit_code, name, region_code, independent_legal_person,"
                " registered_on, prior_year_revenue_fen, employees, rd_staff_share_bp,"
                " rd_spend_share_bp, ip_count, dishonest_debtor, controller_dishonest_debtor,"
                " overdue_loans_elsewhere, controller_overdue_loans,"
                " malicious_default_blacklist, updated_at, created_at) FROM STDIN"
            ) as cp:
                for i in range(count):
                    cp.write_row(
                        (
                            enterprise_code(i),
                            f"压测科技{i}号有限公司",
                            CITIES[i % 13],
                            True,
                            date(2018, 1, 1),
                            15_000_000_00,
                            60,
                            2000,
                            600,
                            3,
                            False,
                            False,
                            False,
                            False,
                            False,
                            NOW,
                            NOW,
                        )
                    )
            cur.execute(
                "INSERT INTO library_events (enterprise_id, program, action, effective_on,"
                " comment, criteria, actor_id, at) SELECT id, 'SKD', 'admitted', '2025-02-01',"
                " 'load', '[]', %s, now() FROM enterprises WHERE credit_code LIKE '91______LD%%'",
                (actor_id,),
            )
        conn.commit()


def history_loans(url: str, count: int, banks: int) -> None:
    """COPY `count` repaid SKD1 loans disbursed through 2025 (the volume a cap check and
    an exposure read must sum over); each bank's share spread over its cities."""
    if count <= 0:
        return
    import json as _json
    from datetime import timedelta

    with psycopg.connect(url.replace("postgresql+psycopg", "postgresql")) as conn:
        agreements = {
            (b, f): i
            for i, b, f in conn.execute(
                "SELECT id, bank_code, fund_code FROM agreements WHERE bank_code LIKE 'LOAD%%'"
            )
        }
        users = dict(
            conn.execute("SELECT bank_code, id FROM users WHERE username LIKE 'load_bank%%'")
        )
        enterprises = [
            r[0]
            for r in conn.execute(
                "SELECT id FROM enterprises WHERE credit_code LIKE '91______LD%%'"
                " ORDER BY id LIMIT 5000"
            )
        ]
        with (
            conn.cursor() as cur,
            cur.copy(
                "COPY loans (program, product, bank_code, agreement_id, enterprise_id,"
                " contract_no, principal_fen, annual_rate_bp, fee_rate_bp, disbursed_on,"
                " maturity_on, security, controller_guarantee, other_fiscal_support, status,"
                " filed_on, filing_deadline, filed_late, compensable, flags, filed_by_id, extra,"
                " fund_code, created_at) FROM STDIN"
            ) as cp,
        ):
            for i in range(count):
                bank = f"LOAD{i % banks + 1:02d}"
                city = CITIES[i // banks % 13]
                fund = f"SKD_CITY_{city}"
                day = date(2025, 1, 6) + timedelta(days=i % 300)
                cp.write_row(
                    (
                        "SKD",
                        "SKD1",
                        bank,
                        agreements[(bank, fund)],
                        enterprises[i % len(enterprises)],
                        f"HIST-{i}",
                        1_000_000_00,
                        340,
                        0,
                        day,
                        day + timedelta(days=365),
                        "credit",
                        True,
                        False,
                        "repaid",
                        day,
                        day,
                        False,
                        True,
                        "[]",
                        users[bank],
                        _json.dumps({"city_fund": fund}),
                        fund,
                        NOW,
                    )
                )
        # repaid at maturity (or before the load's today): the repayment rows make them
        # settled, through the same triggers as the service's own writes
        conn.execute(
            "INSERT INTO loan_repayments (loan_id, paid_on, principal_fen, recorded_by_id,"
            " kind, created_at) SELECT id, LEAST(maturity_on, DATE '2026-03-27'),"
            " principal_fen, filed_by_id, 'cash', now() FROM loans"
            " WHERE contract_no LIKE 'HIST-%%'"
        )
        conn.commit()
        # The trigger's settled_on update leaves a dead version of every history loan;
        # reclaim them now, as autovacuum would in time (else every index scan over the
        # bank's loans visits them: 200 ms instead of 4 ms for an NPL figure).
        conn.autocommit = True
        for table in ("loans", "loan_repayments", "loan_day_totals"):
            conn.execute(f"VACUUM ANALYZE {table}")


def waiting_claims(session: Session, banks: int, count: int, offset: int) -> int:
    """Overdue loans whose claims wait for the province review."""
    made = 0
    for i in range(count):
        b = i % banks + 1
        city = CITIES[(offset + i) % 13]
        bank = Principal.of(
            session.scalars(select(User).where(User.username == f"load_bank{b:02d}")).one()
        )
        reviewer = Principal.of(
            session.scalars(select(User).where(User.username == f"load_city_{city}")).one()
        )
        loan = loans.file_loan(
            session,
            principal=bank,
            today=date(2025, 3, 3),
            now=NOW,
            data=LoanFile(
                program="SKD",
                enterprise_credit_code=enterprise_code(offset + i),
                contract_no=f"LOAD-CLAIM-{i}",
                principal="1000000.00",
                annual_rate_bp=340,
                disbursed_on=date(2025, 3, 3),
                maturity_on=date(2025, 12, 3),
                security="credit",
                controller_guarantee=True,
            ),
        )
        claim_id = file_claim_with_documents(
            session,
            loan_id=loan.id,
            bank=bank,
            on=date(2026, 3, 20),
            now=NOW,
            documents=[("application", "a.pdf")],
        )
        claims.step(
            session,
            claim_id=claim_id,
            stage="city_review",
            approve=True,
            actor=reviewer,
            today=date(2026, 3, 23),
            now=NOW,
        )
        made += 1
        if made % 200 == 0:
            session.commit()
    return made


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--admin-url", default="postgresql://postgres@127.0.0.1:5432/postgres")
    p.add_argument("--db", default="ledger_load")
    p.add_argument("--enterprises", type=int, default=100_000)
    p.add_argument("--banks", type=int, default=30)
    p.add_argument("--claims", type=int, default=1_000)
    p.add_argument("--history-loans", type=int, default=0, help="repaid 2025 loans by COPY")
    a = p.parse_args()
    t0 = time.perf_counter()
    url = fresh_database(a.admin_url, a.db)
    migrate(url)
    engine = make_engine(url)
    with Session(engine) as s, s.begin():
        seed_demo(s)
        reference(s, a.banks)
        admin_id = s.scalars(select(User.id).where(User.username == "admin")).one()
    enterprises(url, a.enterprises, admin_id)
    history_loans(url, a.history_loans, a.banks)
    with Session(engine) as s:
        made = waiting_claims(s, a.banks, a.claims, offset=a.enterprises - a.claims)
        s.commit()
    engine.dispose()
    # the planner's statistics for every table, as autovacuum would gather them in time
    # (a server may run without it: then a table never analyzed is planned blind)
    with psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://")) as conn:
        conn.autocommit = True
        conn.execute("VACUUM ANALYZE")
    print(
        json.dumps(
            {
                "database_url": url,
                "enterprises": a.enterprises,
                "banks": a.banks,
                "claims_waiting": made,
                "seconds": round(time.perf_counter() - t0, 1),
            }
        )
    )


if __name__ == "__main__":
    main()
