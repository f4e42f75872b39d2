"""The working calendar every deadline is computed with, and publishing a year.

A process keeps the stored years in memory, keyed on the newest publication's token, so
a request pays one small query to learn whether any process published meanwhile. A year
not stored is provisional or refused, by the `CALENDAR_UNPUBLISHED` setting."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, Literal

from sqlalchemy import Connection, event, func, select
from sqlalchemy.orm import Session

from app.calendar import library
from app.calendar import repository as repo
from app.calendar.schemas import CalendarYearIn
from app.errors import Unprocessable, Violation
from app.kit.calendar import CalendarYear, WorkingCalendar
from app.models import CalendarDay, CalendarPublication, User

log = logging.getLogger("app.calendar")


class CalendarInvalid(Unprocessable):
    """The year's schedule cannot be published: a day outside the year, a day listed
    twice, a make-up workday (调休上班) that is not a Saturday or Sunday, an empty name,
    no holidays. `errors` lists every problem at once (M-3)."""

    code, rule = "calendar_invalid", "M-3"
    title, title_zh = "Calendar schedule not valid", "节假日安排不符合要求"


Mode = Literal["provisional", "refuse"]
DEFAULT_MODE: Mode = "provisional"
MODE_KEY = "calendar_unpublished"  # Session.info key, set by the request boundary
_MEMO_KEY = "working_calendar"
_PUBLISHING_KEY = "calendar_publishing"
# PostgreSQL advisory lock: every write request holds it shared from the start of its
# transaction (`share_with_writers`), a publication holds it exclusively from its first
# statement, so a publication waits for the writes in flight and the writes that come
# after it read the published year; nobody holds a row lock while waiting for it, so it
# cannot deadlock
CALENDAR_LOCK = int.from_bytes(b"cal3", "big")

_stored: dict[str | None, dict[int, CalendarYear]] = {}


def mode_of(session: Session) -> Mode:
    mode = session.info.get(MODE_KEY, DEFAULT_MODE)
    return "refuse" if mode == "refuse" else "provisional"


def working_calendar(session: Session) -> WorkingCalendar:
    """The calendar in force as this session sees it (memoised for the session)."""
    memo = session.info.get(_MEMO_KEY)
    if isinstance(memo, WorkingCalendar):
        return memo
    token = repo.latest_token(session)
    years = _stored.get(token)
    if years is None:
        years = _load(session)
        if not session.info.get(_PUBLISHING_KEY):  # never what is not committed yet
            _stored.clear()  # one generation kept: older tokens are not asked for again
            _stored[token] = years
    provisional = library.provisional_year if mode_of(session) == "provisional" else None
    calendar = WorkingCalendar(years, provisional=provisional)
    session.info[_MEMO_KEY] = calendar
    return calendar


_SHARE_KEY = "calendar_share"


def share_with_writers(session: Session) -> None:
    """Mark a write request's session: its transaction takes the shared calendar lock as
    it begins (PostgreSQL), before any other statement and on the thread that runs that
    statement, and holds it to the end."""
    session.info[_SHARE_KEY] = True


@event.listens_for(Session, "after_begin")
def _share_on_begin(session: Session, _transaction: Any, connection: Connection) -> None:
    if session.info.get(_SHARE_KEY) and connection.dialect.name == "postgresql":
        connection.execute(select(func.pg_advisory_xact_lock_shared(CALENDAR_LOCK)))


def _exclusive(session: Session) -> None:
    """A publication's first statement: it waits for the write requests in flight, and
    the next ones wait for its commit (SQLite serialises writers by itself)."""
    session.info[_PUBLISHING_KEY] = True
    if session.get_bind().dialect.name == "postgresql":
        session.execute(select(func.pg_advisory_xact_lock(CALENDAR_LOCK)))


def forget(session: Session) -> None:
    """Drop the session's memo (after a publication in this transaction)."""
    session.info.pop(_MEMO_KEY, None)


