"""苏科贷 as a `Program`: its policy, filing, exposure, claim workflow, recoveries, the
quarter-end NPL evaluation (SKD-Q3) and the bank's exposure view (SKD-Q1…Q3)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from datetime import date, datetime
from fractions import Fraction

from sqlalchemy import ColumnElement, select
from sqlalchemy.orm import Session

from app.auth.principal import Principal
from app.claims.schemas import ExemptionOut, ExposureOut, ProductExposure
from app.claims.workflow import Workflow
from app.errors import AppError, Violation
from app.evaluations.service import (
    BankRatio,
    bank_ratios,
    last_suspension_reason,
    suspended_agreements,
)
from app.ledger.service import EntrySpec
from app.loans import service as filing
from app.loans.delinquency import bank_buckets
from app.loans.lookups import FilingLookups
from app.loans.schemas import LoanFile
from app.models import (
    Agreement,
    Claim,
    Enterprise,
    Loan,
    QuarterBankResult,
    QuarterEvaluation,
)
from app.programs.base import Program, ProgramBase, ProgramPolicy
from app.programs.sukedai import annual, claim_steps, report
from app.programs.sukedai.claims import loss_shares
from app.programs.sukedai.filing import (
    FILING_REFUSALS,
    AnnualQuotaExceeded,
    FilingFacts,
    check_filing,
    quota_exceeded,
)
from app.programs.sukedai.funds import PROVINCE_FUND
from app.programs.sukedai.library import (
    LIBRARY_REFUSALS,
    Criterion,
    check_library_criteria,
    percent,
)
from app.programs.sukedai.policy import CAPS, PROGRAM_POLICY, QUARTER_END, product_by_code
from app.programs.sukedai.workflow import WORKFLOW
from app.reference.service import change_agreement_status
from app.reports.quarterly import QuarterlyPart, under_review

# SKD-F4, SKD-E1: the enterprise's risk flags the filing rules read
ENTERPRISE_FLAGS = (
    "overdue_loans_elsewhere",
    "controller_overdue_loans",
    "dishonest_debtor",
    "controller_dishonest_debtor",
    "env_credit_rating",
    "tax_credit_rating",
)


class Sukedai(ProgramBase):
    policy: ProgramPolicy = PROGRAM_POLICY
    workflow: Workflow = WORKFLOW
    quarter_end_role = "province_reviewer"  # SKD-Q3: the province evaluates
    quarter_end_rule = "SKD-Q3"
    # the library of tech enterprises (科技型企业库, SKD-E1) belongs to this programme
    has_library = True
    has_quota = True  # SKD-F6: the province sets an annual issuance quota
    # what its rules refuse, by operation (app.programs.base.declared_refusals)
    refusals: Mapping[str, tuple[type[AppError], ...]] = {
        "file_loan": (*FILING_REFUSALS, AnnualQuotaExceeded),
        "quota": (AnnualQuotaExceeded,),
        "library": LIBRARY_REFUSALS,
    }

    def library_criteria(self, enterprise: Enterprise) -> list[Criterion]:
        """SKD-E1: the library's admission criteria, each passed or not."""
        return check_library_criteria(enterprise)

    # --- filing -------------------------------------------------------------------
    def quota_exceeded(self, quota_fen: int, used_fen: int) -> Violation:
        return quota_exceeded(quota_fen, used_fen)

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
        """SKD-E1, P1, P2, F1–F6; exposure = principal × each fund's share (SKD-S1). In a
        batch the loan is returned unflushed and its exposure is left to the batch."""
        lk = lookups
        if not batch:
            lk.first_look(data.enterprise_credit_code, data.contract_no, data.disbursed_on)
        bank, enterprise = filing.bank_and_enterprise(lk, data, principal)
        city_fund = lk.city_fund(enterprise, data.disbursed_on)
        agreement = lk.agreement(city_fund.code, data.disbursed_on) if city_fund else None
        quota = lk.quota(data.disbursed_on.year)
        deadline = lk.deadline(data.disbursed_on)
        facts = FilingFacts(
            declared_product=data.product,
            principal_fen=data.principal,
            annual_rate_bp=data.annual_rate_bp,
            fee_rate_bp=data.fee_rate_bp,
            disbursed_on=data.disbursed_on,
            maturity_on=data.maturity_on,
            security=data.security,
            controller_guarantee=data.controller_guarantee,
            other_fiscal_support=data.other_fiscal_support,
            today=today,
            filing_deadline=deadline.on,
            filing_deadline_provisional=deadline.provisional,
            lpr_bp=lk.lpr_bp(data.disbursed_on),
            in_library=lk.in_library(enterprise),
            revenue_fen=enterprise.prior_year_revenue_fen,
            enterprise_flags={k: getattr(enterprise, k) for k in ENTERPRISE_FLAGS},
            agreement_status=agreement.status if agreement else None,
            region_cooperating=city_fund is not None,
            enterprise_has_active_loan=lk.has_active_loan(enterprise.id),
            quota_fen=quota.amount_fen if quota else None,
            quota_used_fen=lk.quota_used(quota) if quota else 0,
            guarantor_consent_given=data.guarantor_consent is not None,
            overdue_in_books=lk.overdue_in_books(enterprise, today),  # SKD-F4
        )
        decision = check_filing(facts)
        if decision.violations:
            raise filing.refuse(decision.violations)
        assert decision.product is not None and agreement is not None and city_fund is not None
        loan = filing.new_loan(
            data,
            bank=bank,
            agreement_id=agreement.id,
            enterprise_id=enterprise.id,
            principal=principal,
            today=today,
            deadline=deadline,
            product=decision.product.code,
            filed_late=False,
            flags=[],
            extra={"city_fund": city_fund.code},
        )
        if quota is not None:
            lk.count_in_quota(quota, loan.principal_fen)
            if not batch:
                filing.count_in_quota(session, self, quota.id, loan.principal_fen)
        lk.accepted(loan)
        if not batch:
            session.add(loan)
            session.flush()
            filing.post_exposure(session, loan, now=now, actor_id=principal.user_id, into=exposures)
        return loan  # in a batch: not yet inserted (the batch inserts its loans together)

    def exposure_parts(self, loan: Loan, principal_fen: int) -> list[tuple[str, int]]:
        """SKD-S1: the province fund and the loan's city fund, each its share."""
        product = product_by_code(loan.product or "")
        if product is None:
            return []
        shares = loss_shares(principal_fen, product)
        return [(PROVINCE_FUND, shares["province"]), (str(loan.fund_code), shares["city"])]

    # --- claims -------------------------------------------------------------------
    new_claim = staticmethod(claim_steps.new_claim)

    def claim_scope(self, principal: Principal) -> ColumnElement[bool] | None:
        """The province fund's manager sees every SKD claim, a city fund's its fund's."""
        if principal.fund_code == PROVINCE_FUND:
            return Claim.program == self.code
        return None

    record_recovery = staticmethod(claim_steps.record_recovery)

    # --- the annual assessment (SKD-A1) ------------------------------------------------
    annual_report = staticmethod(annual.annual_report)

    # --- quarter end (SKD-Q3) -------------------------------------------------------
    def evaluate_quarter(
        self, session: Session, run: QuarterEvaluation, *, actor: Principal, today: date
    ) -> None:
        """Each bank's NPL ratio at the quarter end against the threshold (a lower one in
        the first year of cooperation): above it the bank's agreements are suspended,
        back under it a suspension this evaluation made is lifted."""
        policy, end = QUARTER_END, run.quarter_end
        ratios = bank_ratios(session, self.code, end, policy)
        agreements = list(
            session.scalars(
                select(Agreement).where(
                    Agreement.program == self.code, Agreement.status.in_(("active", "suspended"))
                )
            )
        )
        by_bank: dict[str, list[Agreement]] = defaultdict(list)
        for a in agreements:
            by_bank[a.bank_code].append(a)
        for bank in sorted(set(ratios) | set(by_bank)):
            ratio = ratios.get(bank, BankRatio(0, 0))
            own = by_bank.get(bank, [])
            early = any((end - a.start_on).days < policy.early_period_days for a in own)
            threshold = policy.early_threshold_bp if early else policy.threshold_bp
            breached = ratio.breaches(threshold)
            reason = (
                f"{policy.reason_prefix} {run.year}-Q{run.quarter}: NPL ratio "
                f"{ratio.ratio_text()}, threshold {percent(threshold)}"
            )
            changed: list[int] = []
            for a in own:
                if breached and a.status == "active":
                    change_agreement_status(
                        session, agreement_id=a.id, action="suspend", reason=reason, actor=actor
                    )
                    changed.append(a.id)
                elif (
                    not breached
                    and a.status == "suspended"
                    and last_suspension_reason(session, a.id).startswith(policy.reason_prefix)
                ):
                    change_agreement_status(
                        session, agreement_id=a.id, action="resume", reason=reason, actor=actor
                    )
                    changed.append(a.id)
            decision = ("suspended" if breached else "lifted") if changed else "unchanged"
            session.add(
                QuarterBankResult(
                    evaluation_id=run.id,
                    bank_code=bank,
                    outstanding_fen=ratio.outstanding_fen,
                    npl_fen=ratio.npl_fen,
                    threshold_bp=threshold,
                    breached=breached,
                    decision=decision,
                    agreement_ids=changed,
                )
            )
        session.flush()

    # --- the quarterly report -----------------------------------------------------------
    def quarterly_report(self) -> QuarterlyPart:
        """Products, the NPL line, caps or limits, fund figures, ledger lines."""
        return report.PART

    # --- the bank's exposure view (SKD-Q1, Q2, Q3) ------------------------------------
    def exposure(self, session: Session, bank_code: str, *, on: date) -> ExposureOut:
        stats = claim_steps.cap_statistics(session, bank_code, on=on)
        ratio = bank_ratios(session, self.code, on, QUARTER_END, bank_code=bank_code).get(bank_code)
        suspended = suspended_agreements(session, bank_code, self.code)
        waiting = sum(under_review(session, self.code, on, bank_code=bank_code).values())
        return ExposureOut(
            bank_code=bank_code,
            program=self.code,
            as_of=on,
            cooperation_start=stats.cooperation_start,
            products=[
                ProductExposure(
                    product=p.product,
                    annualized_principal=p.annualized.__floor__(),
                    compensated=p.compensated_fen,
                    compensation_rate=percent_of(p.compensated_fen, p.annualized),
                )
                for p in stats.per_product
            ],
            total=ProductExposure(
                product="total",
                annualized_principal=stats.annualized_floor_fen,
                compensated=stats.compensated_fen,
                compensation_rate=percent_of(stats.compensated_fen, stats.annualized),
            ),
            cap_rate_bp=CAPS.rate_bp,
            cap=stats.position.cap_fen,
            headroom=stats.position.headroom_fen,
            under_review=waiting,
            headroom_if_all_approved=None
            if stats.position.headroom_fen is None
            else max(stats.position.headroom_fen - waiting, 0),
            exemption=ExemptionOut(
                applies=stats.position.exempt,
                first_year_ends=stats.position.first_year_ends,
                cumulative_principal=stats.cumulative_principal_fen,
                principal_threshold=CAPS.exemption_principal_fen,
            ),
            outstanding_principal=ratio.outstanding_fen if ratio else 0,
            npl_principal=ratio.npl_fen if ratio else 0,
            npl_ratio=percent_of(ratio.npl_fen, ratio.outstanding_fen) if ratio else None,
            suspended=bool(suspended),
            suspended_agreement_ids=suspended,
            delinquency_buckets=bank_buckets(session, self.code, bank_code, on),  # M-6
        )


def percent_of(num: int, den: Fraction | int) -> str | None:
    """num / den as a percent with 4 decimals, rounded down; None when den is 0."""
    if not den:
        return None
    v = (Fraction(num) / den * 1_000_000).__floor__()
    return f"{v // 10_000}.{v % 10_000:04d}"


PROGRAM: Program = Sukedai()  # mypy checks it against the protocol
