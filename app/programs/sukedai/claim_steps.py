"""苏科贷 claims (SKD-C1…C3, S1, S2, Q1, Q2, R1): the claim a bank files, the city's first
review, the province's review under the 3 % cap, the city fund's payment, the province's
reimbursement (归垫) and recoveries. The generic machinery (scope, guard, transition
with history, payments) is `app.claims.steps`; this is what 苏科贷 adds to it."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import date, datetime
from fractions import Fraction

from sqlalchemy.orm import Session

from app.auth.principal import Principal
from app.claims import repository as repo
from app.claims import steps
from app.claims.steps import DocumentsMissing, Outcome
from app.claims.workflow import StepContext
from app.errors import Unprocessable, Violation, refusal
from app.kit.allocation import allocate
from app.kit.money import format_fen
from app.ledger import service as ledger
from app.ledger.postings import LegSpec, credit, debit
from app.ledger.service import EntrySpec
from app.loans import repository as loans_repo
from app.loans.servicing import Position
from app.models import Claim, ClaimRecovery, Enterprise, Loan
from app.programs.base import INELIGIBLE_AT_GRANT
from app.programs.common import recovery_return
from app.programs.sukedai import claims as rules
from app.programs.sukedai.funds import PROVINCE_FUND
from app.programs.sukedai.policy import CAPS, CLAIMS, PRODUCTS, product_by_code

PROGRAM_CODE = "SKD"


class ProductNotInProgramme(Unprocessable):
    """The claimed loan's product is not one of the programme's (SKD1/SKD2/SKD3), so its
    loss cannot be shared (SKD-S1)."""

    code, rule = "program_not_supported", "SKD-S1"
    title, title_zh = "Product not in the programme", "贷款产品不属于本项目"


# --- filing --------------------------------------------------------------------------
def new_claim(
    session: Session,
    *,
    loan: Loan,
    position: Position,
    lawsuit_case_no: str | None,
    lawsuit_accepted_on: date | None,
    actor: Principal,
    today: date,
) -> Claim:
    """SKD-C2: a claim once principal is ≥ 90 days past due; the loss is the unpaid
    principal, shared per SKD-S1. Loans not eligible at grant get nothing (SKD-S2)."""
    problems = rules.check_claim(
        rules.ClaimFacts(
            loan_status=loan.status,
            compensable=loan.compensable,
            outstanding_fen=position.outstanding_fen,
            days_past_due=position.days_past_due,
        )
    )
    product = product_by_code(loan.product or "")
    if product is None:
        problems.append(
            ProductNotInProgramme.violation(f"no SKD product {loan.product!r}", "body", "loan_id")
        )
    if problems:  # the first rule's code, every rule in errors
        raise refusal(
            problems,
            f"the claim breaks {len(problems)} rule(s): "
            + ", ".join(f"{v.rule or ''} {v.code}".strip() for v in problems),
        )
    assert product is not None
    shares = rules.loss_shares(position.outstanding_fen, product)
    enterprise = session.get(Enterprise, loan.enterprise_id)
    assert enterprise is not None
    return Claim(
        program=loan.program,
        loan_id=loan.id,
        bank_code=loan.bank_code,
        product=loan.product,
        city_fund_code=loan.fund_code,
        fund_code=loan.fund_code,
        region_code=enterprise.region_code,
        status="submitted",
        filed_on=today,
        days_past_due=position.days_past_due,
        loss_fen=position.outstanding_fen,
        requested_fen=shares["province"] + shares["city"],
        shares=shares,
        returned_fen=0,
        lawsuit_case_no=lawsuit_case_no,
        lawsuit_accepted_on=lawsuit_accepted_on,
        deadlines={},
        filed_by_id=actor.user_id,
    )


# --- rules the transitions run ---------------------------------------------------------
def documents_present(ctx: StepContext) -> list[Violation]:
    """SKD-C1: the first review approves only a claim with its application files."""
    count = len(repo.documents(ctx.session, [ctx.claim.id])[ctx.claim.id])
    if count >= CLAIMS.required_documents:
        return []
    return [
        replace(
            DocumentsMissing.violation(
                f"{count} document(s); at least {CLAIMS.required_documents}: the bank must "
                "upload its application files",
                "documents",
            ),
            rule="SKD-C1",
        )
    ]


# --- stages --------------------------------------------------------------------------
def reject(ctx: StepContext, action: str) -> None:
    """A review's rejection. A finding that the loan was not eligible when granted
    (SKD-S2) marks it non-compensable for good."""
    loan = steps.reject(ctx, action)
    if ctx.step.ineligible_at_grant:
        loan.compensable = False
        loan.flags = [*loan.flags, f"SKD-S2: {INELIGIBLE_AT_GRANT} ({ctx.step.comment})"]
        ctx.session.flush()


def city_review(ctx: StepContext) -> None:
    """初审. Approval needs the application's documents (SKD-C1)."""
    if ctx.step.approve is True:
        steps.transition(ctx, "city_approve")
    else:
        reject(ctx, "city_reject")


