"""A third programme, defined here and nowhere in `app/`: 苏贸贷 (SMD, a test edition).

It proves the seam (ARCHITECTURE style 8): a programme is a `Program` registered with the
registry, and `app/loans/`, `app/claims/` and `app/ledger/` run it unchanged. Its terms:

- SMD-P1: principal at most 5,000,000.00; SMD-P2: a term of at most 24 months.
- SMD-F1: the bank's agreement with the province fund is active on the disbursement date;
  SMD-F2: filed within 5 working days of disbursement (else refused).
- SMD-S1: three parties share a loss: the province fund 40 %, the city fund 30 %, the bank
  30 %; each fund carries its share as guarantee exposure.
- SMD-C1: a claim once principal is ≥ 60 days past due; one review stage (the committee)
  which needs a document, then one payment stage (the province fund's manager), each
  fund paying its own part from its own cash.
- SMD-R1: a recovery less costs, at the paid ratio of the loss, goes back to each fund by
  its approved part, in cash at once.

Its refusals are the service's own error classes (each owns a code the API documents),
under SMD's rule IDs: a plug-in names its rules, not new codes."""

from __future__ import annotations

from dataclasses import replace
from datetime import date, datetime

from sqlalchemy import ColumnElement
from sqlalchemy.orm import Session

from app.auth.principal import Principal
from app.claims import repository as claims_repo
from app.claims import steps
from app.claims.steps import DocumentsMissing, InsufficientFunds, InvalidStepDate, Outcome
from app.claims.workflow import Stage, StepContext, TransitionRule, Workflow
from app.errors import AppError, Violation, refusal
from app.kit.allocation import allocate
from app.kit.money import format_fen
from app.kit.statemachine import Transition
from app.ledger import service as ledger
from app.ledger.postings import credit, debit
from app.ledger.service import EntrySpec
from app.loans import repository as loans_repo
from app.loans import service as filing
from app.loans.lookups import FilingLookups
from app.loans.schemas import LoanFile
from app.loans.servicing import Position
from app.models import Claim, ClaimRecovery, Enterprise, Loan, QuarterEvaluation
from app.programs.base import Program, ProgramBase, ProgramPolicy
from app.programs.common import (
    CLAIM_REFUSALS,
    NoAgreement,
    NothingOutstanding,
    NotYetClaimable,
    TermTooLong,
    recovery_return,
)
from app.programs.sukedai.filing import FilingDeadlinePassed, PrincipalAboveMax

CODE = "SMD"
PROVINCE_FUND, CITY_FUND = "SMD_PROV", "SMD_CITY"
POLICY = ProgramPolicy(
    code=CODE,
    name_zh="苏贸贷（测试）",
    name_en="Su Mao Dai (a test programme)",
    agreement_term_months=24,
    agreement_authority_role="committee",
    filing_deadline_working_days=5,  # SMD-F2
)
MAX_PRINCIPAL_FEN = 5_000_000_00  # SMD-P1
MAX_TERM_DAYS = 731  # SMD-P2: 24 months
SHARES_BP = (("province", 4_000), ("city", 3_000), ("bank", 3_000))  # SMD-S1
FUND_OF = {"province": PROVINCE_FUND, "city": CITY_FUND}
CLAIM_DAYS_PAST_DUE = 60  # SMD-C1


def loss_shares(loss_fen: int) -> dict[str, int]:
    return allocate(loss_fen, list(SHARES_BP))


# --- filing rules, each tagged with its rule ID ------------------------------------------
def _violation(rule: str, error: type[AppError], msg: str, field: str) -> Violation:
    return replace(error.violation(msg, "body", field), rule=rule)


def check_filing(
    data: LoanFile, *, agreement_status: str | None, deadline: date, today: date
) -> list[Violation]:
    found = []
    if data.principal > MAX_PRINCIPAL_FEN:
        found.append(
            _violation(
                "SMD-P1",
                PrincipalAboveMax,
                f"at most {format_fen(MAX_PRINCIPAL_FEN)}",
                "principal",
            )
        )
    if (data.maturity_on - data.disbursed_on).days > MAX_TERM_DAYS:
        found.append(_violation("SMD-P2", TermTooLong, "at most 24 months", "maturity_on"))
    if agreement_status != "active":
        found.append(
            _violation("SMD-F1", NoAgreement, "no active agreement on that date", "disbursed_on")
        )
    if today > deadline:
        found.append(
            _violation(
                "SMD-F2",
                FilingDeadlinePassed,
                f"filed after {deadline.isoformat()} ({POLICY.filing_deadline_working_days} "
                "working days)",
                "disbursed_on",
            )
        )
    return found


