"""The `Program` protocol and its registry keyed by programme code.

Services ask the registry for the programme's policy instead of branching on the code.
Policy numbers are data here, each tagged with the SPEC rule it comes from."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, replace
from datetime import date, datetime
from typing import TYPE_CHECKING, Any, Protocol

from app.errors import AppError, Conflict, NotFound, Violation
from app.kit.calendar import provisional_note
from app.kit.money import format_fen


class NotOfferedByProgramme(Conflict):
    """The programme the object belongs to has no such thing (e.g. XB-R2 refunds or
    receipts on an SKD claim, the SKD library for an XB enterprise); the detail names
    what and the programme."""

    code = "not_offered_by_programme"
    title, title_zh = "Not offered by this programme", "该项目不提供此项业务"


if TYPE_CHECKING:
    from pydantic import BaseModel
    from sqlalchemy import ColumnElement
    from sqlalchemy.orm import Session

    from app.auth.principal import Principal
    from app.claims.workflow import Workflow
    from app.ledger.service import EntrySpec
    from app.loans.lookups import FilingLookups
    from app.loans.schemas import LoanFile
    from app.loans.servicing import Position
    from app.models import (
        Claim,
        ClaimClawback,
        ClaimReceipt,
        ClaimRecovery,
        Enterprise,
        Fund,
        Loan,
        QuarterEvaluation,
    )
    from app.programs.sukedai.library import Criterion
    from app.reports.annual import AnnualFigures, AnnualPart
    from app.reports.quarterly import QuarterlyPart


class Program(Protocol):
    """A programme: its policy numbers (`policy`) and its behaviour. `app/loans/`,
    `app/claims/`, `app/ledger/` and the endpoints ask the registry for the loan's or
    claim's programme and call these; they never name a programme."""

    @property
    def policy(self) -> ProgramPolicy: ...
    @property
    def code(self) -> str: ...
    @property
    def name_zh(self) -> str: ...
    @property
    def name_en(self) -> str: ...
    @property
    def workflow(self) -> Workflow: ...
    # the working days a bank has to pay the fund its share of a collection (XB-R1);
    # None: the return is posted at once (SKD-R1)
    @property
    def recovery_due_working_days(self) -> int | None: ...
    # who runs the programme's quarter-end evaluation, and the rule it applies
    @property
    def quarter_end_role(self) -> str: ...
    @property
    def quarter_end_rule(self) -> str: ...
    @property
    def has_library(self) -> bool: ...
    @property
    def has_quota(self) -> bool: ...
    @property
    def filing_fields(self) -> frozenset[str]: ...
    # the refusals the programme's own rules may answer, by operation (`file_loan`,
    # `quota`, `library`): the endpoints that run them declare them
    # (`declared_refusals`); a claim's are its workflow's (`Workflow.refusals`)
    @property
    def refusals(self) -> Mapping[str, tuple[type[AppError], ...]]: ...

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
        """Check the filing against the programme's rules (every violation at once) and
        record the loan. In a batch (`batch`), the loan may be returned unflushed (no
        id): the batch inserts such loans together and posts their exposure."""
        ...

    def exposure_parts(self, loan: Loan, principal_fen: int) -> list[tuple[str, int]]:
        """(fund, fen): each fund's guarantee exposure on `principal_fen` of the loan."""
        ...

    def quota_exceeded(self, quota_fen: int, used_fen: int) -> Violation:
        """The refusal of a filing that no longer fits the year's quota (SKD-F6)."""
        ...

    def check_fund_params(self, params: dict[str, Any]) -> None:
        """Raise ValueError when a fund's per-fund terms (`params`) are not acceptable."""
        ...

    def library_criteria(self, enterprise: Enterprise) -> list[Criterion]:
        """The library's admission criteria, each passed or not (SKD-E1)."""
        ...

    # --- claims -------------------------------------------------------------------
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
        """The claim on the loan (unsaved), after the programme's claim rules."""
        ...

    def claim_scope(self, principal: Principal) -> ColumnElement[bool] | None:
        """The programme's claims a fund manager of `principal.fund_code` sees, or None
        when that fund is not one of the programme's managing funds."""
        ...

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
    ) -> ClaimRecovery: ...

    def receivable(
        self,
        recoveries: list[ClaimRecovery],
        clawbacks: list[ClaimClawback],
        receipts: list[ClaimReceipt],
    ) -> int:
        """What the bank still owes the fund on a claim (0 where returns are cash)."""
        ...

    def clawback(
        self,
        session: Session,
        *,
        claim_id: int,
        kind: str,
        reason: str,
        decided_on: date,
        actor: Principal,
        today: date,
        now: datetime,
    ) -> ClaimClawback: ...

    def receive(
        self,
        session: Session,
        *,
        claim_id: int,
        received_on: date,
        amount_fen: int,
        actor: Principal,
        today: date,
        now: datetime,
    ) -> ClaimReceipt: ...

    # --- evaluations, views -------------------------------------------------------
    def evaluate_quarter(
        self, session: Session, run: QuarterEvaluation, *, actor: Principal, today: date
    ) -> None:
        """Store the programme's quarter-end results on `run` (SKD-Q3, XB-Q1)."""
        ...

    def exposure(self, session: Session, bank_code: str, *, on: date) -> BaseModel:
        """The bank's exposure view: caps, limits, NPL and suspensions (SKD-Q1…Q3,
        XB-Q1)."""
        ...

    def fund_leverage(self, session: Session, fund: Fund, *, on: date) -> tuple[int, int] | None:
        """(loans outstanding under the fund, target multiple) where the programme
        reports leverage for this fund (XB-F1), else None."""
        ...

    # --- the quarterly report -----------------------------------------------------
    def quarterly_report(self) -> QuarterlyPart:
        """The programme's part of the quarterly report: its products, the NPL threshold
        its figures are read against, its caps or limits, fund figures and the ledger
        lines it reconciles (SKD-Q1…Q3, XB-Q1, XB-Q2, XB-F1)."""
        ...

    # --- the annual report --------------------------------------------------------
    def annual_report(self, session: Session, figures: AnnualFigures) -> AnnualPart:
        """The programme's part of the annual report from the year's figures per bank:
        SKD-A1's assessment, XB's evaluation with a recommendation per bank (XB-Rep)."""
        ...


