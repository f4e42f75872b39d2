"""Reference data endpoints (API.md): thin — authorise, call the service, shape the answer."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any, Literal, get_type_hints

from fastapi import APIRouter, Body, Depends, Path, Query, Request, Response, status
from sqlalchemy.orm import Session

from app.auth.principal import CurrentPrincipal, Principal, require_roles
from app.db import get_session
from app.errors import AlreadyExists, problems
from app.kit.location import set_location
from app.kit.pagination import PAGE_REFUSALS, ObjectId, Page, PageParams, page_params, paginate
from app.kit.statemachine import InvalidTransition
from app.kit.uow import TransactionalRoute
from app.models import Agreement, Bank, Enterprise, Fund, LprRate, Region
from app.programs.fields import ProgramCode
from app.reference import enterprise_batch, service
from app.reference import repository as repo
from app.reference import schemas as s
from app.reference.errors import FieldNotAllowed, FieldRequired, UnknownReference

router = APIRouter(route_class=TransactionalRoute)
SessionDep = Annotated[Session, Depends(get_session)]
PageDep = Annotated[PageParams, Depends(page_params)]
Admin = Annotated[Principal, Depends(require_roles("admin"))]
# API.md: suspend / resume / terminate are the programme's authority's (not the admin's)
Authority = Annotated[Principal, Depends(require_roles("province_reviewer", "committee"))]
CapitalReader = Annotated[Principal, Depends(require_roles("admin", "fund_manager", "regulator"))]

# --- parameters ----------------------------------------------------------------------
RegionCode = Annotated[
    str,
    Path(
        max_length=16,
        description="GB/T 2260 region code 行政区划代码 (a functional zone adds a suffix)",
        examples=["320500"],
    ),
]
BankCode = Annotated[
    str, Path(max_length=32, description="partner bank code 合作银行代码", examples=["JSB"])
]
FundCode = Annotated[
    str, Path(max_length=32, description="fund code 基金代码", examples=["SKD_CITY_320100"])
]
PoolCode = Annotated[
    str,
    Path(
        max_length=32,
        description="fund code 基金代码 (XB: the pool takes the XB-F0 contributors)",
        examples=["XB_POOL"],
    ),
]
StoppedFundCode = Annotated[
    str,
    Path(
        max_length=32, description="the stopped fund's code 已暂停的基金代码", examples=["XB_POOL"]
    ),
]
CreditCode = Annotated[
    str,
    Path(
        max_length=32,
        description="统一社会信用代码 unified social credit code (18 characters, GB 32100-2015)",
        examples=["91320100MA1XA0001R"],
    ),
]
RegionCodeQuery = Annotated[
    str | None,
    Query(
        max_length=16,
        description="region code 行政区划代码 (GB/T 2260)",
        examples=["320700"],
    ),
]
ProgramQuery = Annotated[
    ProgramCode | None,
    Query(description="programme 项目: SKD 苏科贷 or XB 信保基金", examples=["SKD"]),
]

_REGION_REFUSALS = (AlreadyExists, UnknownReference, FieldRequired)
_FUND_REFUSALS = (
    AlreadyExists,
    UnknownReference,
    FieldRequired,
    FieldNotAllowed,
    service.ParentFundInvalid,
    service.ContributorRefused,
)
_CONTRIBUTOR_REFUSALS = (
    service.FundNotFound,
    service.ContributorExists,
    UnknownReference,
    service.CommitmentRequired,
)
_AGREEMENT_REFUSALS = (
    UnknownReference,
    service.FundProgramMismatch,
    service.AgreementRegionMismatch,
)
_ENTERPRISE_REFUSALS = (AlreadyExists, UnknownReference, service.ControllerNameMismatch)


async def _person_key(request: Request) -> str:
    """The key the actual controllers' ID numbers are hashed under (settings)."""
    return str(request.app.state.settings.person_id_key.get_secret_value())


PersonKey = Annotated[str, Depends(_person_key)]