# --- the claim workflow ------------------------------------------------------------------
def documents_present(ctx: StepContext) -> list[Violation]:
    if claims_repo.documents(ctx.session, [ctx.claim.id])[ctx.claim.id]:
        return []
    return [replace(DocumentsMissing.violation("no document", "documents"), rule="SMD-C1")]


def review(ctx: StepContext) -> None:
    if ctx.step.approve is not True:
        steps.reject(ctx, "reject")
        return
    claim, session = ctx.claim, ctx.session
    loan = loans_repo.loan_for_update(session, claim.loan_id)
    assert loan is not None

    def work() -> Outcome:
        approved = {party: claim.shares[party] for party in FUND_OF}
        claim.approved_fen = sum(approved.values())
        approved["bank"] = claim.shares["bank"]
        claim.approved_shares = approved
        claim.approved_on = ctx.today
        claims_repo.record_shares(session, claim.id, "approved", approved)
        legs = []
        for party, fund in FUND_OF.items():
            legs += [
                debit(fund, "compensation_expense", approved[party], claim.bank_code),
                credit(fund, "payable_bank", approved[party], claim.bank_code),
            ]
        legs += steps.exposure_release_legs(loan, claim.loss_fen)
        entries = steps.approval_posting(
            claim,
            legs,
            approved_fen=claim.approved_fen,
            capped_by=None,
            label="SMD claim",
            today=ctx.today,
        )
        return Outcome("approve", ctx.step.comment, entries)

    steps.transition(ctx, "approve", work=work)
    steps.set_loan_status(ctx, loan, "compensate", reason=f"claim {claim.id} approved")


def payment(ctx: StepContext) -> None:
    claim = ctx.claim
    paid_on = ctx.step.paid_on or ctx.today

    def work() -> Outcome:
        steps.dated(paid_on, not_before=claim.approved_on, today=ctx.today, field="paid_on")
        legs = []
        for party, fund in FUND_OF.items():
            part = int((claim.approved_shares or {})[party])
            steps.check_cash(ctx.session, fund, part)
            legs += [
                debit(fund, "payable_bank", part, claim.bank_code),
                credit(fund, "cash", part),
            ]
        entry = EntrySpec(  # posted by the step's end, after every other change
            event_type="claim.payment",
            event_id=str(claim.id),
            idempotency_key=f"claim:{claim.id}:payment",
            business_date=paid_on,
            legs=legs,
            description=f"SMD claim {claim.id}: both funds pay {claim.bank_code}",
        )
        claim.paid_on = paid_on
        return Outcome("pay", ctx.step.comment, [entry])

    steps.transition(ctx, "pay", work=work, on=paid_on)


WORKFLOW = Workflow(
    transitions=[
        Transition("approve", frozenset({"submitted"}), "approved"),
        Transition("reject", frozenset({"submitted"}), "rejected"),
        Transition("pay", frozenset({"approved"}), "paid"),
    ],
    stages={
        "submitted": Stage(
            "committee_review",
            "committee",
            "the SMD committee 评审",
            "review",
            review,
            refusals=(DocumentsMissing,),
        ),
        "approved": Stage(
            "payment",
            "fund_manager",
            "the SMD province fund's manager 拨付",
            "payment",
            payment,
            acting_fund=lambda _claim: PROVINCE_FUND,
            refusals=(InvalidStepDate, InsufficientFunds),
        ),
    },
    return_rule="SMD-C1",
    deficiencies={"missing_document": ("缺少材料", "a document is missing")},
    labels={
        "approved": ("评审通过，待拨付", "approved, waiting for payment"),
        "paid": ("已拨付，办结", "paid"),
    },
    rules={"approve": (TransitionRule("SMD-C1", documents_present),)},
    refusals={"file_claim": CLAIM_REFUSALS},
)


