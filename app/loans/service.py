"""Loan filing (备案). The programme's rules decide; this gathers the facts under the
right locks, refuses with every failed rule at once, records the loan and posts the
funds' guarantee exposure to the ledger's memo accounts."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy.orm import Session

from app.auth.principal import Principal
from app.errors import Conflict, Forbidden, Unprocessable, Violation
from app.kit.allocation import allocate
from app.kit.calendar import add_working_days
from app.ledger import service as ledger
from app.ledger.postings import credit, debit
from app.library import repository as library_repo
from app.library import service as library
from app.loans import repository as repo
from app.loans.schemas import LoanFile
from app.models import Loan, ProgramQuota
from app.programs.sukedai.filing import FilingFacts, check_filing
from app.programs.sukedai.policy import FILING, Product
from app.reference import repository as reference_repo

PROVINCE_FUND = "SKD_PROV"
ENTERPRISE_FLAGS = (
    "overdue_loans_elsewhere",
    "controller_overdue_loans",
    "dishonest_debtor",
    "controller_dishonest_debtor",
    "env_credit_rating",
    "tax_credit_rating",
)


def file_loan(
    session: Session, *, data: LoanFile, principal: Principal, today: date, now: datetime
) -> Loan:
    if principal.bank_code is None:
        raise Forbidden("only a partner bank files loans", code="role_not_allowed")
    bank = principal.bank_code
    if repo.contract_exists(session, bank, data.contract_no):
        raise Conflict(
            f"contract {data.contract_no} is already filed by {bank}",
            [Violation(loc=("body", "contract_no"), msg="already filed", code="already_exists")],
            code="already_exists",
        )
    enterprise = repo.enterprise_for_update(session, data.enterprise_credit_code.upper())
    if enterprise is None:
        raise Unprocessable(
            "unknown enterprise",
            [
                Violation(
                    loc=("body", "enterprise_credit_code"),
                    msg="no enterprise with this code",
                    code="unknown_enterprise",
                )
            ],
            code="unknown_enterprise",
        )
    regions = library_repo.region_ancestors(session, enterprise.region_code)
    city_fund = repo.city_fund_for(session, data.program, regions)
    agreement = (
        repo.agreement_covering(
            session,
            bank_code=bank,
            program=data.program,
            fund_code=city_fund.code,
            on=data.disbursed_on,
        )
        if city_fund is not None
        else None
    )
    quota = repo.quota_for_update(session, data.program, data.disbursed_on.year)
    lpr = reference_repo.lpr_in_force(session, data.disbursed_on)
    deadline = add_working_days(data.disbursed_on, FILING.deadline_working_days)
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
        filing_deadline=deadline,
        lpr_bp=lpr.rate_bp if lpr else None,
        in_library=library.is_member(session, enterprise),
        revenue_fen=enterprise.prior_year_revenue_fen,
        enterprise_flags={k: getattr(enterprise, k) for k in ENTERPRISE_FLAGS},
        agreement_status=agreement.status if agreement else None,
        region_cooperating=city_fund is not None,
        enterprise_has_active_loan=repo.has_active_loan(session, enterprise.id, data.program),
        quota_fen=quota.amount_fen if quota else None,
        quota_used_fen=repo.principal_filed_in(session, data.program, data.disbursed_on.year),
    )
    decision = check_filing(facts)
    if decision.violations:
        only = decision.violations[0].code if len(decision.violations) == 1 else None
        raise Unprocessable(
            f"the filing breaks {len(decision.violations)} rule(s): "
            + ", ".join(f"{v.rule} {v.code}" for v in decision.violations),
            decision.violations,
            code=only or "filing_refused",
        )
    assert decision.product is not None and agreement is not None and city_fund is not None
    loan = Loan(
        program=data.program,
        product=decision.product.code,
        bank_code=bank,
        agreement_id=agreement.id,
        enterprise_id=enterprise.id,
        contract_no=data.contract_no,
        principal_fen=data.principal,
        annual_rate_bp=data.annual_rate_bp,
        fee_rate_bp=data.fee_rate_bp,
        disbursed_on=data.disbursed_on,
        maturity_on=data.maturity_on,
        security=data.security,
        guarantor=data.guarantor,
        controller_guarantee=data.controller_guarantee,
        other_fiscal_support=data.other_fiscal_support,
        status="active",
        filed_on=today,
        filing_deadline=deadline,
        filed_late=False,
        compensable=True,
        flags=[],
        filed_by_id=principal.user_id,
        extra={"city_fund": city_fund.code},
    )
    session.add(loan)
    session.flush()
    _post_exposure(
        session, loan, decision.product, city_fund.code, now=now, actor_id=principal.user_id
    )
    return loan


def exposure_shares(principal_fen: int, product: Product) -> dict[str, int]:
    """The funds' guarantee exposure: principal × each fund's share (SKD-S1), exact
    (M-2): public shares rounded down, the bank keeps the rest."""
    return allocate(
        principal_fen,
        [
            ("province", product.province_share_bp),
            ("city", product.city_share_bp),
            ("bank", 10_000 - product.province_share_bp - product.city_share_bp),
        ],
    )


def _post_exposure(
    session: Session,
    loan: Loan,
    product: Product,
    city_fund: str,
    *,
    now: datetime,
    actor_id: int,
) -> None:
    shares = exposure_shares(loan.principal_fen, product)
    legs = []
    for fund, part in ((PROVINCE_FUND, shares["province"]), (city_fund, shares["city"])):
        if part:
            legs += [
                debit(fund, "exposure_memo", part, loan.bank_code),
                credit(fund, "exposure_contra", part, loan.bank_code),
            ]
    if legs:
        ledger.post(
            session,
            event_type="loan.filed",
            event_id=str(loan.id),
            idempotency_key=f"loan:{loan.id}:exposure",
            business_date=loan.filed_on,
            legs=legs,
            now=now,
            actor_id=actor_id,
            description=f"guarantee exposure of {loan.product} loan {loan.contract_no}",
        )


def set_quota(
    session: Session, *, program: str, year: int, amount_fen: int, actor: Principal
) -> ProgramQuota:
    quota = repo.quota_for_update(session, program, year)
    if quota is None:
        quota = ProgramQuota(
            program=program, year=year, amount_fen=amount_fen, set_by_id=actor.user_id
        )
        session.add(quota)
    else:
        quota.amount_fen, quota.set_by_id = amount_fen, actor.user_id
    session.flush()
    return quota
