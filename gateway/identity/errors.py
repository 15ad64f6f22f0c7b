"""Identity failures, each with a stable code (mapped once to problem+json)."""

from __future__ import annotations

from gateway.errors import DentGateError


class NotFound(DentGateError):
    code = "not-found"
    status = 404
    title = "Not found"


class Conflict(DentGateError):
    code = "conflict"
    status = 409
    title = "Conflicts with the current state"


class ActivationInvalid(DentGateError):
    code = "activation-invalid"
    status = 401
    title = "Activation secret is wrong or expired"


class LoginThrottled(DentGateError):
    code = "login-throttled"
    status = 429
    title = "Too many failed attempts; try later or ask your manager"


class NotAuthenticated(DentGateError):
    code = "not-authenticated"
    status = 401
    title = "Authentication required"


class SessionEnded(DentGateError):
    code = "session-ended"
    status = 401
    title = "The session has ended; log in again"


class Forbidden(DentGateError):
    code = "forbidden"
    status = 403
    title = "Not allowed"


class DeviceNotApproved(DentGateError):
    code = "device-not-approved"
    status = 403
    title = "The device is not an approved device of this account"


class DeviceRevoked(DentGateError):
    code = "device-revoked"
    status = 401
    title = "The device has been revoked"


class PostureRefused(DentGateError):
    code = "posture-refused"
    status = 403
    title = "The device does not meet the security policy"

    def __init__(self, failures: list[dict[str, str]]) -> None:
        super().__init__("; ".join(f["message"] for f in failures))
        self.failures = failures


class ProofReplayed(DentGateError):
    code = "proof-replayed"
    status = 401
    title = "This key proof was already used"
