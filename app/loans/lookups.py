"""The facts a filing is checked against, looked up once per request: one query per fact
for a single filing, or a handful of set-based queries for a whole batch (then kept
current as the batch's items are accepted, so they see each other).

The loans in arrears on the service's own books (SKD-F4, XB-N2, `overdue_in_books`) are
read for the enterprise filed for and every other enterprise with the same actual
controller: one statement picks the candidates (loans not settled that could be in
arrears on the date), `arrears_of` computes their arrears exactly. Those other
enterprises are read, not locked: the lock order stays the filed enterprises' ids."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from functools import cache
from typing import Any

from sqlalchemy import ColumnElement, Select, and_, bindparam, func, literal, or_, select
from sqlalchemy.orm import Session, aliased

from app.kit.calendar import Deadline
from app.library import repository as library_repo
from app.loans import repository as repo
from app.loans.arrears import arrears_of
from app.loans.deadlines import filing_deadline
from app.models import (
    Agreement,
    DelinquencyReport,
    Enterprise,
    Fund,
    LibraryEvent,
    Loan,
    LoanInstalment,
    LprRate,
    ProgramQuota,
    Region,
)
from app.programs.common import OverdueFact
from app.reference import repository as reference_repo


@dataclass(frozen=True)
class Quota:
    """The year's quota as read (SKD-F6); counted in at commit."""

    id: int
    amount_fen: int
    used_fen: int


