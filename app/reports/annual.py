"""The annual report (SKD-A1; XB-Rep's annual evaluation, 第二十一条 and 第二十二条).

`build_annual` gathers the year's figures per bank of the programme — what every
programme's assessment reads — and asks the programme for its part
(`Program.annual_report`): 苏科贷 its SKD-A1 assessment, 信保基金 its evaluation with a
recommendation per bank. One section is shared: the refused filings by rule.

The year's figures of a bank (`BankYear`), all from rows recorded by the cut-off:
- volume: the programme's loans disbursed in the year (to the as-of date), their count,
  principal and the distinct enterprises they went to;
- average annual rate: principal-weighted, Σ principal × rate ÷ Σ principal, in basis
  points rounded half up;
- approval efficiency: the claims whose final decision (approved, approved with nothing
  payable, or rejected) is dated in the year, and for each the calendar days from the
  claim's filing date to that decision, return-for-correction time included; average
  (rounded half up) and maximum. Calendar days, not working days: the SKD stages have no
  deadline in working days, and the figure compares banks;
- at the year end (the as-of date): principal outstanding, the part past the
  programme's NPL rule (M-6), the ratio in basis points rounded down, and the principal
  in arrears (`app.reports.bank_books`);
- compliance: the year's loans filed late (`filed_late`, or the programme's late-filing
  flag set when a calendar publication found them late) and the filings refused, with
  the rule IDs they broke (`FilingRefusal`, `app.loans.refusals`);
- compensation approved and paid in the year, collections the bank reported in the
  year, the returns they made due and what the funds received (the ledger)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import date, datetime

from sqlalchemy import String, case, cast, func, select
from sqlalchemy.orm import Session

from app.auth.principal import Principal
from app.errors import ValidationFailed
from app.models import Agreement, Claim, ClaimRecovery, FilingRefusal, Loan
from app.programs.base import get_program, is_late_filing_flag
from app.reports import bank_books as books
from app.reports.document import Chart, Column, ReportDocument, Section, Value


@dataclass
class BankYear:
    """One bank's year in a programme (see the module's readings)."""

    bank_code: str
    bank_name: str
    loans: int = 0
    principal_fen: int = 0
    enterprises: int = 0
    rate_weighted: int = 0  # Σ principal (fen) × annual rate (bp)
    filed_late: int = 0
    refused: int = 0
    refused_by_rule: Counter[str] = field(default_factory=Counter)
    decision_days: list[int] = field(default_factory=list)
    position: books.Position = field(default_factory=books.Position)
    approved_fen: int = 0
    approved_claims: int = 0
    paid_fen: int = 0
    recovered_fen: int = 0
    returns_fen: int = 0
    received_fen: int = 0

    @property
    def average_rate_bp(self) -> int | None:
        return books.half_up(self.rate_weighted, self.principal_fen)

    @property
    def decided(self) -> int:
        return len(self.decision_days)

    @property
    def average_days(self) -> int | None:
        return books.half_up(sum(self.decision_days), len(self.decision_days))

    @property
    def max_days(self) -> int | None:
        return max(self.decision_days, default=None)

    @property
    def npl_ratio_bp(self) -> int | None:
        return books.bp(self.position.npl_fen, self.position.outstanding_fen)


@dataclass(frozen=True)
class AnnualFigures:
    """What a programme's part of the annual report is built from."""

    program: str
    year: int
    start: date
    as_of: date
    cutoff_at: datetime
    banks: dict[str, BankYear]  # the banks in the caller's scope, by code
    scope: set[str] | None  # None: every bank


@dataclass(frozen=True)
class AnnualPart:
    """A programme's part: its title and sections (and charts)."""

    title_zh: str
    title_en: str
    sections: tuple[Section, ...]
    charts: tuple[Chart, ...] = ()


# --- the year's figures ------------------------------------------------------------------
def _in_scope(codes: set[str], scope: set[str] | None) -> set[str]:
    return codes if scope is None else codes & scope


