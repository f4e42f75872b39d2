"""SKD-Q1 under real parallel connections (PostgreSQL): approvals for one bank are
decided under the bank's row lock, so however many race, the total approved never
passes the 3 % cap — and reaches it exactly."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, date, datetime

import pytest
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from app.claims import service as claims
from app.loans import service as loans
from app.loans.schemas import LoanFile
from app.models import Claim, LedgerAccount, LedgerLeg
from tests.fixtures.concurrency import race
from tests.fixtures.factories import claim_with_documents, member_enterprise, new_bank, principal

N = 50  # parallel approvals
NOW = datetime(2026, 6, 10, 9, tzinfo=UTC)


def _setup(engine: Engine) -> list[int]:
    """Bank CAPQ, cooperating with 南京 since 2025-01-01 (year 2 in 2026), with N SKD1
    loans of 5,000,000.00 for 365 days: annualized principal N × 4,000,000.00, cap 3 % of
    it. Every loan defaults in full; N claims wait for the province review."""
    with Session(engine) as s:
        new_bank(s, "CAPQ", since=date(2025, 1, 1))
    with Session(engine) as s:
        codes = [member_enterprise(s, region="320100").credit_code for _ in range(N)]
    ids = []
    with Session(engine) as s, s.begin():
        bank, city = principal(s, "bank_capq"), principal(s, "city_nanjing")
        for i, code in enumerate(codes):
            loan = loans.file_loan(
                s,
                principal=bank,
                today=date(2025, 3, 3),
                now=NOW,
                data=LoanFile(
                    program="SKD",
                    enterprise_credit_code=code,
                    contract_no=f"CAPQ-{i}",
                    principal="5000000.00",
                    annual_rate_bp=340,
                    disbursed_on=date(2025, 3, 3),
                    maturity_on=date(2026, 3, 3),
                    security="credit",
                    controller_guarantee=True,
                ),
            )
            claim_id = claim_with_documents(
                s,
                loan_id=loan.id,
                bank=bank,
                on=date(2026, 6, 5),
                now=NOW,
                documents=[("application", "a.pdf")],
            )
            claims.step(
                s,
                claim_id=claim_id,
                stage="city_review",
                approve=True,
                actor=city,
                today=date(2026, 6, 8),
                now=NOW,
            )
            ids.append(claim_id)
    return ids


@pytest.mark.xdist_group("pg-concurrency")
def test_skd_q1_parallel_approvals_never_pass_the_cap(pg_engine: Engine) -> None:
    ids = _setup(pg_engine)
    with Session(pg_engine) as s:
        province = principal(s, "province")

    def approve(s: Session, claim_id: int) -> str:
        claim = claims.step(
            s,
            claim_id=claim_id,
            stage="province_review",
            approve=True,
            actor=province,
            today=date(2026, 6, 10),
            now=NOW,
        )
        return f"{claim.status}:{claim.capped_by}"

    outcomes = race(pg_engine, ids, approve)

    cap = N * 4_000_000_00 * 300 // 10_000  # 3 % of N × 4,000,000.00
    with Session(pg_engine) as s:
        approved = s.scalar(select(func.sum(Claim.approved_fen)).where(Claim.bank_code == "CAPQ"))
        expensed = s.scalar(
            select(func.sum(LedgerLeg.amount_fen))
            .join(LedgerAccount, LedgerAccount.id == LedgerLeg.account_id)
            .where(
                LedgerAccount.kind == "compensation_expense", LedgerAccount.counterparty == "CAPQ"
            )
        )
    assert approved == expensed == cap  # reaches the cap exactly, never more
    full, rest = divmod(cap, 4_000_000_00)
    assert (
        outcomes
        == Counter(
            {
                "approved:None": full,
                "approved:SKD-Q1": 1 if rest else 0,
                "closed:SKD-Q1": N - full - (1 if rest else 0),
            }
        )
        - Counter()
    )