class FilingLookups:
    def __init__(self, session: Session, bank: str, program: str) -> None:
        self.session, self.bank, self.program = session, bank, program
        self.preloaded = False
        self._enterprises: dict[str, Enterprise | None] = {}
        self._contracts: set[str] = set()
        self._members: dict[int, bool] = {}
        self._active: set[int] = set()
        self._funds: dict[str, Fund | None] = {}
        self._agreements: dict[tuple[str, date], Agreement | None] = {}
        self._quotas: dict[int, Quota | None] = {}
        self._lprs: dict[date, int | None] = {}
        self._deadlines: dict[date, Deadline] = {}
        self.quota_taken: dict[int, int] = {}  # quota id → principal this request files
        self._contract_seen: dict[str, bool] = {}
        self._active_seen: set[int] = set()  # enterprises whose active loans were looked up
        self._overdue: dict[int, tuple[OverdueFact, ...]] = {}  # by enterprise id
        self._funds_by_code: dict[str, Fund | None] = {}
        # XB-P1, XB-E2 facts by enterprise id: what the database holds (read once for the
        # whole batch), and the principal of the loans this request accepted meanwhile
        self._owed: dict[int, int] = {}
        self._compensated: dict[int, date | None] = {}
        self._taken_by: dict[int, int] = {}

    def preload(self, credit_codes: Iterable[str], contracts: Iterable[str]) -> None:
        """A batch's facts in set-based queries; enterprises are locked in id order."""
        s, codes = self.session, sorted({c.upper() for c in credit_codes})
        rows = s.scalars(
            select(Enterprise)
            .where(Enterprise.credit_code.in_(codes))
            .order_by(Enterprise.id)
            .with_for_update(key_share=True)
        ).all()
        self._enterprises = {c: None for c in codes} | {e.credit_code: e for e in rows}
        ids = [e.id for e in rows]
        self._contracts = set(
            s.scalars(
                select(Loan.contract_no).where(
                    Loan.bank_code == self.bank, Loan.contract_no.in_(set(contracts))
                )
            )
        )
        last = (
            select(LibraryEvent.enterprise_id, func.max(LibraryEvent.id).label("last_id"))
            .where(LibraryEvent.enterprise_id.in_(ids), LibraryEvent.program == self.program)
            .group_by(LibraryEvent.enterprise_id)
            .subquery()
        )
        self._members = {i: False for i in ids} | {
            int(eid): action != "removed"
            for eid, action in s.execute(
                select(LibraryEvent.enterprise_id, LibraryEvent.action).join(
                    last, LibraryEvent.id == last.c.last_id
                )
            )
        }
        self._active = {
            int(i)
            for i in s.scalars(
                select(Loan.enterprise_id).where(
                    Loan.enterprise_id.in_(ids),
                    Loan.program == self.program,
                    Loan.status == "active",
                )
            )
        }
        self.preloaded = True

    def first_look(self, credit_code: str, contract_no: str, disbursed_on: date) -> None:
        """A single filing's first facts in one statement: the enterprise row, locked,
        whether the bank already filed this contract, the LPR in force on the
        disbursement date and the year's quota. What the enterprise's lock guards (its
        active loans, SKD-F3) is read by the next statement (`city_fund`), after the lock
        is held: a statement that waited for a lock still sees the data as of its start."""
        code, year = credit_code.upper(), disbursed_on.year
        row = self.session.execute(
            _first_look(self.program),
            {
                "bank": self.bank,
                "contract": contract_no,
                "code": code,
                "on": disbursed_on,
                "year": year,
            },
        ).first()
        if row is None:
            self._enterprises[code] = None
            return  # contract_exists asks on its own: its refusal comes first
        enterprise, taken, lpr_bp, quota_id, amount, used = row
        self._lprs[disbursed_on] = lpr_bp
        self._quotas[year] = (
            None if quota_id is None else Quota(quota_id, int(amount or 0), int(used or 0))
        )
        self._enterprises[code] = enterprise
        self._contract_seen[contract_no] = bool(taken)

    # --- one fact each; cached ------------------------------------------------------
    def enterprise(self, credit_code: str) -> Enterprise | None:
        code = credit_code.upper()
        if code not in self._enterprises:
            self._enterprises[code] = repo.enterprise_for_update(self.session, code)
        return self._enterprises[code]

    def contract_exists(self, contract_no: str) -> bool:
        if self.preloaded:
            return contract_no in self._contracts
        if contract_no not in self._contract_seen:
            self._contract_seen[contract_no] = repo.contract_exists(
                self.session, self.bank, contract_no
            )
        return self._contract_seen[contract_no]

    def in_library(self, enterprise: Enterprise) -> bool:
        if enterprise.id not in self._members:
            last = library_repo.latest_action(self.session, enterprise.id, self.program)
            self._members[enterprise.id] = last is not None and last != "removed"
        return self._members[enterprise.id]

    def has_active_loan(self, enterprise_id: int) -> bool:
        if self.preloaded or enterprise_id in self._active_seen:
            return enterprise_id in self._active
        return repo.has_active_loan(self.session, enterprise_id, self.program)

    def city_fund(self, enterprise: Enterprise, on: date) -> Fund | None:
        """The programme's fund of the nearest region up from the enterprise's (county,
        then city) that has one, and the bank's agreement with it covering `on`, in one
        statement; for a single filing also the enterprise's last library action and
        whether it has an active loan in the programme (read under its lock)."""
        region = enterprise.region_code
        if region in self._funds:
            return self._funds[region]
        single = not self.preloaded
        row = self.session.execute(
            _nearest_city_fund(self.program, single),
            {"region": region, "bank": self.bank, "on": on, "enterprise": enterprise.id},
        ).first()
        if row is None:
            self._funds[region] = None
            return None
        fund, agreement, *facts = row
        self._funds[region] = fund
        self._agreements.setdefault((fund.code, on), agreement)
        if single:
            last_action, active = facts
            self._members[enterprise.id] = last_action is not None and last_action != "removed"
            if active:
                self._active.add(enterprise.id)
            self._active_seen.add(enterprise.id)
        return fund

    def agreement(self, fund_code: str, on: date) -> Agreement | None:
        key = (fund_code, on)
        if key not in self._agreements:
            self._agreements[key] = repo.agreement_covering(
                self.session, bank_code=self.bank, program=self.program, fund_code=fund_code, on=on
            )
        return self._agreements[key]

    def quota(self, year: int) -> Quota | None:
        """The year's quota as committed when read, unlocked: the request's own filings
        are counted on top (`quota_used`), and the total is counted in under the row's
        lock at commit (`loans.service._count_in_quota`), so the lock is held only from
        there, and after the loans' own row locks, in the same order for every filing."""
        if year not in self._quotas:
            row = repo.quota(self.session, self.program, year)
            self._quotas[year] = (
                None if row is None else Quota(row.id, row.amount_fen, row.used_fen)
            )
        return self._quotas[year]

    def quota_used(self, quota: Quota) -> int:
        return quota.used_fen + self.quota_taken.get(quota.id, 0)

    def count_in_quota(self, quota: Quota, principal_fen: int) -> None:
        self.quota_taken[quota.id] = self.quota_taken.get(quota.id, 0) + principal_fen

    def lpr_bp(self, on: date) -> int | None:
        """The one-year LPR in force on the date, in basis points."""
        if on not in self._lprs:
            lpr = reference_repo.lpr_in_force(self.session, on)
            self._lprs[on] = lpr.rate_bp if lpr else None
        return self._lprs[on]

    def deadline(self, disbursed_on: date) -> Deadline:
        if disbursed_on not in self._deadlines:
            self._deadlines[disbursed_on] = filing_deadline(
                self.session, self.program, disbursed_on
            )
        return self._deadlines[disbursed_on]

    def overdue_in_books(self, enterprise: Enterprise, on: date) -> tuple[OverdueFact, ...]:
        """SKD-F4, XB-N2: every loan recorded here, in any programme and by any bank, of
        the enterprise or of another enterprise with the same actual controller, not
        settled and in arrears on `on` (principal or interest, the worse of our books and
        the bank's latest report: `Arrears.days_past_due(interest=True) > 0`). The
        enterprise's own first, then by the first day in arrears. In a batch, looked up
        once for all the batch's enterprises (of this programme) together."""
        if enterprise.id not in self._overdue:
            batch = [e for e in self._enterprises.values() if e is not None]
            in_batch = self.preloaded and any(e.id == enterprise.id for e in batch)
            self._load_overdue(batch if in_batch else [enterprise], on)
        return self._overdue[enterprise.id]

    def _load_overdue(self, enterprises: list[Enterprise], on: date) -> None:
        ids = sorted({e.id for e in enterprises})
        controllers = sorted({e.controller_id for e in enterprises if e.controller_id})
        concerned: ColumnElement[bool] = Loan.enterprise_id.in_(ids)
        if controllers:  # the enterprises first, by key or by controller; then their loans
            concerned = Loan.enterprise_id.in_(
                select(Enterprise.id).where(
                    or_(Enterprise.id.in_(ids), Enterprise.controller_id.in_(controllers))
                )
            )
        rows = self.session.execute(_overdue_candidates().where(concerned), {"on": on}).all()
        arrears = arrears_of(self.session, [loan for loan, _, _ in rows], on)
        by_enterprise: dict[int, list[tuple[Loan, str, date, int]]] = defaultdict(list)
        by_controller: dict[int, list[tuple[Loan, str, date, int]]] = defaultdict(list)
        for loan, code, controller in rows:
            a = arrears[loan.id]
            since, days = a.overdue_since(interest=True), a.days_past_due(interest=True)
            if days <= 0 or since is None:
                continue
            by_enterprise[loan.enterprise_id].append((loan, code, since, days))
            if controller is not None:
                by_controller[controller].append((loan, code, since, days))
        for e in enterprises:
            own = by_enterprise.get(e.id, [])
            others = [
                x
                for x in (by_controller.get(e.controller_id, []) if e.controller_id else [])
                if x[0].enterprise_id != e.id
            ]
            self._overdue[e.id] = tuple(
                OverdueFact(
                    credit_code=code,
                    own=is_own,
                    program=loan.program,
                    contract_no=loan.contract_no if loan.bank_code == self.bank else None,
                    days_past_due=days,
                    overdue_since=since,
                )
                for is_own, group in ((True, own), (False, others))
                for loan, code, since, days in sorted(group, key=lambda x: (x[2], x[1], x[0].id))
            )

    def fund(self, code: str) -> Fund | None:
        """A fund by its code, read once per request (the session's identity map holds
        rows only while something refers to them)."""
        if code not in self._funds_by_code:
            self._funds_by_code[code] = self.session.get(Fund, code)
        return self._funds_by_code[code]

    def outstanding(self, enterprise_id: int) -> int:
        """Principal the enterprise owes on the programme's open loans, counting the loans
        this request accepted before (a batch inserts them only at its end). In a batch,
        read for all its enterprises together."""
        if enterprise_id not in self._owed:
            ids = self._batch_ids(enterprise_id)
            owed = repo.outstanding_for_enterprises(self.session, ids, self.program)
            self._owed |= {i: owed.get(i, 0) for i in ids}
        return self._owed[enterprise_id] + self._taken_by.get(enterprise_id, 0)

    def last_compensation_on(self, enterprise_id: int) -> date | None:
        """When the programme last compensated a loan of the enterprise (XB-E2); in a
        batch read for all its enterprises together."""
        if enterprise_id not in self._compensated:
            ids = self._batch_ids(enterprise_id)
            paid = repo.last_compensations_on(self.session, ids, self.program)
            self._compensated |= {i: paid.get(i) for i in ids}
        return self._compensated[enterprise_id]

    def _batch_ids(self, enterprise_id: int) -> list[int]:
        """The enterprise and, in a batch that names it, every enterprise of the batch."""
        batch = sorted({e.id for e in self._enterprises.values() if e is not None})
        return batch if self.preloaded and enterprise_id in batch else [enterprise_id]

    # --- a batch's accepted items are facts for the next ones -------------------------
    def accepted(self, loan: Loan) -> None:
        """Called for each accepted loan (more than once is harmless)."""
        first = loan.contract_no not in self._contracts
        self._contracts.add(loan.contract_no)
        if loan.program == self.program:
            self._active.add(loan.enterprise_id)
            if first:
                taken = self._taken_by.get(loan.enterprise_id, 0)
                self._taken_by[loan.enterprise_id] = taken + loan.principal_fen


