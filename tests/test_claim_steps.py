"""The stage machinery every programme runs (`app/claims/steps.py`, `workflow.py`,
`service.act`): what a stage takes, the errors a refused transition reports, and the
workflow definitions it refuses."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from app.claims.workflow import Stage, Workflow
from app.kit.statemachine import Transition
from app.models import Claim, Loan
from tests.fixtures.factories import skd_claim, xb_claim


def _step(client: TestClient, auth, user: str, claim: Claim, stage: str, body: dict) -> dict:  # type: ignore[no-untyped-def]
    r = client.post(f"/api/v1/claims/{claim.id}/steps/{stage}", json=body, headers=auth(user))
    return {"status": r.status_code, **r.json()}


def test_xb_c2_a_stage_refuses_fields_it_does_not_take(
    client: TestClient,
    auth,
    session: Session,  # type: ignore[no-untyped-def]
) -> None:
    """XB-C2: the committee's decision takes no finding of ineligibility at grant (an SKD-S2
    reading); the loan stays compensable and the claim where it was."""
    claim = xb_claim(session, status="manager_reviewed")
    session.commit()
    out = _step(
        client,
        auth,
        "committee",
        claim,
        "committee_decision",
        {"decision": "reject", "comment": "x", "ineligible_at_grant": True},
    )
    assert out["status"] == 422 and out["code"] == "validation_error"
    assert [e["loc"] for e in out["errors"]] == [["body", "ineligible_at_grant"]]
    session.expire_all()
    loan = session.get(Loan, claim.loan_id)
    assert loan is not None and loan.compensable and claim.status == "manager_reviewed"


def test_xb_c2_due_diligence_needs_its_opinion_and_a_decision(
    client: TestClient,
    auth,
    session: Session,  # type: ignore[no-untyped-def]
) -> None:
    """XB-C2: the manager's review needs a decision and the written opinion; a payment
    stage takes no decision."""
    claim = xb_claim(session)
    session.commit()
    out = _step(client, auth, "fund_xb", claim, "manager_review", {"comment": "x"})
    assert out["status"] == 422
    assert {tuple(e["loc"]) for e in out["errors"]} == {("body", "decision"), ("body", "opinion")}
    paid = _step(client, auth, "fund_xb_pay", claim, "payment", {"decision": "approve"})
    assert paid["status"] == 422
    assert {tuple(e["loc"]) for e in paid["errors"]} == {("body", "decision"), ("body", "paid_on")}


def test_skd_c1_a_rejection_needs_its_reason_in_comment(
    client: TestClient,
    auth,
    session: Session,  # type: ignore[no-untyped-def]
) -> None:
    """SKD-C1: a review's rejection needs a reason; an opinion is not one (the city review
    takes none)."""
    claim = skd_claim(session)
    session.commit()
    out = _step(
        client, auth, "city_suzhou", claim, "city_review", {"decision": "reject", "opinion": "x"}
    )
    assert out["status"] == 422
    assert {tuple(e["loc"]) for e in out["errors"]} == {("body", "comment"), ("body", "opinion")}


def test_xb_n_an_unknown_finding_is_named_with_its_code_and_rule(
    client: TestClient,
    auth,
    session: Session,  # type: ignore[no-untyped-def]
) -> None:
    """XB-N1…N9: a finding outside the list is refused with a code and the rule of the
    transition that found it (never a code of `None`)."""
    claim = xb_claim(session)
    session.commit()
    out = _step(
        client,
        auth,
        "fund_xb",
        claim,
        "manager_review",
        {"decision": "reject", "opinion": "x", "findings": ["XB-N99"]},
    )
    assert out["status"] == 422 and out["code"] == "unknown_finding"
    assert out["errors"][0]["rule"] == "XB-N"


def test_xb_c1_several_failed_rules_give_the_first_rules_code(
    client: TestClient,
    auth,
    session: Session,  # type: ignore[no-untyped-def]
) -> None:
    """XB-C1, XB-N: every failed rule listed; the top-level code is the first one's
    whatever the count (no summary code such as `review_refused`)."""
    claim = xb_claim(session)
    session.commit()
    out = _step(
        client,
        auth,
        "fund_xb",
        claim,
        "manager_review",
        {"decision": "approve", "opinion": "x", "findings": ["XB-N8", "XB-N99"]},
    )
    assert out["status"] == 422 and out["code"] == "unknown_finding"
    assert out["type"] == "/problems/unknown_finding"
    assert [e.get("code") for e in out["errors"]] == [
        "unknown_finding",
        "findings_bar_compensation",
    ]


def _noop(_ctx: object) -> None:
    return None


def test_a_workflow_refuses_a_stage_waiting_in_two_statuses() -> None:
    """A stage waits in one status: its return and resubmission lead back to it."""
    review = Stage("review", "committee", "the committee", "review", _noop)
    with pytest.raises(ValueError, match="waits in one status"):
        Workflow(
            transitions=[Transition("approve", frozenset({"submitted", "again"}), "approved")],
            stages={"submitted": review, "again": review},
            return_rule="T-1",
            deficiencies={},
            labels={},
        )


def test_a_workflow_refuses_an_action_defined_twice() -> None:
    with pytest.raises(ValueError, match="defined twice in the workflow: approve"):
        Workflow(
            transitions=[
                Transition("approve", frozenset({"submitted"}), "approved"),
                Transition("approve", frozenset({"submitted"}), "paid"),
            ],
            stages={},
            return_rule="T-1",
            deficiencies={},
            labels={},
        )


def test_a_workflow_leaves_the_callers_transitions_alone() -> None:
    given = [Transition("approve", frozenset({"submitted"}), "approved")]
    review = Stage("review", "committee", "the committee", "review", _noop)
    wf = Workflow(
        transitions=given,
        stages={"submitted": review},
        return_rule="T-1",
        deficiencies={},
        labels={},
    )
    assert len(given) == 1
    assert {t.action for t in wf.transitions} == {
        "approve",
        "submit",
        "return_review",
        "resubmit_review",
    }
