"""The journal in Beancount syntax (L-5), checked by `bean-check`.

Each entry becomes one Beancount transaction per fund book it touches, so bean-check
proves every book balances on its own (L-1), not just the entry as a whole. Tolerance
is zero: a one-fen error fails the check. Closing `balance` assertions restate every
account's balance as this service computes it, so bean-check re-derives and confirms it.
A posting whose leg names a loan carries it as the posting's metadata (`loan: "123"`),
so a batch's one entry still shows each loan's pair of postings."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from datetime import date, timedelta

from sqlalchemy.orm import Session

from app.kit.money import format_fen
from app.ledger import repository as repo
from app.ledger.postings import LegSpec, beancount_account
from app.models import LedgerEntry


def _quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", " ") + '"'


def export_beancount(session: Session, *, funds: set[str] | None = None) -> Iterator[str]:
    """Yield the export line by line: options, opens, transactions, closing balances."""
    opened: dict[str, date] = {}
    balances: dict[str, int] = defaultdict(int)
    body: list[str] = []
    last_date: date | None = None
    for entry, legs in repo.chain_rows(session):
        per_book: dict[str, list[LegSpec]] = defaultdict(list)
        for _, leg in legs:
            if funds is None or leg.fund_code in funds:
                per_book[leg.fund_code].append(leg)
        for fund, book_legs in sorted(per_book.items()):
            body.extend(_transaction(entry, fund, book_legs))
            for leg in book_legs:
                name = beancount_account(leg.fund_code, leg.kind, leg.counterparty)
                opened.setdefault(name, entry.business_date)
                opened[name] = min(opened[name], entry.business_date)
                balances[name] += leg.amount_fen
        if per_book:
            last_date = max(last_date or entry.business_date, entry.business_date)
    yield 'option "title" "Risk-compensation fund ledger 风险补偿基金台账"\n'
    yield 'option "operating_currency" "CNY"\n'
    yield 'option "inferred_tolerance_default" "CNY:0"\n'
    yield 'option "tolerance_multiplier" "0"\n'
    yield "\n2019-01-01 commodity CNY\n\n"
    for name, opened_on in sorted(opened.items()):
        yield f"{opened_on.isoformat()} open {name} CNY\n"
    yield "\n"
    yield from body
    if last_date is not None:
        check_on = (last_date + timedelta(days=1)).isoformat()
        for name, total in sorted(balances.items()):
            yield f"{check_on} balance {name} {format_fen(total)} CNY\n"


def _transaction(entry: LedgerEntry, fund: str, legs: list[LegSpec]) -> list[str]:
    narration = entry.description or entry.event_type
    lines = [
        f"{entry.business_date.isoformat()} * {_quote(entry.event_type)} {_quote(narration)}\n",
        f"  entry_id: {_quote(str(entry.id))}\n",
        f"  event: {_quote(f'{entry.event_type}:{entry.event_id}')}\n",
        f"  book: {_quote(fund)}\n",
    ]
    if entry.reverses_entry_id is not None:
        lines.append(f"  reverses: {_quote(str(entry.reverses_entry_id))}\n")
    for leg in legs:
        name = beancount_account(leg.fund_code, leg.kind, leg.counterparty)
        lines.append(f"  {name}  {format_fen(leg.amount_fen)} CNY\n")
        if leg.loan_id is not None:  # the posting's own metadata: the loan it concerns
            lines.append(f"    loan: {_quote(str(leg.loan_id))}\n")
    lines.append("\n")
    return lines
