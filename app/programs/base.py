"""The `Program` protocol and its registry keyed by programme code.

Services ask the registry for the programme's policy instead of branching on the code.
Policy numbers are data here, each tagged with the SPEC rule it comes from."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Protocol

from app.errors import NotFound
from app.kit.calendar import provisional_note


class Program(Protocol):
    @property
    def code(self) -> str: ...
    @property
    def name_zh(self) -> str: ...
    @property
    def name_en(self) -> str: ...
    @property
    def agreement_term_months(self) -> int: ...
    @property
    def agreement_authority_role(self) -> str: ...
    @property
    def filing_deadline_working_days(self) -> int: ...
    @property
    def late_filing(self) -> str: ...
    def filing_deadline_applies(self, security: str) -> bool: ...
    @property
    def capital_commitment_required(self) -> bool: ...
    @property
    def city_fund_contributor(self) -> CityFundContributor | None: ...


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
class ProgramPolicy:
    code: str
    name_zh: str
    name_en: str
    agreement_term_months: int  # SPEC §2 (SKD: 3 years)
    agreement_authority_role: str  # who suspends/resumes/terminates agreements
    filing_deadline_working_days: int  # SKD-F2: 5, XB-F2: 10
    # after the deadline: "refused" (SKD-F2) or "not_compensable" (XB-F2, XB-N7)
    late_filing: str = "refused"
    # the securities the filing deadline binds; None: every loan (XB-F2: credit loans only,
    # a guaranteed loan carries the guarantor's consent letter instead)
    filing_deadline_securities: tuple[str, ...] | None = None
    # XB-F0: every contributor commits its capital, and pays in no more than that. Without
    # it a contributor may be registered with no commitment (0.00: no schedule, no cap).
    capital_commitment_required: bool = False
    # SPEC §2 / SKD-C1: the finance bureau of the region pays into its city/county fund.
    city_fund_contributor: CityFundContributor | None = None

    def filing_deadline_applies(self, security: str) -> bool:
        """Whether a loan of this security is late after the filing deadline (SKD-F2,
        XB-F2); where it does not, the deadline is stored for reference only."""
        only = self.filing_deadline_securities
        return only is None or security in only


SKD = ProgramPolicy(
    code="SKD",
    name_zh="苏科贷",
    name_en="Su Ke Dai (provincial tech-SME credit loans)",
    agreement_term_months=36,
    agreement_authority_role="province_reviewer",
    filing_deadline_working_days=5,
    city_fund_contributor=CityFundContributor(code="FINANCE_{region}", name="{region_name}财政局"),
)
XB = ProgramPolicy(
    code="XB",
    name_zh="连云港市小微企业信用保证基金",
    name_en="Xin Bao (Lianyungang SME credit guarantee fund)",
    agreement_term_months=36,
    agreement_authority_role="committee",
    filing_deadline_working_days=10,
    late_filing="not_compensable",
    filing_deadline_securities=("credit",),  # XB-F2: 第十一条(四) “信用贷款合同”
    capital_commitment_required=True,
)

# the rule a late filing breaks, by how the programme treats it
LATE_FILING_RULE = {"not_compensable": "XB-N7", "refused": "SKD-F2"}


def late_filing_flag(program: Program, on: date, provisional: bool) -> str:
    """The flag of a loan accepted after its filing deadline `on` (the one text, so the
    recompute on a calendar publication recognises it: `is_late_filing_flag`)."""
    rule = LATE_FILING_RULE[program.late_filing]
    tail = "; not compensable" if rule == "XB-N7" else ""
    note = provisional_note(on, provisional)
    return f"{rule}: filed after the deadline {on.isoformat()}{tail}{note}"


def is_late_filing_flag(program: Program, flag: str) -> bool:
    return flag.startswith(f"{LATE_FILING_RULE[program.late_filing]}: filed after the deadline")


_REGISTRY: dict[str, Program] = {p.code: p for p in (SKD, XB)}


def get_program(code: str) -> Program:
    try:
        return _REGISTRY[code]
    except KeyError:
        raise NotFound(f"unknown programme {code!r}; known: {', '.join(_REGISTRY)}") from None


def program_codes() -> tuple[str, ...]:
    return tuple(_REGISTRY)
