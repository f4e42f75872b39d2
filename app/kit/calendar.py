"""Working days on the PRC statutory calendar with make-up workdays (SPEC M-3), from the
maintained `chinesecalendar` package. Years it does not cover are refused, never guessed."""

from __future__ import annotations

import calendar as _months
from datetime import date, timedelta

import chinese_calendar

from app.errors import Unprocessable, Violation


class CalendarUnavailable(Unprocessable):
    code = "calendar_year_unsupported"


def is_working_day(day: date) -> bool:
    try:
        return bool(chinese_calendar.is_workday(day))
    except NotImplementedError as exc:
        raise CalendarUnavailable(
            f"the PRC holiday calendar for {day.year} is not published in this service yet",
            [Violation(msg=str(exc), code="calendar_year_unsupported", rule="M-3")],
            rule="M-3",
        ) from exc


def add_working_days(start: date, days: int) -> date:
    """The `days`-th working day after `start` (start itself not counted).

    5 working days after 2025-09-30 is 2025-10-14 (National Day week, make-up Saturday
    2025-10-11 counts)."""
    if days < 0:
        raise ValueError("days must be non-negative")
    current, left = start, days
    while left:
        current += timedelta(days=1)
        if is_working_day(current):
            left -= 1
    return current


def working_days_between(start: date, end: date) -> int:
    """Working days in (start, end]: 0 when end ≤ start."""
    count, current = 0, start
    while current < end:
        current += timedelta(days=1)
        if is_working_day(current):
            count += 1
    return count


def add_months(day: date, months: int) -> date:
    """The same day `months` later, or the month's last day when it is shorter
    (2024-02-29 + 12 months = 2025-02-28). Calendar months, not working days."""
    month_index = day.month - 1 + months
    year, month = day.year + month_index // 12, month_index % 12 + 1
    return date(year, month, min(day.day, _months.monthrange(year, month)[1]))
