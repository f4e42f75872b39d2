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

from app.errors import ValidationFailed

T = TypeVar("T")


class InvalidCursor(ValidationFailed):
    """The `cursor` query parameter is not a `next_cursor` this service issued (cursors
    are opaque: pass back the one a page answered, unchanged)."""

    code, title, title_zh = "invalid_cursor", "Invalid cursor", "分页游标无效"


# the refusals of a paginated list (its `responses=problems(*PAGE_REFUSALS, ...)`)
PAGE_REFUSALS = (InvalidCursor,)


class Page(BaseModel, Generic[T]):
    items: list[T]
    next_cursor: str | None = Field(
        None, description="pass as `cursor` to get the next page; null on the last page"
    )


class PageParams(BaseModel):
    limit: int
    cursor: str | None


async def page_params(
    limit: Annotated[
        int,
        Query(ge=1, le=500, description="page size (1–500) 每页条数", examples=[50]),
    ] = 50,
    cursor: Annotated[
        str | None,
        Query(
            description="`next_cursor` of the previous page, unchanged; absent for the "
            "first page 上一页返回的 next_cursor（首页不传）",
        ),
    ] = None,
) -> PageParams:
    return PageParams(limit=limit, cursor=cursor)


def encode_cursor(value: Any) -> str:
    payload = {"d": value.isoformat()} if isinstance(value, date) else {"k": value}
    return base64.urlsafe_b64encode(json.dumps(payload).encode()).decode().rstrip("=")


MAX_BIGINT = 2**63 - 1

# An id in a path: a positive 64-bit integer (the database's BIGINT), else 422.
ObjectId = Annotated[int, Path(ge=1, le=MAX_BIGINT, description="object id 对象编号", examples=[1])]

# Filters shared by the loan and claim lists: a contract number (exact) and an
# enterprise's unified social credit code.
ContractNoFilter = Annotated[
    str | None,
    Query(
        min_length=1,
        max_length=64,
        description="the loan with this contract number (exact) 借款合同编号",
        examples=["CCB-SKD-2026-0003"],
    ),
]
CreditCodeFilter = Annotated[
    str | None,
    Query(
        min_length=18,
        max_length=18,
        description="only this enterprise's 统一社会信用代码",
        examples=["91320500MA1XB0003C"],
    ),
]


def decode_cursor(cursor: str, expect: type | None = None) -> Any:
    """The key a `next_cursor` carries; `expect`: the type the list's key must have (a
    cursor of another list, or crafted, never reaches the database as a wrong type)."""
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        payload = json.loads(base64.urlsafe_b64decode(padded.encode()))
        if "d" in payload:
            day = date.fromisoformat(payload["d"])
            if expect is not None and expect is not date:
                raise TypeError("a date cursor on a list not keyed by date")
            return day
        value = payload["k"]
        if isinstance(value, bool) or not isinstance(value, int | str):
            raise TypeError("cursor key must be an integer or a string")
        if isinstance(value, int) and not -MAX_BIGINT <= value <= MAX_BIGINT:
            raise ValueError("cursor key out of range")
        if isinstance(value, str) and (len(value) > 200 or "\x00" in value):
            raise ValueError("cursor key too long or holding a NUL (never a key of ours)")
        if expect is not None and not isinstance(value, expect):
            raise TypeError(f"cursor key of this list must be a {expect.__name__}")
        return value
    except (binascii.Error, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise InvalidCursor(
            "the cursor is not one this service issued",
            [InvalidCursor.violation("invalid cursor", "query", "cursor")],
        ) from exc


def _key_type(key: InstrumentedAttribute[Any]) -> type | None:
    try:
        python_type: type = key.type.python_type
    except NotImplementedError:  # pragma: no cover - every key column has one
        return None
    return python_type


def paginate(
    session: Session,
    stmt: Select[Any],
    key: InstrumentedAttribute[Any],
    params: PageParams,
    *,
    descending: bool = False,
) -> tuple[Sequence[Any], str | None]:
    """Run `stmt` (selecting ORM entities) ordered by the unique `key` (newest first with
    `descending`), one page at a time."""
    if params.cursor is not None:
        after = decode_cursor(params.cursor, _key_type(key))
        stmt = stmt.where(key < after if descending else key > after)
    order = key.desc() if descending else key
    rows = session.scalars(stmt.order_by(order).limit(params.limit + 1)).all()
    if len(rows) > params.limit:
        rows = rows[: params.limit]
        return rows, encode_cursor(getattr(rows[-1], key.key))
    return rows, None
