"""JWT access tokens: HS256 only, with exp/iat/sub/jti/role/scope claims (python-jose).
`jti` names the token, so that it can be revoked before it expires (log-out)."""

from __future__ import annotations

import hashlib
import threading
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, cast

from jose import JWTError, jwt
from starlette.requests import Request

from app.config import Settings
from app.kit.admission import VERIFIED_TOKEN

ALGORITHM = "HS256"  # the one algorithm accepted; `none` and others are refused


@dataclass(frozen=True)
class Claims:
    user_id: int
    role: str
    scope: dict[str, str]
    jti: str
    expires_at: datetime


def issue_token(
    settings: Settings, *, user_id: int, role: str, scope: dict[str, str], now: datetime
) -> str:
    payload: dict[str, Any] = {
        "sub": str(user_id),
        "role": role,
        "scope": scope,
        "iss": settings.jwt_issuer,
        "iat": int(now.timestamp()),
        "jti": uuid.uuid4().hex,
        "exp": int((now + timedelta(seconds=settings.jwt_ttl_seconds)).timestamp()),
    }
    return str(jwt.encode(payload, settings.jwt_secret.get_secret_value(), algorithm=ALGORITHM))


# Tokens whose signature and claims were verified, with their claims: a token's claims
# never change (they are what it signs), so the signature is checked once per process
# and only the expiry at every use. Revocation and the user's state are read from the
# database on every request (app/auth/principal.py). Keyed by the token with a digest of
# the secret and the issuer it was verified with (the secret itself is not kept); at most
# `_VERIFIED_MAX`, the oldest dropped first. Shared by the event loop and worker threads:
# changed under a lock.
_verified: dict[tuple[str, str, str], Claims] = {}
_VERIFIED_MAX = 4096
_verified_lock = threading.Lock()


def decode_token(settings: Settings, token: str) -> Claims | None:
    """Claims of a valid token, or None for any invalid, expired, tampered or foreign one."""
    secret = hashlib.sha256(settings.jwt_secret.get_secret_value().encode()).hexdigest()
    key = (token, secret, settings.jwt_issuer)
    claims = _verified.get(key)
    if claims is None:
        claims = _decode(settings, token)
        if claims is None:
            return None
        with _verified_lock:
            while len(_verified) >= _VERIFIED_MAX:
                del _verified[next(iter(_verified))]
            _verified[key] = claims
    # as python-jose's check: expired once the current second is past `exp`
    if int(time.time()) > int(claims.expires_at.timestamp()):
        return None
    return claims


def _decode(settings: Settings, token: str) -> Claims | None:
    try:
        header = jwt.get_unverified_header(token)
        if header.get("alg") != ALGORITHM:
            return None
        payload = jwt.decode(
            token,
            settings.jwt_secret.get_secret_value(),
            algorithms=[ALGORITHM],
            issuer=settings.jwt_issuer,
            options={
                "require_exp": True,
                "require_iat": True,
                "require_sub": True,
                "require_jti": True,
            },
        )
        scope = payload.get("scope") or {}
        if not isinstance(scope, dict):
            return None
        return Claims(
            user_id=int(payload["sub"]),
            role=str(payload["role"]),
            scope=scope,
            jti=str(payload["jti"])[:64],
            expires_at=datetime.fromtimestamp(int(payload["exp"]), UTC),
        )
    except (JWTError, KeyError, ValueError, TypeError):
        return None


def request_claims(request: Request, token: str) -> Claims | None:
    """The claims of the request's bearer token, verified once per request: admission
    control keeps what it verified in the request's state (`VERIFIED_TOKEN`)."""
    verified = getattr(request.state, VERIFIED_TOKEN, None)
    if verified is not None and verified[0] == token:
        return cast(Claims, verified[1])
    return decode_token(request.app.state.settings, token)
