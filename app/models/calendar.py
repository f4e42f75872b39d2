"""The PRC working-day calendar as the service's own data (SPEC M-3): one publication per
year and version (seeded from the `chinesecalendar` package, or published by an admin from
the State Council notice), each with its holidays and make-up workdays. The latest
publication of a year is in force; earlier ones stay as its history."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import CheckConstraint, ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import Base, BigIntPK, utcnow
from app.models.reference import _in

CALENDAR_SOURCES = ("library", "notice")
CALENDAR_DAY_KINDS = ("holiday", "workday")


class CalendarPublication(Base):
    __tablename__ = "calendar_publications"
    __table_args__ = (
        CheckConstraint(_in("source", CALENDAR_SOURCES), name="source"),
        CheckConstraint("source <> 'notice' OR notice_no IS NOT NULL", name="notice_no"),
        CheckConstraint("year BETWEEN 1949 AND 2200", name="year"),
        Index("ix_calendar_publications_year_id", "year", "id"),
    )

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    year: Mapped[int]
    source: Mapped[str] = mapped_column(String(16))
    notice_no: Mapped[str | None] = mapped_column(String(100))  # e.g. 国办发明电〔2025〕7号
    notice_title: Mapped[str | None] = mapped_column(Text)
    library_version: Mapped[str | None] = mapped_column(String(32))
    # a fresh random value per publication: the in-process calendar cache is keyed on
    # the latest one, so every process sees a publication at its next request
    token: Mapped[str] = mapped_column(String(32), unique=True)
    published_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), index=True)
    published_at: Mapped[datetime] = mapped_column(default=utcnow)


class CalendarDay(Base):
    """An exception to the weekday rule in a publication: a holiday (休) or a make-up
    workday (班)."""

    __tablename__ = "calendar_days"
    __table_args__ = (CheckConstraint(_in("kind", CALENDAR_DAY_KINDS), name="kind"),)

    publication_id: Mapped[int] = mapped_column(
        ForeignKey("calendar_publications.id"), primary_key=True
    )
    day: Mapped[date] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))
    name: Mapped[str] = mapped_column(String(100))
