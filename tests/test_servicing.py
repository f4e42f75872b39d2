"""Servicing: repayments, outstanding principal and days past due as of a date."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session, sessionmaker

from app.config import Settings
from app.kit.clock import Clock
from app.ledger import service as ledger
from app.main import create_app
from app.models import LedgerEntry, LoanRepayment
from tests.fixtures.factories import member_enterprise

TODAY = "2026-03-31"


@pytest.fixture
def loan_id(  # type: ignore[no-untyped-def]
    auth,
    session: Session,
    settings: Settings,
    engine: Engine,
    session_factory: sessionmaker[Session],
) -> int:
    """A fresh SKD1 loan of 3,000,000.01 at 江苏银行, filed on 2025-09-22 (back-dated
    clock, M-5), matured 2026-03-20, nothing repaid."""
    code = member_enterprise(session, region="320100").credit_code
    filing_day = create_app(
        settings, engine=engine, session_factory=session_factory, clock=Clock(date(2025, 9, 22))
    )
    with TestClient(filing_day) as c:
        r = c.post(
            "/api/v1/loans",
            headers=auth("bank_jsb"),
            json={
                "program": "SKD",
                "enterprise_credit_code": code,
                "contract_no": "SV-1",
                "principal": "3000000.01",
                "annual_rate_bp": 345,
                "disbursed_on": "2025-09-19",
                "maturity_on": "2026-03-20",
                "security": "credit",
                "controller_guarantee": True,
            },
        )
    assert r.status_code == 201, r.text
    return int(r.json()["id"])


def _get(client: TestClient, auth, loan_id: int, as_of: str | None = None) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    url = f"/api/v1/loans/{loan_id}" + (f"?as_of={as_of}" if as_of else "")
    r = client.get(url, headers=auth("bank_jsb"))
    assert r.status_code == 200, r.text
    return r.json()  # type: ignore[no-any-return]


def test_days_past_due_as_of_any_date(client: TestClient, auth, loan_id: int) -> None:  # type: ignore[no-untyped-def]
    """M-6 as far as it is built (one bullet instalment at maturity): past due from the
    day after maturity while principal is outstanding."""
    assert _get(client, auth, loan_id, "2026-03-20")["days_past_due"] == 0  # maturity day
    assert _get(client, auth, loan_id, "2026-03-21")["days_past_due"] == 1
    now = _get(client, auth, loan_id)
    assert (now["as_of"], now["days_past_due"], now["outstanding_principal"]) == (
        TODAY,
        11,
        "3000000.01",
    )
    assert _get(client, auth, loan_id, "2026-06-18")["days_past_due"] == 90  # SKD-C2 threshold


def test_repayments_reduce_outstanding_and_exposure_to_exactly_zero(
    client: TestClient,
    auth,
    session: Session,
    loan_id: int,  # type: ignore[no-untyped-def]
) -> None:
    def exposure() -> int:
        legs = session.scalars(select(LedgerEntry).where(LedgerEntry.event_id == str(loan_id)))
        return sum(
            g.amount_fen
            for e in legs
            for g in ledger.entry_legs(session, e)
            if g.kind == "exposure_memo"
        )

    assert exposure() == 120_000_000 * 2  # 40 % + 40 % of 3,000,000.01, rounded down each
    r = client.post(
        f"/api/v1/loans/{loan_id}/repayments",
        headers=auth("bank_jsb"),
        json={"paid_on": "2026-01-05", "principal": "1000000.00"},
    )
    assert r.status_code == 201, r.text
    assert r.json()["outstanding_principal"] == "2000000.01" and r.json()["status"] == "active"
    assert exposure() == 80_000_000 * 2
    assert _get(client, auth, loan_id, "2026-01-04")["outstanding_principal"] == "3000000.01"
    over = client.post(
        f"/api/v1/loans/{loan_id}/repayments",
        headers=auth("bank_jsb"),
        json={"paid_on": "2026-03-30", "principal": "2000000.02"},
    )
    assert over.status_code == 422 and over.json()["errors"][0]["code"] == "overpayment"
    full = client.post(
        f"/api/v1/loans/{loan_id}/repayments",
        headers=auth("bank_jsb"),
        json={"paid_on": "2026-03-30", "principal": "2000000.01"},
    )
    assert full.json()["status"] == "repaid" and full.json()["outstanding_principal"] == "0.00"
    assert full.json()["days_past_due"] == 0
    assert exposure() == 0
    closed = client.post(
        f"/api/v1/loans/{loan_id}/repayments",
        headers=auth("bank_jsb"),
        json={"paid_on": "2026-03-30", "principal": "1.00"},
    )
    assert closed.status_code == 409 and closed.json()["code"] == "loan_not_active"
    assert all(b.balanced for b in ledger.trial_balance(session, as_of=None, funds=None))


def test_repayment_refusals_name_fields_and_write_nothing(
    client: TestClient,
    auth,
    session: Session,
    loan_id: int,  # type: ignore[no-untyped-def]
) -> None:
    before = session.scalar(select(func.count()).select_from(LoanRepayment))
    r = client.post(
        f"/api/v1/loans/{loan_id}/repayments",
        headers=auth("bank_jsb"),
        json={"paid_on": "2025-09-01", "principal": "1.00"},
    )
    assert r.status_code == 422 and r.json()["errors"][0]["loc"] == ["body", "paid_on"]
    r = client.post(
        f"/api/v1/loans/{loan_id}/repayments",
        headers=auth("bank_jsb"),
        json={"paid_on": "2026-04-01", "principal": "1.00"},
    )
    assert r.status_code == 422 and r.json()["errors"][0]["msg"] == "in the future"
    r = client.post(
        f"/api/v1/loans/{loan_id}/repayments",
        headers=auth("bank_jsb"),
        json={"paid_on": "2026-01-01", "principal": "0.00"},
    )
    assert r.status_code == 422
    other = client.post(
        f"/api/v1/loans/{loan_id}/repayments",
        headers=auth("bank_icbc"),
        json={"paid_on": "2026-01-05", "principal": "1.00"},
    )
    assert other.status_code == 404  # another bank's loan does not exist for it
    assert session.scalar(select(func.count()).select_from(LoanRepayment)) == before


def test_list_shows_positions_without_n_plus_one(client: TestClient, auth, loan_id: int) -> None:  # type: ignore[no-untyped-def]
    items = client.get("/api/v1/loans?as_of=2026-03-31&limit=500", headers=auth("bank_jsb")).json()[
        "items"
    ]
    mine = next(x for x in items if x["id"] == loan_id)
    assert mine["days_past_due"] == 11 and mine["outstanding_principal"] == "3000000.01"
    assert all("outstanding_principal" in x for x in items)
