"""信保基金 as a `Program`: its policy, filing (sub-funds, guarantor consent), exposure on the
pool, the claim workflow, collections and refunds after payment, the quarter-end limit
basis (XB-Q1), the bank's exposure view and the fund's leverage (XB-F1)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime
from typing import Any

from sqlalchemy import ColumnElement
from sqlalchemy.orm import Session

from app.auth.principal import Principal
from app.claims.schemas import XbExposureOut, XbLimitOut
from app.claims.workflow import Workflow
from app.errors import AppError
from app.evaluations.service import bank_ratios, suspended_agreements
from app.ledger.service import EntrySpec
from app.loans import service as filing
from app.loans.delinquency import bank_buckets
from app.loans.lookups import FilingLookups
from app.loans.schemas import LoanFile
from app.models import (
    Claim,
    Fund,
    Loan,
    QuarterEvaluation,
)
from app.programs.base import Program, ProgramBase, ProgramPolicy
from app.programs.xinbao import annual, claim_steps, limits, report
from app.programs.xinbao.claims import BankLimit, loss_shares
from app.programs.xinbao.filing import FILING_REFUSALS, FilingFacts, check_filing
from app.programs.xinbao.policy import (
    BASE_SUB_FUND,
    CLAIMS,
    LEVERAGE_TARGET,
    NPL,
    POOL,
    PROGRAM_POLICY,
    SUB_FUND_LIMIT_KEYS,
)
from app.programs.xinbao.workflow import WORKFLOW
from app.reports.quarterly import QuarterlyPart, under_review

# XB-E2: the enterprise's risk flags the filing rules read
ENTERPRISE_FLAGS = (
    "overdue_loans_elsewhere",
    "controller_overdue_loans",
    "malicious_default_blacklist",
    "last_malicious_overdue_on",
)


class Xinbao(ProgramBase):
    policy: ProgramPolicy = PROGRAM_POLICY
    workflow: Workflow = WORKFLOW
    recovery_due_working_days = CLAIMS.recovery_working_days  # XB-R1
    quarter_end_role = "fund_manager"  # XB-Q1, 第十六条 “基金管理人”
    quarter_end_rule = "XB-Q1"
    # the fields a filing may carry only under this programme
    filing_fields = frozenset({"sub_fund"})
    # what its rules refuse, by operation (app.programs.base.declared_refusals)
    refusals: Mapping[str, tuple[type[AppError], ...]] = {"file_loan": FILING_REFUSALS}

    def check_fund_params(self, params: dict[str, Any]) -> None:
        """XB-Q1 settings of a sub-fund, when given: known keys, whole basis points."""
        limits = params.get("limits")
        if limits is None:
            return
        if not isinstance(limits, dict) or not set(limits) <= set(SUB_FUND_LIMIT_KEYS):
            raise ValueError(f"limits takes only {', '.join(SUB_FUND_LIMIT_KEYS)}")
        for key, value in limits.items():
            if type(value) is not int or not 0 <= value <= 10_000:
                raise ValueError(f"limits.{key} is whole basis points, 0…10000")

    # --- filing -------------------------------------------------------------------
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
        """XB-E1, E2, P1, F2: refusals list every rule; a credit loan filed late is
        accepted but not compensable (XB-N7), a guaranteed one needs the guarantor's
        consent letter instead and is never late (XB-F2); exposure = principal × the
        sub-fund's fund ratio (XB-S1). In a batch the loan is returned unflushed and its
        exposure is left to the batch."""
        lk = lookups
        bank, enterprise = filing.bank_and_enterprise(lk, data, principal)
        sub_code = data.sub_fund or BASE_SUB_FUND
        sub_fund = lk.fund(sub_code)
        known = (
            sub_fund is not None and sub_fund.program == self.code and sub_fund.kind == "sub_fund"
        )
        agreement = lk.agreement(sub_code, data.disbursed_on) if known else None
        pool = lk.fund(POOL)
        deadline = lk.deadline(data.disbursed_on)
        consent = data.guarantor_consent  # XB-F2
        decision = check_filing(
            FilingFacts(
                principal_fen=data.principal,
                annual_rate_bp=data.annual_rate_bp,
                fee_rate_bp=data.fee_rate_bp,
                disbursed_on=data.disbursed_on,
                maturity_on=data.maturity_on,
                security=data.security,
                guarantor=data.guarantor,
                controller_guarantee=data.controller_guarantee,
                today=today,
                filing_deadline=deadline.on,
                filing_deadline_provisional=deadline.provisional,
                lpr_bp=lk.lpr_bp(data.disbursed_on),
                region_code=enterprise.region_code,
                registered_on=enterprise.registered_on,
                outstanding_fen=lk.outstanding(enterprise.id),
                last_compensation_on=lk.last_compensation_on(enterprise.id),
                enterprise_flags={k: getattr(enterprise, k) for k in ENTERPRISE_FLAGS},
                agreement_status=agreement.status if agreement else None,
                sub_fund_known=known,
                fund_stopped=pool is not None and pool.status == "stopped",
                guarantor_consent_ref=consent.reference if consent else None,
                guarantor_consent_on=consent.dated_on if consent else None,
                overdue_in_books=lk.overdue_in_books(enterprise, today),  # XB-N2
            )
        )
        if decision.violations:
            raise filing.refuse(decision.violations)
        assert agreement is not None and sub_fund is not None
        ratios = sub_fund.params.get("ratios_bp", {}).get(data.security, {})
        loan = filing.new_loan(
            data,
            bank=bank,
            agreement_id=agreement.id,
            enterprise_id=enterprise.id,
            principal=principal,
            today=today,
            deadline=deadline,
            product=None,
            filed_late=decision.filed_late,
            flags=decision.flags,
            extra={"sub_fund": sub_code, "ratios_bp": dict(ratios)},
        )
        lk.accepted(loan)
        if not batch:
            session.add(loan)
            session.flush()
            filing.post_exposure(session, loan, now=now, actor_id=principal.user_id, into=exposures)
        return loan  # in a batch: not yet inserted (the batch inserts its loans together)

    def exposure_parts(self, loan: Loan, principal_fen: int) -> list[tuple[str, int]]:
        """XB-S1: the pool carries the sub-fund's fund share."""
        return [(POOL, loss_shares(principal_fen, loan.extra.get("ratios_bp", {}))["fund"])]

    # --- claims -------------------------------------------------------------------
    new_claim = staticmethod(claim_steps.new_claim)

    def claim_scope(self, principal: Principal) -> ColumnElement[bool] | None:
        """The pool's manager sees every XB claim."""
        if principal.fund_code == POOL:
            return Claim.program == self.code
        return None

    record_recovery = staticmethod(claim_steps.record_recovery)

    receivable = staticmethod(claim_steps.owed)

    clawback = staticmethod(claim_steps.clawback)

    receive = staticmethod(claim_steps.receive)

    # --- the annual evaluation (XB-Rep) ------------------------------------------------
    annual_report = staticmethod(annual.annual_report)

    # --- quarter end, views -----------------------------------------------------------
    def evaluate_quarter(
        self, session: Session, run: QuarterEvaluation, *, actor: Principal, today: date
    ) -> None:
        """XB-Q1: per bank and sub-fund, the limit basis and its use."""
        limits.evaluate(session, run, today=today)

    def exposure(self, session: Session, bank_code: str, *, on: date) -> XbExposureOut:
        """XB-Q1 per sub-fund; `limit` is the base sub-fund's (the contract's first
        field)."""
        waiting = under_review(session, self.code, on, bank_code=bank_code)
        codes = limits.sub_funds_of(session, bank_code) or [BASE_SUB_FUND]
        found = claim_steps.bank_limits(session, bank_code, on, [*codes, BASE_SUB_FUND])
        sub_funds = [_limit_out(session, bank_code, found[code], waiting) for code in codes]
        base = next((x for x in sub_funds if x.fund_code == BASE_SUB_FUND), None)
        now_at = bank_ratios(session, self.code, on, NPL, bank_code=bank_code).get(bank_code)
        suspended = suspended_agreements(session, bank_code, self.code)
        pool = session.get(Fund, POOL)
        return XbExposureOut(
            bank_code=bank_code,
            program=self.code,
            as_of=on,
            outstanding_principal=now_at.outstanding_fen if now_at else 0,
            limit=base or _limit_out(session, bank_code, found[BASE_SUB_FUND], waiting),
            sub_funds=sub_funds,
            fund_stopped=pool is not None and pool.status == "stopped",
            suspended=bool(suspended),
            suspended_agreement_ids=suspended,
            delinquency_buckets=bank_buckets(session, self.code, bank_code, on),  # M-6
        )

    # --- the quarterly report -----------------------------------------------------------
    def quarterly_report(self) -> QuarterlyPart:
        """Products, the NPL line, caps or limits, fund figures, ledger lines."""
        return report.PART

    def fund_leverage(self, session: Session, fund: Fund, *, on: date) -> tuple[int, int] | None:
        """XB-F1: loans under the pool against its net value (target 10 ×)."""
        if fund.program != self.code or fund.kind != "pool":
            return None
        ratios = bank_ratios(session, self.code, on, NPL)
        return sum(r.outstanding_fen for r in ratios.values()), LEVERAGE_TARGET


