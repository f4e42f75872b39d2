"""Calendar endpoints (SPEC M-3): read by everyone, published by an admin."""

from __future__ import annotations

from datetime import date
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Request
from sqlalchemy.orm import Session

from app.auth.principal import CurrentPrincipal, Principal, require_roles
from app.calendar import schemas as s
from app.calendar import service, views
from app.db import get_session
from app.errors import problems
from app.kit.clock import get_clock, get_today
from app.kit.uow import TransactionalRoute


class CalendarRoute(TransactionalRoute):
    """A publication takes the calendar lock exclusively itself (`publish_year`)."""

    share_calendar = False


router = APIRouter(route_class=CalendarRoute, tags=["calendar"])
SessionDep = Annotated[Session, Depends(get_session)]
Admin = Annotated[Principal, Depends(require_roles("admin"))]
Today = Annotated[date, Depends(get_today)]
Year = Annotated[int, Path(ge=1949, le=2200, description="calendar year 年度", examples=[2026])]


@router.get(
    "/calendar",
    summary="Working-day calendar: published years 工作日历",
    description="Which years are published and from where, what the service does with a "
    "year that is not (provisional or refused), and from October 1 a warning while next "
    "year is not published.",
)
def calendar_overview(session: SessionDep, _: CurrentPrincipal, today: Today) -> s.CalendarOverview:
    return views.overview(session, today)


@router.get(
    "/calendar/{year}",
    summary="One year's holidays and make-up workdays 节假日与调休",
    description="The days off (休) and make-up workdays (班) of the year, where they come "
    "from (the chinesecalendar package, a State Council notice with its number, or "
    "provisional), and every publication of the year.",
)
def get_calendar_year(session: SessionDep, _: CurrentPrincipal, year: Year) -> s.CalendarYearOut:
    return views.year_view(session, year)


@router.put(
    "/calendar/{year}",
    summary="Publish a year from the State Council notice 发布年度节假日安排",
    description="Stores the year as the notice gives it (its 文号, every day off, every "
    "make-up workday) as the calendar in force. In the same transaction every stored "
    "deadline of open loans and claims that the year touches is recomputed, and each "
    "change is written to its object's history (`GET /loans/{id}` `history`, "
    "`GET /claims/{id}` `history`). Putting the schedule already in force changes "
    "nothing (`changed: false`). Every problem with the days is listed at once.",
    responses=problems(service.CalendarInvalid),
)
def publish_calendar_year(
    request: Request, session: SessionDep, admin: Admin, year: Year, body: s.CalendarYearIn
) -> s.CalendarPublished:
    clock = get_clock(request)
    outcome = service.publish_notice(
        session,
        year=year,
        notice=body,
        actor_id=admin.user_id,
        today=clock.today(),
        now=clock.now(),
    )
    return views.published_view(session, year, outcome)
