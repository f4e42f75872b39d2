"""Fund capital paid in by contributors (XB-F0): each contribution is a ledger entry
Dr cash / Cr contributed capital of that contributor."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.errors import NotFound, Unprocessable, ValidationFailed, Violation, refusal
from app.kit.money import format_fen
from app.ledger import repository as repo
from app.ledger import service as ledger
from app.ledger.postings import account_code, credit, debit
from app.models import Fund, FundContributor, LedgerEntry


class UnknownContributor(Unprocessable):
    """The `contributor` named is not registered with the fund (register it first with
    `POST /funds/{code}/contributors`)."""

    code = "unknown_contributor"
    title, title_zh = "Not a contributor of the fund", "非该基金登记的出资人"


class ContributionExceedsCommitment(Unprocessable):
    """Paid-in capital never exceeds the contributor's committed capital (XB-F0); the
    message says how much is still to be paid in."""

    code, rule = "contribution_exceeds_commitment", "XB-F0"
    title, title_zh = "Exceeds the committed capital", "实缴出资超过认缴额"


class FundNotFound(NotFound):
    title, title_zh = "Fund not found", "基金不存在"


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
        raise FundNotFound(f"fund {fund_code!r} not found")
    contributor = session.scalars(
        select(FundContributor).where(
            FundContributor.fund_code == fund_code, FundContributor.code == contributor_code
        )
    ).first()
    errors: list[Violation] = []
    if contributor is None:
        errors.append(
            UnknownContributor.violation(
                f"{contributor_code!r} is not a contributor of {fund_code}", "body", "contributor"
            )
        )
    if amount_fen <= 0:
        errors.append(ValidationFailed.violation("must be more than zero", "body", "amount"))
    # XB-F0: paid-in capital never exceeds a commitment; 0.00 is no schedule (SKD funds)
    if contributor is not None and amount_fen > 0 and contributor.committed_fen > 0:
        already = paid_in(session, fund_code, contributor_code, as_of=None)
        if already + amount_fen > contributor.committed_fen:
            left = contributor.committed_fen - already
            errors.append(
                ContributionExceedsCommitment.violation(
                    f"exceeds the commitment: {format_fen(left)} yuan of "
                    f"{format_fen(contributor.committed_fen)} is still to be paid in",
                    "body",
                    "amount",
                )
            )
    if errors:
        raise refusal(errors, "the contribution was refused")
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
