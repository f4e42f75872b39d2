"""Signed chain checkpoints kept outside the database (L-2): a tail removed with the head
rewound, or a chain re-hashed from an altered entry, passes the chain's own check but
not the checkpoints; a forged checkpoint is refused."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import Connection, text
from sqlalchemy.orm import Session

from app.ledger import service as ledger
from app.ledger.checkpoints import Checkpoint, problems, take
from app.ledger.postings import credit, debit
from app.ledger.repository import chain_rows
from tests.fixtures.ledger import post

KEY = b"k" * 32
NOW = datetime(2026, 12, 3, 9, tzinfo=UTC)
CITY, NANJING = "SKD_CITY_320100", "FINANCE_320100"


def _three_entries(session: Session) -> None:
    for amount in (100, 200, 300):
        post(
            session,
            [debit(CITY, "cash", amount), credit(CITY, "contributed_capital", amount, NANJING)],
        )
    session.flush()


def _guards_off(connection: Connection) -> None:
    """What someone owning the tables can do: switch the append-only triggers off (undone
    by the test's rollback)."""
    if connection.dialect.name == "postgresql":
        connection.execute(text("SET CONSTRAINTS ALL IMMEDIATE"))
        connection.execute(text("SET LOCAL session_replication_role = replica"))
    else:
        names = connection.execute(
            text("SELECT name FROM sqlite_master WHERE type = 'trigger' AND name LIKE 'ledger_%'")
        ).scalars()
        for name in list(names):
            connection.execute(text(f"DROP TRIGGER {name}"))


def test_l2_a_checkpoint_of_an_intact_journal_verifies(session: Session) -> None:
    _three_entries(session)
    cp = take(session, key=KEY, now=NOW)
    again = Checkpoint.parse(cp.line())
    assert again == cp and cp.entry_id >= 3
    assert problems(session, [again], key=KEY) == []


def test_l2_a_removed_tail_with_the_head_rewound_is_caught(
    session: Session, connection: Connection
) -> None:
    _three_entries(session)
    cp = take(session, key=KEY, now=NOW)
    last = cp.entry_id
    _guards_off(connection)
    prev_hash = connection.execute(
        text("SELECT prev_hash FROM ledger_entries WHERE id = :id"), {"id": last}
    ).scalar_one()
    connection.execute(text("DELETE FROM ledger_legs WHERE entry_id = :id"), {"id": last})
    connection.execute(text("DELETE FROM ledger_entries WHERE id = :id"), {"id": last})
    connection.execute(
        text("UPDATE ledger_chain_head SET last_seq = :seq, last_hash = :hash WHERE id = 1"),
        {"seq": last - 1, "hash": prev_hash},
    )
    session.expire_all()
    assert ledger.verify(session).ok  # the chain alone cannot tell
    found = problems(session, [cp], key=KEY)
    assert any("missing" in p for p in found) and any("behind" in p for p in found), found


def test_l2_a_chain_re_hashed_from_an_altered_entry_is_caught(
    session: Session, connection: Connection
) -> None:
    _three_entries(session)
    cp = take(session, key=KEY, now=NOW)
    last = cp.entry_id
    _guards_off(connection)
    connection.execute(
        text("UPDATE ledger_entries SET description = 'altered' WHERE id = :id"), {"id": last}
    )
    session.expire_all()
    entry, legs = next((e, legs) for e, legs in chain_rows(session) if e.id == last)
    forged = ledger.content_hash(entry, legs)
    connection.execute(
        text("UPDATE ledger_entries SET hash = :h WHERE id = :id"), {"h": forged, "id": last}
    )
    connection.execute(
        text("UPDATE ledger_chain_head SET last_hash = :h WHERE id = 1"), {"h": forged}
    )
    session.expire_all()
    assert ledger.verify(session).ok  # re-hashed: the chain alone cannot tell
    found = problems(session, [cp], key=KEY)
    assert found and "re-hashed" in found[0], found


def test_l2_a_forged_checkpoint_is_refused(session: Session) -> None:
    _three_entries(session)
    cp = take(session, key=KEY, now=NOW)
    other_key = take(session, key=b"x" * 32, now=NOW)
    found = problems(session, [other_key], key=KEY)
    assert found and "signature" in found[0]
    moved = Checkpoint(cp.entry_id - 1, cp.hash, cp.taken_at, cp.signature)
    assert "signature" in problems(session, [moved], key=KEY)[0]


def test_l2_cli_checkpoint_then_verify(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    database_url: str,
) -> None:
    from app import cli
    from app.config import get_settings

    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.setenv("LEDGER_CHECKPOINT_KEY", "c" * 40)
    get_settings.cache_clear()
    kept = tmp_path / "checkpoints.jsonl"
    try:
        cli.main(["checkpoint", "--out", str(kept)])
        cli.main(["checkpoint", "--out", str(kept)])
        with pytest.raises(SystemExit) as info:
            cli.main(["verify", "--checkpoints", str(kept)])
        assert info.value.code == 0, capsys.readouterr().out
        assert "checkpoints checked: 2" in capsys.readouterr().out
        lines = kept.read_text().splitlines()
        kept.write_text(lines[0].replace('"entry_id": ', '"entry_id": 1') + "\n")
        with pytest.raises(SystemExit) as info:
            cli.main(["verify", "--checkpoints", str(kept)])
        assert info.value.code == 1
        assert "LEDGER BROKEN" in capsys.readouterr().out
    finally:
        get_settings.cache_clear()
