"""Reference data endpoints (API.md): thin — authorise, call the service, shape the answer."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query, Request, status
from sqlalchemy.orm import Session

from app.auth.principal import CurrentPrincipal, Principal, require_roles
from app.db import get_session
from app.errors import Conflict, Forbidden, Unauthorized, problem_responses
from app.kit.pagination import ObjectId, Page, PageParams, page_params, paginate
from app.kit.uow import TransactionalRoute
from app.models import Agreement, Bank, Enterprise, Fund, LprRate, Region
from app.programs.fields import ProgramCode
from app.reference import enterprise_batch, service
from app.reference import repository as repo
from app.reference import schemas as s

router = APIRouter(route_class=TransactionalRoute)
SessionDep = Annotated[Session, Depends(get_session)]
PageDep = Annotated[PageParams, Depends(page_params)]
Admin = Annotated[Principal, Depends(require_roles("admin"))]
Authority = Annotated[Principal, Depends(require_roles("province_reviewer", "committee", "admin"))]
CapitalReader = Annotated[Principal, Depends(require_roles("admin", "fund_manager", "regulator"))]
AUTH_REFUSALS = ((Unauthorized, "not_authenticated"), (Unauthorized, "invalid_token"))


def _person_key(request: Request) -> str:
    """The key the actual controllers' ID numbers are hashed under (settings)."""
    return str(request.app.state.settings.person_id_key.get_secret_value())


PersonKey = Annotated[str, Depends(_person_key)]


# --- regions -------------------------------------------------------------------------
@router.get("/regions", tags=["reference"], summary="List regions 行政区划")
def list_regions(
    session: SessionDep,
    _: CurrentPrincipal,
    page: PageDep,
    level: Annotated[
        Literal["province", "city", "county", "functional_zone"] | None, Query()
    ] = None,
    parent_code: str | None = None,
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
)
def create_region(session: SessionDep, _: Admin, body: s.RegionCreate) -> s.RegionOut:
    return s.RegionOut.model_validate(service.create_region(session, data=body))


@router.get("/regions/{code}", tags=["reference"], summary="One region")
def get_region(session: SessionDep, _: CurrentPrincipal, code: str) -> s.RegionOut:
    return s.RegionOut.model_validate(service.get_region(session, code))


# --- banks ---------------------------------------------------------------------------
@router.get("/banks", tags=["reference"], summary="List partner banks 合作银行")
def list_banks(session: SessionDep, _: CurrentPrincipal, page: PageDep) -> Page[s.BankOut]:
    rows, cursor = paginate(session, repo.banks_query(), Bank.code, page)
    return Page(items=[s.BankOut.model_validate(r) for r in rows], next_cursor=cursor)


@router.post(
    "/banks",
    tags=["reference"],
    status_code=status.HTTP_201_CREATED,
    summary="Add a partner bank 新增合作银行",
)
def create_bank(session: SessionDep, _: Admin, body: s.BankCreate) -> s.BankOut:
    return s.BankOut.model_validate(service.create_bank(session, data=body))


@router.get("/banks/{code}", tags=["reference"], summary="One partner bank")
def get_bank(session: SessionDep, _: CurrentPrincipal, code: str) -> s.BankOut:
    return s.BankOut.model_validate(service.get_bank(session, code))


# --- funds ---------------------------------------------------------------------------
@router.get("/funds", tags=["reference"], summary="List funds 风险补偿资金/信保基金")
def list_funds(
    session: SessionDep,
    _: CurrentPrincipal,
    page: PageDep,
    program: ProgramCode | None = None,
    kind: Literal["province", "city", "pool", "sub_fund"] | None = None,
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
    "`POST /funds/{code}/contributors`.",
)
def create_fund(session: SessionDep, _: Admin, body: s.FundCreate) -> s.FundOut:
    return s.FundOut.model_validate(service.create_fund(session, data=body))


