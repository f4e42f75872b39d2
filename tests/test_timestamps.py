"""Dates at the edge, and timestamps read back in UTC whatever the database server's time
zone, so an answer built from the values a request wrote equals the one a later read
builds (a claim stage's answer and its ETag, `app/claims/endpoints.py` `_act`)."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import Connection, select, text
from sqlalchemy.orm import Session

from app.models import ClaimTransition
from tests.fixtures.factories import skd_claim


def test_a_timestamp_is_read_back_in_utc_under_another_server_time_zone(
    session: Session, connection: Connection, backend: str
) -> None:
    claim = skd_claim(session, status="city_approved")
    written = session.scalars(
        select(ClaimTransition.at).where(ClaimTransition.claim_id == claim.id)
    ).first()
    assert written is not None
    if backend == "postgresql":  # SQLite keeps no time zone: its values are UTC already
        connection.execute(text("SET TIME ZONE 'Asia/Shanghai'"))
    session.expire_all()
    read = session.scalars(
        select(ClaimTransition.at).where(ClaimTransition.claim_id == claim.id)
    ).first()
    assert read is not None
    assert read == written and read.utcoffset() == UTC.utcoffset(None)
    assert read.isoformat() == written.astimezone(UTC).isoformat()
    assert isinstance(read, datetime)


def test_a_ledger_as_of_outside_the_business_range_is_a_422(client, auth) -> None:  # type: ignore[no-untyped-def]
    """Found by the API fuzzer: a fund's capital `as_of` 0001-03-19 overflowed the NPL
    cutoff (a 500); the ledger's `as_of` now has the business range every other has."""
    for url in ("/api/v1/funds/XB_POOL/capital", "/api/v1/ledger/trial-balance"):
        r = client.get(url, headers=auth("regulator"), params={"as_of": "0001-03-19"})
        assert r.status_code == 422, (url, r.text)
        assert r.json()["errors"][0]["loc"] == ["query", "as_of"]
