"""A loan's status changes: one guarded function, checked against the transition table,
writing a history row (`loan_transitions`, append-only) with actor, date and reason."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy.orm import Session

from app.kit.statemachine import Transition, TransitionTable
from app.models import Loan, LoanTransition

LOAN_TRANSITIONS = TransitionTable(
    "loan",
    [
        Transition("repay_in_full", frozenset({"active"}), "repaid"),
        Transition("renew", frozenset({"active"}), "renewed"),  # SKD-F7
        Transition("claim", frozenset({"active"}), "claimed"),  # SKD-C2
        Transition("claim_rejected", frozenset({"claimed"}), "active"),
        Transition("compensate", frozenset({"claimed"}), "compensated"),
    ],
)


def set_status(
    session: Session,
    loan: Loan,
    action: str,
    *,
    actor_id: int | None,
    on: date,
    now: datetime,
    reason: str = "",
) -> LoanTransition:
    """Apply `action` to the (flushed) loan: 409 `invalid_transition` when its status
    does not allow it, else the new status and its history row (added, not flushed).
    `on` is the business date the change takes effect, `now` the time it is recorded."""
    to_status = LOAN_TRANSITIONS.target(action, loan.status)
    row = LoanTransition(
        loan_id=loan.id,
        action=action,
        from_status=loan.status,
        to_status=to_status,
        actor_id=actor_id,
        reason=reason,
        business_date=on,
        at=now,
    )
    loan.status = to_status
    session.add(row)
    return row
