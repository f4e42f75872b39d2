"""Loan filing (备案). The programme's rules decide; this gathers the facts under the
right locks, refuses with every failed rule at once, records the loan and posts the
funds' guarantee exposure to the ledger's memo accounts."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from pydantic import ValidationError
from sqlalchemy.orm import Session

from app.auth.principal import Principal
from app.errors import AppError, Conflict, Forbidden, Unprocessable, Violation
from app.kit.at_commit import at_commit
from app.kit.calendar import Deadline
from app.ledger import service as ledger
from app.ledger.postings import credit, debit
from app.ledger.service import EntrySpec
from app.loans import repository as repo
from app.loans.lookups import FilingLookups
from app.loans.schemas import BatchItemError, BatchItemResult, LoanFile
from app.models import Enterprise, Fund, Loan, ProgramQuota
from app.programs.base import get_program
from app.programs.sukedai.claims import loss_shares as skd_loss_shares
from app.programs.sukedai.filing import FilingFacts, check_filing, quota_exceeded
from app.programs.sukedai.policy import product_by_code
from app.programs.xinbao.claims import loss_shares as xb_loss_shares
from app.programs.xinbao.filing import FilingFacts as XbFilingFacts
from app.programs.xinbao.filing import check_filing as check_xb_filing
from app.programs.xinbao.policy import BASE_SUB_FUND as XB_BASE_SUB_FUND
from app.programs.xinbao.policy import POOL as XB_POOL

PROVINCE_FUND = "SKD_PROV"
ENTERPRISE_FLAGS = (
    "overdue_loans_elsewhere",
    "controller_overdue_loans",
    "dishonest_debtor",
    "controller_dishonest_debtor",
    "env_credit_rating",
    "tax_credit_rating",
)
XB_ENTERPRISE_FLAGS = (
    "overdue_loans_elsewhere",
    "controller_overdue_loans",
    "malicious_default_blacklist",
    "last_malicious_overdue_on",
)


def file_loan(
    session: Session,
    *,
    data: LoanFile,
    principal: Principal,
    today: date,
    now: datetime,
    exposures: list[EntrySpec] | None = None,
) -> Loan:
    """File a loan under its programme: the programme's rules decide (registry below)."""
    return _FILERS[get_program(data.program).code](
        session, data=data, principal=principal, today=today, now=now, exposures=exposures
    )


def _refuse(violations: list[Violation]) -> Unprocessable:
    only = violations[0].code if len(violations) == 1 else None
    return Unprocessable(
        f"the filing breaks {len(violations)} rule(s): "
        + ", ".join(f"{v.rule} {v.code}" for v in violations),
        violations,
        code=only or "filing_refused",
    )


def _bank_and_enterprise(
    lk: FilingLookups, data: LoanFile, principal: Principal
) -> tuple[str, Enterprise]:
    """The filing bank, refusing a contract number it already filed, and the enterprise
    row, locked (SKD-F3, XB-P1 per enterprise)."""
    if principal.bank_code is None:
        raise Forbidden("only a partner bank files loans", code="role_not_allowed")
    bank = principal.bank_code
    if lk.contract_exists(data.contract_no):
        raise Conflict(
            f"contract {data.contract_no} is already filed by {bank}",
            [Violation(loc=("body", "contract_no"), msg="already filed", code="already_exists")],
            code="already_exists",
        )
    enterprise = lk.enterprise(data.enterprise_credit_code)
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
    return bank, enterprise


