"""Logging in: password, TOTP or recovery code, key proof, device and posture; failures throttled (G6–G9)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker

from gateway.audit.service import AuditEntry, record
from gateway.compliance.documents import lab_policy
from gateway.compliance.gates import remote_work_failures
from gateway.db.engine import transaction
from gateway.db.upsert import insert_or_update
from gateway.errors import DentGateError
from gateway.identity import accounts, passwords
from gateway.identity.devices import record_posture
from gateway.identity.errors import LoginThrottled, PostureRefused
from gateway.identity.models import Account, AddressFailures, Device, Lab
from gateway.identity.posture import PostureReport
from gateway.identity.proofs import VerifiedProof
from gateway.identity.sessions import claim_proof, issue_session
from gateway.japan import japan_today
from gateway.keys import KeyProvider
from gateway.policy import SecurityPolicy

WRONG = "the username, password or code is not correct"


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


@dataclass
class _Attempted:
    """What a login got to before it failed: the bookkeeping after a refusal needs it."""

    lab_id: uuid.UUID | None = None
    account_id: uuid.UUID | None = None
    counts_against_account: bool = True
    counts_against_address: bool = True
    spent_step: int | None = None  # a TOTP step that was accepted: spent even though the login failed
    spent_recovery_code: bool = False
    posture: tuple[uuid.UUID, PostureReport] | None = None


class _Refused(Exception):
    def __init__(self, error: DentGateError, attempted: _Attempted) -> None:
        super().__init__(error.detail)
        self.error = error
        self.attempted = attempted


def login(
    sessions: sessionmaker, keys: KeyProvider, policy: SecurityPolicy, attempt: LoginAttempt, now: datetime
) -> LoginResult:
    """Log in, or record the failure (counters, lockout, spent codes, audit) in its own transaction and raise."""
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


def _login(
    session: Session, keys: KeyProvider, policy: SecurityPolicy, attempt: LoginAttempt, now: datetime
) -> LoginResult:
    attempted = _Attempted(lab_id=session.scalar(sa.select(Lab.id).where(Lab.name == attempt.lab)))
    account = session.scalar(
        sa.select(Account).where(
            Account.lab_id == attempted.lab_id, Account.username == attempt.username.strip().lower()
        )
    )
    attempted.account_id = account.id if account else None
    if _throttled_address(session, attempt.client_address, policy, now):
        attempted.counts_against_account = False
        raise _Refused(LoginThrottled("too many failed logins from this address; try again later"), attempted)
    locked = account is not None and account.locked_until is not None and account.locked_until > now
    try:
        # Checked even when locked, so the answer for a locked account takes the same time either way.
        passwords.verify_password(account.password_hash if account else None, attempt.password)
    except passwords.WrongPassword as error:
        attempted.counts_against_account = not locked
        answer = LoginThrottled("the account is locked after repeated failures; try later") if locked else error
        raise _Refused(answer, attempted) from None
    assert account is not None
    if locked:
        attempted.counts_against_account = False
        raise _Refused(LoginThrottled("the account is locked after repeated failures; try later"), attempted)
    if account.status != "active":
        raise _Refused(passwords.WrongPassword(WRONG), attempted)
    policy = lab_policy(session, account.lab_id)  # from here on, the lab's own policy in force (G16)
    try:
        if attempt.totp:
            attempted.spent_step = accounts.accept_totp(session, account, attempt.totp, keys, now)
        else:
            accounts.use_recovery_code(session, account, attempt.recovery_code or "", now)
            attempted.spent_recovery_code = True
        claim_proof(session, attempt.proof, policy.identity)
    except DentGateError as error:
        raise _Refused(error, attempted) from None
    device, scope = _device_and_scope(session, account, attempt, policy, now, attempted)
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
    if attempted.spent_recovery_code:
        _auth_event(session, account.lab_id, account, "recovery-code.use", "success", None, attempt)
    _auth_event(session, account.lab_id, account, "login", "success", None, attempt, device, scope=scope)
    return LoginResult(
        token, scope, account.role, row.expires_at, device.id if device else None, account.lab_id, account.id
    )


def _device_and_scope(
    session: Session,
    account: Account,
    attempt: LoginAttempt,
    policy: SecurityPolicy,
    now: datetime,
    attempted: _Attempted,
) -> tuple[Device | None, str]:
    """Technicians work only from an approved device with a compliant posture; otherwise they may only enrol."""
    if account.role != "technician":
        return None, "full"
    device = session.scalar(
        sa.select(Device).where(Device.account_id == account.id, Device.thumbprint == attempt.proof.thumbprint)
    )
    if device is None or device.status != "active" or not account.identity_verified:
        return None, "enrol"
    attempted.counts_against_account = attempted.counts_against_address = False
    if attempt.posture is None:
        missing = [{"rule": "posture-missing", "message": "no posture report was sent", "requirement": "G7"}]
        raise _Refused(PostureRefused(missing), attempted)
    failures = record_posture(session, device, attempt.posture, policy.posture, now)
    if failures:
        # Every reason at once: this posture report's, and the other remote-work conditions still unmet.
        unmet = remote_work_failures(session, account, device, policy, japan_today(now))
        attempted.posture = (device.id, attempt.posture)
        raise _Refused(PostureRefused([f.as_dict() for f in unmet]), attempted)
    return device, "full"


def _auth_event(
    session: Session,
    lab_id: uuid.UUID,
    account: Account | None,
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
            lab_id=lab_id,
            category="auth",
            action=action,
            actor_type=account.role if account else "unknown",
            actor_id=str(account.id) if account else None,
            outcome=outcome,  # type: ignore[arg-type]
            reason=reason,
            target=f"account:{account.id}" if account else None,
            device_id=str(device.id) if device else None,
            client_address=attempt.client_address,
            details={"username": attempt.username.strip().lower()[:64], "key": attempt.proof.thumbprint, **details},
        ),
    )


def _count_address_failure(session: Session, address: str, policy: SecurityPolicy, now: datetime) -> None:
    """One more failure from `address`, atomically (an upsert), restarting the window when it has passed."""
    window_start = now - timedelta(minutes=policy.identity.address_window_minutes)
    expired = AddressFailures.window_started_at < window_start
    insert_or_update(
        session,
        AddressFailures,
        {"address": address, "window_started_at": now, "failures": 1},
        key=["address"],
        update={
            "failures": sa.case((expired, 1), else_=AddressFailures.failures + 1),
            "window_started_at": sa.case((expired, now), else_=AddressFailures.window_started_at),
        },
    )


def _record_refusal(
    session: Session, policy: SecurityPolicy, attempt: LoginAttempt, refused: _Refused, now: datetime
) -> None:
    attempted = refused.attempted
    if attempt.client_address is not None and attempted.counts_against_address:
        _count_address_failure(session, attempt.client_address, policy, now)
    if attempted.lab_id is None:
        return  # no lab of that name: there is no chain to record in
    account = session.get(Account, attempted.account_id) if attempted.account_id else None
    device = None
    if account is not None:
        _spend_again(session, account, attempted, attempt, now)
        if attempted.posture is not None:
            device = session.get(Device, attempted.posture[0])
            record_posture(session, device, attempted.posture[1], policy.posture, now)
    outcome = "denied" if isinstance(refused.error, PostureRefused | LoginThrottled) else "failure"
    reason = f"{refused.error.code}: {refused.error.detail}"
    _auth_event(session, attempted.lab_id, account, "login", outcome, reason, attempt, device)
    if account is not None and attempted.counts_against_account:
        _count_account_failure(session, account, policy, attempt, now)


def _spend_again(
    session: Session, account: Account, attempted: _Attempted, attempt: LoginAttempt, now: datetime
) -> None:
    """A second factor accepted before the refusal stays spent (the refused transaction was rolled back)."""
    if attempted.spent_step is not None:
        try:
            accounts.claim_totp_step(session, account, attempted.spent_step)
        except DentGateError:
            return  # a later step was accepted meanwhile: this one is spent anyway
    if attempted.spent_recovery_code:
        accounts.use_recovery_code(session, account, attempt.recovery_code or "", now)
        _auth_event(session, account.lab_id, account, "recovery-code.use", "success", "login refused", attempt)


def _count_account_failure(
    session: Session, account: Account, policy: SecurityPolicy, attempt: LoginAttempt, now: datetime
) -> None:
    """Count the failure with an atomic UPDATE and lock the account once the threshold is reached (G6)."""
    session.execute(
        sa.update(Account)
        .where(Account.id == account.id)
        .values(failed_logins=Account.failed_logins + 1)
        .execution_options(synchronize_session=False)
    )
    until = now + timedelta(minutes=policy.identity.lockout_minutes)
    locked = session.execute(
        sa.update(Account)
        .where(
            Account.id == account.id,
            Account.failed_logins >= policy.identity.lockout_threshold,
            sa.or_(Account.locked_until.is_(None), Account.locked_until <= now),
        )
        .values(locked_until=until)
        .execution_options(synchronize_session=False)
    )
    if locked.rowcount == 1:
        session.refresh(account)
        _auth_event(
            session, account.lab_id, account, "account.lockout", "success",
            f"{account.failed_logins} failed logins", attempt, until=until.isoformat(),
        )  # fmt: skip
