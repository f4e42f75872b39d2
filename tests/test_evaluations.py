"""Quarter-end evaluation (SKD-Q3)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session, sessionmaker

from app.config import Settings
from app.evaluations.service import BankRatio, quarter_end
from app.kit.clock import Clock
from app.main import create_app
from app.models import Agreement
from app.programs.base import get_program
from app.reference import service as reference
from tests.fixtures.factories import member_enterprise, principal, skd_claim, skd_loan
from tests.fixtures.seed import ZHIXIN


def test_skd_q3_threshold_is_exact_and_inclusive() -> None:
    assert BankRatio(outstanding_fen=100_000_00, npl_fen=3_000_00).breaches(300)  # exactly 3 %
    assert not BankRatio(outstanding_fen=100_000_00, npl_fen=2_999_99).breaches(300)
    assert BankRatio(outstanding_fen=3, npl_fen=1).breaches(300)
    assert not BankRatio(outstanding_fen=0, npl_fen=0).breaches(300)
    assert [quarter_end(2026, q) for q in (1, 2, 3, 4)] == [
        date(2026, 3, 31),
        date(2026, 6, 30),
        date(2026, 9, 30),
        date(2026, 12, 31),
    ]


@pytest.fixture
def on(
    settings: Settings, engine: Engine, session_factory: sessionmaker[Session]
) -> Callable[[date], TestClient]:
    def build(today: date) -> TestClient:
        return TestClient(
            create_app(
                settings, engine=engine, session_factory=session_factory, clock=Clock(today)
            ),
            raise_server_exceptions=False,
        )

    return build


def _bank(result: dict, code: str) -> dict:  # type: ignore[type-arg]
    return next(b for b in result["banks"] if b["bank_code"] == code)


def _q3_loans(session: Session) -> None:
    """江苏银行: 5,000,000 (南京) and 20,000,000 (苏州, SKD3) performing; 工商银行: 8,000,000
    SKD2 due 2026-06-01, claimed and compensated; 建设银行: 1,000,000 due 2026-06-02;
    中国银行 (suspended in the seed, resumed for the filing and suspended again by the
    province): 1,000,000 due 2026-06-16."""
    skd_loan(
        session,
        bank="bank_jsb",
        region="320100",
        principal_yuan="5000000.00",
        annual_rate_bp=345,
        disbursed=date(2026, 1, 12),
        maturity=date(2027, 1, 12),
    )
    skd_loan(
        session,
        bank="bank_jsb",
        enterprise_code=member_enterprise(
            session, region="320500", revenue_yuan=260_000_000
        ).credit_code,
        principal_yuan="20000000.00",
        annual_rate_bp=395,
        security="guaranteed",
        guarantor="苏州信保融资担保有限公司",
        disbursed=date(2026, 2, 2),
        maturity=date(2027, 2, 2),
    )
    icbc = skd_loan(
        session,
        bank="bank_icbc",
        enterprise_code=member_enterprise(
            session, region="320100", revenue_yuan=45_000_000
        ).credit_code,
        principal_yuan="8000000.00",
        annual_rate_bp=375,
        disbursed=date(2025, 12, 1),
        maturity=date(2026, 6, 1),
        filed_on=date(2025, 12, 3),
    )
    skd_claim(session, loan=icbc, status="paid")
    skd_loan(session)  # 建设银行 in 苏州
    boc = session.scalars(select(Agreement).where(Agreement.bank_code == "BOC_JS")).one()
    province = principal(session, "province")
    for action in ("resume", "suspend"):
        reference.change_agreement_status(
            session, agreement_id=boc.id, action=action, reason="province decision", actor=province
        )
        if action == "resume":
            skd_loan(
                session,
                bank="bank_boc",
                region="320706",
                disbursed=date(2026, 3, 16),
                maturity=date(2026, 6, 16),
            )
    session.commit()


def test_skd_q3_suspends_lifts_and_leaves_province_decisions(on, auth, session) -> None:  # type: ignore[no-untyped-def]
    """SKD-Q3 at 2026-09-30: 工商银行's compensated loan and 建设银行's loan are still
    unpaid principal ≥ 90 days past due, so both are suspended, and so is 江苏银行 (with a
    test loan beside its 25,000,000 performing); 中国银行, past due too, was suspended
    already; 江苏银行 repays and is lifted at 2026-12-31, except for an agreement the
    province itself suspended."""
    _q3_loans(session)
    code = member_enterprise(session, region="320100").credit_code
    jsb_loan = on(date(2026, 3, 16)).post(
        "/api/v1/loans",
        headers=auth("bank_jsb"),
        json={
            "program": "SKD",
            "enterprise_credit_code": code,
            "contract_no": "Q3-JSB-1",
            "principal": "1000000.00",
            "annual_rate_bp": 340,
            "disbursed_on": "2026-03-16",
            "maturity_on": "2026-06-16",
            "security": "credit",
            "controller_guarantee": True,
        },
    )
    assert jsb_loan.status_code == 201, jsb_loan.text
    q3 = on(date(2026, 10, 5)).post(
        "/api/v1/evaluations/quarter-end",
        headers=auth("province"),
        json={"program": "SKD", "year": 2026, "quarter": 3},
    )
    assert q3.status_code == 201, q3.text
    icbc = _bank(q3.json(), "ICBC_JS")  # 8,000,000 matured 2026-06-01, compensated but unpaid
    assert (icbc["npl_principal"], icbc["breached"], icbc["decision"]) == (
        "8000000.00",
        True,
        "suspended",
    )
    assert _bank(q3.json(), "BOC_JS")["decision"] == "unchanged"  # already suspended
    assert _bank(q3.json(), "CCB_JS")["decision"] == "suspended"
    jsb = _bank(q3.json(), "JSB")  # 1,000,000 of 26,000,000: 3.84 %
    assert (jsb["npl_principal"], jsb["npl_ratio_bp"], jsb["decision"]) == (
        "1000000.00",
        384,
        "suspended",
    )

    c = on(date(2026, 10, 12))
    refused = c.post(
        "/api/v1/loans",
        headers=auth("bank_icbc"),
        json={
            "program": "SKD",
            "enterprise_credit_code": ZHIXIN,
            "contract_no": "n",
            "principal": "1.00",
            "annual_rate_bp": 300,
            "disbursed_on": "2026-10-09",
            "maturity_on": "2027-10-09",
            "security": "credit",
            "controller_guarantee": True,
        },
    )
    assert "bank_suspended" in {e["code"] for e in refused.json()["errors"]}
    repaid = c.post(
        f"/api/v1/loans/{jsb_loan.json()['id']}/repayments",
        headers=auth("bank_jsb"),
        json={"paid_on": "2026-10-10", "principal": "1000000.00"},
    )
    assert repaid.status_code == 201, repaid.text
    agreements = c.get(
        "/api/v1/agreements?bank_code=JSB&program=SKD", headers=auth("province")
    ).json()["items"]
    suzhou = next(a for a in agreements if a["fund_code"] == "SKD_CITY_320500")
    for action, reason in (("resume", "reviewed"), ("suspend", "province decision: audit")):
        r = c.post(
            f"/api/v1/agreements/{suzhou['id']}/{action}",
            headers=auth("province"),
            json={"reason": reason},
        )
        assert r.status_code == 200, r.text

    q4 = on(date(2027, 1, 5)).post(
        "/api/v1/evaluations/quarter-end",
        headers=auth("province"),
        json={"program": "SKD", "year": 2026, "quarter": 4},
    )
    jsb = _bank(q4.json(), "JSB")
    assert (jsb["breached"], jsb["decision"]) == (False, "lifted")
    assert suzhou["id"] not in jsb["agreement_ids"]  # the province's own decision stays
    statuses = {
        a["fund_code"]: a["status"]
        for a in on(date(2027, 1, 5))
        .get("/api/v1/agreements?bank_code=JSB&program=SKD", headers=auth("regulator"))
        .json()["items"]
    }
    assert statuses == {"SKD_CITY_320100": "active", "SKD_CITY_320500": "suspended"}
    assert _bank(q4.json(), "ICBC_JS")["decision"] == "unchanged"  # still breached
    older = on(date(2027, 1, 5)).post(
        "/api/v1/evaluations/quarter-end",
        headers=auth("province"),
        json={"program": "SKD", "year": 2026, "quarter": 3},
    )
    assert older.status_code == 409 and older.json()["code"] == "quarter_superseded"


def test_quarter_must_have_ended_and_role(client: TestClient, auth) -> None:  # type: ignore[no-untyped-def]
    r = client.post(
        "/api/v1/evaluations/quarter-end",
        headers=auth("province"),
        json={"program": "SKD", "year": 2026, "quarter": 2},
    )
    assert r.status_code == 422 and r.json()["code"] == "quarter_not_ended"
    assert (
        client.post(
            "/api/v1/evaluations/quarter-end",
            headers=auth("bank_jsb"),
            json={"program": "SKD", "year": 2026, "quarter": 1},
        ).status_code
        == 403
    )


def _amortising(session: Session) -> None:
    """M-6 beside the bullet loans: SKD loans with quarterly schedules — one with its
    2026-07-15 instalment unpaid, one paying principal but not interest, one the bank
    reports in arrears since 2026-05-01 though our books have it current."""
    from app.loans import servicing
    from app.loans.schemas import DelinquencyIn
    from tests.fixtures.factories import principal, repayment, skd_loan

    plan = [
        {"due_on": f"2026-{m:02d}-15", "principal": "250000.00", "interest": "8000.00"}
        for m in (4, 7, 10)
    ] + [{"due_on": "2027-01-15", "principal": "250000.00", "interest": "8000.00"}]
    loans = [
        skd_loan(
            session,
            bank="bank_jsb",
            region="320100",
            disbursed=date(2026, 1, 15),
            maturity=date(2027, 1, 15),
            schedule=plan,
        )
        for _ in range(3)
    ]
    for loan in loans:
        repayment(
            session, loan, on=date(2026, 4, 15), principal_fen=250_000_00, interest_fen=8_000_00
        )
    repayment(session, loans[1], on=date(2026, 7, 15), principal_fen=250_000_00)
    servicing.report_delinquency(
        session,
        loan_id=loans[2].id,
        data=DelinquencyIn(
            as_of=date(2026, 6, 30),
            overdue_since=date(2026, 5, 1),
            principal_overdue="1000.00",  # type: ignore[arg-type]
            interest_overdue="0",  # type: ignore[arg-type]
        ),
        actor=principal(session, "bank_jsb"),
        today=date(2026, 6, 30),
    )
    session.commit()


def test_npl_aggregate_in_sql_matches_loan_positions(session: Session) -> None:  # type: ignore[no-untyped-def]
    """SKD-Q3's ratio is summed in the database; it must equal the sum of each loan's
    position (servicing, SPEC M-6: schedules, interest arrears, the bank's view where
    worse) on both programmes, on dates around maturities, instalments and repayments."""
    from collections import defaultdict

    from tests.fixtures.factories import loan_book

    loan_book(session)
    _amortising(session)

    from sqlalchemy import select

    from app.evaluations.service import bank_ratios
    from app.loans import servicing
    from app.models import Loan
    from app.programs.sukedai.policy import QUARTER_END

    for program in ("SKD", "XB"):
        for day in (
            date(2025, 12, 31),
            date(2026, 3, 31),
            date(2026, 6, 30),
            date(2026, 7, 29),
            date(2026, 7, 30),
            date(2026, 9, 8),
            date(2026, 10, 13),
            date(2026, 10, 14),
            date(2026, 12, 31),
        ):
            loans = list(
                session.scalars(
                    select(Loan).where(Loan.program == program, Loan.disbursed_on <= day)
                )
            )
            at = servicing.positions(session, loans, day)
            npl = get_program(program).policy.arrears_rule("npl")
            want: dict[str, list[int]] = defaultdict(lambda: [0, 0])
            for loan in loans:
                want[loan.bank_code][0] += at[loan.id].outstanding_fen
                if at[loan.id].arrears.days_for(npl) >= 90:  # type: ignore[union-attr]
                    want[loan.bank_code][1] += at[loan.id].outstanding_fen
            got = bank_ratios(session, program, day, QUARTER_END)
            assert {b: [r.outstanding_fen, r.npl_fen] for b, r in got.items()} == dict(want)
            assert any(r.npl_fen for r in got.values()) or day < date(2026, 6, 30)
