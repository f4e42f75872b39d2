"""The quarterly report (issue #14 parts 1 and 6; SKD-Q1…Q3, XB-Q1, XB-Q2, XB-F1, XB-Rep):
per bank and product and in total, the quarter's loans, claims, recoveries and returns,
the book at the quarter end with its non-performing part, the programme's caps or limits,
suspensions and warnings in force, steps past their deadline, a four-quarter trend and
the reconciliation of the claims' money with the ledger — one `ReportDocument`.

Two dates bound every figure:

- the quarter's business dates: flows count what is dated in [quarter start, as of]
  (`as_of` is the quarter end, or today's business date while the quarter is open), stocks
  are taken as of `as_of`;
- the cut-off (`cutoff_at`): only rows recorded at or before it count, each by its own
  timestamp — `loans.created_at`, `loan_repayments.created_at`,
  `loan_interest_payments.created_at`, `loan_delinquency_reports.created_at`,
  `claims.created_at`, `claim_transitions.at`, `claim_recoveries.created_at`,
  `claim_clawbacks.created_at`, `claim_receipts.created_at`, `ledger_entries.recorded_at`,
  `agreements.created_at`, `agreement_events.at`, `fund_events.at`,
  `quarter_evaluations.run_at`. A posting recorded after the cut-off, whatever its
  business date, leaves a recomputation with that cut-off unchanged.

Everything is computed in SQL, grouped by bank and product (no query per bank, no loop
over loans). Stocks use the database's day totals (`loan_day_totals`) where the
programme's product is one of their keys, corrected by the few rows recorded after the
cut-off; those rows are found through the tables' id sequences (`Cutoff.after`), so a
recent cut-off reads no more than the rows after it.

What is the programme's (its products, caps or limits, fund figures, the ledger lines it
reconciles) comes from `get_program(code).quarterly_report()`, a `QuarterlyPart`."""

from __future__ import annotations

import functools
from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import (
    BindParameter,
    ColumnElement,
    Integer,
    Select,
    String,
    and_,
    bindparam,
    case,
    cast,
    false,
    func,
    literal,
    or_,
    select,
    text,
    true,
    union_all,
)
from sqlalchemy.orm import InstrumentedAttribute, Session
from sqlalchemy.sql import Subquery

from app.auth.principal import Principal
from app.claims.repository import region_descendants
from app.errors import RoleNotAllowed, Unprocessable, ValidationFailed
from app.evaluations.service import quarter_end
from app.kit.clock import CHINA_TZ
from app.loans import arrears
from app.models import (
    Agreement,
    AgreementEvent,
    Bank,
    Claim,
    ClaimClawback,
    ClaimReceipt,
    ClaimRecovery,
    ClaimTransition,
    DelinquencyReport,
    Fund,
    FundEvent,
    LedgerAccount,
    LedgerEntry,
    LedgerLeg,
    Loan,
    LoanDayTotal,
    LoanInterestPayment,
    LoanRepayment,
    QuarterBankResult,
    QuarterEvaluation,
)
from app.programs.base import Program, get_program
from app.reports.document import Chart, Column, ReportDocument, Section, Value, utc_text

# The claim statuses every workflow shares (app/models/claim.py): a decision approves
# (possibly nothing: closed) or rejects.
APPROVED = ("approved", "closed")
REJECTED = "rejected"
DECIDED = (*APPROVED, REJECTED)


class QuarterNotBegun(Unprocessable):
    """The quarter asked for begins after today's business date: there is nothing to
    report yet."""

    code = "quarter_not_begun"
    title, title_zh = "Quarter not begun", "该季度尚未开始"


# --- who sees what -------------------------------------------------------------------------
@dataclass(frozen=True)
class Scope:
    """The part of the programme the caller sees: one bank (a bank user), the programme's
    funds of a region (a city reviewer) or one fund (the manager of a fund that does not
    see the whole programme); `funds` None and `bank_code` None: the whole programme."""

    label: str = ""  # "" | bank:<code> | region:<code> | fund:<code>
    bank_code: str | None = None
    funds: tuple[str, ...] | None = None

    @property
    def whole(self) -> bool:
        return self.bank_code is None and self.funds is None

    def _on(self, bank: Any, fund: Any) -> list[ColumnElement[bool]]:
        out: list[ColumnElement[bool]] = []
        if self.bank_code is not None:
            out.append(bank == self.bank_code)
        if self.funds is not None:
            out.append(fund.in_(self.funds) if self.funds else false())
        return out

    def loans(self) -> list[ColumnElement[bool]]:
        return self._on(Loan.bank_code, Loan.fund_code)

    def day_totals(self) -> list[ColumnElement[bool]]:
        return self._on(LoanDayTotal.bank_code, LoanDayTotal.fund_code)

    def claims(self) -> list[ColumnElement[bool]]:
        return self._on(Claim.bank_code, Claim.fund_code)

    def agreements(self) -> list[ColumnElement[bool]]:
        return self._on(Agreement.bank_code, Agreement.fund_code)


def scope_of(session: Session, program: Program, principal: Principal) -> Scope:
    """A bank sees its own bank; a city reviewer the programme's funds in its region (the
    city and county funds there); a fund manager the whole programme where the programme
    gives its fund every claim (`claim_scope`), else its own fund's loans and claims, and
    nothing of another programme; the regulator, the province reviewer, the committee
    and the admin the whole programme."""
    if principal.is_bank:
        return Scope(f"bank:{principal.bank_code}", bank_code=principal.bank_code or "")
    if principal.role == "city_reviewer":
        regions = region_descendants(session, principal.region_code or "")
        funds = session.scalars(
            select(Fund.code)
            .where(Fund.program == program.code, Fund.region_code.in_(regions))
            .order_by(Fund.code)
        )
        return Scope(f"region:{principal.region_code}", funds=tuple(funds))
    if principal.role == "fund_manager":
        if program.claim_scope(principal) is not None:
            return Scope()
        fund = session.get(Fund, principal.fund_code or "")
        if fund is None or fund.program != program.code:
            raise RoleNotAllowed(
                f"a manager of {principal.fund_code} reads its own programme's reports, not "
                f"{program.code}'s"
            )
        return Scope(f"fund:{fund.code}", funds=(fund.code,))
    return Scope()


# --- the cut-off -------------------------------------------------------------------------
# A row's timestamp is taken in the request that writes it, moments before its id is drawn
# from the table's sequence, so every row recorded after the cut-off has an id above the
# highest id of the rows recorded by (cut-off − MARGIN). That bound lets the corrections
# for rows recorded after the cut-off read an id range instead of the whole table; the
# timestamp itself is always compared as well.
MARGIN = timedelta(days=1)
_STAMP: dict[Any, InstrumentedAttribute[datetime]] = {
    Loan: Loan.created_at,
    LoanRepayment: LoanRepayment.created_at,
    LoanInterestPayment: LoanInterestPayment.created_at,
    DelinquencyReport: DelinquencyReport.created_at,
    Claim: Claim.created_at,
    ClaimTransition: ClaimTransition.at,
    ClaimRecovery: ClaimRecovery.created_at,
    ClaimClawback: ClaimClawback.created_at,
    ClaimReceipt: ClaimReceipt.created_at,
    LedgerEntry: LedgerEntry.recorded_at,
    Agreement: Agreement.created_at,
    AgreementEvent: AgreementEvent.at,
    FundEvent: FundEvent.at,
    QuarterEvaluation: QuarterEvaluation.run_at,
}


