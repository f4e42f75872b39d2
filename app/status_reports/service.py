"""Monthly status files (XB-Rep): store a bank's file, reconcile it against the
service's books as of the month end, and record the bank's view of each loan.

Reading chosen:
- The month may be reported once it is over (the business date is after its last
  day). The books are compared as of that last day (`arrears_of`).
- The comparison is against our own books only: outstanding principal, our overdue
  since (`own_since(interest=True)`: the first day any principal or interest was in
  arrears), principal and interest overdue, and a status we derive — `written_off` when
  the loan is written off by the month end, else `settled` when no principal is
  outstanding, `overdue` when in arrears on our books, else `current`. The worse-of-both
  view that days past due use is not compared: it would include the bank's own earlier
  reports. Every loan of the bank with principal outstanding at the month end, in any
  programme, must be in the file (`missing_loan`).
- Content is identified by the SHA-256 of the canonical rows (`files.content_sha256`).
  The same content as the bank's latest version for the month is that version (nothing
  is written); anything else is a new version. A version equal to an older one but not
  to the latest is new too: it is the bank's current file.
- Each row naming a known loan of the bank is checked as `POST /loans/{id}/delinquency`
  checks a report as of the month end (`servicing.delinquency_violations`): the loan
  disbursed by the month end, an overdue date after the disbursement, principal overdue
  and outstanding at most the loan's principal. A loan no longer owing at the month end
  (settled by then, or in a status that owes nothing, `servicing.REPORTABLE`) may be
  listed with nothing overdue, not in arrears. Any such failure refuses the whole file,
  every failing row listed, like a malformed row.
- Each row naming a loan of the bank still owing at the month end is also recorded as a
  `DelinquencyReport` (source `status_file`, as of the month end), so the bank's
  reported arrears count in days past due. A new version adds its own reports; earlier
  ones stay. A row of a loan no longer owing is compared, not recorded.
- The file is due by the `status_report_day` of the following month, the earliest among
  the programmes the bank has loans or agreements in; submitted after it, it is late."""

from __future__ import annotations

import calendar
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlalchemy import Select, func, insert, select
from sqlalchemy.orm import Session, load_only

from app.auth.principal import Principal
from app.claims.repository import region_descendants
from app.errors import Unprocessable, Violation
from app.kit.money import format_fen
from app.loans.arrears import Arrears, arrears_of
from app.loans.repository import scoped_loans
from app.loans.schemas import DelinquencyIn
from app.loans.servicing import REPORTABLE, LoanNotOwing, delinquency_violations
from app.models import (
    Agreement,
    Bank,
    DelinquencyReport,
    Fund,
    Loan,
    LoanTransition,
    StatusReport,
    StatusReportDifference,
    StatusReportRow,
)
from app.programs.base import registered_programs
from app.status_reports import files
from app.status_reports.files import FileRow
from app.status_reports.schemas import KINDS

CHUNK = 5_000  # loans per arrears query (bound parameters stay well under the drivers' limits)
REPORTING_AGREEMENTS = ("active", "suspended")
WRITTEN_OFF = "written_off"
# what the reconciliation reads of a loan (its JSON columns are not decoded)
LOAN_FIELDS = (
    Loan.id,
    Loan.contract_no,
    Loan.status,
    Loan.principal_fen,
    Loan.disbursed_on,
    Loan.maturity_on,
    Loan.settled_on,
)
# the roles that see every loan, and so every difference of a file they may read
SEES_ALL = ("admin", "province_reviewer", "committee", "regulator")


class MonthNotOver(Unprocessable):
    """A month's status file is sent once the month is over: from the first day of the
    next month (XB-Rep)."""

    code, rule = "month_not_over", "XB-Rep"
    title, title_zh = "Month not over yet", "报送月份尚未结束"


class LoanNotDisbursed(Unprocessable):
    """A row names a loan disbursed after the month end: it has nothing to report for
    the month (XB-Rep)."""

    code = "loan_not_disbursed"
    title, title_zh = "Loan not disbursed by the month end", "月末时该笔贷款尚未放款"


def month_end(year: int, month: int) -> date:
    return date(year, month, calendar.monthrange(year, month)[1])


def require_month_over(year: int, month: int, today: date) -> date:
    """The month's last day, once the month is over; else 422 `month_not_over`."""
    end = month_end(year, month)
    if today <= end:
        raise MonthNotOver(
            f"{year}-{month:02d} is not over yet (today is {today}); its status file can be "
            f"sent from {date.fromordinal(end.toordinal() + 1)}",
            [MonthNotOver.violation(f"the month ends on {end}", "path", "month")],
        )
    return end


