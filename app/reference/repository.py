"""All SQL of the reference package."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date

from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session

from app.models import (
    Agreement,
    AgreementEvent,
    Bank,
    Enterprise,
    Fund,
    FundContributor,
    LprRate,
    Region,
)


def regions_query(*, level: str | None, parent_code: str | None) -> Select[Region]:
    stmt = select(Region)
    if level:
        stmt = stmt.where(Region.level == level)
    if parent_code:
        stmt = stmt.where(Region.parent_code == parent_code)
    return stmt


def banks_query() -> Select[Bank]:
    return select(Bank)


def funds_query(*, program: str | None, kind: str | None) -> Select[Fund]:
    stmt = select(Fund)
    if program:
        stmt = stmt.where(Fund.program == program)
    if kind:
        stmt = stmt.where(Fund.kind == kind)
    return stmt


def contributors(session: Session, fund_code: str) -> Sequence[FundContributor]:
    return session.scalars(
        select(FundContributor)
        .where(FundContributor.fund_code == fund_code)
        .order_by(FundContributor.id)
    ).all()


def agreements_query(
    *, bank_code: str | None, program: str | None, status: str | None, region_code: str | None
) -> Select[Agreement]:
    stmt = select(Agreement)
    if bank_code:
        stmt = stmt.where(Agreement.bank_code == bank_code)
    if program:
        stmt = stmt.where(Agreement.program == program)
    if status:
        stmt = stmt.where(Agreement.status == status)
    if region_code:
        stmt = stmt.where(Agreement.region_code == region_code)
    return stmt


def agreement_for_update(session: Session, agreement_id: int) -> Agreement | None:
    return session.scalars(
        select(Agreement).where(Agreement.id == agreement_id).with_for_update()
    ).first()


def agreement_history(session: Session, agreement_id: int) -> Sequence[AgreementEvent]:
    return session.scalars(
        select(AgreementEvent)
        .where(AgreementEvent.agreement_id == agreement_id)
        .order_by(AgreementEvent.id)
    ).all()


def lpr_query(*, since: date | None, until: date | None) -> Select[LprRate]:
    stmt = select(LprRate)
    if since:
        stmt = stmt.where(LprRate.effective_on >= since)
    if until:
        stmt = stmt.where(LprRate.effective_on <= until)
    return stmt


def lpr_in_force(session: Session, on: date) -> LprRate | None:
    return session.scalars(
        select(LprRate).where(LprRate.effective_on <= on).order_by(LprRate.effective_on.desc())
    ).first()


def lpr_on(session: Session, effective_on: date) -> LprRate | None:
    return session.scalars(select(LprRate).where(LprRate.effective_on == effective_on)).first()


def enterprise_by_code(session: Session, credit_code: str) -> Enterprise | None:
    return session.scalars(select(Enterprise).where(Enterprise.credit_code == credit_code)).first()


def enterprises_query(*, region_code: str | None, name: str | None) -> Select[Enterprise]:
    stmt = select(Enterprise)
    if region_code:
        stmt = stmt.where(Enterprise.region_code == region_code)
    if name:
        stmt = stmt.where(func.lower(Enterprise.name).contains(name.lower()))
    return stmt
