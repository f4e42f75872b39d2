"""A year's schedule from a small file, for `ledger calendar publish` (SPEC M-3).

JSON: the body of `PUT /api/v1/calendar/{year}` plus `year`:
    {"year": 2027, "notice_no": "国办发明电〔…〕…号", "notice_title": "…",
     "holidays": [{"date": "2027-01-01", "name": "元旦"}, …],
     "workdays": [{"date": "2027-02-20", "name": "春节调休"}, …]}
CSV: a header `date,kind,name`, one row per day; kind is holiday (休) or workday (班);
the notice number comes from `--notice-no`."""

from __future__ import annotations

import csv
import io
import json
from datetime import date
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from app.calendar.schemas import CalendarYearIn
from app.calendar.service import CalendarInvalid
from app.errors import Violation

KINDS = {"holiday": "holidays", "休": "holidays", "workday": "workdays", "班": "workdays"}


def read_schedule(
    path: Path, *, year: int | None, notice_no: str | None, notice_title: str | None
) -> tuple[int, CalendarYearIn]:
    """The file's year and schedule, checked as the API checks a body; every problem of
    the file is listed in one refusal."""
    text = path.read_text(encoding="utf-8-sig")
    raw: dict[str, Any]
    if path.suffix.lower() == ".json":
        try:
            raw = json.loads(text)
        except json.JSONDecodeError as exc:
            raise _refused([Violation(loc=("file",), msg=f"not JSON: {exc}")]) from None
        if not isinstance(raw, dict):
            raise _refused([Violation(loc=("file",), msg="a JSON object is expected")])
        year = year or raw.pop("year", None)
        raw.pop("year", None)
    else:
        raw, problems = _from_csv(text)
        if problems:
            raise _refused(problems)
    if notice_no:
        raw["notice_no"] = notice_no
    if notice_title:
        raw["notice_title"] = notice_title
    try:
        body = CalendarYearIn.model_validate(raw)
    except ValidationError as exc:
        raise _refused(
            [Violation(loc=tuple(e["loc"]), msg=e["msg"]) for e in exc.errors()]
        ) from None
    years = {d.date.year for d in [*body.holidays, *body.workdays]}
    if year is None:
        if len(years) != 1:
            raise _refused(
                [Violation(loc=("year",), msg="give --year: the days span several years")]
            )
        year = years.pop()
    return int(year), body


def _from_csv(text: str) -> tuple[dict[str, Any], list[Violation]]:
    rows = csv.DictReader(io.StringIO(text))
    missing = {"date", "kind", "name"} - set(rows.fieldnames or [])
    if missing:
        return {}, [
            Violation(loc=("header",), msg=f"missing column(s): {', '.join(sorted(missing))}")
        ]
    out: dict[str, Any] = {"holidays": [], "workdays": []}
    problems = []
    for number, row in enumerate(rows, start=2):
        kind = KINDS.get((row.get("kind") or "").strip().lower())
        try:
            day = date.fromisoformat((row.get("date") or "").strip())
        except ValueError:
            problems.append(Violation(loc=("row", number, "date"), msg="a date YYYY-MM-DD"))
            continue
        if kind is None:
            problems.append(
                Violation(loc=("row", number, "kind"), msg="holiday (休) or workday (班)")
            )
            continue
        out[kind].append({"date": day.isoformat(), "name": (row.get("name") or "").strip()})
    return out, problems


def _refused(problems: list[Violation]) -> CalendarInvalid:
    return CalendarInvalid(
        f"the calendar file cannot be used: {len(problems)} problem(s)", problems
    )