# --- the deadline ------------------------------------------------------------------------
def bank_programs(session: Session, bank_code: str) -> set[str]:
    """The programmes the bank has loans or agreements in."""
    loans = select(Loan.program).where(Loan.bank_code == bank_code).distinct()
    agreements = select(Agreement.program).where(Agreement.bank_code == bank_code).distinct()
    return set(session.scalars(loans)) | set(session.scalars(agreements))


def due_on(session: Session, bank_code: str, year: int, month: int) -> date:
    """The file's deadline: the earliest `status_report_day` of the bank's programmes
    (of every registered programme when it has none) in the month after."""
    mine = bank_programs(session, bank_code)
    programs = list(registered_programs())
    days = [p.policy.status_report_day for p in programs if p.code in mine] or [
        p.policy.status_report_day for p in programs
    ]
    y, m = (year + 1, 1) if month == 12 else (year, month + 1)
    return date(y, m, min(min(days), calendar.monthrange(y, m)[1]))


# --- reading stored submissions ----------------------------------------------------------
def find(
    session: Session, bank_code: str, year: int, month: int, version: int | None = None
) -> StatusReport | None:
    """The bank's submission for the month: `version`, or the latest."""
    stmt = select(StatusReport).where(
        StatusReport.bank_code == bank_code, StatusReport.year == year, StatusReport.month == month
    )
    if version is not None:
        stmt = stmt.where(StatusReport.version == version)
    return session.scalars(stmt.order_by(StatusReport.version.desc()).limit(1)).first()


def latest_version(session: Session, bank_code: str, year: int, month: int) -> int:
    got = session.scalar(
        select(func.max(StatusReport.version)).where(
            StatusReport.bank_code == bank_code,
            StatusReport.year == year,
            StatusReport.month == month,
        )
    )
    return int(got or 0)


def differences(
    report_id: int, kind: str | None = None, scope: Select[Any] | None = None
) -> Select[StatusReportDifference]:
    """A submission's differences (of one kind), to page through by id; with `scope`
    (`difference_scope`), only those of the loans in it."""
    stmt = select(StatusReportDifference).where(StatusReportDifference.report_id == report_id)
    if kind is not None:
        stmt = stmt.where(StatusReportDifference.kind == kind)
    if scope is not None:
        stmt = stmt.where(StatusReportDifference.loan_id.in_(scope))
    return stmt


def visible_counts(
    session: Session, reports: Sequence[StatusReport], scope: Select[Any] | None
) -> dict[int, dict[str, int]]:
    """Per submission, its differences by kind as the caller sees them: the stored
    summary, or with `scope` those of the loans in it, counted."""
    if scope is None:
        return {r.id: {k: int(r.summary.get(k, 0)) for k in KINDS} for r in reports}
    out = {r.id: dict.fromkeys(KINDS, 0) for r in reports}
    if not out:
        return out
    d = StatusReportDifference
    stmt = (
        select(d.report_id, d.kind, func.count())
        .where(d.report_id.in_(sorted(out)), d.loan_id.in_(scope))
        .group_by(d.report_id, d.kind)
    )
    for report_id, kind, n in session.execute(stmt):
        out[int(report_id)][str(kind)] = int(n)
    return out