@router.get("/funds/{code}", tags=["reference"], summary="One fund with its contributors 出资人")
def get_fund(session: SessionDep, _: CurrentPrincipal, code: str) -> s.FundDetail:
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
    "(409); every failed field is listed (422).",
    responses=problem_responses(
        *AUTH_REFUSALS,
        (Forbidden, "role_not_allowed"),
        service.FundNotFound,
        service.ContributorExists,
        (Conflict, "idempotency_key_reused"),
        service.ContributorRefused,
        validation=True,
    ),
)
def register_contributor(
    session: SessionDep, _: Admin, code: str, body: s.ContributorCreate
) -> s.ContributorOut:
    contributor = service.register_contributor(session, fund_code=code, data=body)
    return s.ContributorOut.model_validate(contributor)


@router.get(
    "/funds/{code}/contributors",
    tags=["reference"],
    summary="A fund's contributors 出资人",
    description="Admin, fund managers and regulators. Paid-in capital per contributor: "
    "`GET /funds/{code}/capital`.",
    responses=problem_responses(
        *AUTH_REFUSALS, (Forbidden, "role_not_allowed"), service.FundNotFound, validation=True
    ),
)
def list_contributors(
    session: SessionDep, _: CapitalReader, page: PageDep, code: str
) -> Page[s.ContributorOut]:
    rows, cursor = service.list_contributors(session, fund_code=code, page=page)
    return Page(items=[s.ContributorOut.model_validate(r) for r in rows], next_cursor=cursor)


@router.post(
    "/funds/{code}/resume",
    tags=["reference"],
    summary="Resume a stopped fund 恢复新增业务 (XB-Q2)",
    description="The committee resumes new business after the fund-wide stop (XB-Q2), with "
    "the reason recorded.",
)
def resume_fund(
    session: SessionDep,
    committee: Annotated[Principal, Depends(require_roles("committee"))],
    code: str,
    body: s.AgreementAction,
) -> s.FundOut:
    return s.FundOut.model_validate(
        service.resume_fund(session, code=code, reason=body.reason, actor=committee)
    )


# --- agreements ----------------------------------------------------------------------
@router.get("/agreements", tags=["agreements"], summary="List cooperation agreements 合作协议")
def list_agreements(
    session: SessionDep,
    principal: CurrentPrincipal,
    page: PageDep,
    bank_code: str | None = None,
    program: ProgramCode | None = None,
    status_: Annotated[
        Literal["active", "suspended", "terminated"] | None, Query(alias="status")
    ] = None,
    region_code: str | None = None,
) -> Page[s.AgreementOut]:
    if principal.is_bank:
        bank_code = principal.bank_code  # a bank sees only its own agreements
    stmt = repo.agreements_query(
        bank_code=bank_code, program=program, status=status_, region_code=region_code
    )
    rows, cursor = paginate(session, stmt, Agreement.id, page)
    return Page(items=[s.AgreementOut.model_validate(r) for r in rows], next_cursor=cursor)


@router.post(
    "/agreements",
    tags=["agreements"],
    status_code=status.HTTP_201_CREATED,
    summary="Record a signed agreement 签订合作协议",
)
def create_agreement(
    session: SessionDep, admin: Admin, body: s.AgreementCreate
) -> s.AgreementDetail:
    agreement = service.create_agreement(session, data=body, actor=admin)
    return service.agreement_detail(session, agreement)


@router.get(
    "/agreements/{agreement_id}",
    tags=["agreements"],
    summary="One agreement with its status history",
)
def get_agreement(
    session: SessionDep, principal: CurrentPrincipal, agreement_id: ObjectId
) -> s.AgreementDetail:
    agreement = service.get_agreement(session, agreement_id, principal=principal)
    return service.agreement_detail(session, agreement)


