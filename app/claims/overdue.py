"""Steps past their deadline (XB-C2, XB-R1): a claim waiting in a status whose stored
deadline has passed, and collections due to the fund not received by their due date.
Which statuses have deadlines, and whether collections are due later, is each
programme's (its workflow's `deadlines`, its `recovery_due_working_days`)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from sqlalchemy.orm import Session

from app.claims import repository as repo
from app.models import Claim
from app.programs.base import get_program


@dataclass(frozen=True)
class OverdueStep:
    claim: Claim
    stage: str
    deadline: date
    days_overdue: int
    provisional: bool = False  # the deadline rests on a provisional calendar day (M-3)


def waiting_statuses(programs: list[str]) -> set[str]:
    """The statuses a claim of these programmes may be overdue in."""
    found: set[str] = set()
    for code in programs:
        program = get_program(code)
        found |= {d.status for d in program.workflow.deadlines.values()}
        if program.recovery_due_working_days is not None:
            found |= program.workflow.compensated
    return found


def overdue_steps(claims: list[Claim], as_of: date, session: Session) -> list[OverdueStep]:
    """Steps whose stored deadline passed without the step being done, and collections
    not received by their due date (received money settles the earliest dues first)."""
    out = []
    paid = []
    for c in claims:
        program = get_program(c.program)
        for name, d in program.workflow.deadlines.items():
            raw = c.deadlines.get(name)
            if d.status != c.status or not raw or date.fromisoformat(raw) >= as_of:
                continue
            due = date.fromisoformat(raw)
            provisional = name in (c.provisional_deadlines or [])
            out.append(OverdueStep(c, d.stage, due, (as_of - due).days, provisional))
        if (
            program.recovery_due_working_days is not None
            and c.status in program.workflow.compensated
        ):
            paid.append(c)
    if paid:
        recs = repo.recoveries(session, [c.id for c in paid])
        got = repo.receipts(session, [c.id for c in paid])
        for c in paid:
            received = sum(r.amount_fen for r in got[c.id])
            for r in recs[c.id]:
                if not r.returned_fen:
                    continue
                if received >= r.returned_fen:
                    received -= r.returned_fen
                    continue
                if r.due_on and r.due_on < as_of:
                    out.append(
                        OverdueStep(
                            c,
                            "recovery_distribution",
                            r.due_on,
                            (as_of - r.due_on).days,
                            r.due_on_provisional,
                        )
                    )
                break
    return sorted(out, key=lambda x: (x.deadline, x.claim.id))
