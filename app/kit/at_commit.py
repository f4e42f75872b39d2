"""Work a transaction does last, just before its COMMIT.

A row lock is held until the transaction ends, so a row that every request of a kind
must update — a programme's annual quota counter, the ledger's chain head — serialises
those requests for as long as the lock is held. Taking such a lock as the last thing
before COMMIT, instead of in the middle of the request, keeps it for a few round trips
instead of the whole request (the load harness in `bench/` measures the difference).

Steps run in the order they were registered, on the outermost commit only; one that
raises makes the commit fail, and the caller's rollback discards everything. Steps are
dropped when the transaction ends either way."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import event
from sqlalchemy.orm import Session, SessionTransaction

Step = Callable[[Session], object]
_PREFIX = "at_commit."
_STEPS = f"{_PREFIX}steps"


def at_commit(session: Session, step: Step, *, last: bool = False) -> None:
    """Run `step(session)` in this transaction, right before it commits; `last` steps
    after all others (the ledger's chain head is the last lock any transaction takes, so
    two transactions never wait for each other's locks in opposite orders)."""
    session.info.setdefault(_STEPS, []).append((last, step))


def pending(
    session: Session, name: str, factory: Callable[[], Any], step: Step, *, last: bool = False
) -> Any:
    """A value shared by every use in this transaction (say, the ledger entries to post
    at commit), created with `factory` on first use, when `step` is registered once."""
    key = f"{_PREFIX}{name}"
    if key not in session.info:
        session.info[key] = factory()

        def run(s: Session) -> None:
            step(s)
            s.info.pop(key, None)

        at_commit(session, run, last=last)
    return session.info[key]


@event.listens_for(Session, "before_commit")
def _run_steps(session: Session) -> None:
    if session.in_nested_transaction():
        return
    while steps := session.info.pop(_STEPS, None):
        for _, step in sorted(steps, key=lambda s: s[0]):  # stable: in order within each
            step(session)


@event.listens_for(Session, "after_transaction_end")
def _drop_steps(session: Session, transaction: SessionTransaction) -> None:
    if transaction.parent is None:
        for key in [k for k in session.info if isinstance(k, str) and k.startswith(_PREFIX)]:
            session.info.pop(key, None)
