"""Delinquency buckets and the watch list (SPEC M-6), over many loans at once.

Both start in SQL and finish with `arrears_of` on the candidate loans only, CHUNK at a
time (the SQL answers their ids; each chunk's rows are loaded, computed and let go):

- The SQL works on the scope's loans still owing principal on the date (disbursed by
  then; not settled, or settled after it) and, per loan, on three figures: Σ principal
  (and Σ interest) of the instalments due on or before a date x — the cumulative
  schedule `cum(x)` — against what was paid by the date (`paid`), and the bank's latest
  delinquency report dated by then. A loan filed before schedules existed (no
  instalment rows) counts as one instalment of its principal at maturity, as
  `arrears_of` reads it.
- Payments settle the earliest instalments first (`app.loans.arrears`), so the earliest
  instalment not fully paid is due on or before x exactly when cum(x) > paid: the first
  unpaid due date D, by principal (or principal or interest, where the rule counts
  interest), is read off by comparing cumulative sums — no window function needed.

The reading of the dates (`app.loans.arrears`): unpaid on D, a loan is in arrears from
D + 1 ("overdue since" S = D + 1) and as of T is T − S + 1 = T − D days past due, so it
reaches a rule's `days` on S + days − 1 = D + days. The worse of our books and the
bank's report gives S.

The cost: the candidate SQL reads every loan of the scope owing on the date, once per
request. The candidates are few for the buckets (loans in arrears) and for a short watch
window; a window as long as a rule's days makes almost every loan owing a candidate
(each current loan's next instalment, if left unpaid), so the work grows with the book
— chunked, it stays within the drivers' limits and holds one chunk of loan rows (plus
the page of entries kept) at a time."""

from __future__ import annotations

import functools
import heapq
from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any, cast

from pydantic import BaseModel, Field
from sqlalchemy import (
    ColumnElement,
    Select,
    Subquery,
    and_,
    bindparam,
    case,
    false,
    func,
    or_,
    select,
)
from sqlalchemy.orm import Session

from app.kit.money import Yuan
from app.loans.arrears import Arrears, Instalment, arrears_of, bullet, schedules
from app.models import (
    DelinquencyReport,
    Loan,
    LoanInstalment,
    LoanInterestPayment,
    LoanRepayment,
)
from app.programs.base import ArrearsRule, Program, get_program, registered_programs

DAY = timedelta(days=1)
CHUNK = 5_000  # loans per arrears query (bound parameters stay well under the drivers' limits)

# the watch window's bounds in days (`within_days`)
MIN_WITHIN_DAYS, MAX_WITHIN_DAYS, DEFAULT_WITHIN_DAYS = 1, 366, 15


# --- the response shapes -----------------------------------------------------------------
class BucketOut(BaseModel):
    """One delinquency bucket: its loans and their outstanding principal."""

    bucket: str = Field(description="`current`, `1-30`, `31-44`, `45-89` or `90+` (policy)")
    count: int
    outstanding: Yuan = Field(description="their principal outstanding as of the date")


class BucketGroupOut(BaseModel):
    bank_code: str
    program: str
    rule: str = Field(description="the programme's NPL rule whose basis the buckets count")
    counts_interest: bool = Field(
        description="days past due run from unpaid interest too (else principal only)"
    )
    count: int = Field(description="loans with principal outstanding as of the date")
    outstanding: Yuan = Field(description="their principal outstanding; Σ of the buckets'")
    buckets: list[BucketOut]


class BucketsOut(BaseModel):
    as_of: date
    items: list[BucketGroupOut] = Field(description="one per programme and bank, sorted so")


# --- the SQL side ------------------------------------------------------------------------
def owing_scope(scope: Select[Any], as_of: date) -> Subquery:
    """The scope's loans still owing principal on the date: disbursed by then, and not
    settled or settled after it (`settled_on` is kept by the database)."""
    return scope.where(
        Loan.disbursed_on <= as_of,
        or_(Loan.settled_on.is_(None), Loan.settled_on > as_of),
    ).subquery("owing")