def bank_years(
    session: Session,
    *,
    program: str,
    start: date,
    as_of: date,
    cutoff_at: datetime,
    scope: set[str] | None,
) -> dict[str, BankYear]:
    """Every bank in scope with an agreement in the programme covering part of the year,
    or with loans, refusals or claims in it, and its figures."""
    policy = get_program(program).policy
    codes = {
        str(b)
        for b in session.scalars(
            select(Agreement.bank_code).where(
                Agreement.program == program,
                Agreement.start_on <= as_of,
                Agreement.end_on > start,
            )
        )
    }
    in_year = (Loan.disbursed_on >= start, Loan.disbursed_on <= as_of)
    loans = session.execute(
        select(
            Loan.bank_code,
            func.count(),
            func.sum(Loan.principal_fen),
            func.count(func.distinct(Loan.enterprise_id)),
            func.sum(Loan.principal_fen * Loan.annual_rate_bp),
            func.sum(case((Loan.filed_late, 1), else_=0)),
        )
        .where(Loan.program == program, Loan.created_at <= cutoff_at, *in_year)
        .group_by(Loan.bank_code)
    ).all()
    flagged = Counter(
        str(bank)
        for bank, late, flags in session.execute(
            select(Loan.bank_code, Loan.filed_late, Loan.flags).where(
                Loan.program == program,
                Loan.created_at <= cutoff_at,
                *in_year,
                func.length(cast(Loan.flags, String)) > 2,  # not "[]"
            )
        )
        if not late and any(is_late_filing_flag(policy, f) for f in flags or [])
    )
    refusals = session.execute(
        select(FilingRefusal.bank_code, FilingRefusal.rules).where(
            FilingRefusal.program == program,
            FilingRefusal.business_date >= start,
            FilingRefusal.business_date <= as_of,
            FilingRefusal.at <= cutoff_at,
        )
    ).all()
    decisions = books.claim_steps(
        session,
        program=program,
        cutoff_at=cutoff_at,
        statuses=books.DECISIONS,
        since=start,
        until=as_of,
    )
    payments = books.claim_steps(
        session, program=program, cutoff_at=cutoff_at, statuses=("paid",), since=start, until=as_of
    )
    claim_ids = sorted({s.claim_id for s in decisions} | {s.claim_id for s in payments})
    claims = {
        int(c.id): c
        for c in session.execute(
            select(
                Claim.id, Claim.bank_code, Claim.filed_on, Claim.approved_fen, Claim.requested_fen
            ).where(Claim.id.in_(claim_ids))
        )
    }
    recoveries = session.execute(
        select(
            Claim.bank_code,
            func.sum(ClaimRecovery.amount_fen),
            func.sum(ClaimRecovery.returned_fen),
        )
        .join(Claim, Claim.id == ClaimRecovery.claim_id)
        .where(
            Claim.program == program,
            ClaimRecovery.recovered_on >= start,
            ClaimRecovery.recovered_on <= as_of,
            ClaimRecovery.created_at <= cutoff_at,
        )
        .group_by(Claim.bank_code)
    ).all()
    compensated = session.execute(
        select(Claim.id, Claim.bank_code).where(
            Claim.program == program, Claim.approved_fen > 0, Claim.created_at <= cutoff_at
        )
    ).all()
    ledgers = books.claim_ledgers(
        session, [int(i) for i, _ in compensated], since=start, until=as_of, cutoff_at=cutoff_at
    )
    codes |= {str(r[0]) for r in loans} | {str(b) for b, _ in refusals}
    codes |= {str(c.bank_code) for c in claims.values()} | {str(r[0]) for r in recoveries}
    codes = _in_scope(codes, scope)
    names = books.bank_names(session, codes)
    out = {code: BankYear(code, names.get(code, code)) for code in sorted(codes)}
    for bank, n, principal, enterprises, weighted, late in loans:
        if (y := out.get(str(bank))) is not None:
            y.loans, y.principal_fen, y.enterprises = int(n), int(principal or 0), int(enterprises)
            y.rate_weighted, y.filed_late = int(weighted or 0), int(late or 0)
    for bank, n in flagged.items():
        if bank in out:
            out[bank].filed_late += n
    for bank, rules in refusals:
        if (y := out.get(str(bank))) is not None:
            y.refused += 1
            y.refused_by_rule.update(rules or [])
    for step in decisions:
        c = claims[step.claim_id]
        if (y := out.get(str(c.bank_code))) is None:
            continue
        y.decision_days.append((step.business_date - c.filed_on).days)
        if step.to_status != "rejected":
            y.approved_claims += 1
            y.approved_fen += int(c.approved_fen or 0)
    for step in payments:
        c = claims[step.claim_id]
        if (y := out.get(str(c.bank_code))) is not None:
            y.paid_fen += int(c.approved_fen or 0)
    for bank, amount, returned in recoveries:
        if (y := out.get(str(bank))) is not None:
            y.recovered_fen, y.returns_fen = int(amount or 0), int(returned or 0)
    for claim_id, bank in compensated:
        if (y := out.get(str(bank))) is not None:
            y.received_fen += ledgers[int(claim_id)].received_fen
    for bank, pos in books.by_bank(
        books.positions(session, program=program, as_of=as_of, cutoff_at=cutoff_at)
    ).items():
        if bank in out:
            out[bank].position = pos
    return out


# --- the shared columns and sections -----------------------------------------------------
def c(key: str, zh: str, en: str, kind: str = "text") -> Column:
    return Column(key, zh, en, kind)  # type: ignore[arg-type]


BANK = (c("bank_code", "银行代码", "bank code"), c("bank_name", "合作银行", "bank"))
VOLUME = (
    c("loans", "投放笔数", "loans disbursed", "int"),
    c("principal", "投放金额", "principal disbursed", "money"),
    c("enterprises", "支持企业数", "enterprises supported", "int"),
    c("average_rate_bp", "加权平均年利率", "average annual rate (principal-weighted)", "bp"),
)
EFFICIENCY = (
    c("claims_decided", "审结代偿笔数", "claims decided", "int"),
    c("average_days", "平均审结天数", "average days from claim to decision", "int"),
    c("max_days", "最长审结天数", "longest days from claim to decision", "int"),
)
YEAR_END = (
    c("outstanding", "年末贷款余额", "principal outstanding at year end", "money"),
    c("npl", "年末不良贷款", "non-performing principal at year end", "money"),
    c("npl_ratio_bp", "不良贷款率", "NPL ratio", "bp"),
)
COMPLIANCE = (
    c("filed_late", "逾期备案笔数", "filings late", "int"),
    c("refused", "被拒备案笔数", "filings refused", "int"),
)