def _limit_out(
    session: Session,
    bank_code: str,
    limit: BankLimit,
    waiting_by_fund: Mapping[tuple[str, str], int],
) -> XbLimitOut:
    """One sub-fund's limit (`claim_steps.bank_limits`); `waiting_by_fund` is the bank's
    claims under review per (bank, fund) (`under_review`), read once for all its
    sub-funds."""
    fund_code = limit.fund_code
    suspended = limits.suspended_agreements(session, bank_code, fund_code)
    waiting = waiting_by_fund.get((bank_code, fund_code), 0)
    return XbLimitOut(
        quarter_end=limit.quarter_end,
        outstanding_at_quarter_end=limit.outstanding_fen,
        annual_limit=limit.limit_fen(),
        warning_at=limit.warning_fen(),
        used=limit.used_fen,
        headroom=limit.headroom_fen(),
        under_review=waiting,
        headroom_if_all_approved=max(limit.headroom_fen() - waiting, 0),
        warning=limit.warning(),
        limit_reached=limit.reached(),
        fund_code=fund_code,
        basis_source="evaluation" if limit.evaluation_id is not None else "computed",
        evaluation_id=limit.evaluation_id,
        limit_rate_bp=limit.policy.bank_limit_bp,
        warning_share_bp=limit.policy.warning_share_bp,
        suspended=bool(suspended),
        suspended_agreement_ids=suspended,
    )


PROGRAM: Program = Xinbao()  # mypy checks it against the protocol
