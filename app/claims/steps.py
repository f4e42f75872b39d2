"""What every claim step does, whichever the programme: find the claim in the actor's
scope (locked), guard the stage (role, fund, maker-checker SKD-C3), change status
through the programme's transition table with a history row, check dates, and pay the
approved amount to the bank from a fund's cash."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import date, datetime

from sqlalchemy.orm import Session

from app.auth.principal import Principal
from app.claims import repository as repo
from app.claims.workflow import NEW, RETURNED, Stage, StepContext, Workflow
from app.errors import (
    Conflict,
    Forbidden,
    NotFound,
    RoleNotAllowed,
    Unprocessable,
    Violation,
    refusal,
)
from app.kit.calendar import provisional_note
from app.kit.money import format_fen
from app.kit.statemachine import InvalidTransition
from app.ledger import service as ledger
from app.ledger.postings import LegSpec, credit, debit
from app.ledger.service import EntrySpec
from app.loans import repository as loans_repo
from app.loans import status as loan_status
from app.models import Claim, ClaimTransition, Loan
from app.programs.base import get_program


# --- refusals of a claim step, whichever the programme ---------------------------------
class StageNotInProgramme(Conflict):
    """The stage named is not one of the claim's programme (e.g. an SKD city review on an
    XB claim, an XB committee decision on an SKD claim). The detail lists the stages the
    claim's programme has; its `next_step` names the one it waits at."""

    code = "stage_not_in_programme"
    title, title_zh = "Stage not in the claim's programme", "该申请所属项目没有此办理环节"


class ClaimReturned(Conflict):
    """The claim was returned for correction (退回补正) and is with the bank: no stage
    is acted on, nor is it returned again, until the bank resubmits it."""

    code = "claim_returned"
    title, title_zh = "Claim returned for correction", "申请已退回补正，待银行重新提交"


class WrongFund(Forbidden):
    """The stage is done by the manager of another fund (SKD: the loan's city fund pays,
    the province fund reimburses)."""

    code = "wrong_fund"
    title, title_zh = "Another fund's manager acts here", "应由其他资金的管理人办理"


class MakerChecker(Conflict):
    """The caller already acted on another stage of this claim; another person must do
    this one (审贷分离, maker-checker). Returning a claim at a stage is acting on that
    stage: the same reviewer may review it again after the resubmission."""

    code, rule = "maker_checker", "SKD-C3"
    title, title_zh = "Same person on two stages", "同一人不得办理同一申请的两个环节"


class InvalidStepDate(Unprocessable):
    """A date is not acceptable where it stands: a claim step's date in the future or
    before the step it follows (a payment before the approval, a reimbursement before the
    payment, a recovery before the compensation was paid), or a date in a row of a
    bank's monthly status file that is not a date or lies after the month's end."""

    code = "invalid_date"
    title, title_zh = "Date not acceptable", "日期不符合要求"


class InsufficientFunds(Conflict):
    """The paying fund's cash would go below zero; nothing was paid."""

    code = "insufficient_funds"
    title, title_zh = "Insufficient cash in the fund", "资金账户余额不足"


class NotCompensated(Conflict):
    """The action applies after the compensation was paid (recoveries, XB-R2 refunds,
    receipts), and this claim is not (yet) in such a status."""

    code = "not_compensated"
    title, title_zh = "Compensation not paid", "尚未拨付代偿资金"


class DocumentsMissing(Unprocessable):
    """The claim lacks documents the stage needs (SKD-C1: the application files before
    the city review's approval; XB-C1: the application, collection plan and
    due-diligence statement before the manager's review). The bank uploads them with
    `POST /claims/{id}/documents`."""

    code = "documents_missing"
    title, title_zh = "Required documents missing", "申请材料不全"


# what acting on any stage may answer: the claim not in scope, another programme's stage,
# a claim with the bank, the stage's role and fund, maker-checker, the claim's status
GUARD_REFUSALS = (
    NotFound,
    StageNotInProgramme,
    ClaimReturned,
    RoleNotAllowed,
    WrongFund,
    MakerChecker,
    InvalidTransition,
)


def claim_for_step(session: Session, claim_id: int, actor: Principal) -> Claim:
    """The claim, locked, if the actor may see it (the same scope as the lists)."""
    claim = session.scalars(
        repo.scoped_claims(session, actor)
        .where(Claim.id == claim_id)
        .with_for_update(key_share=True)
    ).first()
    if claim is None:
        raise NotFound(f"claim {claim_id} not found")
    return claim


def workflow_of(claim: Claim) -> Workflow:
    return get_program(claim.program).workflow


