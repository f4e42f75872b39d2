"""SPEC M-6: repayment schedules, payments against them, the bank's reported arrears, and
the rules that count days past due (SKD-C2, XB-C1, SKD-Q3) — on the schedule, not only
at maturity."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from typing import Any

import pytest
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session, sessionmaker

from app.config import Settings
from app.evaluations.service import bank_ratios
from app.loans.arrears import BankView, Instalment, compute
from app.models import Loan, LoanInstalment, LoanInterestPayment
from app.programs.base import get_program
from app.programs.sukedai.policy import QUARTER_END
from tests.fixtures.api import Api, api_fixture
from tests.fixtures.factories import member_enterprise, xb_enterprise

D = date.fromisoformat

# --- the arithmetic, without a database ------------------------------------------------

PLAN = [
    Instalment(D("2026-04-15"), 250_000_00, 8_500_00),
    Instalment(D("2026-07-15"), 250_000_00, 6_400_00),
    Instalment(D("2026-10-15"), 250_000_00, 4_300_00),
    Instalment(D("2027-01-15"), 250_000_00, 2_100_00),
]
LOAN = 1_000_000_00


def test_payment_on_the_due_date_is_on_time_and_arrears_start_the_day_after() -> None:
    """M-6: an instalment due D is in arrears from D + 1; days past due as of T = T − D."""
    on_due = compute(LOAN, PLAN, 250_000_00, 8_500_00, D("2026-04-15"))
    assert (on_due.principal_overdue_fen, on_due.days_past_due()) == (0, 0)
    unpaid_on_due_day = compute(LOAN, PLAN, 0, 0, D("2026-04-15"))
    assert unpaid_on_due_day.days_past_due() == 0
    day_after = compute(LOAN, PLAN, 0, 0, D("2026-04-16"))
    assert (day_after.principal_overdue_since, day_after.days_past_due()) == (D("2026-04-16"), 1)
    assert day_after.principal_overdue_fen == 250_000_00
    assert day_after.interest_overdue_fen == 8_500_00


def test_partial_payments_settle_the_earliest_instalment_first() -> None:
    """M-6: a partial payment leaves the same instalment the earliest unpaid one; a
    payment covering it moves the overdue date to the next unpaid instalment."""
    partly = compute(LOAN, PLAN, 200_000_00, 8_500_00, D("2026-08-01"))
    assert partly.principal_overdue_since == D("2026-04-16")
    assert partly.principal_overdue_fen == 50_000_00 + 250_000_00
    assert partly.days_past_due(interest=False) == 108
    covered = compute(LOAN, PLAN, 250_000_00, 8_500_00, D("2026-08-01"))
    assert covered.principal_overdue_since == D("2026-07-16")
    assert covered.days_past_due(interest=False) == 17
    ahead = compute(LOAN, PLAN, 600_000_00, 14_900_00, D("2026-10-14"))  # paid ahead
    assert ahead.days_past_due() == 0 and ahead.outstanding_fen == 400_000_00


def test_interest_only_arrears_count_only_where_the_rule_counts_interest() -> None:
    """M-6: principal paid, interest not — SKD-C2 (principal) sees 0 days past due, a rule
    counting interest (SKD-Q3, XB-C1) sees the arrears."""
    a = compute(LOAN, PLAN, 500_000_00, 8_500_00, D("2026-10-14"))
    assert a.principal_overdue_fen == 0 and a.interest_overdue_fen == 6_400_00
    assert a.days_past_due(interest=False) == 0
    assert a.days_past_due(interest=True) == 91  # since 2026-07-16
    skd = get_program("SKD").policy
    assert a.days_for(skd.arrears_rule("claim")) == 0
    assert a.days_for(skd.arrears_rule("npl")) == 91
    assert a.days_for(get_program("XB").policy.arrears_rule("claim")) == 91


def test_the_bank_view_counts_where_worse_and_by_the_rule_basis() -> None:
    """M-6: the bank's earlier overdue date wins; a later one does not; an interest-only
    report does not move a principal-only rule; a settled loan is never in arrears."""
    bank = BankView(1, D("2026-06-30"), D("2026-05-01"), 100_00, 0, "bank")
    a = compute(LOAN, PLAN, 250_000_00, 8_500_00, D("2026-07-20"), bank)
    assert (a.own_days(), a.bank_days(), a.days_past_due()) == (5, 81, 81)
    assert a.bank_is_worse
    later = BankView(2, D("2026-07-19"), D("2026-07-18"), 100_00, 0, "bank")
    b = compute(LOAN, PLAN, 250_000_00, 8_500_00, D("2026-07-20"), later)
    assert b.days_past_due() == 5 and not b.bank_is_worse
    interest_only = BankView(3, D("2026-06-30"), D("2026-05-01"), 0, 900_00, "bank")
    c = compute(LOAN, PLAN, 250_000_00, 8_500_00, D("2026-07-20"), interest_only)
    assert (c.days_past_due(interest=False), c.days_past_due(interest=True)) == (5, 81)
    settled = compute(LOAN, PLAN, LOAN, 0, D("2026-07-20"), bank)
    assert settled.days_past_due(interest=False) == 0


# --- through the API, on both databases -------------------------------------------------


@pytest.fixture
def api(  # type: ignore[no-untyped-def]
    settings: Settings, engine: Engine, session_factory: sessionmaker[Session], auth
) -> Iterator[Api]:
    yield from api_fixture(settings, engine, session_factory, auth)


def _quarterly(interest: bool = True) -> list[dict[str, str]]:
    return [
        {
            "due_on": i.due_on.isoformat(),
            "principal": f"{i.principal_fen // 100}.00",
            "interest": f"{i.interest_fen // 100}.00" if interest else "0",
        }
        for i in PLAN
    ]


def _skd(api: Api, session: Session, **extra: Any) -> int:
    code = member_enterprise(session, region="320100").credit_code
    return api.file_loan(  # type: ignore[no-any-return]
        "bank_jsb",
        code,
        "1000000.00",
        "2026-01-15",
        "2027-01-15",
        schedule=_quarterly(),
        **extra,
    )


def _loan(api: Api, loan_id: int, day: str, user: str = "bank_jsb") -> Any:
    return api.call(day, user, "GET", f"/loans/{loan_id}?as_of={day}")


def _pay(api: Api, loan_id: int, day: str, expect: int = 201, **amounts: str) -> Any:
    body = {"paid_on": day, **amounts}
    return api.call(day, "bank_jsb", "POST", f"/loans/{loan_id}/repayments", expect, json=body)


def test_a_schedule_is_checked_with_every_problem_listed(api: Api, session: Session) -> None:
    """M-6: before disbursement, after maturity, out of order, empty, and a principal
    that does not sum — all in one refusal; nothing is written."""
    code = member_enterprise(session, region="320100").credit_code
    bad = [
        {"due_on": "2026-01-15", "principal": "100000.00"},  # the disbursement day
        {"due_on": "2026-06-15", "principal": "0", "interest": "0"},
        {"due_on": "2026-05-15", "principal": "100000.00"},
        {"due_on": "2027-02-15", "principal": "100000.00"},
    ]
    before = session.scalar(select(func.count()).select_from(Loan))
    r = api.file_loan(
        "bank_jsb", code, "1000000.00", "2026-01-15", "2027-01-15", schedule=bad, expect=422
    )
    found = {(tuple(e["loc"]), e["code"]) for e in r["errors"]}
    assert found == {
        (("body", "schedule", 0, "due_on"), "instalment_before_disbursement"),
        (("body", "schedule", 1), "instalment_empty"),
        (("body", "schedule", 2, "due_on"), "schedule_not_in_order"),
        (("body", "schedule", 3, "due_on"), "instalment_after_maturity"),
        (("body", "schedule"), "schedule_principal_mismatch"),
    }
    assert all(e["rule"] == "M-6" for e in r["errors"])
    session.expire_all()
    assert session.scalar(select(func.count()).select_from(Loan)) == before


def test_a_loan_without_a_schedule_has_one_bullet_instalment(api: Api, session: Session) -> None:
    """M-6: the default schedule is the whole principal at maturity, no interest."""
    code = member_enterprise(session, region="320100").credit_code
    loan_id = api.file_loan("bank_jsb", code, "500000.00", "2026-01-15", "2026-07-15")
    plan = _loan(api, loan_id, "2026-07-16")["schedule"]
    assert [(i["due_on"], i["principal"], i["interest"], i["state"]) for i in plan] == [
        ("2026-07-15", "500000.00", "0.00", "overdue")
    ]


def test_amortising_loan_in_arrears_before_maturity(api: Api, session: Session) -> None:
    """M-6, SKD-C2: the second instalment (due 2026-07-15) unpaid — the loan is past due
    from 2026-07-16, months before its 2027-01-15 maturity, and claimable at 90 days."""
    loan_id = _skd(api, session)
    _pay(api, loan_id, "2026-04-15", principal="250000.00", interest="8500.00")  # on the day
    assert _loan(api, loan_id, "2026-07-15")["days_past_due"] == 0
    view = _loan(api, loan_id, "2026-10-13")
    assert (view["days_past_due"], view["overdue_since"]) == (90, "2026-07-16")
    assert view["arrears"]["principal_overdue"] == "250000.00"
    assert view["arrears"]["interest_overdue"] == "6400.00"
    assert view["arrears"]["bucket"] == "90+"
    assert [i["state"] for i in view["schedule"]] == ["paid", "overdue", "due", "due"]
    assert view["outstanding_principal"] == "750000.00"
    api.claim("bank_jsb", loan_id, "2026-10-12", expect=422)  # 89 days
    claim = api.claim("bank_jsb", loan_id, "2026-10-13")
    assert claim["days_past_due"] == 90


def test_partial_payment_keeps_the_earliest_instalment_overdue(api: Api, session: Session) -> None:
    """M-6: a partial payment of the overdue instalment leaves its overdue date; paying
    the rest moves it on; the instalment reads partly settled meanwhile."""
    loan_id = _skd(api, session)
    _pay(api, loan_id, "2026-04-20", principal="200000.00", interest="8500.00")
    view = _loan(api, loan_id, "2026-05-01")
    assert (view["days_past_due"], view["overdue_since"]) == (16, "2026-04-16")
    first = view["schedule"][0]
    assert (first["principal_paid"], first["state"]) == ("200000.00", "overdue")
    _pay(api, loan_id, "2026-05-02", principal="50000.00")
    assert _loan(api, loan_id, "2026-05-03")["days_past_due"] == 0
    assert _loan(api, loan_id, "2026-04-30")["days_past_due"] == 15  # as of an earlier date


def test_interest_only_arrears_skd_claim_rule_against_npl(api: Api, session: Session) -> None:
    """M-6 with SKD's policy: principal paid on time, interest not — no SKD-C2 days past
    due (principal only), but the loan is non-performing for SKD-Q3 (interest counts)."""
    loan_id = _skd(api, session)
    _pay(api, loan_id, "2026-04-15", principal="250000.00", interest="8500.00")
    _pay(api, loan_id, "2026-07-15", principal="250000.00")
    view = _loan(api, loan_id, "2026-10-14")
    assert view["days_past_due"] == 0 and view["overdue_since"] is None
    assert view["arrears"]["interest_overdue_since"] == "2026-07-16"
    assert view["arrears"]["own_days_past_due"] == 91
    assert view["arrears"]["bucket"] == "90+"
    got = bank_ratios(session, "SKD", D("2026-10-14"), QUARTER_END, bank_code="JSB")["JSB"]
    assert got.npl_fen == 500_000_00  # the whole outstanding principal of the loan


def test_interest_beyond_the_schedule_is_refused(api: Api, session: Session) -> None:
    """M-6: interest paid is at most the schedule's interest unpaid; a zero payment is
    refused; nothing is written on a refusal."""
    loan_id = _skd(api, session)
    r = _pay(api, loan_id, "2026-04-15", 422, interest="21300.01")
    assert [e["code"] for e in r["errors"]] == ["interest_overpayment"]
    _pay(api, loan_id, "2026-04-15", 422, principal="0", interest="0")
    assert session.scalar(select(func.count()).select_from(LoanInterestPayment)) == 0
    _pay(api, loan_id, "2026-04-15", interest="21300.00")
    assert _loan(api, loan_id, "2027-02-01")["arrears"]["interest_overdue"] == "0.00"


def test_xb_amortising_instalment_45_days_unpaid(api: Api, session: Session) -> None:
    """XB-C1 counts the loan's arrears, principal or interest: an XB loan over 3 years
    whose third monthly instalment is 100 days unpaid is 100 days past due on 2026-08-06, not 0
    until maturity."""
    code = xb_enterprise(session).credit_code
    months = [f"2026-{m:02d}-28" for m in range(2, 13)]
    schedule = [{"due_on": d, "principal": "10000.00", "interest": "900.00"} for d in months]
    schedule.append({"due_on": "2028-12-28", "principal": "890000.00", "interest": "900.00"})
    loan_id = api.file_loan(
        "bank_lyg",
        code,
        "1000000.00",
        "2026-01-28",
        "2028-12-28",
        program="XB",
        rate=380,
        schedule=schedule,
    )
    for day in ("2026-02-28", "2026-03-28"):
        api.call(
            day,
            "bank_lyg",
            "POST",
            f"/loans/{loan_id}/repayments",
            201,
            json={"paid_on": day, "principal": "10000.00", "interest": "900.00"},
        )
    view = api.call("2026-08-06", "bank_lyg", "GET", f"/loans/{loan_id}?as_of=2026-08-06")
    assert (view["days_past_due"], view["overdue_since"]) == (100, "2026-04-29")
    assert view["arrears"]["principal_overdue"] == "40000.00"  # April to July
    assert get_program("XB").policy.bucket(view["days_past_due"]) == "90+"


def test_bank_reported_arrears_are_kept_and_count_where_worse(api: Api, session: Session) -> None:
    """M-6: the bank's report is history (every one kept); its earlier overdue date
    drives days past due and the claim threshold; a later report replaces it."""
    loan_id = _skd(api, session)
    url = f"/loans/{loan_id}/delinquency"
    body = {
        "as_of": "2026-06-30",
        "overdue_since": "2026-03-01",
        "principal_overdue": "1000.00",
        "interest_overdue": "0",
    }
    view = api.call("2026-07-01", "bank_jsb", "POST", url, 201, json=body)
    assert view["arrears"]["bank_days_past_due"] == 123  # 2026-03-01 .. 2026-07-01
    assert view["days_past_due"] == 123 and view["arrears"]["own_days_past_due"] == 77
    assert view["arrears"]["bank_report"]["source"] == "bank"
    api.claim("bank_jsb", loan_id, "2026-07-01")  # ≥ 90 days by the bank's view (SKD-C2)

    bad = {
        "as_of": "2026-07-02",
        "overdue_since": "2026-07-03",
        "principal_overdue": "0",
        "interest_overdue": "0",
    }
    r = api.call("2026-07-01", "bank_jsb", "POST", url, 422, json=bad)
    assert {tuple(e["loc"]) for e in r["errors"]} == {
        ("body", "as_of"),
        ("body", "overdue_since"),
        ("body", "principal_overdue"),
    }
    api.call("2026-07-01", "bank_icbc", "POST", url, 404, json=body)
    detail = _loan(api, loan_id, "2026-07-01")
    assert [x["as_of"] for x in detail["delinquency_reports"]] == ["2026-06-30"]


def test_skd_q3_npl_counts_instalment_arrears(api: Api, session: Session) -> None:
    """SKD-Q3 with schedules: at 2026-12-31 a loan whose 2026-07-15 instalment is unpaid
    is ≥ 90 days past due though it matures in 2027 — all its outstanding principal is
    non-performing; a performing amortising loan of the bank is not."""
    bad = _skd(api, session)
    _pay(api, bad, "2026-04-15", principal="250000.00", interest="8500.00")
    good = _skd(api, session)
    for day, p, i in (
        ("2026-04-15", "250000.00", "8500.00"),
        ("2026-07-15", "250000.00", "6400.00"),
    ):
        _pay(api, good, day, principal=p, interest=i)
    _pay(api, good, "2026-10-15", principal="250000.00", interest="4300.00")
    got = bank_ratios(session, "SKD", D("2026-12-31"), QUARTER_END, bank_code="JSB")["JSB"]
    assert got.npl_fen == 750_000_00
    # the ratio as of the date before the boundary: 89 days on 2026-10-12
    assert (
        bank_ratios(session, "SKD", D("2026-10-12"), QUARTER_END, bank_code="JSB")["JSB"].npl_fen
        == 0
    )


def test_batch_filing_carries_schedules(api: Api, session: Session) -> None:
    """M-6 in a batch: an item's schedule is stored with its loan; a wrong schedule
    refuses that item alone, its problems under the item's index."""
    codes = [member_enterprise(session, region="320100").credit_code for _ in range(2)]
    base = {
        "program": "SKD",
        "principal": "1000000.00",
        "annual_rate_bp": 340,
        "disbursed_on": "2026-01-15",
        "maturity_on": "2027-01-15",
        "security": "credit",
        "controller_guarantee": True,
    }
    items = [
        base
        | {"enterprise_credit_code": codes[0], "contract_no": "B-S-1", "schedule": _quarterly()},
        base
        | {
            "enterprise_credit_code": codes[1],
            "contract_no": "B-S-2",
            "schedule": _quarterly()[:3],
        },
    ]
    out = api.call("2026-01-15", "bank_jsb", "POST", "/loans/batch", json={"items": items})
    first, second = out["results"]
    assert first["status"] == "accepted" and second["status"] == "refused"
    assert second["errors"][0]["loc"] == ["items", 1, "schedule"]
    assert second["errors"][0]["code"] == "schedule_principal_mismatch"
    stored = session.scalars(
        select(LoanInstalment.due_on)
        .where(LoanInstalment.loan_id == first["loan_id"])
        .order_by(LoanInstalment.seq)
    ).all()
    assert stored == [i.due_on for i in PLAN]