# --- submitting --------------------------------------------------------------------------
def submit(
    session: Session,
    *,
    bank_code: str,
    year: int,
    month: int,
    body: bytes,
    media_type: str,
    actor: Principal,
    today: date,
) -> tuple[StatusReport, bool]:
    """Store the file as a new version and reconcile it; (the submission, created). The
    same content as the latest version returns that version, not created."""
    end = require_month_over(year, month, today)
    rows = files.parse(body, media_type, month_end=end)
    sha = files.content_sha256(rows)
    # one submission at a time per bank: versions are numbered in order
    session.execute(select(Bank.code).where(Bank.code == bank_code).with_for_update(key_share=True))
    last = find(session, bank_code, year, month)
    if last is not None and last.content_sha256 == sha:
        return last, False
    books = Books.load(session, bank_code, [r.contract_no for r in rows], end)
    reported = check_rows(rows, books, today)
    found = reconcile(rows, books)
    due = due_on(session, bank_code, year, month)
    version = (last.version if last else 0) + 1
    summary = {k: 0 for k in KINDS}
    for d in found:
        summary[d["kind"]] += 1
    report = StatusReport(
        bank_code=bank_code,
        year=year,
        month=month,
        version=version,
        content_sha256=sha,
        media_type=media_type,
        due_on=due,
        submitted_on=today,
        late=today > due,
        row_count=len(rows),
        difference_count=len(found),
        summary=summary,
        submitted_by_id=actor.user_id,
    )
    session.add(report)
    session.flush()
    _insert(
        session,
        StatusReportRow,
        (
            {
                "report_id": report.id,
                "row_no": r.row_no,
                "contract_no": r.contract_no,
                "loan_id": books.loan_ids.get(r.contract_no),
                "outstanding_fen": r.outstanding_fen,
                "overdue_since": r.overdue_since,
                "principal_overdue_fen": r.principal_overdue_fen,
                "interest_overdue_fen": r.interest_overdue_fen,
                "status": r.status,
            }
            for r in rows
        ),
    )
    _insert(session, StatusReportDifference, ({"report_id": report.id, **d} for d in found))
    comment = f"status file {year}-{month:02d} version {version}"
    _insert(
        session,
        DelinquencyReport,
        (
            {
                "loan_id": loan_id,
                "as_of": end,
                "overdue_since": r.overdue_since,
                "principal_overdue_fen": r.principal_overdue_fen,
                "interest_overdue_fen": r.interest_overdue_fen,
                "outstanding_fen": r.outstanding_fen,
                "source": "status_file",
                "status_report_id": report.id,
                "comment": f"{comment}: {r.status}",
                "reported_by_id": actor.user_id,
            }
            for r in rows
            if (loan_id := books.loan_ids.get(r.contract_no)) in reported
        ),
    )
    return report, True


def owing_at(loan: Loan, as_of: date) -> bool:
    """Arrears may be reported on the loan as of the date: disbursed by then and still
    owing — settled only after it (a loan repaid since still owed then), or never settled
    and in a status that owes (`REPORTABLE`)."""
    if loan.disbursed_on > as_of:
        return False
    if loan.settled_on is not None:
        return loan.settled_on > as_of
    return loan.status in REPORTABLE


def check_rows(rows: list[FileRow], books: Books, today: date) -> set[int]:
    """Each row naming a loan of the bank, checked as the bank's arrears report as of the
    month end (`delinquency_violations`, as `POST /loans/{id}/delinquency`): one 422
    naming every failing row (row number, field, code, message), nothing written. A loan
    not owing at the month end may be listed with nothing overdue (settled), never in
    arrears. Answers the loans whose rows are recorded as delinquency reports: those
    owing at the month end."""
    errors: list[Violation] = []
    bad: set[int] = set()
    recorded: set[int] = set()
    end = books.as_of
    for r in rows:
        loan_id = books.loan_ids.get(r.contract_no)
        if loan_id is None:
            continue
        loan = books.loans[loan_id]
        as_reported = DelinquencyIn.model_construct(
            as_of=end,
            overdue_since=r.overdue_since,
            principal_overdue=r.principal_overdue_fen,
            interest_overdue=r.interest_overdue_fen,
            outstanding=r.outstanding_fen,
            comment="",
        )
        failed = [
            _row_violation(r, loan, v, end)
            for v in delinquency_violations(loan, as_reported, today)
        ]
        owing = owing_at(loan, end)
        in_arrears = r.overdue_since is not None or r.principal_overdue_fen > 0
        in_arrears = in_arrears or r.interest_overdue_fen > 0
        if loan.disbursed_on <= end and not owing and in_arrears:
            settled = f"settled on {loan.settled_on}" if loan.settled_on else loan.status
            failed.append(
                LoanNotOwing.violation(
                    f"loan {loan.id} (contract {r.contract_no}) owed nothing at the month "
                    f"end {end} ({settled}): list it with nothing overdue, status settled",
                    "body",
                    "rows",
                    r.row_no,
                    "overdue_since",
                )
            )
        if failed:
            errors.extend(failed)
            bad.add(r.row_no)
        elif owing:
            recorded.add(loan_id)
    if errors:
        raise files.refusal(errors, len(bad))
    return recorded


def _row_violation(r: FileRow, loan: Loan, v: Violation, end: date) -> Violation:
    """A failure of the single arrears report, put on the file's row."""
    about = (
        f"loan {loan.id} (contract {r.contract_no}) was disbursed on {loan.disbursed_on} "
        f"with principal {format_fen(loan.principal_fen)}"
    )
    if v.code == "before_disbursement":  # the report's `as_of` is the month end
        return LoanNotDisbursed.violation(
            f"{about}, after the month end {end}: it has nothing to report for the month",
            "body",
            "rows",
            r.row_no,
            "contract_no",
        )
    field = v.loc[-1] if v.loc else ""
    return Violation(
        loc=("body", "rows", r.row_no, field), msg=f"{field}: {v.msg}; {about}", code=v.code
    )