class Books:
    """Per loan of `owing`: the cumulative schedule at each of `points`, what was paid
    by `as_of` and the bank's latest report by then, as columns to filter on."""

    def __init__(self, owing: Subquery, as_of: date, points: Sequence[date]) -> None:
        self.owing, self.as_of = owing, as_of
        self.points = {x: k for k, x in enumerate(sorted(set(points)))}
        ids = select(owing.c.id)
        i = LoanInstalment
        cols: list[Any] = [i.loan_id.label("loan_id"), func.count().label("n")]
        for x, k in self.points.items():
            cols.append(func.sum(case((i.due_on <= x, i.principal_fen), else_=0)).label(f"p{k}"))
            cols.append(func.sum(case((i.due_on <= x, i.interest_fen), else_=0)).label(f"i{k}"))
        self.plan = select(*cols).where(i.loan_id.in_(ids)).group_by(i.loan_id).subquery("plan")
        self.paid_p = (
            select(LoanRepayment.loan_id, func.sum(LoanRepayment.principal_fen).label("fen"))
            .where(LoanRepayment.loan_id.in_(ids), LoanRepayment.paid_on <= as_of)
            .group_by(LoanRepayment.loan_id)
            .subquery("paid_p")
        )
        self.paid_i = (
            select(
                LoanInterestPayment.loan_id,
                func.sum(LoanInterestPayment.interest_fen).label("fen"),
            )
            .where(LoanInterestPayment.loan_id.in_(ids), LoanInterestPayment.paid_on <= as_of)
            .group_by(LoanInterestPayment.loan_id)
            .subquery("paid_i")
        )
        d = DelinquencyReport
        ranked = (
            select(
                d.loan_id,
                d.overdue_since,
                d.principal_overdue_fen,
                d.interest_overdue_fen,
                func.row_number()
                .over(partition_by=d.loan_id, order_by=(d.as_of.desc(), d.id.desc()))
                .label("rank"),
            )
            .where(d.loan_id.in_(ids), d.as_of <= as_of)
            .subquery("ranked")
        )
        self.bank = select(ranked).where(ranked.c.rank == 1).subquery("bank")

    def select_ids(self) -> Select[Any]:
        o = self.owing
        return (
            select(o.c.id)
            .select_from(o)
            .outerjoin(self.plan, self.plan.c.loan_id == o.c.id)
            .outerjoin(self.paid_p, self.paid_p.c.loan_id == o.c.id)
            .outerjoin(self.paid_i, self.paid_i.c.loan_id == o.c.id)
            .outerjoin(self.bank, self.bank.c.loan_id == o.c.id)
        )

    def unpaid_by(self, x: date, interest: bool) -> ColumnElement[bool]:
        """The earliest instalment not fully paid by `as_of` is due on or before x: the
        instalments due by x carry more principal (or interest, where it counts) than
        was paid."""
        o, k = self.owing, self.points[x]
        no_rows = self.plan.c.n.is_(None)  # a loan filed before schedules: one bullet
        cum_p = case(
            (no_rows, case((o.c.maturity_on <= x, o.c.principal_fen), else_=0)),
            else_=self.plan.c[f"p{k}"],
        )
        late = cum_p > func.coalesce(self.paid_p.c.fen, 0)
        if interest:
            cum_i = func.coalesce(self.plan.c[f"i{k}"], 0)
            late = or_(late, cum_i > func.coalesce(self.paid_i.c.fen, 0))
        return late

    def bank_since_in(self, after: date | None, upto: date, interest: bool) -> ColumnElement[bool]:
        """The bank's latest report has the loan in arrears (by the basis) since a date
        in (after, upto]."""
        b = self.bank.c
        amount = b.principal_overdue_fen > 0
        if interest:
            amount = or_(amount, b.interest_overdue_fen > 0)
        cond = and_(b.overdue_since.is_not(None), b.overdue_since <= upto, amount)
        return and_(cond, b.overdue_since > after) if after is not None else cond


def _rules(program: Program) -> tuple[ArrearsRule, ...]:
    return program.policy.arrears_rules


def _programs(program: str | None) -> list[Program]:
    return [get_program(program)] if program else list(registered_programs())


def _ids(session: Session, ids: Select[Any], params: dict[str, Any] | None = None) -> list[int]:
    """The loan ids a candidate query selects, in id order (ids only: no loan rows)."""
    return sorted(int(i) for i in session.scalars(ids, params))


def _chunks(session: Session, ids: Sequence[int]) -> Iterator[tuple[list[int], list[Loan]]]:
    """The loans of `ids`, CHUNK at a time (ids, loans in id order): every id list sent
    to the database stays well under the drivers' bound-parameter limits, and only one
    chunk of loan rows is held at a time."""
    for start in range(0, len(ids), CHUNK):
        part = list(ids[start : start + CHUNK])
        yield part, list(session.scalars(select(Loan).where(Loan.id.in_(part)).order_by(Loan.id)))


