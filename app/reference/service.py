"""Use cases for reference data. Services flush, never commit."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from typing import Any

from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.auth.principal import Principal
from app.errors import (
    AlreadyExists,
    NotFound,
    RoleNotAllowed,
    Unprocessable,
    ValidationFailed,
    Violation,
    refusal,
)
from app.kit.calendar import add_months
from app.kit.pagination import PageParams, paginate
from app.kit.statemachine import InvalidTransition, Transition, TransitionTable
from app.models import (
    Agreement,
    AgreementEvent,
    Bank,
    Enterprise,
    Fund,
    FundContributor,
    FundEvent,
    LprRate,
    Region,
)
from app.models.base import Base
from app.programs.base import get_program
from app.reference import persons
from app.reference import repository as repo
from app.reference import schemas as s
from app.reference.errors import FieldNotAllowed, FieldRequired, UnknownReference


def _exists(session: Session, model: type[Base], key: Any) -> bool:
    return key is not None and session.get(model, key) is not None


class RegionNotFound(NotFound):
    title, title_zh = "Region not found", "行政区划不存在"


class BankNotFound(NotFound):
    title, title_zh = "Bank not found", "合作银行不存在"


class AgreementNotFound(NotFound):
    title, title_zh = "Agreement not found", "合作协议不存在"


class LprNotFound(NotFound):
    title, title_zh = "No LPR in force on the date", "该日无适用的贷款市场报价利率"


class EnterpriseNotFound(NotFound):
    title, title_zh = "Enterprise not found", "企业不存在"


def _missing_ref(loc: str, what: str, key: Any) -> Violation:
    return UnknownReference.violation(f"unknown {what} {key!r}", "body", loc)


def _already_exists(what: str, key: Any, loc: str) -> AlreadyExists:
    return AlreadyExists(
        f"{what} {key!r} already exists",
        [AlreadyExists.violation(f"{what} already exists", "body", loc)],
    )


def _refuse(detail: str, violations: list[Violation]) -> None:
    """Refuse with every violation listed; the code is the first one's."""
    if violations:
        raise refusal(violations, detail)


# --- regions -------------------------------------------------------------------------
def create_region(session: Session, *, data: s.RegionCreate) -> Region:
    if session.get(Region, data.code) is not None:
        raise _already_exists("region", data.code, "code")
    errors = []
    if data.parent_code is not None and not _exists(session, Region, data.parent_code):
        errors.append(_missing_ref("parent_code", "region", data.parent_code))
    if data.level != "province" and not data.parent_code:
        errors.append(
            FieldRequired.violation("required below province level", "body", "parent_code")
        )
    _refuse("the region refers to data that does not exist", errors)
    region = Region(**data.model_dump())
    session.add(region)
    session.flush()
    return region


def get_region(session: Session, code: str) -> Region:
    region = session.get(Region, code)
    if region is None:
        raise RegionNotFound(f"region {code!r} not found")
    return region


# --- banks ---------------------------------------------------------------------------
def create_bank(session: Session, *, data: s.BankCreate) -> Bank:
    if session.get(Bank, data.code) is not None:
        raise _already_exists("bank", data.code, "code")
    if session.scalars(select(Bank.code).where(Bank.name == data.name)).first() is not None:
        raise _already_exists("bank named", data.name, "name")
    bank = Bank(**data.model_dump())
    session.add(bank)
    session.flush()
    return bank


def get_bank(session: Session, code: str) -> Bank:
    bank = session.get(Bank, code)
    if bank is None:
        raise BankNotFound(f"bank {code!r} not found")
    return bank


# --- funds ---------------------------------------------------------------------------
class FundNotFound(NotFound):
    title, title_zh = "Fund not found", "基金不存在"


class ContributorExists(AlreadyExists):
    title, title_zh = "Contributor already registered", "出资人已登记"


