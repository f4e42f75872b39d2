"""Signed chain checkpoints kept outside the database (L-2).

The hash chain proves that no entry was changed *behind the chain head*; someone who
can write the database could still delete the tail and rewind the head, or edit an entry
and re-hash every entry after it. A checkpoint — the head's entry number and hash at a
moment, signed with `LEDGER_CHECKPOINT_KEY`, which the database never holds — is kept
by the fund manager outside the database (`ledger checkpoint >> checkpoints.jsonl`).
`ledger verify --checkpoints checkpoints.jsonl` then proves that every checkpointed
entry is still there with the same hash: a truncated tail, a rewound head or a
re-hashed chain all fail."""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.ledger import repository as repo
from app.models import LedgerEntry


@dataclass(frozen=True)
class Checkpoint:
    entry_id: int  # the chain head's entry number when taken (0: an empty journal)
    hash: str
    taken_at: str  # ISO 8601 with offset
    signature: str  # HMAC-SHA256 of the three above under LEDGER_CHECKPOINT_KEY

    def line(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def parse(cls, line: str) -> Checkpoint:
        data = json.loads(line)
        return cls(
            entry_id=int(data["entry_id"]),
            hash=str(data["hash"]),
            taken_at=str(data["taken_at"]),
            signature=str(data["signature"]),
        )


def _sign(key: bytes, entry_id: int, chain_hash: str, taken_at: str) -> str:
    message = f"{entry_id}|{chain_hash}|{taken_at}".encode()
    return hmac.new(key, message, hashlib.sha256).hexdigest()


def take(session: Session, *, key: bytes, now: datetime) -> Checkpoint:
    """The chain head as it is now, signed."""
    entry_id, chain_hash = repo.head(session)
    taken_at = now.isoformat()
    return Checkpoint(entry_id, chain_hash, taken_at, _sign(key, entry_id, chain_hash, taken_at))


def problems(session: Session, checkpoints: Iterable[Checkpoint], *, key: bytes) -> list[str]:
    """Every way the journal disagrees with the checkpoints (empty: it agrees)."""
    found: list[str] = []
    head_id, _ = repo.head(session)
    for cp in checkpoints:
        where = f"checkpoint of entry {cp.entry_id} taken {cp.taken_at}"
        expected = _sign(key, cp.entry_id, cp.hash, cp.taken_at)
        if not hmac.compare_digest(expected, cp.signature):
            found.append(f"{where}: the signature does not match (not ours, or altered)")
            continue
        if cp.entry_id == 0:
            continue
        if head_id < cp.entry_id:
            found.append(
                f"{where}: the chain head is at entry {head_id}, behind the checkpoint "
                "(entries removed and the head rewound?)"
            )
        stored = session.scalar(select(LedgerEntry.hash).where(LedgerEntry.id == cp.entry_id))
        if stored is None:
            found.append(f"{where}: the entry is missing (the tail was removed?)")
        elif stored != cp.hash:
            found.append(
                f"{where}: its hash is not the one checkpointed (the chain was re-hashed "
                "from an altered entry?)"
            )
    return found
