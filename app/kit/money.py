"""Money (SPEC M-1): integer fen inside, decimal strings in yuan at the edge. Never floats."""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import BeforeValidator, PlainSerializer, WithJsonSchema

# Largest amount accepted at the edge: 9,999,999,999,999.99 yuan fits a BIGINT of fen with room.
MAX_FEN = 999_999_999_999_999
_YUAN = re.compile(r"^(0|[1-9][0-9]*)(\.[0-9]{1,2})?$")


class MoneyFormatError(ValueError):
    pass


def parse_yuan(value: str) -> int:
    """`"1200000.5"` → 120000050 fen. Refuses negatives, > 2 decimals, exponents, NaN,
    thousands separators, blanks and non-strings."""
    if not isinstance(value, str):
        raise MoneyFormatError(
            'amount must be a decimal string in yuan with at most two decimals, e.g. "5000000.00"'
        )
    if not _YUAN.fullmatch(value):
        raise MoneyFormatError(
            f"{value!r} is not a yuan amount: use digits with at most two decimals, "
            'no sign, exponent or separators (e.g. "5000000.00")'
        )
    whole, _, frac = value.partition(".")
    fen = int(whole) * 100 + int((frac + "00")[:2])
    if fen > MAX_FEN:
        raise MoneyFormatError(f"{value} exceeds the largest accepted amount")
    return fen


def format_fen(fen: int) -> str:
    """120000050 → `"1200000.50"`; negative amounts keep their sign."""
    if not isinstance(fen, int) or isinstance(fen, bool):
        raise TypeError(f"fen must be int, got {type(fen).__name__}")
    sign = "-" if fen < 0 else ""
    q, r = divmod(abs(fen), 100)
    return f"{sign}{q}.{r:02d}"


_SCHEMA = {
    "type": "string",
    "pattern": r"^(0|[1-9][0-9]*)(\.[0-9]{1,2})?$",
    "examples": ["5000000.00"],
    "description": "CNY yuan as a decimal string, at most two decimals (SPEC M-1)",
}

# Request fields: only a yuan string is accepted (a JSON number is refused, so 5000000 can
# never be misread as fen or as a float); held as int fen.
YuanIn = Annotated[
    int,
    BeforeValidator(parse_yuan),
    PlainSerializer(format_fen, return_type=str, when_used="json"),
    WithJsonSchema(_SCHEMA),
]

# Response fields: built from int fen, rendered as a yuan string (may be negative).
Yuan = Annotated[
    int,
    PlainSerializer(format_fen, return_type=str, when_used="json"),
    WithJsonSchema({"type": "string", "examples": ["1200000.00"], "description": "CNY yuan"}),
]


def percent(bp: int) -> str:
    """Basis points as a percentage, exactly: 1000 → "10 %", 350 → "3.5 %"."""
    whole, frac = divmod(bp, 100)
    return f"{whole}.{frac:02d}".rstrip("0").rstrip(".") + " %"
