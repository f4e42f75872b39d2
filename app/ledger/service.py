"""The ledger's use cases. `post` is the only writer of journal entries (L-1, L-4)."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.errors import Conflict, NotFound, Unprocessable, Violation
from app.ledger import repository as repo
from app.ledger.postings import (
    CHART,
    GENESIS_HASH,
    LedgerRuleError,
    LegSpec,
    entry_hash,
    negate,
    validate_legs,
)
from app.models import Bank, Fund, FundContributor, LedgerAccount, LedgerEntry, LedgerLeg


class UnbalancedEntry(Unprocessable):
    code = "unbalanced_entry"


class LedgerKeyReused(Conflict):
    code = "ledger_key_reused"


class AlreadyReversed(Conflict):
    code = "already_reversed"


def _refuse(problems: list[str]) -> UnbalancedEntry:
    return UnbalancedEntry(
        "the entry is not a balanced double entry (L-1)",
        [Violation(msg=p, loc=("legs",), code="unbalanced_entry", rule="L-1") for p in problems],
        rule="L-1",
    )


def _same_content(entry: LedgerEntry, legs: Sequence[tuple[str, int]], session: Session) -> bool:
    stored = repo.legs_of(session, [entry.id])[entry.id]
    return Counter((a.code, g.amount_fen) for g, a in stored) == Counter(legs)


def _check_counterparty(session: Session, leg: LegSpec) -> str | None:
    kind = CHART[leg.kind].counterparty
    cp = leg.counterparty
    if kind == "bank" and session.get(Bank, cp) is None:
        return f"unknown bank {cp!r}"
    if kind == "fund" and session.get(Fund, cp) is None:
        return f"unknown fund {cp!r}"
    if kind == "contributor":
        found = session.scalars(
            select(FundContributor.id).where(
                FundContributor.fund_code == leg.fund_code, FundContributor.code == cp
            )
        ).first()
        if found is None:
            return f"{cp!r} is not a contributor of fund {leg.fund_code}"
    return None


def _ensure_accounts(session: Session, legs: Sequence[LegSpec]) -> dict[str, LedgerAccount]:
    codes = {leg.account_code for leg in legs}
    accounts = repo.accounts_by_code(session, codes)
    missing = [leg for leg in legs if leg.account_code not in accounts]
    if not missing:
        return accounts
    funds = repo.existing_funds(session, {leg.fund_code for leg in missing})
    problems = []
    for leg in missing:
        if leg.account_code in accounts:
            continue
        if leg.fund_code not in funds:
            problems.append(f"unknown fund {leg.fund_code!r}")
            continue
        if (why := _check_counterparty(session, leg)) is not None:
            problems.append(why)
            continue
        spec = CHART[leg.kind]
        account = LedgerAccount(
            code=leg.account_code,
            fund_code=leg.fund_code,
            kind=leg.kind,
            counterparty=leg.counterparty,
            type=spec.type,
            normal_side=spec.normal_side,
            name=spec.name_zh + (f" · {leg.counterparty}" if leg.counterparty else ""),
        )
        session.add(account)
        accounts[leg.account_code] = account
    if problems:
        raise _refuse(sorted(set(problems)))
    session.flush()
    return accounts


def post(
    session: Session,
    *,
    event_type: str,
    event_id: str,
    idempotency_key: str,
    business_date: date,
    legs: Sequence[LegSpec],
    now: datetime,
    description: str = "",
    actor_id: int | None = None,
    reverses_entry_id: int | None = None,
) -> LedgerEntry:
    """Post one balanced entry. Re-posting the same key with the same legs returns the
    first entry; the same key with other legs is a conflict. Posting takes the chain
    head's lock, so entries form one gapless, hash-linked sequence."""
    try:
        validate_legs(legs)
    except LedgerRuleError as exc:
        raise _refuse(exc.problems) from None
    head = repo.lock_head(session)
    existing = repo.entry_by_key(session, idempotency_key)
    if existing is not None:
        if existing.event_type == event_type and _same_content(
            existing, [(g.account_code, g.amount_fen) for g in legs], session
        ):
            return existing
        raise LedgerKeyReused(
            f"ledger idempotency key {idempotency_key!r} was used for another entry",
            [Violation(msg="key reused", loc=("idempotency_key",), rule="L-4")],
            rule="L-4",
        )
    accounts = _ensure_accounts(session, legs)
    seq = head.last_seq + 1
    digest = entry_hash(
        prev_hash=head.last_hash,
        seq=seq,
        event_type=event_type,
        event_id=event_id,
        idempotency_key=idempotency_key,
        business_date=business_date,
        recorded_at=now,
        description=description,
        reverses_entry_id=reverses_entry_id,
        legs=[(g.account_code, g.amount_fen) for g in legs],
    )
    entry = LedgerEntry(
        seq=seq,
        event_type=event_type,
        event_id=event_id,
        idempotency_key=idempotency_key,
        business_date=business_date,
        recorded_at=now,
        description=description,
        reverses_entry_id=reverses_entry_id,
        actor_id=actor_id,
        prev_hash=head.last_hash,
        hash=digest,
    )
    session.add(entry)
    session.flush()
    session.add_all(
        LedgerLeg(
            entry_id=entry.id,
            account_id=accounts[g.account_code].id,
            fund_code=g.fund_code,
            amount_fen=g.amount_fen,
        )
        for g in legs
    )
    head.last_seq, head.last_hash = seq, digest
    session.flush()
    return entry


