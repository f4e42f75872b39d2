"""Property tests (hypothesis) over random sequences of postings and reversals (L-1, L-3):
every book always sums to zero, a balance as of D is the sum of its legs up to D, and
the hash chain verifies."""

from __future__ import annotations

from collections import defaultdict
from datetime import date, timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy.orm import Session

from app.ledger import service as ledger
from app.ledger.postings import LegSpec, credit, debit
from tests.fixtures.ledger import NOW, post

CITY, PROV = "SKD_CITY_320100", "SKD_PROV"
ACCOUNTS = {
    CITY: [
        ("cash", None),
        ("contributed_capital", "FINANCE_320100"),
        ("compensation_expense", "JSB"),
        ("payable_bank", "JSB"),
        ("recovery_income", "ICBC_JS"),
    ],
    PROV: [
        ("cash", None),
        ("contributed_capital", "JS_FINANCE"),
        ("compensation_expense", "JSB"),
        ("payable_bank", "JSB"),
    ],
}
START = date(2027, 1, 1)  # after the seeded entries, so deltas are clean
DAYS = 40

amounts = st.integers(min_value=1, max_value=10**12)
fund = st.sampled_from([CITY, PROV])
pair = st.tuples(st.integers(0, 3), st.integers(1, 4)).filter(lambda p: p[0] != p[1])

post_op = st.tuples(st.just("post"), fund, pair, amounts, st.integers(0, DAYS), st.booleans())
reverse_op = st.tuples(st.just("reverse"), st.integers(0, 50), st.integers(0, 5))
ops = st.lists(st.one_of(post_op, post_op, reverse_op), min_size=1, max_size=25)


def _legs(fund_code: str, p: tuple[int, int], amount: int, cross: bool) -> list[LegSpec]:
    accounts = ACCOUNTS[fund_code]
    a, b = accounts[p[0] % len(accounts)], accounts[p[1] % len(accounts)]
    legs = [debit(fund_code, a[0], amount, a[1]), credit(fund_code, b[0], amount, b[1])]
    if cross:  # a cross-fund movement, balanced in each book by due-to / due-from
        other = PROV if fund_code == CITY else CITY
        legs += [
            debit(fund_code, "due_from_fund", amount, other),
            credit(fund_code, "cash", amount),
            debit(other, "cash", amount),
            credit(other, "due_to_fund", amount, fund_code),
        ]
    return legs


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(sequence=ops)
def test_l1_l3_random_postings_and_reversals(session: Session, sequence: list[tuple]) -> None:  # type: ignore[type-arg]
    nested = session.begin_nested()
    try:
        baseline = {
            d: dict(_all_balances(session, START + timedelta(days=d)))
            for d in (0, DAYS // 2, DAYS + 10)
        }
        model: list[tuple[date, str, int]] = []  # (business date, account code, amount)
        posted: list[tuple[int, date, list[LegSpec], bool]] = []
        for op in sequence:
            if op[0] == "post":
                _, f, p, amount, day, cross = op
                legs = _legs(f, p, amount, cross)
                on = START + timedelta(days=day)
                entry = post(session, legs, on=on)
                posted.append((entry.id, on, legs, False))
                model += [(on, g.account_code, g.amount_fen) for g in legs]
            else:
                _, index, later = op
                if not posted:
                    continue
                entry_id, on, legs, reversed_ = posted[index % len(posted)]
                if reversed_:
                    continue
                when = on + timedelta(days=later)
                ledger.reverse(
                    session, entry_id=entry_id, business_date=when, reason="prop", now=NOW
                )
                posted[index % len(posted)] = (entry_id, on, legs, True)
                model += [(when, g.account_code, -g.amount_fen) for g in legs]

        for book in ledger.trial_balance(session, as_of=None, funds=None):
            assert book.balanced, book.fund_code
        for d, before in baseline.items():
            as_of = START + timedelta(days=d)
            expected: dict[str, int] = defaultdict(int)
            for on, code, amount in model:
                if on <= as_of:
                    expected[code] += amount
            after = dict(_all_balances(session, as_of))
            for code in set(after) | set(expected):
                assert after.get(code, 0) - before.get(code, 0) == expected.get(code, 0), (
                    code,
                    as_of,
                )
        assert ledger.verify(session).ok
    finally:
        nested.rollback()


def _all_balances(session: Session, as_of: date) -> list[tuple[str, int]]:
    return [(a.code, t) for a, t in ledger.repo.balances(session, as_of=as_of)]
