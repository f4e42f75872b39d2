"""Rules both programmes share, pure. The claim checks are untagged: each programme tags
them with its own rule IDs (`Rule(id, check)` in its `claims.py`: SKD-C2 / SKD-S2 for
SKD, XB-C1 / XB-N7 for XB); so are the reasons of an overdue loan on the service's own
books at filing (SKD-F4, XB-N2)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import date
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
            f"the loan is {f.days_past_due} days past due; a claim needs {p.min_days_past_due}",
        )
    return None


def recovery_return(*, net_fen: int, loss_fen: int, paid_fen: int, returned_fen: int) -> int:
    """SKD-R1 / XB-R1: the net recovery returned at the original compensation ratio
    (paid ÷ loss), rounded down to the fen, never beyond what is still unreturned."""
    due = net_fen * paid_fen // loss_fen
    return max(min(due, paid_fen - returned_fen), 0)


# --- an overdue loan on the service's own books, at filing (SKD-F4, XB-N2) ---------------
@dataclass(frozen=True)
class OverdueFact:
    """A loan recorded here, in any programme, not settled and in arrears (principal or
    interest, the worse of the service's books and its bank's report, M-6) on the
    filing's business date: the enterprise's own, or one of another enterprise with the
    same actual controller (`app.loans.lookups.FilingLookups.overdue_in_books`)."""

    credit_code: str  # the enterprise whose loan it is
    own: bool  # the enterprise filed for; else its actual controller's other enterprise
    program: str
    contract_no: str | None  # None: a loan filed by another bank (its number not shown)
    days_past_due: int
    overdue_since: date


def _days(n: int) -> str:
    return "1 day" if n == 1 else f"{n} days"


def overdue_loan_reason(f: OverdueFact) -> Violation:
    """One refusal per overdue loan, naming whose loan it is (never another bank's
    contract number)."""
    whose = (
        "the enterprise's"
        if f.own
        else f"its actual controller's other enterprise {f.credit_code}'s"
    )
    which = (
        f"{f.program} loan {f.contract_no}"
        if f.contract_no
        else f"{f.program} loan, a loan filed by another bank,"
    )
    return Violation(
        msg=f"{whose} {which} is {_days(f.days_past_due)} past due (overdue since "
        f"{f.overdue_since.isoformat()}) and unpaid",
        loc=("body", "enterprise_credit_code"),
        code="overdue_loan_in_books",
    )


def overdue_loan_reasons(facts: Iterable[OverdueFact]) -> list[Violation]:
    return [overdue_loan_reason(f) for f in facts]
