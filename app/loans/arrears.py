"""Arrears as of any date (SPEC M-6): a loan's repayment schedule against the payments
recorded by then, beside the arrears its bank reports.

Reading chosen:
- An instalment due on D is paid on time when paid on or before D; from D + 1 it is in
  arrears ("overdue since" D + 1) while any of it is unpaid, and days past due as of a
  date T are T − D. A bullet loan (one instalment at maturity) is past due from the day
  after maturity, as before schedules existed.
- Principal payments settle the earliest instalments' principal first, interest payments
  their interest first; a payment counts from its own date.
- The bank's view is its latest report dated on or before T (a later report replaces an
  earlier one; each is kept): overdue since S means S is the first day in arrears, so
  T − S + 1 days past due. It counts while principal is outstanding, and for a rule that
  counts principal only, only when the report has principal overdue.
- Each rule uses the worse of the two views (`days_past_due`).

The figures over many loans at once (the NPL sums) are in SQL, `late_loans`."""

from __future__ import annotations

import functools
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any, Protocol

from sqlalchemy import (
    BigInteger,
    ColumnElement,
    CompoundSelect,
    Select,
    and_,
    bindparam,
    exists,
    func,
    literal,
    or_,
    select,
    true,
    union,
    union_all,
)
from sqlalchemy.orm import Session

from app.models import (
    DelinquencyReport,
    Loan,
    LoanInstalment,
    LoanInterestPayment,
    LoanLateInstalment,
    LoanRepayment,
)
from app.programs.base import ArrearsRule

DAY = timedelta(days=1)


@dataclass(frozen=True)
class Instalment:
    due_on: date
    principal_fen: int
    interest_fen: int = 0


@dataclass(frozen=True)
class BankView:
    """The bank's latest report as of the date (`DelinquencyReport`)."""

    report_id: int
    as_of: date
    overdue_since: date | None
    principal_overdue_fen: int
    interest_overdue_fen: int
    source: str


@dataclass(frozen=True)
class Arrears:
    as_of: date
    outstanding_fen: int
    principal_overdue_fen: int  # instalments' principal due before the date, unpaid
    interest_overdue_fen: int
    principal_overdue_since: date | None  # the first day in arrears, on our books
    interest_overdue_since: date | None
    bank: BankView | None = None

    def own_since(self, interest: bool) -> date | None:
        dates = [self.principal_overdue_since]
        if interest:
            dates.append(self.interest_overdue_since)
        return min((d for d in dates if d is not None), default=None)

    def bank_since(self, interest: bool) -> date | None:
        b = self.bank
        if b is None or b.overdue_since is None or self.outstanding_fen <= 0:
            return None
        if b.principal_overdue_fen > 0 or (interest and b.interest_overdue_fen > 0):
            return b.overdue_since
        return None

    def overdue_since(self, interest: bool) -> date | None:
        """The first day in arrears, the worse (earlier) of our books and the bank's."""
        dates = [self.own_since(interest), self.bank_since(interest)]
        return min((d for d in dates if d is not None), default=None)

    def days_from(self, since: date | None) -> int:
        return (self.as_of - since).days + 1 if since is not None else 0

    def own_days(self, interest: bool = True) -> int:
        return self.days_from(self.own_since(interest))

    def bank_days(self, interest: bool = True) -> int:
        return self.days_from(self.bank_since(interest))

    def days_past_due(self, interest: bool = True) -> int:
        return self.days_from(self.overdue_since(interest))

    def days_for(self, rule: ArrearsRule) -> int:
        """Days past due as a rule counts them (its basis, the worse view)."""
        return self.days_past_due(rule.interest)

    @property
    def bank_is_worse(self) -> bool:
        return self.bank_days() > self.own_days()


def bullet(loan: Loan) -> list[Instalment]:
    """The schedule of a loan filed without one: its principal at maturity."""
    return [Instalment(loan.maturity_on, loan.principal_fen, 0)]