@dataclass
class Cutoff:
    session: Session
    at: datetime
    _floors: dict[Any, int | None] = field(default_factory=dict)

    def by(self, model: Any) -> ColumnElement[bool]:
        """The model's rows recorded at or before the cut-off."""
        return _STAMP[model] <= self.at

    def after(self, model: Any) -> ColumnElement[bool]:
        """The model's rows recorded after the cut-off (see MARGIN)."""
        if model not in self._floors:
            self._floors[model] = self.session.scalar(
                select(model.id)
                .where(_STAMP[model] <= self.at - MARGIN)
                .order_by(model.id.desc())
                .limit(1)
            )
        floor = self._floors[model]
        stamp = _STAMP[model] > self.at
        return stamp if floor is None else and_(model.id > floor, stamp)


# --- what a programme adds ---------------------------------------------------------------------
@dataclass(frozen=True)
class LedgerSpec:
    """Where a money figure is in the journal: the movement on the accounts of `kinds`
    (of `funds`; None: any) in entries of `event_types` — debits, or credits (`credit`)."""

    kinds: tuple[str, ...]
    event_types: tuple[str, ...]
    funds: tuple[str, ...] | None = None
    credit: bool = False


@dataclass(frozen=True)
class LedgerLine:
    """One reconciliation line: a figure of the report beside the same money in the
    ledger (issue part 6)."""

    key: str
    zh: str
    en: str
    report_fen: int
    ledger: LedgerSpec


@dataclass(frozen=True)
class Extension:
    """A programme's sections, charts, notices (rows of the `suspensions` section, e.g.
    XB-Q1 warnings) and reconciliation lines."""

    sections: tuple[Section, ...] = ()
    charts: tuple[Chart, ...] = ()
    notices: tuple[dict[str, Value], ...] = ()
    ledger: tuple[LedgerLine, ...] = ()


class QuarterlyPart:
    """The programme's part of the quarterly report (`Program.quarterly_report()`). The
    defaults: products are `loans.product`, read from the day totals too; no NPL
    threshold; nothing added."""

    # the NPL ratio the `banks` figures and the NPL chart are read against (SKD-Q3)
    npl_threshold_bp: int | None = None
    npl_rule: str = ""
    # the fund manager's quarterly report: due on this day of the month after the
    # quarter, to this recipient (XB-Rep); None / "": no deadline, the caller names one
    submission_day: int | None = None
    submitted_to: str = ""

    def loan_product(self) -> ColumnElement[str]:
        """A loan's product in the report, as SQL over `loans`."""
        return func.coalesce(Loan.product, "")

    def day_total_product(self) -> ColumnElement[str] | None:
        """The same over `loan_day_totals`, or None when the day totals do not carry it
        (the book at the quarter end is then summed over the loans)."""
        return func.coalesce(LoanDayTotal.product, "")

    def extend(self, session: Session, q: Quarter) -> Extension:
        return Extension()


# --- the context ----------------------------------------------------------------------------
Key = tuple[str, str]  # (bank, product)


@dataclass
class Quarter:
    """One quarterly report being built: the programme, the period, the scope, the cut-off,
    and the generic figures once computed (`rows` per bank and product, `bank_rows`,
    `totals`)."""

    session: Session
    program: Program
    part: QuarterlyPart
    year: int
    quarter: int
    start: date
    end: date
    as_of: date
    closed: bool
    scope: Scope
    cut: Cutoff
    rows: dict[Key, dict[str, int]] = field(default_factory=dict)
    bank_rows: dict[str, dict[str, int]] = field(default_factory=dict)
    totals: dict[str, int] = field(default_factory=dict)
    bank_names: dict[str, str] = field(default_factory=dict)

    @property
    def code(self) -> str:
        return self.program.code

    @property
    def period(self) -> str:
        return f"{self.year}-Q{self.quarter}"

    @property
    def cutoff_at(self) -> datetime:
        return self.cut.at

    def bank_name(self, code: str) -> str:
        return self.bank_names.get(code, code)

    def approvals(self, since: date | None, until: date) -> Any:
        """The claims' approvals (to approved, or closed with nothing payable) dated in
        [since, until] and recorded by the cut-off: claim_id, business_date."""
        return self.decisions(APPROVED, since, until)

    def decisions(self, statuses: Iterable[str], since: date | None, until: date) -> Any:
        t = ClaimTransition
        stmt = select(t.claim_id, t.business_date).where(
            t.to_status.in_(tuple(statuses)), t.business_date <= until, self.cut.by(t)
        )
        if since is not None:
            stmt = stmt.where(t.business_date >= since)
        return stmt.subquery()

    def claims_in_scope(self) -> list[ColumnElement[bool]]:
        return [Claim.program == self.code, self.cut.by(Claim), *self.scope.claims()]


# --- building ------------------------------------------------------------------------------
def build_quarterly(
    session: Session,
    *,
    program: str,
    year: int,
    quarter: int,
    principal: Principal,
    cutoff_at: datetime,
    today: date | None = None,
) -> ReportDocument:
    """The programme's quarterly report for `year`-Q`quarter`, as `principal` may see it,
    from the rows recorded by `cutoff_at`. A quarter still open is reported as of today's
    business date (`today`, default the cut-off's date in China Standard Time) and marked
    `closed: false`; a quarter not yet begun is refused."""
    prog = get_program(program)
    if not 1 <= quarter <= 4:
        raise ValidationFailed(
            f"quarter {quarter} does not exist",
            [ValidationFailed.violation("1, 2, 3 or 4", "query", "quarter")],
        )
    if cutoff_at.tzinfo is None:
        raise ValueError("cutoff_at must carry a timezone")
    end = quarter_end(year, quarter)
    start = date(year, 3 * quarter - 2, 1)
    today = today or cutoff_at.astimezone(CHINA_TZ).date()
    if today < start:
        raise QuarterNotBegun(
            f"{year}-Q{quarter} begins on {start}, after today {today}",
            [QuarterNotBegun.violation("the quarter has not begun", "query", "quarter")],
        )
    q = Quarter(
        session=session,
        program=prog,
        part=prog.quarterly_report(),
        year=year,
        quarter=quarter,
        start=start,
        end=end,
        as_of=min(end, today),
        closed=end < today,
        scope=scope_of(session, prog, principal),
        cut=Cutoff(session, cutoff_at),
    )
    with _report_settings(session):
        _figures(q)
        extension = q.part.extend(session, q)
        sections = [
            _totals_section(q),
            _banks_section(q),
            _products_section(q),
            *extension.sections,
            _suspensions_section(q, extension.notices),
            _overdue_section(q),
            _trend_section(q),
            _reconciliation_section(q, extension.ledger),
        ]
    charts = [
        Chart(
            "npl_by_bank",
            "各合作银行不良率",
            "NPL ratio per bank",
            section="banks",
            x="bank_code",
            series=("npl_ratio_bp",),
            threshold_bp=q.part.npl_threshold_bp,
        ),
        *extension.charts,
        Chart(
            "trend",
            "近四个季度贷款余额与不良贷款",
            "Outstanding and non-performing principal, last four quarters",
            section="trend",
            x="period",
            series=("outstanding", "npl"),
            kind="line",
        ),
    ]
    name_zh, name_en = prog.name_zh, prog.name_en
    return ReportDocument(
        kind="quarterly",
        program=prog.code,
        period=q.period,
        period_start=start,
        period_end=end,
        title_zh=f"{name_zh}{year}年第{quarter}季度运行情况",
        title_en=f"{name_en}: quarterly report {q.period}",
        sections=tuple(sections),
        charts=tuple(charts),
        scope=q.scope.label,
        meta={
            "as_of": q.as_of,
            "closed": q.closed,
            "cutoff_at": utc_text(cutoff_at),
            "npl_rule": q.part.npl_rule,
        },
    )


