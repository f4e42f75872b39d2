"""Calendar responses assembled from the service and repository."""

from __future__ import annotations

from datetime import date

from sqlalchemy.orm import Session

from app.calendar import repository as repo
from app.calendar import schemas as s
from app.calendar import service
from app.calendar.library import provisional_year
from app.kit.calendar import CalendarYear, WorkingCalendar


def _days(days: dict[date, str] | object, kind: str) -> list[s.CalendarDayOut]:
    assert isinstance(days, dict)
    return [
        s.CalendarDayOut(date=d, weekday=s.WEEKDAYS[d.weekday()], kind=kind, name=n)
        for d, n in sorted(days.items())
    ]


def _working_days(year: CalendarYear) -> int:
    only = WorkingCalendar({year.year: year})
    return only.working_days_between(date(year.year - 1, 12, 31), date(year.year, 12, 31)).days


def year_view(session: Session, year: int) -> s.CalendarYearOut:
    calendar = service.working_calendar(session)
    stored = year in calendar.stored_years
    cal = calendar.year(year) if stored else provisional_year(year)
    pubs = repo.publications_of(session, year)
    return s.CalendarYearOut(
        year=year,
        source=cal.source,
        provisional=cal.provisional,
        in_force=stored or service.mode_of(session) == "provisional",
        notice_no=cal.notice_no,
        working_days=_working_days(cal),
        holidays=_days(dict(cal.holidays), "holiday"),
        workdays=_days(dict(cal.workdays), "workday"),
        publications=[s.PublicationOut.model_validate(p) for p in pubs],
    )


def published_view(
    session: Session, year: int, outcome: service.Publication
) -> s.CalendarPublished:
    return s.CalendarPublished(
        **year_view(session, year).model_dump(),
        changed=outcome.changed,
        recomputed=[
            s.DeadlineChangeOut(
                object=c.object,
                id=c.id,
                deadline=c.deadline,
                old=c.old,
                new=c.new,
                old_provisional=c.old_provisional,
                new_provisional=c.new_provisional,
                consequence=c.consequence,
            )
            for c in outcome.changes
        ],
    )


def overview(session: Session, today: date) -> s.CalendarOverview:
    pubs = repo.current_publications(session)
    nxt = today.year + 1
    return s.CalendarOverview(
        today=today,
        unpublished_years=service.mode_of(session),
        years=[
            s.CalendarYearSummary(
                year=p.year,
                source=p.source,
                notice_no=p.notice_no,
                published_at=p.published_at,
            )
            for p in pubs
        ],
        next_year=nxt,
        next_year_published=any(p.year == nxt for p in pubs),
        warning=service.next_year_warning(session, today),
    )
