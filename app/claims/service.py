"""Compensation claims (SKD-C1…C3, S1, S2, Q1, Q2, R1): filing, documents, two reviews,
the city fund's payment, the province's reimbursement and recoveries. Each step is a
guarded transition with a history row and, where money moves, one ledger entry."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import date, datetime
from fractions import Fraction

from sqlalchemy.orm import Session

from app.auth.principal import Principal
from app.claims import repository as repo
from app.claims import steps, xinbao
from app.claims.workflow import COMPENSATED, DOCUMENTS_OPEN, SKD_CLAIM
from app.errors import AppError, Conflict, Forbidden, Unprocessable, Violation
from app.kit.allocation import allocate
from app.kit.money import format_fen
from app.ledger import service as ledger
from app.ledger.postings import LegSpec, credit, debit
from app.loans import repository as loans_repo
from app.loans import servicing
from app.models import Claim, ClaimDocument, ClaimRecovery, Enterprise
from app.programs.common import recovery_return
from app.programs.sukedai import claims as rules
from app.programs.sukedai.policy import CAPS, CLAIMS, PRODUCTS, product_by_code

PROVINCE_FUND = repo.PROVINCE_FUND


class PayloadTooLarge(AppError):
    status = 413
    title = "Payload too large"
    code = "document_too_large"


# --- filing --------------------------------------------------------------------------
def file_claim(
    session: Session,
    *,
    loan_id: int,
    lawsuit_case_no: str | None,
    lawsuit_accepted_on: date | None,
    comment: str,
    actor: Principal,
    today: date,
    now: datetime,
) -> Claim:
    """SKD-C2: a claim once principal is ≥ 90 days past due; the loss is the unpaid
    principal, shared per SKD-S1. Loans not eligible at grant get nothing (SKD-S2)."""
    loan = loans_repo.loan_for_update(session, loan_id)
    if loan is None or not actor.can_see_bank(loan.bank_code):
        raise Unprocessable(
            f"loan {loan_id} not found",
            [Violation(loc=("body", "loan_id"), msg="no such loan of yours", code="unknown_loan")],
            code="unknown_loan",
        )
    live = repo.live_claim_for_loan(session, loan.id)
    if live is not None:
        raise Conflict(
            f"loan {loan.id} already has claim {live.id} ({live.status})",
            [Violation(loc=("body", "loan_id"), msg="a claim exists", code="claim_exists")],
            code="claim_exists",
        )
    if lawsuit_accepted_on is not None and lawsuit_accepted_on > today:
        raise Unprocessable(
            "lawsuit_accepted_on is in the future",
            [Violation(loc=("body", "lawsuit_accepted_on"), msg="in the future")],
            code="invalid_date",
        )
    pos = servicing.positions(session, [loan], today)[loan.id]
    if loan.program == "XB":
        return xinbao.file_claim(
            session,
            loan=loan,
            position=pos,
            lawsuit_case_no=lawsuit_case_no,
            lawsuit_accepted_on=lawsuit_accepted_on,
            comment=comment,
            actor=actor,
            today=today,
            now=now,
        )
    problems = rules.check_claim(
        rules.ClaimFacts(
            loan_status=loan.status,
            compensable=loan.compensable,
            outstanding_fen=pos.outstanding_fen,
            days_past_due=pos.days_past_due,
        )
    )
    product = product_by_code(loan.product or "")
    if product is None:
        problems.append(
            Violation(
                loc=("body", "loan_id"),
                msg=f"no SKD product {loan.product!r}",
                code="program_not_supported",
            )
        )
    if problems:
        only = problems[0].code if len(problems) == 1 else None
        raise Unprocessable(
            f"the claim breaks {len(problems)} rule(s): "
            + ", ".join(f"{v.rule or ''} {v.code}".strip() for v in problems),
            problems,
            code=only or "claim_refused",
        )
    assert product is not None
    shares = rules.loss_shares(pos.outstanding_fen, product)
    enterprise = session.get(Enterprise, loan.enterprise_id)
    assert enterprise is not None
    claim = Claim(
        program=loan.program,
        loan_id=loan.id,
        bank_code=loan.bank_code,
        product=loan.product,
        city_fund_code=str(loan.extra.get("city_fund")),
        fund_code=str(loan.extra.get("city_fund")),
        region_code=enterprise.region_code,
        status="submitted",
        filed_on=today,
        days_past_due=pos.days_past_due,
        loss_fen=pos.outstanding_fen,
        requested_fen=shares["province"] + shares["city"],
        shares=shares,
        returned_fen=0,
        lawsuit_case_no=lawsuit_case_no,
        lawsuit_accepted_on=lawsuit_accepted_on,
        deadlines={},
        filed_by_id=actor.user_id,
    )
    session.add(claim)
    loan.status = servicing.LOAN_TRANSITIONS.target("claim", loan.status)
    session.flush()
    steps.transition(session, claim, "submit", actor=actor, on=today, now=now, comment=comment)
    return claim


# --- documents -----------------------------------------------------------------------
_SIGNATURES = {
    "application/pdf": (b"%PDF-",),
    "image/jpeg": (b"\xff\xd8\xff",),
    "image/png": (b"\x89PNG\r\n\x1a\n",),
    "application/zip": (b"PK\x03\x04",),
}


def add_document(
    session: Session,
    *,
    claim_id: int,
    kind: str,
    filename: str,
    content_type: str,
    content: bytes,
    allowed_types: list[str],
    max_bytes: int,
    actor: Principal,
    now: datetime,
) -> ClaimDocument:
    """SKD-C1: the bank's electronic files, stored with their SHA-256. The declared type
    must be allowed and match the file's signature; empty and oversized files are
    refused."""
    claim = steps.claim_for_step(session, claim_id, actor)
    if not actor.is_bank:
        raise Forbidden("documents are uploaded by the claiming bank", code="role_not_allowed")
    if claim.status not in DOCUMENTS_OPEN:
        raise Conflict(
            f"claim {claim.id} is {claim.status}; documents are added before the province review",
            code="documents_closed",
        )
    if len(content) > max_bytes:
        raise PayloadTooLarge(f"the file has {len(content)} bytes; at most {max_bytes} allowed")
    problems = []
    if not content:
        problems.append(Violation(loc=("body", "file"), msg="the file is empty", code="empty"))
    if content_type not in allowed_types:
        problems.append(
            Violation(
                loc=("body", "file"),
                msg=f"type {content_type or 'unknown'} is not accepted; allowed: "
                + ", ".join(allowed_types),
                code="unsupported_type",
            )
        )
    elif content and not content.startswith(_SIGNATURES.get(content_type, (b"",))):
        problems.append(
            Violation(
                loc=("body", "file"),
                msg=f"the content is not a {content_type} file",
                code="type_mismatch",
            )
        )
    if problems:
        raise Unprocessable("the document was refused", problems, code="document_refused")
    doc = ClaimDocument(
        claim_id=claim.id,
        kind=kind,
        filename=filename[:200] or "document",
        content_type=content_type,
        size_bytes=len(content),
        sha256=hashlib.sha256(content).hexdigest(),
        content=content,
        uploaded_by_id=actor.user_id,
        uploaded_at=now,
    )
    session.add(doc)
    session.flush()
    return doc


# --- reviews -------------------------------------------------------------------------
def city_review(
    session: Session,
    *,
    claim_id: int,
    approve: bool,
    comment: str,
    ineligible_at_grant: bool,
    actor: Principal,
    today: date,
    now: datetime,
) -> Claim:
    """初审. Approval needs the application's documents (SKD-C1)."""
    claim = steps.claim_for_step(session, claim_id, actor)
    steps.guard(session, claim, actor, "city_review")
    if approve:
        count = len(repo.documents(session, [claim.id])[claim.id])
        if count < CLAIMS.required_documents:
            raise Unprocessable(
                "the claim has no documents; the bank must upload its application files",
                [
                    Violation(
                        msg=f"{count} document(s); at least {CLAIMS.required_documents}",
                        code="documents_missing",
                        rule="SKD-C1",
                    )
                ],
                code="documents_missing",
            )
        steps.transition(
            session, claim, "city_approve", actor=actor, on=today, now=now, comment=comment
        )
    else:
        steps.reject(session, claim, "city_reject", comment, ineligible_at_grant, actor, today, now)
    return claim


