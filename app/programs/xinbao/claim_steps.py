"""信保基金 claims (XB-C1, C2, N1…N9, S1, Q1, Q2, R1, R2): the claim a bank files, the fund
manager's due-diligence review with its 7-working-day deadline, the committee's decision
under the bank's annual limit and the fund-wide stop, payment within 20 working days,
and after payment the distributions of collections, refunds and receipts. The generic
machinery (scope, guard, transition with history, payments) is `app.claims.steps`."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import date, datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.auth.principal import Principal
from app.claims import deadlines, steps
from app.claims import repository as repo
from app.claims.steps import DocumentsMissing, InvalidStepDate, NotCompensated, Outcome
from app.claims.workflow import StepContext
from app.errors import Conflict, RoleNotAllowed, Unprocessable, Violation, refusal
from app.evaluations.service import quarter_end
from app.kit.money import format_fen
from app.ledger import service as ledger
from app.ledger.capital import paid_in_total
from app.ledger.postings import LegSpec, credit, debit
from app.loans.servicing import Position
from app.models import (
    Agreement,
    Claim,
    ClaimClawback,
    ClaimReceipt,
    ClaimRecovery,
    Enterprise,
    Fund,
    Loan,
)
from app.programs.common import recovery_return
from app.programs.xinbao import claims as rules
from app.programs.xinbao import limits
from app.programs.xinbao.policy import BASE_SUB_FUND, CLAIMS, LIMITS, POOL
from app.reference.service import change_agreement_status, set_fund_status

PROGRAM_CODE = "XB"


class UnknownFinding(Unprocessable):
    """A due-diligence finding that is not one of XB-N1…XB-N9."""

    code, rule = "unknown_finding", "XB-N"
    title, title_zh = "Unknown finding", "未知的不予补偿情形"


class FindingsBarCompensation(Unprocessable):
    """XB-N1…N9: a finding of the manager's due-diligence review means no compensation:
    the manager cannot recommend paying with a finding, and the committee cannot approve
    a claim the review found barred. Each error's `rule` is the finding."""

    code = "findings_bar_compensation"
    title, title_zh = "A finding bars compensation", "存在不予补偿情形"


class NothingToRefund(Conflict):
    """XB-R2: the claim's compensation has been returned in full; there is nothing left
    to refund."""

    code, rule = "nothing_to_refund", "XB-R2"
    title, title_zh = "Nothing left to refund", "补偿资金已全部返还"


class ReceiptExceedsReceivable(Unprocessable):
    """The amount received is more than the bank owes the fund on the claim (XB-R1
    distributions and XB-R2 refunds not yet received)."""

    code = "receipt_exceeds_receivable"
    title, title_zh = "More than the bank owes", "收款金额超过银行应返还金额"


# what the refunds and receipts after payment may answer
CLAWBACK_REFUSALS = (RoleNotAllowed, NotCompensated, InvalidStepDate, NothingToRefund)
RECEIPT_REFUSALS = (RoleNotAllowed, NotCompensated, InvalidStepDate, ReceiptExceedsReceivable)


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
    """XB-C1: ≥ 45 days past due, sued and accepted by the court. The loss is the unpaid
    principal, shared per the sub-fund's XB-S1 ratios frozen on the loan at filing."""
    problems = rules.check_claim(
        rules.ClaimFacts(
            loan_status=loan.status,
            compensable=loan.compensable,
            outstanding_fen=position.outstanding_fen,
            days_past_due=position.days_past_due,
            lawsuit_case_no=lawsuit_case_no,
            lawsuit_accepted_on=lawsuit_accepted_on,
        )
    )
    if problems:  # the first rule's code, every rule in errors
        raise refusal(
            problems,
            f"the claim breaks {len(problems)} rule(s): "
            + ", ".join(f"{v.rule} {v.code}" for v in problems),
        )
    shares = rules.loss_shares(position.outstanding_fen, loan.extra.get("ratios_bp", {}))
    enterprise = session.get(Enterprise, loan.enterprise_id)
    assert enterprise is not None
    return Claim(
        program=loan.program,
        loan_id=loan.id,
        bank_code=loan.bank_code,
        product=None,
        city_fund_code=None,
        fund_code=loan.fund_code or BASE_SUB_FUND,  # XB-Q1 counts it under its sub-fund
        region_code=enterprise.region_code,
        status="submitted",
        filed_on=today,
        days_past_due=position.days_past_due,
        loss_fen=position.outstanding_fen,
        requested_fen=shares["fund"],
        shares=shares,
        returned_fen=0,
        lawsuit_case_no=lawsuit_case_no,
        lawsuit_accepted_on=lawsuit_accepted_on,
        deadlines={},
        findings=[],
        filed_by_id=actor.user_id,
    )