class ContributorRefused(Unprocessable):
    """The finance bureau of a city fund's region cannot be registered as the fund's
    contributor (e.g. the region's name is too long for a contributor's); `errors` lists
    why. The fund was not created."""

    code, title, title_zh = "invalid_contributor", "Contributor refused", "出资人登记被拒"


class CommitmentRequired(Unprocessable):
    """A contributor of this programme's fund commits its capital (认缴出资): `committed`
    is required and more than 0.00 (XB-F0)."""

    code, rule = "commitment_required", "XB-F0"
    title, title_zh = "Committed capital required", "须认缴出资额"


class ParentFundInvalid(Unprocessable):
    """A sub-fund's `parent_code` names an existing pool of the same programme."""

    code = "invalid_parent_fund"
    title, title_zh = "Not a pool of the programme", "子基金须隶属同一项目的基金池"


class FundProgramMismatch(Unprocessable):
    """The fund named belongs to another programme than the one the request is for."""

    code = "fund_program_mismatch"
    title, title_zh = "Fund of another programme", "基金不属于该项目"


class AgreementRegionMismatch(Unprocessable):
    """An agreement with an SKD city/county fund covers that fund's region: its
    `region_code` is the fund's."""

    code = "agreement_region_mismatch"
    title, title_zh = "Region other than the fund's", "合作地区与市县资金所属地区不一致"


class ControllerNameMismatch(Unprocessable):
    """The actual controller's ID number is recorded (or given earlier in the same
    batch) under another name: one ID number is one person. Nothing was written."""

    code = "controller_name_mismatch"
    title, title_zh = "Controller's name does not match", "实际控制人姓名与已登记的不一致"


class FundNotStopped(InvalidTransition):
    title, title_zh = "Fund not stopped", "基金未处于暂停新增业务状态"


class AgreementAuthorityOnly(RoleNotAllowed):
    title, title_zh = "Decided by the programme's authority", "须由该项目的主管角色决定"


def create_fund(session: Session, *, data: s.FundCreate) -> Fund:
    """A fund; an SKD city/county fund is created with its region's finance bureau
    registered as its contributor (`register_city_fund_contributor`)."""
    if session.get(Fund, data.code) is not None:
        raise _already_exists("fund", data.code, "code")
    errors = []
    if data.region_code is not None and not _exists(session, Region, data.region_code):
        errors.append(_missing_ref("region_code", "region", data.region_code))
    if data.kind == "city" and data.region_code is None:
        errors.append(
            FieldRequired.violation("a city fund needs its region", "body", "region_code")
        )
    if data.kind == "sub_fund":
        parent = session.get(Fund, data.parent_code) if data.parent_code is not None else None
        if parent is None or parent.kind != "pool" or parent.program != data.program:
            errors.append(
                ParentFundInvalid.violation(
                    "a sub-fund needs an existing pool of the same programme",
                    "body",
                    "parent_code",
                )
            )
    elif data.parent_code is not None:
        errors.append(
            FieldNotAllowed.violation("only a sub-fund has a parent", "body", "parent_code")
        )
    _refuse("the fund is not consistent", errors)
    fund = Fund(**data.model_dump())
    session.add(fund)
    session.flush()
    register_city_fund_contributor(session, fund)
    return fund


def get_fund(session: Session, code: str) -> Fund:
    fund = session.get(Fund, code)
    if fund is None:
        raise FundNotFound(f"fund {code!r} not found")
    return fund


