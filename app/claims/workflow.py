"""What a programme's claim workflow is made of, whichever the programme.

A programme (`app/programs/<code>/workflow.py`) declares its `Workflow`: a transition
table, the stage waiting in each status (who acts, the handler that does the stage's
work), the rules each action must pass, the deficiency codes a review stage may list
when it returns a claim for correction (退回补正), the status labels in Chinese and
English, and the deadlines it stores on a claim. `app/claims/` runs any such workflow
without knowing the programme.

Every review stage may return the claim for correction: `<status> ──return_<stage>──▶
returned ──resubmit_<stage>──▶ <status>` (the bank resubmits; `app/claims/returns.py`).
Every change goes through `app.claims.steps.transition` and leaves a `ClaimTransition`
row (actor, role, time, business date, comment, ledger entries)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from functools import cached_property
from typing import TYPE_CHECKING, Literal

from app.errors import AppError, Violation
from app.kit.statemachine import Transition, TransitionTable

if TYPE_CHECKING:
    from sqlalchemy import ColumnElement
    from sqlalchemy.orm import Session

    from app.auth.principal import Principal
    from app.ledger.service import EntrySpec
    from app.models import Claim, ClaimTransition

# With the bank for correction (退回补正): the bank corrects, uploads, and resubmits.
RETURNED = "returned"
SUBMITTED = "submitted"
# a claim before its filing is recorded (never stored): `submit` leads from it
NEW = "new"
REJECTED = "rejected"

RESUBMISSION_WHO = "the claiming bank corrects and resubmits 合作银行补正后重新提交"

# Labels every workflow shares (a programme may override them).
COMMON_LABELS: Mapping[str, tuple[str, str]] = {
    SUBMITTED: ("已申请，待审查", "filed, waiting for review"),
    REJECTED: ("已驳回", "rejected"),
    "closed": ("无可补偿额度，办结", "closed: nothing left to compensate under the cap"),
    RETURNED: (
        "退回补正，待合作银行补正后重新提交",
        "returned for correction; waiting for the bank to correct and resubmit",
    ),
}


@dataclass(frozen=True)
class StepInput:
    """What a caller brings to a stage: a decision (reviews), a date (payments), the
    comment, and the programme's own extras (findings and opinion of a due-diligence
    review, a finding of ineligibility at grant)."""

    approve: bool | None = None
    comment: str = ""
    paid_on: date | None = None
    findings: tuple[str, ...] = ()
    opinion: str = ""
    ineligible_at_grant: bool = False


@dataclass(frozen=True)
class StepContext:
    """One stage being acted on: the locked claim, the actor and the request's dates."""

    session: Session
    claim: Claim
    actor: Principal
    step: StepInput
    today: date
    now: datetime
    # history rows whose ledger entries are posted last (`app.claims.steps.finish`)
    pending: list[tuple[ClaimTransition, list[EntrySpec]]] = field(default_factory=list)


Handler = Callable[[StepContext], None]
StageKind = Literal["review", "payment"]


@dataclass(frozen=True)
class FundOf:
    """The fund whose manager acts at a stage: a fixed fund (SKD's province fund
    reimburses), or the fund a column of the claim names (SKD's city fund pays). Called
    on a claim it names the fund; `where` is the same as a filter over claims (who is
    waited for: `GET /claims?awaiting=me`)."""

    fixed: str | None = None
    column: str | None = None

    def __call__(self, claim: Claim) -> str | None:
        if self.column is not None:
            value = getattr(claim, self.column)
            return None if value is None else str(value)
        return self.fixed

    def where(self, fund_code: str | None) -> ColumnElement[bool]:
        from sqlalchemy import false, true

        from app.models import Claim

        if self.column is not None:
            return getattr(Claim, self.column) == fund_code
        return true() if fund_code is not None and fund_code == self.fixed else false()


@dataclass(frozen=True)
class Stage:
    name: str
    role: str
    who: str  # shown on the claim as the next step
    kind: StageKind
    handler: Handler
    # the fund whose manager acts (payments): None, any fund manager the claim's scope
    # admits. A `FundOf` also narrows who the claim waits for (`awaiting=me`); a plain
    # callable guards the stage only.
    acting_fund: Callable[[Claim], str | None] | None = None
    # the endpoint a caller uses; default /claims/{id}/steps/{name}
    path: str | None = None
    # what the stage takes besides its decision or date and the comment (`findings`,
    # `opinion`, `ineligible_at_grant`), and which of those it requires
    takes: frozenset[str] = frozenset()
    requires: frozenset[str] = frozenset()
    # the refusals the stage's rules and handler may answer besides the guard's (wrong
    # role, fund, maker-checker, status): documented on the stage's endpoints
    refusals: tuple[type[AppError], ...] = ()

    @property
    def review(self) -> bool:
        """A review stage: it may return the claim for correction."""
        return self.kind == "review"

    @property
    def return_action(self) -> str:
        return f"return_{self.name}"

    @property
    def resubmit_action(self) -> str:
        return f"resubmit_{self.name}"

    def endpoint(self, claim_id: int) -> str:
        return f"POST /api/v1/claims/{claim_id}/{self.path or 'steps/' + self.name}"


