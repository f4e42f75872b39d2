"""Calendar API shapes (SPEC M-3)."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from app.kit.schemas import In

WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")


class CalendarDayIn(In):
    date: date
    name: str = Field(min_length=1, max_length=100, examples=["春节 Spring Festival"])


def _days(first: str, last: str, name: str) -> list[dict[str, str]]:
    start, end = date.fromisoformat(first), date.fromisoformat(last)
    return [
        {"date": (start + timedelta(days=i)).isoformat(), "name": name}
        for i in range((end - start).days + 1)
    ]


# 国务院办公厅关于2026年部分节假日安排的通知 (国办发明电〔2025〕7号), as published
EXAMPLE_2026: dict[str, Any] = {
    "notice_no": "国办发明电〔2025〕7号",
    "notice_title": "国务院办公厅关于2026年部分节假日安排的通知",
    "holidays": [
        *_days("2026-01-01", "2026-01-03", "元旦"),
        *_days("2026-02-15", "2026-02-23", "春节"),
        *_days("2026-04-04", "2026-04-06", "清明节"),
        *_days("2026-05-01", "2026-05-05", "劳动节"),
        *_days("2026-06-19", "2026-06-21", "端午节"),
        *_days("2026-09-25", "2026-09-27", "中秋节"),
        *_days("2026-10-01", "2026-10-07", "国庆节"),
    ],
    "workdays": [
        {"date": "2026-01-04", "name": "元旦调休"},
        {"date": "2026-02-14", "name": "春节调休"},
        {"date": "2026-02-28", "name": "春节调休"},
        {"date": "2026-05-09", "name": "劳动节调休"},
        {"date": "2026-09-20", "name": "国庆节调休"},
        {"date": "2026-10-10", "name": "国庆节调休"},
    ],
}


class CalendarYearIn(In):
    """A year's schedule as the State Council notice (国务院办公厅关于…部分节假日安排的通知)
    gives it: every day off (休, weekends inside a holiday included) and every make-up
    workday (调休上班, a Saturday or Sunday)."""

    model_config = ConfigDict(json_schema_extra={"examples": [EXAMPLE_2026]})

    notice_no: str = Field(
        min_length=1,
        max_length=100,
        description="the notice's document number 文号",
        examples=["国办发明电〔2025〕7号"],
    )
    notice_title: str | None = Field(None, max_length=500, description="the notice's title")
    holidays: list[CalendarDayIn] = Field(
        min_length=1, max_length=366, description="days off 放假 (休)"
    )
    workdays: list[CalendarDayIn] = Field(
        default_factory=list, max_length=366, description="make-up workdays 调休上班 (班)"
    )


class CalendarDayOut(BaseModel):
    date: date
    weekday: str = Field(examples=["Sat"])
    kind: Literal["holiday", "workday"] = Field(description="holiday 休 / make-up workday 班")
    name: str


class PublicationOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    year: int
    source: Literal["library", "notice"] = Field(
        description="library: the chinesecalendar package; notice: published by an admin "
        "from the State Council notice"
    )
    notice_no: str | None
    notice_title: str | None
    library_version: str | None
    published_at: datetime
    published_by_id: int | None


class CalendarYearOut(BaseModel):
    year: int
    source: Literal["library", "notice", "provisional"] = Field(
        description="where the year's days come from: library (chinesecalendar), notice "
        "(published from the State Council notice) or provisional (not published: weekdays "
        "minus the statutory holidays, no make-up workdays)"
    )
    provisional: bool
    in_force: bool = Field(
        description="deadlines use this year; false when the year is not published and "
        "the service refuses unpublished years (CALENDAR_UNPUBLISHED=refuse)"
    )
    notice_no: str | None
    working_days: int = Field(description="工作日 in the year")
    holidays: list[CalendarDayOut]
    workdays: list[CalendarDayOut]
    publications: list[PublicationOut] = Field(
        description="every publication of the year, oldest first; the last is in force"
    )


class DeadlineChangeOut(BaseModel):
    object: Literal["loan", "claim", "recovery"]
    id: int
    deadline: str = Field(examples=["filing", "manager_opinion", "payment", "distribution"])
    old: date | None
    new: date
    old_provisional: bool
    new_provisional: bool
    consequence: str = Field(description="what the new deadline changed on the object")


class CalendarPublished(CalendarYearOut):
    changed: bool = Field(description="false when the same schedule was already in force")
    recomputed: list[DeadlineChangeOut] = Field(
        description="stored deadlines of open loans and claims recomputed in the same "
        "transaction, each also recorded in its object's history"
    )


class CalendarYearSummary(BaseModel):
    year: int
    source: Literal["library", "notice"]
    notice_no: str | None
    published_at: datetime


class CalendarOverview(BaseModel):
    today: date
    unpublished_years: Literal["provisional", "refuse"] = Field(
        description="what the service does with a year not published (CALENDAR_UNPUBLISHED)"
    )
    years: list[CalendarYearSummary] = Field(description="the published years")
    next_year: int
    next_year_published: bool
    warning: str | None = Field(
        description="from October 1, while next year's calendar is not published"
    )