def register_contributor(
    session: Session, *, fund_code: str, data: s.ContributorCreate
) -> FundContributor:
    """Register who pays capital into a fund (出资人): code and name unique within the
    fund, a known region, and a commitment where the programme requires one (XB-F0)."""
    fund = repo.fund_for_update(session, fund_code)
    if fund is None:
        raise FundNotFound(f"fund {fund_code!r} not found")
    clashes = repo.contributor_clashes(session, fund.code, code=data.code, name=data.name)
    if clashes:
        taken = [
            AlreadyExists.violation(f"{fund.code} already has a contributor {value}", "body", field)
            for field, value in (("code", data.code), ("name", data.name))
            if any(getattr(c, field) == value for c in clashes)
        ]
        raise ContributorExists(f"the contributor is already registered with {fund.code}", taken)
    errors = []
    if data.region_code is not None and not _exists(session, Region, data.region_code):
        errors.append(_missing_ref("region_code", "region", data.region_code))
    committed = data.committed or 0
    if get_program(fund.program).policy.capital_commitment_required and committed <= 0:
        errors.append(
            CommitmentRequired.violation(
                f"a {fund.program} contributor commits its capital: more than 0.00",
                "body",
                "committed",
            )
        )
    _refuse(f"the contributor of {fund.code} was refused", errors)
    contributor = FundContributor(
        fund_code=fund.code,
        code=data.code,
        name=data.name,
        region_code=data.region_code,
        committed_fen=committed,
    )
    session.add(contributor)
    session.flush()
    return contributor


def register_city_fund_contributor(session: Session, fund: Fund) -> FundContributor | None:
    """SPEC §2, SKD-C1: the finance bureau of a city/county fund's region (南京市 →
    南京市财政局, code FINANCE_320100) pays the fund's capital. Registered with the fund,
    no commitment, so capital can be paid in at once; None where the programme names
    no such contributor."""
    template = get_program(fund.program).policy.city_fund_contributor
    if template is None or fund.kind != "city" or fund.region_code is None:
        return None
    region = get_region(session, fund.region_code)
    try:
        data = s.ContributorCreate.model_validate(
            {
                "code": template.code_for(region.code),
                "name": template.name_for(region.name),
                "region_code": region.code,
            }
        )
    except ValidationError as exc:  # e.g. a region name too long for a contributor's
        raise ContributorRefused(
            f"the finance bureau of {region.code} cannot be registered with {fund.code}",
            [
                ContributorRefused.violation(str(e["msg"]), "body", "region_code")
                for e in exc.errors()
            ],
        ) from None
    return register_contributor(session, fund_code=fund.code, data=data)


def list_contributors(
    session: Session, *, fund_code: str, page: PageParams
) -> tuple[Sequence[FundContributor], str | None]:
    get_fund(session, fund_code)
    return paginate(session, repo.contributors_query(fund_code), FundContributor.id, page)


def fund_detail(session: Session, fund: Fund) -> s.FundDetail:
    contributors: Sequence[FundContributor] = repo.contributors(session, fund.code)
    return s.FundDetail(
        **s.FundOut.model_validate(fund).model_dump(),
        contributors=[s.ContributorOut.model_validate(c) for c in contributors],
        committed_capital=sum(c.committed_fen for c in contributors),
    )


# --- agreements ----------------------------------------------------------------------
AGREEMENT_TRANSITIONS = TransitionTable(
    "agreement",
    [
        Transition("suspend", frozenset({"active"}), "suspended"),
        Transition("resume", frozenset({"suspended"}), "active"),
        Transition("terminate", frozenset({"active", "suspended"}), "terminated"),
    ],
)


def create_agreement(session: Session, *, data: s.AgreementCreate, actor: Principal) -> Agreement:
    program = get_program(data.program).policy
    errors = []
    if not _exists(session, Bank, data.bank_code):
        errors.append(_missing_ref("bank_code", "bank", data.bank_code))
    fund = session.get(Fund, data.fund_code)
    if fund is None:
        errors.append(_missing_ref("fund_code", "fund", data.fund_code))
    elif fund.program != data.program:
        errors.append(
            FundProgramMismatch.violation(
                f"fund {fund.code} belongs to {fund.program}, not {data.program}",
                "body",
                "fund_code",
            )
        )
    if data.region_code is not None and not _exists(session, Region, data.region_code):
        errors.append(_missing_ref("region_code", "region", data.region_code))
    if fund is not None and fund.kind == "city" and data.region_code != fund.region_code:
        errors.append(
            AgreementRegionMismatch.violation(
                f"a city-fund agreement covers the fund's region {fund.region_code}",
                "body",
                "region_code",
            )
        )
    _refuse("the agreement refers to data that does not exist or does not fit", errors)
    term = data.term_months or program.agreement_term_months
    agreement = Agreement(
        bank_code=data.bank_code,
        program=data.program,
        fund_code=data.fund_code,
        region_code=data.region_code,
        start_on=data.start_on,
        end_on=add_months(data.start_on, term),
        status="active",
        terms=data.terms,
    )
    session.add(agreement)
    session.flush()
    session.add(
        AgreementEvent(
            agreement_id=agreement.id,
            action="create",
            from_status=None,
            to_status="active",
            reason="agreement signed",
            actor_id=actor.user_id,
        )
    )
    session.flush()
    return agreement