class SuMaoDai(ProgramBase):
    policy = POLICY
    workflow = WORKFLOW
    quarter_end_role = "committee"
    quarter_end_rule = "SMD-Q1"

    def file_loan(
        self,
        session: Session,
        *,
        data: LoanFile,
        principal: Principal,
        today: date,
        now: datetime,
        lookups: FilingLookups,
        exposures: list[EntrySpec] | None,
        batch: bool,
    ) -> Loan:
        bank, enterprise = filing.bank_and_enterprise(lookups, data, principal)
        agreement = lookups.agreement(PROVINCE_FUND, data.disbursed_on)
        deadline = lookups.deadline(data.disbursed_on)
        problems = check_filing(
            data,
            agreement_status=agreement.status if agreement else None,
            deadline=deadline.on,
            today=today,
        )
        if problems:
            raise filing.refuse(problems)
        assert agreement is not None
        loan = filing.new_loan(
            data,
            bank=bank,
            agreement_id=agreement.id,
            enterprise_id=enterprise.id,
            principal=principal,
            today=today,
            deadline=deadline,
            product="SMD1",
            filed_late=False,
            flags=[],
            extra={"city_fund": CITY_FUND},
        )
        session.add(loan)
        session.flush()
        lookups.accepted(loan)
        filing.post_exposure(session, loan, now=now, actor_id=principal.user_id, into=exposures)
        return loan

    def exposure_parts(self, loan: Loan, principal_fen: int) -> list[tuple[str, int]]:
        shares = loss_shares(principal_fen)
        return [(fund, shares[party]) for party, fund in FUND_OF.items()]

    def new_claim(
        self,
        session: Session,
        *,
        loan: Loan,
        position: Position,
        lawsuit_case_no: str | None,
        lawsuit_accepted_on: date | None,
        actor: Principal,
        today: date,
    ) -> Claim:
        problems = []
        if position.outstanding_fen <= 0:
            problems.append(NothingOutstanding.violation("nothing is owed", "body", "loan_id"))
        if position.days_past_due < CLAIM_DAYS_PAST_DUE:
            problems.append(
                NotYetClaimable.violation(
                    f"{position.days_past_due} days past due; at least {CLAIM_DAYS_PAST_DUE}",
                    *("body", "loan_id"),
                )
            )
        if problems:
            error = refusal([replace(v, rule="SMD-C1") for v in problems], "not yet claimable")
            error.rule = "SMD-C1"
            raise error
        shares = loss_shares(position.outstanding_fen)
        enterprise = session.get(Enterprise, loan.enterprise_id)
        assert enterprise is not None
        return Claim(
            program=CODE,
            loan_id=loan.id,
            bank_code=loan.bank_code,
            product=loan.product,
            city_fund_code=CITY_FUND,
            fund_code=PROVINCE_FUND,
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

    def claim_scope(self, principal: Principal) -> ColumnElement[bool] | None:
        if principal.fund_code in (PROVINCE_FUND, CITY_FUND):
            return Claim.program == CODE
        return None

    def record_recovery(
        self,
        session: Session,
        *,
        claim: Claim,
        recovered_on: date,
        amount_fen: int,
        costs_fen: int,
        actor: Principal,
        now: datetime,
    ) -> ClaimRecovery:
        approved = claim.approved_shares or {}
        returned = recovery_return(
            net_fen=amount_fen - costs_fen,
            loss_fen=claim.loss_fen,
            paid_fen=int(claim.approved_fen or 0),
            returned_fen=claim.returned_fen,
        )
        parts = allocate(returned, [(p, approved[p]) for p in FUND_OF]) if returned else {}
        legs = []
        for party, fund in FUND_OF.items():
            if parts.get(party):
                legs += [
                    debit(fund, "cash", parts[party]),
                    credit(fund, "recovery_income", parts[party], claim.bank_code),
                ]
        number = len(claims_repo.recoveries(session, [claim.id])[claim.id]) + 1
        ids = []
        if legs:
            ids.append(
                ledger.post(
                    session,
                    event_type="claim.recovery",
                    event_id=str(claim.id),
                    idempotency_key=f"claim:{claim.id}:recovery:{number}",
                    business_date=recovered_on,
                    legs=legs,
                    now=now,
                    actor_id=actor.user_id,
                    description=f"SMD claim {claim.id}: {format_fen(returned)} returned",
                ).id
            )
        recovery = ClaimRecovery(
            claim_id=claim.id,
            recovered_on=recovered_on,
            amount_fen=amount_fen,
            costs_fen=costs_fen,
            returned_fen=returned,
            returned_shares=parts,
            recorded_by_id=actor.user_id,
            ledger_entry_ids=ids,
        )
        session.add(recovery)
        claim.returned_fen += returned
        session.flush()
        return recovery

    def evaluate_quarter(
        self, session: Session, run: QuarterEvaluation, *, actor: Principal, today: date
    ) -> None:
        """SMD has no quarter-end consequences: the run is stored with no results."""


PROGRAM: Program = SuMaoDai()
