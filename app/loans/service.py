"""Loan filing (备案), whichever the programme: the loan's programme (the registry) checks
the filing and records the loan with what is here — the filing bank and the enterprise
under its lock, the refusal listing every failed rule, the loan row, the quota counted at
commit, and the funds' guarantee exposure posted to the ledger's memo accounts. A rule
refusal of a well-formed filing is kept as a filing-refusal record (SKD-A1,
`app.loans.refusals`)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime
from typing import Any

from pydantic import ValidationError
from sqlalchemy.orm import Session

from app.auth.principal import Principal
from app.errors import (
    AlreadyExists,
    AppError,
    RoleNotAllowed,
    Unprocessable,
    Violation,
    refusal,
)
from app.kit.at_commit import at_commit
from app.kit.calendar import Deadline
from app.ledger import service as ledger
from app.ledger.postings import credit, debit
from app.ledger.service import EntrySpec
from app.loans import refusals, schedule
from app.loans import repository as repo
from app.loans.arrears import Instalment
from app.loans.lookups import FilingLookups
from app.loans.schemas import BatchItemError, BatchItemResult, LoanFile
from app.models import Enterprise, Loan, ProgramQuota
from app.programs.base import Program, get_program


class UnknownEnterprise(Unprocessable):
    """No enterprise with this unified social credit code (统一社会信用代码) is
    registered: the administrator registers it first (`POST /enterprises`)."""

    code = "unknown_enterprise"
    title, title_zh = "Unknown enterprise", "企业尚未登记"


def file_loan(
    session: Session,
    *,
    data: LoanFile,
    principal: Principal,
    today: date,
    now: datetime,
    exposures: list[EntrySpec] | None = None,
) -> Loan:
    """File a loan under its programme: the programme's rules decide; its repayment
    schedule (SPEC M-6, the bullet default without one) is stored with it."""
    program = get_program(data.program)
    schedule.check(data)
    lookups = FilingLookups(session, principal.bank_code or "", program.code)
    try:
        loan = program.file_loan(
            session,
            data=data,
            principal=principal,
            today=today,
            now=now,
            lookups=lookups,
            exposures=exposures,
            batch=False,
        )
    except AppError as exc:
        if refusals.rule_refusal(exc) is not None:  # SKD-A1: kept after the rollback
            refusals.refused(
                session,
                data,
                exc,
                enterprise=lookups.enterprise(data.enterprise_credit_code),
                principal=principal,
                today=today,
                now=now,
                with_request=False,
            )
        raise
    enterprise = lookups.enterprise(data.enterprise_credit_code)
    if enterprise is not None:  # refused at commit after all (SKD-F6): kept too
        refusals.refused_at_commit(
            session, [(data, enterprise)], principal=principal, today=today, now=now
        )
    schedule.store(session, [(loan, schedule.plan(data))])
    return loan


def refuse(violations: list[Violation]) -> AppError:
    """The refusal of a filing that broke every rule in `violations` (in the order the
    programme checks them), as `errors.refusal` builds every refusal."""
    return refusal(
        violations,
        f"the filing breaks {len(violations)} rule(s): "
        + ", ".join(f"{v.rule} {v.code}" for v in violations),
    )


def bank_and_enterprise(
    lk: FilingLookups, data: LoanFile, principal: Principal
) -> tuple[str, Enterprise]:
    """The filing bank, refusing a contract number it already filed, and the enterprise
    row, locked (SKD-F3, XB-P1 per enterprise)."""
    if principal.bank_code is None:
        raise RoleNotAllowed("only a partner bank files loans")
    bank = principal.bank_code
    if lk.contract_exists(data.contract_no):
        raise AlreadyExists(
            f"contract {data.contract_no} is already filed by {bank}",
            [AlreadyExists.violation("already filed", "body", "contract_no")],
        )
    enterprise = lk.enterprise(data.enterprise_credit_code)
    if enterprise is None:
        raise UnknownEnterprise(
            f"no enterprise {data.enterprise_credit_code} is registered",
            [
                UnknownEnterprise.violation(
                    "no enterprise with this code", "body", "enterprise_credit_code"
                )
            ],
        )
    return bank, enterprise


def new_loan(
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
        fund_code=extra.get("city_fund") or extra.get("sub_fund"),
        extra=extra,
    )


def count_in_quota(
    session: Session,
    program: Program,
    quota_id: int,
    principal_fen: int,
    *,
    on_refusal: Callable[[AppError], None] | None = None,
) -> None:
    """SKD-F6, decided again at commit: the rules saw the quota as committed when the
    request read it; the request's principal goes in, under the row's lock, only if it
    still fits after every filing that committed meanwhile (else the request is refused
    whole and writes nothing but its refusal records, `on_refusal`). Taking that lock
    last keeps filings across the province from queueing behind each other's whole
    request."""

    def count(s: Session) -> None:
        if not repo.add_to_quota(s, quota_id, principal_fen):
            error = refuse([program.quota_exceeded(*repo.quota_figures(s, quota_id))])
            if on_refusal is not None:
                on_refusal(error)
            raise error

    at_commit(session, count)


def exposure_parts(loan: Loan, principal_fen: int) -> list[tuple[str, int]]:
    """(fund, fen) of the funds' guarantee exposure on `principal_fen` of this loan."""
    return get_program(loan.program).exposure_parts(loan, principal_fen)