# --- the watch list ----------------------------------------------------------------------
@dataclass(frozen=True)
class Crossing:
    rule: ArrearsRule
    crosses_on: date
    days_left: int
    days_past_due: int  # now, as the rule counts them
    if_unpaid: bool


@dataclass(frozen=True)
class Watched:
    loan: Loan
    arrears: Arrears
    crossings: list[Crossing]

    @property
    def key(self) -> tuple[date, int]:
        return self.crossings[0].crosses_on, self.loan.id


def watch_candidates(
    session: Session, scope: Select[Any], as_of: date, within_days: int, program: str | None
) -> list[int]:
    """The loans of the scope that may cross one of their programme's arrears rules in
    (as_of, as_of + within_days]. For a rule of `days` d, write lo = as_of − d and
    hi = as_of + within_days − d. A loan crosses in the window exactly when its first day
    in arrears S (the worse view; for a loan not in arrears, the day after its earliest
    unpaid instalment, if left unpaid) satisfies lo + 1 < S ≤ hi + 1. Necessary, and
    what the SQL keeps:
    - nothing unpaid by as_of is due on or before lo on our books — else our S ≤ lo + 1,
      the worse S too, and the rule was crossed already; and
    - something unpaid is due on or before hi on our books (our S ≤ hi + 1, or the first
      unpaid instalment due by hi when not yet in arrears), or the bank's latest report
      has the loan in arrears since a day in (lo + 1, hi + 1].
    Every loan that crosses passes; `watch_list` then computes each candidate exactly.
    Answers the candidates' ids, in id order."""
    owing = owing_scope(scope, as_of)
    until = as_of + timedelta(days=within_days)
    plans = [(p, _rules(p)) for p in _programs(program)]
    points = [
        d for _, rules in plans for r in rules for d in (as_of - r.days * DAY, until - r.days * DAY)
    ]
    books = Books(owing, as_of, points)
    per_program = []
    for p, rules in plans:
        conds = []
        for r in rules:
            lo, hi = as_of - r.days * DAY, until - r.days * DAY
            conds.append(
                and_(
                    ~books.unpaid_by(lo, r.interest),
                    or_(
                        books.unpaid_by(hi, r.interest),
                        books.bank_since_in(lo + DAY, hi + DAY, r.interest),
                    ),
                )
            )
        if conds:
            per_program.append(and_(owing.c.program == p.code, or_(*conds)))
    if not per_program:
        return []
    return _ids(session, books.select_ids().where(or_(false(), *per_program)))


def first_unpaid(
    plan: Sequence[Instalment], principal_paid: int, interest_paid: int, interest: bool
) -> date | None:
    """The due date of the earliest instalment not fully paid (payments settle the
    earliest first), by principal or, where `interest`, by principal or interest."""
    cum_p = cum_i = 0
    for inst in sorted(plan, key=lambda x: x.due_on):
        cum_p += inst.principal_fen
        cum_i += inst.interest_fen
        if cum_p > principal_paid or (interest and cum_i > interest_paid):
            return inst.due_on
    return None


def _interest_paid(session: Session, ids: list[int], as_of: date) -> dict[int, int]:
    if not ids:
        return {}
    p = LoanInterestPayment
    stmt = (
        select(p.loan_id, func.sum(p.interest_fen))
        .where(p.loan_id.in_(ids), p.paid_on <= as_of)
        .group_by(p.loan_id)
    )
    return {int(i): int(v or 0) for i, v in session.execute(stmt)}


def crossings(
    loan: Loan,
    arrears: Arrears,
    plan: Sequence[Instalment],
    interest_paid: int,
    as_of: date,
    until: date,
) -> list[Crossing]:
    """The loan's crossings of its programme's rules in (as_of, until], earliest first.
    In arrears by a rule's basis since S (the worse view): it reaches the rule's days on
    S + days − 1. Not in arrears: its earliest unpaid instalment, due on D (≥ as_of),
    would reach them on D + days if left unpaid (`if_unpaid`)."""
    if arrears.outstanding_fen <= 0:
        return []
    out = []
    principal_paid = loan.principal_fen - arrears.outstanding_fen
    for rule in _rules(get_program(loan.program)):
        since = arrears.overdue_since(rule.interest)
        if since is not None:
            on, if_unpaid = since + (rule.days - 1) * DAY, False
        else:
            due = first_unpaid(plan, principal_paid, interest_paid, rule.interest)
            if due is None:
                continue
            on, if_unpaid = due + rule.days * DAY, True
        if as_of < on <= until:
            days = (on - as_of).days
            out.append(Crossing(rule, on, days, arrears.days_for(rule), if_unpaid))
    return sorted(out, key=lambda c: (c.crosses_on, c.rule.days, c.rule.rule))