# --- regions -------------------------------------------------------------------------
@router.get(
    "/regions",
    tags=["reference"],
    summary="List regions 行政区划",
    responses=problems(*PAGE_REFUSALS),
)
def list_regions(
    session: SessionDep,
    _: CurrentPrincipal,
    page: PageDep,
    level: Annotated[
        Literal["province", "city", "county", "functional_zone"] | None,
        Query(
            description="province 省 / city 市 / county 县区 / functional_zone 功能区",
            examples=["county"],
        ),
    ] = None,
    parent_code: Annotated[
        str | None,
        Query(
            max_length=16, description="the parent region's code 上级区划代码", examples=["320700"]
        ),
    ] = None,
) -> Page[s.RegionOut]:
    rows, cursor = paginate(
        session, repo.regions_query(level=level, parent_code=parent_code), Region.code, page
    )
    return Page(items=[s.RegionOut.model_validate(r) for r in rows], next_cursor=cursor)


@router.post(
    "/regions",
    tags=["reference"],
    status_code=status.HTTP_201_CREATED,
    summary="Add a region 新增行政区划/功能区",
    description="Admin. Every region below the province names its parent; a code already "
    "recorded is 409 `already_exists`.",
    responses=problems(*_REGION_REFUSALS),
)
def create_region(
    request: Request, response: Response, session: SessionDep, _: Admin, body: s.RegionCreate
) -> s.RegionOut:
    region = service.create_region(session, data=body)
    set_location(request, response, "get_region", code=region.code)
    return s.RegionOut.model_validate(region)


@router.get(
    "/regions/{code}",
    tags=["reference"],
    summary="One region 行政区划",
    responses=problems(service.RegionNotFound),
)
def get_region(session: SessionDep, _: CurrentPrincipal, code: RegionCode) -> s.RegionOut:
    return s.RegionOut.model_validate(service.get_region(session, code))


# --- banks ---------------------------------------------------------------------------
@router.get(
    "/banks",
    tags=["reference"],
    summary="List partner banks 合作银行",
    responses=problems(*PAGE_REFUSALS),
)
def list_banks(session: SessionDep, _: CurrentPrincipal, page: PageDep) -> Page[s.BankOut]:
    rows, cursor = paginate(session, repo.banks_query(), Bank.code, page)
    return Page(items=[s.BankOut.model_validate(r) for r in rows], next_cursor=cursor)


@router.post(
    "/banks",
    tags=["reference"],
    status_code=status.HTTP_201_CREATED,
    summary="Add a partner bank 新增合作银行",
    description="Admin. A code or a name already recorded is 409 `already_exists`.",
    responses=problems(AlreadyExists),
)
def create_bank(
    request: Request, response: Response, session: SessionDep, _: Admin, body: s.BankCreate
) -> s.BankOut:
    bank = service.create_bank(session, data=body)
    set_location(request, response, "get_bank", code=bank.code)
    return s.BankOut.model_validate(bank)


@router.get(
    "/banks/{code}",
    tags=["reference"],
    summary="One partner bank 合作银行",
    responses=problems(service.BankNotFound),
)
def get_bank(session: SessionDep, _: CurrentPrincipal, code: BankCode) -> s.BankOut:
    return s.BankOut.model_validate(service.get_bank(session, code))


# --- funds ---------------------------------------------------------------------------
@router.get(
    "/funds",
    tags=["reference"],
    summary="List funds 风险补偿资金/信保基金",
    responses=problems(*PAGE_REFUSALS),
)
def list_funds(
    session: SessionDep,
    _: CurrentPrincipal,
    page: PageDep,
    program: ProgramQuery = None,
    kind: Annotated[
        Literal["province", "city", "pool", "sub_fund"] | None,
        Query(
            description="province 省级资金 / city 市县资金 / pool 基金池 / sub_fund 子基金",
            examples=["city"],
        ),
    ] = None,
) -> Page[s.FundOut]:
    rows, cursor = paginate(session, repo.funds_query(program=program, kind=kind), Fund.code, page)
    return Page(items=[s.FundOut.model_validate(r) for r in rows], next_cursor=cursor)