# Statements built once: SQLAlchemy then reuses their compiled form and cache key, which
# costs more to make than to run for statements this small.
@cache
def _first_look(
    program: str,
) -> Select[Enterprise, bool, int | None, int | None, int | None, int | None]:
    taken = (
        select(Loan.id)
        .where(Loan.bank_code == bindparam("bank"), Loan.contract_no == bindparam("contract"))
        .exists()
    )
    lpr = (
        select(LprRate.rate_bp)
        .where(LprRate.effective_on <= bindparam("on"))
        .order_by(LprRate.effective_on.desc())
        .limit(1)
        .scalar_subquery()
    )
    quota = [
        select(column)
        .where(ProgramQuota.program == program, ProgramQuota.year == bindparam("year"))
        .scalar_subquery()
        for column in (ProgramQuota.id, ProgramQuota.amount_fen, ProgramQuota.used_fen)
    ]
    return (
        select(Enterprise, taken, lpr, *quota)
        .where(Enterprise.credit_code == bindparam("code"))
        .with_for_update(of=Enterprise, key_share=True)
    )


@cache
def _overdue_candidates() -> Select[Loan, str, int | None]:
    """The loans, with their enterprise's credit code and controller, that could be in
    arrears on the date `on` (the caller adds which enterprises): not settled, disbursed
    by then, and with an instalment due before it (or, without a schedule, the maturity)
    or a report of their bank dated by then. `arrears_of` decides which are."""
    on = bindparam("on", type_=Loan.disbursed_on.type)
    due = (
        select(LoanInstalment.id)
        .where(LoanInstalment.loan_id == Loan.id, LoanInstalment.due_on < on)
        .exists()
    )
    reported = (
        select(DelinquencyReport.id)
        .where(DelinquencyReport.loan_id == Loan.id, DelinquencyReport.as_of <= on)
        .exists()
    )
    return (
        select(Loan, Enterprise.credit_code, Enterprise.controller_id)
        .join(Enterprise, Enterprise.id == Loan.enterprise_id)
        .where(
            Loan.settled_on.is_(None),
            Loan.disbursed_on <= on,
            or_(Loan.maturity_on < on, due, reported),
        )
        .order_by(Loan.id)
    )