def province_review(
    session: Session,
    *,
    claim_id: int,
    approve: bool,
    comment: str,
    ineligible_at_grant: bool,
    actor: Principal,
    today: date,
    now: datetime,
) -> Claim:
    """复审. Approval applies the 3 % cap (SKD-Q1, with the SKD-Q2 exemption) under the
    bank's row lock, reserves the approved amount in the ledger and releases the loan's
    guarantee exposure."""
    claim = steps.claim_for_step(session, claim_id, actor)
    steps.guard(session, claim, actor, "province_review")
    if not approve:
        steps.reject(
            session, claim, "province_reject", comment, ineligible_at_grant, actor, today, now
        )
        return claim
    SKD_CLAIM.target("province_approve", claim.status)  # state check before any work
    repo.lock_bank(session, claim.bank_code)
    stats = cap_statistics(session, claim.bank_code, on=today)
    decision = rules.approve(claim.shares, stats.position)
    claim.approved_fen = decision.approved_fen
    claim.approved_shares = decision.shares
    claim.approved_on = today
    claim.capped_by = decision.capped_by
    claim.cap_detail = {
        "rule": "SKD-Q1",
        "exempt": stats.position.exempt,
        "exemption_rule": "SKD-Q2",
        "first_year_ends": stats.position.first_year_ends.isoformat()
        if stats.position.first_year_ends
        else None,
        "cumulative_principal": format_fen(stats.cumulative_principal_fen),
        "annualized_principal": format_fen(stats.annualized_floor_fen),
        "cap": format_fen(stats.position.cap_fen),
        "compensated_before": format_fen(stats.compensated_fen),
        "headroom": None
        if stats.position.headroom_fen is None
        else format_fen(stats.position.headroom_fen),
        "bank_bears_of_fund_share": format_fen(decision.bank_bears_of_fund_share_fen),
    }
    loan = loans_repo.loan_for_update(session, claim.loan_id)
    assert loan is not None
    legs = _approval_legs(claim, decision.shares) + steps.exposure_release_legs(
        loan, claim.loss_fen
    )
    entries = steps.post_approval(
        session,
        claim,
        legs,
        approved_fen=decision.approved_fen,
        capped_by=decision.capped_by,
        label="claim",
        actor=actor,
        today=today,
        now=now,
    )
    action = "province_approve" if decision.approved_fen > 0 else "province_approve_nil"
    note = comment
    if decision.capped_by:
        note = (
            f"{comment} [capped by SKD-Q1: {format_fen(decision.approved_fen)} approved, the "
            f"bank bears {format_fen(decision.bank_bears_of_fund_share_fen)} of the funds' "
            "share]"
        ).strip()
    steps.transition(
        session, claim, action, actor=actor, on=today, now=now, comment=note, entries=entries
    )
    loan.status = servicing.LOAN_TRANSITIONS.target("compensate", loan.status)
    session.flush()
    return claim


