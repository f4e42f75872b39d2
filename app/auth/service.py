"""Users and log-in."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.auth.passwords import hash_password, verify_password
from app.auth.schemas import UserCreate
from app.auth.tokens import issue_token
from app.config import Settings
from app.errors import Conflict, Unauthorized, Unprocessable, Violation
from app.kit.schemas import unstorable_text
from app.models import Bank, Fund, Region, User

# role → the scope field it needs; the other scope fields must stay empty
SCOPE_FIELD = {"bank": "bank_code", "city_reviewer": "region_code", "fund_manager": "fund_code"}
SCOPE_MODEL = {"bank_code": Bank, "region_code": Region, "fund_code": Fund}


def user_by_username(session: Session, username: str) -> User | None:
    return session.scalars(select(User).where(User.username == username)).first()


def authenticate(session: Session, *, username: str, password: str) -> User:
    if unstorable_text(username) or unstorable_text(password) or len(username) > 64:
        raise Unauthorized(
            "wrong username or password",
            code="invalid_credentials",
            headers={"WWW-Authenticate": "Bearer"},
        )
    user = user_by_username(session, username)
    ok = verify_password(password, user.password_hash if user else None)
    if user is None or not ok or not user.is_active:
        raise Unauthorized(
            "wrong username or password",
            code="invalid_credentials",
            headers={"WWW-Authenticate": "Bearer"},
        )
    return user


def token_for(settings: Settings, user: User, *, now: datetime) -> str:
    scope = {
        k: v
        for k in ("bank_code", "region_code", "fund_code")
        if (v := getattr(user, k)) is not None
    }
    return issue_token(settings, user_id=user.id, role=user.role, scope=scope, now=now)


def create_user(session: Session, *, data: UserCreate) -> User:
    if user_by_username(session, data.username) is not None:
        raise Conflict(
            f"user {data.username!r} already exists",
            [Violation(loc=("body", "username"), msg="already taken", code="already_exists")],
            code="already_exists",
        )
    errors = []
    needed = SCOPE_FIELD.get(data.role)
    for field, model in SCOPE_MODEL.items():
        value = getattr(data, field)
        if field == needed and value is None:
            errors.append(Violation(loc=("body", field), msg=f"required for role {data.role}"))
        elif field != needed and value is not None:
            errors.append(Violation(loc=("body", field), msg=f"not allowed for role {data.role}"))
        elif value is not None and session.get(model, value) is None:
            errors.append(
                Violation(
                    loc=("body", field),
                    msg=f"unknown {field[:-5]} {value!r}",
                    code="unknown_reference",
                )
            )
    if errors:
        raise Unprocessable("the user's scope does not fit the role", errors, code="invalid_scope")
    user = User(
        username=data.username,
        password_hash=hash_password(data.password),
        role=data.role,
        bank_code=data.bank_code,
        region_code=data.region_code,
        fund_code=data.fund_code,
    )
    session.add(user)
    session.flush()
    return user


def ensure_admin(session: Session, *, username: str, password: str) -> bool:
    """Create the first admin if absent (APP_ADMIN_USERNAME/PASSWORD). True if created."""
    if user_by_username(session, username) is not None:
        return False
    session.add(User(username=username, password_hash=hash_password(password), role="admin"))
    session.flush()
    return True