@router.post(
    "/funds",
    tags=["reference"],
    status_code=status.HTTP_201_CREATED,
    summary="Add a fund or sub-fund 新增基金/子基金",
    description="An SKD city/county fund (`kind: city`) is created with its region's "
    "finance bureau registered as its contributor 出资人 (南京市 → 南京市财政局, code "
    "`FINANCE_320100`, no committed schedule), so capital can be paid in at once with "
    "`POST /funds/{code}/contributions`; more contributors with "
    "`POST /funds/{code}/contributors`. Every inconsistency (an unknown region, a city "
    "fund without its region, a sub-fund without its pool) is listed at once.",
    responses=problems(*_FUND_REFUSALS),
)
def create_fund(
    request: Request, response: Response, session: SessionDep, _: Admin, body: s.FundCreate
) -> s.FundOut:
    fund = service.create_fund(session, data=body)
    set_location(request, response, "get_fund", code=fund.code)
    return s.FundOut.model_validate(fund)


@router.get(
    "/funds/{code}",
    tags=["reference"],
    summary="One fund with its contributors 出资人",
    responses=problems(service.FundNotFound),
)
def get_fund(session: SessionDep, _: CurrentPrincipal, code: FundCode) -> s.FundDetail:
    return service.fund_detail(session, service.get_fund(session, code))


@router.post(
    "/funds/{code}/contributors",
    tags=["reference"],
    status_code=status.HTTP_201_CREATED,
    summary="Register a contributor 登记出资人",
    description="Who pays capital into the fund: SKD — 省财政 (江苏省财政厅, registered by "
    "`ledger seed-reference`) for the province fund, the city or county finance bureau for "
    "a city fund (registered when the fund is created); XB — the pool's contributors with "
    "their committed capital (XB-F0). Capital is then paid in with "
    "`POST /funds/{code}/contributions`. A code or name the fund already has is refused "
    "(409); every failed field is listed (422). `Location`: the fund's contributors.",
    responses=problems(*_CONTRIBUTOR_REFUSALS),
)
def register_contributor(
    request: Request,
    response: Response,
    session: SessionDep,
    _: Admin,
    code: PoolCode,
    body: s.ContributorCreate,
) -> s.ContributorOut:
    contributor = service.register_contributor(session, fund_code=code, data=body)
    set_location(request, response, "list_contributors", code=contributor.fund_code)
    return s.ContributorOut.model_validate(contributor)


@router.get(
    "/funds/{code}/contributors",
    tags=["reference"],
    summary="A fund's contributors 出资人",
    description="Admin, fund managers and regulators. Paid-in capital per contributor: "
    "`GET /funds/{code}/capital`.",
    responses=problems(service.FundNotFound, *PAGE_REFUSALS),
)
def list_contributors(
    session: SessionDep, _: CapitalReader, page: PageDep, code: PoolCode
) -> Page[s.ContributorOut]:
    rows, cursor = service.list_contributors(session, fund_code=code, page=page)
    return Page(items=[s.ContributorOut.model_validate(r) for r in rows], next_cursor=cursor)


@router.post(
    "/funds/{code}/resume",
    tags=["reference"],
    summary="Resume a stopped fund 恢复新增业务 (XB-Q2)",
    description="The committee resumes new business after the fund-wide stop (XB-Q2), with "
    "the reason recorded. A fund that is not stopped: 409 `invalid_transition`.",
    responses=problems(service.FundNotFound, InvalidTransition),
)
def resume_fund(
    session: SessionDep,
    committee: Annotated[Principal, Depends(require_roles("committee"))],
    code: StoppedFundCode,
    body: Annotated[
        s.AgreementAction,
        Body(
            openapi_examples={
                "resume": {
                    "summary": "Resume after the stop 恢复新增业务",
                    "value": {"reason": "代偿率已回落至警戒线以下，经会审同意恢复新增业务"},
                }
            }
        ),
    ],
) -> s.FundOut:
    return s.FundOut.model_validate(
        service.resume_fund(session, code=code, reason=body.reason, actor=committee)
    )