def _approval_legs(claim: Claim, shares: dict[str, int]) -> list[LegSpec]:
    """Reserve (L-1): the city fund owes the bank the whole fund share; the province
    owes the city fund its part."""
    city, bank = str(claim.city_fund_code), claim.bank_code
    prov_part, city_part = shares["province"], shares["city"]
    legs = []
    if city_part:
        legs.append(debit(city, "compensation_expense", city_part, bank))
    if prov_part:
        legs += [
            debit(city, "due_from_fund", prov_part, PROVINCE_FUND),
            debit(PROVINCE_FUND, "compensation_expense", prov_part, bank),
            credit(PROVINCE_FUND, "due_to_fund", prov_part, city),
        ]
    if prov_part + city_part:
        legs.append(credit(city, "payable_bank", prov_part + city_part, bank))
    return legs


# --- payment and reimbursement --------------------------------------------------------
def city_payment(
    session: Session,
    *,
    claim_id: int,
    paid_on: date,
    comment: str,
    actor: Principal,
    today: date,
    now: datetime,
) -> Claim:
    """SKD-C1: the city fund pays the whole fund share (province + city) to the bank."""
    return steps.pay_bank(
        session,
        claim_id=claim_id,
        fund=None,
        stage="city_payment",
        action="city_pay",
        event_type="claim.city_payment",
        paid_on=paid_on,
        comment=comment,
        actor=actor,
        today=today,
        now=now,
    )