@cache
def _nearest_city_fund(program: str, with_enterprise: bool) -> Select[Any]:
    up = (
        select(Region.code, Region.parent_code, literal(0).label("depth"))
        .where(Region.code == bindparam("region"))
        .cte("up", recursive=True)
    )
    parent = aliased(Region)
    up = up.union(
        select(parent.code, parent.parent_code, (up.c.depth + 1).label("depth")).where(
            parent.code == up.c.parent_code, up.c.depth < 10
        )
    )
    covering = and_(
        Agreement.fund_code == Fund.code,
        Agreement.bank_code == bindparam("bank"),
        Agreement.program == program,
        Agreement.start_on <= bindparam("on"),
        Agreement.end_on > bindparam("on"),
    )
    facts = []
    if with_enterprise:
        facts = [
            select(LibraryEvent.action)
            .where(
                LibraryEvent.enterprise_id == bindparam("enterprise"),
                LibraryEvent.program == program,
            )
            .order_by(LibraryEvent.id.desc())
            .limit(1)
            .scalar_subquery(),
            select(Loan.id)
            .where(
                Loan.enterprise_id == bindparam("enterprise"),
                Loan.program == program,
                Loan.status == "active",
            )
            .exists(),
        ]
    return (
        select(Fund, Agreement, *facts)
        .join(up, Fund.region_code == up.c.code)
        .outerjoin(Agreement, covering)
        .where(Fund.program == program, Fund.kind == "city")
        .order_by(up.c.depth, Agreement.start_on.desc())
        .limit(1)
    )