@contextmanager
def _report_settings(session: Session) -> Iterator[None]:
    """Settings for the report's statements on PostgreSQL, for this transaction only
    (`set_config(…, true)`) and set back as they were after them:
    - JIT off: the NPL query's unions and CTEs are estimated at millions of rows they
      never reach, and compiling them took longer than running them (2.7 s against
      0.9 s on 1,000,000 loans);
    - custom plans only: psycopg prepares a statement run five times on a connection and
      PostgreSQL then tries a generic plan, which for the NPL query ran past 10 minutes
      on 1,000,000 loans (7 s with the values bound)."""
    if session.get_bind().dialect.name != "postgresql":
        yield
        return
    names = ("jit", "plan_cache_mode")
    was = {n: session.scalar(text("SELECT current_setting(:n)"), {"n": n}) for n in names}
    for name, value in (("jit", "off"), ("plan_cache_mode", "force_custom_plan")):
        session.execute(text("SELECT set_config(:n, :v, true)"), {"n": name, "v": value})
    yield
    for name, value in was.items():
        session.execute(text("SELECT set_config(:n, :v, true)"), {"n": name, "v": value})


# --- the figures per bank and product --------------------------------------------------------
# (key, 中文, English, kind, additive): additive figures sum from products to banks to the
# total; the others are worked out again at each level.
MEASURES: tuple[tuple[str, str, str, str], ...] = (
    ("loans", "本季投放笔数", "loans disbursed in the quarter", "int"),
    ("principal", "本季投放金额", "principal disbursed in the quarter", "money"),
    ("enterprises", "支持企业数", "enterprises supported (distinct)", "int"),
    ("outstanding", "季末贷款余额", "principal outstanding at the quarter end", "money"),
    ("npl", "不良贷款本金", "principal 90+ days past due (NPL)", "money"),
    ("npl_ratio_bp", "不良率", "NPL ratio", "bp"),
    ("npl_at_threshold", "不良率达到3%", "NPL ratio at or above the threshold", "bool"),
    ("claims_filed", "代偿申请笔数", "claims filed", "int"),
    ("requested", "申请代偿金额", "compensation requested", "money"),
    ("claims_approved", "批准笔数", "claims approved", "int"),
    ("approved", "批准代偿金额", "compensation approved", "money"),
    ("claims_capped", "触及上限笔数", "claims capped", "int"),
    ("capped_bank_bears", "超限由银行承担", "borne by the bank beyond the cap", "money"),
    ("claims_rejected", "驳回笔数", "claims rejected", "int"),
    ("claims_paid", "拨付笔数", "claims paid", "int"),
    ("paid", "拨付代偿金额", "compensation paid", "money"),
    ("recoveries", "追偿笔数", "recoveries reported", "int"),
    ("recovered", "追偿回收金额", "amount recovered", "money"),
    ("recovery_costs", "追偿费用", "recovery costs", "money"),
    ("returned", "应返还基金金额", "returned to the funds", "money"),
)
# the programme's returns are receivables (XB-R1, XB-R2): refunds due and receipts too
RECEIVABLE_MEASURES: tuple[tuple[str, str, str, str], ...] = (
    ("refunds", "应退回代偿金额", "compensation to be refunded", "money"),
    ("received", "收到银行返还", "received from banks", "money"),
)
DERIVED = ("enterprises", "npl_ratio_bp", "npl_at_threshold")


def _measures(q: Quarter) -> tuple[tuple[str, str, str, str], ...]:
    if q.program.recovery_due_working_days is not None:
        return MEASURES + RECEIVABLE_MEASURES
    return MEASURES


def _add(into: dict[Key, dict[str, int]], rows: Iterable[Any], *names: str) -> None:
    for row in rows:
        key = (str(row[0]), str(row[1] or ""))
        figures = into.setdefault(key, {})
        for name, value in zip(names, row[2:], strict=True):
            figures[name] = figures.get(name, 0) + int(value or 0)


def _figures(q: Quarter) -> None:
    session, part = q.session, q.part
    rows: dict[Key, dict[str, int]] = {}
    product = part.loan_product()
    in_quarter = and_(Loan.disbursed_on >= q.start, Loan.disbursed_on <= q.as_of)
    loans_of = [Loan.program == q.code, q.cut.by(Loan), *q.scope.loans()]

    # loans disbursed in the quarter (filed by the cut-off) and the enterprises they serve,
    # per bank and product, per bank and in all: one pass over the quarter's loans (the
    # banks named, so the (bank, programme, disbursement) index can serve it)
    lenders = list(
        session.scalars(select(Agreement.bank_code).where(Agreement.program == q.code).distinct())
    )
    lent = (
        select(
            Loan.bank_code.label("bank"),
            product.label("product"),
            Loan.enterprise_id.label("enterprise"),
            Loan.principal_fen.label("fen"),
        )
        .where(*loans_of, in_quarter, Loan.bank_code.in_(lenders))
        .cte("quarter_loans")
    )
    distinct = func.count(func.distinct(lent.c.enterprise))
    none = literal("", String)
    level = union_all(
        select(
            literal(0), lent.c.bank, lent.c.product, func.count(), func.sum(lent.c.fen), distinct
        ).group_by(lent.c.bank, lent.c.product),
        select(literal(1), lent.c.bank, none, literal(0), literal(0), distinct).group_by(
            lent.c.bank
        ),
        select(literal(2), none, none, literal(0), literal(0), distinct),
    )
    bank_enterprises: dict[str, int] = {}
    all_enterprises = 0
    for depth, bank, key, count, fen, enterprises in session.execute(level):
        if depth == 0:
            _add(rows, [(bank, key, count, fen, enterprises)], "loans", "principal", "enterprises")
        elif depth == 1:
            bank_enterprises[str(bank)] = int(enterprises)
        else:
            all_enterprises = int(enterprises or 0)
    for key, fen in outstanding(q, q.as_of, by="product").items():
        rows.setdefault(key, {})["outstanding"] = fen
    for key, fen in npl(q, q.as_of).items():
        rows.setdefault(key, {})["npl"] = fen
    _claim_figures(q, rows)

    # every bank of the programme in scope gets a row, with or without figures
    banks = set(
        q.session.scalars(
            select(Agreement.bank_code).where(
                Agreement.program == q.code, q.cut.by(Agreement), *q.scope.agreements()
            )
        )
    ) | {b for b, _ in rows}
    q.bank_names = {
        str(c): str(n)
        for c, n in session.execute(select(Bank.code, Bank.name).where(Bank.code.in_(banks)))
    }
    measures = [m[0] for m in _measures(q)]
    additive = [m for m in measures if m not in DERIVED]
    q.rows = {k: _complete(v, additive) for k, v in sorted(rows.items())}
    q.bank_rows = {b: dict.fromkeys(additive, 0) for b in sorted(banks)}
    for (bank, _), figures in q.rows.items():
        for m in additive:
            q.bank_rows[bank][m] += figures[m]
    q.totals = dict.fromkeys(additive, 0)
    for bank, figures in q.bank_rows.items():
        figures["enterprises"] = int(bank_enterprises.get(bank, 0))
        for m in additive:
            q.totals[m] += figures[m]
    q.totals["enterprises"] = int(all_enterprises or 0)