# --- rules the transitions run ---------------------------------------------------------
def documents_present(ctx: StepContext) -> list[Violation]:
    """XB-C1: the manager reviews a claim with every required document."""
    kinds = {d.kind for d in repo.documents(ctx.session, [ctx.claim.id])[ctx.claim.id]}
    return [
        replace(
            DocumentsMissing.violation(
                f"the {kind.replace('_', ' ')} document is missing", "documents"
            ),
            rule="XB-C1",
        )
        for kind in CLAIMS.required_documents
        if kind not in kinds
    ]


def known_findings(ctx: StepContext) -> list[Violation]:
    unknown = rules.unknown_findings(list(ctx.step.findings))
    if not unknown:
        return []
    return [UnknownFinding.violation(f"unknown findings: {', '.join(unknown)}", "body", "findings")]


def recommendation_agrees(ctx: StepContext) -> list[Violation]:
    """XB-N: a finding means no compensation, so it cannot come with a recommendation to
    pay."""
    if not (ctx.step.approve and ctx.step.findings):
        return []
    return [
        replace(
            FindingsBarCompensation.violation(
                "a finding (XB-N1…N9) means no compensation: recommend rejection",
                "body",
                "decision",
            ),
            rule=ctx.step.findings[0],
        )
    ]


def findings_bar(ctx: StepContext) -> list[Violation]:
    """XB-N: the committee approves nothing the manager's review found barred."""
    return [
        replace(
            FindingsBarCompensation.violation(f"{f}: {rules.FINDINGS[f]}", "body", "decision"),
            rule=f,
        )
        for f in ctx.claim.findings or []
    ]


def manager_review(ctx: StepContext) -> None:
    """XB-C2 尽职审查: the manager's written opinion with any XB-N findings."""
    claim, findings = ctx.claim, list(ctx.step.findings)

    def work() -> Outcome:
        claim.findings = sorted(set(findings))
        claim.opinion = ctx.step.opinion
        verdict = "recommend compensation" if ctx.step.approve else "recommend rejection"
        note = f"{verdict}: {ctx.step.opinion}".strip() + steps.after_deadline(
            claim, "manager_opinion", ctx.today
        )
        return Outcome("manager_review", note)

    steps.transition(ctx, "manager_review", work=work)


@dataclass(frozen=True)
class LimitStatus:
    limit: rules.BankLimit
    year_used_fen: int

    @property
    def limit_fen(self) -> int:
        return self.limit.limit_fen()


def last_quarter_end(on: date) -> date:
    """The most recent quarter end strictly before `on`."""
    q = (on.month - 1) // 3  # quarters completed this year
    return quarter_end(on.year, q) if q else quarter_end(on.year - 1, 4)


def bank_limit(
    session: Session, bank_code: str, on: date, fund_code: str = BASE_SUB_FUND
) -> rules.BankLimit:
    """XB-Q1 figures for the bank's business under one sub-fund (default the base
    助企成长贷) on `on`: the basis at the last quarter end — stored by the XB quarter-end
    evaluation, computed only when none is stored — and the compensation approved under
    that sub-fund in the calendar year so far."""
    return limits.bank_limit(session, bank_code, fund_code, last_quarter_end(on), on)


def bank_limits(
    session: Session, bank_code: str, on: date, fund_codes: list[str]
) -> dict[str, rules.BankLimit]:
    """`bank_limit` for each of the bank's sub-funds `fund_codes`, read together."""
    return limits.bank_limits(session, bank_code, fund_codes, last_quarter_end(on), on)


def compensated_total(session: Session) -> int:
    total = session.scalar(
        select(func.coalesce(func.sum(Claim.approved_fen), 0)).where(
            Claim.program == PROGRAM_CODE, Claim.approved_fen.is_not(None)
        )
    )
    return int(total or 0)