def stage_of(claim: Claim, name: str) -> Stage:
    """The programme's stage `name`, or a 409 naming the stages the claim's programme has
    (a stage endpoint called on another programme's claim)."""
    wf = workflow_of(claim)
    stage = wf.stage_named(name)
    if stage is None:
        names = ", ".join(dict.fromkeys(s.name for s in wf.stages.values()))
        raise StageNotInProgramme(
            f"claim {claim.id} is a {claim.program} claim; its stages are {names}, not {name}",
            [
                StageNotInProgramme.violation(
                    f"no stage {name} in the {claim.program} workflow", "path", "stage"
                )
            ],
        )
    return stage


def guard(session: Session, claim: Claim, actor: Principal, stage: Stage) -> None:
    """Role and fund of the stage, then maker-checker (SKD-C3): nobody acts on two
    stages of one claim. (Region scope: `claim_for_step` hides other regions' claims.)
    Returning the claim for correction at a stage is acting on that stage: the reviewer
    who returned it may review it again after the bank's resubmission, and may not act
    on any other stage. A claim with the bank for correction waits for its
    resubmission, not for a reviewer."""
    if claim.status == RETURNED:
        raise ClaimReturned(
            f"claim {claim.id} is returned for correction (退回补正) and with the bank; the "
            f"{stage.name} waits for its resubmission",
            [ClaimReturned.violation("claim status is returned", "status")],
        )
    if actor.role != stage.role:
        raise RoleNotAllowed(f"{stage.name} is done by {stage.who}; your role is {actor.role}")
    fund = stage.acting_fund(claim) if stage.acting_fund else None
    if fund is not None and actor.fund_code != fund:
        raise WrongFund(f"the {stage.name} is made by the manager of {fund}")
    earlier = {
        t.actor_id
        for t in repo.history(session, [claim.id])[claim.id]
        if t.action != stage.return_action  # the same stage, acted on again
    }
    if actor.user_id in earlier:
        raise MakerChecker(
            f"user {actor.username} already acted on claim {claim.id}; another person must "
            f"do the {stage.name} (SKD-C3 maker-checker)",
            [MakerChecker.violation("same user on two stages")],
        )


@dataclass(frozen=True)
class Outcome:
    """What an action's work produced: the action actually taken (an approval of
    nothing closes the claim), the history comment and the ledger entries to post (last,
    by `finish`)."""

    action: str
    comment: str = ""
    postings: list[EntrySpec] = field(default_factory=list)


def transition(
    ctx: StepContext,
    action: str,
    *,
    work: Callable[[], Outcome] | None = None,
    on: date | None = None,
) -> ClaimTransition:
    """The only status change of a claim: the programme's table admits the action from
    the claim's status, the action's rules pass (every violation listed at once), the
    work runs (ledger entries, amounts), then the status changes with a history row."""
    claim = ctx.claim
    wf = workflow_of(claim)
    wf.table.target(action, _current(claim, action))
    problems: list[Violation] = []
    conflict = False
    for rule in wf.rules.get(action, ()):
        found = [v if v.rule else replace(v, rule=rule.rule) for v in rule.check(ctx)]
        problems += found
        conflict = conflict or (bool(found) and rule.status == 409)
    if problems:
        # the first failure's class and code, every failure in errors (docs/api.md, Errors)
        raise refusal(
            problems,
            f"{action} breaks {len(problems)} rule(s): "
            + ", ".join(f"{v.rule or ''} {v.code or ''}".strip() for v in problems),
            default=Conflict if conflict else Unprocessable,
        )
    outcome = work() if work is not None else Outcome(action, ctx.step.comment)
    row = record(
        ctx.session,
        claim,
        outcome.action,
        actor=ctx.actor,
        on=on or ctx.today,
        now=ctx.now,
        comment=outcome.comment,
        defer=bool(outcome.postings),
    )
    if outcome.postings:
        ctx.pending.append((row, outcome.postings))
    return row


def finish(ctx: StepContext) -> list[ClaimTransition]:
    """The step's last writes: its ledger entries, then the history rows naming them
    (returned, in the order written). Every other change of the request is flushed
    first — and an endpoint reads the claim's view before this — so the ledger's chain
    head, the hottest lock, taken by posting, is held from here to the commit only, and
    always after the claim, fund, bank and loan rows (one lock order for every
    request)."""
    if not ctx.pending:
        return []
    ctx.session.flush()
    rows = []
    for row, postings in ctx.pending:
        row.ledger_entry_ids = ledger.post_many(
            ctx.session, postings, now=ctx.now, actor_id=ctx.actor.user_id
        )
        ctx.session.add(row)
        rows.append(row)
    ctx.pending.clear()
    ctx.session.flush()
    return rows


def _current(claim: Claim, action: str) -> str:
    """The status the action leaves: a claim being filed is `new` to the table."""
    return NEW if action == "submit" else claim.status