@dataclass(frozen=True)
class CityFundContributor:
    """Who pays capital into a city/county fund, registered with the fund when it is
    created: `{region}` in the code is the fund's region code, `{region_name}` in the name
    the region's name."""

    code: str
    name: str

    def code_for(self, region_code: str) -> str:
        return self.code.format(region=region_code)

    def name_for(self, region_name: str) -> str:
        return self.name.format(region_name=region_name)


@dataclass(frozen=True)
class ArrearsRule:
    """Which arrears a rule counts and from how many days past due (SPEC M-6): days past
    due run from the earliest instalment with principal unpaid, or with principal or
    interest unpaid where `interest` is set; the bank's reported view counts where it is
    worse. `purpose` is how the service uses it: `claim` (the claim threshold) or `npl`
    (the non-performing boundary of the quarter-end and exposure figures)."""

    rule: str
    purpose: str
    days: int
    interest: bool
    label_zh: str
    label_en: str


@dataclass(frozen=True)
class ProgramPolicy:
    code: str
    name_zh: str
    name_en: str
    agreement_term_months: int  # SPEC §2 (SKD: 3 years)
    agreement_authority_role: str  # who suspends/resumes/terminates agreements
    filing_deadline_working_days: int  # SKD-F2: 5, XB-F2: 10
    # after the deadline: "refused" (SKD-F2) or "not_compensable" (XB-F2, XB-N7)
    late_filing: str = "refused"
    # the rule a late filing breaks, named in the refusal or the flag
    late_filing_rule: str = ""
    # the securities the filing deadline binds; None: every loan (XB-F2: credit loans only,
    # a guaranteed loan carries the guarantor's consent letter instead)
    filing_deadline_securities: tuple[str, ...] | None = None
    # XB-F0: every contributor commits its capital, and pays in no more than that. Without
    # it a contributor may be registered with no commitment (0.00: no schedule, no cap).
    capital_commitment_required: bool = False
    # SPEC §2 / SKD-C1: the finance bureau of the region pays into its city/county fund.
    city_fund_contributor: CityFundContributor | None = None
    # SPEC M-6: the arrears each rule counts (the claim threshold and the NPL boundary);
    # a programme that names none counts principal and interest, 90 days for both
    arrears_rules: tuple[ArrearsRule, ...] = (
        ArrearsRule("M-6", "claim", 90, True, "代偿申请门槛", "claim threshold"),
        ArrearsRule("M-6", "npl", 90, True, "不良贷款", "non-performing"),
    )
    # the delinquency buckets' upper bounds in days past due: current (0), 1–30, 31–44,
    # 45–89 and 90+ by default
    dpd_buckets: tuple[int, ...] = (30, 44, 89)
    # XB-Rep: the bank's monthly loan-level status file is due by this day of the next month
    status_report_day: int = 10

    def arrears_rule(self, purpose: str) -> ArrearsRule:
        """The programme's arrears rule for a purpose (`claim`, `npl`)."""
        for r in self.arrears_rules:
            if r.purpose == purpose:
                return r
        raise LookupError(f"{self.code} has no arrears rule for {purpose}")

    def bucket(self, days_past_due: int) -> str:
        """The delinquency bucket of a number of days past due: `current`, `1-30`, …, `90+`."""
        if days_past_due <= 0:
            return "current"
        low = 1
        for high in self.dpd_buckets:
            if days_past_due <= high:
                return f"{low}-{high}"
            low = high + 1
        return f"{low}+"

    def bucket_names(self) -> list[str]:
        names, low = ["current"], 1
        for high in self.dpd_buckets:
            names.append(f"{low}-{high}")
            low = high + 1
        return [*names, f"{low}+"]

    def filing_deadline_applies(self, security: str) -> bool:
        """Whether a loan of this security is late after the filing deadline (SKD-F2,
        XB-F2); where it does not, the deadline is stored for reference only."""
        only = self.filing_deadline_securities
        return only is None or security in only