def province_review(ctx: StepContext) -> None:
    """复审. Approval applies the 3 % cap (SKD-Q1, with the SKD-Q2 exemption) under the
    bank's row lock, reserves the approved amount in the ledger and releases the loan's
    guarantee exposure."""
    if ctx.step.approve is not True:
        reject(ctx, "province_reject")
        return
    claim, session = ctx.claim, ctx.session
    locked: list[Loan] = []

    def work() -> Outcome:
        repo.lock_bank(session, claim.bank_code)  # the bank's row first, then the loan's
        stats = cap_statistics(session, claim.bank_code, on=ctx.today)
        decision = rules.approve(claim.shares, stats.position)
        claim.approved_fen = decision.approved_fen
        claim.approved_shares = decision.shares
        claim.approved_on = ctx.today
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
        repo.record_shares(session, claim.id, "approved", decision.shares)
        loan = loans_repo.loan_for_update(session, claim.loan_id)
        assert loan is not None
        locked.append(loan)
        legs = approval_legs(claim, decision.shares) + steps.exposure_release_legs(
            loan, claim.loss_fen
        )
        entries = steps.approval_posting(
            claim,
            legs,
            approved_fen=decision.approved_fen,
            capped_by=decision.capped_by,
            label="claim",
            today=ctx.today,
        )
        note = ctx.step.comment
        if decision.capped_by:
            note = (
                f"{note} [capped by SKD-Q1: {format_fen(decision.approved_fen)} approved, the "
                f"bank bears {format_fen(decision.bank_bears_of_fund_share_fen)} of the "
                "funds' share]"
            ).strip()
        action = "province_approve" if decision.approved_fen > 0 else "province_approve_nil"
        return Outcome(action, note, entries)

    steps.transition(ctx, "province_approve", work=work)
    steps.set_loan_status(ctx, locked[0], "compensate", reason=f"claim {claim.id} approved")
    session.flush()


def approval_legs(claim: Claim, shares: dict[str, int]) -> list[LegSpec]:
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


def city_payment(ctx: StepContext) -> None:
    """SKD-C1: the city fund pays the whole fund share (province + city) to the bank."""
    steps.pay_bank(
        ctx,
        payer=str(ctx.claim.city_fund_code),
        action="city_pay",
        event_type="claim.city_payment",
    )


def province_reimbursement(ctx: StepContext) -> None:
    """SKD-C1: the province fund reimburses the city fund its part (归垫)."""
    claim = ctx.claim
    paid_on = ctx.step.paid_on or ctx.today

    def work() -> Outcome:
        steps.dated(paid_on, not_before=claim.paid_on, today=ctx.today, field="paid_on")
        part = int((claim.approved_shares or {}).get("province", 0))
        city = str(claim.city_fund_code)
        entries: list[EntrySpec] = []
        if part:
            steps.check_cash(ctx.session, PROVINCE_FUND, part)
            entry = EntrySpec(
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
                description=f"claim {claim.id}: {PROVINCE_FUND} reimburses {city} "
                f"{format_fen(part)}",
            )
            entries.append(entry)
        claim.reimbursed_on = paid_on
        return Outcome("province_reimburse", ctx.step.comment, entries)

    steps.transition(ctx, "province_reimburse", work=work, on=paid_on)


# --- recoveries ----------------------------------------------------------------------
def record_recovery(
    session: Session,
    *,
    claim: Claim,
    recovered_on: date,
    amount_fen: int,
    costs_fen: int,
    actor: Principal,
    now: datetime,
) -> ClaimRecovery:
    """SKD-R1: the recovery less litigation costs, at the original compensation ratio,
    goes back to the city fund, which passes the province's part on. Cumulative returns
    never exceed the compensation paid."""
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
    claim.returned_fen += returned
    session.flush()  # every other change first: the ledger's chain head is the last lock
    recovery.ledger_entry_ids = _post_recovery(session, claim, recovery, number, actor, now)
    session.add(recovery)
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
    on, event = recovery.recovered_on, str(claim.id)
    specs = [
        EntrySpec(
            event_type="claim.recovery",
            event_id=event,
            idempotency_key=f"claim:{claim.id}:recovery:{number}",
            business_date=on,
            legs=legs,
            description=f"claim {claim.id}: {bank} returns {format_fen(prov_part + city_part)} "
            f"of a {format_fen(recovery.amount_fen)} recovery to {city}",
        )
    ]
    if prov_part:
        specs.append(
            EntrySpec(
                event_type="claim.recovery_pass_on",
                event_id=event,
                idempotency_key=f"claim:{claim.id}:recovery:{number}:pass_on",
                business_date=on,
                legs=[
                    debit(city, "due_to_fund", prov_part, PROVINCE_FUND),
                    credit(city, "cash", prov_part),
                    debit(PROVINCE_FUND, "cash", prov_part),
                    credit(PROVINCE_FUND, "due_from_fund", prov_part, city),
                ],
                description=f"claim {claim.id}: {city} passes the province's "
                f"{format_fen(prov_part)} on",
            )
        )
    return ledger.post_many(session, specs, now=now, actor_id=actor.user_id)


# --- cap statistics (SKD-Q1, Q2) -------------------------------------------------------
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
    start = repo.cooperation_start(session, bank_code, PROGRAM_CODE)
    sums = {
        code: (principal, principal_days)
        for code, principal, principal_days in (
            repo.cap_sums(session, bank_code, PROGRAM_CODE, start=start, until=on) if start else []
        )
    }
    compensated = repo.compensated_by_product(session, bank_code, PROGRAM_CODE, until=on)
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
