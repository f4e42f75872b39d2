"""The ledger's use cases. `post` is the only writer of journal entries (L-1, L-4)."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime

from sqlalchemy import select
from sqlalchemy.orm import Session, make_transient_to_detached

from app.errors import Conflict, NotFound, Unprocessable
from app.kit import at_commit
from app.ledger import repository as repo
from app.ledger.postings import (
    CHART,
    GENESIS_HASH,
    LedgerRuleError,
    LegSpec,
    entry_hash,
    hashed_leg,
    negate,
    validate_legs,
)
from app.models import Bank, Fund, FundContributor, LedgerAccount, LedgerEntry
from app.models.base import utcnow


class UnbalancedEntry(Unprocessable):
    """The entry's legs do not balance per book and currency (L-1)."""

    code, rule = "unbalanced_entry", "L-1"
    title, title_zh = "Unbalanced ledger entry", "分录借贷不平"


class LedgerKeyReused(Conflict):
    """A ledger idempotency key was used for another entry (L-4)."""

    code, rule = "ledger_key_reused", "L-4"
    title, title_zh = "Ledger key used for another entry", "分录幂等键已用于其他分录"


class AlreadyReversed(Conflict):
    """The entry was already reversed; an entry is reversed at most once (L-2)."""

    code, rule = "already_reversed", "L-2"
    title, title_zh = "Entry already reversed", "分录已冲销"


class CannotReverseReversal(Conflict):
    """The entry is itself a reversal; a reversal is not reversed again: post a new
    entry instead (L-2)."""

    code, rule = "cannot_reverse_reversal", "L-2"
    title, title_zh = "A reversal is not reversed", "冲销分录不能再次冲销"


class ReversalBeforeOriginal(Unprocessable):
    """A reversing entry is dated on or after the entry it reverses (L-2)."""

    code, rule = "reversal_before_original", "L-2"
    title, title_zh = "Reversal dated before the entry", "冲销日期早于原分录"


class EntryNotFound(NotFound):
    title, title_zh = "Ledger entry not found", "分录不存在"


class AccountNotFound(NotFound):
    title, title_zh = "Ledger account not found", "科目不存在"


def _refuse(problems: list[str]) -> UnbalancedEntry:
    return UnbalancedEntry(
        "the entry is not a balanced double entry (L-1)",
        [UnbalancedEntry.violation(p, "legs") for p in problems],
    )


def _same_content(session: Session, entry: LedgerEntry, spec: EntrySpec) -> bool:
    """The same event and legs. An entry posted before legs named loans is the same as
    one whose legs now do, if all else is equal (a retry across that upgrade)."""
    stored = repo.legs_of(session, [entry.id])[entry.id]
    named = any(g.loan_id is not None for g, _ in stored)
    return entry.event_type == spec.event_type and Counter(
        (a.code, g.amount_fen, g.loan_id) for g, a in stored
    ) == Counter((g.account_code, g.amount_fen, g.loan_id if named else None) for g in spec.legs)


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


def _open_accounts(
    session: Session, legs: Sequence[LegSpec], known: dict[str, int]
) -> dict[str, int]:
    """Open the accounts these legs need that do not exist yet, from the chart of
    accounts. Called under the chain head's lock, so no two writers open one account."""
    missing = {leg.account_code: leg for leg in legs if leg.account_code not in known}
    if not missing:
        return known
    funds = repo.existing_funds(session, {leg.fund_code for leg in missing.values()})
    problems, rows = [], []
    for code, leg in missing.items():
        if leg.fund_code not in funds:
            problems.append(f"unknown fund {leg.fund_code!r}")
        elif (why := _check_counterparty(session, leg)) is not None:
            problems.append(why)
        else:
            spec = CHART[leg.kind]
            rows.append(
                {
                    "code": code,
                    "fund_code": leg.fund_code,
                    "kind": leg.kind,
                    "counterparty": leg.counterparty,
                    "type": spec.type,
                    "normal_side": spec.normal_side,
                    "created_at": utcnow(),
                    "name": spec.name_zh + (f" · {leg.counterparty}" if leg.counterparty else ""),
                }
            )
    if problems:
        raise _refuse(sorted(set(problems)))
    repo.create_accounts(session, rows)
    return {**known, **repo.account_ids_by_code(session, missing)}


@dataclass(frozen=True)
class EntrySpec:
    """One entry to post: the business event it records and its legs."""

    event_type: str
    event_id: str
    idempotency_key: str
    business_date: date
    legs: Sequence[LegSpec]
    description: str = ""
    reverses_entry_id: int | None = None


@dataclass
class _Prepared:
    replays: dict[int, LedgerEntry]  # index in the batch → the entry posted earlier
    entry_rows: list[tuple[object, ...]]
    leg_rows: list[tuple[object, ...]]
    last_id: int
    last_hash: str


