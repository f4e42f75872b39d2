"""Stored runs of reports (issue part 4): a report for a closed period is computed once,
stored with its canonical JSON, that content's SHA-256, the cut-off and the ledger entry
range it covers, and served from storage ever after; a re-run is a new version listing
every figure that changed. A period still open is computed on every pull and never
stored.

A report is identified by (kind, programme, period, scope). The scope is what the caller
may see of the programme: "" the whole programme (regulator, admin, province reviewer,
committee, a fund manager of the programme), `bank:<code>` one bank (a bank sees its
own; the monthly report names a bank), `region:<code>` a city reviewer's region. The
document is always computed for the scope — as a caller of the scope's role — never for
the individual who happens to pull it, so everyone with one scope gets the same bytes."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta
from functools import cached_property
from typing import Any

from sqlalchemy import Select, and_, exists, false, func, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.auth.principal import Principal
from app.errors import Conflict, Forbidden, NotFound, RoleNotAllowed, Unprocessable
from app.models import Fund, LedgerEntry, LedgerLeg, ReportRun, ReportSubmission
from app.programs.base import get_program
from app.reports.document import (
    ReportDocument,
    canonical_json,
    from_json_obj,
    sha256,
    to_json_obj,
    utc_text,
)

KINDS = ("quarterly", "monthly", "annual")
# who may store a new version of a closed period's report (POST /reports/runs)
RERUN_ROLES = ("regulator", "province_reviewer", "fund_manager")
# who may mark a run submitted: the programme's fund manager, the province reviewer
SUBMIT_ROLES = ("fund_manager", "province_reviewer")
# roles that see a whole programme
PROGRAMME_ROLES = ("regulator", "admin", "province_reviewer", "committee", "fund_manager")


class BankCodeRequired(Unprocessable):
    """A bank's report (the monthly report, a status file) is asked for by a caller who
    is not that bank: name the bank with `bank_code`."""

    code = "bank_code_required"
    title, title_zh = "Name the bank", "须指定银行 (bank_code)"


class ReportNotFound(NotFound):
    title, title_zh = "No such report for the caller", "报告不存在或不在权限范围内"


class ScopeNotAllowed(Forbidden):
    """A fund manager re-runs the reports of its own scope (its programme, or its fund)
    or the monthly report of a bank of its programme, not another scope."""

    code = "scope_not_allowed"
    title, title_zh = "Scope not allowed", "无权重新生成该范围的报告"


class PeriodNotClosed(Unprocessable):
    """The period has not closed (its last day is not before today's business date): its
    report is computed on every pull and cannot be stored as a run yet."""

    code = "period_not_closed"
    title, title_zh = "Period not closed", "报告期尚未结束"


class ReportRunConflict(Conflict):
    """Another request stored this version of the report meanwhile; pull it, or run the
    report again for the next version."""

    code = "report_run_conflict"
    title, title_zh = "Version stored meanwhile", "该版本报告已由其他请求生成"


class RunSuperseded(Conflict):
    """A later version of the report exists; only the latest version is submitted."""

    code = "run_superseded"
    title, title_zh = "A later version exists", "已有更新版本的报告"


class AlreadySubmitted(Conflict):
    """The run is already marked submitted; a run is submitted once."""

    code = "already_submitted"
    title, title_zh = "Already submitted", "报告已报送"


class SubmittedToRequired(Unprocessable):
    """The programme names no default recipient for the report: say to whom it was
    submitted with `submitted_to`."""

    code = "submitted_to_required"
    title, title_zh = "Recipient required", "须填写报送对象"


# --- periods -------------------------------------------------------------------------
@dataclass(frozen=True)
class Period:
    kind: str
    year: int
    number: int | None  # the quarter (1–4) or the month (1–12); None for a year
    start: date
    end: date

    @property
    def label(self) -> str:
        if self.kind == "quarterly":
            return f"{self.year}-Q{self.number}"
        if self.kind == "monthly":
            return f"{self.year}-{self.number:02d}"
        return str(self.year)

    def closed(self, today: date) -> bool:
        """Closed once its last day is before the business date."""
        return self.end < today


def _month_end(year: int, month: int) -> date:
    first_next = date(year + month // 12, month % 12 + 1, 1)
    return first_next - timedelta(days=1)


def quarter(year: int, q: int) -> Period:
    return Period("quarterly", year, q, date(year, 3 * q - 2, 1), _month_end(year, 3 * q))


def month(year: int, m: int) -> Period:
    return Period("monthly", year, m, date(year, m, 1), _month_end(year, m))


def year_period(year: int) -> Period:
    return Period("annual", year, None, date(year, 1, 1), date(year, 12, 31))


_PERIOD_TEXT = {
    "quarterly": re.compile(r"^(\d{4})-Q([1-4])$"),
    "monthly": re.compile(r"^(\d{4})-(0[1-9]|1[0-2])$"),
    "annual": re.compile(r"^(\d{4})$"),
}
PERIOD_FORMS = {"quarterly": "YYYY-Qn", "monthly": "YYYY-MM", "annual": "YYYY"}


def parse_period(kind: str, text: str) -> Period:
    """`2026-Q3` (quarterly), `2026-11` (monthly), `2026` (annual); years 2000–2100."""
    match = _PERIOD_TEXT[kind].match(text)
    if not match or not 2000 <= int(match.group(1)) <= 2100:
        raise ValueError(f"a {kind} period is written {PERIOD_FORMS[kind]} (2000–2100)")
    year = int(match.group(1))
    if kind == "quarterly":
        return quarter(year, int(match.group(2)))
    if kind == "monthly":
        return month(year, int(match.group(2)))
    return year_period(year)


# --- scopes --------------------------------------------------------------------------
@dataclass(frozen=True)
class ReportKey:
    kind: str
    program: str
    period: Period
    scope: str = ""

    @property
    def bank_code(self) -> str | None:
        return self.scope.removeprefix("bank:") if self.scope.startswith("bank:") else None


_SCOPE = re.compile(
    r"^(?:|bank:[A-Za-z0-9_.-]{1,32}|region:[0-9]{6,12}|fund:[A-Za-z0-9_.-]{1,32})$"
)


def valid_scope(scope: str) -> bool:
    return bool(_SCOPE.match(scope))


def _fund_program(session: Session, principal: Principal) -> str | None:
    if not principal.fund_code:
        return None
    return session.scalar(select(Fund.program).where(Fund.code == principal.fund_code))


def check_programme(session: Session, principal: Principal, program: str) -> None:
    """A fund manager reads the reports of its own fund's programme only."""
    if principal.role == "fund_manager" and _fund_program(session, principal) != program:
        raise RoleNotAllowed(
            f"a fund manager of {principal.fund_code} reads the reports of its fund's "
            f"programme, not {program}"
        )


def visible_banks(session: Session, principal: Principal) -> set[str] | None:
    from app.status_reports.service import visible_banks as banks_of

    return banks_of(session, principal)


def manager_scope(principal: Principal, program: str) -> str:
    """A fund manager's scope: the whole programme where the programme gives its fund
    every claim (the SKD province fund, the XB pool), else its own fund."""
    whole = get_program(program).claim_scope(principal) is not None
    return "" if whole else f"fund:{principal.fund_code or ''}"


def viewer_scope(
    session: Session, principal: Principal, program: str, *, bank_code: str | None = None
) -> str:
    """The scope the caller reads the programme's report in. `bank_code` (the monthly
    report) narrows it to one bank the caller may see; another is reported as 404."""
    check_programme(session, principal, program)
    if principal.is_bank:
        own = principal.bank_code or ""
        if bank_code not in (None, own):
            raise ReportNotFound(f"no report of bank {bank_code} for this caller")
        return f"bank:{own}"
    if bank_code is not None:
        visible = visible_banks(session, principal)
        if visible is not None and bank_code not in visible:
            raise ReportNotFound(f"no report of bank {bank_code} for this caller")
        return f"bank:{bank_code}"
    if principal.role == "city_reviewer":
        return f"region:{principal.region_code or ''}"
    if principal.role == "fund_manager":
        return manager_scope(principal, program)
    return ""


def scope_principal(actor: Principal, scope: str) -> Principal:
    """The caller the report of `scope` is computed for: a regulator for the whole
    programme, a bank user of the bank, a city reviewer of the region, a manager of the
    fund (with the acting user's id and name), so the figures never depend on who pulls
    them."""
    kind, _, code = scope.partition(":")
    if kind == "bank":
        return Principal(actor.user_id, actor.username, "bank", bank_code=code)
    if kind == "region":
        return Principal(actor.user_id, actor.username, "city_reviewer", region_code=code)
    if kind == "fund":
        return Principal(actor.user_id, actor.username, "fund_manager", fund_code=code)
    return Principal(actor.user_id, actor.username, "regulator")


def run_filter(session: Session, principal: Principal) -> Any:
    """The runs the caller may read, as a WHERE clause; None: every run. A bank its own,
    a city reviewer its region's, a fund manager those of its programme in its scope
    (the whole programme or its fund) and the monthly reports of the banks it may see."""
    if principal.is_bank:
        return ReportRun.scope == f"bank:{principal.bank_code or ''}"
    if principal.role == "city_reviewer":
        return ReportRun.scope == f"region:{principal.region_code or ''}"
    if principal.role == "fund_manager":
        program = _fund_program(session, principal)
        if program is None:
            return false()
        visible = visible_banks(session, principal) or set()
        return and_(
            ReportRun.program == program,
            or_(
                ReportRun.scope == manager_scope(principal, program),
                and_(
                    ReportRun.kind == "monthly",
                    ReportRun.scope.in_([f"bank:{b}" for b in sorted(visible)]),
                ),
            ),
        )
    return None


def can_read(session: Session, principal: Principal, run: ReportRun) -> bool:
    clause = run_filter(session, principal)
    if clause is None:
        return True
    found = session.scalar(select(ReportRun.id).where(ReportRun.id == run.id, clause))
    return found is not None


def check_rerun(session: Session, actor: Principal, key: ReportKey) -> None:
    """Who may store a new version: the regulator and the province reviewer of any
    scope; a fund manager of its programme, in its own scope or the monthly report of a
    bank it may see."""
    if actor.role not in RERUN_ROLES:
        raise RoleNotAllowed(
            f"role {actor.role} may not do this; allowed: {', '.join(RERUN_ROLES)}"
        )
    check_programme(session, actor, key.program)
    if actor.role != "fund_manager" or key.scope == manager_scope(actor, key.program):
        return
    visible = visible_banks(session, actor) or set()
    if key.kind != "monthly" or key.bank_code not in visible:
        raise ScopeNotAllowed(
            f"a fund manager of {actor.fund_code} re-runs the reports of its own scope or of "
            f"a bank of the programme, not scope {key.scope!r}"
        )


# --- builders ------------------------------------------------------------------------
# (session, key, the scope's caller, cut-off, business date) → the document
Builder = Callable[[Session, ReportKey, Principal, datetime, date], ReportDocument]


def _quarterly(
    session: Session, key: ReportKey, viewer: Principal, cutoff: datetime, today: date
) -> ReportDocument:
    from app.reports.quarterly import build_quarterly

    return build_quarterly(
        session,
        program=key.program,
        year=key.period.year,
        quarter=key.period.number or 0,
        principal=viewer,
        cutoff_at=cutoff,
        today=today,
    )


def _monthly(
    session: Session, key: ReportKey, viewer: Principal, cutoff: datetime, today: date
) -> ReportDocument:
    from app.reports.monthly import build_monthly

    return build_monthly(
        session,
        program=key.program,
        bank_code=key.bank_code or "",
        year=key.period.year,
        month=key.period.number or 0,
        principal=viewer,
        cutoff_at=cutoff,
        as_of=today,
    )


def _annual(
    session: Session, key: ReportKey, viewer: Principal, cutoff: datetime, today: date
) -> ReportDocument:
    from app.reports.annual import build_annual

    return build_annual(
        session,
        program=key.program,
        year=key.period.year,
        principal=viewer,
        cutoff_at=cutoff,
        as_of=today,
    )


BUILDERS: dict[str, Builder] = {"quarterly": _quarterly, "monthly": _monthly, "annual": _annual}


# --- serving -------------------------------------------------------------------------
@dataclass(frozen=True)
class Served:
    """A report as served: its canonical JSON bytes (a stored run's, exactly), their
    SHA-256 and the run (None: computed live). The document the other formats render is
    read back from those bytes, so every format shows what the JSON says."""

    content: bytes
    sha256: str
    run: ReportRun | None

    @cached_property
    def document(self) -> ReportDocument:
        return from_json_obj(json.loads(self.content))


def served_run(run: ReportRun) -> Served:
    return Served(run.content.encode("utf-8"), run.content_sha256, run)


def latest(session: Session, key: ReportKey) -> ReportRun | None:
    return session.scalars(_runs_of(key).order_by(ReportRun.version.desc()).limit(1)).first()


def _runs_of(key: ReportKey) -> Select[ReportRun]:
    return select(ReportRun).where(
        ReportRun.kind == key.kind,
        ReportRun.program == key.program,
        ReportRun.period == key.period.label,
        ReportRun.scope == key.scope,
    )


def ledger_range(
    session: Session, program: str, period: Period, cutoff: datetime
) -> tuple[int | None, int | None]:
    """The first and last ledger entry with a business date in the period, recorded by
    the cut-off, with a leg in one of the programme's funds."""
    in_programme = exists(
        select(LedgerLeg.entry_id)
        .join(Fund, Fund.code == LedgerLeg.fund_code)
        .where(LedgerLeg.entry_id == LedgerEntry.id, Fund.program == program)
    )
    first, last = session.execute(
        select(func.min(LedgerEntry.id), func.max(LedgerEntry.id)).where(
            LedgerEntry.business_date >= period.start,
            LedgerEntry.business_date <= period.end,
            LedgerEntry.recorded_at <= cutoff,
            in_programme,
        )
    ).one()
    return first, last


def _compute(
    session: Session,
    key: ReportKey,
    *,
    actor: Principal,
    cutoff: datetime,
    today: date,
    meta: dict[str, Any],
) -> tuple[ReportDocument, bytes]:
    viewer = scope_principal(actor, key.scope)
    doc = BUILDERS[key.kind](session, key, viewer, cutoff, today)
    doc = replace(doc, meta={**doc.meta, **meta, "cutoff_at": utc_text(cutoff)})
    return doc, canonical_json(to_json_obj(doc))


def live(
    session: Session, key: ReportKey, *, actor: Principal, today: date, now: datetime
) -> Served:
    """An open period's report, computed now and not stored."""
    _, content = _compute(
        session, key, actor=actor, cutoff=now, today=today, meta={"closed": False}
    )
    return Served(content, sha256(content), None)


def pull(
    session: Session, key: ReportKey, *, actor: Principal, today: date, now: datetime
) -> Served:
    """The report as served to a pull: live while the period is open; once it is closed,
    the latest stored version, the first pull computing and storing version 1."""
    if not key.period.closed(today):
        return live(session, key, actor=actor, today=today, now=now)
    run = latest(session, key)
    if run is None:
        run = store(session, key, actor=actor, today=today, now=now, previous=None)
    return served_run(run)


def last_closed(today: date) -> list[Period]:
    """The last quarter and the last year closed on the business date."""
    this_quarter = quarter(today.year, (today.month - 1) // 3 + 1)
    before = this_quarter.start - timedelta(days=1)
    return [quarter(before.year, (before.month - 1) // 3 + 1), year_period(today.year - 1)]


def store_closed(
    session: Session, programs: list[str], *, actor: Principal, today: date, now: datetime
) -> list[tuple[ReportKey, ReportRun, bool]]:
    """Each programme's whole-programme report of the last closed quarter and year,
    stored now unless a run of it is stored already — so a regulator's first pull of a
    closed period is served from storage, never computed while they wait (run it once
    a period has closed, e.g. daily: it stores nothing twice). (key, run, stored now)."""
    out = []
    for program in programs:
        get_program(program)  # a registered programme, else KeyError
        for period in last_closed(today):
            key = ReportKey(period.kind, program, period)
            run = latest(session, key)
            if run is not None:
                out.append((key, run, False))
                continue
            out.append(
                (key, store(session, key, actor=actor, today=today, now=now, previous=None), True)
            )
    return out


def rerun(
    session: Session, key: ReportKey, *, actor: Principal, today: date, now: datetime
) -> ReportRun:
    """A new version of a closed period's report, computed now, with the figures that
    changed against the latest version."""
    if not key.period.closed(today):
        raise PeriodNotClosed(
            f"{key.period.label} ends on {key.period.end}: a period is closed, and its "
            "report stored, once its last day is before today",
            [PeriodNotClosed.violation("the period is not closed", "body", "period")],
        )
    previous = latest(session, key)
    return store(session, key, actor=actor, today=today, now=now, previous=previous)


def store(
    session: Session,
    key: ReportKey,
    *,
    actor: Principal,
    today: date,
    now: datetime,
    previous: ReportRun | None,
) -> ReportRun:
    """Compute the closed period's report with the cut-off `now` and store it as the
    next version, with its changes against `previous`."""
    version = previous.version + 1 if previous else 1
    first, last = ledger_range(session, key.program, key.period, now)
    _, content = _compute(
        session,
        key,
        actor=actor,
        cutoff=now,
        today=today,
        meta={
            "closed": True,
            "version": version,
            "ledger_first_entry_id": first,
            "ledger_last_entry_id": last,
            "run_by": actor.username,
        },
    )
    changes = (
        diff(json.loads(previous.content), json.loads(content)) if previous is not None else []
    )
    run = ReportRun(
        kind=key.kind,
        program=key.program,
        period=key.period.label,
        scope=key.scope,
        version=version,
        period_end=key.period.end,
        cutoff_at=now,
        ledger_first_entry_id=first,
        ledger_last_entry_id=last,
        content=content.decode("utf-8"),
        content_sha256=sha256(content),
        changes=changes,
        created_by_id=actor.user_id,
        created_at=now,
    )
    try:
        with session.begin_nested():
            session.add(run)
            session.flush()
    except IntegrityError:
        # Another pull stored this version first (it committed while we waited on the
        # unique index): a first pull serves that one; a re-run is refused.
        if previous is None:
            stored = latest(session, key)
            if stored is not None:
                return stored
        raise ReportRunConflict(
            f"version {version} of this report was stored meanwhile; pull it or run again"
        ) from None
    return run


# --- changes between versions --------------------------------------------------------
def _row_keys(section: dict[str, Any]) -> list[str]:
    """A row's key: its leading text and date columns (e.g. bank, product), else its
    position; a repeated key gets `#2`, `#3`…"""
    lead = []
    for c in section["columns"]:
        if c["kind"] not in ("text", "date"):
            break
        lead.append(c["key"])
    keys, seen = [], dict[str, int]()
    for i, row in enumerate(section["rows"], 1):
        k = (
            " / ".join("" if row.get(c) is None else str(row.get(c)) for c in lead)
            if lead
            else f"#{i}"
        )
        seen[k] = seen.get(k, 0) + 1
        keys.append(k if seen[k] == 1 else f"{k}#{seen[k]}")
    return keys


def _figures(obj: dict[str, Any]) -> dict[tuple[str, str, str], Any]:
    out: dict[tuple[str, str, str], Any] = {}
    for section in obj.get("sections", []):
        lead = set()
        for c in section["columns"]:
            if c["kind"] not in ("text", "date"):
                break
            lead.add(c["key"])
        for row_key, row in zip(_row_keys(section), section["rows"], strict=True):
            for c in section["columns"]:
                if c["key"] not in lead:
                    out[(section["key"], row_key, c["key"])] = row.get(c["key"])
    return out


def diff(old: dict[str, Any], new: dict[str, Any]) -> list[dict[str, Any]]:
    """Every figure that differs between two renderings of a report: section, row key,
    column, old and new value (as the JSON shows them; null where a side has no such
    figure), in the new document's order, then the figures that are gone."""
    before, after = _figures(old), _figures(new)
    changes = [
        {"section": s, "row": r, "column": c, "old": before.get((s, r, c)), "new": v}
        for (s, r, c), v in after.items()
        if (s, r, c) not in before or before[(s, r, c)] != v
    ]
    changes += [
        {"section": s, "row": r, "column": c, "old": v, "new": None}
        for (s, r, c), v in before.items()
        if (s, r, c) not in after
    ]
    return changes


# --- submissions ---------------------------------------------------------------------
def submission_rule(program: str) -> tuple[int | None, str | None]:
    """The programme's quarterly report deadline — the day of the month after the
    quarter (XB-Rep: the 15th) — and its recipient (XB-Rep: 领导小组办公室), as its part of
    the quarterly report declares them (`submission_day`, `submitted_to`); a programme
    that declares none has no deadline and names no recipient."""
    part = get_program(program).quarterly_report()
    day = getattr(part, "submission_day", None)
    to = getattr(part, "submitted_to", None)
    return (day if isinstance(day, int) else None, to if isinstance(to, str) and to else None)


def due_on(kind: str, period: Period, day: int | None) -> date | None:
    """A quarterly report is due on `day` of the month after its quarter (2026-Q4 →
    2027-01-15); other kinds have no deadline."""
    if kind != "quarterly" or day is None:
        return None
    following = period.end + timedelta(days=1)
    return date(following.year, following.month, day)


def check_submitter(session: Session, actor: Principal, run: ReportRun) -> None:
    if actor.role not in SUBMIT_ROLES:
        raise RoleNotAllowed(
            f"role {actor.role} may not do this; allowed: {', '.join(SUBMIT_ROLES)}"
        )
    check_programme(session, actor, run.program)


def submit(
    session: Session,
    run: ReportRun,
    *,
    actor: Principal,
    submitted_to: str | None,
    comment: str,
    today: date,
    now: datetime,
) -> ReportSubmission:
    """Mark a run submitted (once): to whom, its due date and whether it is late. Only
    the latest version of a report can be submitted."""
    check_submitter(session, actor, run)
    key = ReportKey(run.kind, run.program, parse_period(run.kind, run.period), run.scope)
    newest = latest(session, key)
    if newest is not None and newest.id != run.id:
        raise RunSuperseded(
            f"run {run.id} is version {run.version}; version {newest.version} (run "
            f"{newest.id}) supersedes it"
        )
    if session.scalar(select(ReportSubmission.id).where(ReportSubmission.run_id == run.id)):
        raise AlreadySubmitted(f"run {run.id} is already submitted")
    day, default_to = submission_rule(run.program)
    recipient = submitted_to or default_to
    if not recipient:
        raise SubmittedToRequired(
            "name the recipient of the report",
            [SubmittedToRequired.violation("required for this programme", "body", "submitted_to")],
        )
    due = due_on(run.kind, key.period, day)
    made = ReportSubmission(
        run_id=run.id,
        submitted_to=recipient,
        due_on=due,
        late=due is not None and today > due,
        comment=comment,
        submitted_by_id=actor.user_id,
        at=now,
    )
    session.add(made)
    session.flush()
    return made


def submissions(session: Session, run_ids: list[int]) -> dict[int, list[ReportSubmission]]:
    found: dict[int, list[ReportSubmission]] = {i: [] for i in run_ids}
    if run_ids:
        rows = session.scalars(
            select(ReportSubmission)
            .where(ReportSubmission.run_id.in_(run_ids))
            .order_by(ReportSubmission.id)
        )
        for s in rows:
            found[s.run_id].append(s)
    return found


def latest_versions(
    session: Session, runs: list[ReportRun]
) -> dict[tuple[str, str, str, str], int]:
    """The latest version of each report the runs belong to."""
    keys = {(r.kind, r.program, r.period, r.scope) for r in runs}
    out: dict[tuple[str, str, str, str], int] = {}
    for kind, program, period, scope in keys:
        out[(kind, program, period, scope)] = (
            session.scalar(
                select(func.max(ReportRun.version)).where(
                    ReportRun.kind == kind,
                    ReportRun.program == program,
                    ReportRun.period == period,
                    ReportRun.scope == scope,
                )
            )
            or 0
        )
    return out
