"""Time-based one-time passwords (RFC 6238) with each time step accepted once (NIST SP 800-63B 5.1.4.2)."""

from __future__ import annotations

import hmac
import re
from datetime import datetime

import pyotp

from gateway.errors import DentGateError
from gateway.identity.tokens import new_code

STEP_SECONDS = 30
TOLERANCE_STEPS = 1  # ±1 step for clock drift
OUT_OF_SYNC_STEPS = 10  # a code this far off is reported as a clock problem, not a wrong code
_CODE = re.compile(r"^\d{6}$")


class InvalidTOTP(DentGateError):
    code = "invalid-credentials"
    status = 401
    title = "Invalid credentials"


class ReplayedCode(DentGateError):
    code = "totp-replayed"
    status = 401
    title = "This code was already used; wait for the next one"


class OutOfSyncTOTP(DentGateError):
    code = "totp-out-of-sync"
    status = 401
    title = "The authenticator's clock is off; correct the time on your phone"


def new_secret() -> str:
    """A 160-bit base32 secret, as RFC 4226 recommends."""
    return pyotp.random_base32(32)


def provisioning_uri(secret: str, account: str, issuer: str = "DentGate") -> str:
    """The otpauth:// URI authenticator apps read from a QR code."""
    return pyotp.TOTP(secret).provisioning_uri(name=account, issuer_name=issuer)


def current_step(now: datetime) -> int:
    return int(now.timestamp()) // STEP_SECONDS


def matching_step(secret: str, code: str, now: datetime, last_step: int | None) -> int:
    """The time step `code` belongs to, within ±1 step of `now` and after `last_step`.

    Raises ReplayedCode for a step at or before the last accepted one, OutOfSyncTOTP for a code
    from a step further off, InvalidTOTP otherwise.
    """
    code = code.strip().replace(" ", "")
    if not _CODE.fullmatch(code):
        raise InvalidTOTP("the username, password or code is not correct")
    totp = pyotp.TOTP(secret)
    now_step = current_step(now)

    def matches(step: int) -> bool:
        return hmac.compare_digest(totp.generate_otp(step), code)

    for step in range(now_step - TOLERANCE_STEPS, now_step + TOLERANCE_STEPS + 1):
        if matches(step):
            if last_step is not None and step <= last_step:
                raise ReplayedCode("this code was already used; wait for the next one")
            return step
    for distance in range(TOLERANCE_STEPS + 1, OUT_OF_SYNC_STEPS + 1):
        if matches(now_step - distance) or matches(now_step + distance):
            raise OutOfSyncTOTP(f"the code is {distance * STEP_SECONDS} s off; check the authenticator's clock")
    raise InvalidTOTP("the username, password or code is not correct")


def new_recovery_codes(count: int) -> list[str]:
    """`count` single-use codes of three five-character groups (75 random bits each)."""
    return [new_code(groups=3) for _ in range(count)]
