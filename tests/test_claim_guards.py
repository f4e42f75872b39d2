"""A claim's approved amount (what SKD-Q1 and XB-Q1 add up against the caps) cannot be
changed behind the service's back once approved, and what was returned to the funds
never shrinks: the database refuses it."""

from __future__ import annotations

from sqlalchemy import Connection
from sqlalchemy.orm import Session

from tests.fixtures.factories import skd_claim
from tests.fixtures.ledger import raw_refused


def test_skd_q1_approved_amount_is_fixed_once_approved(
    session: Session, connection: Connection
) -> None:
    claim = skd_claim(session, status="approved")
    assert claim.approved_fen is not None
    for sql in (
        f"UPDATE claims SET approved_fen = approved_fen + 1 WHERE id = {claim.id}",
        f"UPDATE claims SET approved_fen = NULL WHERE id = {claim.id}",
        f"UPDATE claims SET returned_fen = returned_fen - 1 WHERE id = {claim.id}",
    ):
        message = raw_refused(connection, sql)
        assert "approved_fen" in message or "returned_fen" in message, message


def test_a_claim_not_yet_approved_still_moves(session: Session) -> None:
    claim = skd_claim(session, status="submitted")
    assert claim.approved_fen is None
    advanced = skd_claim(session, status="reimbursed")  # approval, payment, reimbursement
    assert advanced.approved_fen is not None and advanced.status == "reimbursed"