def _prepare(
    session: Session, specs: Sequence[EntrySpec], *, now: datetime, actor_id: int | None
) -> _Prepared:
    """Validate, resolve accounts, take the chain head's lock, settle replays and compute
    ids and hashes. Nothing is written to the journal yet."""
    problems = []
    for i, spec in enumerate(specs):
        try:
            validate_legs(spec.legs)
        except LedgerRuleError as exc:
            problems += [f"entry {i}: {p}" if len(specs) > 1 else p for p in exc.problems]
    keys = [spec.idempotency_key for spec in specs]
    if len(set(keys)) != len(keys):
        problems.append("idempotency keys repeat within the batch")
    if problems:
        raise _refuse(problems)
    all_legs = [g for spec in specs for g in spec.legs]
    view = repo.read_for_posting(session, sorted({g.account_code for g in all_legs}), keys)
    accounts = _open_accounts(session, all_legs, view.account_ids)
    last_id, last_hash = view.last_id, view.last_hash
    existing = {key: session.get_one(LedgerEntry, i) for key, i in view.existing_keys.items()}
    replays: dict[int, LedgerEntry] = {}
    entry_rows: list[tuple[object, ...]] = []
    leg_rows: list[tuple[object, ...]] = []
    for i, spec in enumerate(specs):
        if (prior := existing.get(spec.idempotency_key)) is not None:
            if not _same_content(session, prior, spec):
                raise LedgerKeyReused(
                    f"ledger idempotency key {spec.idempotency_key!r} was used for another entry",
                    [LedgerKeyReused.violation("key reused", "idempotency_key")],
                )
            replays[i] = prior
            continue
        entry_id = last_id + 1
        digest = entry_hash(
            prev_hash=last_hash,
            seq=entry_id,
            event_type=spec.event_type,
            event_id=spec.event_id,
            idempotency_key=spec.idempotency_key,
            business_date=spec.business_date,
            recorded_at=now,
            description=spec.description,
            reverses_entry_id=spec.reverses_entry_id,
            legs=[g.hashed for g in spec.legs],
        )
        entry_rows.append(
            (
                entry_id,
                spec.event_type,
                spec.event_id,
                spec.idempotency_key,
                spec.business_date,
                now,
                spec.description,
                spec.reverses_entry_id,
                actor_id,
                last_hash,
                digest,
            )
        )
        leg_rows += [
            (entry_id, position, accounts[g.account_code], g.fund_code, g.amount_fen, g.loan_id)
            for position, g in enumerate(spec.legs)
        ]
        last_id, last_hash = entry_id, digest
    return _Prepared(replays, entry_rows, leg_rows, last_id, last_hash)


def _write(session: Session, prepared: _Prepared) -> None:
    repo.write_entries(
        session,
        prepared.leg_rows,
        prepared.entry_rows,
        last_id=prepared.last_id,
        last_hash=prepared.last_hash,
    )


def post_many(
    session: Session, specs: Sequence[EntrySpec], *, now: datetime, actor_id: int | None = None
) -> list[int]:
    """Post a batch of balanced entries in the caller's transaction; returns their ids in
    order (a replayed key returns the id posted before). Legs go in first, then the entry
    rows, so PostgreSQL checks whole entries as they arrive; large batches use COPY."""
    if not specs:
        return []
    prepared = _prepare(session, specs, now=now, actor_id=actor_id)
    _write(session, prepared)
    new_ids = iter(int(row[0]) for row in prepared.entry_rows)  # type: ignore[call-overload]
    return [
        prepared.replays[i].id if i in prepared.replays else next(new_ids)
        for i in range(len(specs))
    ]


def post_at_commit(
    session: Session, specs: Sequence[EntrySpec], *, now: datetime, actor_id: int | None = None
) -> None:
    """Post these entries as the transaction's last work before COMMIT, after every other
    statement of the request: the chain head's lock is then held for three round trips
    rather than for the rest of the request. The legs are checked now, so a malformed
    entry is refused where it is made; entries queued in one transaction are posted
    together, in order, with the `now` and actor of the first."""
    problems = []
    for spec in specs:
        try:
            validate_legs(spec.legs)
        except LedgerRuleError as exc:
            problems += exc.problems
    if problems:
        raise _refuse(problems)
    queued: list[EntrySpec] = at_commit.pending(
        session,
        "ledger",
        list,
        lambda s: post_many(s, queued, now=now, actor_id=actor_id),
        last=True,
    )
    queued.extend(specs)


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
    """Post one balanced entry (the only writer, L-1). Re-posting a key with the same legs
    returns the first entry (L-4); the same key with other legs is a conflict. Entries
    form one gapless, hash-linked sequence under the chain head's lock."""
    spec = EntrySpec(
        event_type, event_id, idempotency_key, business_date, legs, description, reverses_entry_id
    )
    prepared = _prepare(session, [spec], now=now, actor_id=actor_id)
    if 0 in prepared.replays:
        return prepared.replays[0]
    _write(session, prepared)
    values = dict(zip(repo.ENTRY_COLUMNS, prepared.entry_rows[0], strict=True))
    # The row is written; hand the caller a persistent object without reading it back.
    entry = LedgerEntry(**values)
    make_transient_to_detached(entry)
    session.add(entry)
    return entry