def test_renewal_carries_a_new_schedule(api: Api, session: Session) -> None:
    """SKD-F7 with M-6: the renewal's new loan is filed with its own schedule."""
    code = member_enterprise(session, region="320100").credit_code
    old = api.file_loan("bank_jsb", code, "1000000.00", "2026-01-15", "2026-07-15")
    new_plan = [
        {"due_on": "2026-10-15", "principal": "500000.00", "interest": "8000.00"},
        {"due_on": "2027-01-15", "principal": "500000.00", "interest": "4000.00"},
    ]
    body = {
        "contract_no": "RN-1",
        "principal": "1000000.00",
        "annual_rate_bp": 340,
        "disbursed_on": "2026-07-15",
        "maturity_on": "2027-01-15",
        "security": "credit",
        "controller_guarantee": True,
        "schedule": new_plan,
    }
    new = api.call("2026-07-15", "bank_jsb", "POST", f"/loans/{old}/renewal", 201, json=body)
    view = _loan(api, new["id"], "2026-10-20")
    assert (view["days_past_due"], view["overdue_since"]) == (5, "2026-10-16")
    assert [i["due_on"] for i in view["schedule"]] == ["2026-10-15", "2027-01-15"]


def test_a_loan_repaid_early_is_in_no_arrears_afterwards(api: Api, session: Session) -> None:
    """M-6: once the principal is repaid (early, or by a renewal) no instalment falls due
    any more — its later interest is not arrears, in the loan view and in the NPL sum."""
    loan_id = _skd(api, session)
    _pay(api, loan_id, "2026-04-15", principal="250000.00", interest="8500.00")
    _pay(api, loan_id, "2026-05-20", principal="750000.00")
    view = _loan(api, loan_id, "2026-12-31")
    assert (view["status"], view["days_past_due"], view["arrears"]["own_days_past_due"]) == (
        "repaid",
        0,
        0,
    )
    assert view["arrears"]["interest_overdue"] == "0.00"
    assert {i["state"] for i in view["schedule"]} == {"paid"}
    a = compute(LOAN, PLAN, LOAN, 8_500_00, D("2026-12-31"))
    assert (a.interest_overdue_fen, a.days_past_due()) == (0, 0)


def test_npl_counts_a_loan_without_instalment_rows_as_its_bullet(
    session: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    """M-6: a loan written without instalment rows (outside the service) is read as one
    bullet instalment at maturity by the NPL sum, as by the loan's own position."""
    from app.loans import schedule
    from app.loans.servicing import positions
    from tests.fixtures.factories import skd_loan

    monkeypatch.setattr(schedule, "store", lambda *a, **k: None)
    loan = skd_loan(session, bank="bank_jsb", region="320100", maturity=date(2026, 6, 2))
    assert (
        session.scalar(
            select(func.count())
            .select_from(LoanInstalment)
            .where(LoanInstalment.loan_id == loan.id)
        )
        == 0
    )
    day = D("2026-08-31")  # 90 days past maturity
    assert positions(session, [loan], day)[loan.id].days_past_due == 90
    got = bank_ratios(session, "SKD", day, QUARTER_END, bank_code="JSB")["JSB"]
    assert got.npl_fen == loan.principal_fen
    before = bank_ratios(session, "SKD", day.replace(day=30), QUARTER_END, bank_code="JSB")
    assert before["JSB"].npl_fen == 0