def committee_decision(ctx: StepContext) -> None:
    """XB-C2 会审. Approval pays the fund's share up to the bank's annual limit under the
    claim's sub-fund (XB-Q1, decided under the bank's and the pool's row locks); the
    excess is the bank's, the guarantor still owes its ratio. At the sub-fund's warning
    share of the limit the bank is warned, at 100 % its agreement with that sub-fund is
    suspended (its other sub-funds' business goes on); at 50 % of the fund's capital all
    new business stops (XB-Q2)."""
    if ctx.step.approve is not True:
        steps.reject(ctx, "committee_reject")
        return
    claim, session, actor, today = ctx.claim, ctx.session, ctx.actor, ctx.today
    loan = session.get(Loan, claim.loan_id)
    assert loan is not None

    def work() -> Outcome:
        repo.lock_bank(session, claim.bank_code)
        repo.lock_fund(session, POOL)
        fund_code = claim.fund_code or BASE_SUB_FUND
        limit = bank_limit(session, claim.bank_code, today, fund_code)
        approved, shares, capped_by = rules.approve(claim.shares, limit)
        used_after = limit.used_fen + approved
        warning = limit.warning(used_after)
        reached = limit.reached(used_after)
        claim.approved_fen, claim.approved_shares = approved, shares
        claim.approved_on, claim.capped_by = today, capped_by
        repo.record_shares(session, claim.id, "approved", shares)
        deadlines.set_deadline(session, claim, "payment")  # XB-C2: 20 working days
        legs = _approval_legs(claim, shares) + steps.exposure_release_legs(loan, claim.loss_fen)
        entries = steps.approval_posting(
            claim,
            legs,
            approved_fen=approved,
            capped_by=capped_by,
            label="XB claim",
            today=today,
        )
        notes = [ctx.step.comment] if ctx.step.comment else []
        if capped_by:
            notes.append(
                f"capped by XB-Q1: the bank bears {format_fen(claim.requested_fen - approved)} "
                "of the fund's share"
            )
        suspended: list[int] = []
        if reached:
            for agreement in session.scalars(
                select(Agreement).where(
                    Agreement.bank_code == claim.bank_code,
                    Agreement.program == PROGRAM_CODE,
                    Agreement.fund_code == fund_code,
                    Agreement.status == "active",
                )
            ):
                change_agreement_status(
                    session,
                    agreement_id=agreement.id,
                    action="suspend",
                    reason=f"XB-Q1 annual compensation limit {format_fen(limit.limit_fen())} "
                    f"under {fund_code} reached ({format_fen(used_after)} in {today.year})",
                    actor=actor,
                )
                suspended.append(agreement.id)
            notes.append(
                f"XB-Q1: the annual limit under {fund_code} is reached; the bank's {fund_code} "
                "business is suspended"
            )
        elif warning:
            notes.append(
                f"XB-Q1 risk warning: {limits.percent(limit.policy.warning_share_bp)} of the "
                f"bank's annual limit under {fund_code} is used"
            )
        stopped = _maybe_stop_fund(session, actor, approved)
        if stopped:
            notes.append(
                f"XB-Q2: compensation reached {limits.percent(LIMITS.fund_stop_share_bp)} of "
                "the fund's capital; new business stops"
            )
        claim.cap_detail = {
            "rule": "XB-Q1",
            "fund_code": fund_code,
            "basis_source": "evaluation" if limit.evaluation_id is not None else "computed",
            "evaluation_id": limit.evaluation_id,
            "limit_rate_bp": limit.policy.bank_limit_bp,
            "warning_share_bp": limit.policy.warning_share_bp,
            "quarter_end": limit.quarter_end.isoformat(),
            "outstanding_at_quarter_end": format_fen(limit.outstanding_fen),
            "annual_limit": format_fen(limit.limit_fen()),
            "warning_at": format_fen(limit.warning_fen()),
            "used_before": format_fen(limit.used_fen),
            "used_after": format_fen(used_after),
            "headroom_before": format_fen(limit.headroom_fen()),
            "warning": warning,
            "suspended_agreement_ids": suspended,
            "fund_stopped": stopped,
        }
        action = "committee_approve" if approved > 0 else "committee_approve_nil"
        return Outcome(action, "; ".join(notes), entries)

    steps.transition(ctx, "committee_approve", work=work)
    steps.set_loan_status(ctx, loan, "compensate", reason=f"claim {claim.id} approved")
    session.flush()