def _complete(figures: dict[str, int], names: list[str]) -> dict[str, int]:
    return {**dict.fromkeys(names, 0), **figures}


def _ratio(q: Quarter, figures: Mapping[str, int]) -> dict[str, Value]:
    """The NPL ratio in basis points (rounded down; None with nothing outstanding) and
    whether it reaches the programme's threshold (compared exactly)."""
    out, bad = figures["outstanding"], figures["npl"]
    threshold = q.part.npl_threshold_bp
    return {
        "npl_ratio_bp": bad * 10_000 // out if out > 0 else None,
        "npl_at_threshold": (
            None if threshold is None else out > 0 and bad * 10_000 >= threshold * out
        ),
    }


# --- the book at a date: outstanding and non-performing principal ---------------------------
def loan_days(session: Session) -> ColumnElement[int]:
    """A loan's contractual days (maturity − disbursement), on either database."""
    if session.get_bind().dialect.name == "postgresql":
        return cast(Loan.maturity_on - Loan.disbursed_on, Integer)
    return cast(func.julianday(Loan.maturity_on) - func.julianday(Loan.disbursed_on), Integer)


def outstanding(q: Quarter, on: date, *, by: str) -> dict[Key, int]:
    """Principal outstanding on `on` per (bank, product) (`by="product"`) or per (bank,
    fund) (`by="fund"`): Σ principal of the loans disbursed by then less Σ principal repaid
    by then, both recorded by the cut-off. From the day totals (the database's running
    sums per bank, fund, product, security and day) less the loans and repayments
    recorded after the cut-off; summed over the loans where the programme's product is
    not made of day-total keys (`QuarterlyPart.day_total_product`)."""
    session = q.session
    by_fund = by == "fund"
    loan_key = func.coalesce(Loan.fund_code, "") if by_fund else q.part.loan_product()
    day_key = func.coalesce(LoanDayTotal.fund_code, "") if by_fund else q.part.day_total_product()
    out: dict[Key, int] = defaultdict(int)
    if day_key is None:
        loans_of = [Loan.program == q.code, q.cut.by(Loan), *q.scope.loans()]
        lent = select(Loan.bank_code, loan_key, func.sum(Loan.principal_fen)).where(
            *loans_of, Loan.disbursed_on <= on
        )
        repaid = (
            select(Loan.bank_code, loan_key, func.sum(LoanRepayment.principal_fen))
            .join(Loan, Loan.id == LoanRepayment.loan_id)
            .where(*loans_of, LoanRepayment.paid_on <= on, q.cut.by(LoanRepayment))
        )
        for stmt, sign in ((lent, 1), (repaid, -1)):
            for bank, key, fen in session.execute(stmt.group_by(Loan.bank_code, loan_key)):
                out[(str(bank), str(key or ""))] += sign * int(fen or 0)
        return dict(out)
    totals = (
        select(
            LoanDayTotal.bank_code,
            day_key,
            func.sum(LoanDayTotal.disbursed_fen - LoanDayTotal.repaid_fen),
        )
        .where(LoanDayTotal.program == q.code, LoanDayTotal.day <= on, *q.scope.day_totals())
        .group_by(LoanDayTotal.bank_code, day_key)
    )
    for bank, key, fen in session.execute(totals):
        out[(str(bank), str(key or ""))] += int(fen or 0)
    late_loan = [Loan.program == q.code, q.cut.after(Loan), *q.scope.loans()]
    corrections = [
        # loans recorded after the cut-off: not lent as of the cut-off …
        (
            select(Loan.bank_code, loan_key, func.sum(Loan.principal_fen)).where(
                *late_loan, Loan.disbursed_on <= on
            ),
            -1,
        ),
        # … nor their repayments made
        (
            select(Loan.bank_code, loan_key, func.sum(LoanRepayment.principal_fen))
            .join(LoanRepayment, LoanRepayment.loan_id == Loan.id)
            .where(*late_loan, LoanRepayment.paid_on <= on),
            1,
        ),
        # repayments recorded after the cut-off on loans recorded by it
        (
            select(Loan.bank_code, loan_key, func.sum(LoanRepayment.principal_fen))
            .join(Loan, Loan.id == LoanRepayment.loan_id)
            .where(
                q.cut.after(LoanRepayment),
                LoanRepayment.paid_on <= on,
                Loan.program == q.code,
                q.cut.by(Loan),
                *q.scope.loans(),
            ),
            1,
        ),
    ]
    for stmt, sign in corrections:
        for bank, key, fen in session.execute(stmt.group_by(Loan.bank_code, loan_key)):
            out[(str(bank), str(key or ""))] += sign * int(fen or 0)
    return {k: v for k, v in out.items() if v}


def outstanding_sums(q: Quarter, ends: Sequence[date]) -> dict[date, int]:
    """Per date: the principal outstanding in scope, Σ `outstanding(q, end, by="fund")`,
    for all the dates in one pass over the day totals and each correction."""
    if not ends:
        return {}
    last = max(ends)

    def upto(day: Any, value: Any) -> list[Any]:
        return [func.coalesce(func.sum(case((day <= end, value), else_=0)), 0) for end in ends]

    paid = LoanRepayment.principal_fen
    late_loan = [Loan.program == q.code, q.cut.after(Loan), *q.scope.loans()]
    statements = [
        (
            select(*upto(LoanDayTotal.day, LoanDayTotal.disbursed_fen - LoanDayTotal.repaid_fen))
            .where(LoanDayTotal.program == q.code, LoanDayTotal.day <= last)
            .where(*q.scope.day_totals()),
            1,
        ),
        # loans recorded after the cut-off: not lent as of the cut-off, nor repaid
        (
            select(*upto(Loan.disbursed_on, Loan.principal_fen)).where(
                *late_loan, Loan.disbursed_on <= last
            ),
            -1,
        ),
        (
            select(*upto(LoanRepayment.paid_on, paid))
            .select_from(Loan)
            .join(LoanRepayment, LoanRepayment.loan_id == Loan.id)
            .where(*late_loan, LoanRepayment.paid_on <= last),
            1,
        ),
        # repayments recorded after the cut-off on loans recorded by it
        (
            select(*upto(LoanRepayment.paid_on, paid))
            .select_from(LoanRepayment)
            .join(Loan, Loan.id == LoanRepayment.loan_id)
            .where(
                q.cut.after(LoanRepayment),
                LoanRepayment.paid_on <= last,
                Loan.program == q.code,
                q.cut.by(Loan),
                *q.scope.loans(),
            ),
            1,
        ),
    ]
    out = dict.fromkeys(ends, 0)
    for stmt, sign in statements:
        sums = q.session.execute(stmt).one()
        for end, fen in zip(ends, sums, strict=True):
            out[end] += sign * int(fen or 0)
    return out