def _insert(session: Session, model: type, values: Iterable[dict[str, Any]]) -> None:
    """Insert many rows in batches, as Core statements (no ORM objects to build)."""
    stmt = insert(model)
    conn = session.connection()
    batch: list[dict[str, Any]] = []
    for v in values:
        batch.append(v)
        if len(batch) == CHUNK:
            conn.execute(stmt, batch)
            batch = []
    if batch:
        conn.execute(stmt, batch)


# --- the reconciliation ------------------------------------------------------------------
@dataclass
class Books:
    """The service's books of one bank as of a month end: its loans by contract number,
    and the arrears of those the file names or that owe principal on the date."""

    as_of: date
    loan_ids: dict[str, int]  # contract number → loan, every loan of the bank
    loans: dict[int, Loan]
    arrears: dict[int, Arrears]
    owing: list[int]  # loans with principal outstanding at the month end, by id
    written_off: set[int]

    @classmethod
    def load(cls, session: Session, bank_code: str, contracts: Sequence[str], as_of: date) -> Books:
        keys = session.execute(
            select(Loan.id, Loan.contract_no, Loan.disbursed_on, Loan.settled_on).where(
                Loan.bank_code == bank_code
            )
        ).all()
        loan_ids = {str(c): int(i) for i, c, _, _ in keys}
        candidates = {
            int(i)
            for i, _, disbursed, settled in keys
            if disbursed <= as_of and (settled is None or settled > as_of)
        }
        wanted = sorted(candidates | {loan_ids[c] for c in contracts if c in loan_ids})
        loans: dict[int, Loan] = {}
        arrears: dict[int, Arrears] = {}
        for start in range(0, len(wanted), CHUNK):
            chunk = list(
                session.scalars(
                    select(Loan)
                    .options(load_only(*LOAN_FIELDS))
                    .where(Loan.id.in_(wanted[start : start + CHUNK]))
                )
            )
            loans.update((x.id, x) for x in chunk)
            arrears.update(arrears_of(session, chunk, as_of))
        owing = sorted(i for i in candidates if arrears[i].outstanding_fen > 0)
        return cls(as_of, loan_ids, loans, arrears, owing, _written_off(session, loans, as_of))


def _written_off(session: Session, loans: dict[int, Loan], as_of: date) -> set[int]:
    """The loans written off by the date: status `written_off`, unless the change to it
    is recorded with a later business date."""
    off = {i for i, x in loans.items() if x.status == WRITTEN_OFF}
    if not off:
        return off
    later = session.scalars(
        select(LoanTransition.loan_id).where(
            LoanTransition.loan_id.in_(sorted(off)),
            LoanTransition.to_status == WRITTEN_OFF,
            LoanTransition.business_date > as_of,
        )
    )
    return off - set(later)


def our_status(books: Books, loan_id: int) -> str:
    a, loan = books.arrears[loan_id], books.loans[loan_id]
    if loan_id in books.written_off:
        return WRITTEN_OFF
    if loan.disbursed_on <= books.as_of and a.outstanding_fen <= 0:
        return "settled"
    if a.own_since(interest=True) is not None:
        return "overdue"
    return "current"


def _day(d: date | None) -> str | None:
    return d.isoformat() if d is not None else None


def reconcile(rows: list[FileRow], books: Books) -> list[dict[str, Any]]:
    """Every difference between the file and the books, in file order, then the loans
    missing from the file; each a dict of `StatusReportDifference`'s columns."""
    out: list[dict[str, Any]] = []

    def diff(kind: str, row: FileRow | None, contract: str, loan_id: int | None, **kw: Any) -> None:
        out.append(
            {
                "kind": kind,
                "row_no": row.row_no if row else None,
                "contract_no": contract,
                "loan_id": loan_id,
                "field": kw.get("field"),
                "ours": kw.get("ours"),
                "theirs": kw.get("theirs"),
            }
        )

    listed: set[int] = set()
    for r in rows:
        loan_id = books.loan_ids.get(r.contract_no)
        if loan_id is None:
            diff("unknown_contract", r, r.contract_no, None)
            continue
        listed.add(loan_id)
        a = books.arrears[loan_id]
        pairs: list[tuple[str, str, str | None, str | None]] = [
            (
                "outstanding_mismatch",
                "outstanding",
                format_fen(a.outstanding_fen),
                format_fen(r.outstanding_fen),
            ),
            (
                "overdue_mismatch",
                "overdue_since",
                _day(a.own_since(interest=True)),
                _day(r.overdue_since),
            ),
            (
                "overdue_mismatch",
                "principal_overdue",
                format_fen(a.principal_overdue_fen),
                format_fen(r.principal_overdue_fen),
            ),
            (
                "overdue_mismatch",
                "interest_overdue",
                format_fen(a.interest_overdue_fen),
                format_fen(r.interest_overdue_fen),
            ),
            ("status_mismatch", "status", our_status(books, loan_id), r.status),
        ]
        for kind, field, ours, theirs in pairs:
            if ours != theirs:
                diff(kind, r, r.contract_no, loan_id, field=field, ours=ours, theirs=theirs)
    for loan_id in books.owing:
        if loan_id not in listed:
            loan = books.loans[loan_id]
            ours = format_fen(books.arrears[loan_id].outstanding_fen)
            diff("missing_loan", None, loan.contract_no, loan_id, field="outstanding", ours=ours)
    return out


