"""Argon2id password hashes through pwdlib."""

from __future__ import annotations

from pwdlib import PasswordHash
from pwdlib.hashers.argon2 import Argon2Hasher

_hasher = PasswordHash((Argon2Hasher(),))
# A hash to verify against when the user does not exist, so timing does not tell.
_DUMMY = _hasher.hash("not-a-real-password")


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password: str, password_hash: str | None) -> bool:
    if password_hash is None:
        _hasher.verify(password, _DUMMY)
        return False
    return bool(_hasher.verify(password, password_hash))


MIN_STRENGTH = 3  # zxcvbn's score, 0–4: 3 is "safely unguessable" (~10^8 guesses and up)


def weaknesses(password: str, *, user_inputs: list[str]) -> list[str]:
    """Why `password` is too easy to guess (empty when it is strong enough): zxcvbn's
    estimate against its lists of common passwords, words, names, keyboard patterns,
    dates and repeats, and against the account's own name."""
    from zxcvbn import zxcvbn

    result = zxcvbn(password[:100], user_inputs=user_inputs)
    if result["score"] >= MIN_STRENGTH:
        return []
    feedback = result.get("feedback") or {}
    reasons = [feedback.get("warning") or "too easy to guess"]
    reasons += list(feedback.get("suggestions") or [])
    return [r for r in reasons if r]
