"""The authenticated caller, role checks and data scopes (API.md Auth).

A bank user sees only its own bank's objects; another bank's object is reported as
404, never 403, so existence does not leak."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.security import OAuth2PasswordBearer
from sqlalchemy import Row, bindparam, exists, select
from sqlalchemy.orm import Session

from app.audit import capture as audit
from app.auth.tokens import request_claims
from app.db import get_session
from app.errors import InvalidToken, RoleNotAllowed, Unauthorized
from app.kit.requestid import set_request_user_id
from app.models import RevokedToken, User

oauth2_scheme = OAuth2PasswordBearer(
    tokenUrl="/api/v1/auth/token",
    scheme_name="oauth2_password",
    description="登录 — log in with a username and password (OAuth2 password flow); the "
    "bearer token is then sent on every call.",
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
    def of(cls, user: User | Row[Any]) -> Principal:
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
    claims = request_claims(request, token)
    if claims is None:
        raise InvalidToken("the token is invalid or expired", headers=_BEARER)
    # the user and whether the token was revoked, in one round trip, read afresh on
    # every request (a disabled user or a changed role counts from the next request on)
    row = session.execute(
        _USER_AND_REVOCATION, {"user_id": claims.user_id, "jti": claims.jti}
    ).first()
    if row is None or not row.is_active:
        raise InvalidToken("the token's user is unknown or disabled", headers=_BEARER)
    if row.revoked:
        raise InvalidToken("the token was revoked (logged out)", headers=_BEARER)
    request.state.token_claims = claims
    set_request_user_id(row.id)  # into every log line of this request, the access log's too
    audit.set_user(session, user_id=row.id, username=row.username, role=row.role)
    return Principal.of(row)  # the row has a User's attribute names


# One Core statement built once: the caller's row (no ORM `User` to build and keep in
# the session) and whether the token's `jti` was revoked.
_users = User.__table__
_USER_AND_REVOCATION = select(
    _users.c.id,
    _users.c.username,
    _users.c.role,
    _users.c.bank_code,
    _users.c.region_code,
    _users.c.fund_code,
    _users.c.is_active,
    exists().where(RevokedToken.__table__.c.jti == bindparam("jti")).label("revoked"),
).where(_users.c.id == bindparam("user_id"))


CurrentPrincipal = Annotated[Principal, Depends(current_principal)]


def require_roles(*roles: str) -> Callable[[Principal], Awaitable[Principal]]:
    async def check(principal: CurrentPrincipal) -> Principal:  # no worker thread needed
        if principal.role not in roles:
            raise RoleNotAllowed(
                f"role {principal.role} may not do this; allowed: {', '.join(roles)}"
            )
        return principal

    return check
