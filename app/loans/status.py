"""A loan's status changes: one guarded function, checked against the transition table,
writing a history row (`loan_transitions`, append-only) with actor, date and reason."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any

from pydantic import AfterValidator, Field
from sqlalchemy.orm import Session

from app.kit.statemachine import Transition, TransitionTable
from app.models import Loan, LoanTransition
from app.models.loan import LOAN_STATUSES

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


# 中文 names of the statuses, for the filter's documentation
STATUS_ZH = {
    "active": "正常（未结清）",
    "repaid": "已结清",
    "renewed": "已续贷",
    "claimed": "代偿申请中",
    "compensated": "已代偿",
    "written_off": "已核销",
}


def loan_statuses() -> tuple[str, ...]:
    """Every status a loan of any programme can have: those its transition table
    (`LOAN_TRANSITIONS`, which the programmes' filing and claim workflows drive) reaches
    or leaves, and those the loans table allows (`written_off`)."""
    found = {"active"}  # a filed loan's first status
    for t in LOAN_TRANSITIONS.by_action.values():
        found |= t.from_states | {t.to_state}
    order = {s: n for n, s in enumerate(LOAN_STATUSES)}
    return tuple(sorted(found | set(LOAN_STATUSES), key=lambda s: (order.get(s, len(order)), s)))


def _known_status(status: str) -> str:
    known = loan_statuses()
    if status not in known:
        raise ValueError(f"unknown loan status {status!r}; known: {', '.join(known)}")
    return status


def _status_schema(schema: dict[str, Any]) -> None:
    schema["enum"] = list(loan_statuses())
    schema["description"] = "loan status 贷款状态: " + "; ".join(
        f"{s} {STATUS_ZH.get(s, s)}" for s in loan_statuses()
    )


# a loan status as a query value: any status of `loan_statuses()`, else 422 naming them
LoanStatus = Annotated[str, AfterValidator(_known_status), Field(json_schema_extra=_status_schema)]
