"""Fund capital paid in by contributors (XB-F0): each contribution is a ledger entry
Dr cash / Cr contributed capital of that contributor."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.errors import NotFound, Unprocessable, Violation
from app.kit.money import format_fen
from app.ledger import repository as repo
from app.ledger import service as ledger
from app.ledger.postings import account_code, credit, debit
from app.models import Fund, FundContributor, LedgerEntry


@dataclass
class Contribution:
    entry: LedgerEntry
    fund_code: str
    contributor: FundContributor
    amount_fen: int
    paid_to_date_fen: int


def paid_in(session: Session, fund_code: str, contributor_code: str, *, as_of: date | None) -> int:
    """Capital a contributor has paid in: the credit balance of its capital account."""
    code = account_code(fund_code, "contributed_capital", contributor_code)
    try:
        return -ledger.account_balance(session, code, as_of=as_of)
    except NotFound:
        return 0


def contribute(
    session: Session,
    *,
    fund_code: str,
    contributor_code: str,
    amount_fen: int,
    paid_on: date,
    now: datetime,
    actor_id: int | None,
) -> Contribution:
    fund = session.get(Fund, fund_code)
    if fund is None:
        raise NotFound(f"fund {fund_code!r} not found")
    contributor = session.scalars(
        select(FundContributor).where(
            FundContributor.fund_code == fund_code, FundContributor.code == contributor_code
        )
    ).first()
    errors = []
    if contributor is None:
        errors.append(
            Violation(
                loc=("body", "contributor"),
                msg=f"{contributor_code!r} is not a contributor of {fund_code}",
                code="unknown_contributor",
            )
        )
    if amount_fen <= 0:
        errors.append(Violation(loc=("body", "amount"), msg="must be more than zero"))
    # XB-F0: paid-in capital never exceeds a commitment; 0.00 is no schedule (SKD funds)
    if contributor is not None and amount_fen > 0 and contributor.committed_fen > 0:
        already = paid_in(session, fund_code, contributor_code, as_of=None)
        if already + amount_fen > contributor.committed_fen:
            left = contributor.committed_fen - already
            errors.append(
                Violation(
                    loc=("body", "amount"),
                    msg=f"exceeds the commitment: {format_fen(left)} yuan of "
                    f"{format_fen(contributor.committed_fen)} is still to be paid in",
                    code="contribution_exceeds_commitment",
                    rule="XB-F0",
                )
            )
    if errors:
        raise Unprocessable("the contribution was refused", errors, code="contribution_refused")
    assert contributor is not None
    event_id = uuid.uuid4().hex
    entry = ledger.post(
        session,
        event_type="contribution",
        event_id=event_id,
        idempotency_key=f"contribution:{event_id}",
        business_date=paid_on,
        legs=[
            debit(fund_code, "cash", amount_fen),
            credit(fund_code, "contributed_capital", amount_fen, contributor_code),
        ],
        now=now,
        description=f"capital paid in by {contributor.name} ({contributor_code})",
        actor_id=actor_id,
    )
    return Contribution(
        entry=entry,
        fund_code=fund_code,
        contributor=contributor,
        amount_fen=amount_fen,
        paid_to_date_fen=paid_in(session, fund_code, contributor_code, as_of=None),
    )


def unpaid(contributor: FundContributor, paid_in_fen: int) -> int:
    """Committed capital still to be paid in; nothing without a committed schedule."""
    return max(contributor.committed_fen - paid_in_fen, 0)


def paid_in_total(session: Session, fund_code: str, *, as_of: date | None) -> int:
    """All capital paid into the fund: the credit balance of its capital accounts."""
    return -sum(
        total
        for account, total in repo.balances(session, as_of=as_of, funds={fund_code})
        if account.kind == "contributed_capital"
    )


def net_value(session: Session, fund_code: str, *, as_of: date | None) -> int:
    """The fund's net value (基金净值): its assets less its liabilities, memo accounts
    aside — contributions less compensation plus returns and refunds (L-3)."""
    return sum(
        total
        for account, total in repo.balances(session, as_of=as_of, funds={fund_code})
        if account.type in ("asset", "liability")
    )