# --- agreements ----------------------------------------------------------------------
@router.get(
    "/agreements",
    tags=["agreements"],
    summary="List cooperation agreements 合作协议",
    description="A bank sees its own agreements only.",
    responses=problems(*PAGE_REFUSALS),
)
def list_agreements(
    session: SessionDep,
    principal: CurrentPrincipal,
    page: PageDep,
    bank_code: Annotated[
        str | None,
        Query(max_length=32, description="partner bank code 合作银行代码", examples=["JSB"]),
    ] = None,
    program: ProgramQuery = None,
    status_: Annotated[
        Literal["active", "suspended", "terminated"] | None,
        Query(
            alias="status",
            description="active 合作中 / suspended 暂停 / terminated 终止",
            examples=["active"],
        ),
    ] = None,
    region_code: RegionCodeQuery = None,
) -> Page[s.AgreementOut]:
    if principal.is_bank:
        bank_code = principal.bank_code  # a bank sees only its own agreements
    stmt = repo.agreements_query(
        bank_code=bank_code, program=program, status=status_, region_code=region_code
    )
    rows, cursor = paginate(session, stmt, Agreement.id, page)
    return Page(items=[s.AgreementOut.model_validate(r) for r in rows], next_cursor=cursor)


_AGREEMENT_EXAMPLES: dict[str, Any] = {
    "skd": {
        "summary": "SKD: a bank with a city fund 苏科贷（市县资金）",
        "value": {
            "bank_code": "CCB_JS",
            "program": "SKD",
            "fund_code": "SKD_CITY_320100",
            "region_code": "320100",
            "start_on": "2026-04-01",
        },
    },
    "xb": {
        "summary": "XB: a bank with a sub-fund 信保基金（子基金）",
        "value": {
            "bank_code": "ICBC_JS",
            "program": "XB",
            "fund_code": "XB_ZQCZD",
            "start_on": "2026-04-01",
            "term_months": 24,
        },
    },
}


@router.post(
    "/agreements",
    tags=["agreements"],
    status_code=status.HTTP_201_CREATED,
    summary="Record a signed agreement 签订合作协议",
    description="Admin. The term defaults to the programme's (SKD 36 months). Every "
    "reference that does not exist or does not fit is listed at once.",
    responses=problems(*_AGREEMENT_REFUSALS),
)
def create_agreement(
    request: Request,
    response: Response,
    session: SessionDep,
    admin: Admin,
    body: Annotated[s.AgreementCreate, Body(openapi_examples=_AGREEMENT_EXAMPLES)],
) -> s.AgreementDetail:
    agreement = service.create_agreement(session, data=body, actor=admin)
    set_location(request, response, "get_agreement", agreement_id=agreement.id)
    return service.agreement_detail(session, agreement)


@router.get(
    "/agreements/{agreement_id}",
    tags=["agreements"],
    summary="One agreement with its status history 合作协议及其变更记录",
    description="Another bank's agreement: 404.",
    responses=problems(service.AgreementNotFound),
)
def get_agreement(
    session: SessionDep, principal: CurrentPrincipal, agreement_id: ObjectId
) -> s.AgreementDetail:
    agreement = service.get_agreement(session, agreement_id, principal=principal)
    return service.agreement_detail(session, agreement)


_ACTION_EXAMPLES: dict[str, dict[str, Any]] = {
    "suspend": {
        "npl": {
            "summary": "NPL ratio at 3 % (SKD-Q3) 不良率达3%",
            "value": {"reason": "季末苏科贷不良贷款率达到3%，暂停新增贷款投放"},
        }
    },
    "resume": {
        "recovered": {
            "summary": "Ratio back below 3 % 不良率回落",
            "value": {"reason": "不良贷款率已回落至3%以下，恢复合作"},
        }
    },
    "terminate": {
        "expired": {
            "summary": "Bank withdraws 银行退出合作",
            "value": {"reason": "合作银行申请退出，经省级主管部门同意终止合作"},
        }
    },
}