def bank_cells(y: BankYear) -> dict[str, Value]:
    return {
        "bank_code": y.bank_code,
        "bank_name": y.bank_name,
        "loans": y.loans,
        "principal": y.principal_fen,
        "enterprises": y.enterprises,
        "average_rate_bp": y.average_rate_bp,
        "claims_decided": y.decided,
        "average_days": y.average_days,
        "max_days": y.max_days,
        "outstanding": y.position.outstanding_fen,
        "npl": y.position.npl_fen,
        "npl_ratio_bp": y.npl_ratio_bp,
        "overdue": y.position.overdue_fen,
        "filed_late": y.filed_late,
        "refused": y.refused,
        "approved": y.approved_fen,
        "paid": y.paid_fen,
        "recovered": y.recovered_fen,
        "returns": y.returns_fen,
        "received": y.received_fen,
    }


def refusals_section(figures: AnnualFigures) -> Section:
    """The year's refused filings per bank and rule (a refusal breaking two rules counts
    under each)."""
    rows: tuple[dict[str, Value], ...] = tuple(
        {"bank_code": y.bank_code, "rule": rule, "refused": n}
        for y in figures.banks.values()
        for rule, n in sorted(y.refused_by_rule.items())
    )
    return Section(
        "refusals_by_rule",
        "被拒备案（按规则）",
        "refused filings by rule",
        (
            BANK[0],
            c("rule", "规则", "rule ID"),
            c("refused", "被拒备案笔数", "filings refused", "int"),
        ),
        rows,
        note="Filings the programme's rules refused in the year (422 naming rule IDs, "
        "single or in a batch; SKD-A1), by business day, from the filing-refusal "
        "records (GET /loans/refusals). A refusal breaking several rules counts under "
        "each of them; the banks' table counts it once.",
    )


READINGS = (
    "Volume: loans disbursed in the year, recorded by the cut-off. Average rate: "
    "principal-weighted, in basis points rounded half up. Claims decided: final "
    "decisions (approved, approved with nothing payable, rejected) dated in the year; "
    "days are calendar days from the claim's filing to its decision, rounded half up. "
    "Year end: principal outstanding, the part at or past the programme's NPL days "
    "(SPEC M-6, the worse of our books and the bank's reports) and its ratio in basis "
    "points rounded down. Filings late: filed_late or found late by a calendar "
    "publication; refused: filing-refusal records (SKD-A1)."
)


def generic_part(figures: AnnualFigures) -> AnnualPart:
    """A programme without an assessment of its own: the year's figures per bank."""
    program = get_program(figures.program)
    columns = (*BANK, *VOLUME, *EFFICIENCY, *YEAR_END, *COMPLIANCE)
    section = Section(
        "banks",
        "合作银行年度情况",
        "the banks' year",
        columns,
        tuple(bank_cells(y) for y in figures.banks.values()),
        note=READINGS,
    )
    return AnnualPart(
        f"{program.name_zh} {figures.year}年度报告",
        f"{program.name_en}: annual report {figures.year}",
        (section,),
    )


# --- the document --------------------------------------------------------------------------
def build_annual(
    session: Session,
    *,
    program: str,
    year: int,
    principal: Principal,
    cutoff_at: datetime,
    as_of: date | None = None,
) -> ReportDocument:
    """The programme's annual report for `year` in the caller's scope: a bank sees its
    own row, a fund manager (of this programme only, else 403) and a city reviewer the
    banks with an agreement in its programme or region, others every bank. Figures are
    as of the year's last day — or `as_of` when earlier (a year not over yet: the XB
    evaluation is due by November 30) — from rows recorded by `cutoff_at`."""
    prog = get_program(program)
    if not 2000 <= year <= 2100:
        raise ValidationFailed(
            "the year is out of range", [ValidationFailed.violation("2000–2100", "query", "year")]
        )
    start, end = date(year, 1, 1), date(year, 12, 31)
    on = max(min(end, as_of), start) if as_of is not None else end
    scope = books.banks_in_scope(session, principal, program)
    figures = AnnualFigures(
        program=program,
        year=year,
        start=start,
        as_of=on,
        cutoff_at=cutoff_at,
        banks=bank_years(
            session, program=program, start=start, as_of=on, cutoff_at=cutoff_at, scope=scope
        ),
        scope=scope,
    )
    part = prog.annual_report(session, figures)
    bank_scope = principal.bank_code if principal.is_bank and principal.bank_code else ""
    return ReportDocument(
        kind="annual",
        program=program,
        period=str(year),
        period_start=start,
        period_end=end,
        title_zh=part.title_zh,
        title_en=part.title_en,
        sections=(*part.sections, refusals_section(figures)),
        charts=part.charts,
        scope=bank_scope,
        meta={"as_of": on},
    )
