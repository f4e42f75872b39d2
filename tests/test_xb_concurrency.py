"""XB-Q1 under real parallel connections (PostgreSQL): 50 committee approvals for one
bank's base sub-fund race; the bank's and the pool's row locks keep the year's total at
the limit, each reading the basis the XB quarter-end evaluation stored."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, date, datetime

import pytest
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from app.claims import service as claims
from app.evaluations import service as evaluations
from app.ledger import service as ledger
from app.ledger.postings import credit, debit
from app.loans import service as loans
from app.loans.schemas import LoanFile
from app.models import Agreement, Claim, Fund, FundEvent
from tests.fixtures.concurrency import race
from tests.fixtures.factories import claim_with_documents, new_bank, principal, xb_enterprise

N = 50
NOW = datetime(2026, 2, 12, 9, tzinfo=UTC)


def _setup(engine: Engine) -> list[int]:
    """Bank XBQ with 60 loans of 1,000,000.00 due 2025-12-27 (60,000,000 outstanding at
    the 2025-12-31 quarter end: limit 3,000,000.00); 50 claims of 800,000.00 each wait
    for the committee."""
    with Session(engine) as s:
        new_bank(s, "XBQ", since=date(2025, 6, 1), region=None, xb_sub_funds=("XB_ZQCZD",))
    with Session(engine) as s, s.begin():
        # XB-Q2 in the same race: leave 4,000,000 of capital, so the stop comes at 2,000,000
        returned = [
            ("LYG_CITY", 50_000_000_00),
            ("HAIZHOU", 22_000_000_00),
            ("KFQ", 20_000_000_00),
            ("LIANYUN", 4_000_000_00),
        ]
        ledger.post(
            s,
            event_type="test",
            event_id="capital",
            idempotency_key="xbq-capital",
            business_date=date(2026, 1, 5),
            now=NOW,
            legs=[
                *(debit("XB_POOL", "contributed_capital", a, c) for c, a in returned),
                credit("XB_POOL", "cash", sum(a for _, a in returned)),
            ],
        )
    with Session(engine) as s:
        codes = [xb_enterprise(s).credit_code for _ in range(60)]
    ids = []
    with Session(engine) as s, s.begin():
        bank, manager = principal(s, "bank_xbq"), principal(s, "fund_xb")
        for i, code in enumerate(codes):
            loan = loans.file_loan(
                s,
                principal=bank,
                today=date(2025, 6, 27),
                now=NOW,
                data=LoanFile(
                    program="XB",
                    enterprise_credit_code=code,
                    contract_no=f"XBQ-{i}",
                    principal="1000000.00",
                    annual_rate_bp=380,
                    disbursed_on=date(2025, 6, 27),
                    maturity_on=date(2025, 12, 27),
                    security="credit",
                    controller_guarantee=True,
                ),
            )
            if i >= N:
                continue
            claim_id = claim_with_documents(
                s,
                loan_id=loan.id,
                bank=bank,
                on=date(2026, 2, 10),
                now=NOW,
                documents=[
                    (kind, f"{kind}.pdf")
                    for kind in ("application", "collection_plan", "due_diligence")
                ],
                lawsuit=("(2026)苏0706民初1号", date(2026, 1, 20)),
            )
            claims.step(
                s,
                claim_id=claim_id,
                stage="manager_review",
                approve=True,
                opinion="尽职",
                actor=manager,
                today=date(2026, 2, 11),
                now=NOW,
            )
            ids.append(claim_id)
    return ids


@pytest.mark.xdist_group("pg-concurrency")
def test_xb_q1_parallel_committee_approvals_never_pass_the_limit(pg_engine: Engine) -> None:
    ids = _setup(pg_engine)
    with Session(pg_engine) as s, s.begin():  # the fund manager stores the basis: 60,000,000
        evaluations.evaluate(
            s,
            program="XB",
            year=2025,
            quarter=4,
            actor=principal(s, "fund_xb"),
            today=date(2026, 1, 8),
        )
    with Session(pg_engine) as s:
        committee = principal(s, "committee")

    def approve(s: Session, claim_id: int) -> str:
        c = claims.step(
            s,
            claim_id=claim_id,
            stage="committee_decision",
            approve=True,
            actor=committee,
            today=date(2026, 2, 12),
            now=NOW,
        )
        return f"{c.status}:{c.capped_by}"

    outcomes = race(pg_engine, ids, approve)
    with Session(pg_engine) as s:
        total = s.scalar(select(func.sum(Claim.approved_fen)).where(Claim.bank_code == "XBQ"))
        suspended = s.scalars(select(Agreement.status).where(Agreement.bank_code == "XBQ")).all()
        stops = s.scalars(select(FundEvent.reason).where(FundEvent.action == "stop")).all()
        pool = s.get(Fund, "XB_POOL")
        sources = {
            c.cap_detail["basis_source"] if c.cap_detail else None
            for c in s.scalars(select(Claim).where(Claim.bank_code == "XBQ"))
        }
    assert sources == {"evaluation"}  # every decision read the stored basis
    assert total == 3_000_000_00  # exactly the limit, never more
    assert outcomes == Counter({"approved:None": 3, "approved:XB-Q1": 1, "closed:XB-Q1": N - 4})
    assert suspended == ["suspended"]
    assert len(stops) == 1 and pool is not None and pool.status == "stopped"  # XB-Q2, once