def entry_legs(session: Session, entry: LedgerEntry) -> list[LegSpec]:
    return [
        LegSpec(a.fund_code, a.kind, g.amount_fen, a.counterparty)
        for g, a in repo.legs_of(session, [entry.id])[entry.id]
    ]


def reverse(
    session: Session,
    *,
    entry_id: int,
    business_date: date,
    reason: str,
    now: datetime,
    actor_id: int | None = None,
    idempotency_key: str | None = None,
) -> LedgerEntry:
    """Correct an entry by posting its exact opposite, linked to it (L-2)."""
    original = session.get(LedgerEntry, entry_id)
    if original is None:
        raise NotFound(f"ledger entry {entry_id} not found")
    if original.reverses_entry_id is not None:
        raise Conflict(
            f"entry {entry_id} is itself a reversal; post a new entry instead",
            code="cannot_reverse_reversal",
        )
    if business_date < original.business_date:
        raise Unprocessable(
            "a reversal cannot be dated before the entry it reverses",
            [
                Violation(
                    msg=f"must be on or after {original.business_date.isoformat()}",
                    loc=("body", "business_date"),
                )
            ],
            code="reversal_before_original",
        )
    key = idempotency_key or f"reversal:{entry_id}"
    prior = repo.entry_reversing(session, entry_id)
    if prior is not None and prior.idempotency_key != key:
        raise AlreadyReversed(f"entry {entry_id} was already reversed by entry {prior.id}")
    return post(
        session,
        event_type=original.event_type,
        event_id=original.event_id,
        idempotency_key=key,
        business_date=business_date,
        legs=negate(entry_legs(session, original)),
        now=now,
        description=f"reversal of entry {entry_id}: {reason}",
        actor_id=actor_id,
        reverses_entry_id=entry_id,
    )


# --- reads ---------------------------------------------------------------------------
def account_balance(session: Session, code: str, *, as_of: date | None) -> int:
    account = repo.account_by_code(session, code)
    if account is None:
        raise NotFound(f"ledger account {code!r} not found")
    ((_, total),) = repo.balances(session, as_of=as_of, account_ids=[account.id])
    return total


@dataclass
class StatementLine:
    entry: LedgerEntry
    amount_fen: int
    running_fen: int


@dataclass
class Statement:
    account: LedgerAccount
    opening_fen: int
    closing_fen: int
    lines: list[StatementLine] = field(default_factory=list)