def compute(
    principal_fen: int,
    schedule: Sequence[Instalment],
    principal_paid_fen: int,
    interest_paid_fen: int,
    as_of: date,
    bank: BankView | None = None,
) -> Arrears:
    """The loan's arrears as of the date from its schedule and what was paid by then."""
    p_left, i_left = principal_paid_fen, interest_paid_fen
    p_over = i_over = 0
    p_since: date | None = None
    i_since: date | None = None
    for inst in sorted(schedule, key=lambda x: x.due_on):
        p_cover = min(inst.principal_fen, p_left)
        i_cover = min(inst.interest_fen, i_left)
        p_left, i_left = p_left - p_cover, i_left - i_cover
        if inst.due_on >= as_of:
            continue
        if inst.principal_fen > p_cover:
            p_over += inst.principal_fen - p_cover
            p_since = p_since or inst.due_on + DAY
        if inst.interest_fen > i_cover:
            i_over += inst.interest_fen - i_cover
            i_since = i_since or inst.due_on + DAY
    outstanding = principal_fen - principal_paid_fen
    if outstanding <= 0:  # settled (repaid, early or not, or renewed): nothing in arrears
        p_over, p_since, i_over, i_since = 0, None, 0, None
    return Arrears(as_of, outstanding, p_over, i_over, p_since, i_since, bank)


def allocation(
    schedule: Sequence[Instalment], principal_paid_fen: int, interest_paid_fen: int
) -> list[tuple[int, int]]:
    """(principal, interest) settled on each instalment, earliest first."""
    p_left, i_left, out = principal_paid_fen, interest_paid_fen, []
    for inst in schedule:
        p, i = min(inst.principal_fen, p_left), min(inst.interest_fen, i_left)
        p_left, i_left = p_left - p, i_left - i
        out.append((p, i))
    return out


def paid_by(session: Session, loan_ids: list[int], as_of: date | None) -> tuple[dict, dict]:
    """(principal, interest) paid per loan by the date (inclusive; None: ever)."""
    if not loan_ids:
        return {}, {}
    params: dict[str, Any] = {"ids": loan_ids}
    if as_of is not None:
        params["as_of"] = as_of
    principal, interest = (
        {int(i): int(v or 0) for i, v in session.execute(stmt, params)}
        for stmt in _paid_statements(as_of is not None)
    )
    return principal, interest


# The loaders' statements, built once each (their ids and date are parameters): building
# a statement, its subqueries' columns and its cache key costs more than running it on a
# few loans.
_IDS = "ids"
_Rows = Select[*tuple[Any, ...]]


@functools.cache
def _paid_statements(dated: bool) -> tuple[_Rows, _Rows]:
    out: list[_Rows] = []
    for column, table in (
        (LoanRepayment.principal_fen, LoanRepayment),
        (LoanInterestPayment.interest_fen, LoanInterestPayment),
    ):
        stmt = select(table.loan_id, func.sum(column)).where(
            table.loan_id.in_(bindparam(_IDS, expanding=True))
        )
        if dated:
            stmt = stmt.where(table.paid_on <= bindparam("as_of"))
        out.append(stmt.group_by(table.loan_id))
    return out[0], out[1]


@functools.cache
def _schedules_statement() -> _Rows:
    i = LoanInstalment
    stmt: _Rows = (
        select(i.loan_id, i.due_on, i.principal_fen, i.interest_fen)
        .where(i.loan_id.in_(bindparam(_IDS, expanding=True)))
        .order_by(i.loan_id, i.seq)
    )
    return stmt


def latest_reports_statement(*conditions: ColumnElement[bool]) -> Select[Any]:
    """Each loan's latest delinquency report among those `conditions` admit (the loans,
    the date, a report run's cut-off), as `BankView` columns (`bank_view`)."""
    d = DelinquencyReport
    ranked = (
        select(
            d.id,
            d.loan_id,
            d.as_of,
            d.overdue_since,
            d.principal_overdue_fen,
            d.interest_overdue_fen,
            d.source,
            func.row_number()
            .over(partition_by=d.loan_id, order_by=(d.as_of.desc(), d.id.desc()))
            .label("rank"),
        )
        .where(*conditions)
        .subquery()
    )
    return select(ranked).where(ranked.c.rank == 1)