def _new_loan(
    data: LoanFile,
    *,
    bank: str,
    agreement_id: int,
    enterprise_id: int,
    principal: Principal,
    today: date,
    deadline: Deadline,
    product: str | None,
    filed_late: bool,
    flags: list[str],
    extra: dict[str, Any],
) -> Loan:
    """The filed loan's row, from the filing's terms and what the rules decided. Every
    column is set here: a batch inserts the objects unflushed, without ORM defaults."""
    consent = data.guarantor_consent
    return Loan(
        program=data.program,
        product=product,
        bank_code=bank,
        agreement_id=agreement_id,
        enterprise_id=enterprise_id,
        contract_no=data.contract_no,
        principal_fen=data.principal,
        annual_rate_bp=data.annual_rate_bp,
        fee_rate_bp=data.fee_rate_bp,
        disbursed_on=data.disbursed_on,
        maturity_on=data.maturity_on,
        security=data.security,
        guarantor=data.guarantor,
        guarantor_consent_ref=consent.reference if consent else None,  # XB-F2
        guarantor_consent_on=consent.dated_on if consent else None,
        controller_guarantee=data.controller_guarantee,
        other_fiscal_support=data.other_fiscal_support,
        status="active",
        filed_on=today,
        filing_deadline=deadline.on,
        filing_deadline_provisional=deadline.provisional,
        filed_late=filed_late,
        compensable=not filed_late,
        flags=flags,
        filed_by_id=principal.user_id,
        extra=extra,
    )