def statement(
    session: Session, account: LedgerAccount, *, since: date | None, until: date | None
) -> Statement:
    opening = repo.sum_before(session, account.id, since) if since else 0
    running = opening
    lines = []
    for entry, amount in repo.statement_lines(session, account.id, since=since, until=until):
        running += amount
        lines.append(StatementLine(entry=entry, amount_fen=amount, running_fen=running))
    return Statement(account=account, opening_fen=opening, closing_fen=running, lines=lines)


@dataclass
class BookBalance:
    fund_code: str
    accounts: list[tuple[LedgerAccount, int]]

    @property
    def total_debit(self) -> int:
        return sum(v for _, v in self.accounts if v > 0)

    @property
    def total_credit(self) -> int:
        return -sum(v for _, v in self.accounts if v < 0)

    @property
    def balanced(self) -> bool:
        return self.total_debit == self.total_credit


def trial_balance(
    session: Session, *, as_of: date | None, funds: set[str] | None
) -> list[BookBalance]:
    books: dict[str, list[tuple[LedgerAccount, int]]] = defaultdict(list)
    for account, total in repo.balances(session, as_of=as_of, funds=funds):
        books[account.fund_code].append((account, total))
    return [BookBalance(fund, rows) for fund, rows in sorted(books.items())]


@dataclass
class ChainBreak:
    seq: int | None
    entry_id: int | None
    problem: str


@dataclass
class VerifyReport:
    entries_checked: int
    head_seq: int
    first_break: ChainBreak | None
    book_sums: dict[str, int]

    @property
    def ok(self) -> bool:
        return self.first_break is None and all(v == 0 for v in self.book_sums.values())


def verify(session: Session) -> VerifyReport:
    """Recompute the hash chain and every book's sum; report the first break."""
    expected_prev, expected_seq, checked = GENESIS_HASH, 1, 0
    first: ChainBreak | None = None
    sums: dict[str, int] = defaultdict(int)
    for entry, legs in repo.chain_rows(session):
        checked += 1
        for _, leg in legs:
            sums[leg.fund_code] += leg.amount_fen
        if first is not None:
            continue
        problem = None
        if entry.seq != expected_seq:
            problem = f"sequence gap: expected {expected_seq}, found {entry.seq}"
        elif entry.prev_hash != expected_prev:
            problem = "prev_hash does not match the preceding entry's hash"
        else:
            try:
                validate_legs([leg for _, leg in legs])
            except LedgerRuleError as exc:
                problem = "legs break L-1: " + "; ".join(exc.problems)
            else:
                recomputed = entry_hash(
                    prev_hash=entry.prev_hash,
                    seq=entry.seq,
                    event_type=entry.event_type,
                    event_id=entry.event_id,
                    idempotency_key=entry.idempotency_key,
                    business_date=entry.business_date,
                    recorded_at=entry.recorded_at,
                    description=entry.description,
                    reverses_entry_id=entry.reverses_entry_id,
                    legs=[(code, leg.amount_fen) for code, leg in legs],
                )
                if recomputed != entry.hash:
                    problem = "content does not match its stored hash (altered after posting)"
        if problem:
            first = ChainBreak(seq=entry.seq, entry_id=entry.id, problem=problem)
        expected_prev, expected_seq = entry.hash, entry.seq + 1
    head = repo.head(session)
    head_seq = head.last_seq if head else 0
    if (
        first is None
        and head is not None
        and (head.last_seq != expected_seq - 1 or head.last_hash != expected_prev)
    ):
        first = ChainBreak(
            seq=head.last_seq,
            entry_id=None,
            problem="the chain head does not match the last entry (entries removed?)",
        )
    if first is None and (orphans := repo.orphan_leg_entries(session)):
        first = ChainBreak(seq=None, entry_id=orphans[0], problem="legs without an entry")
    return VerifyReport(
        entries_checked=checked,
        head_seq=head_seq,
        first_break=first,
        book_sums=dict(sorted(sums.items())),
    )