class ProgramBase:
    """What most programmes share: identity read from the policy, and the capabilities a
    programme may go without — collections due later (XB-R1), refunds and receipts after
    payment (XB-R2), a library, leverage reporting. A programme subclasses it and
    implements the rest of `Program`."""

    policy: ProgramPolicy
    recovery_due_working_days: int | None = None
    has_library = False
    has_quota = False  # an annual issuance quota (SKD-F6)
    # fields of a filing only this programme accepts (others refuse them)
    filing_fields: frozenset[str] = frozenset()
    # the refusals of the programme's own rules, by operation (`declared_refusals`)
    refusals: Mapping[str, tuple[type[AppError], ...]] = {}

    @property
    def code(self) -> str:
        return self.policy.code

    @property
    def name_zh(self) -> str:
        return self.policy.name_zh

    @property
    def name_en(self) -> str:
        return self.policy.name_en

    def claim_scope(self, principal: Principal) -> ColumnElement[bool] | None:
        return None

    def receivable(
        self,
        recoveries: list[ClaimRecovery],
        clawbacks: list[ClaimClawback],
        receipts: list[ClaimReceipt],
    ) -> int:
        return 0

    def _not_offered(self, what: str) -> Conflict:
        return NotOfferedByProgramme(
            f"the {self.code} programme has no {what}",
            [NotOfferedByProgramme.violation(f"not offered by {self.code}")],
        )

    def clawback(
        self,
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
        raise self._not_offered("refunds of compensation")

    def receive(
        self,
        session: Session,
        *,
        claim_id: int,
        received_on: date,
        amount_fen: int,
        actor: Principal,
        today: date,
        now: datetime,
    ) -> ClaimReceipt:
        raise self._not_offered("receipts from banks")

    def fund_leverage(self, session: Session, fund: Fund, *, on: date) -> tuple[int, int] | None:
        return None

    def quarterly_report(self) -> QuarterlyPart:
        """The generic quarterly figures: products as filed, nothing added."""
        from app.reports.quarterly import QuarterlyPart

        return QuarterlyPart()

    def annual_report(self, session: Session, figures: AnnualFigures) -> AnnualPart:
        """The year's figures per bank as they are, without a programme's assessment."""
        from app.reports.annual import generic_part

        return generic_part(figures)

    def library_criteria(self, enterprise: Enterprise) -> list[Criterion]:
        raise self._not_offered("library of enterprises")

    def check_fund_params(self, params: dict[str, Any]) -> None:
        """Raise ValueError when a fund's `params` break the programme's terms."""

    def exposure(self, session: Session, bank_code: str, *, on: date) -> BaseModel:
        raise self._not_offered("exposure view")

    def quota_exceeded(self, quota_fen: int, used_fen: int) -> Violation:
        """The annual quota's refusal (its class is SKD-F6's, the one quota rule the
        service knows), under no rule ID of its own: a programme names its rule."""
        from app.programs.sukedai.filing import AnnualQuotaExceeded

        left = format_fen(max(quota_fen - used_fen, 0))
        found = AnnualQuotaExceeded.violation(
            f"the year's quota has {left} left", "body", "principal"
        )
        return replace(found, rule=None)


def late_filing_flag(program: ProgramPolicy, on: date, provisional: bool) -> str:
    """The flag of a loan accepted after its filing deadline `on` (the one text, so the
    recompute on a calendar publication recognises it: `is_late_filing_flag`)."""
    tail = "; not compensable" if program.late_filing == "not_compensable" else ""
    note = provisional_note(on, provisional)
    return f"{program.late_filing_rule}: filed after the deadline {on.isoformat()}{tail}{note}"


def is_late_filing_flag(program: ProgramPolicy, flag: str) -> bool:
    return flag.startswith(f"{program.late_filing_rule}: filed after the deadline")


# The flag a review sets on a loan found not eligible when granted (SKD-S2): it bars
# compensation for good, whatever a calendar publication later says of its filing.
INELIGIBLE_AT_GRANT = "not eligible at grant"


def bars_compensation_for_good(flag: str) -> bool:
    return INELIGIBLE_AT_GRANT in flag


# --- the registry ------------------------------------------------------------------
# The built-in programmes register when the registry is first read (their packages use
# the loans and claims machinery, which itself reads the registry: importing them at
# module load would be circular). A plug-in calls `register`.
BUILTIN = ("app.programs.sukedai.program", "app.programs.xinbao.program")
_REGISTRY: dict[str, Program] = {}
_loaded = False


def _registry() -> dict[str, Program]:
    global _loaded
    if not _loaded:
        _loaded = True
        import importlib

        for module in BUILTIN:
            program: Program = importlib.import_module(module).PROGRAM
            _REGISTRY.setdefault(program.code, program)
    return _REGISTRY


def register(program: Program) -> Program:
    """Add a programme; its code must be new. (A database row in `programs` is added by
    `app.reference.programs.ensure_program_rows`.)"""
    registry = _registry()
    if program.code in registry and registry[program.code] is not program:
        raise ValueError(f"programme {program.code} is already registered")
    registry[program.code] = program
    return program


def unregister(code: str) -> None:
    _registry().pop(code, None)


def get_program(code: str) -> Program:
    try:
        return _registry()[code]
    except KeyError:
        known = ", ".join(_registry())
        raise NotFound(f"unknown programme {code!r}; known: {known}") from None


def program_codes() -> tuple[str, ...]:
    return tuple(_registry())


def registered_programs() -> Iterator[Program]:
    yield from list(_registry().values())


def declared_refusals(operation: str) -> tuple[type[AppError], ...]:
    """The refusals every registered programme's rules may answer in `operation`
    (`file_loan`, `quota`, `library`, …), each once, for the `responses=problems(...)` of
    the endpoints that run them: an endpoint outside `app/programs/` documents the
    programmes' refusals without naming a programme. A claim operation's are read from
    the workflows (`Workflow.refusals`, `Stage.refusals`)."""
    found: list[type[AppError]] = []
    for program in registered_programs():
        found += [e for e in program.refusals.get(operation, ()) if e not in found]
    return tuple(found)
