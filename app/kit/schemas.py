"""Base API shapes. Every request model forbids unknown fields, strips whitespace, and
refuses text a database cannot store (NUL characters, unpaired UTF-16 surrogates) and
dates outside the input window (app/kit/dates.py: 1950-01-01 … 50 years ahead)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, field_validator

from app.kit.dates import input_date_problem


def unstorable_text(value: Any) -> str | None:
    """Why `value` (or any string inside it) cannot be stored, or None."""
    if isinstance(value, str):
        if "\x00" in value:
            return "must not contain NUL characters"
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return "must be valid Unicode text (unpaired surrogate)"
        return None
    if isinstance(value, dict):
        for key, item in value.items():
            if (why := unstorable_text(key) or unstorable_text(item)) is not None:
                return why
    if isinstance(value, list | tuple):
        for item in value:
            if (why := unstorable_text(item)) is not None:
                return why
    return None


class In(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    @field_validator("*", mode="after")
    @classmethod
    def _storable_text(cls, value: Any) -> Any:
        if (why := unstorable_text(value)) is not None:
            raise ValueError(why)
        if (why := _date_problem(value)) is not None:
            raise ValueError(why)
        return value


def _date_problem(value: Any) -> str | None:
    if isinstance(value, date) and not isinstance(value, datetime):
        return input_date_problem(value)
    if isinstance(value, list | tuple):
        for item in value:
            if (why := _date_problem(item)) is not None:
                return why
    return None


class Out(BaseModel):
    model_config = ConfigDict(from_attributes=True)
