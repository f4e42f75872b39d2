"""The garbage collector of a serving process.

CPython collects its youngest generation every 700 net allocations of container
objects, and a full collection walks every tracked object in the process: the app's
modules, routes, schemas and SQLAlchemy's caches, hundreds of thousands of objects that
live as long as the process. A request that happens to trigger a full collection pays
for walking all of them (measured in-process: a 1,000-filing batch took 340–620 ms with
the defaults and 350–380 ms with the first threshold at 100,000, without the freeze,
`bench/RESULTS.md`).

At startup, after the app is built, `tune` collects once, moves every object alive into
the permanent generation (`gc.freeze`, never scanned again) and raises the first
threshold: collections become rarer, and each walks only what requests allocated since.
Reference counting still frees everything acyclic at once; only cyclic garbage waits
longer. Only the serving entry point calls it (`app.main.app_factory`): tests and the
CLI keep Python's defaults."""

from __future__ import annotations

import gc
import logging

log = logging.getLogger(__name__)


def tune(gen0_threshold: int) -> None:
    """Freeze what is alive now and collect the youngest generation every
    `gen0_threshold` allocations (0: leave the collector alone)."""
    if gen0_threshold <= 0:
        return
    gc.collect()
    gc.freeze()
    _, gen1, gen2 = gc.get_threshold()
    gc.set_threshold(gen0_threshold, gen1, gen2)
    log.info(
        "garbage collector tuned",
        extra={"frozen_objects": gc.get_freeze_count(), "gen0_threshold": gen0_threshold},
    )
