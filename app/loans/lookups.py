"""The facts a filing is checked against, looked up once per request: one query per fact
for a single filing, or a handful of set-based queries for a whole batch (then kept
current as the batch's items are accepted, so they see each other)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.kit.calendar import add_working_days
from app.library import repository as library_repo
from app.loans import repository as repo
from app.models import (
    Agreement,
    Enterprise,
    Fund,
    LibraryEvent,
    Loan,
    LprRate,
    ProgramQuota,
)
from app.programs.base import get_program
from app.reference import repository as reference_repo


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
        self._quotas: dict[int, ProgramQuota | None] = {}
        self._lprs: dict[date, LprRate | None] = {}
        self._deadlines: dict[date, date] = {}
        self.quota_taken: dict[int, int] = {}  # quota id → principal this request files

    def preload(self, credit_codes: Iterable[str], contracts: Iterable[str]) -> None:
        """A batch's facts in set-based queries; enterprises are locked in id order."""
        s, codes = self.session, sorted({c.upper() for c in credit_codes})
        rows = s.scalars(
            select(Enterprise)
            .where(Enterprise.credit_code.in_(codes))
            .order_by(Enterprise.id)
            .with_for_update()
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

    # --- one fact each; cached ------------------------------------------------------
    def enterprise(self, credit_code: str) -> Enterprise | None:
        code = credit_code.upper()
        if code not in self._enterprises:
            self._enterprises[code] = repo.enterprise_for_update(self.session, code)
        return self._enterprises[code]

    def contract_exists(self, contract_no: str) -> bool:
        if self.preloaded:
            return contract_no in self._contracts
        return repo.contract_exists(self.session, self.bank, contract_no)

    def in_library(self, enterprise: Enterprise) -> bool:
        if enterprise.id not in self._members:
            last = library_repo.latest_action(self.session, enterprise.id, self.program)
            self._members[enterprise.id] = last is not None and last != "removed"
        return self._members[enterprise.id]

    def has_active_loan(self, enterprise_id: int) -> bool:
        if self.preloaded:
            return enterprise_id in self._active
        return repo.has_active_loan(self.session, enterprise_id, self.program)

    def city_fund(self, region_code: str) -> Fund | None:
        if region_code not in self._funds:
            regions = library_repo.region_ancestors(self.session, region_code)
            self._funds[region_code] = repo.city_fund_for(self.session, self.program, regions)
        return self._funds[region_code]

    def agreement(self, fund_code: str, on: date) -> Agreement | None:
        key = (fund_code, on)
        if key not in self._agreements:
            self._agreements[key] = repo.agreement_covering(
                self.session, bank_code=self.bank, program=self.program, fund_code=fund_code, on=on
            )
        return self._agreements[key]

    def quota(self, year: int) -> ProgramQuota | None:
        """The year's quota as committed when read, unlocked: the request's own filings
        are counted on top (`quota_used`), and the total is counted in under the row's
        lock at commit (`loans.service._count_in_quota`), so the lock is held only from
        there, and after the loans' own row locks, in the same order for every filing."""
        if year not in self._quotas:
            self._quotas[year] = repo.quota(self.session, self.program, year)
        return self._quotas[year]

    def quota_used(self, quota: ProgramQuota) -> int:
        return quota.used_fen + self.quota_taken.get(quota.id, 0)

    def count_in_quota(self, quota: ProgramQuota, principal_fen: int) -> None:
        self.quota_taken[quota.id] = self.quota_taken.get(quota.id, 0) + principal_fen

    def lpr(self, on: date) -> LprRate | None:
        if on not in self._lprs:
            self._lprs[on] = reference_repo.lpr_in_force(self.session, on)
        return self._lprs[on]

    def deadline(self, disbursed_on: date) -> date:
        if disbursed_on not in self._deadlines:
            days = get_program(self.program).filing_deadline_working_days  # SKD-F2, XB-F2
            self._deadlines[disbursed_on] = add_working_days(disbursed_on, days)
        return self._deadlines[disbursed_on]

    # --- a batch's accepted items are facts for the next ones -------------------------
    def accepted(self, loan: Loan) -> None:
        self._contracts.add(loan.contract_no)
        if loan.program == self.program:
            self._active.add(loan.enterprise_id)
