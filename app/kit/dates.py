"""Business dates at the HTTP edge: a date the ledger can reason about.

A computation "as of" a date adds and subtracts thresholds, windows and terms of up to a
few years; near the ends of the calendar (0001-01-01, 9999-12-31) that overflows. A
query parameter that sets such a date is bounded to the business range below and a date
outside it is a 422 naming the parameter, like any other invalid query value."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Annotated

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


# Any date in a request body: facts (an enterprise registered in 1988) back to 1950,
# plans (a maturity, a schedule) up to 50 years ahead of the day the request is made.
# Outside that window a date is a typing error, and one near the ends of the calendar
# would overflow every computation and export that later reads it.
MIN_INPUT_DATE = date(1950, 1, 1)
INPUT_YEARS_AHEAD = 50


def input_date_problem(value: date) -> str | None:
    """Why `value` cannot be a date of a request body, or None."""
    today = datetime.now(UTC).date()
    latest = today.replace(year=today.year + INPUT_YEARS_AHEAD, day=min(today.day, 28))
    if value < MIN_INPUT_DATE:
        return f"must be on or after {MIN_INPUT_DATE.isoformat()}"
    if value > latest:
        return (
            f"must be on or before {latest.isoformat()} (at most {INPUT_YEARS_AHEAD} years ahead)"
        )
    return None