def late_loans(q: Quarter, on: date) -> Subquery:
    """The programme's loans in scope that are non-performing on `on` by the programme's
    NPL rule, as of the cut-off (`app.loans.arrears.late_loans` with the cut-off's rows),
    each with its bank, product and the principal it still owes on `on` by the
    repayments recorded by the cut-off (`loan_id`, `bank_code`, `product`, `left`). The
    repayments are summed per late loan by index lookups (a few tens of thousands of
    loans, against millions of repayments)."""
    rule = q.program.policy.arrears_rule("npl")
    late = arrears.late_loans(
        q.code,
        on,
        rule,
        where=tuple(q.scope.loans()),
        recorded=q.cut,
        columns=(
            Loan.bank_code.label("bank_code"),
            q.part.loan_product().label("product"),
            Loan.principal_fen.label("principal_fen"),
        ),
    ).subquery()
    paid = (
        select(func.coalesce(func.sum(LoanRepayment.principal_fen), 0))
        .where(
            LoanRepayment.loan_id == late.c.id,
            LoanRepayment.paid_on <= on,
            q.cut.by(LoanRepayment),
        )
        .scalar_subquery()
    )
    return select(
        late.c.id.label("loan_id"),
        late.c.bank_code,
        late.c.product,
        (late.c.principal_fen - paid).label("left"),
    ).subquery()


def npl(q: Quarter, on: date) -> dict[Key, int]:
    """Per (bank, product): the principal still owing on `on` (repayments recorded by the
    cut-off) of the loans non-performing then (`late_loans`)."""
    bad = late_loans(q, on)
    # the larger of what is left and 0, each loan's repayments summed once (a CASE would
    # repeat the sum PostgreSQL inlines from the subquery)
    positive = func.greatest if q.session.get_bind().dialect.name == "postgresql" else func.max
    stmt = select(bad.c.bank_code, bad.c.product, func.sum(positive(bad.c.left, 0))).group_by(
        bad.c.bank_code, bad.c.product
    )
    return {(str(b), str(p or "")): int(fen or 0) for b, p, fen in q.session.execute(stmt) if fen}


# --- claims, recoveries, returns ---------------------------------------------------------------
def _claim_figures(q: Quarter, rows: dict[Key, dict[str, int]]) -> None:
    session = q.session
    product = q.part.loan_product()
    scoped = q.claims_in_scope()
    t = ClaimTransition
    compensated = tuple(q.program.workflow.compensated)
    within = and_(t.business_date >= q.start, t.business_date <= q.as_of)

    _add(
        rows,
        session.execute(
            select(Claim.bank_code, product, func.count(), func.sum(Claim.requested_fen))
            .join(Loan, Loan.id == Claim.loan_id)
            .where(*scoped, Claim.filed_on >= q.start, Claim.filed_on <= q.as_of)
            .group_by(Claim.bank_code, product)
        ),
        "claims_filed",
        "requested",
    )
    approval = t.to_status.in_(APPROVED)
    capped = and_(approval, Claim.capped_by.is_not(None))
    payment = and_(
        t.to_status.in_(compensated),
        or_(t.from_status.is_(None), t.from_status.not_in(compensated)),
    )

    def when(cond: ColumnElement[bool], value: Any = 1) -> Any:
        return func.sum(case((cond, value), else_=0))

    _add(
        rows,
        session.execute(
            select(
                Claim.bank_code,
                product,
                when(approval),
                when(approval, Claim.approved_fen),
                when(capped),
                when(capped, Claim.requested_fen - Claim.approved_fen),
                when(t.to_status == REJECTED),
                when(payment),
                when(payment, Claim.approved_fen),
            )
            .select_from(t)
            .join(Claim, Claim.id == t.claim_id)
            .join(Loan, Loan.id == Claim.loan_id)
            .where(
                *scoped,
                within,
                q.cut.by(t),
                or_(t.to_status.in_(DECIDED), payment),
            )
            .group_by(Claim.bank_code, product)
        ),
        "claims_approved",
        "approved",
        "claims_capped",
        "capped_bank_bears",
        "claims_rejected",
        "claims_paid",
        "paid",
    )
    r = ClaimRecovery
    _add(
        rows,
        session.execute(
            select(
                Claim.bank_code,
                product,
                func.count(),
                func.sum(r.amount_fen),
                func.sum(r.costs_fen),
                func.sum(r.returned_fen),
            )
            .select_from(r)
            .join(Claim, Claim.id == r.claim_id)
            .join(Loan, Loan.id == Claim.loan_id)
            .where(*scoped, r.recovered_on >= q.start, r.recovered_on <= q.as_of, q.cut.by(r))
            .group_by(Claim.bank_code, product)
        ),
        "recoveries",
        "recovered",
        "recovery_costs",
        "returned",
    )
    if q.program.recovery_due_working_days is None:
        return
    for model, dated, name in (
        (ClaimClawback, ClaimClawback.decided_on, "refunds"),
        (ClaimReceipt, ClaimReceipt.received_on, "received"),
    ):
        _add(
            rows,
            session.execute(
                select(Claim.bank_code, product, func.sum(model.amount_fen))
                .select_from(model)
                .join(Claim, Claim.id == model.claim_id)
                .join(Loan, Loan.id == Claim.loan_id)
                .where(*scoped, dated >= q.start, dated <= q.as_of, q.cut.by(model))
                .group_by(Claim.bank_code, product)
            ),
            name,
        )


def under_review(
    session: Session,
    program: str,
    on: date,
    *,
    bank_code: str | None = None,
    cutoff_at: datetime | None = None,
) -> dict[tuple[str, str], int]:
    """Per (bank, fund): the funds' share requested by the claims filed by `on` and not
    decided by then (neither approved nor rejected: waiting for a review, or returned to
    the bank for correction), counting only what was recorded by `cutoff_at` (None:
    everything). What the claims still under review would take if all were approved."""
    params: dict[str, Any] = {"program": program, "on": on}
    if cutoff_at is not None:
        params["cutoff_at"] = cutoff_at
    if bank_code is not None:
        params["bank"] = bank_code
    rows = session.execute(
        _under_review_statement(cutoff_at is not None, bank_code is not None), params
    )
    return {(str(b), str(f or "")): int(fen or 0) for b, f, fen in rows}


