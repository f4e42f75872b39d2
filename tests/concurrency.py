"""Run one callable per id on its own PostgreSQL connection, all released at once."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from app.auth.principal import Principal
from app.db import make_engine
from app.models import User


def race(pg_engine: Engine, ids: list[int], act: Callable[[Session, int], str]) -> Counter[str]:
    """`act(session, id)` in one committed transaction per id, on len(ids) parallel
    connections behind a barrier; returns how often each outcome came back."""
    engine = make_engine(pg_engine.url.render_as_string(hide_password=False), pool_size=len(ids))
    barrier = threading.Barrier(len(ids))
    outcomes: Counter[str] = Counter()
    lock = threading.Lock()

    def run(item: int) -> None:
        barrier.wait()
        with Session(engine) as s, s.begin():
            outcome = act(s, item)
        with lock:
            outcomes[outcome] += 1

    threads = [threading.Thread(target=run, args=(i,)) for i in ids]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    engine.dispose()
    return outcomes


def principal(session: Session, username: str) -> Principal:
    return Principal.of(session.scalars(select(User).where(User.username == username)).one())
