"""Users and log-in."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.auth.passwords import hash_password, verify_password, weaknesses
from app.auth.schemas import UserCreate
from app.auth.tokens import issue_token
from app.config import Settings
from app.errors import (
    AlreadyExists,
    NotFound,
    TooManyRequests,
    Unauthorized,
    Unprocessable,
    Violation,
    refusal,
)
from app.kit.schemas import unstorable_text
from app.models import Bank, Fund, LoginFailure, Region, RevokedToken, User
from app.reference.errors import FieldNotAllowed, FieldRequired, UnknownReference


class InvalidCredentials(Unauthorized):
    """The username or the password is wrong, or the user is disabled (which of them is
    not said)."""

    code = "invalid_credentials"
    title, title_zh = "Wrong username or password", "用户名或密码错误"


class UsernameTaken(AlreadyExists):
    title, title_zh = "Username already taken", "用户名已被占用"


class WeakPassword(Unprocessable):
    """The password is too easy to guess: a common password, a word or name, a keyboard
    pattern, a date, a repeat, or the username (estimated with zxcvbn; score 3 of 4
    needed)."""

    code, title, title_zh = "weak_password", "Password too easy to guess", "密码强度不足"


class LoginThrottled(TooManyRequests):
    """Too many failed log-ins for this username, or from this address, in the last
    `LOGIN_FAILURE_WINDOW_SECONDS`; wait `Retry-After` seconds."""

    code, title, title_zh = (
        "login_throttled",
        "Too many failed log-ins",
        "登录失败次数过多，请稍后再试",
    )


class UserNotFound(NotFound):
    title, title_zh = "User not found", "用户不存在"


# role → the scope field it needs; the other scope fields must stay empty
SCOPE_FIELD = {"bank": "bank_code", "city_reviewer": "region_code", "fund_manager": "fund_code"}
SCOPE_MODEL = {"bank_code": Bank, "region_code": Region, "fund_code": Fund}
_BEARER = {"WWW-Authenticate": "Bearer"}


def user_by_username(session: Session, username: str) -> User | None:
    return session.scalars(select(User).where(User.username == username)).first()


def authenticate(session: Session, *, username: str, password: str) -> User:
    if unstorable_text(username) or unstorable_text(password) or len(username) > 64:
        raise InvalidCredentials("wrong username or password", headers=_BEARER)
    user = user_by_username(session, username)
    ok = verify_password(password, user.password_hash if user else None)
    if user is None or not ok or not user.is_active:
        raise InvalidCredentials("wrong username or password", headers=_BEARER)
    return user


def throttle(
    session: Session, *, username: str, address: str, now: datetime, settings: Settings
) -> None:
    """Refuse a log-in (429, whatever the password) while the username or the address
    has had too many failures in the window."""
    since = now - timedelta(seconds=settings.login_failure_window_seconds)
    for column, value, limit in (
        (LoginFailure.username, _storable(username), settings.login_failures_per_user),
        (LoginFailure.address, _storable(address), settings.login_failures_per_address),
    ):
        recent = session.scalars(
            select(LoginFailure.failed_at)
            .where(column == value, LoginFailure.failed_at > since)
            .order_by(LoginFailure.failed_at.desc())
            .limit(limit)
        ).all()
        if len(recent) >= limit:
            wait = recent[-1] + timedelta(seconds=settings.login_failure_window_seconds) - now
            raise LoginThrottled(
                f"{limit} failed log-ins in the last "
                f"{settings.login_failure_window_seconds} s; try again later",
                headers={"Retry-After": str(max(1, int(wait.total_seconds()) + 1))},
            )


def record_failure(session: Session, *, username: str, address: str, now: datetime) -> None:
    session.add(
        LoginFailure(username=_storable(username), address=_storable(address), failed_at=now)
    )


def _storable(text: str) -> str:
    """The text as a database can hold and compare it (a NUL or a lone surrogate made
    visible), at most 64 characters."""
    if unstorable_text(text):
        text = text.encode("utf-8", "backslashreplace").decode("ascii", "backslashreplace")
        text = text.replace("\x00", "\\x00")
    return text[:64]


def revoke(
    session: Session, *, jti: str, user_id: int, expires_at: datetime, now: datetime
) -> None:
    """Log-out: the token is refused from now on (again: nothing more)."""
    if session.get(RevokedToken, jti) is None:
        session.add(RevokedToken(jti=jti, user_id=user_id, revoked_at=now, expires_at=expires_at))
        session.flush()


def token_for(settings: Settings, user: User, *, now: datetime) -> str:
    scope = {
        k: v
        for k in ("bank_code", "region_code", "fund_code")
        if (v := getattr(user, k)) is not None
    }
    return issue_token(settings, user_id=user.id, role=user.role, scope=scope, now=now)


def create_user(session: Session, *, data: UserCreate) -> User:
    if user_by_username(session, data.username) is not None:
        raise UsernameTaken(
            f"user {data.username!r} already exists",
            [UsernameTaken.violation("already taken", "body", "username")],
        )
    errors: list[Violation] = []
    needed = SCOPE_FIELD.get(data.role)
    for field, model in SCOPE_MODEL.items():
        value = getattr(data, field)
        if field == needed and value is None:
            errors.append(FieldRequired.violation(f"required for role {data.role}", "body", field))
        elif field != needed and value is not None:
            errors.append(
                FieldNotAllowed.violation(f"not allowed for role {data.role}", "body", field)
            )
        elif value is not None and session.get(model, value) is None:
            errors.append(
                UnknownReference.violation(f"unknown {field[:-5]} {value!r}", "body", field)
            )
    weak = weaknesses(data.password, user_inputs=[data.username, *data.username.split("_")])
    if weak:
        errors.append(WeakPassword.violation("; ".join(weak), "body", "password"))
    if errors:
        raise refusal(errors, "the user is refused: " + ", ".join(str(e.code) for e in errors))
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


def get_user(session: Session, user_id: int) -> User:
    user = session.get(User, user_id)
    if user is None:
        raise UserNotFound(f"user {user_id} not found")
    return user


def ensure_admin(session: Session, *, username: str, password: str) -> bool:
    """Create the first admin if absent (APP_ADMIN_USERNAME/PASSWORD). True if created."""
    if user_by_username(session, username) is not None:
        return False
    session.add(User(username=username, password_hash=hash_password(password), role="admin"))
    session.flush()
    return True