def _load(session: Session) -> dict[int, CalendarYear]:
    pubs = repo.current_publications(session)
    by_pub: dict[int, tuple[dict[date, str], dict[date, str]]] = {p.id: ({}, {}) for p in pubs}
    for d in repo.days_of(session, [p.id for p in pubs]):
        by_pub[d.publication_id][0 if d.kind == "holiday" else 1][d.day] = d.name
    return {
        p.year: CalendarYear(
            year=p.year,
            source="notice" if p.source == "notice" else "library",
            holidays=by_pub[p.id][0],
            workdays=by_pub[p.id][1],
            notice_no=p.notice_no,
        )
        for p in pubs
    }


# --- publishing ---------------------------------------------------------------------
@dataclass(frozen=True)
class DeadlineChange:
    """One stored deadline recomputed by a publication, as recorded in its object's
    history."""

    object: str  # loan | claim | recovery
    id: int
    deadline: str
    old: date | None
    new: date
    old_provisional: bool
    new_provisional: bool
    consequence: str = ""


@dataclass
class Publication:
    publication: CalendarPublication
    changed: bool
    changes: list[DeadlineChange] = field(default_factory=list)


@dataclass(frozen=True)
class Recompute:
    """What a recomputer gets: the published year, the new calendar, who and when."""

    year: int
    calendar: WorkingCalendar
    publication: CalendarPublication
    actor_id: int | None
    today: date
    now: datetime
    # who a claim's history row names: the publisher, or for a year seeded from the
    # package the first admin
    history_actor_id: int | None = None
    # the year had no publication before: only deadlines marked provisional can move
    first: bool = False

    def reason(self) -> str:
        p = self.publication
        where = f"notice {p.notice_no}" if p.source == "notice" else "the chinesecalendar package"
        return f"calendar {self.year} published ({where})"


Recomputer = Callable[[Session, Recompute], list[DeadlineChange]]


def _recomputers() -> Sequence[Recomputer]:
    from app.claims.deadlines import recompute_claim_deadlines
    from app.loans.deadlines import recompute_filing_deadlines

    return (recompute_filing_deadlines, recompute_claim_deadlines)


def _check_days(
    year: int, holidays: Sequence[tuple[date, str]], workdays: Sequence[tuple[date, str]]
) -> list[Violation]:
    problems: list[Violation] = []
    seen: dict[date, str] = {}
    for kind, days in (("holidays", holidays), ("workdays", workdays)):
        for i, (day, name) in enumerate(days):
            loc = (kind, i, "date")
            if day.year != year:
                problems.append(CalendarInvalid.violation(f"{day} is not in {year}", *loc))
            if day in seen:
                problems.append(
                    CalendarInvalid.violation(
                        f"{day} is listed twice (already under {seen[day]})", *loc
                    )
                )
            seen.setdefault(day, kind)
            if kind == "workdays" and day.weekday() < 5:
                problems.append(
                    CalendarInvalid.violation(
                        f"{day} is a weekday: a make-up workday (调休上班) is a Saturday "
                        "or Sunday worked in exchange for a holiday",
                        *loc,
                    )
                )
            if not name.strip():
                problems.append(CalendarInvalid.violation("name is empty", kind, i, "name"))
    if not holidays:
        problems.append(CalendarInvalid.violation("a year's notice lists its holidays", "holidays"))
    return problems


