"""Return for correction (退回补正, SKD-C1, XB-C2).

The reviewer of the stage a claim waits at (SKD: the city or the province review; XB:
the manager's review or the committee) returns it to the bank with every deficiency
listed at once, each a coded item of the programme's list. The claim is then `returned`:
the bank corrects it (uploads documents) and resubmits, and the claim is back at the
stage that returned it, in the status it had. The stage's stored deadline (XB-C2: the
manager's 7-working-day opinion) pauses meanwhile and the remaining working days
continue from the resubmission date. The loan stays claimed; nothing is posted.

Maker-checker (SKD-C3) reads a return as acting on its stage: the reviewer who returned a
claim may review it again after the resubmission, and may not act on another stage."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import date, datetime

from sqlalchemy.orm import Session

from app.auth.principal import Principal
from app.claims import deadlines, steps
from app.claims import repository as repo
from app.claims.steps import ClaimReturned
from app.claims.workflow import RETURNED, Stage, StepContext, StepInput
from app.errors import Conflict, RoleNotAllowed, Unprocessable, Violation, refusal
from app.kit.calendar import provisional_note
from app.models import Claim, ClaimReturn
from app.programs.base import Program, get_program

NEEDS_DETAIL = frozenset({"other"})  # a deficiency that says nothing without its detail


class NotAtReviewStage(Conflict):
    """A claim is returned for correction while it waits at a review stage (SKD: the city
    or province review; XB: the manager's review or the committee); this one waits for a
    payment, or is decided."""

    code = "not_at_review_stage"
    title, title_zh = "Not at a review stage", "申请不在审核环节，不能退回补正"


class NotReturned(Conflict):
    """Only a claim returned for correction (status `returned`) is resubmitted."""

    code = "not_returned"
    title, title_zh = "Claim not returned for correction", "申请未被退回补正"


class UnknownDeficiency(Unprocessable):
    """A deficiency code is not on the programme's list (docs/rules.md: SKD-C1, XB-C2);
    the message lists the known codes."""

    code = "unknown_deficiency"
    title, title_zh = "Unknown deficiency code", "未知的补正事项代码"


class DeficiencyDetailRequired(Unprocessable):
    """The deficiency `other` says what to correct in its `detail`."""

    code = "deficiency_detail_required"
    title, title_zh = "Deficiency needs a detail", "“其他”补正事项须写明补正内容"


class NoDeficiency(Unprocessable):
    """A return for correction lists at least one deficiency."""

    code = "no_deficiency"
    title, title_zh = "No deficiency listed", "未列明补正事项"


RETURN_REFUSALS = (
    ClaimReturned,
    NotAtReviewStage,
    UnknownDeficiency,
    DeficiencyDetailRequired,
    NoDeficiency,
)
RESUBMISSION_REFUSALS = (RoleNotAllowed, NotReturned)


@dataclass(frozen=True)
class Deficiency:
    code: str
    detail: str | None = None


def label(program: Program, code: str) -> tuple[str, str]:
    """The deficiency's Chinese and English labels."""
    return program.workflow.deficiencies.get(code, (code, code))


def return_for_correction(
    session: Session,
    *,
    claim_id: int,
    deficiencies: list[Deficiency],
    comment: str,
    actor: Principal,
    today: date,
    now: datetime,
) -> Claim:
    """The stage's reviewer returns the claim to the bank: status `returned`, a history
    row and a return record with the deficiencies, the stage's deadline paused."""
    claim = steps.claim_for_step(session, claim_id, actor)
    rule = get_program(claim.program).workflow.return_rule
    if claim.status == RETURNED:
        raise ClaimReturned(
            f"claim {claim.id} is already returned for correction and with the bank",
            [ClaimReturned.violation("claim status is returned", "status")],
        )
    stage = get_program(claim.program).workflow.stages.get(claim.status)
    if stage is None or not stage.review:
        raise NotAtReviewStage(
            f"claim {claim.id} is {claim.status}; a claim is returned for correction while "
            "it waits at a review stage",
            [_ruled(NotAtReviewStage.violation(f"claim status is {claim.status}", "status"), rule)],
            rule=rule,
        )
    steps.guard(session, claim, actor, stage)
    _check(claim.program, deficiencies)
    paused = deadlines.pause(session, claim, today)
    note = comment
    if paused:
        was = f"{paused.was}{provisional_note(paused.was, paused.provisional)}"
        note += (
            f" [{paused.name} deadline {was} paused: {paused.working_days_left} working "
            "day(s) left, counted from the resubmission]"
        )
    from_status = claim.status
    ctx = StepContext(session, claim, actor, StepInput(comment=note.strip()), today, now)
    row = steps.transition(ctx, stage.return_action)
    session.add(
        ClaimReturn(
            claim_id=claim.id,
            transition_id=row.id,
            stage=stage.name,
            from_status=from_status,
            deficiencies=[{"code": d.code, "detail": d.detail} for d in deficiencies],
            comment=comment,
            returned_on=today,
            returned_by_id=actor.user_id,
            paused_deadline=paused.name if paused else None,
            deadline_was=paused.was if paused else None,
            working_days_left=paused.working_days_left if paused else None,
        )
    )
    session.flush()
    return claim


def _check(program: str, deficiencies: list[Deficiency]) -> None:
    """Every item at once: a code of the programme's list; `other` with its detail."""
    known = get_program(program).workflow.deficiencies
    rule = get_program(program).workflow.return_rule
    problems = []
    for i, d in enumerate(deficiencies):
        if d.code not in known:
            problems.append(
                UnknownDeficiency.violation(
                    f"unknown deficiency {d.code!r}; known: {', '.join(known)}",
                    *("body", "deficiencies", i, "code"),
                )
            )
        elif d.code in NEEDS_DETAIL and not d.detail:
            problems.append(
                DeficiencyDetailRequired.violation(
                    f"{d.code} needs a detail saying what to correct",
                    *("body", "deficiencies", i, "detail"),
                )
            )
    if not deficiencies:  # the schema asks for one at least; a direct call too
        problems.append(NoDeficiency.violation("list at least one", "body", "deficiencies"))
    if problems:
        # the first item's code, every item in errors (docs/api.md, Errors)
        error = refusal(
            [_ruled(v, rule) for v in problems], f"{len(problems)} deficiency item(s) refused"
        )
        error.rule = rule
        raise error


def _ruled(v: Violation, rule: str) -> Violation:
    """The violation under the programme's return rule (SKD-C1, XB-C2)."""
    return replace(v, rule=rule)


def open_return(session: Session, claim: Claim) -> ClaimReturn | None:
    """The return the claim is waiting on, while it is with the bank."""
    if claim.status != RETURNED:
        return None
    found = repo.returns(session, [claim.id])[claim.id]
    return found[-1] if found else None


def stage_of(claim: Claim, ret: ClaimReturn) -> Stage:
    stage = next(
        (s for s in get_program(claim.program).workflow.stages.values() if s.name == ret.stage),
        None,
    )
    assert stage is not None, ret.stage
    return stage


def resubmit(
    session: Session,
    *,
    claim_id: int,
    comment: str,
    actor: Principal,
    today: date,
    now: datetime,
) -> Claim:
    """The claiming bank resubmits the corrected claim: back to the stage that returned
    it, in the status it had; a paused deadline continues from today."""
    claim = steps.claim_for_step(session, claim_id, actor)
    if not actor.is_bank:
        raise RoleNotAllowed("the claiming bank resubmits its claim")
    ret = open_return(session, claim)
    if ret is None:
        rule = get_program(claim.program).workflow.return_rule
        raise NotReturned(
            f"claim {claim.id} is {claim.status}; only a claim returned for correction is "
            "resubmitted",
            [_ruled(NotReturned.violation(f"claim status is {claim.status}", "status"), rule)],
            rule=rule,
        )
    stage = stage_of(claim, ret)
    note = comment
    if ret.paused_deadline:
        due = deadlines.resume(session, claim, ret.paused_deadline, today)
        note += (
            f" [{ret.paused_deadline} deadline continues: "
            f"{due.on}{provisional_note(due.on, due.provisional)}]"
        )
    ctx = StepContext(session, claim, actor, StepInput(comment=note), today, now)
    steps.transition(ctx, stage.resubmit_action)
    assert claim.status == ret.from_status, (claim.status, ret.from_status)
    return claim
