"""Guarded status changes: every change is checked against a transition table and leaves
a history row (actor, time, comment). Used by agreements, funds and claims."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from app.errors import Conflict


class InvalidTransition(Conflict):
    """The action is not allowed from the object's current status (a claim already
    past that stage, an agreement already terminated, …); `errors[0].msg` names the
    status, the detail the statuses the action is allowed from. Nothing was written."""

    code = "invalid_transition"
    title, title_zh = "Not allowed in the current status", "当前状态下不允许此操作"


@dataclass(frozen=True)
class Transition:
    action: str
    from_states: frozenset[str]
    to_state: str


class TransitionTable:
    def __init__(self, name: str, transitions: list[Transition]) -> None:
        self.name = name
        self.by_action: Mapping[str, Transition] = {t.action: t for t in transitions}

    def target(self, action: str, current: str) -> str:
        """The state `action` leads to from `current`, or a 409 naming what is allowed."""
        t = self.by_action.get(action)
        if t is None:
            raise ValueError(f"unknown {self.name} action {action!r}")
        if current not in t.from_states:
            allowed = ", ".join(sorted(t.from_states))
            raise InvalidTransition(
                f"cannot {action} a {self.name} that is {current} (allowed from: {allowed})",
                [InvalidTransition.violation(f"{self.name} status is {current}", "status")],
            )
        return t.to_state
