from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Request, Response, status
from fastapi.security import OAuth2PasswordRequestForm
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.auth import service
from app.auth.principal import CurrentPrincipal, Principal, require_roles
from app.auth.schemas import Me, TokenOut, UserCreate, UserOut
from app.db import get_session
from app.errors import problems
from app.kit.clock import get_clock
from app.kit.location import set_location
from app.kit.pagination import PAGE_REFUSALS, ObjectId, Page, PageParams, page_params, paginate
from app.kit.uow import TransactionalRoute, after_rollback
from app.models import User
from app.reference.errors import FieldNotAllowed, FieldRequired, UnknownReference

router = APIRouter(route_class=TransactionalRoute)
SessionDep = Annotated[Session, Depends(get_session)]
Admin = Annotated[Principal, Depends(require_roles("admin"))]

_USER_EXAMPLES: dict[str, Any] = {
    "bank": {
        "summary": "A partner bank's user 合作银行用户",
        "value": {
            "username": "bank_jsb_ops",
            "password": "Jsb-credit-2026!",
            "role": "bank",
            "bank_code": "JSB",
        },
    },
    "city_reviewer": {
        "summary": "A city reviewer 市县初审 (region 无锡市)",
        "value": {
            "username": "city_wuxi",
            "password": "Wuxi-review-2026!",
            "role": "city_reviewer",
            "region_code": "320200",
        },
    },
    "fund_manager": {
        "summary": "A fund manager 基金管理人 (the XB pool)",
        "value": {
            "username": "fund_xb_ops",
            "password": "Xb-manager-2026!",
            "role": "fund_manager",
            "fund_code": "XB_POOL",
        },
    },
    "regulator": {
        "summary": "A regulator 监管 (no scope)",
        "value": {
            "username": "regulator_js",
            "password": "Js-regulator-2026!",
            "role": "regulator",
        },
    },
}


@router.post(
    "/auth/token",
    tags=["auth"],
    summary="Log in 登录 (OAuth2 password flow)",
    description="Form fields `username` and `password`; answers a bearer token to send as "
    "`Authorization: Bearer <token>`. A wrong username or password, or a disabled user: "
    "401 `invalid_credentials`. After `LOGIN_FAILURES_PER_USER` (5) failures of one "
    "username, or `LOGIN_FAILURES_PER_ADDRESS` (20) from one address, in "
    "`LOGIN_FAILURE_WINDOW_SECONDS` (15 min), every attempt is 429 `login_throttled` "
    "with `Retry-After`, even with the right password.",
    responses=problems(service.InvalidCredentials, service.LoginThrottled),
)
def login(
    request: Request,
    session: SessionDep,
    form: Annotated[OAuth2PasswordRequestForm, Depends()],
) -> TokenOut:
    settings = request.app.state.settings
    address = request.client.host if request.client else "-"
    now = datetime.now(UTC)  # throttling runs on the wall clock, whatever APP_TODAY says
    service.throttle(session, username=form.username, address=address, now=now, settings=settings)
    try:
        user = service.authenticate(session, username=form.username, password=form.password)
    except service.InvalidCredentials:
        # the refusal rolls the request back; the failure is kept after it
        after_rollback(
            session,
            lambda s, _: service.record_failure(
                s, username=form.username, address=address, now=now
            ),
        )
        raise
    token = service.token_for(settings, user, now=get_clock(request).now())
    return TokenOut(access_token=token, expires_in=settings.jwt_ttl_seconds)


@router.post(
    "/auth/logout",
    tags=["auth"],
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Log out 退出登录 (revoke this token)",
    description="The bearer token of this call is revoked: every later call with it is 401 "
    "`invalid_token`. Other tokens of the user (other devices) stay valid. Calling it "
    "again with the same token is 401 (it is revoked already).",
    response_class=Response,
)
def logout(request: Request, session: SessionDep, principal: CurrentPrincipal) -> Response:
    claims = request.state.token_claims
    service.revoke(
        session,
        jti=claims.jti,
        user_id=principal.user_id,
        expires_at=claims.expires_at,
        now=datetime.now(UTC),
    )
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/auth/me", tags=["auth"], summary="Who am I 当前用户")
def me(principal: CurrentPrincipal) -> Me:
    return Me(
        user_id=principal.user_id,
        username=principal.username,
        role=principal.role,
        bank_code=principal.bank_code,
        region_code=principal.region_code,
        fund_code=principal.fund_code,
    )


@router.post(
    "/users",
    tags=["auth"],
    status_code=status.HTTP_201_CREATED,
    summary="Create a user 新增用户",
    description="Admin. The role's scope field is required (`bank` → `bank_code`, "
    "`city_reviewer` → `region_code`, `fund_manager` → `fund_code`) and the others must "
    "stay empty; every problem with the scope is listed at once. A username already "
    "taken: 409 `already_exists`.",
    responses=problems(service.UsernameTaken, FieldRequired, FieldNotAllowed, UnknownReference),
)
def create_user(
    request: Request,
    response: Response,
    session: SessionDep,
    _: Admin,
    body: Annotated[UserCreate, Body(openapi_examples=_USER_EXAMPLES)],
) -> UserOut:
    user = service.create_user(session, data=body)
    set_location(request, response, "get_user", user_id=user.id)
    return UserOut.model_validate(user)


@router.get(
    "/users",
    tags=["auth"],
    summary="List users 用户",
    responses=problems(*PAGE_REFUSALS),
)
def list_users(
    session: SessionDep,
    _: Admin,
    page: Annotated[PageParams, Depends(page_params)],
) -> Page[UserOut]:
    rows, cursor = paginate(session, select(User), User.id, page)
    return Page(items=[UserOut.model_validate(u) for u in rows], next_cursor=cursor)


@router.get(
    "/users/{user_id}",
    tags=["auth"],
    summary="One user 用户",
    responses=problems(service.UserNotFound),
)
def get_user(session: SessionDep, _: Admin, user_id: ObjectId) -> UserOut:
    return UserOut.model_validate(service.get_user(session, user_id))
