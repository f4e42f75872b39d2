"""Keyset pagination: `limit` and an opaque `cursor` (the last key seen)."""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Sequence
from datetime import date
from typing import Annotated, Any, Generic, TypeVar

from fastapi import Path, Query
from pydantic import BaseModel, Field
from sqlalchemy import Select
from sqlalchemy.orm import InstrumentedAttribute, Session

from app.errors import Unprocessable, Violation

T = TypeVar("T")


class Page(BaseModel, Generic[T]):
    items: list[T]
    next_cursor: str | None = Field(
        None, description="pass as `cursor` to get the next page; null on the last page"
    )


class PageParams(BaseModel):
    limit: int
    cursor: str | None


def page_params(
    limit: Annotated[int, Query(ge=1, le=500, description="page size (1–500)")] = 50,
    cursor: Annotated[str | None, Query(description="`next_cursor` of the previous page")] = None,
) -> PageParams:
    return PageParams(limit=limit, cursor=cursor)


def encode_cursor(value: Any) -> str:
    payload = {"d": value.isoformat()} if isinstance(value, date) else {"k": value}
    return base64.urlsafe_b64encode(json.dumps(payload).encode()).decode().rstrip("=")


MAX_BIGINT = 2**63 - 1

# An id in a path: a positive 64-bit integer (the database's BIGINT), else 422.
ObjectId = Annotated[int, Path(ge=1, le=MAX_BIGINT, description="object id")]


def decode_cursor(cursor: str) -> Any:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        payload = json.loads(base64.urlsafe_b64decode(padded.encode()))
        if "d" in payload:
            return date.fromisoformat(payload["d"])
        value = payload["k"]
        if isinstance(value, bool) or not isinstance(value, int | str):
            raise TypeError("cursor key must be an integer or a string")
        if isinstance(value, int) and not -MAX_BIGINT <= value <= MAX_BIGINT:
            raise ValueError("cursor key out of range")
        if isinstance(value, str) and len(value) > 200:
            raise ValueError("cursor key too long")
        return value
    except (binascii.Error, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise Unprocessable(
            "the cursor is not one this service issued",
            [Violation(loc=("query", "cursor"), msg="invalid cursor", code="invalid_cursor")],
            code="invalid_cursor",
        ) from exc


def paginate(
    session: Session,
    stmt: Select[Any],
    key: InstrumentedAttribute[Any],
    params: PageParams,
) -> tuple[Sequence[Any], str | None]:
    """Run `stmt` (selecting ORM entities) ordered by the unique `key`, one page at a time."""
    if params.cursor is not None:
        stmt = stmt.where(key > decode_cursor(params.cursor))
    rows = session.scalars(stmt.order_by(key).limit(params.limit + 1)).all()
    if len(rows) > params.limit:
        rows = rows[: params.limit]
        return rows, encode_cursor(getattr(rows[-1], key.key))
    return rows, None