def get_agreement(session: Session, agreement_id: int, *, principal: Principal) -> Agreement:
    agreement = session.get(Agreement, agreement_id)
    if agreement is None or not principal.can_see_bank(agreement.bank_code):
        raise AgreementNotFound(f"agreement {agreement_id} not found")
    return agreement


def agreement_detail(session: Session, agreement: Agreement) -> s.AgreementDetail:
    history = repo.agreement_history(session, agreement.id)
    return s.AgreementDetail(
        **s.AgreementOut.model_validate(agreement).model_dump(),
        history=[s.AgreementEventOut.model_validate(e) for e in history],
    )


def change_agreement_status(
    session: Session, *, agreement_id: int, action: str, reason: str, actor: Principal
) -> Agreement:
    """Suspend, resume or terminate, guarded by the transition table; SKD agreements are
    decided by the province reviewer, XB agreements by the committee."""
    agreement = repo.agreement_for_update(session, agreement_id)
    if agreement is None or not actor.can_see_bank(agreement.bank_code):
        raise AgreementNotFound(f"agreement {agreement_id} not found")
    program = get_program(agreement.program).policy
    if actor.role != program.agreement_authority_role:
        raise AgreementAuthorityOnly(
            f"{agreement.program} agreements are {action}ed by {program.agreement_authority_role}"
        )
    to_status = AGREEMENT_TRANSITIONS.target(action, agreement.status)
    session.add(
        AgreementEvent(
            agreement_id=agreement.id,
            action=action,
            from_status=agreement.status,
            to_status=to_status,
            reason=reason,
            actor_id=actor.user_id,
        )
    )
    agreement.status = to_status
    session.flush()
    return agreement


# --- LPR -----------------------------------------------------------------------------
def create_lpr(session: Session, *, data: s.LprCreate) -> LprRate:
    if repo.lpr_on(session, data.effective_on) is not None:
        raise _already_exists("LPR for", data.effective_on.isoformat(), "effective_on")
    rate = LprRate(effective_on=data.effective_on, rate_bp=data.rate_bp)
    session.add(rate)
    session.flush()
    return rate


def lpr_in_force(session: Session, on: date) -> LprRate:
    rate = repo.lpr_in_force(session, on)
    if rate is None:
        raise LprNotFound(f"no 1-year LPR is recorded in force on {on.isoformat()}")
    return rate


# --- enterprises ---------------------------------------------------------------------
def _enterprise_values(
    data: s.EnterpriseFacts | s.EnterprisePatch, fields: set[str]
) -> dict[str, Any]:
    values = data.model_dump(include=fields - {"controller"})
    if "prior_year_revenue" in values:
        values["prior_year_revenue_fen"] = values.pop("prior_year_revenue")
    return values


