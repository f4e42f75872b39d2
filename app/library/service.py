"""Library use cases. Admission re-checks every SKD-E1 criterion against the
enterprise's recorded facts; a refusal lists every failed criterion and writes nothing."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from sqlalchemy.orm import Session

from app.auth.principal import Principal
from app.errors import Conflict, Forbidden, Violation, refusal
from app.library import repository as repo
from app.models import Enterprise, LibraryEvent
from app.programs.base import Program, registered_programs
from app.reference.service import get_enterprise


class OutsideRegion(Forbidden):
    """A city reviewer admits to and removes from the library only the enterprises
    registered in their region (or a region under it)."""

    code = "outside_region"
    title, title_zh = "Outside the reviewer's region", "企业不在审核人员所辖地区"


class NotAMember(Conflict):
    """The enterprise is not in the library (never admitted, or removed), so it cannot
    be removed (SKD-E1)."""

    code, rule = "not_a_member", "SKD-E1"
    title, title_zh = "Not a library member", "企业不在备选企业库中"


def library_program() -> Program:
    """The programme whose library of tech enterprises this is (科技型企业库, SKD-E1)."""
    return next(p for p in registered_programs() if p.has_library)


@dataclass
class LibraryStatus:
    enterprise: Enterprise
    history: list[LibraryEvent]

    @property
    def member(self) -> bool:
        return bool(self.history) and self.history[-1].action != "removed"

    @property
    def member_since(self) -> date | None:
        if not self.member:
            return None
        # a member's last "admitted" event started the current membership
        return next(e.effective_on for e in reversed(self.history) if e.action == "admitted")


def status(session: Session, enterprise: Enterprise) -> LibraryStatus:
    return LibraryStatus(
        enterprise, list(repo.history(session, enterprise.id, library_program().code))
    )


def is_member(session: Session, enterprise: Enterprise) -> bool:
    """SKD-E1: only library members may get SKD loans (member: the last event is not a
    removal)."""
    last = repo.latest_action(session, enterprise.id, library_program().code)
    return last is not None and last != "removed"


def _check_region(session: Session, enterprise: Enterprise, actor: Principal) -> None:
    if actor.role != "city_reviewer":
        return
    if actor.region_code not in repo.region_ancestors(session, enterprise.region_code):
        raise OutsideRegion(
            f"enterprise {enterprise.credit_code} is registered in {enterprise.region_code}, "
            f"outside the reviewer's region {actor.region_code}"
        )


def admit(
    session: Session, *, credit_code: str, comment: str, actor: Principal, today: date
) -> LibraryStatus:
    """Admit (or, for a member, confirm with current facts) after checking SKD-E1."""
    enterprise = get_enterprise(session, credit_code)
    _check_region(session, enterprise, actor)
    results = library_program().library_criteria(enterprise)
    failed = [c for c in results if not c.passed]
    if failed:
        # each failed criterion is a refusal with the criterion's code (its class is the
        # programme's, e.g. app.programs.sukedai.library); the first one's is the code
        raise refusal(
            [
                Violation(msg=c.detail, loc=("enterprise", c.code), code=c.code, rule="SKD-E1")
                for c in failed
            ],
            f"{enterprise.name} does not meet {len(failed)} library criterion(s) (SKD-E1)",
        )
    current = status(session, enterprise)
    session.add(
        LibraryEvent(
            enterprise_id=enterprise.id,
            program=library_program().code,
            action="updated" if current.member else "admitted",
            effective_on=today,
            comment=comment,
            actor_id=actor.user_id,
            criteria=[{"code": c.code, "passed": c.passed, "detail": c.detail} for c in results],
        )
    )
    session.flush()
    return status(session, enterprise)


def remove(
    session: Session, *, credit_code: str, reason: str, actor: Principal, today: date
) -> LibraryStatus:
    enterprise = get_enterprise(session, credit_code)
    _check_region(session, enterprise, actor)
    if not status(session, enterprise).member:
        raise NotAMember(f"{enterprise.name} is not in the library")
    session.add(
        LibraryEvent(
            enterprise_id=enterprise.id,
            program=library_program().code,
            action="removed",
            effective_on=today,
            comment=reason,
            actor_id=actor.user_id,
            criteria=[],
        )
    )
    session.flush()
    return status(session, enterprise)