@functools.cache
def _under_review_statement(cut_off: bool, by_bank: bool) -> Select[*tuple[Any, ...]]:
    """`under_review`'s statement, built once each way: the programme, the date, the
    cut-off and the bank are bound parameters."""
    t = ClaimTransition
    on: BindParameter[Any] = bindparam("on")
    decided = select(t.claim_id).where(
        t.claim_id == Claim.id, t.to_status.in_(DECIDED), t.business_date <= on
    )
    filed = [Claim.program == bindparam("program"), Claim.filed_on <= on]
    if cut_off:
        decided = decided.where(t.at <= bindparam("cutoff_at"))
        filed.append(Claim.created_at <= bindparam("cutoff_at"))
    if by_bank:
        filed.append(Claim.bank_code == bindparam("bank"))
    # an anti-join on each claim's history (its index), not a hashed list of every
    # decided claim of both programmes
    stmt = select(Claim.bank_code, Claim.fund_code, func.sum(Claim.requested_fen)).where(
        *filed, ~decided.exists()
    )
    return stmt.group_by(Claim.bank_code, Claim.fund_code)


# --- the ledger ----------------------------------------------------------------------------
def ledger_sums(q: Quarter, specs: Iterable[LedgerSpec]) -> list[int]:
    """Each spec's movement in the quarter (business dates [start, as of], entries recorded
    by the cut-off) on the accounts of its `kinds` (of its `funds`), in entries of its
    `event_types` posted for the claims in scope: debits less credits, or credits less
    debits (`credit`). Reversals (L-2) carry their original's event and count against
    it. One query for all of them."""
    specs = list(specs)
    if not specs:
        return []
    entry, leg, account = LedgerEntry, LedgerLeg, LedgerAccount
    in_scope = select(cast(Claim.id, String)).where(*q.claims_in_scope())
    kinds = sorted({k for s in specs for k in s.kinds})
    events = sorted({e for s in specs for e in s.event_types})
    found: dict[tuple[str, str, str], int] = {}
    for kind, event, fund, fen in q.session.execute(
        select(account.kind, entry.event_type, account.fund_code, func.sum(leg.amount_fen))
        .select_from(leg)
        .join(account, account.id == leg.account_id)
        .join(entry, entry.id == leg.entry_id)
        .where(
            account.kind.in_(kinds),
            entry.event_type.in_(events),
            entry.business_date >= q.start,
            entry.business_date <= q.as_of,
            q.cut.by(entry),
            entry.event_id.in_(in_scope),
        )
        .group_by(account.kind, entry.event_type, account.fund_code)
    ):
        found[(str(kind), str(event), str(fund))] = int(fen or 0)
    out = []
    for spec in specs:
        total = sum(
            fen
            for (kind, event, fund), fen in found.items()
            if kind in spec.kinds
            and event in spec.event_types
            and (spec.funds is None or fund in spec.funds)
        )
        out.append(-total if spec.credit else total)
    return out


def balance(
    q: Quarter, *, fund: str, kinds: tuple[str, ...] = (), types: tuple[str, ...] = ()
) -> int:
    """The fund's balance as of `as_of` (entries recorded by the cut-off) over the accounts
    of `kinds` or of `types` (debit positive)."""
    account = LedgerAccount
    stmt = (
        select(func.coalesce(func.sum(LedgerLeg.amount_fen), 0))
        .select_from(LedgerLeg)
        .join(account, account.id == LedgerLeg.account_id)
        .join(LedgerEntry, LedgerEntry.id == LedgerLeg.entry_id)
        .where(
            account.fund_code == fund,
            LedgerEntry.business_date <= q.as_of,
            q.cut.by(LedgerEntry),
        )
    )
    if kinds:
        stmt = stmt.where(account.kind.in_(kinds))
    if types:
        stmt = stmt.where(account.type.in_(types))
    return int(q.session.scalar(stmt) or 0)


# --- sections --------------------------------------------------------------------------------
BANK_COLUMNS = (
    Column("bank_code", "银行代码", "bank code"),
    Column("bank_name", "合作银行", "bank"),
)
NPL_NOTE = (
    "Loans disbursed in the quarter (business dates in the quarter, loans recorded by the "
    "cut-off); enterprises: distinct borrowers of those loans (not additive: one enterprise "
    "may borrow from several banks). Outstanding and NPL as of the quarter end (today's "
    "business date while the quarter is open): principal disbursed less principal repaid "
    "by then; NPL is the principal still owing of the loans at least 90 days past due by "
    "the programme's NPL rule (SPEC M-6: the repayment schedule against the payments "
    "recorded by the cut-off, or the bank's latest delinquency report, the worse view). "
    "Claims: filed in the quarter (filing date); approved, rejected and paid by the "
    "decision's or payment's business date in the quarter, the step recorded by the "
    "cut-off (claim_transitions.at); capped: approvals the cap or limit cut, with the part "
    "of the funds' share the bank bears. Recoveries by their recovery date, returns at the "
    "original ratio (SKD-R1, XB-R1)."
)


def _measure_columns(q: Quarter) -> tuple[Column, ...]:
    out = []
    for key, zh, en, kind in _measures(q):
        if key == "npl_at_threshold":
            threshold = q.part.npl_threshold_bp
            if threshold is None:
                continue
            pct = f"{threshold // 100}%" if threshold % 100 == 0 else f"{threshold / 100}%"
            zh = f"不良率达到{pct}"
            en = f"NPL ratio at or above {pct} ({q.part.npl_rule})"
        out.append(Column(key, zh, en, kind))  # type: ignore[arg-type]
    return tuple(out)


def _row(q: Quarter, figures: Mapping[str, int]) -> dict[str, Value]:
    return {**figures, **_ratio(q, figures)}


def _totals_section(q: Quarter) -> Section:
    return Section(
        "totals",
        "合计",
        "Totals",
        _measure_columns(q),
        (_row(q, q.totals),),
        note="The sum of the bank rows (enterprises: distinct over the programme). " + NPL_NOTE,
    )


def _banks_section(q: Quarter) -> Section:
    rows = tuple(
        {"bank_code": b, "bank_name": q.bank_name(b), **_row(q, f)} for b, f in q.bank_rows.items()
    )
    return Section(
        "banks",
        "分银行",
        "Per bank",
        BANK_COLUMNS + _measure_columns(q),
        rows,
        note="One row per cooperating bank in scope, figures summed over its products. " + NPL_NOTE,
    )


def _products_section(q: Quarter) -> Section:
    rows = tuple(
        {"bank_code": b, "bank_name": q.bank_name(b), "product": p, **_row(q, f)}
        for (b, p), f in q.rows.items()
    )
    return Section(
        "products",
        "分银行分产品",
        "Per bank and product",
        (*BANK_COLUMNS, Column("product", "产品", "product"), *_measure_columns(q)),
        rows,
        note="One row per bank and product with any figure; each bank's rows sum to its "
        "row in `banks` (enterprises aside). " + NPL_NOTE,
    )


SUSPENSION_COLUMNS = (
    *BANK_COLUMNS,
    Column("kind", "类别", "kind"),
    Column("agreement_id", "协议编号", "agreement", "int"),
    Column("fund_code", "资金", "fund"),
    Column("since", "起始日期", "since", "date"),
    Column("reason", "原因", "reason"),
)