def _file_skd(
    session: Session,
    *,
    data: LoanFile,
    principal: Principal,
    today: date,
    now: datetime,
    exposures: list[EntrySpec] | None = None,
    lookups: FilingLookups | None = None,
) -> Loan:
    """SKD-E1, P1, P2, F1–F6; exposure = principal × each fund's share (SKD-S1). With
    `lookups` from a batch, the loan is added unflushed and its exposure is left to the
    batch."""
    lk = lookups
    if lk is None:
        lk = FilingLookups(session, principal.bank_code or "", "SKD")
        lk.first_look(data.enterprise_credit_code, data.contract_no, data.disbursed_on)
    bank, enterprise = _bank_and_enterprise(lk, data, principal)
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
    )
    decision = check_filing(facts)
    if decision.violations:
        raise _refuse(decision.violations)
    assert decision.product is not None and agreement is not None and city_fund is not None
    loan = _new_loan(
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
        if lookups is None:
            _count_in_quota(session, quota.id, loan.principal_fen)
    lk.accepted(loan)
    if lookups is None:
        session.add(loan)
        session.flush()
        _post_exposure(session, loan, now=now, actor_id=principal.user_id, into=exposures)
    return loan  # in a batch: not yet inserted (the batch inserts its loans together)


def _count_in_quota(session: Session, quota_id: int, principal_fen: int) -> None:
    """SKD-F6, decided again at commit: the rules saw the quota as committed when the
    request read it; the request's principal goes in, under the row's lock, only if it
    still fits after every filing that committed meanwhile (else the request is refused
    whole and writes nothing). Taking that lock last keeps filings across the province
    from queueing behind each other's whole request."""

    def count(s: Session) -> None:
        if not repo.add_to_quota(s, quota_id, principal_fen):
            raise _refuse([quota_exceeded(*repo.quota_figures(s, quota_id))])

    at_commit(session, count)


def _file_xb(
    session: Session,
    *,
    data: LoanFile,
    principal: Principal,
    today: date,
    now: datetime,
    exposures: list[EntrySpec] | None = None,
) -> Loan:
    """XB-E1, E2, P1, F2: refusals list every rule; a credit loan filed late is accepted
    but not compensable (XB-N7), a guaranteed one needs the guarantor's consent letter
    instead and is never late (XB-F2); exposure = principal × the sub-fund's fund ratio
    (XB-S1)."""
    lk = FilingLookups(session, principal.bank_code or "", "XB")
    bank, enterprise = _bank_and_enterprise(lk, data, principal)
    sub_code = data.sub_fund or XB_BASE_SUB_FUND
    sub_fund = session.get(Fund, sub_code)
    known = sub_fund is not None and sub_fund.program == "XB" and sub_fund.kind == "sub_fund"
    agreement = lk.agreement(sub_code, data.disbursed_on) if known else None
    pool = session.get(Fund, XB_POOL)
    deadline = lk.deadline(data.disbursed_on)
    consent = data.guarantor_consent  # XB-F2
    decision = check_xb_filing(
        XbFilingFacts(
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
            outstanding_fen=repo.outstanding_for_enterprise(session, enterprise.id, "XB"),
            last_compensation_on=repo.last_compensation_on(session, enterprise.id, "XB"),
            enterprise_flags={k: getattr(enterprise, k) for k in XB_ENTERPRISE_FLAGS},
            agreement_status=agreement.status if agreement else None,
            sub_fund_known=known,
            fund_stopped=pool is not None and pool.status == "stopped",
            guarantor_consent_ref=consent.reference if consent else None,
            guarantor_consent_on=consent.dated_on if consent else None,
        )
    )
    if decision.violations:
        raise _refuse(decision.violations)
    assert agreement is not None and sub_fund is not None
    ratios = sub_fund.params.get("ratios_bp", {}).get(data.security, {})
    loan = _new_loan(
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
    session.add(loan)
    session.flush()
    _post_exposure(session, loan, now=now, actor_id=principal.user_id, into=exposures)
    return loan


_FILERS = {"SKD": _file_skd, "XB": _file_xb}


def exposure_parts(loan: Loan, principal_fen: int) -> list[tuple[str, int]]:
    """(fund, fen) of the funds' guarantee exposure on `principal_fen` of this loan."""
    if loan.program == "XB":  # XB-S1: the pool carries the sub-fund's share
        xb = xb_loss_shares(principal_fen, loan.extra.get("ratios_bp", {}))
        return [(XB_POOL, xb["fund"])]
    product = product_by_code(loan.product or "")
    if product is None:
        return []
    skd = skd_loss_shares(principal_fen, product)  # SKD-S1
    return [(PROVINCE_FUND, skd["province"]), (str(loan.extra.get("city_fund")), skd["city"])]


def exposure_entry(
    loan: Loan, before_fen: int, after_fen: int, on: date, *, event_type: str, key: str, why: str
) -> EntrySpec | None:
    """The entry moving the funds' memo exposure on this loan from its share of
    `before_fen` of principal to its share of `after_fen` (L-1: every exposure change is
    an entry), or None when nothing changes."""
    old, new = dict(exposure_parts(loan, before_fen)), dict(exposure_parts(loan, after_fen))
    legs = []
    for fund in old.keys() | new.keys():
        change = new.get(fund, 0) - old.get(fund, 0)
        if change > 0:
            legs += [
                debit(fund, "exposure_memo", change, loan.bank_code),
                credit(fund, "exposure_contra", change, loan.bank_code),
            ]
        elif change < 0:
            legs += [
                debit(fund, "exposure_contra", -change, loan.bank_code),
                credit(fund, "exposure_memo", -change, loan.bank_code),
            ]
    if not legs:
        return None
    return EntrySpec(
        event_type,
        str(loan.id),
        key,
        on,
        sorted(legs, key=lambda x: (x.fund_code, x.kind)),
        f"{why} of {loan.program} loan {loan.contract_no}",
    )


def post_exposure_change(
    session: Session,
    loan: Loan,
    before_fen: int,
    after_fen: int,
    on: date,
    *,
    event_type: str,
    key: str,
    why: str,
    now: datetime,
    actor_id: int,
) -> None:
    spec = exposure_entry(loan, before_fen, after_fen, on, event_type=event_type, key=key, why=why)
    if spec is not None:
        ledger.post_at_commit(session, [spec], now=now, actor_id=actor_id)


def _post_exposure(
    session: Session,
    loan: Loan,
    *,
    now: datetime,
    actor_id: int,
    into: list[EntrySpec] | None,
) -> None:
    """The new loan's exposure: posted now, or collected `into` a batch's list."""
    spec = exposure_entry(
        loan,
        0,
        loan.principal_fen,
        loan.filed_on,
        event_type="loan.filed",
        key=f"loan:{loan.id}:exposure",
        why="guarantee exposure",
    )
    if spec is None:
        return
    if into is not None:
        into.append(spec)
    else:
        ledger.post_at_commit(session, [spec], now=now, actor_id=actor_id)


def set_quota(
    session: Session, *, program: str, year: int, amount_fen: int, actor: Principal
) -> ProgramQuota:
    quota = repo.quota_for_update(session, program, year)
    if quota is None:
        quota = ProgramQuota(
            program=program,
            year=year,
            amount_fen=amount_fen,
            used_fen=repo.principal_filed_in(session, program, year),
            set_by_id=actor.user_id,
        )
        session.add(quota)
    else:
        quota.amount_fen, quota.set_by_id = amount_fen, actor.user_id
    session.flush()
    return quota


def file_batch(
    session: Session,
    *,
    items: list[dict[str, Any]],
    principal: Principal,
    today: date,
    now: datetime,
) -> list[BatchItemResult]:
    """Every item through the same checks as a single filing, in order: a refused item
    leaves nothing behind (refusals come before any write), accepted ones are committed
    together with the request and see each other (SKD-F3, F6 and XB-P1 apply across the
    batch). SKD facts are looked up for the whole batch at once; the loans are inserted
    together and their exposure entries posted together (COPY on PostgreSQL)."""
    results: dict[int, BatchItemResult] = {}
    parsed: list[tuple[int, LoanFile]] = []
    for index, raw in enumerate(items):
        try:
            parsed.append((index, LoanFile.model_validate(raw)))
        except ValidationError as exc:
            contract = raw.get("contract_no")
            results[index] = BatchItemResult(
                index=index,
                contract_no=contract if isinstance(contract, str) else None,
                status="refused",
                code="validation_error",
                errors=[
                    BatchItemError(
                        loc=["items", index, *[str(p) for p in e["loc"]]],
                        msg=str(e["msg"]).removeprefix("Value error, "),
                    )
                    for e in exc.errors()
                ],
            )
    if principal.bank_code is None:
        raise Forbidden("only a partner bank files loans", code="role_not_allowed")
    lookups = FilingLookups(session, principal.bank_code, "SKD")
    skd = [d for _, d in parsed if d.program == "SKD"]
    lookups.preload([d.enterprise_credit_code for d in skd], [d.contract_no for _, d in parsed])
    specs: list[EntrySpec] = []
    accepted: list[tuple[int, Loan]] = []
    for index, data in parsed:
        try:
            if data.program == "SKD":
                loan = _file_skd(
                    session,
                    data=data,
                    principal=principal,
                    today=today,
                    now=now,
                    lookups=lookups,
                )
            else:  # XB, one by one; contract numbers checked against the whole batch
                _bank_and_enterprise(lookups, data, principal)
                loan = file_loan(
                    session,
                    data=data,
                    principal=principal,
                    today=today,
                    now=now,
                    exposures=specs,
                )
                lookups.accepted(loan)
        except AppError as exc:
            results[index] = BatchItemResult(
                index=index,
                contract_no=data.contract_no,
                status="refused",
                code=exc.code,
                errors=[
                    BatchItemError(
                        loc=["items", index, *[str(p) for p in v.loc[1:]]],
                        msg=v.msg,
                        code=v.code,
                        rule=v.rule,
                    )
                    for v in exc.errors
                ]
                or [BatchItemError(loc=["items", index], msg=exc.detail, code=exc.code)],
            )
            continue
        accepted.append((index, loan))
    _insert_together(session, [loan for _, loan in accepted if loan.id is None])
    for _, loan in accepted:
        if loan.program == "SKD":
            _post_exposure(session, loan, now=now, actor_id=principal.user_id, into=specs)
    for quota_id, principal_fen in lookups.quota_taken.items():
        _count_in_quota(session, quota_id, principal_fen)
    if specs:
        ledger.post_at_commit(session, specs, now=now, actor_id=principal.user_id)
    for index, loan in accepted:
        results[index] = BatchItemResult(
            index=index,
            contract_no=loan.contract_no,
            status="accepted",
            loan_id=loan.id,
            filing_deadline=loan.filing_deadline,
            filing_deadline_applies=loan.filing_deadline_applies,
            filing_deadline_provisional=loan.filing_deadline_provisional,
            compensable=loan.compensable,
            flags=list(loan.flags),
        )
    return [results[i] for i in range(len(items))]


def _insert_together(session: Session, loans: list[Loan]) -> None:
    """A batch's new loans written together (COPY on PostgreSQL, a multi-row INSERT
    elsewhere); the objects get their ids and stay outside the session."""
    if not loans:
        return
    session.flush()
    for loan, loan_id in zip(loans, repo.insert_loans(session, loans), strict=True):
        loan.id = loan_id