def watch_list(
    session: Session,
    scope: Select[Any],
    as_of: date,
    *,
    within_days: int = DEFAULT_WITHIN_DAYS,
    program: str | None = None,
    after: tuple[date, int] | None = None,
    limit: int | None = None,
) -> list[Watched]:
    """The loans of the scope that cross one of their programme's arrears rules (the
    claim threshold, the NPL boundary) in (as_of, as_of + within_days], earliest
    crossing first (then by loan id). With `after` (a `Watched.key`), only the entries
    after it; with `limit`, only the first `limit` of them.

    The cost: the candidate query (`watch_candidates`) runs once and answers ids only;
    the candidates are then computed CHUNK at a time (their loan rows, `arrears_of`, the
    schedules and interest paid), so a wide window — where almost every loan owing is a
    candidate — sends no id list longer than CHUNK and holds one chunk of loan rows plus
    the `limit` entries kept (with no `limit`, every entry that crosses)."""
    until = as_of + timedelta(days=within_days)
    ids = watch_candidates(session, scope, as_of, within_days, program)
    out: list[Watched] = []
    for part, loans in _chunks(session, ids):
        arrears = arrears_of(session, loans, as_of)
        plans = schedules(session, part)
        interest = _interest_paid(session, part, as_of)
        for loan in loans:
            found = crossings(
                loan,
                arrears[loan.id],
                plans.get(loan.id) or bullet(loan),
                interest.get(loan.id, 0),
                as_of,
                until,
            )
            if found:
                entry = Watched(loan, arrears[loan.id], found)
                if after is None or entry.key > after:
                    out.append(entry)
        if limit is not None and len(out) > limit:
            out = heapq.nsmallest(limit, out, key=lambda w: w.key)
    out.sort(key=lambda w: w.key)
    return out if limit is None else out[:limit]


# --- the buckets -------------------------------------------------------------------------
def _npl(program: Program) -> ArrearsRule | None:
    return next((r for r in _rules(program) if r.purpose == "npl"), None)


def buckets(
    session: Session, scope: Select[Any], as_of: date, *, program: str | None = None
) -> list[BucketGroupOut]:
    """Per programme and bank: the loans of the scope with principal outstanding on the
    date, counted and summed in each delinquency bucket of the programme
    (`policy.bucket_names()`), by days past due as its NPL rule counts them (basis,
    worse view). Count and outstanding per bank come from SQL; only loans in arrears
    by the rule — an instalment due before the date not fully paid by it
    (`unpaid_by(as_of − 1)`), or the bank's latest report in arrears since the date or
    earlier — are loaded and computed with `arrears_of`, CHUNK at a time; every other
    loan owing is 0 days past due, `current`. So the buckets' sum is the total."""
    programs = {p.code: p for p in _programs(program)}
    rules = {code: _npl(p) for code, p in programs.items()}
    totals_stmt, late_stmt = _bucket_statements(scope, as_of, as_of - DAY, rules)
    return _buckets(
        session,
        list(session.execute(totals_stmt)),
        _ids(session, late_stmt) if late_stmt is not None else [],
        programs,
        rules,
        as_of,
    )


def _bucket_statements(
    scope: Select[Any], as_of: Any, before: Any, rules: dict[str, ArrearsRule | None]
) -> tuple[Select[Any], Select[Any] | None]:
    """`buckets`' two statements: count and outstanding per programme and bank of the
    loans owing, and the ids of those in arrears by their programme's NPL rule (None when
    no programme has one). `as_of` and `before` (the day before it) are dates or bound
    parameters."""
    owing = owing_scope(scope, as_of)
    repaid = (
        select(LoanRepayment.loan_id, func.sum(LoanRepayment.principal_fen).label("fen"))
        .where(LoanRepayment.loan_id.in_(select(owing.c.id)), LoanRepayment.paid_on <= as_of)
        .group_by(LoanRepayment.loan_id)
        .subquery("repaid")
    )
    left = owing.c.principal_fen - func.coalesce(repaid.c.fen, 0)
    totals = (
        select(owing.c.program, owing.c.bank_code, func.count(), func.sum(left))
        .select_from(owing)
        .outerjoin(repaid, repaid.c.loan_id == owing.c.id)
        .group_by(owing.c.program, owing.c.bank_code)
    )
    books = Books(owing, as_of, [before])
    late = [
        and_(
            owing.c.program == code,
            or_(
                books.unpaid_by(before, rule.interest),
                books.bank_since_in(None, as_of, rule.interest),
            ),
        )
        for code, rule in rules.items()
        if rule is not None
    ]
    return totals, (books.select_ids().where(or_(false(), *late)) if late else None)