def publish_year(
    session: Session,
    *,
    year: int,
    holidays: Sequence[tuple[date, str]],
    workdays: Sequence[tuple[date, str]],
    source: Literal["notice", "library"],
    notice_no: str | None,
    notice_title: str | None = None,
    library_version: str | None = None,
    actor_id: int | None,
    today: date,
    now: datetime,
) -> Publication:
    """Store a year's holidays and make-up workdays as the publication in force, then
    recompute every stored deadline of open loans and claims that the year touches, each
    change written to its object's history, in the caller's transaction. Publishing what
    is already in force stores nothing new (`changed` false) but recomputes all the same,
    which brings in line any deadline a request racing the first publication computed."""
    problems = _check_days(year, holidays, workdays)
    if problems:
        raise CalendarInvalid(
            f"the {year} calendar cannot be published: {len(problems)} problem(s)", problems
        )
    _exclusive(session)
    forget(session)
    current = next((p for p in repo.current_publications(session) if p.year == year), None)
    if current is not None:
        held = {(d.day, d.kind, d.name) for d in repo.days_of(session, [current.id])}
        asked = {(d, "holiday", n) for d, n in holidays} | {(d, "workday", n) for d, n in workdays}
        same_notice = (current.source, current.notice_no, current.notice_title) == (
            source,
            notice_no,
            notice_title,
        )
        if held == asked and same_notice:
            # nothing new to store; the recompute still runs, so a deadline computed by a
            # request that raced the first publication is brought in line
            changes = _recompute(session, year, current, actor_id, today, now, first=False)
            return Publication(current, changed=False, changes=changes)
    pub = CalendarPublication(
        year=year,
        source=source,
        notice_no=notice_no,
        notice_title=notice_title,
        library_version=library_version,
        token=uuid.uuid4().hex,
        published_by_id=actor_id,
        published_at=now,
    )
    session.add(pub)
    session.flush()
    session.add_all(
        [CalendarDay(publication_id=pub.id, day=d, kind="holiday", name=n) for d, n in holidays]
        + [CalendarDay(publication_id=pub.id, day=d, kind="workday", name=n) for d, n in workdays]
    )
    session.flush()
    forget(session)
    changes = _recompute(session, year, pub, actor_id, today, now, first=current is None)
    log.info(
        "calendar year published",
        extra={"year": year, "source": source, "notice_no": notice_no, "recomputed": len(changes)},
    )
    return Publication(pub, changed=True, changes=changes)


def publish_notice(
    session: Session,
    *,
    year: int,
    notice: CalendarYearIn,
    actor_id: int,
    today: date,
    now: datetime,
) -> Publication:
    """`publish_year` for a year as the State Council notice gives it (the API's body,
    or a file read into it)."""
    return publish_year(
        session,
        year=year,
        holidays=[(d.date, d.name) for d in notice.holidays],
        workdays=[(d.date, d.name) for d in notice.workdays],
        source="notice",
        notice_no=notice.notice_no,
        notice_title=notice.notice_title,
        actor_id=actor_id,
        today=today,
        now=now,
    )


def _recompute(
    session: Session,
    year: int,
    pub: CalendarPublication,
    actor_id: int | None,
    today: date,
    now: datetime,
    *,
    first: bool,
) -> list[DeadlineChange]:
    history_actor = actor_id or session.scalar(
        select(User.id).where(User.role == "admin", User.is_active).order_by(User.id).limit(1)
    )
    ctx = Recompute(
        year, working_calendar(session), pub, actor_id, today, now, history_actor, first
    )
    changes = [c for recompute in _recomputers() for c in recompute(session, ctx)]
    session.flush()
    return changes


def seed_from_library(session: Session, *, today: date, now: datetime) -> list[int]:
    """Store every year the installed `chinesecalendar` covers that is not stored yet
    (a year published from a notice is never replaced); returns the years added."""
    stored = {p.year for p in repo.current_publications(session)}
    added = []
    for year, cal in sorted(library.library_years().items()):
        if year in stored:
            continue
        publish_year(
            session,
            year=year,
            holidays=sorted(cal.holidays.items()),
            workdays=sorted(cal.workdays.items()),
            source="library",
            notice_no=None,
            library_version=library.library_version(),
            actor_id=None,
            today=today,
            now=now,
        )
        added.append(year)
    return added


# --- what is published ----------------------------------------------------------------
WARN_FROM = (10, 1)  # month, day: from October 1 next year's calendar should be published


def next_year_warning(session: Session, today: date) -> str | None:
    """A warning while this year is not published, and from October 1 while next year
    is not (M-3); None when nothing is missing."""
    stored = {p.year for p in repo.current_publications(session)}
    due = [today.year] + ([today.year + 1] if (today.month, today.day) >= WARN_FROM else [])
    missing = [y for y in due if y not in stored]
    if not missing:
        return None
    consequence = (
        "deadlines reaching into it are provisional"
        if mode_of(session) == "provisional"
        else "deadlines reaching into it are refused (calendar_year_unsupported)"
    )
    year = missing[0]
    return (
        f"the {year} working-day calendar is not published: {consequence}; publish it from "
        f"the State Council notice with PUT /api/v1/calendar/{year} or `ledger "
        "calendar-publish`"
    )
