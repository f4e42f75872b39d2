"""Business dates at the HTTP edge: a date the ledger can reason about.

A computation "as of" a date adds and subtracts thresholds, windows and terms of up to a
few years; near the ends of the calendar (0001-01-01, 9999-12-31) that overflows. A
query parameter that sets such a date is bounded to the business range below and a date
outside it is a 422 naming the parameter, like any other invalid query value."""

from __future__ import annotations

from datetime import date
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
