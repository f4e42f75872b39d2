"""Working days on the PRC statutory calendar with make-up workdays (SPEC M-3).

The calendar is data: a `WorkingCalendar` is built from the years the service stores
(seeded from the `chinesecalendar` package, or published by an admin from the State
Council notice; `app.calendar`). A year not stored is either refused or, by setting,
provisional: weekdays minus the statutory holidays. Every deadline says whether a
provisional day went into it, so nothing resting on a guess is shown as settled."""

from __future__ import annotations

import calendar as _months
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Literal, NamedTuple

from app.errors import Unprocessable

Source = Literal["library", "notice", "provisional"]
DayKind = Literal["holiday", "workday"]


class CalendarUnavailable(Unprocessable):
    """A deadline falls in a year the working-day calendar does not cover yet and the
    service is set to refuse rather than count provisionally (M-3)."""

    code, rule = "calendar_year_unsupported", "M-3"
    title, title_zh = "Working-day calendar not published", "工作日历尚未发布"


@dataclass(frozen=True)
class CalendarYear:
    """One year's exceptions to the weekday rule: statutory holidays (days off, weekends
    inside a holiday included) and make-up workdays (调休上班, usually a weekend day)."""

    year: int
    source: Source
    holidays: Mapping[date, str]
    workdays: Mapping[date, str]
    notice_no: str | None = None

    @property
    def provisional(self) -> bool:
        return self.source == "provisional"

    def is_working_day(self, day: date) -> bool:
        if day in self.workdays:
            return True
        if day in self.holidays:
            return False
        return day.weekday() < 5


class Deadline(NamedTuple):
    """A computed date, and whether a provisional calendar day went into it."""

    on: date
    provisional: bool


def provisional_note(on: date, provisional: bool) -> str:
    """What a refusal or a flag resting on a provisional day must say (M-3); '' if none."""
    if not provisional:
        return ""
    return (
        f" (deadline {on} computed on a provisional calendar: its year is not published yet, M-3)"
    )


class Counted(NamedTuple):
    days: int
    provisional: bool


class WorkingCalendar:
    """The stored years, and for any other year either a provisional year (from
    `provisional`) or a refusal (`provisional` is None)."""

    def __init__(
        self,
        years: Mapping[int, CalendarYear],
        *,
        provisional: Callable[[int], CalendarYear] | None = None,
    ) -> None:
        self._years = dict(years)
        self._stored = sorted(years)
        self._provisional = provisional

    @property
    def stored_years(self) -> list[int]:
        """The years published (not the provisional ones made on the way)."""
        return list(self._stored)

    def year(self, year: int) -> CalendarYear:
        found = self._years.get(year)
        if found is not None:
            return found
        if self._provisional is None:
            raise CalendarUnavailable(
                f"the PRC working-day calendar for {year} is not published in this service "
                f"yet; an admin publishes it with PUT /api/v1/calendar/{year}",
                [
                    CalendarUnavailable.violation(
                        f"no working-day calendar for {year}", "calendar", year
                    )
                ],
            )
        made = self._provisional(year)
        self._years[year] = made
        return made

    def is_working_day(self, day: date) -> bool:
        return self.year(day.year).is_working_day(day)

    def is_provisional(self, day: date) -> bool:
        return self.year(day.year).provisional

    def add_working_days(self, start: date, days: int) -> Deadline:
        """The `days`-th working day after `start` (start itself not counted).

        5 working days after 2025-09-30 is 2025-10-14 (National Day week, make-up Saturday
        2025-10-11 counts)."""
        if days < 0:
            raise ValueError("days must be non-negative")
        current, left, provisional = start, days, False
        while left:
            current += timedelta(days=1)
            year = self.year(current.year)
            provisional = provisional or year.provisional
            if year.is_working_day(current):
                left -= 1
        return Deadline(current, provisional)

    def working_days_between(self, start: date, end: date) -> Counted:
        """Working days in (start, end]: 0 when end ≤ start."""
        count, current, provisional = 0, start, False
        while current < end:
            current += timedelta(days=1)
            year = self.year(current.year)
            provisional = provisional or year.provisional
            if year.is_working_day(current):
                count += 1
        return Counted(count, provisional)


def add_months(day: date, months: int) -> date:
    """The same day `months` later, or the month's last day when it is shorter
    (2024-02-29 + 12 months = 2025-02-28). Calendar months, not working days."""
    month_index = day.month - 1 + months
    year, month = day.year + month_index // 12, month_index % 12 + 1
    return date(year, month, min(day.day, _months.monthrange(year, month)[1]))