def province_reimbursement(
    session: Session,
    *,
    claim_id: int,
    paid_on: date,
    comment: str,
    actor: Principal,
    today: date,
    now: datetime,
) -> Claim:
    """SKD-C1: the province fund reimburses the city fund its part (归垫)."""
    claim = steps.claim_for_step(session, claim_id, actor)
    steps.guard(session, claim, actor, "province_reimbursement")
    SKD_CLAIM.target("province_reimburse", claim.status)
    steps.dated(paid_on, not_before=claim.paid_on, today=today, field="paid_on")
    part = int((claim.approved_shares or {}).get("province", 0))
    city = str(claim.city_fund_code)
    entries = []
    if part:
        steps.check_cash(session, PROVINCE_FUND, part)
        entry = ledger.post(
            session,
            event_type="claim.province_reimbursement",
            event_id=str(claim.id),
            idempotency_key=f"claim:{claim.id}:reimbursement",
            business_date=paid_on,
            legs=[
                debit(PROVINCE_FUND, "due_to_fund", part, city),
                credit(PROVINCE_FUND, "cash", part),
                debit(city, "cash", part),
                credit(city, "due_from_fund", part, PROVINCE_FUND),
            ],
            now=now,
            actor_id=actor.user_id,
            description=f"claim {claim.id}: {PROVINCE_FUND} reimburses {city} {format_fen(part)}",
        )
        entries.append(entry.id)
    claim.reimbursed_on = paid_on
    steps.transition(
        session,
        claim,
        "province_reimburse",
        actor=actor,
        on=paid_on,
        now=now,
        comment=comment,
        entries=entries,
    )
    return claim


# --- recoveries ----------------------------------------------------------------------
def record_recovery(
    session: Session,
    *,
    claim_id: int,
    recovered_on: date,
    amount_fen: int,
    costs_fen: int,
    actor: Principal,
    today: date,
    now: datetime,
) -> ClaimRecovery:
    """SKD-R1: the recovery less litigation costs, at the original compensation ratio,
    goes back to the city fund, which passes the province's part on. Cumulative returns
    never exceed the compensation paid."""
    claim = steps.claim_for_step(session, claim_id, actor)
    if not actor.is_bank:
        raise Forbidden("recoveries are reported by the claiming bank", code="role_not_allowed")
    if claim.status not in COMPENSATED or (claim.program == "XB" and claim.status != "paid"):
        raise Conflict(
            f"claim {claim.id} is {claim.status}; recoveries are reported after payment",
            code="not_compensated",
        )
    problems = []
    if costs_fen > amount_fen:
        problems.append(Violation(loc=("body", "costs"), msg="costs exceed the amount recovered"))
    if recovered_on > today:
        problems.append(Violation(loc=("body", "recovered_on"), msg="in the future"))
    if claim.paid_on and recovered_on < claim.paid_on:
        problems.append(
            Violation(loc=("body", "recovered_on"), msg="before the compensation was paid")
        )
    if problems:
        raise Unprocessable("the recovery was refused", problems, code="recovery_refused")
    if claim.program == "XB":
        return xinbao.record_recovery(
            session,
            claim=claim,
            recovered_on=recovered_on,
            amount_fen=amount_fen,
            costs_fen=costs_fen,
            actor=actor,
            now=now,
        )
    paid = int(claim.approved_fen or 0)
    approved = claim.approved_shares or {}
    returned = recovery_return(
        net_fen=amount_fen - costs_fen,
        loss_fen=claim.loss_fen,
        paid_fen=paid,
        returned_fen=claim.returned_fen,
    )
    parts = (
        allocate(returned, [("province", approved["province"]), ("city", approved["city"])])
        if returned
        else {"province": 0, "city": 0}
    )
    number = len(repo.recoveries(session, [claim.id])[claim.id]) + 1  # under the claim lock
    recovery = ClaimRecovery(
        claim_id=claim.id,
        recovered_on=recovered_on,
        amount_fen=amount_fen,
        costs_fen=costs_fen,
        returned_fen=returned,
        returned_shares=parts,
        recorded_by_id=actor.user_id,
    )
    recovery.ledger_entry_ids = _post_recovery(session, claim, recovery, number, actor, now)
    session.add(recovery)
    claim.returned_fen += returned
    session.flush()
    return recovery