def _buckets(
    session: Session,
    totals_rows: Iterable[Any],
    ids: list[int],
    programs: dict[str, Program],
    rules: dict[str, ArrearsRule | None],
    as_of: date,
) -> list[BucketGroupOut]:
    """The buckets from the totals' rows and the ids of the loans in arrears (computed
    here with `arrears_of`, CHUNK at a time)."""
    totals = {(str(prog), str(bank)): (int(n), int(fen or 0)) for prog, bank, n, fen in totals_rows}
    worse: dict[tuple[str, str], dict[str, list[int]]] = defaultdict(dict)
    for _, loans in _chunks(session, ids):
        arrears = arrears_of(session, loans, as_of)
        for loan in loans:
            rule = rules[loan.program]
            assert rule is not None
            name = programs[loan.program].policy.bucket(arrears[loan.id].days_for(rule))
            if name == "current":
                continue
            cell = worse[(loan.program, loan.bank_code)].setdefault(name, [0, 0])
            cell[0] += 1
            cell[1] += arrears[loan.id].outstanding_fen
    out = []
    for (code, bank), (count, fen) in sorted(totals.items()):
        if code not in programs:
            continue
        policy = programs[code].policy
        cells = worse.get((code, bank), {})
        late_n = sum(c[0] for c in cells.values())
        late_fen = sum(c[1] for c in cells.values())
        cells["current"] = [count - late_n, fen - late_fen]  # everything else owing
        rows = [
            BucketOut(
                bucket=name,
                count=cells.get(name, [0, 0])[0],
                outstanding=cells.get(name, [0, 0])[1],
            )
            for name in policy.bucket_names()
        ]
        rule = rules[code]
        out.append(
            BucketGroupOut(
                bank_code=bank,
                program=code,
                rule=rule.rule if rule else "",
                counts_interest=rule.interest if rule else False,
                count=count,
                outstanding=fen,
                buckets=rows,
            )
        )
    return out


def bank_buckets(session: Session, program: str, bank_code: str, as_of: date) -> list[BucketOut]:
    """The bank's buckets of the programme as of the date (the exposure view); every
    bucket listed, empty ones with 0."""
    programs = {program: get_program(program)}
    rules = {program: _npl(programs[program])}
    totals_stmt, late_stmt = _bank_bucket_statements(program)
    params = {_AS_OF: as_of, _BEFORE: as_of - DAY, _BANK: bank_code}
    found = _buckets(
        session,
        list(session.execute(totals_stmt, params)),
        _ids(session, late_stmt, params) if late_stmt is not None else [],
        programs,
        rules,
        as_of,
    )
    if found:
        return found[0].buckets
    names = get_program(program).policy.bucket_names()
    return [BucketOut(bucket=n, count=0, outstanding=0) for n in names]


_AS_OF, _BEFORE, _BANK = "buckets_as_of", "buckets_before", "buckets_bank"


@functools.cache
def _bank_bucket_statements(program: str) -> tuple[Select[Any], Select[Any] | None]:
    """`bank_buckets`' statements, built once per programme (building them — subqueries
    over the loans owing, their columns, the cache key — cost more than running them on
    one bank): the date, the day before it and the bank are bound parameters."""
    # the columns the buckets read of a loan owing, not the loan's every column
    columns = (Loan.id, Loan.program, Loan.bank_code, Loan.principal_fen, Loan.maturity_on)
    scope = cast("Select[Any]", select(*columns)).where(
        Loan.program == program, Loan.bank_code == bindparam(_BANK)
    )
    rules = {program: _npl(get_program(program))}
    return _bucket_statements(scope, bindparam(_AS_OF), bindparam(_BEFORE), rules)