@dataclass(frozen=True)
class TransitionRule:
    """A rule an action must pass before it is taken, tagged with its rule ID: it
    returns what it finds wrong (nothing when the claim may move)."""

    rule: str
    check: Callable[[StepContext], list[Violation]]
    status: int = 422  # 409 for a conflict with the claim's current state


@dataclass(frozen=True)
class ClaimDeadline:
    """A deadline stored on a claim while it waits in `status`: `days` working days
    from the claim's attribute `base`."""

    status: str
    base: str
    days: int
    stage: str


@dataclass(frozen=True)
class Workflow:
    transitions: list[Transition]
    stages: Mapping[str, Stage]  # status → the stage waiting in it
    return_rule: str  # the rule a return for correction rests on
    deficiencies: Mapping[str, tuple[str, str]]  # code → (中文, English)
    labels: Mapping[str, tuple[str, str]]  # status → (中文, English)
    rules: Mapping[str, tuple[TransitionRule, ...]] = field(default_factory=dict)
    # statuses in which the bank may still add documents
    documents_open: frozenset[str] = frozenset({SUBMITTED, RETURNED})
    # statuses in which compensation has been paid and recoveries are reported
    compensated: frozenset[str] = frozenset({"paid"})
    deadlines: Mapping[str, ClaimDeadline] = field(default_factory=dict)
    # who resubmits a claim returned for correction: the claiming bank
    resubmission_role: str = "bank"
    # the refusals of the claim operations the programme decides besides its stages,
    # by operation (`file_claim`, `clawback`, `receipt`): documented on their endpoints
    refusals: Mapping[str, tuple[type[AppError], ...]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        transitions = list(self.transitions)  # the caller's list stays as it was
        transitions.append(Transition("submit", frozenset({NEW}), SUBMITTED))
        seen: dict[str, str] = {}
        for status, stage in self.stages.items():
            if stage.name in seen:
                raise ValueError(
                    f"stage {stage.name} waits in {seen[stage.name]} and {status}: a stage "
                    "waits in one status (its return and resubmission lead back to it)"
                )
            seen[stage.name] = status
            if stage.review:
                transitions += [
                    Transition(stage.return_action, frozenset({status}), RETURNED),
                    Transition(stage.resubmit_action, frozenset({RETURNED}), status),
                ]
        actions = [t.action for t in transitions]
        twice = sorted({a for a in actions if actions.count(a) > 1})
        if twice:
            raise ValueError(f"actions defined twice in the workflow: {', '.join(twice)}")
        object.__setattr__(self, "transitions", transitions)

    @cached_property
    def table(self) -> TransitionTable:
        return TransitionTable("claim", self.transitions)

    def stage_named(self, name: str) -> Stage | None:
        return next((s for s in self.stages.values() if s.name == name), None)

    def waiting_for(self, role: str) -> list[tuple[str, Stage]]:
        """(status, stage) of the stages a user of `role` acts on: a claim in that status
        waits for them (subject to the stage's fund and the caller's scope)."""
        return [(status, stage) for status, stage in self.stages.items() if stage.role == role]

    def next_step(self, status: str) -> tuple[str, str, str] | None:
        """(stage, who, path below /claims/{id}/) of what a claim in `status` waits for:
        its stage, or the bank's resubmission while returned; None when decided."""
        stage = self.stages.get(status)
        if stage is not None:
            return stage.name, stage.who, stage.path or f"steps/{stage.name}"
        if status == RETURNED:
            return "resubmission", RESUBMISSION_WHO, "resubmission"
        return None

    def label(self, status: str) -> tuple[str, str]:
        return self.labels.get(status) or COMMON_LABELS.get(status) or (status, status)

    @property
    def statuses(self) -> frozenset[str]:
        found = {SUBMITTED}
        for t in self.transitions:
            found |= t.from_states | {t.to_state}
        return frozenset(found - {NEW})
