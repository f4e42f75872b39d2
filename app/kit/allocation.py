"""Exact splits (SPEC M-2): public shares rounded *down* to the fen, remainder to the
party listed last (the bank). The parts always sum to the amount split."""

from __future__ import annotations

from collections.abc import Sequence
from fractions import Fraction


def allocate(amount_fen: int, weights: Sequence[tuple[str, int | Fraction]]) -> dict[str, int]:
    """Split `amount_fen` by `weights` (any non-negative numbers: basis points, fractions).

    Every party but the last gets floor(amount × weight / Σweights); the last gets what is
    left, so the parts sum to the amount exactly.

    >>> allocate(100_000_001, [("province", 4000), ("city", 4000), ("bank", 2000)])
    {'province': 40000000, 'city': 40000000, 'bank': 20000001}
    """
    if amount_fen < 0:
        raise ValueError("amount to allocate must not be negative")
    if not weights:
        raise ValueError("at least one party is needed")
    names = [name for name, _ in weights]
    if len(set(names)) != len(names):
        raise ValueError("party names must be unique")
    if all(isinstance(w, int) for _, w in weights):  # basis points: integers suffice
        int_total = sum(int(w) for _, w in weights)
        if int_total <= 0 or any(int(w) < 0 for _, w in weights):
            raise ValueError("weights must be non-negative with a positive sum")
        split = {name: amount_fen * int(w) // int_total for name, w in weights[:-1]}
        split[weights[-1][0]] = amount_fen - sum(split.values())
        return split
    total = sum((Fraction(w) for _, w in weights), Fraction(0))
    if total <= 0 or any(Fraction(w) < 0 for _, w in weights):
        raise ValueError("weights must be non-negative with a positive sum")
    parts: dict[str, int] = {}
    given = 0
    for name, weight in weights[:-1]:
        share = (amount_fen * Fraction(weight) / total).__floor__()
        parts[name] = share
        given += share
    parts[weights[-1][0]] = amount_fen - given
    return parts
