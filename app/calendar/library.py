"""Where calendar years come from besides a notice: the maintained `chinesecalendar`
package (official schedules, holidays and make-up workdays, for the years it covers) and,
for a year nobody has published, a provisional year from the `holidays` package's PRC
statutory holidays (weekdays minus those days; no make-up workdays are guessed)."""

from __future__ import annotations

from datetime import date
from functools import cache
from importlib.metadata import version

import holidays as statutory
from chinese_calendar import constants as official

from app.kit.calendar import CalendarYear

# the package's English names, with the Chinese beside them
NAMES_ZH = {
    "New Year's Day": "元旦",
    "Spring Festival": "春节",
    "Tomb-sweeping Day": "清明节",
    "Labour Day": "劳动节",
    "Dragon Boat Festival": "端午节",
    "National Day": "国庆节",
    "Mid-autumn Festival": "中秋节",
    "Anti-Fascist 70th Day": "中国人民抗日战争暨世界反法西斯战争胜利70周年纪念日",
}


def _named(english: str) -> str:
    zh = NAMES_ZH.get(english)
    return f"{zh} {english}" if zh else english


def library_version() -> str:
    return version("chinesecalendar")


@cache
def library_years() -> dict[int, CalendarYear]:
    """Every year the installed `chinesecalendar` covers."""
    years: dict[int, tuple[dict[date, str], dict[date, str]]] = {}
    for day, name in official.holidays.items():
        years.setdefault(day.year, ({}, {}))[0][day] = _named(str(name))
    for day, name in official.workdays.items():
        years.setdefault(day.year, ({}, {}))[1][day] = _named(str(name))
    return {
        year: CalendarYear(year=year, source="library", holidays=h, workdays=w)
        for year, (h, w) in years.items()
    }


@cache
def provisional_year(year: int) -> CalendarYear:
    """Weekdays minus the statutory holidays (法定节假日) the `holidays` package computes
    for the year; make-up workdays are only known from the notice, so there are none."""
    days = statutory.China(years=year)
    return CalendarYear(
        year=year,
        source="provisional",
        holidays={d: str(n) for d, n in sorted(days.items()) if d.year == year},
        workdays={},
    )
