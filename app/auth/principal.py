"""The authenticated caller, role checks and data scopes (API.md Auth).

A bank user sees only its own bank's objects; another bank's object is reported as
404, never 403, so existence does not leak."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import OAuth2PasswordBearer
from sqlalchemy.orm import Session

from app.auth.tokens import decode_token
from app.db import get_session
from app.errors import Forbidden, Unauthorized
from app.models import User

oauth2_scheme = OAuth2PasswordBearer(
    tokenUrl="/api/v1/auth/token",
    scheme_name="OAuth2 password (登录)",
    description="Log in with a username and password; the bearer token is sent on every call.",
    auto_error=False,
)

_BEARER = {"WWW-Authenticate": "Bearer"}


@dataclass(frozen=True)
class Principal:
    user_id: int
    username: str
    role: str
    bank_code: str | None = None
    region_code: str | None = None
    fund_code: str | None = None

    @property
    def is_bank(self) -> bool:
        return self.role == "bank"

    def can_see_bank(self, bank_code: str) -> bool:
        return not self.is_bank or self.bank_code == bank_code

    @classmethod
    def of(cls, user: User) -> Principal:
        return cls(
            user_id=user.id,
            username=user.username,
            role=user.role,
            bank_code=user.bank_code,
            region_code=user.region_code,
            fund_code=user.fund_code,
        )


def current_principal(
    request: Request,
    session: Annotated[Session, Depends(get_session)],
    token: Annotated[str | None, Depends(oauth2_scheme)],
) -> Principal:
    if not token:
        raise Unauthorized("a bearer token is required", headers=_BEARER)
    claims = decode_token(request.app.state.settings, token)
    if claims is None:
        raise Unauthorized("the token is invalid or expired", code="invalid_token", headers=_BEARER)
    user = session.get(User, claims.user_id)
    if user is None or not user.is_active:
        raise Unauthorized(
            "the token's user is unknown or disabled", code="invalid_token", headers=_BEARER
        )
    return Principal.of(user)


CurrentPrincipal = Annotated[Principal, Depends(current_principal)]


def require_roles(*roles: str) -> Callable[[Principal], Principal]:
    def check(principal: CurrentPrincipal) -> Principal:
        if principal.role not in roles:
            raise Forbidden(
                f"role {principal.role} may not do this; allowed: {', '.join(roles)}",
                code="role_not_allowed",
            )
        return principal

    return check