def _maybe_stop_fund(session: Session, actor: Principal, approved: int) -> bool:
    pool = session.get(Fund, POOL)
    if pool is None or pool.status == "stopped" or not approved:
        return False
    total = compensated_total(session)
    capital = paid_in_total(session, POOL, as_of=None)
    if not rules.fund_stop_reached(total, capital):
        return False
    share = limits.percent(LIMITS.fund_stop_share_bp)
    reason = (
        f"XB-Q2: compensation {format_fen(total)} reached {share} of capital {format_fen(capital)}"
    )
    set_fund_status(session, pool, "stop", reason=reason, actor=actor)
    return True


def _approval_legs(claim: Claim, shares: dict[str, int]) -> list[LegSpec]:
    bank = claim.bank_code
    legs = []
    if shares["fund"]:
        legs += [
            debit(POOL, "compensation_expense", shares["fund"], bank),
            credit(POOL, "payable_bank", shares["fund"], bank),
        ]
    if shares["guarantor"]:  # the guarantor's part is its obligation to the bank (memo)
        legs += [
            debit(POOL, "guarantor_obligation_memo", shares["guarantor"], bank),
            credit(POOL, "guarantor_obligation_contra", shares["guarantor"], bank),
        ]
    return legs


def payment(ctx: StepContext) -> None:
    """XB-C2: the fund manager pays the approved amount from the pool's cash, within 20
    working days of the approval (a late payment is noted)."""
    steps.pay_bank(ctx, payer=POOL, action="pay", event_type="claim.payment")


# --- after payment: XB-R1 distributions, XB-R2 refunds, receipts ----------------------
def _paid_claim(session: Session, claim_id: int, actor: Principal) -> Claim:
    claim = steps.claim_for_step(session, claim_id, actor)
    if claim.program != PROGRAM_CODE or claim.status != "paid":
        raise NotCompensated(
            f"claim {claim.id} is {claim.program} {claim.status}; this applies to paid "
            f"{PROGRAM_CODE} claims",
            [NotCompensated.violation(f"claim status is {claim.status}", "status")],
        )
    return claim


def owed(
    recoveries: list[ClaimRecovery], clawbacks: list[ClaimClawback], receipts: list[ClaimReceipt]
) -> int:
    """What the bank still owes the fund on a claim: distributions (XB-R1) and refunds
    (XB-R2) less what was received."""
    due = sum(r.returned_fen for r in recoveries) + sum(c.amount_fen for c in clawbacks)
    return due - sum(r.amount_fen for r in receipts)


def receivable(session: Session, claim_id: int) -> int:
    ids = [claim_id]
    return owed(
        repo.recoveries(session, ids)[claim_id],
        repo.clawbacks(session, ids)[claim_id],
        repo.receipts(session, ids)[claim_id],
    )


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
    """XB-R1: collections less costs, at the fund's ratio of the loss, are due to the fund
    within 10 working days: a receivable from the bank until received."""
    paid = int(claim.approved_fen or 0)
    returned = recovery_return(
        net_fen=amount_fen - costs_fen,
        loss_fen=claim.loss_fen,
        paid_fen=paid,
        returned_fen=claim.returned_fen,
    )
    due = deadlines.recovery_due(session, recovered_on, CLAIMS.recovery_working_days)  # XB-R1
    recovery = ClaimRecovery(
        claim_id=claim.id,
        recovered_on=recovered_on,
        amount_fen=amount_fen,
        costs_fen=costs_fen,
        returned_fen=returned,
        returned_shares={"fund": returned},
        due_on=due.on,
        due_on_provisional=due.provisional,
        recorded_by_id=actor.user_id,
    )
    number = len(repo.recoveries(session, [claim.id])[claim.id]) + 1
    claim.returned_fen += returned
    session.flush()  # every other change first: the ledger's chain head is the last lock
    recovery.ledger_entry_ids = (
        [
            ledger.post(
                session,
                event_type="claim.recovery",
                event_id=str(claim.id),
                idempotency_key=f"claim:{claim.id}:recovery:{number}",
                business_date=recovered_on,
                legs=[
                    debit(POOL, "receivable_bank", returned, claim.bank_code),
                    credit(POOL, "recovery_income", returned, claim.bank_code),
                ],
                now=now,
                actor_id=actor.user_id,
                description=f"XB claim {claim.id}: {format_fen(returned)} of a "
                f"{format_fen(amount_fen)} collection is due to the fund by "
                f"{recovery.due_on}",
            ).id
        ]
        if returned
        else []
    )
    session.add(recovery)
    session.flush()
    return recovery


