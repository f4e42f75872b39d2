"""What every claim step does, whichever the programme: find the claim in the actor's
scope (locked), guard the stage (role, fund, maker-checker SKD-C3), change status
through the programme's transition table with a history row, check dates, and pay the
approved amount to the bank from a fund's cash."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy.orm import Session

from app.auth.principal import Principal
from app.claims import repository as repo
from app.claims.workflow import RETURNED, STAGES, WORKFLOWS
from app.errors import Conflict, Forbidden, NotFound, Unprocessable, Violation
from app.kit.calendar import provisional_note
from app.kit.money import format_fen
from app.ledger import service as ledger
from app.ledger.postings import LegSpec, credit, debit
from app.loans import repository as loans_repo
from app.loans import servicing
from app.loans.service import exposure_parts
from app.models import Claim, ClaimTransition, Loan

PROVINCE_FUND = repo.PROVINCE_FUND


def claim_for_step(session: Session, claim_id: int, actor: Principal) -> Claim:
    """The claim, locked, if the actor may see it (the same scope as the lists)."""
    claim = session.scalars(
        repo.scoped_claims(session, actor).where(Claim.id == claim_id).with_for_update()
    ).first()
    if claim is None:
        raise NotFound(f"claim {claim_id} not found")
    return claim


def guard(session: Session, claim: Claim, actor: Principal, stage: str) -> None:
    """Role and fund of the stage, then maker-checker (SKD-C3): nobody acts on two
    stages of one claim. (Region scope: `claim_for_step` hides other regions' claims.)
    Returning the claim for correction at a stage is acting on that stage: the reviewer
    who returned it may review it again after the bank's resubmission, and may not act
    on any other stage. A claim with the bank for correction waits for its
    resubmission, not for a reviewer."""
    expected = next((s for s in STAGES[claim.program].values() if s.name == stage), None)
    assert expected is not None, stage
    if claim.status == RETURNED:
        raise Conflict(
            f"claim {claim.id} is returned for correction (退回补正) and with the bank; the "
            f"{stage} waits for its resubmission",
            [Violation(msg="claim status is returned", loc=("status",), code="claim_returned")],
            code="claim_returned",
        )
    if actor.role != expected.role:
        raise Forbidden(
            f"{stage} is done by {expected.who}; your role is {actor.role}",
            code="role_not_allowed",
        )
    if stage == "city_payment" and actor.fund_code != claim.city_fund_code:
        raise Forbidden(
            f"the city payment is made by the manager of {claim.city_fund_code}",
            code="wrong_fund",
        )
    if stage == "province_reimbursement" and actor.fund_code != PROVINCE_FUND:
        raise Forbidden(
            f"the reimbursement is made by the manager of {PROVINCE_FUND}", code="wrong_fund"
        )
    earlier = {
        t.actor_id
        for t in repo.history(session, [claim.id])[claim.id]
        if t.action != expected.return_action  # the same stage, acted on again
    }
    if actor.user_id in earlier:
        raise Conflict(
            f"user {actor.username} already acted on claim {claim.id}; another person must "
            f"do the {stage} (SKD-C3 maker-checker)",
            [Violation(msg="same user on two stages", code="maker_checker", rule="SKD-C3")],
            code="maker_checker",
        )


def transition(
    session: Session,
    claim: Claim,
    action: str,
    *,
    actor: Principal,
    on: date,
    now: datetime,
    comment: str = "",
    entries: list[int] | None = None,
) -> ClaimTransition:
    """The only status change: checked against the programme's table, with history."""
    before = None if action == "submit" else claim.status
    table = WORKFLOWS[claim.program]
    claim.status = "submitted" if action == "submit" else table.target(action, claim.status)
    row = ClaimTransition(
        claim_id=claim.id,
        action=action,
        from_status=before,
        to_status=claim.status,
        actor_id=actor.user_id,
        actor_role=actor.role,
        comment=comment,
        business_date=on,
        at=now,
        ledger_entry_ids=entries or [],
    )
    session.add(row)
    session.flush()
    return row


def dated(on: date, *, not_before: date | None, today: date, field: str) -> None:
    problems = []
    if on > today:
        problems.append(Violation(loc=("body", field), msg="in the future"))
    if not_before is not None and on < not_before:
        problems.append(
            Violation(loc=("body", field), msg=f"before {not_before.isoformat()}, the last step")
        )
    if problems:
        raise Unprocessable(f"{field} is not acceptable", problems, code="invalid_date")


def reject(
    session: Session,
    claim: Claim,
    action: str,
    comment: str,
    ineligible_at_grant: bool,
    actor: Principal,
    today: date,
    now: datetime,
) -> None:
    """Rejection with a reason; the loan returns to servicing. A finding that the loan was
    not eligible when granted (SKD-S2) marks it non-compensable for good."""
    loan = loans_repo.loan_for_update(session, claim.loan_id)
    assert loan is not None
    claim.rejection_reason = comment
    transition(session, claim, action, actor=actor, on=today, now=now, comment=comment)
    loan.status = servicing.LOAN_TRANSITIONS.target("claim_rejected", loan.status)
    if ineligible_at_grant:
        loan.compensable = False
        loan.flags = [*loan.flags, f"SKD-S2: not eligible at grant ({comment})"]
    session.flush()


def check_cash(session: Session, fund: str, need_fen: int) -> None:
    """The paying fund's cash may not go below zero (its row locked)."""
    repo.lock_fund(session, fund)
    try:
        cash = ledger.account_balance(session, f"{fund}:cash", as_of=None)
    except NotFound:  # the fund's cash account was never opened
        cash = 0
    if cash < need_fen:
        raise Conflict(
            f"{fund} holds {format_fen(cash)} in cash; {format_fen(need_fen)} is needed",
            [Violation(msg="insufficient cash", code="insufficient_funds")],
            code="insufficient_funds",
        )


def pay_bank(
    session: Session,
    *,
    claim_id: int,
    fund: str | None,
    stage: str,
    action: str,
    event_type: str,
    paid_on: date,
    comment: str,
    actor: Principal,
    today: date,
    now: datetime,
) -> Claim:
    """The approved amount from `fund`'s cash to the bank (one ledger entry: Dr payable,
    Cr cash). `fund=None`: the claim's city fund. A payment after the claim's stored
    `payment` deadline is noted in the history."""
    claim = claim_for_step(session, claim_id, actor)
    guard(session, claim, actor, stage)
    WORKFLOWS[claim.program].target(action, claim.status)
    dated(paid_on, not_before=claim.approved_on, today=today, field="paid_on")
    payer = fund or str(claim.city_fund_code)
    amount = int(claim.approved_fen or 0)
    check_cash(session, payer, amount)
    entry = ledger.post(
        session,
        event_type=event_type,
        event_id=str(claim.id),
        idempotency_key=f"claim:{claim.id}:{event_type.removeprefix('claim.')}",
        business_date=paid_on,
        legs=[
            debit(payer, "payable_bank", amount, claim.bank_code),
            credit(payer, "cash", amount),
        ],
        now=now,
        actor_id=actor.user_id,
        description=f"claim {claim.id}: {payer} pays {format_fen(amount)} to {claim.bank_code}",
    )
    claim.paid_on = paid_on
    comment = (comment + after_deadline(claim, "payment", paid_on)).strip()
    transition(
        session,
        claim,
        action,
        actor=actor,
        on=paid_on,
        now=now,
        comment=comment,
        entries=[entry.id],
    )
    return claim


def after_deadline(claim: Claim, name: str, on: date) -> str:
    """A note for the history when a step is done after its stored deadline `name`
    (XB-C2), saying so when the deadline rests on a provisional calendar day (M-3)."""
    deadline = claim.deadlines.get(name)
    if deadline and on > date.fromisoformat(deadline):
        due = date.fromisoformat(deadline)
        note = provisional_note(due, name in (claim.provisional_deadlines or []))
        return f" [after the deadline {deadline}{note}]"
    return ""


def exposure_release_legs(loan: Loan, principal_fen: int) -> list[LegSpec]:
    """The funds' guarantee exposure on the claimed principal ends with the decision."""
    legs = []
    for fund, part in exposure_parts(loan, principal_fen):
        if part:
            legs += [
                debit(fund, "exposure_contra", part, loan.bank_code),
                credit(fund, "exposure_memo", part, loan.bank_code),
            ]
    return legs


def post_approval(
    session: Session,
    claim: Claim,
    legs: list[LegSpec],
    *,
    approved_fen: int,
    capped_by: str | None,
    label: str,
    actor: Principal,
    today: date,
    now: datetime,
) -> list[int]:
    """The approval's one ledger entry (the reserve and the end of the exposure), or
    none when there is nothing to post; the entry ids for the claim's history."""
    if not legs:
        return []
    entry = ledger.post(
        session,
        event_type="claim.approved",
        event_id=str(claim.id),
        idempotency_key=f"claim:{claim.id}:approved",
        business_date=today,
        legs=legs,
        now=now,
        actor_id=actor.user_id,
        description=f"{label} {claim.id} approved: {format_fen(approved_fen)} of "
        f"{format_fen(claim.requested_fen)}" + (f", capped by {capped_by}" if capped_by else ""),
    )
    return [entry.id]
