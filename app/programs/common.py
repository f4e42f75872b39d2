"""Rules both programmes share, pure, parameterised by each programme's rule IDs."""

from __future__ import annotations

from app.errors import Violation


def claimable(
    *,
    loan_status: str,
    compensable: bool,
    outstanding_fen: int,
    days_past_due: int,
    min_days_past_due: int,
    rule: str,
    not_compensable_rule: str,
    not_compensable_msg: str,
) -> list[Violation]:
    """Every reason a loan cannot be claimed now: not active, not compensable, nothing
    outstanding, or not yet enough days past due."""
    out: list[Violation] = []

    def add(code: str, msg: str, rule_id: str = rule) -> None:
        out.append(Violation(loc=("body", "loan_id"), msg=msg, code=code, rule=rule_id))

    if loan_status != "active":
        add("loan_not_claimable", f"the loan is {loan_status}; only an active loan can be claimed")
    if not compensable:
        add("not_compensable", not_compensable_msg, not_compensable_rule)
    if outstanding_fen <= 0:
        add("nothing_outstanding", "no principal is outstanding")
    elif days_past_due < min_days_past_due:
        add(
            "not_yet_claimable",
            f"principal is {days_past_due} days past due; a claim needs {min_days_past_due}",
        )
    return out


def recovery_return(*, net_fen: int, loss_fen: int, paid_fen: int, returned_fen: int) -> int:
    """SKD-R1 / XB-R1: the net recovery returned at the original compensation ratio
    (paid ÷ loss), rounded down to the fen, never beyond what is still unreturned."""
    due = net_fen * paid_fen // loss_fen
    return max(min(due, paid_fen - returned_fen), 0)