def _suspensions_section(q: Quarter, notices: Iterable[dict[str, Value]]) -> Section:
    """Agreements suspended and funds stopped as recorded at the cut-off (their status
    from their event history up to it), and the programme's warnings in force."""
    session, cut = q.session, q.cut
    e = AgreementEvent
    last = (
        select(
            e.agreement_id,
            e.to_status,
            e.action,
            e.reason,
            e.at,
            func.row_number().over(partition_by=e.agreement_id, order_by=e.id.desc()).label("n"),
        )
        .where(cut.by(e))
        .subquery()
    )
    first = select(
        e.agreement_id,
        e.from_status,
        func.row_number().over(partition_by=e.agreement_id, order_by=e.id).label("n"),
    ).subquery()
    status = case(
        (last.c.to_status.is_not(None), last.c.to_status),
        (first.c.from_status.is_not(None), first.c.from_status),
        else_=Agreement.status,
    )
    found = session.execute(
        select(
            Agreement.bank_code,
            Agreement.id,
            Agreement.fund_code,
            status,
            last.c.reason,
            last.c.at,
            Agreement.created_at,
        )
        .outerjoin(last, and_(last.c.agreement_id == Agreement.id, last.c.n == 1))
        .outerjoin(first, and_(first.c.agreement_id == Agreement.id, first.c.n == 1))
        .where(Agreement.program == q.code, cut.by(Agreement), *q.scope.agreements())
        .order_by(Agreement.bank_code, Agreement.id)
    )
    rows: list[dict[str, Value]] = []
    for bank, agreement_id, fund, state, reason, at, created in found:
        if state != "suspended":
            continue
        rows.append(
            {
                "bank_code": bank,
                "bank_name": q.bank_name(bank),
                "kind": "agreement_suspended",
                "agreement_id": agreement_id,
                "fund_code": fund,
                "since": (at or created).astimezone(CHINA_TZ).date(),
                "reason": reason or "",
            }
        )
    f = FundEvent
    stops = session.execute(
        select(f.fund_code, f.to_status, f.reason, f.at)
        .join(Fund, Fund.code == f.fund_code)
        .where(Fund.program == q.code, cut.by(f))
        .order_by(f.fund_code, f.id)
    )
    state_of: dict[str, tuple[str, str, datetime]] = {}
    for fund, to_status, reason, at in stops:
        state_of[str(fund)] = (str(to_status), str(reason), at)
    for fund, (to_status, reason, at) in sorted(state_of.items()):
        if to_status == "stopped":
            rows.append(
                {
                    "bank_code": None,
                    "bank_name": None,
                    "kind": "fund_stopped",
                    "agreement_id": None,
                    "fund_code": fund,
                    "since": at.astimezone(CHINA_TZ).date(),
                    "reason": reason,
                }
            )
    rows += [dict(n) for n in notices]
    return Section(
        "suspensions",
        "暂停与预警",
        "Suspensions and warnings in force",
        SUSPENSION_COLUMNS,
        tuple(rows),
        note="Agreements suspended (SKD-Q3, XB-Q1) as recorded at the cut-off: each "
        "agreement's status from its history of suspensions and resumptions "
        "(agreement_events.at), with the reason and date of the last change; funds whose "
        "new business is stopped (XB-Q2, fund_events.at); the programme's warnings at the "
        "quarter end (XB-Q1: 50 % of a bank's annual limit used).",
    )


OVERDUE_COLUMNS = (
    Column("claim_id", "代偿申请编号", "claim", "int"),
    *BANK_COLUMNS,
    Column("stage", "环节", "stage"),
    Column("deadline", "期限", "deadline", "date"),
    Column("days_overdue", "逾期天数", "days overdue", "int"),
    Column("provisional", "临时日历", "provisional calendar", "bool"),
)


def _overdue_section(q: Quarter) -> Section:
    """Claim steps past their stored deadline at the quarter end (XB-C2) and collections
    not received by their due date (XB-R1), as `app.claims.overdue.overdue_steps` reads
    them, with each claim's status taken from its history as of the quarter end."""
    workflow = q.program.workflow
    rows: list[dict[str, Value]] = []
    deadlines = dict(workflow.deadlines)
    receivable = q.program.recovery_due_working_days is not None
    if deadlines or receivable:
        rows = _overdue_rows(q, deadlines, receivable)
    return Section(
        "overdue_steps",
        "超期环节",
        "Steps past their deadline",
        OVERDUE_COLUMNS,
        tuple(rows),
        note="As of the quarter end: a claim waiting (by its history up to then, recorded "
        "by the cut-off) at a step whose stored deadline had passed (XB-C2: the manager's "
        "opinion in 7 working days, the payment in 20), and a collection's share not "
        "received by its due date (XB-R1: 10 working days; receipts settle the earliest "
        "first). A programme whose steps store no deadline (SKD) has none.",
    )


def _overdue_rows(
    q: Quarter, deadlines: Mapping[str, Any], receivable: bool
) -> list[dict[str, Value]]:
    session, t = q.session, ClaimTransition
    ranked = (
        select(
            t.claim_id,
            t.to_status,
            func.row_number().over(partition_by=t.claim_id, order_by=t.id.desc()).label("n"),
        )
        .where(
            t.business_date <= q.as_of,
            q.cut.by(t),
            # the latest step of each claim in scope: the histories of the other
            # programme's claims are not ranked
            t.claim_id.in_(select(Claim.id).where(*q.claims_in_scope())),
        )
        .subquery()
    )
    waiting = {d.status for d in deadlines.values()}
    compensated = set(q.program.workflow.compensated) if receivable else set()
    r = ClaimRecovery
    dues = and_(  # a collection's share that was due before the date
        r.returned_fen > 0, r.due_on < q.as_of, r.recovered_on <= q.as_of, q.cut.by(r)
    )
    found = session.execute(
        select(
            Claim.id,
            Claim.bank_code,
            Claim.deadlines,
            Claim.provisional_deadlines,
            ranked.c.to_status,
        )
        .join(ranked, and_(ranked.c.claim_id == Claim.id, ranked.c.n == 1))
        .where(
            *q.claims_in_scope(),
            or_(
                ranked.c.to_status.in_(waiting),
                and_(
                    ranked.c.to_status.in_(compensated),
                    select(r.id).where(r.claim_id == Claim.id, dues).exists(),
                ),
            ),
        )
        .order_by(Claim.id)
    ).all()
    out: list[tuple[date, int, dict[str, Value]]] = []
    bank_of: dict[int, str] = {}

    def add(claim_id: int, stage: str, due: date, provisional: bool) -> None:
        bank = bank_of[claim_id]
        row: dict[str, Value] = {
            "claim_id": claim_id,
            "bank_code": bank,
            "bank_name": q.bank_name(bank),
            "stage": stage,
            "deadline": due,
            "days_overdue": (q.as_of - due).days,
            "provisional": provisional,
        }
        out.append((due, claim_id, row))

    paid: list[int] = []
    for claim_id, bank, stored, provisional, status in found:
        bank_of[claim_id] = str(bank)
        for name, d in deadlines.items():
            raw = (stored or {}).get(name)
            if d.status != status or not raw or date.fromisoformat(raw) >= q.as_of:
                continue
            add(claim_id, d.stage, date.fromisoformat(raw), name in (provisional or []))
        if status in compensated:
            paid.append(claim_id)
    if paid:
        recoveries: dict[int, list[tuple[int, date | None, bool]]] = defaultdict(list)
        for claim_id, returned, due_on, provisional in session.execute(
            select(r.claim_id, r.returned_fen, r.due_on, r.due_on_provisional)
            .where(r.claim_id.in_(paid), r.recovered_on <= q.as_of, q.cut.by(r))
            .order_by(r.id)
        ):
            recoveries[claim_id].append((int(returned), due_on, bool(provisional)))
        received = dict(
            session.execute(
                select(ClaimReceipt.claim_id, func.sum(ClaimReceipt.amount_fen))
                .where(
                    ClaimReceipt.claim_id.in_(paid),
                    ClaimReceipt.received_on <= q.as_of,
                    q.cut.by(ClaimReceipt),
                )
                .group_by(ClaimReceipt.claim_id)
            ).all()
        )
        for claim_id in paid:  # receipts settle the earliest dues first
            left = int(received.get(claim_id) or 0)
            for returned, due_on, provisional in recoveries[claim_id]:
                if not returned:
                    continue
                if left >= returned:
                    left -= returned
                    continue
                if due_on and due_on < q.as_of:
                    add(claim_id, "recovery_distribution", due_on, provisional)
                break
    return [row for _, _, row in sorted(out, key=lambda x: (x[0], x[1]))]


