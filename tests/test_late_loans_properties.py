"""Property test (hypothesis), on both databases: the NPL set in SQL (`late_loans`, which
reads the instalments kept late by the database, migration 0024) equals the loan's own
arrears computed in Python (`arrears_of` / `compute`, SPEC M-6) — for random schedules,
principal and interest payments dated out of order, payments and bank reports recorded
after a report's cut-off, bank reports, rules and dates."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from sqlalchemy import ColumnElement, select
from sqlalchemy.orm import Session

from app.loans.arrears import (
    BankView,
    Instalment,
    arrears_of,
    compute,
    late_loans,
    schedules,
)
from app.models import (
    DelinquencyReport,
    Loan,
    LoanInterestPayment,
    LoanLateInstalment,
    LoanRepayment,
    User,
)
from app.programs.base import get_program
from tests.fixtures.factories import skd_loan

DISBURSED = date(2026, 1, 5)
MATURITY = date(2026, 12, 5)
PRINCIPAL = 1_000_000_00
SPAN = (MATURITY - DISBURSED).days
STAMP = datetime(2027, 6, 1, 8, 0, tzinfo=UTC)  # recording times, after the filing
CUT = STAMP + timedelta(hours=1)  # a report's cut-off: rows stamped later do not count


@dataclass(frozen=True)
class AtCut:
    """The `recorded` protocol of a report as of `CUT` (`app.reports.quarterly.Cutoff`)."""

    def by(self, model: Any) -> ColumnElement[bool]:
        return model.created_at <= CUT  # type: ignore[no-any-return]

    def after(self, model: Any) -> ColumnElement[bool]:
        return model.created_at > CUT  # type: ignore[no-any-return]


@st.composite
def schedule_of(draw: st.DrawFn) -> list[tuple[int, int, int]] | None:
    """(day after disbursement, principal, interest) per instalment, or None (bullet)."""
    if draw(st.booleans()):
        return None
    n = draw(st.integers(1, 6))
    # on a 10-day grid, so payments fall on due dates and on the days a rule's line moves
    days = sorted(
        draw(st.sets(st.integers(1, SPAN // 10).map(lambda d: d * 10), min_size=n, max_size=n))
    )
    days[-1] = SPAN  # the last instalment at maturity
    days = sorted(set(days))
    k = len(days) - 1
    cuts = sorted(draw(st.lists(st.integers(0, PRINCIPAL // 100), min_size=k, max_size=k)))
    bounds = [0, *(c * 100 for c in cuts), PRINCIPAL]
    out = []
    for k, day in enumerate(days):
        p = bounds[k + 1] - bounds[k]
        i = draw(st.sampled_from([0, 0, 1_000_00, 2_500_00]))
        if p + i == 0:
            i = 1_000_00
        out.append((day, p, i))
    return out


payments = st.lists(  # (day after disbursement, share of what is left in ‰, recorded late)
    st.tuples(st.integers(0, 50).map(lambda d: d * 10), st.integers(1, 1000), st.booleans()),
    max_size=6,
)
reports = st.lists(  # (as-of day, days in arrears or None, principal?, interest?, late)
    st.tuples(
        st.integers(1, SPAN + 200),
        st.none() | st.integers(1, 200),
        st.booleans(),
        st.booleans(),
        st.booleans(),
    ),
    max_size=3,
)


def _expected(
    session: Session, loan: Loan, on: date, rule: Any, cut: bool
) -> bool:  # the loan's own arrears in Python
    if not cut:
        got = arrears_of(session, [loan], on)[loan.id]
        return got.days_for(rule) >= rule.days
    if on < loan.disbursed_on:
        return False
    plan = schedules(session, [loan.id]).get(loan.id) or [
        Instalment(loan.maturity_on, loan.principal_fen, 0)
    ]
    p = sum(
        r.principal_fen
        for r in session.scalars(select(LoanRepayment).where(LoanRepayment.loan_id == loan.id))
        if r.paid_on <= on and r.created_at.replace(tzinfo=UTC) <= CUT
    )
    i = sum(
        r.interest_fen
        for r in session.scalars(
            select(LoanInterestPayment).where(LoanInterestPayment.loan_id == loan.id)
        )
        if r.paid_on <= on and r.created_at.replace(tzinfo=UTC) <= CUT
    )
    seen = [
        r
        for r in session.scalars(
            select(DelinquencyReport).where(DelinquencyReport.loan_id == loan.id)
        )
        if r.as_of <= on and r.created_at.replace(tzinfo=UTC) <= CUT
    ]
    bank = None
    if seen:
        r = max(seen, key=lambda x: (x.as_of, x.id))
        bank = BankView(
            r.id,
            r.as_of,
            r.overdue_since,
            r.principal_overdue_fen,
            r.interest_overdue_fen,
            r.source,
        )
    got = compute(loan.principal_fen, plan, p, i, on, bank)
    return got.days_for(rule) >= rule.days


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    plan=schedule_of(),
    paid=payments,
    interest=payments,
    banks=reports,
    days=st.lists(st.integers(0, SPAN + 260), min_size=3, max_size=5),
    extra=st.integers(1, 120),
)
@example(  # the first instalment paid in full late by a partial payment, then interest
    plan=[(100, 300_000_00, 1_000_00), (SPAN, 700_000_00, 0)],
    paid=[(250, 500, False), (300, 10, True)],
    interest=[(260, 1000, False)],
    banks=[],
    days=[0, 0, 0],
    extra=5,
)
def test_m6_late_loans_in_sql_equal_the_arrears_computed_per_loan(
    session: Session,
    plan: list[tuple[int, int, int]] | None,
    paid: list[tuple[int, int, bool]],
    interest: list[tuple[int, int, bool]],
    banks: list[tuple[int, int | None, bool, bool, bool]],
    days: list[int],
    extra: int,
) -> None:
    """M-6, SKD-Q3, XB-C1: for every date and rule (principal only, or principal and
    interest; 90 days, 1 day, a random number), with or without a report's cut-off, the
    loan is in `late_loans` exactly when the arrears computed in Python from its schedule,
    its payments and its bank's latest report make it that late — payments settling the
    earliest instalments first whatever order they were recorded in."""
    terms: dict[str, Any] = {}
    if plan is not None:
        terms["schedule"] = [
            {
                "due_on": (DISBURSED + timedelta(days=d)).isoformat(),
                "principal": f"{p / 100:.2f}",
                "interest": f"{i / 100:.2f}",
            }
            for d, p, i in plan
        ]
    loan = skd_loan(
        session,
        bank="bank_jsb",
        region="320100",
        principal_yuan=f"{PRINCIPAL / 100:.2f}",
        disbursed=DISBURSED,
        maturity=MATURITY,
        **terms,
    )
    user = session.scalars(select(User).where(User.username == "bank_jsb")).one()
    total_interest = sum(i for _, _, i in plan) if plan else 0
    left, interest_left = PRINCIPAL, total_interest
    for n, (day, share, late) in enumerate(paid):
        fen = max(1, left * share // 1000)
        if left <= 0:
            break
        fen = min(fen, left)
        left -= fen
        session.add(
            LoanRepayment(
                loan_id=loan.id,
                paid_on=DISBURSED + timedelta(days=day),
                principal_fen=fen,
                recorded_by_id=user.id,
                created_at=STAMP + timedelta(minutes=n + (120 if late else 0)),
            )
        )
        session.flush()
    for n, (day, share, late) in enumerate(interest):
        if interest_left <= 0:
            break
        fen = min(max(1, interest_left * share // 1000), interest_left)
        interest_left -= fen
        session.add(
            LoanInterestPayment(
                loan_id=loan.id,
                paid_on=DISBURSED + timedelta(days=day),
                interest_fen=fen,
                recorded_by_id=user.id,
                created_at=STAMP + timedelta(minutes=n + (120 if late else 0)),
            )
        )
        session.flush()
    for n, (day, behind, principal, with_interest, late) in enumerate(banks):
        as_of = DISBURSED + timedelta(days=day)
        since = None
        if behind is not None and (principal or with_interest):
            since = max(as_of - timedelta(days=behind - 1), DISBURSED + timedelta(days=1))
        session.add(
            DelinquencyReport(
                loan_id=loan.id,
                as_of=as_of,
                overdue_since=since,
                principal_overdue_fen=1_000_00 if since and principal else 0,
                interest_overdue_fen=500_00 if since and with_interest else 0,
                source="bank",
                reported_by_id=user.id,
                created_at=STAMP + timedelta(minutes=n + (120 if late else 0)),
            )
        )
    session.commit()
    session.refresh(loan)
    policy = get_program("SKD").policy
    rules = [
        policy.arrears_rule("npl"),
        policy.arrears_rule("claim"),
        replace(policy.arrears_rule("npl"), days=1),
        replace(policy.arrears_rule("claim"), days=extra),
    ]
    due = [d for d, _, _ in plan] if plan else [SPAN]
    paid_days = [d for d, _, _ in paid + interest]
    for rule in rules:
        # random dates, the payment dates, and the days around each instalment's line
        offsets = {*(d - 5 for d in days), *paid_days}
        offsets |= {d + rule.days + k for d in due for k in (-1, 0, 1)}
        for on in sorted(DISBURSED + timedelta(days=o) for o in offsets):
            for cut in (False, True):
                ids = late_loans(
                    "SKD",
                    on,
                    rule,
                    where=(Loan.id == loan.id,),
                    recorded=AtCut() if cut else None,
                )
                got = loan.id in set(session.scalars(ids))
                want = _expected(session, loan, on, rule, cut)
                assert got == want, (on, rule.rule, rule.days, rule.interest, cut)


def test_m6_the_kept_instalments_follow_every_payment(session: Session) -> None:
    """M-6: an instalment paid late keeps the date it was paid in full; one paid on time
    has no row; payments recorded out of date order settle the earliest first."""
    plan = [
        {"due_on": "2026-04-05", "principal": "300000.00", "interest": "1000.00"},
        {"due_on": "2026-08-05", "principal": "300000.00", "interest": "0"},
        {"due_on": "2026-12-05", "principal": "400000.00", "interest": "1000.00"},
    ]
    loan = skd_loan(
        session,
        bank="bank_jsb",
        region="320100",
        principal_yuan="1000000.00",
        disbursed=DISBURSED,
        maturity=MATURITY,
        schedule=plan,
    )
    user = session.scalars(select(User).where(User.username == "bank_jsb")).one()

    def kept() -> list[tuple[int, date | None, date | None]]:
        rows = session.scalars(
            select(LoanLateInstalment)
            .where(LoanLateInstalment.loan_id == loan.id)
            .order_by(LoanLateInstalment.seq)
        )
        return [(r.seq, r.principal_paid_on, r.interest_paid_on) for r in rows]

    assert kept() == [(1, None, None), (2, None, None), (3, None, None)]
    # the second instalment's principal paid first (by date), then the first's, late
    for on, fen in ((date(2026, 8, 1), 300_000_00), (date(2026, 5, 1), 300_000_00)):
        session.add(
            LoanRepayment(loan_id=loan.id, paid_on=on, principal_fen=fen, recorded_by_id=user.id)
        )
        session.flush()
    session.add(
        LoanInterestPayment(
            loan_id=loan.id, paid_on=date(2026, 4, 5), interest_fen=1_000_00, recorded_by_id=user.id
        )
    )
    session.commit()
    # 1: its principal paid in full on 05-01 (the payment dated first settles it), late;
    # its interest on time. 2: principal and interest with the first's paid by 08-01, on
    # time: no row. 3: nothing of it paid yet
    assert kept() == [(1, date(2026, 5, 1), date(2026, 4, 5)), (3, None, None)]


def test_m6_a_loan_without_instalment_rows_is_its_bullet_also_before_a_cut_off(
    session: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    """M-6: a loan written without instalment rows is kept as its bullet at maturity
    (seq 0); repaid in full by a repayment recorded after a report's cut-off, it is
    settled for the books of today but still 90 days past due as of the cut-off."""
    from app.loans import schedule

    monkeypatch.setattr(schedule, "store", lambda *a, **k: None)
    loan = skd_loan(session, bank="bank_jsb", region="320100", maturity=date(2026, 6, 2))
    rows = session.scalars(select(LoanLateInstalment).where(LoanLateInstalment.loan_id == loan.id))
    assert [(r.seq, r.due_on, r.principal_paid_on) for r in rows] == [(0, date(2026, 6, 2), None)]
    user = session.scalars(select(User).where(User.username == "bank_jsb")).one()
    session.add(
        LoanRepayment(
            loan_id=loan.id,
            paid_on=date(2026, 8, 1),
            principal_fen=loan.principal_fen,
            recorded_by_id=user.id,
            created_at=CUT + timedelta(days=1),
        )
    )
    session.commit()
    rule = get_program("SKD").policy.arrears_rule("claim")
    on = date(2026, 8, 31)  # 90 days past maturity

    def late(recorded: AtCut | None) -> bool:
        ids = late_loans("SKD", on, rule, where=(Loan.id == loan.id,), recorded=recorded)
        return loan.id in set(session.scalars(ids))

    assert not late(None)
    assert late(AtCut())
    assert not late_loans_before(session, loan.id, date(2026, 8, 30), rule)


def late_loans_before(session: Session, loan_id: int, on: date, rule: Any) -> bool:
    ids = late_loans("SKD", on, rule, where=(Loan.id == loan_id,), recorded=AtCut())
    return loan_id in set(session.scalars(ids))