def bank_view(row: Any) -> BankView:
    """A row of `latest_reports_statement` as the bank's view of its loan."""
    return BankView(
        int(row.id),
        row.as_of,
        row.overdue_since,
        int(row.principal_overdue_fen),
        int(row.interest_overdue_fen),
        row.source,
    )


@functools.cache
def _latest_reports_statement() -> Select[Any]:
    d = DelinquencyReport
    return latest_reports_statement(
        d.loan_id.in_(bindparam(_IDS, expanding=True)), d.as_of <= bindparam("as_of")
    )


# --- loading ---------------------------------------------------------------------------


def schedules(session: Session, loan_ids: Iterable[int]) -> dict[int, list[Instalment]]:
    ids = list(set(loan_ids))
    out: dict[int, list[Instalment]] = defaultdict(list)
    if not ids:
        return out
    for loan_id, due, p, i in session.execute(_schedules_statement(), {_IDS: ids}):
        out[int(loan_id)].append(Instalment(due, int(p), int(i)))
    return out


def latest_bank_views(session: Session, loan_ids: list[int], as_of: date) -> dict[int, BankView]:
    """Each loan's latest delinquency report dated on or before the date."""
    if not loan_ids:
        return {}
    rows = session.execute(_latest_reports_statement(), {_IDS: loan_ids, "as_of": as_of})
    return {int(row.loan_id): bank_view(row) for row in rows}


@dataclass(frozen=True)
class Facts:
    """What the arrears of some loans rest on, read once: their schedules, what was paid
    by the date and the bank's latest reports."""

    schedules: dict[int, list[Instalment]]
    principal_paid: dict[int, int]
    interest_paid: dict[int, int]
    banks: dict[int, BankView]

    def schedule(self, loan: Loan) -> list[Instalment]:
        return self.schedules.get(loan.id) or bullet(loan)


def facts_of(session: Session, ids: list[int], as_of: date) -> Facts:
    principal, interest = paid_by(session, ids, as_of)
    banks = latest_bank_views(session, ids, as_of)
    return Facts(schedules(session, ids), principal, interest, banks)


def arrears_of(
    session: Session, loans: Sequence[Loan], as_of: date, facts: Facts | None = None
) -> dict[int, Arrears]:
    """Every loan's arrears as of the date, a handful of queries for the whole list (none
    when the caller read the `facts` already)."""
    ids = [x.id for x in loans]
    if not ids:
        return {}
    f = facts or facts_of(session, ids, as_of)
    out = {}
    for loan in loans:
        # a loan not yet disbursed on the date owes nothing yet
        if as_of < loan.disbursed_on:
            out[loan.id] = Arrears(as_of, 0, 0, 0, None, None, None)
            continue
        out[loan.id] = compute(
            loan.principal_fen,
            f.schedule(loan),
            f.principal_paid.get(loan.id, 0),
            f.interest_paid.get(loan.id, 0),
            as_of,
            f.banks.get(loan.id),
        )
    return out


# --- many loans at once, in SQL ----------------------------------------------------------


class Recorded(Protocol):
    """Which rows count: those recorded by a cut-off (`by`), and the repayments recorded
    after it (`after`) — a report as of a past cut-off (`app.reports.quarterly.Cutoff`)."""

    def by(self, model: Any) -> ColumnElement[bool]: ...

    def after(self, model: Any) -> ColumnElement[bool]: ...


