from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request, status
from fastapi.security import OAuth2PasswordRequestForm
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.auth import service
from app.auth.principal import CurrentPrincipal, Principal, require_roles
from app.auth.schemas import Me, TokenOut, UserCreate, UserOut
from app.db import get_session
from app.kit.clock import get_clock
from app.kit.pagination import Page, PageParams, page_params, paginate
from app.kit.uow import TransactionalRoute
from app.models import User

router = APIRouter(route_class=TransactionalRoute)
SessionDep = Annotated[Session, Depends(get_session)]


@router.post("/auth/token", tags=["auth"], summary="Log in 登录 (OAuth2 password flow)")
def login(
    request: Request,
    session: SessionDep,
    form: Annotated[OAuth2PasswordRequestForm, Depends()],
) -> TokenOut:
    user = service.authenticate(session, username=form.username, password=form.password)
    settings = request.app.state.settings
    token = service.token_for(settings, user, now=get_clock(request).now())
    return TokenOut(access_token=token, expires_in=settings.jwt_ttl_seconds)


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
    "/users", tags=["auth"], status_code=status.HTTP_201_CREATED, summary="Create a user 新增用户"
)
def create_user(
    session: SessionDep,
    _: Annotated[Principal, Depends(require_roles("admin"))],
    body: UserCreate,
) -> UserOut:
    return UserOut.model_validate(service.create_user(session, data=body))


@router.get("/users", tags=["auth"], summary="List users 用户")
def list_users(
    session: SessionDep,
    _: Annotated[Principal, Depends(require_roles("admin"))],
    page: Annotated[PageParams, Depends(page_params)],
) -> Page[UserOut]:
    rows, cursor = paginate(session, select(User), User.id, page)
    return Page(items=[UserOut.model_validate(u) for u in rows], next_cursor=cursor)
