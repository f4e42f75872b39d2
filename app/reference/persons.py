"""An enterprise's actual controller (实际控制人) as a person (SKD-F4, XB-N2).

A person is known by the resident ID number (居民身份证号, GB 11643-1999: 17 digits and an
ISO 7064 MOD 11-2 check character, 0-9 or X). The number is checked, normalised (upper
case X) and never stored nor echoed: only `id_hash`, the HMAC-SHA256 of the normalised
number under the server's PERSON_ID_KEY (settings), is kept. The same number given for
two enterprises is the same person, so the filing rules can see every enterprise a
controller controls. The key must not change once numbers are hashed under it: a new
key would make a known controller a new person."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from app.models import Person
from app.models.base import utcnow

# GB 11643-1999: the weight of position i (0-based) is 2^(17 - i) mod 11; the check
# character is CHECK[sum mod 11]
_WEIGHTS = tuple(pow(2, 17 - i, 11) for i in range(17))
_CHECK = "10X98765432"
_DIGITS = frozenset("0123456789")


def normalise_id_number(value: str) -> str:
    """The ID number in its one stored-for-hashing form (a lowercase x accepted); a
    ValueError saying what is wrong, never repeating the number."""
    number = value.strip().upper()
    if len(number) != 18:
        raise ValueError(
            f"a resident ID number (居民身份证号, GB 11643) has 18 characters, not {len(number)}"
        )
    if not set(number[:17]) <= _DIGITS or number[17] not in _CHECK:
        raise ValueError(
            "a resident ID number (居民身份证号, GB 11643) is 17 digits and a check "
            "character 0-9 or X"
        )
    try:
        date(int(number[6:10]), int(number[10:12]), int(number[12:14]))
    except ValueError:
        raise ValueError(
            "not a valid resident ID number: characters 7-14 are not a date of birth"
        ) from None
    if number[17] != check_character(number[:17]):
        raise ValueError(
            "not a valid resident ID number: the check character does not match (GB 11643)"
        )
    return number


def check_character(first17: str) -> str:
    """GB 11643's check character of the first 17 digits."""
    return _CHECK[sum(int(d) * w for d, w in zip(first17, _WEIGHTS, strict=True)) % 11]


def id_hash(number: str, key: str) -> str:
    """HMAC-SHA256 (hex) of the normalised number under the server's key."""
    return hmac.new(
        key.encode("utf-8"), normalise_id_number(number).encode("ascii"), hashlib.sha256
    ).hexdigest()


@dataclass(frozen=True)
class Known:
    """A person as recorded."""

    id: int
    name: str


def known_persons(session: Session, hashes: set[str]) -> dict[str, Known]:
    """The recorded persons with these hashes, by hash (one query)."""
    if not hashes:
        return {}
    rows = session.execute(
        select(Person.id_hash, Person.id, Person.name).where(Person.id_hash.in_(sorted(hashes)))
    )
    return {h: Known(int(i), n) for h, i, n in rows}


def ensure_persons(session: Session, names: Mapping[str, str]) -> dict[str, Known]:
    """The persons with these hashes (hash → name), inserting the ones not yet recorded
    (one that a concurrent request records meanwhile is left as it recorded it); by hash."""
    known = known_persons(session, set(names))
    missing = [{"id_hash": h, "name": n} for h, n in names.items() if h not in known]
    if missing:
        stmt: Any
        if session.get_bind().dialect.name == "postgresql":
            stmt = postgresql_insert(Person)
        else:
            stmt = sqlite_insert(Person)
        now = utcnow()
        rows = [{**row, "created_at": now} for row in missing]
        session.execute(stmt.values(rows).on_conflict_do_nothing(index_elements=["id_hash"]))
        known |= known_persons(session, {r["id_hash"] for r in missing})
    return known


def name_mismatch(known: Known | None, name: str) -> bool:
    """The number is recorded for a person under another name (a mistyped number or
    name: refused, the recorded name is not revealed)."""
    return known is not None and known.name != name


NAME_MISMATCH = (
    "this ID number is recorded for an actual controller under another name; check the "
    "name and the number"
)