def record(
    session: Session,
    claim: Claim,
    action: str,
    *,
    actor: Principal,
    on: date,
    now: datetime,
    comment: str = "",
    defer: bool = False,
) -> ClaimTransition:
    """Status change and history row, checked against the programme's table (`submit`
    opens the history of a new claim). `defer`: the row is written by `finish`, after
    the ledger entries it names."""
    before = None if action == "submit" else claim.status
    claim.status = workflow_of(claim).table.target(action, _current(claim, action))
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
        ledger_entry_ids=[],
    )
    if not defer:
        session.add(row)
        session.flush()
    return row


def dated(on: date, *, not_before: date | None, today: date, field: str) -> None:
    problems = []
    if on > today:
        problems.append(InvalidStepDate.violation("in the future", "body", field))
    if not_before is not None and on < not_before:
        problems.append(
            InvalidStepDate.violation(
                f"before {not_before.isoformat()}, the last step", "body", field
            )
        )
    if problems:
        raise InvalidStepDate(f"{field} is not acceptable", problems)


def reject(ctx: StepContext, action: str) -> Loan:
    """Rejection with a reason; the loan returns to servicing (the loan, locked, for
    what the programme adds, e.g. SKD-S2)."""
    claim = ctx.claim
    loan = loans_repo.loan_for_update(ctx.session, claim.loan_id)
    assert loan is not None
    claim.rejection_reason = ctx.step.comment or ctx.step.opinion
    transition(ctx, action)
    set_loan_status(ctx, loan, "claim_rejected", reason=f"claim {claim.id} rejected")
    ctx.session.flush()
    return loan


def set_loan_status(ctx: StepContext, loan: Loan, action: str, *, reason: str) -> None:
    loan_status.set_status(
        ctx.session,
        loan,
        action,
        actor_id=ctx.actor.user_id,
        on=ctx.today,
        now=ctx.now,
        reason=reason,
    )


def check_cash(session: Session, fund: str, need_fen: int) -> None:
    """The paying fund's cash may not go below zero (its row locked)."""
    repo.lock_fund(session, fund)
    try:
        cash = ledger.account_balance(session, f"{fund}:cash", as_of=None)
    except NotFound:  # the fund's cash account was never opened
        cash = 0
    if cash < need_fen:
        raise InsufficientFunds(
            f"{fund} holds {format_fen(cash)} in cash; {format_fen(need_fen)} is needed",
            [InsufficientFunds.violation("insufficient cash")],
        )


def pay_bank(ctx: StepContext, *, payer: str, action: str, event_type: str) -> None:
    """The approved amount from `payer`'s cash to the bank (one ledger entry: Dr payable,
    Cr cash). A payment after the claim's stored `payment` deadline is noted in the
    history."""
    claim = ctx.claim
    paid_on = ctx.step.paid_on or ctx.today

    def work() -> Outcome:
        dated(paid_on, not_before=claim.approved_on, today=ctx.today, field="paid_on")
        amount = int(claim.approved_fen or 0)
        check_cash(ctx.session, payer, amount)
        entry = EntrySpec(
            event_type=event_type,
            event_id=str(claim.id),
            idempotency_key=f"claim:{claim.id}:{event_type.removeprefix('claim.')}",
            business_date=paid_on,
            legs=[
                debit(payer, "payable_bank", amount, claim.bank_code),
                credit(payer, "cash", amount),
            ],
            description=f"claim {claim.id}: {payer} pays {format_fen(amount)} to {claim.bank_code}",
        )
        claim.paid_on = paid_on
        comment = (ctx.step.comment + after_deadline(claim, "payment", paid_on)).strip()
        return Outcome(action, comment, [entry])

    transition(ctx, action, work=work, on=paid_on)


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
    for fund, part in get_program(loan.program).exposure_parts(loan, principal_fen):
        if part:
            legs += [
                debit(fund, "exposure_contra", part, loan.bank_code, loan_id=loan.id),
                credit(fund, "exposure_memo", part, loan.bank_code, loan_id=loan.id),
            ]
    return legs


def approval_posting(
    claim: Claim,
    legs: list[LegSpec],
    *,
    approved_fen: int,
    capped_by: str | None,
    label: str,
    today: date,
) -> list[EntrySpec]:
    """The approval's one ledger entry (the reserve and the end of the exposure), or
    none when there is nothing to post; posted by `finish`."""
    if not legs:
        return []
    return [
        EntrySpec(
            event_type="claim.approved",
            event_id=str(claim.id),
            idempotency_key=f"claim:{claim.id}:approved",
            business_date=today,
            legs=legs,
            description=f"{label} {claim.id} approved: {format_fen(approved_fen)} of "
            f"{format_fen(claim.requested_fen)}"
            + (f", capped by {capped_by}" if capped_by else ""),
        )
    ]
