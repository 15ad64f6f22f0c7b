"""Password rules (G10): argon2id hashes, a strength floor, no reuse."""

from __future__ import annotations

from collections.abc import Iterable
from functools import cache

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from zxcvbn import zxcvbn

from gateway.errors import DentGateError
from gateway.policy import IdentityPolicy

MAX_PASSWORD_LENGTH = 256
_hasher = PasswordHasher()  # argon2id with the RFC 9106 low-memory parameters


class WeakPassword(DentGateError):
    code = "weak-password"
    status = 422
    title = "Password does not meet the policy"


class ReusedPassword(DentGateError):
    code = "reused-password"
    status = 422
    title = "Password was used before"


class WrongPassword(DentGateError):
    code = "invalid-credentials"
    status = 401
    title = "Invalid credentials"


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password_hash: str | None, password: str) -> None:
    """Raise WrongPassword unless `password` matches; an absent hash is checked against a dummy in equal time."""
    try:
        _hasher.verify(password_hash or _dummy_hash(), password[:MAX_PASSWORD_LENGTH])
    except (VerificationError, InvalidHashError) as error:
        raise WrongPassword("the username, password or code is not correct") from error
    if password_hash is None:
        raise WrongPassword("the username, password or code is not correct")


def needs_rehash(password_hash: str) -> bool:
    """True when the hash was made with parameters other than today's."""
    return _hasher.check_needs_rehash(password_hash)


def check_strength(password: str, policy: IdentityPolicy, personal: Iterable[str] = ()) -> None:
    """Refuse short or guessable passwords (length floor from the policy, then zxcvbn's score)."""
    if len(password) < policy.password_min_length:
        raise WeakPassword(f"a password needs at least {policy.password_min_length} characters")
    if len(password) > MAX_PASSWORD_LENGTH:
        raise WeakPassword(f"a password may have at most {MAX_PASSWORD_LENGTH} characters")
    result = zxcvbn(password[:100], user_inputs=[p for p in personal if p])
    if result["score"] < policy.password_min_zxcvbn_score:
        advice = result["feedback"].get("warning") or "add more unrelated words"
        raise WeakPassword(f"this password is too easy to guess: {advice}")


def check_not_reused(password: str, earlier_hashes: Iterable[str]) -> None:
    """Refuse a password matching any earlier hash (G10)."""
    for earlier in earlier_hashes:
        try:
            _hasher.verify(earlier, password)
        except (VerificationError, InvalidHashError):
            continue
        raise ReusedPassword("this password was used before; choose a new one")


@cache
def _dummy_hash() -> str:
    return _hasher.hash("dentgate: no such account")