def _controller_id(
    session: Session, controller: s.ControllerIn | None, key: str | None
) -> int | None:
    """The person the controller is (recorded now if new), or None for none; a number
    recorded under another name is refused (the request then writes nothing)."""
    if controller is None:
        return None
    if key is None:
        raise RuntimeError("an actual controller is recorded with the server's PERSON_ID_KEY")
    digest = persons.id_hash(controller.id_number, key)
    known = persons.ensure_persons(session, {digest: controller.name})[digest]
    if persons.name_mismatch(known, controller.name):
        raise ControllerNameMismatch(
            "the actual controller's name does not match",
            [ControllerNameMismatch.violation(persons.NAME_MISMATCH, "body", "controller", "name")],
        )
    return known.id


def create_enterprise(
    session: Session, *, data: s.EnterpriseCreate, person_key: str | None = None
) -> Enterprise:
    """Register an enterprise; `person_key` (settings.person_id_key) hashes its actual
    controller's ID number, when one is given."""
    if repo.enterprise_by_code(session, data.credit_code) is not None:
        raise _already_exists("enterprise", data.credit_code, "credit_code")
    if not _exists(session, Region, data.region_code):
        _refuse("unknown region", [_missing_ref("region_code", "region", data.region_code)])
    enterprise = Enterprise(**_enterprise_values(data, set(type(data).model_fields)))
    enterprise.controller_id = _controller_id(session, data.controller, person_key)
    session.add(enterprise)
    session.flush()
    return enterprise


def get_enterprise(session: Session, credit_code: str) -> Enterprise:
    enterprise = repo.enterprise_by_code(session, credit_code.strip().upper())
    if enterprise is None:
        raise EnterpriseNotFound(f"enterprise {credit_code!r} not found")
    return enterprise


NULLABLE = ("tax_credit_rating", "env_credit_rating", "controller")


def update_enterprise(
    session: Session, *, credit_code: str, data: s.EnterprisePatch, person_key: str | None = None
) -> Enterprise:
    enterprise = get_enterprise(session, credit_code)
    sent = data.model_fields_set
    nulls = [f for f in sent if getattr(data, f) is None and f not in NULLABLE]
    errors = [ValidationFailed.violation("may not be null", "body", f) for f in sorted(nulls)]
    if data.region_code is not None and not _exists(session, Region, data.region_code):
        errors.append(_missing_ref("region_code", "region", data.region_code))
    _refuse("the update is not valid", errors)
    for key, value in _enterprise_values(data, sent).items():
        setattr(enterprise, key, value)
    if "controller" in sent:
        enterprise.controller_id = _controller_id(session, data.controller, person_key)
    session.flush()
    session.refresh(enterprise, ["controller"])
    return enterprise


# A fund's status changes (XB-Q2: the fund-wide stop and its lifting), each recorded.
FUND_TRANSITIONS = TransitionTable(
    "fund",
    [
        Transition("stop", frozenset({"active"}), "stopped"),
        Transition("resume", frozenset({"stopped"}), "active"),
    ],
)


def set_fund_status(
    session: Session, fund: Fund, action: str, *, reason: str, actor: Principal
) -> FundEvent:
    """The one place a fund's status changes: checked against the table (409
    `invalid_transition`), with a `fund_events` history row."""
    before = fund.status
    fund.status = FUND_TRANSITIONS.target(action, before)
    event = FundEvent(
        fund_code=fund.code,
        action=action,
        from_status=before,
        to_status=fund.status,
        reason=reason,
        actor_id=actor.user_id,
    )
    session.add(event)
    session.flush()
    return event


def resume_fund(session: Session, *, code: str, reason: str, actor: Principal) -> Fund:
    """XB-Q2: only the committee lifts a fund-wide stop; the change is recorded."""
    fund = session.scalars(
        select(Fund).where(Fund.code == code).with_for_update(key_share=True)
    ).first()
    if fund is None:
        raise FundNotFound(f"fund {code} not found")
    if fund.status != "stopped":
        raise FundNotStopped(
            f"fund {code} is {fund.status}, not stopped",
            [FundNotStopped.violation(f"fund status is {fund.status}", "status")],
        )
    set_fund_status(session, fund, "resume", reason=reason, actor=actor)
    return fund