def entry_legs(session: Session, entry: LedgerEntry) -> list[LegSpec]:
    return [
        LegSpec(a.fund_code, a.kind, g.amount_fen, a.counterparty, g.loan_id)
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
        raise EntryNotFound(f"ledger entry {entry_id} not found")
    if original.reverses_entry_id is not None:
        raise CannotReverseReversal(
            f"entry {entry_id} is itself a reversal; post a new entry instead"
        )
    if business_date < original.business_date:
        raise ReversalBeforeOriginal(
            "a reversal cannot be dated before the entry it reverses",
            [
                ReversalBeforeOriginal.violation(
                    f"must be on or after {original.business_date.isoformat()}",
                    "body",
                    "business_date",
                )
            ],
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
        raise AccountNotFound(f"ledger account {code!r} not found")
    ((_, total),) = repo.balances(session, as_of=as_of, account_ids=[account.id])
    return total


@dataclass
class StatementLine:
    entry: LedgerEntry
    amount_fen: int
    running_fen: int
    loan_id: int | None = None


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
    for entry, amount, loan in repo.statement_lines(session, account.id, since=since, until=until):
        running += amount
        lines.append(StatementLine(entry, amount, running, loan))
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
    entry_id: int | None
    problem: str


@dataclass
class VerifyReport:
    entries_checked: int
    head_entry_id: int
    first_break: ChainBreak | None
    book_sums: dict[str, int]

    @property
    def ok(self) -> bool:
        return self.first_break is None and all(v == 0 for v in self.book_sums.values())


def content_hash(entry: LedgerEntry, legs: Sequence[tuple[str, LegSpec]]) -> str:
    """The hash an entry's stored content (with its legs: account code, leg) gives."""
    return entry_hash(
        prev_hash=entry.prev_hash,
        seq=entry.id,
        event_type=entry.event_type,
        event_id=entry.event_id,
        idempotency_key=entry.idempotency_key,
        business_date=entry.business_date,
        recorded_at=entry.recorded_at,
        description=entry.description,
        reverses_entry_id=entry.reverses_entry_id,
        legs=[hashed_leg(code, leg.amount_fen, leg.loan_id) for code, leg in legs],
    )


def _entry_problem(
    entry: LedgerEntry, legs: list[tuple[str, LegSpec]], expected_id: int, expected_prev: str
) -> str | None:
    if entry.id != expected_id:
        return f"sequence gap: expected entry {expected_id}, found {entry.id}"
    if entry.prev_hash != expected_prev:
        return "prev_hash does not match the preceding entry's hash"
    try:
        validate_legs([leg for _, leg in legs])
    except LedgerRuleError as exc:
        return "legs break L-1: " + "; ".join(exc.problems)
    if content_hash(entry, legs) != entry.hash:
        return "content does not match its stored hash (altered after posting)"
    return None


def verify(session: Session) -> VerifyReport:
    """Recompute the hash chain and every book's sum; report the first break."""
    expected_prev, expected_id, checked = GENESIS_HASH, 1, 0
    first: ChainBreak | None = None
    sums: dict[str, int] = defaultdict(int)
    for entry, legs in repo.chain_rows(session):
        checked += 1
        for _, leg in legs:
            sums[leg.fund_code] += leg.amount_fen
        if first is None and (problem := _entry_problem(entry, legs, expected_id, expected_prev)):
            first = ChainBreak(entry_id=entry.id, problem=problem)
        expected_prev, expected_id = entry.hash, entry.id + 1
    head_id, head_hash = repo.head(session)
    if first is None and (head_id != expected_id - 1 or head_hash != expected_prev):
        first = ChainBreak(
            entry_id=head_id,
            problem="the chain head does not match the last entry (entries removed?)",
        )
    if first is None and (orphans := repo.orphan_leg_entries(session)):
        first = ChainBreak(entry_id=orphans[0], problem="legs without an entry")
    return VerifyReport(
        entries_checked=checked,
        head_entry_id=head_id,
        first_break=first,
        book_sums=dict(sorted(sums.items())),
    )