def late_loans(
    program: str,
    as_of: date,
    rule: ArrearsRule,
    *,
    bank_code: str | None = None,
    where: Sequence[ColumnElement[bool]] = (),
    recorded: Recorded | None = None,
    columns: Sequence[ColumnElement[Any]] = (),
) -> Select[Any]:
    """The ids of the programme's loans (of one bank, when given; meeting `where` on
    `loans`) at least `rule.days` past due as of the date, by `rule`'s basis and the
    worse view, with principal still owing on the date (not settled, or settled after
    it); with `columns` (of `loans`) after the id. A loan is that late exactly when an
    instalment due on or before the cutoff (as_of − days) is not paid in full by the date
    — its principal, or its interest where the rule counts it, with every earlier
    instalment's — or its bank's latest report by the date has it in arrears since the
    cutoff + 1 or earlier. A loan without instalment rows (written outside the service)
    is its bullet instalment at maturity, as `arrears_of` reads it. With `recorded`,
    only loans, payments and reports recorded by its cut-off count (a loan settled by a
    repayment recorded after it still owes).

    Our books' view reads `loan_late_instalments` (the instalments not paid on time or not
    paid yet, with the dates they were paid in full; migration 0024): an index scan of the
    instalments due by the cutoff among them, not a sum of every schedule and payment.
    Those dates count every payment, so the loans with a payment dated by the date but
    recorded after the cut-off (`recorded.after`; few) are summed from their schedules
    and the payments recorded by it instead (`_summed`). The candidates of both views
    are found first, then `loans` is read once for them."""
    cutoff = as_of - timedelta(days=rule.days)
    return _late_loans(
        program,
        as_of,
        cutoff,
        cutoff + DAY,
        rule,
        bank_code=bank_code,
        where=where,
        recorded=recorded,
        columns=columns,
    )


# `late_loans` built once per programme, rule and whether one bank's: its dates and bank
# are parameters (`late_loans_params`), for the reads that ask it on every request
LATE_AS_OF, LATE_CUTOFF, LATE_CUTOFF_NEXT = "late_as_of", "late_cutoff", "late_next"
LATE_BANK = "late_bank"


@functools.cache
def late_loans_statement(program: str, rule: ArrearsRule, by_bank: bool) -> Select[Any]:
    """`late_loans(program, as_of, rule, bank_code=...)` with the date and the bank as
    bound parameters; execute it with `late_loans_params(as_of, rule, bank_code)`."""
    return _late_loans(
        program,
        bindparam(LATE_AS_OF),
        bindparam(LATE_CUTOFF),
        bindparam(LATE_CUTOFF_NEXT),
        rule,
        bank_code=bindparam(LATE_BANK) if by_bank else None,
    )


def late_loans_params(as_of: date, rule: ArrearsRule, bank_code: str | None) -> dict[str, Any]:
    cutoff = as_of - timedelta(days=rule.days)
    out: dict[str, Any] = {LATE_AS_OF: as_of, LATE_CUTOFF: cutoff, LATE_CUTOFF_NEXT: cutoff + DAY}
    if bank_code is not None:
        out[LATE_BANK] = bank_code
    return out


