"""Business dates at the HTTP edge: a date the ledger can reason about.

A computation "as of" a date adds and subtracts thresholds, windows and terms of up to a
few years; near the ends of the calendar (0001-01-01, 9999-12-31) that overflows. A
query parameter that sets such a date is bounded to the business range below and a date
outside it is a 422 naming the parameter, like any other invalid query value."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Annotated, cast

from fastapi import Query

MIN_BUSINESS_DATE = date(1990, 1, 1)
MAX_BUSINESS_DATE = date(2199, 12, 31)
BUSINESS_RANGE = f"{MIN_BUSINESS_DATE.isoformat()} … {MAX_BUSINESS_DATE.isoformat()}"

# `as_of` as a query parameter: optional (the endpoint falls back to the business date)
AsOf = Annotated[
    date | None,
    Query(
        ge=MIN_BUSINESS_DATE,
        le=MAX_BUSINESS_DATE,
        description=f"as of this date (default: today); {BUSINESS_RANGE}",
    ),
]


# Any date in a request body: facts (an enterprise registered in 1988) back to
# INPUT_DATE_MIN (1950-01-01), plans (a maturity, a schedule) up to INPUT_YEARS_AHEAD (50)
# years ahead of the day the request is made — the settings of the same names, applied
# by `configure` when the application is created. Outside that window a date is a
# typing error, and one near the ends of the calendar would overflow every computation
# and export that later reads it.
MIN_INPUT_DATE = date(1950, 1, 1)
INPUT_YEARS_AHEAD = 50
_window = {"min": MIN_INPUT_DATE, "years": INPUT_YEARS_AHEAD}


def configure(min_date: date, years_ahead: int) -> None:
    """The input window of this process (`Settings.input_date_min`, `input_years_ahead`)."""
    _window["min"], _window["years"] = min_date, years_ahead


def input_date_problem(value: date) -> str | None:
    """Why `value` cannot be a date of a request body, or None."""
    earliest, years = cast(date, _window["min"]), cast(int, _window["years"])
    today = datetime.now(UTC).date()
    latest = today.replace(year=today.year + years, day=min(today.day, 28))
    if value < earliest:
        return f"must be on or after {earliest.isoformat()}"
    if value > latest:
        return f"must be on or before {latest.isoformat()} (at most {years} years ahead)"
    return None
