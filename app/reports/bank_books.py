"""The books of a programme's banks as of a date and a cut-off, for the monthly and
annual reports (XB-Rep, SKD-A1, SKD-R2).

Every figure here is computed from rows recorded up to the cut-off (`cutoff_at`): loans
filed, repayments, interest payments and the banks' delinquency reports by their
recording time, claim steps by their history rows' time, ledger entries by
`recorded_at`. A report pulled again after late postings thus shows the same figures;
business dates still say which period a row belongs to.

Positions follow SPEC M-6 as `app.loans.arrears` reads it: days past due by the
programme's NPL rule (its basis, the worse of our books and the bank's latest report),
bucketed by the programme's `dpd_buckets`; a loan that late counts in the NPL figure
with all of its outstanding principal. Totals come from SQL; only the loans in arrears
on the date are computed one by one."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import Select, and_, case, func, or_, select
from sqlalchemy.orm import Session

from app.auth.principal import Principal
from app.errors import RoleNotAllowed
from app.loans.arrears import (
    BankView,
    Instalment,
    bank_view,
    compute,
    latest_reports_statement,
)
from app.models import (
    Bank,
    Claim,
    ClaimTransition,
    DelinquencyReport,
    Fund,
    LedgerAccount,
    LedgerEntry,
    LedgerLeg,
    Loan,
    LoanInstalment,
    LoanInterestPayment,
    LoanRepayment,
)
from app.programs.base import get_program
from app.status_reports.service import visible_banks

DAY = timedelta(days=1)
CHUNK = 2_000  # loans computed one by one per round of queries
DECISIONS = ("approved", "closed", "rejected")  # a claim's final decision (statuses)


def bp(part: int, whole: int) -> int | None:
    """part ÷ whole in basis points, rounded down; None when whole is 0."""
    return part * 10_000 // whole if whole > 0 else None


def half_up(numerator: int, denominator: int) -> int | None:
    """numerator ÷ denominator rounded half up; None when the denominator is 0."""
    return (2 * numerator + denominator) // (2 * denominator) if denominator > 0 else None


def bank_names(session: Session, codes: set[str] | None = None) -> dict[str, str]:
    stmt = select(Bank.code, Bank.name)
    if codes is not None:
        stmt = stmt.where(Bank.code.in_(sorted(codes)))
    return {str(c): str(n) for c, n in session.execute(stmt)}


# --- positions ---------------------------------------------------------------------------
@dataclass
class Position:
    """Loans owing principal on the date, their principal outstanding, and per bucket."""

    count: int = 0
    outstanding_fen: int = 0
    npl_fen: int = 0  # of loans at or past the NPL rule's days
    buckets: dict[str, list[int]] = field(default_factory=dict)  # name → [count, fen]

    @property
    def overdue_fen(self) -> int:
        """Outstanding principal of the loans in arrears (any bucket but `current`)."""
        return sum(fen for name, (_, fen) in self.buckets.items() if name != "current")

    def add(self, other: Position) -> None:
        self.count += other.count
        self.outstanding_fen += other.outstanding_fen
        self.npl_fen += other.npl_fen
        for name, (n, fen) in other.buckets.items():
            cell = self.buckets.setdefault(name, [0, 0])
            cell[0] += n
            cell[1] += fen


def _visible(program: str, as_of: date, cutoff_at: datetime, bank_code: str | None) -> Any:
    cond = and_(Loan.program == program, Loan.created_at <= cutoff_at, Loan.disbursed_on <= as_of)
    return and_(cond, Loan.bank_code == bank_code) if bank_code is not None else cond


def _paid(column: Any, table: Any, ids: Select[Any], as_of: date, cutoff_at: datetime) -> Any:
    return (
        select(table.loan_id.label("loan_id"), func.sum(column).label("fen"))
        .where(table.loan_id.in_(ids), table.paid_on <= as_of, table.created_at <= cutoff_at)
        .group_by(table.loan_id)
        .subquery()
    )


def _bank_views(
    session: Session, loan_ids: list[int], as_of: date, cutoff_at: datetime
) -> dict[int, BankView]:
    d = DelinquencyReport
    stmt = latest_reports_statement(
        d.loan_id.in_(loan_ids), d.as_of <= as_of, d.created_at <= cutoff_at
    )
    return {int(r.loan_id): bank_view(r) for r in session.execute(stmt)}


def _sums(
    session: Session, table: Any, column: Any, ids: list[int], as_of: date, cutoff_at: datetime
) -> dict[int, int]:
    stmt = (
        select(table.loan_id, func.sum(column))
        .where(table.loan_id.in_(ids), table.paid_on <= as_of, table.created_at <= cutoff_at)
        .group_by(table.loan_id)
    )
    return {int(i): int(v or 0) for i, v in session.execute(stmt)}


def positions(
    session: Session,
    *,
    program: str,
    as_of: date,
    cutoff_at: datetime,
    bank_code: str | None = None,
) -> dict[tuple[str, str | None], Position]:
    """Per (bank, fund of the loan): the programme's loans owing principal on the date,
    as recorded by the cut-off, with their buckets and NPL part."""
    policy = get_program(program).policy
    rule = policy.arrears_rule("npl")
    visible = _visible(program, as_of, cutoff_at, bank_code)
    ids = select(Loan.id).where(visible)
    repaid = _paid(LoanRepayment.principal_fen, LoanRepayment, ids, as_of, cutoff_at)
    left = Loan.principal_fen - func.coalesce(repaid.c.fen, 0)
    out: dict[tuple[str, str | None], Position] = {}
    for bank, fund, n, fen in session.execute(
        select(Loan.bank_code, Loan.fund_code, func.count(), func.sum(left))
        .select_from(Loan)
        .outerjoin(repaid, repaid.c.loan_id == Loan.id)
        .where(visible, left > 0)
        .group_by(Loan.bank_code, Loan.fund_code)
    ):
        out[(str(bank), fund)] = Position(int(n), int(fen or 0))
    # the loans in arrears on the date: an instalment due before it not fully paid by it,
    # principal or interest, or the bank's latest report by then has them in arrears
    i = LoanInstalment
    before = as_of - DAY
    plan = (
        select(
            i.loan_id.label("loan_id"),
            func.count().label("n"),
            func.sum(case((i.due_on <= before, i.principal_fen), else_=0)).label("p"),
            func.sum(case((i.due_on <= before, i.interest_fen), else_=0)).label("i"),
        )
        .where(i.loan_id.in_(ids))
        .group_by(i.loan_id)
        .subquery()
    )
    paid_i = _paid(LoanInterestPayment.interest_fen, LoanInterestPayment, ids, as_of, cutoff_at)
    reported = (
        select(DelinquencyReport.loan_id)
        .where(
            DelinquencyReport.loan_id.in_(ids),
            DelinquencyReport.as_of <= as_of,
            DelinquencyReport.created_at <= cutoff_at,
            DelinquencyReport.overdue_since.is_not(None),
        )
        .distinct()
        .subquery()
    )
    due_p = case(
        (plan.c.n.is_(None), case((Loan.maturity_on <= before, Loan.principal_fen), else_=0)),
        else_=plan.c.p,
    )
    late = or_(
        due_p > func.coalesce(repaid.c.fen, 0),
        func.coalesce(plan.c.i, 0) > func.coalesce(paid_i.c.fen, 0),
        reported.c.loan_id.is_not(None),
    )
    candidates = list(
        session.execute(
            select(Loan.id, Loan.bank_code, Loan.fund_code, Loan.principal_fen, Loan.maturity_on)
            .select_from(Loan)
            .outerjoin(repaid, repaid.c.loan_id == Loan.id)
            .outerjoin(plan, plan.c.loan_id == Loan.id)
            .outerjoin(paid_i, paid_i.c.loan_id == Loan.id)
            .outerjoin(reported, reported.c.loan_id == Loan.id)
            .where(visible, left > 0, late)
            .order_by(Loan.id)
        )
    )
    late_cells: dict[tuple[str, str | None], dict[str, list[int]]] = defaultdict(dict)
    for start in range(0, len(candidates), CHUNK):
        chunk = candidates[start : start + CHUNK]
        chunk_ids = [int(c.id) for c in chunk]
        plans: dict[int, list[Instalment]] = defaultdict(list)
        for loan_id, due, inst_p, inst_i in session.execute(
            select(i.loan_id, i.due_on, i.principal_fen, i.interest_fen)
            .where(i.loan_id.in_(chunk_ids))
            .order_by(i.loan_id, i.seq)
        ):
            plans[int(loan_id)].append(Instalment(due, int(inst_p), int(inst_i)))
        principal = _sums(
            session, LoanRepayment, LoanRepayment.principal_fen, chunk_ids, as_of, cutoff_at
        )
        interest = _sums(
            session,
            LoanInterestPayment,
            LoanInterestPayment.interest_fen,
            chunk_ids,
            as_of,
            cutoff_at,
        )
        banks = _bank_views(session, chunk_ids, as_of, cutoff_at)
        for c in chunk:
            loan_id = int(c.id)
            schedule = plans.get(loan_id) or [Instalment(c.maturity_on, int(c.principal_fen))]
            a = compute(
                int(c.principal_fen),
                schedule,
                principal.get(loan_id, 0),
                interest.get(loan_id, 0),
                as_of,
                banks.get(loan_id),
            )
            days = a.days_for(rule)
            name = policy.bucket(days)
            key = (str(c.bank_code), c.fund_code)
            if days >= rule.days:
                out[key].npl_fen += a.outstanding_fen
            if name != "current":
                cell = late_cells[key].setdefault(name, [0, 0])
                cell[0] += 1
                cell[1] += a.outstanding_fen
    for key, pos in out.items():
        cells = late_cells.get(key, {})
        late_n = sum(n for n, _ in cells.values())
        late_fen = sum(fen for _, fen in cells.values())
        pos.buckets = {
            name: (
                [pos.count - late_n, pos.outstanding_fen - late_fen]
                if name == "current"
                else cells.get(name, [0, 0])
            )
            for name in policy.bucket_names()
        }
    return out


def by_bank(found: dict[tuple[str, str | None], Position]) -> dict[str, Position]:
    out: dict[str, Position] = {}
    for (bank, _), pos in sorted(found.items(), key=lambda kv: (kv[0][0], kv[0][1] or "")):
        out.setdefault(bank, Position()).add(pos)
    return out


# --- claims ------------------------------------------------------------------------------
@dataclass(frozen=True)
class ClaimStep:
    claim_id: int
    to_status: str
    business_date: date


def claim_steps(
    session: Session,
    *,
    program: str,
    cutoff_at: datetime,
    statuses: tuple[str, ...],
    bank_code: str | None = None,
    since: date | None = None,
    until: date | None = None,
) -> list[ClaimStep]:
    """The claims' history rows into `statuses` recorded by the cut-off, dated in
    [since, until], oldest first."""
    t = ClaimTransition
    stmt = (
        select(t.claim_id, t.to_status, t.business_date)
        .join(Claim, Claim.id == t.claim_id)
        .where(Claim.program == program, t.to_status.in_(statuses), t.at <= cutoff_at)
    )
    if bank_code is not None:
        stmt = stmt.where(Claim.bank_code == bank_code)
    if since is not None:
        stmt = stmt.where(t.business_date >= since)
    if until is not None:
        stmt = stmt.where(t.business_date <= until)
    return [ClaimStep(int(c), str(s), d) for c, s, d in session.execute(stmt.order_by(t.id))]


# --- the ledger --------------------------------------------------------------------------
APPROVAL_EVENT = "claim.approved"  # the reserve: the fund owes the bank (app.claims.steps)


@dataclass
class ClaimLedger:
    """One claim's money as the funds' ledger holds it (the claim's entries, by the
    accounts they touch, up to a date and recorded by the cut-off)."""

    paid_fen: int = 0  # payable to the bank settled (the payment to the bank)
    returns_fen: int = 0  # recovery income: returns the bank's collections made due
    refunds_fen: int = 0  # compensation refunds decided (XB-R2)
    receivable_fen: int = 0  # still owed by the bank

    @property
    def received_fen(self) -> int:
        """Returns and refunds actually received: due less still owed."""
        return self.returns_fen + self.refunds_fen - self.receivable_fen


def claim_ledgers(
    session: Session,
    claim_ids: list[int],
    *,
    until: date,
    cutoff_at: datetime,
    since: date | None = None,
) -> dict[int, ClaimLedger]:
    """Per claim, the sums of its ledger entries (event `claim.*`, event id the claim's
    id; reversals carry the same event and cancel what they reverse) dated up to `until`
    (and from `since`: the movements of a period)."""
    out = {c: ClaimLedger() for c in claim_ids}
    if not claim_ids:
        return out
    e = LedgerEntry
    kinds = ("payable_bank", "recovery_income", "compensation_refunds", "receivable_bank")
    stmt = (
        select(e.event_id, e.event_type, LedgerAccount.kind, func.sum(LedgerLeg.amount_fen))
        .join(LedgerLeg, LedgerLeg.entry_id == e.id)
        .join(LedgerAccount, LedgerAccount.id == LedgerLeg.account_id)
        .where(
            e.event_type.like("claim.%"),
            e.event_id.in_([str(c) for c in claim_ids]),
            e.business_date <= until,
            e.recorded_at <= cutoff_at,
            LedgerAccount.kind.in_(kinds),
        )
        .group_by(e.event_id, e.event_type, LedgerAccount.kind)
    )
    if since is not None:
        stmt = stmt.where(e.business_date >= since)
    for event_id, event_type, kind, total in session.execute(stmt):
        x, fen = out[int(event_id)], int(total or 0)
        if kind == "payable_bank" and event_type != APPROVAL_EVENT:
            x.paid_fen += fen
        elif kind == "recovery_income":
            x.returns_fen -= fen
        elif kind == "compensation_refunds":
            x.refunds_fen -= fen
        elif kind == "receivable_bank":
            x.receivable_fen += fen
    return out


def fund_net_value(session: Session, fund_code: str, *, as_of: date, cutoff_at: datetime) -> int:
    """A fund's net value (its assets less its liabilities, memo accounts aside) as of the
    date, from the entries recorded by the cut-off (`app.ledger.capital.net_value`)."""
    total = session.scalar(
        select(func.coalesce(func.sum(LedgerLeg.amount_fen), 0))
        .join(LedgerEntry, LedgerEntry.id == LedgerLeg.entry_id)
        .join(LedgerAccount, LedgerAccount.id == LedgerLeg.account_id)
        .where(
            LedgerLeg.fund_code == fund_code,
            LedgerAccount.type.in_(("asset", "liability")),
            LedgerEntry.business_date <= as_of,
            LedgerEntry.recorded_at <= cutoff_at,
        )
    )
    return int(total or 0)


# --- who sees which banks ----------------------------------------------------------------
def banks_in_scope(session: Session, principal: Principal, program: str) -> set[str] | None:
    """The banks whose figures of the programme the caller may read (None: every bank):
    a bank its own; a fund manager — of this programme only, else 403 as for every report
    — the banks with an agreement in it; a city reviewer the banks with an agreement in
    its region; the regulator, the province, the committee and admin every bank."""
    if principal.role == "fund_manager":
        fund_program = session.scalar(select(Fund.program).where(Fund.code == principal.fund_code))
        if fund_program != program:
            raise RoleNotAllowed(
                f"a fund manager of {principal.fund_code} reads the reports of its fund's "
                f"programme, not {program}"
            )
    return visible_banks(session, principal)