# --- who reports, who sees ---------------------------------------------------------------
def visible_banks(session: Session, principal: Principal) -> set[str] | None:
    """The banks whose files the caller may read; None: every bank. A bank: its own; a
    fund manager: the banks with an agreement in its fund's programme; a city reviewer:
    the banks with an agreement in its region (or a region under it)."""
    if principal.is_bank:
        return {principal.bank_code or ""}
    if principal.role == "fund_manager":
        program = session.scalar(select(Fund.program).where(Fund.code == principal.fund_code))
        stmt = select(Agreement.bank_code).where(Agreement.program == program)
        return set(session.scalars(stmt.distinct()))
    if principal.role == "city_reviewer":
        regions = region_descendants(session, principal.region_code or "")
        stmt = select(Agreement.bank_code).where(Agreement.region_code.in_(regions))
        return set(session.scalars(stmt.distinct()))
    return None


def difference_scope(session: Session, principal: Principal) -> Select[Any] | None:
    """The loans whose differences the caller sees in a file it may read (the ids, to
    filter with); None: every difference. A bank (its own file) and the roles that see
    every loan (`SEES_ALL`) see them all, `unknown_contract` (no loan) included. Any
    other role sees the differences of the loans it may see (`scoped_loans`: a city
    reviewer its region's enterprises'), a fund manager — whose files are its
    programme's banks' — of its programme's loans only; never an unknown contract, which
    names no loan of its scope."""
    if principal.is_bank or principal.role in SEES_ALL:
        return None
    stmt = scoped_loans(principal).with_only_columns(Loan.id)
    if principal.role == "fund_manager":
        program = session.scalar(select(Fund.program).where(Fund.code == principal.fund_code))
        stmt = stmt.where(Loan.program == program)
    return stmt


def expected_banks(session: Session, year: int, month: int) -> set[str]:
    """The banks bound to report on the month: an agreement in any programme whose term
    covers the month end, active or suspended (its status as recorded now)."""
    end = month_end(year, month)
    stmt = select(Agreement.bank_code).where(
        Agreement.status.in_(REPORTING_AGREEMENTS),
        Agreement.start_on <= end,
        Agreement.end_on > end,
    )
    return set(session.scalars(stmt.distinct()))


@dataclass(frozen=True)
class BankMonth:
    bank_code: str
    bank_name: str
    expected: bool
    due_on: date
    state: str
    report: StatusReport | None


def month_overview(
    session: Session, year: int, month: int, *, today: date, banks: set[str] | None
) -> list[BankMonth]:
    """Every bank expected to report on the month, and every bank that did, within
    `banks` (None: all): its latest submission, or `missing` once the due date has
    passed, else `not_yet_due`."""
    latest: dict[str, StatusReport] = {}
    for r in session.scalars(
        select(StatusReport)
        .where(StatusReport.year == year, StatusReport.month == month)
        .order_by(StatusReport.version)
    ):
        latest[r.bank_code] = r
    expected = expected_banks(session, year, month)
    codes = expected | set(latest)
    if banks is not None:
        codes &= banks
    names = {
        str(c): str(n)
        for c, n in session.execute(
            select(Bank.code, Bank.name).where(Bank.code.in_(sorted(codes)))
        )
    }
    out = []
    for code in sorted(codes):
        report = latest.get(code)
        due = report.due_on if report else due_on(session, code, year, month)
        state = "submitted" if report else ("missing" if today > due else "not_yet_due")
        out.append(
            BankMonth(code, str(names.get(code, code)), code in expected, due, state, report)
        )
    return out