def _post_recovery(
    session: Session,
    claim: Claim,
    recovery: ClaimRecovery,
    number: int,
    actor: Principal,
    now: datetime,
) -> list[int]:
    city, bank = str(claim.city_fund_code), claim.bank_code
    prov_part, city_part = recovery.returned_shares["province"], recovery.returned_shares["city"]
    if not prov_part + city_part:
        return []
    legs = [debit(city, "cash", prov_part + city_part)]
    if city_part:
        legs.append(credit(city, "recovery_income", city_part, bank))
    if prov_part:
        legs += [
            credit(city, "due_to_fund", prov_part, PROVINCE_FUND),
            debit(PROVINCE_FUND, "due_from_fund", prov_part, city),
            credit(PROVINCE_FUND, "recovery_income", prov_part, bank),
        ]
    common = {
        "event_id": str(claim.id),
        "business_date": recovery.recovered_on,
        "now": now,
        "actor_id": actor.user_id,
    }
    ids = [
        ledger.post(
            session,
            event_type="claim.recovery",
            idempotency_key=f"claim:{claim.id}:recovery:{number}",
            legs=legs,
            description=f"claim {claim.id}: {bank} returns {format_fen(prov_part + city_part)} "
            f"of a {format_fen(recovery.amount_fen)} recovery to {city}",
            **common,  # type: ignore[arg-type]
        ).id
    ]
    if prov_part:
        ids.append(
            ledger.post(
                session,
                event_type="claim.recovery_pass_on",
                idempotency_key=f"claim:{claim.id}:recovery:{number}:pass_on",
                legs=[
                    debit(city, "due_to_fund", prov_part, PROVINCE_FUND),
                    credit(city, "cash", prov_part),
                    debit(PROVINCE_FUND, "cash", prov_part),
                    credit(PROVINCE_FUND, "due_from_fund", prov_part, city),
                ],
                description=f"claim {claim.id}: {city} passes the province's "
                f"{format_fen(prov_part)} on",
                **common,  # type: ignore[arg-type]
            ).id
        )
    return ids


# --- cap statistics (SKD-Q1, Q2) and the exposure view ------------------------------
@dataclass(frozen=True)
class ProductFigures:
    product: str
    annualized: Fraction
    compensated_fen: int


@dataclass(frozen=True)
class CapStatistics:
    cooperation_start: date | None
    on: date
    cumulative_principal_fen: int
    per_product: list[ProductFigures]
    annualized: Fraction
    compensated_fen: int
    position: rules.CapPosition

    @property
    def annualized_floor_fen(self) -> int:
        return self.annualized.__floor__()


def cap_statistics(session: Session, bank_code: str, *, on: date) -> CapStatistics:
    start = repo.cooperation_start(session, bank_code, "SKD")
    sums = {
        code: (principal, principal_days)
        for code, principal, principal_days in (
            repo.cap_sums(session, bank_code, "SKD", start=start, until=on) if start else []
        )
    }
    compensated = repo.compensated_by_product(session, bank_code, "SKD", until=on)
    per_product = [
        ProductFigures(
            p.code,
            rules.annualized(sums.get(p.code, (0, 0))[1], p.province_share_bp + p.city_share_bp),
            compensated.get(p.code, 0),
        )
        for p in PRODUCTS
    ]
    cumulative = sum(principal for code, (principal, _) in sums.items() if product_by_code(code))
    total = sum((p.annualized for p in per_product), Fraction(0))
    total_comp = sum(compensated.values())
    position = rules.cap_position(
        rules.CapFacts(
            cooperation_start=start,
            on=on,
            cumulative_principal_fen=cumulative,
            annualized_fen=total,
            compensated_fen=total_comp,
        ),
        CAPS,
    )
    return CapStatistics(start, on, cumulative, per_product, total, total_comp, position)
