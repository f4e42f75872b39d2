"""Rules both programmes share, pure. The claim checks are untagged: each programme tags
them with its own rule IDs (`Rule(id, check)` in its `claims.py`: SKD-C2 / SKD-S2 for
SKD, XB-C1 / XB-N7 for XB)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from app.errors import Violation


class LoanPosition(Protocol):
    """What a claim check needs to know of the loan on the day of the claim."""

    @property
    def loan_status(self) -> str: ...
    @property
    def compensable(self) -> bool: ...
    @property
    def outstanding_fen(self) -> int: ...
    @property
    def days_past_due(self) -> int: ...


class PastDuePolicy(Protocol):
    @property
    def min_days_past_due(self) -> int: ...


def _claim_refusal(code: str, msg: str) -> Violation:
    return Violation(loc=("body", "loan_id"), msg=msg, code=code)


def loan_active(f: LoanPosition, p: object) -> Violation | None:
    """Only an active loan can be claimed."""
    if f.loan_status == "active":
        return None
    return _claim_refusal(
        "loan_not_claimable", f"the loan is {f.loan_status}; only an active loan can be claimed"
    )


def compensable(msg: str) -> Callable[[LoanPosition, object], Violation | None]:
    """A loan marked non-compensable is refused, with the programme's reason `msg`."""

    def loan_compensable(f: LoanPosition, p: object) -> Violation | None:
        return None if f.compensable else _claim_refusal("not_compensable", msg)

    return loan_compensable


def past_due_long_enough(f: LoanPosition, p: PastDuePolicy) -> Violation | None:
    """Principal is outstanding and at least `min_days_past_due` days past due."""
    if f.outstanding_fen <= 0:
        return _claim_refusal("nothing_outstanding", "no principal is outstanding")
    if f.days_past_due < p.min_days_past_due:
        return _claim_refusal(
            "not_yet_claimable",
            f"principal is {f.days_past_due} days past due; a claim needs {p.min_days_past_due}",
        )
    return None


def recovery_return(*, net_fen: int, loss_fen: int, paid_fen: int, returned_fen: int) -> int:
    """SKD-R1 / XB-R1: the net recovery returned at the original compensation ratio
    (paid ÷ loss), rounded down to the fen, never beyond what is still unreturned."""
    due = net_fen * paid_fen // loss_fen
    return max(min(due, paid_fen - returned_fen), 0)
