"""Ordinary traffic never answers 5xx (PostgreSQL, real parallel connections): province
reviews (SKD-Q1 cap under the bank's lock), city payments, province reimbursements, XB
committee approvals, capital contributions and SKD and XB filings, all at once against
one app. Each takes fund, bank and chain-head locks; a deadlock or serialization failure
between them is retried at the request boundary (app/kit/uow.py) and must never reach
the client as a 500 (nor, under this load, as a 503)."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterator
from datetime import date, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from app.config import Settings
from app.kit.clock import Clock
from app.ledger import service as ledger
from app.main import create_app
from tests.conftest import token_for
from tests.fixtures.factories import member_enterprise, skd_claim, xb_claim, xb_enterprise

TODAY = date(2026, 10, 15)
PER_KIND = 5


@pytest.fixture(scope="module")
def traffic(pg_engine: Engine) -> Iterator[dict[str, Any]]:
    """Claims waiting at each money-moving step, enterprises to file for, tokens."""
    with Session(pg_engine) as s:
        waiting = {
            "province_review": [skd_claim(s, status="city_approved").id for _ in range(PER_KIND)],
            "city_payment": [skd_claim(s, status="approved").id for _ in range(PER_KIND)],
            "reimbursement": [skd_claim(s, status="paid").id for _ in range(PER_KIND)],
            "committee": [xb_claim(s, status="manager_reviewed").id for _ in range(PER_KIND)],
        }
        skd_codes = [member_enterprise(s, region="320500").credit_code for _ in range(PER_KIND)]
        xb_codes = [xb_enterprise(s).credit_code for _ in range(PER_KIND)]
    settings = Settings(database_url="sqlite://", app_env="demo", app_today=TODAY)
    with Session(pg_engine) as s:
        tokens = {
            u: {"Authorization": f"Bearer {token_for(settings, s, u)}"}
            for u in (
                "province",
                "fund_suzhou",
                "fund_province",
                "committee",
                "admin",
                "bank_ccb",
                "bank_lyg",
            )
        }
    yield {
        "settings": settings,
        "waiting": waiting,
        "skd_codes": skd_codes,
        "xb_codes": xb_codes,
        "tokens": tokens,
    }


def _calls(t: dict[str, Any]) -> list[tuple[str, str, dict[str, Any], dict[str, str]]]:
    tok, w, day = t["tokens"], t["waiting"], TODAY.isoformat()
    calls = []
    for cid in w["province_review"]:
        body = {"decision": "approve", "comment": "复审通过"}
        calls.append(("province review", f"/claims/{cid}/province-review", body, tok["province"]))
    for cid in w["city_payment"]:
        body = {"paid_on": day}
        calls.append(("city payment", f"/claims/{cid}/city-payment", body, tok["fund_suzhou"]))
    for cid in w["reimbursement"]:
        body = {"paid_on": day}
        path = f"/claims/{cid}/province-reimbursement"
        calls.append(("reimbursement", path, body, tok["fund_province"]))
    for cid in w["committee"]:
        body = {"decision": "approve", "comment": "会审同意"}
        calls.append(("XB approval", f"/claims/{cid}/committee-decision", body, tok["committee"]))
    for i in range(PER_KIND):
        body = {"contributor": "FINANCE_320500", "amount": f"{1000 + i}.00", "paid_on": day}
        path = "/funds/SKD_CITY_320500/contributions"
        calls.append(("contribution", path, body, tok["admin"]))
    for i, code in enumerate(t["skd_codes"]):
        body = {
            "program": "SKD",
            "enterprise_credit_code": code,
            "contract_no": f"MIX-SKD-{i}",
            "principal": "2000000.00",
            "annual_rate_bp": 340,
            "disbursed_on": day,
            "maturity_on": (TODAY + timedelta(days=365)).isoformat(),
            "security": "credit",
            "controller_guarantee": True,
        }
        calls.append(("SKD filing", "/loans", body, tok["bank_ccb"]))
    for i, code in enumerate(t["xb_codes"]):
        body = {
            "program": "XB",
            "enterprise_credit_code": code,
            "contract_no": f"MIX-XB-{i}",
            "principal": "1000000.00",
            "annual_rate_bp": 380,
            "disbursed_on": day,
            "maturity_on": (TODAY + timedelta(days=180)).isoformat(),
            "security": "credit",
            "controller_guarantee": True,
        }
        calls.append(("XB filing", "/loans", body, tok["bank_lyg"]))
    return calls


@pytest.mark.xdist_group("pg-concurrency")
def test_mixed_money_moving_load_never_answers_5xx(
    pg_engine: Engine, traffic: dict[str, Any]
) -> None:
    app = create_app(traffic["settings"], engine=pg_engine, clock=Clock(TODAY))
    calls = _calls(traffic)
    outcomes: dict[str, Counter[str]] = {}
    failures: list[str] = []
    lock = threading.Lock()
    barrier = threading.Barrier(len(calls))

    with TestClient(app, raise_server_exceptions=False) as client:

        def fire(kind: str, path: str, body: dict[str, Any], headers: dict[str, str]) -> None:
            barrier.wait()
            r = client.post(f"/api/v1{path}", json=body, headers=headers)
            code = str(r.status_code) if r.status_code < 400 else f"{r.status_code} {r.json()}"
            with lock:
                outcomes.setdefault(kind, Counter())[code.split(" ")[0]] += 1
                if r.status_code >= 400:
                    failures.append(f"{kind} {path}: {code[:300]}")

        threads = [threading.Thread(target=fire, args=c) for c in calls]
        for th in threads:
            th.start()
        for th in threads:
            th.join()

    served = sum(sum(c.values()) for c in outcomes.values())
    assert served == len(calls)
    fives = [f for f in failures if f.split(": ", 1)[1].startswith("5")]
    assert fives == [], "\n".join(fives)
    # every kind of traffic got through; refusals, if any, are business rules (4xx)
    for kind, counts in outcomes.items():
        assert counts.get("200", 0) + counts.get("201", 0) >= 1, (kind, counts, failures)
    with Session(pg_engine) as s:
        report = ledger.verify(s)
    assert report.ok, report.first_break