def exposure_entry(
    loan: Loan, before_fen: int, after_fen: int, on: date, *, event_type: str, key: str, why: str
) -> EntrySpec | None:
    """The entry moving the funds' memo exposure on this loan from its share of
    `before_fen` of principal to its share of `after_fen` (L-1: every exposure change is
    an entry), or None when nothing changes. Its legs name the loan."""
    old, new = dict(exposure_parts(loan, before_fen)), dict(exposure_parts(loan, after_fen))
    legs = []
    for fund in old.keys() | new.keys():
        change = new.get(fund, 0) - old.get(fund, 0)
        if change > 0:
            legs += [
                debit(fund, "exposure_memo", change, loan.bank_code, loan_id=loan.id),
                credit(fund, "exposure_contra", change, loan.bank_code, loan_id=loan.id),
            ]
        elif change < 0:
            legs += [
                debit(fund, "exposure_contra", -change, loan.bank_code, loan_id=loan.id),
                credit(fund, "exposure_memo", -change, loan.bank_code, loan_id=loan.id),
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


def post_exposure(
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
    start: int = 0,
) -> list[BatchItemResult]:
    """Every item through the same checks as a single filing, in order: a refused item
    leaves nothing behind (refusals come before any write), accepted ones are committed
    together with the request and see each other (SKD-F3, F6 and XB-P1 apply across the
    batch). The batch's facts are looked up for all its items at once; the loans are
    inserted together and their exposure entries posted together (COPY on PostgreSQL).
    `start`: the position of the first item in a larger batch filed in parts (a job's
    chunk, `app.loans.jobs`), by which results and errors name the items."""
    results: dict[int, BatchItemResult] = {}
    parsed: list[tuple[int, LoanFile]] = []
    for index, raw in enumerate(items, start):
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
        raise RoleNotAllowed("only a partner bank files loans")
    # one set of lookups per programme, sharing the bank's contract numbers: the batch's
    # facts in set-based queries, its accepted items facts for the next ones
    lookups: dict[str, FilingLookups] = {}
    for _, data in parsed:
        if data.program not in lookups:
            lookups[data.program] = FilingLookups(session, principal.bank_code, data.program)
    contracts = [d.contract_no for _, d in parsed]
    # every enterprise of the batch locked in one statement, in id order, before any
    # programme looks (two batches naming the same enterprises under different
    # programmes in another order would otherwise lock them crosswise)
    repo.lock_enterprises(session, [d.enterprise_credit_code for _, d in parsed])
    for code, lk in lookups.items():
        lk.preload([d.enterprise_credit_code for _, d in parsed if d.program == code], contracts)
    specs: list[EntrySpec] = []
    accepted: list[tuple[int, Loan]] = []
    plans: dict[int, list[Instalment]] = {}
    for index, data in parsed:
        try:
            schedule.check(data)
            loan = get_program(data.program).file_loan(
                session,
                data=data,
                principal=principal,
                today=today,
                now=now,
                lookups=lookups[data.program],
                exposures=specs,
                batch=True,
            )
            for lk in lookups.values():
                lk.accepted(loan)
        except AppError as exc:
            if refusals.rule_refusal(exc) is not None:  # SKD-A1: kept with the batch
                refusals.refused(
                    session,
                    data,
                    exc,
                    enterprise=lookups[data.program].enterprise(data.enterprise_credit_code),
                    principal=principal,
                    today=today,
                    now=now,
                    with_request=True,
                )
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
        plans[index] = schedule.plan(data)
    together = [loan for _, loan in accepted if loan.id is None]
    _insert_together(session, together)
    for loan in together:  # their exposure, once they have ids
        post_exposure(session, loan, now=now, actor_id=principal.user_id, into=specs)
    schedule.store(session, [(loan, plans[index]) for index, loan in accepted])
    filed = dict(parsed)
    for code, lk in lookups.items():
        for quota_id, principal_fen in lk.quota_taken.items():
            counted = [
                (filed[index], loan)
                for index, loan in accepted
                if loan.program == code
                and (q := lk.quota(loan.disbursed_on.year)) is not None
                and q.id == quota_id
            ]
            count_in_quota(
                session,
                get_program(code),
                quota_id,
                principal_fen,
                on_refusal=_quota_refusals(session, lk, counted, principal, today, now),
            )
    if specs:
        batch = batch_exposure_entries(specs, principal.bank_code)
        ledger.post_at_commit(session, batch, now=now, actor_id=principal.user_id)
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
    return [results[i] for i in range(start, start + len(items))]


def batch_exposure_entries(specs: list[EntrySpec], bank: str) -> list[EntrySpec]:
    """A batch's guarantee exposure as one entry per set of fund books (docs/journal.md):
    every loan's legs, a balanced pair per fund book, each naming its loan, in the order
    the loans were filed. Loans whose legs touch the same books (one programme, one city
    fund) share an entry, so an entry touches exactly the books one loan's own entry
    would — a fund manager sees what they saw before, and no other city's loans. The
    entry's event id and key are those of its first loan, which belongs to no other
    batch. (A batch's loans are filed on one date; the date is part of the key anyway.)"""
    groups: dict[tuple[date, frozenset[str]], list[EntrySpec]] = {}
    for spec in specs:
        books = frozenset(g.fund_code for g in spec.legs)
        groups.setdefault((spec.business_date, books), []).append(spec)
    out = []
    for (on, books), group in groups.items():
        first = group[0].event_id
        loans = f"{len(group)} loan" + ("s" if len(group) > 1 else "")
        out.append(
            EntrySpec(
                "loan.batch_filed",
                first,
                f"loan:{first}:batch-exposure",
                on,
                [leg for spec in group for leg in spec.legs],
                f"guarantee exposure of {loans} filed in one batch by {bank} "
                f"({', '.join(sorted(books))})",
            )
        )
    return out


def _quota_refusals(
    session: Session,
    lookups: FilingLookups,
    counted: list[tuple[LoanFile, Loan]],
    principal: Principal,
    today: date,
    now: datetime,
) -> Callable[[AppError], None]:
    """SKD-A1: when the quota refuses the batch at commit, each item counted in it is a
    refused filing, kept after the batch's rollback."""

    def note(error: AppError) -> None:
        for data, _ in counted:
            refusals.refused(
                session,
                data,
                error,
                enterprise=lookups.enterprise(data.enterprise_credit_code),
                principal=principal,
                today=today,
                now=now,
                with_request=False,
            )

    return note


def _insert_together(session: Session, loans: list[Loan]) -> None:
    """A batch's new loans written together (COPY on PostgreSQL, a multi-row INSERT
    elsewhere); the objects get their ids and stay outside the session."""
    if not loans:
        return
    session.flush()
    for loan, loan_id in zip(loans, repo.insert_loans(session, loans), strict=True):
        loan.id = loan_id
