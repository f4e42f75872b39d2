"""SKD-Q1 cap sums and SKD-Q3 NPL figures per bank: from the day totals (the service)
against the same figures summed over every loan and repayment (the queries the service
used before migration 0012), side by side in one run, with a parity check.

    .venv/bin/python bench/load_data.py --history-loans 1000000   # ~1,000,000 loans
    .venv/bin/python bench/day_totals_bench.py [--url URL] [--rounds 5]

Prints the median and p99 per bank over `--rounds` interleaved rounds of the 30 banks."""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import BigInteger, Integer, and_, case, cast, func, select
from sqlalchemy.orm import Session

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from app.claims import repository as claims_repo
from app.db import make_engine
from app.evaluations.service import bank_ratios
from app.models import Loan, LoanRepayment
from app.programs.sukedai.policy import QUARTER_END

ON, START = date(2026, 3, 31), date(2025, 1, 1)


def npl_every_loan(s: Session, bank: str) -> tuple[int, int]:
    repaid = (
        select(LoanRepayment.loan_id, func.sum(LoanRepayment.principal_fen).label("repaid"))
        .where(LoanRepayment.paid_on <= ON)
        .group_by(LoanRepayment.loan_id)
        .subquery()
    )
    left = Loan.principal_fen - func.coalesce(repaid.c.repaid, 0)
    late = and_(Loan.maturity_on <= ON - timedelta(days=QUARTER_END.npl_days_past_due), left > 0)
    row = s.execute(
        select(func.sum(left), func.sum(case((late, left), else_=0)))
        .outerjoin(repaid, repaid.c.loan_id == Loan.id)
        .where(Loan.program == "SKD", Loan.disbursed_on <= ON, Loan.bank_code == bank)
    ).one()
    return int(row[0] or 0), int(row[1] or 0)


def npl_day_totals(s: Session, bank: str) -> tuple[int, int]:
    r = bank_ratios(s, "SKD", ON, QUARTER_END, bank_code=bank)[bank]
    return r.outstanding_fen, r.npl_fen


def cap_every_loan(s: Session, bank: str) -> list[tuple[str, int, int]]:
    days = cast(Loan.maturity_on - Loan.disbursed_on, Integer)
    rows = s.execute(
        select(
            Loan.product,
            func.sum(Loan.principal_fen),
            func.sum(cast(Loan.principal_fen * days, BigInteger)),
        )
        .where(
            Loan.bank_code == bank,
            Loan.program == "SKD",
            Loan.disbursed_on >= START,
            Loan.disbursed_on <= ON,
        )
        .group_by(Loan.product)
    )
    return sorted((str(p or ""), int(a), int(d)) for p, a, d in rows)


def cap_day_totals(s: Session, bank: str) -> list[tuple[str, int, int]]:
    return sorted(claims_repo.cap_sums(s, bank, "SKD", start=START, until=ON))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--url", default="postgresql://postgres@127.0.0.1:5432/ledger_load")
    p.add_argument("--rounds", type=int, default=5)
    a = p.parse_args()
    banks = [f"LOAD{b:02d}" for b in range(1, 31)]
    with Session(make_engine(a.url)) as s:
        loans = s.scalar(select(func.count()).select_from(Loan))
        pairs: list[tuple[str, Callable[[Session, str], Any], Callable[[Session, str], Any]]] = [
            ("NPL figure (SKD-Q3)", npl_every_loan, npl_day_totals),
            ("cap sums (SKD-Q1)", cap_every_loan, cap_day_totals),
        ]
        for name, old, new in pairs:
            assert all(old(s, b) == new(s, b) for b in banks), f"{name}: figures differ"
        times: dict[str, list[float]] = {}
        for _ in range(a.rounds):
            for name, old, new in pairs:
                for label, fn in (("every loan", old), ("day totals", new)):
                    for b in banks:
                        t = time.perf_counter()
                        fn(s, b)
                        times.setdefault(f"{name}, {label}", []).append(
                            (time.perf_counter() - t) * 1000
                        )
    print(f"{loans:,} loans; figures equal for all 30 banks")
    print("| figure per bank | median ms | p99 ms |\n|---|---|---|")
    for k, v in times.items():
        xs = sorted(v)
        print(f"| {k} | {statistics.median(xs):.1f} | {xs[int(0.99 * (len(xs) - 1))]:.1f} |")


if __name__ == "__main__":
    main()
