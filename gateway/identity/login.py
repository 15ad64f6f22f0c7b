"""Logging in: password, TOTP or recovery code, key proof, device and posture; failures throttled (G6–G9)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker

from gateway.audit.service import AuditEntry, record
from gateway.db.engine import transaction
from gateway.errors import DentGateError
from gateway.identity import accounts, passwords
from gateway.identity.devices import record_posture
from gateway.identity.errors import LoginThrottled, PostureRefused
from gateway.identity.models import Account, AddressFailures, Device, Lab
from gateway.identity.posture import PostureReport
from gateway.identity.proofs import VerifiedProof
from gateway.identity.sessions import claim_proof, issue_session
from gateway.keys import KeyProvider
from gateway.policy import SecurityPolicy


@dataclass(frozen=True)
class LoginAttempt:
    lab: str
    username: str
    password: str = field(repr=False)
    proof: VerifiedProof
    client_address: str | None
    totp: str | None = field(default=None, repr=False)
    recovery_code: str | None = field(default=None, repr=False)
    posture: PostureReport | None = None


@dataclass(frozen=True)
class LoginResult:
    token: str = field(repr=False)
    scope: str
    role: str
    expires_at: datetime
    device_id: uuid.UUID | None
    lab_id: uuid.UUID
    account_id: uuid.UUID


class _Refused(Exception):
    """Internal: why a login failed, with what the failure bookkeeping needs."""

    def __init__(self, error: DentGateError, account_id: uuid.UUID | None, credential_failure: bool = True) -> None:
        super().__init__(error.detail)
        self.error = error
        self.account_id = account_id
        self.credential_failure = credential_failure
        self.posture: tuple[uuid.UUID, PostureReport] | None = None


def login(
    sessions: sessionmaker, keys: KeyProvider, policy: SecurityPolicy, attempt: LoginAttempt, now: datetime
) -> LoginResult:
    """Log in, or record the failure (counters, lockout, audit) in its own transaction and raise."""
    try:
        with transaction(sessions) as session:
            return _login(session, keys, policy, attempt, now)
    except _Refused as refused:
        with transaction(sessions) as session:
            _record_refusal(session, policy, attempt, refused, now)
        raise refused.error from None


def _throttled_address(session: Session, address: str | None, policy: SecurityPolicy, now: datetime) -> bool:
    if address is None:
        return False
    row = session.get(AddressFailures, address)
    window = timedelta(minutes=policy.identity.address_window_minutes)
    return (
        row is not None
        and now - row.window_started_at < window
        and (row.failures >= policy.identity.address_failure_threshold)
    )


def _login(session: Session, keys: KeyProvider, policy: SecurityPolicy, attempt: LoginAttempt, now: datetime):
    account = session.scalar(
        sa.select(Account)
        .join(Lab, Lab.id == Account.lab_id)
        .where(Lab.name == attempt.lab, Account.username == attempt.username.strip().lower())
    )
    account_id = account.id if account else None
    if _throttled_address(session, attempt.client_address, policy, now):
        raise _Refused(LoginThrottled("too many failed logins from this address; try again later"), account_id)
    try:
        passwords.verify_password(account.password_hash if account else None, attempt.password)
    except passwords.WrongPassword as error:
        raise _Refused(error, account_id) from None
    assert account is not None
    if account.locked_until is not None and account.locked_until > now:
        raise _Refused(LoginThrottled("the account is locked after repeated failures; try later"), account_id, False)
    if account.status != "active":
        raise _Refused(passwords.WrongPassword("the username, password or code is not correct"), account_id)
    try:
        if attempt.totp:
            accounts.accept_totp(session, account, attempt.totp, keys, now)
        elif attempt.recovery_code:
            accounts.use_recovery_code(session, account, attempt.recovery_code, now)
            _auth_event(session, account, "recovery-code.use", "success", None, attempt)
        else:
            raise passwords.WrongPassword("a TOTP code or a recovery code is required")
        claim_proof(session, attempt.proof, policy.identity)
    except DentGateError as error:
        raise _Refused(error, account.id) from None
    device, scope = _device_and_scope(session, account, attempt, policy, now)
    if account.password_hash and passwords.needs_rehash(account.password_hash):
        account.password_hash = passwords.hash_password(attempt.password)
    account.failed_logins = 0
    account.locked_until = None
    token, row = issue_session(
        session,
        lab_id=account.lab_id,
        thumbprint=attempt.proof.thumbprint,
        scope=scope,
        policy=policy.identity,
        now=now,
        account=account,
        device=device,
    )
    _auth_event(session, account, "login", "success", None, attempt, device, scope=scope)
    return LoginResult(
        token, scope, account.role, row.expires_at, device.id if device else None, account.lab_id, account.id
    )


def _device_and_scope(
    session: Session, account: Account, attempt: LoginAttempt, policy: SecurityPolicy, now: datetime
) -> tuple[Device | None, str]:
    """Technicians work only from an approved device with a compliant posture; otherwise they may only enrol."""
    if account.role != "technician":
        return None, "full"
    device = session.scalar(
        sa.select(Device).where(Device.account_id == account.id, Device.thumbprint == attempt.proof.thumbprint)
    )
    if device is None or device.status != "active" or not account.identity_verified:
        return device, "enrol"
    if attempt.posture is None:
        raise _Refused(
            PostureRefused([{"rule": "posture-missing", "message": "no posture report was sent"}]), account.id, False
        )
    failures = record_posture(session, device, attempt.posture, policy.posture, now)
    if failures:
        refused = _Refused(PostureRefused(failures), account.id, False)
        refused.posture = (device.id, attempt.posture)
        raise refused
    return device, "full"


def _auth_event(
    session: Session,
    account: Account,
    action: str,
    outcome: str,
    reason: str | None,
    attempt: LoginAttempt,
    device: Device | None = None,
    **details: object,
) -> None:
    record(
        session,
        AuditEntry(
            lab_id=account.lab_id,
            category="auth",
            action=action,
            actor_type=account.role,
            actor_id=str(account.id),
            outcome=outcome,  # type: ignore[arg-type]
            reason=reason,
            target=f"account:{account.id}",
            device_id=str(device.id) if device else None,
            client_address=attempt.client_address,
            details={"username": account.username, "key": attempt.proof.thumbprint, **details},
        ),
    )


def _record_refusal(
    session: Session, policy: SecurityPolicy, attempt: LoginAttempt, refused: _Refused, now: datetime
) -> None:
    if attempt.client_address is not None and refused.credential_failure:
        row = session.get(AddressFailures, attempt.client_address)
        window = timedelta(minutes=policy.identity.address_window_minutes)
        if row is None:
            session.add(AddressFailures(address=attempt.client_address, window_started_at=now, failures=1))
        elif now - row.window_started_at >= window:
            row.window_started_at, row.failures = now, 1
        else:
            row.failures += 1
    account = session.get(Account, refused.account_id) if refused.account_id else None
    if account is None:
        return
    device = None
    if refused.posture is not None:
        device = session.get(Device, refused.posture[0])
        record_posture(session, device, refused.posture[1], policy.posture, now)
    outcome = "denied" if isinstance(refused.error, PostureRefused) else "failure"
    _auth_event(session, account, "login", outcome, f"{refused.error.code}: {refused.error.detail}", attempt, device)
    if not refused.credential_failure:
        return
    account.failed_logins += 1
    if account.failed_logins >= policy.identity.lockout_threshold and not (
        account.locked_until and account.locked_until > now
    ):
        account.locked_until = now + timedelta(minutes=policy.identity.lockout_minutes)
        _auth_event(
            session, account, "account.lockout", "success", f"{account.failed_logins} failed logins", attempt,
            until=account.locked_until.isoformat(),
        )  # fmt: skip