def _transition(action: str, summary: str):  # type: ignore[no-untyped-def]
    def endpoint(
        session: SessionDep,
        actor: Authority,
        agreement_id: ObjectId,
        body: s.AgreementAction,
    ) -> s.AgreementDetail:
        agreement = service.change_agreement_status(
            session, agreement_id=agreement_id, action=action, reason=body.reason, actor=actor
        )
        return service.agreement_detail(session, agreement)

    # the action's own examples (a closure's value: set on the resolved annotations)
    endpoint.__annotations__ = {
        **get_type_hints(endpoint, include_extras=True),
        "body": Annotated[s.AgreementAction, Body(openapi_examples=_ACTION_EXAMPLES[action])],
    }
    return router.post(
        f"/agreements/{{agreement_id}}/{action}",
        tags=["agreements"],
        summary=summary,
        description="SKD agreements: province_reviewer; XB agreements: committee (another "
        "role: 403 `role_not_allowed`). The reason is kept in the agreement's history. "
        "Not allowed from the agreement's status: 409 `invalid_transition`.",
        name=f"{action}_agreement",
        responses=problems(
            service.AgreementNotFound, service.AgreementAuthorityOnly, InvalidTransition
        ),
    )(endpoint)


suspend_agreement = _transition("suspend", "Suspend an agreement 暂停合作")
resume_agreement = _transition("resume", "Resume an agreement 恢复合作")
terminate_agreement = _transition("terminate", "Terminate an agreement 终止合作")


# --- LPR -----------------------------------------------------------------------------
@router.get(
    "/lpr-rates",
    tags=["reference"],
    summary="1-year LPR history 贷款市场报价利率",
    responses=problems(*PAGE_REFUSALS),
)
def list_lpr(
    session: SessionDep,
    _: CurrentPrincipal,
    page: PageDep,
    since: Annotated[
        date | None,
        Query(description="effective on or after 起始日期", examples=["2024-01-01"]),
    ] = None,
    until: Annotated[
        date | None,
        Query(description="effective on or before 截止日期", examples=["2026-03-31"]),
    ] = None,
) -> Page[s.LprOut]:
    rows, cursor = paginate(
        session, repo.lpr_query(since=since, until=until), LprRate.effective_on, page
    )
    return Page(items=[s.LprOut.model_validate(r) for r in rows], next_cursor=cursor)


@router.get(
    "/lpr-rates/in-force",
    tags=["reference"],
    summary="The 1-year LPR in force on a date 某日适用的LPR (SPEC M-4)",
    responses=problems(service.LprNotFound),
)
def lpr_in_force(
    session: SessionDep,
    _: CurrentPrincipal,
    on: Annotated[
        date,
        Query(description="the date 日期 (e.g. a loan's disbursement)", examples=["2026-03-31"]),
    ],
) -> s.LprOut:
    return s.LprOut.model_validate(service.lpr_in_force(session, on))


@router.post(
    "/lpr-rates",
    tags=["reference"],
    status_code=status.HTTP_201_CREATED,
    summary="Record a published 1-year LPR 录入LPR",
    description="Admin. A rate already recorded for the date is 409 `already_exists`. "
    "`Location`: the rate in force on its date.",
    responses=problems(AlreadyExists),
)
def create_lpr(
    request: Request, response: Response, session: SessionDep, _: Admin, body: s.LprCreate
) -> s.LprOut:
    rate = service.create_lpr(session, data=body)
    set_location(request, response, "lpr_in_force")
    response.headers["Location"] += f"?on={rate.effective_on.isoformat()}"
    return s.LprOut.model_validate(rate)


# --- enterprises ---------------------------------------------------------------------
@router.get(
    "/enterprises",
    tags=["enterprises"],
    summary="List enterprises 企业",
    responses=problems(*PAGE_REFUSALS),
)
def list_enterprises(
    session: SessionDep,
    _: CurrentPrincipal,
    page: PageDep,
    region_code: RegionCodeQuery = None,
    name: Annotated[
        str | None,
        Query(max_length=200, description="part of the name 企业名称（部分）", examples=["智芯"]),
    ] = None,
) -> Page[s.EnterpriseOut]:
    stmt = repo.enterprises_query(region_code=region_code, name=name)
    rows, cursor = paginate(session, stmt, Enterprise.id, page)
    return Page(items=[s.EnterpriseOut.model_validate(r) for r in rows], next_cursor=cursor)