TREND_COLUMNS = (
    Column("period", "季度", "quarter"),
    Column("quarter_end", "季末", "quarter end", "date"),
    Column("outstanding", "贷款余额", "principal outstanding", "money"),
    Column("npl", "不良贷款本金", "NPL principal", "money"),
    Column("npl_ratio_bp", "不良率", "NPL ratio", "bp"),
    Column("source", "来源", "source"),
)


def _trend_section(q: Quarter) -> Section:
    """The last four quarters: this report's own figures for this quarter; for the three
    before, the programme's quarter-end evaluation of each (the latest run recorded by
    the cut-off, summed over the banks in scope), or the principal outstanding computed
    from the books where none was run (its NPL left empty)."""
    ends: list[tuple[str, date]] = []
    y, n = q.year, q.quarter
    for _ in range(4):
        ends.append((f"{y}-Q{n}", quarter_end(y, n)))
        y, n = (y, n - 1) if n > 1 else (y - 1, 4)
    ends.reverse()
    stored = _evaluated(q, [e for _, e in ends[:-1]])
    computed = outstanding_sums(q, [e for _, e in ends[:-1] if e not in stored])
    rows: list[dict[str, Value]] = []
    for period, end in ends[:-1]:
        if end in stored:
            evaluation_id, out, bad = stored[end]
            rows.append(_trend_row(period, end, out, bad, f"evaluation {evaluation_id}"))
        else:
            rows.append(_trend_row(period, end, computed[end], None, "computed, not evaluated"))
    rows.append(
        _trend_row(q.period, q.as_of, q.totals["outstanding"], q.totals["npl"], "this report")
    )
    return Section(
        "trend",
        "季度趋势",
        "Quarterly trend",
        TREND_COLUMNS,
        tuple(rows),
        note="This quarter: the figures of this report (as of its last day, or today while "
        "open). The three quarters before: the outstanding and NPL principal stored by the "
        "programme's quarter-end evaluation of that quarter (SKD-Q3, XB-Q1; the latest run "
        "recorded by the cut-off), summed over the banks in scope; without one, the "
        "outstanding principal from the books and no NPL figure. A scope narrower than a "
        "bank (a fund, a region) reads no evaluation, which is stored per bank.",
    )


def _trend_row(period: str, end: date, out: int, bad: int | None, source: str) -> dict[str, Value]:
    ratio = bad * 10_000 // out if bad is not None and out > 0 else None
    return {
        "period": period,
        "quarter_end": end,
        "outstanding": out,
        "npl": bad,
        "npl_ratio_bp": ratio,
        "source": source,
    }


def _evaluated(q: Quarter, ends: list[date]) -> dict[date, tuple[int, int, int]]:
    """Per quarter end: (evaluation id, Σ outstanding, Σ NPL) of the latest evaluation of
    that quarter end recorded by the cut-off, over the banks in scope (fund scopes: none)."""
    if q.scope.funds is not None:
        return {}
    ev = QuarterEvaluation
    latest = (
        select(ev.quarter_end, func.max(ev.id).label("id"))
        .where(ev.program == q.code, ev.quarter_end.in_(ends), q.cut.by(ev))
        .group_by(ev.quarter_end)
        .subquery()
    )
    r = QuarterBankResult
    stmt = (
        select(
            latest.c.quarter_end,
            latest.c.id,
            func.coalesce(func.sum(r.outstanding_fen), 0),
            func.coalesce(func.sum(r.npl_fen), 0),
        )
        .select_from(latest)
        .outerjoin(
            r,
            and_(
                r.evaluation_id == latest.c.id,
                r.bank_code == q.scope.bank_code if q.scope.bank_code is not None else true(),
            ),
        )
        .group_by(latest.c.quarter_end, latest.c.id)
    )
    return {end: (int(i), int(o), int(b)) for end, i, o, b in q.session.execute(stmt)}


RECONCILIATION_COLUMNS = (
    Column("line", "代码", "line"),
    Column("figure", "项目", "figure"),
    Column("figure_zh", "项目（中文）", "figure (Chinese)"),
    Column("report", "报表数", "in this report", "money"),
    Column("ledger", "台账数", "in the ledger", "money"),
    Column("difference", "差额", "difference", "money"),
)


def _reconciliation_section(q: Quarter, lines: Iterable[LedgerLine]) -> Section:
    lines = list(lines)
    booked = ledger_sums(q, [line.ledger for line in lines])
    rows: tuple[dict[str, Value], ...] = tuple(
        {
            "line": line.key,
            "figure": line.en,
            "figure_zh": line.zh,
            "report": line.report_fen,
            "ledger": fen,
            "difference": line.report_fen - fen,
        }
        for line, fen in zip(lines, booked, strict=True)
    )
    return Section(
        "reconciliation",
        "与台账核对",
        "Reconciliation with the ledger",
        RECONCILIATION_COLUMNS,
        rows,
        note="Each money figure of the claims in scope for the quarter beside the same "
        "movement in the journal: the entries of the claims' events with a business date "
        "in the quarter, recorded by the cut-off (ledger_entries.recorded_at), on the "
        "accounts the programme posts that money to (L-1); reversals (L-2) count. A "
        "difference other than 0.00 is a posting the claims' records do not show, or the "
        "reverse.",
    )


__all__ = [
    "Extension",
    "LedgerLine",
    "LedgerSpec",
    "Quarter",
    "QuarterlyPart",
    "Scope",
    "balance",
    "build_quarterly",
    "ledger_sums",
    "npl",
    "outstanding",
    "scope_of",
    "under_review",
]