def clawback(
    session: Session,
    *,
    claim_id: int,
    kind: str,
    reason: str,
    decided_on: date,
    actor: Principal,
    today: date,
    now: datetime,
) -> ClaimClawback:
    """XB-R2. Abandonment (the fund manager): the bank refunds that claim's compensation
    not yet returned. Fraud or NPL substitution (the committee): the same, at once, and
    the bank's XB agreements are terminated."""
    role = "fund_manager" if kind == "abandonment" else "committee"
    if actor.role != role:
        raise RoleNotAllowed(f"the {kind} refund is decided by the {role}")
    claim = _paid_claim(session, claim_id, actor)
    steps.dated(decided_on, not_before=claim.paid_on, today=today, field="decided_on")
    amount = int(claim.approved_fen or 0) - claim.returned_fen
    if amount <= 0:
        raise NothingToRefund(f"claim {claim.id}'s compensation has been returned in full")
    claim.returned_fen += amount
    if kind == "fraud":
        for agreement in session.scalars(
            select(Agreement).where(
                Agreement.bank_code == claim.bank_code,
                Agreement.program == PROGRAM_CODE,
                Agreement.status.in_(("active", "suspended")),
            )
        ):
            change_agreement_status(
                session,
                agreement_id=agreement.id,
                action="terminate",
                reason=f"XB-R2 fraud / NPL substitution on claim {claim.id}: {reason}",
                actor=actor,
            )
    session.flush()  # every other change first: the ledger's chain head is the last lock
    entry = ledger.post(
        session,
        event_type=f"claim.{kind}_refund",
        event_id=str(claim.id),
        idempotency_key=f"claim:{claim.id}:clawback:{kind}",
        business_date=decided_on,
        legs=[
            debit(POOL, "receivable_bank", amount, claim.bank_code),
            credit(POOL, "compensation_refunds", amount, claim.bank_code),
        ],
        now=now,
        actor_id=actor.user_id,
        description=f"XB-R2 {kind}: {claim.bank_code} refunds {format_fen(amount)} of claim "
        f"{claim.id}",
    )
    row = ClaimClawback(
        claim_id=claim.id,
        kind=kind,
        amount_fen=amount,
        decided_on=decided_on,
        reason=reason,
        actor_id=actor.user_id,
        ledger_entry_ids=[entry.id],
    )
    session.add(row)
    session.flush()
    return row


def receive(
    session: Session,
    *,
    claim_id: int,
    received_on: date,
    amount_fen: int,
    actor: Principal,
    today: date,
    now: datetime,
) -> ClaimReceipt:
    """The fund manager records money received from the bank against the claim's
    receivable (XB-R1 distributions, XB-R2 refunds)."""
    if actor.role != "fund_manager":
        raise RoleNotAllowed("receipts are recorded by the fund manager")
    claim = _paid_claim(session, claim_id, actor)
    steps.dated(received_on, not_before=claim.paid_on, today=today, field="received_on")
    owed = receivable(session, claim.id)
    if amount_fen > owed:
        raise ReceiptExceedsReceivable(
            f"the bank owes {format_fen(owed)} on claim {claim.id}",
            [ReceiptExceedsReceivable.violation(f"at most {format_fen(owed)}", "body", "amount")],
        )
    number = len(repo.receipts(session, [claim.id])[claim.id]) + 1
    entry = ledger.post(
        session,
        event_type="claim.receipt",
        event_id=str(claim.id),
        idempotency_key=f"claim:{claim.id}:receipt:{number}",
        business_date=received_on,
        legs=[
            debit(POOL, "cash", amount_fen),
            credit(POOL, "receivable_bank", amount_fen, claim.bank_code),
        ],
        now=now,
        actor_id=actor.user_id,
        description=f"XB claim {claim.id}: {format_fen(amount_fen)} received from "
        f"{claim.bank_code}",
    )
    row = ClaimReceipt(
        claim_id=claim.id,
        received_on=received_on,
        amount_fen=amount_fen,
        actor_id=actor.user_id,
        ledger_entry_ids=[entry.id],
    )
    session.add(row)
    session.flush()
    return row