def _late_loans(
    program: str,
    as_of: Any,
    cutoff: Any,
    cutoff_next: Any,
    rule: ArrearsRule,
    *,
    bank_code: Any = None,
    where: Sequence[ColumnElement[bool]] = (),
    recorded: Recorded | None = None,
    columns: Sequence[ColumnElement[Any]] = (),
) -> Select[Any]:
    """`late_loans`' statement; the dates (`as_of`, the cutoff and the day after it) and
    the bank are values or bound parameters."""

    def counted(model: Any) -> ColumnElement[bool]:
        return recorded.by(model) if recorded is not None else true()

    settled = or_(Loan.settled_on.is_(None), Loan.settled_on > as_of)
    later: CompoundSelect[Any] | None = None
    if recorded is not None:
        repaid_later = select(LoanRepayment.loan_id).where(
            recorded.after(LoanRepayment), LoanRepayment.paid_on <= as_of
        )
        settled = or_(settled, Loan.id.in_(repaid_later))
        later = repaid_later.union_all(
            select(LoanInterestPayment.loan_id).where(
                recorded.after(LoanInterestPayment), LoanInterestPayment.paid_on <= as_of
            )
        )
    owing = and_(
        Loan.program == program,
        Loan.disbursed_on <= as_of,
        settled,
        counted(Loan),
        *([Loan.bank_code == bank_code] if bank_code is not None else []),
        *where,
    )
    kept = LoanLateInstalment
    unpaid = or_(kept.principal_paid_on.is_(None), kept.principal_paid_on > as_of)
    if rule.interest:
        unpaid = or_(unpaid, kept.interest_paid_on.is_(None), kept.interest_paid_on > as_of)
    own = select(kept.loan_id.label("loan_id")).where(kept.due_on <= cutoff, unpaid)
    parts: list[Select[Any]] = [own]
    if later is not None:
        parts = [
            own.where(kept.loan_id.not_in(later)),
            _summed(and_(owing, Loan.id.in_(later)), as_of, cutoff, rule, counted),
        ]
    # the bank's latest report by the date, where it has the loan late enough
    ranked = (
        select(
            DelinquencyReport.loan_id,
            DelinquencyReport.overdue_since,
            DelinquencyReport.principal_overdue_fen,
            DelinquencyReport.interest_overdue_fen,
            func.row_number()
            .over(
                partition_by=DelinquencyReport.loan_id,
                order_by=(DelinquencyReport.as_of.desc(), DelinquencyReport.id.desc()),
            )
            .label("rank"),
        )
        .where(DelinquencyReport.as_of <= as_of, counted(DelinquencyReport))
        .subquery()
    )
    amount = ranked.c.principal_overdue_fen > 0
    if rule.interest:
        amount = or_(amount, ranked.c.interest_overdue_fen > 0)
    reported = select(ranked.c.loan_id).where(
        ranked.c.rank == 1,
        ranked.c.overdue_since.is_not(None),
        ranked.c.overdue_since <= cutoff_next,
        amount,
    )
    candidates = union(*parts, reported).subquery()
    return select(Loan.id, *columns).join(candidates, candidates.c.loan_id == Loan.id).where(owing)


def _summed(
    owing: ColumnElement[bool],
    as_of: Any,
    cutoff: Any,
    rule: ArrearsRule,
    counted: Callable[[Any], ColumnElement[bool]],
) -> Select[Any]:
    """Our books' view of the loans matched by `owing`, from their schedules (a loan
    without instalment rows: its bullet at maturity) and the payments `counted`: late
    exactly when the instalments due on or before the cutoff carry more principal (or
    interest, where the rule counts it) than was paid by the date, as payments settle
    the earliest instalments first."""
    scheduled = (
        select(
            LoanInstalment.loan_id.label("loan_id"),
            func.sum(LoanInstalment.principal_fen).label("principal"),
            func.sum(LoanInstalment.interest_fen).label("interest"),
        )
        .join(Loan, Loan.id == LoanInstalment.loan_id)
        .where(owing, LoanInstalment.due_on <= cutoff)
        .group_by(LoanInstalment.loan_id)
    )
    bullet = select(Loan.id, Loan.principal_fen, literal(0, BigInteger)).where(
        owing,
        Loan.maturity_on <= cutoff,
        ~exists().where(LoanInstalment.loan_id == Loan.id),
    )
    due = union_all(scheduled, bullet).cte("due")
    paid = (
        select(LoanRepayment.loan_id, func.sum(LoanRepayment.principal_fen).label("fen"))
        .where(
            LoanRepayment.loan_id.in_(select(due.c.loan_id)),
            LoanRepayment.paid_on <= as_of,
            counted(LoanRepayment),
        )
        .group_by(LoanRepayment.loan_id)
        .subquery()
    )
    late = due.c.principal > func.coalesce(paid.c.fen, 0)
    own = select(due.c.loan_id).outerjoin(paid, paid.c.loan_id == due.c.loan_id)
    if rule.interest:
        interest_paid = (
            select(
                LoanInterestPayment.loan_id,
                func.sum(LoanInterestPayment.interest_fen).label("fen"),
            )
            .where(
                LoanInterestPayment.loan_id.in_(select(due.c.loan_id)),
                LoanInterestPayment.paid_on <= as_of,
                counted(LoanInterestPayment),
            )
            .group_by(LoanInterestPayment.loan_id)
            .subquery()
        )
        own = own.outerjoin(interest_paid, interest_paid.c.loan_id == due.c.loan_id)
        late = or_(late, due.c.interest > func.coalesce(interest_paid.c.fen, 0))
    return own.where(late)