def _transition(action: str, summary: str):  # type: ignore[no-untyped-def]
    @router.post(
        f"/agreements/{{agreement_id}}/{action}",
        tags=["agreements"],
        summary=summary,
        description="SKD agreements: province_reviewer; XB agreements: committee. "
        "The reason is kept in the agreement's history.",
        name=f"{action}_agreement",
    )
    def endpoint(
        session: SessionDep, actor: Authority, agreement_id: ObjectId, body: s.AgreementAction
    ) -> s.AgreementDetail:
        agreement = service.change_agreement_status(
            session, agreement_id=agreement_id, action=action, reason=body.reason, actor=actor
        )
        return service.agreement_detail(session, agreement)

    return endpoint


suspend_agreement = _transition("suspend", "Suspend an agreement 暂停合作")
resume_agreement = _transition("resume", "Resume an agreement 恢复合作")
terminate_agreement = _transition("terminate", "Terminate an agreement 终止合作")


# --- LPR -----------------------------------------------------------------------------
@router.get("/lpr-rates", tags=["reference"], summary="1-year LPR history 贷款市场报价利率")
def list_lpr(
    session: SessionDep,
    _: CurrentPrincipal,
    page: PageDep,
    since: date | None = None,
    until: date | None = None,
) -> Page[s.LprOut]:
    rows, cursor = paginate(
        session, repo.lpr_query(since=since, until=until), LprRate.effective_on, page
    )
    return Page(items=[s.LprOut.model_validate(r) for r in rows], next_cursor=cursor)


@router.get(
    "/lpr-rates/in-force",
    tags=["reference"],
    summary="The 1-year LPR in force on a date (SPEC M-4)",
)
def lpr_in_force(
    session: SessionDep, _: CurrentPrincipal, on: Annotated[date, Query(description="date")]
) -> s.LprOut:
    return s.LprOut.model_validate(service.lpr_in_force(session, on))


@router.post(
    "/lpr-rates",
    tags=["reference"],
    status_code=status.HTTP_201_CREATED,
    summary="Record a published 1-year LPR 录入LPR",
)
def create_lpr(session: SessionDep, _: Admin, body: s.LprCreate) -> s.LprOut:
    return s.LprOut.model_validate(service.create_lpr(session, data=body))


# --- enterprises ---------------------------------------------------------------------
@router.get("/enterprises", tags=["enterprises"], summary="List enterprises 企业")
def list_enterprises(
    session: SessionDep,
    _: CurrentPrincipal,
    page: PageDep,
    region_code: str | None = None,
    name: Annotated[str | None, Query(description="part of the name")] = None,
) -> Page[s.EnterpriseOut]:
    stmt = repo.enterprises_query(region_code=region_code, name=name)
    rows, cursor = paginate(session, stmt, Enterprise.id, page)
    return Page(items=[s.EnterpriseOut.model_validate(r) for r in rows], next_cursor=cursor)


@router.post(
    "/enterprises",
    tags=["enterprises"],
    status_code=status.HTTP_201_CREATED,
    summary="Register an enterprise 登记企业",
)
def create_enterprise(
    session: SessionDep, _: Admin, body: s.EnterpriseCreate, key: PersonKey
) -> s.EnterpriseOut:
    enterprise = service.create_enterprise(session, data=body, person_key=key)
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
    "second time (`duplicate_in_batch`). Accepted items are committed together; a refused "
    "item writes nothing. Send an `Idempotency-Key`: a retried batch returns the first "
    "answer.",
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
    "/enterprises/{credit_code}", tags=["enterprises"], summary="One enterprise by 统一社会信用代码"
)
def get_enterprise(session: SessionDep, _: CurrentPrincipal, credit_code: str) -> s.EnterpriseOut:
    return s.EnterpriseOut.model_validate(service.get_enterprise(session, credit_code))


@router.patch(
    "/enterprises/{credit_code}",
    tags=["enterprises"],
    summary="Update enterprise facts and risk flags 更新企业信息",
)
def update_enterprise(
    session: SessionDep, _: Admin, credit_code: str, body: s.EnterprisePatch, key: PersonKey
) -> s.EnterpriseOut:
    enterprise = service.update_enterprise(
        session, credit_code=credit_code, data=body, person_key=key
    )
    return s.EnterpriseOut.model_validate(enterprise)