@router.post(
    "/enterprises",
    tags=["enterprises"],
    status_code=status.HTTP_201_CREATED,
    summary="Register an enterprise 登记企业",
    description="Admin. The credit code's GB 32100-2015 check digit is verified; a code "
    "already recorded is 409 `already_exists`. The actual controller's ID number is "
    "checked (GB 11643) and kept only as a keyed hash; recorded under another name: 422 "
    "`controller_name_mismatch`.",
    responses=problems(*_ENTERPRISE_REFUSALS),
)
def create_enterprise(
    request: Request,
    response: Response,
    session: SessionDep,
    _: Admin,
    body: s.EnterpriseCreate,
    key: PersonKey,
) -> s.EnterpriseOut:
    enterprise = service.create_enterprise(session, data=body, person_key=key)
    set_location(request, response, "get_enterprise", credit_code=enterprise.credit_code)
    return s.EnterpriseOut.model_validate(enterprise)


@router.post(
    "/enterprises/batch",
    tags=["enterprises"],
    summary="Register up to 10,000 enterprises at once 批量登记企业",
    description="Admin or partner bank 管理员或合作银行. Each item is checked exactly like "
    "`POST /enterprises` (the GB 32100-2015 check digit, every field, the region) and the "
    "answer lists every item in order with every failed field: `created` 新登记 (with its "
    "id), `unchanged` 已登记且一致 (the credit code is recorded and every field the item sends "
    "equals the record: a re-sent file is harmless), or `refused` 拒绝. The batch only "
    "registers, for admins and banks alike 批量接口只登记、不修改: a recorded enterprise with "
    "other facts is refused (`enterprise_exists`, each differing field listed) and facts "
    "and risk flags (失信被执行人, ratings, blacklist) change only through "
    "`PATCH /enterprises/{credit_code}` (admin). A credit code given twice is refused the "
    "second time (`duplicate_in_batch`). A refused item's `code` is, in this order, "
    "`validation_error`, `unknown_reference`, `duplicate_in_batch`, "
    "`controller_name_mismatch`, `enterprise_exists` (see `/problems/{code}`). Accepted "
    "items are committed together; a refused item writes nothing. Send an "
    "`Idempotency-Key`: a retried batch returns the first answer.",
)
def create_enterprise_batch(
    session: SessionDep,
    caller: Annotated[Principal, Depends(require_roles("admin", "bank"))],
    body: s.EnterpriseBatchIn,
    key: PersonKey,
) -> s.EnterpriseBatchOut:
    results = enterprise_batch.register_batch(
        session,
        items=body.items,
        by_bank=caller.bank_code if caller.is_bank else None,
        actor_id=caller.user_id,
        person_key=key,
    )
    return s.EnterpriseBatchOut.of(results)


@router.get(
    "/enterprises/{credit_code}",
    tags=["enterprises"],
    summary="One enterprise by 统一社会信用代码",
    responses=problems(service.EnterpriseNotFound),
)
def get_enterprise(
    session: SessionDep, _: CurrentPrincipal, credit_code: CreditCode
) -> s.EnterpriseOut:
    return s.EnterpriseOut.model_validate(service.get_enterprise(session, credit_code))


@router.patch(
    "/enterprises/{credit_code}",
    tags=["enterprises"],
    summary="Update enterprise facts and risk flags 更新企业信息",
    description="Admin. Only the fields sent change; `null` clears a rating or the "
    "controller and is refused for other fields. Every problem is listed at once.",
    responses=problems(
        service.EnterpriseNotFound, UnknownReference, service.ControllerNameMismatch
    ),
)
def update_enterprise(
    session: SessionDep,
    _: Admin,
    credit_code: CreditCode,
    body: s.EnterprisePatch,
    key: PersonKey,
) -> s.EnterpriseOut:
    enterprise = service.update_enterprise(
        session, credit_code=credit_code, data=body, person_key=key
    )
    return s.EnterpriseOut.model_validate(enterprise)
