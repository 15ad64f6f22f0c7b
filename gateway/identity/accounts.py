"""Labs, accounts, activation and identity verification (G6, G10)."""

from __future__ import annotations

import hmac
import uuid
from dataclasses import dataclass
from datetime import date, datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.orm import Session

from gateway.audit.service import AuditEntry, record
from gateway.db.base import utcnow
from gateway.identity import passwords, totp
from gateway.identity.errors import ActivationInvalid, Conflict, NotFound
from gateway.identity.models import Account, IdentityVerification, Lab, PasswordHistory, RecoveryCode
from gateway.identity.service import create_lab
from gateway.identity.sessions import end_sessions
from gateway.identity.tokens import code_hash, new_code
from gateway.keys import KeyProvider
from gateway.keys.fields import open_field, seal_field
from gateway.policy import IdentityPolicy

ROLES = ("manager", "technician", "auditor")


@dataclass(frozen=True)
class Issued:
    """An account with the one-time activation secret to hand to its person (shown once, never stored)."""

    account: Account
    activation_secret: str


@dataclass(frozen=True)
class TotpEnrolment:
    secret: str
    uri: str


def _totp_context(account: Account) -> str:
    return f"totp:{account.lab_id}:{account.id}"


def operation(session: Session, account: Account, action: str, actor: Account | None, **details: object) -> None:
    """Record an operation on `account` in its lab's chain."""
    record(
        session,
        AuditEntry(
            lab_id=account.lab_id,
            category="operation",
            action=action,
            actor_type=actor.role if actor else "operator",
            actor_id=str(actor.id) if actor else None,
            target=f"account:{account.id}",
            details={"username": account.username, **details},
        ),
    )


def _issue(session: Session, lab_id: uuid.UUID, username: str, role: str, policy: IdentityPolicy) -> Issued:
    if role not in ROLES:
        raise Conflict(f"unknown role {role!r}; use one of {', '.join(ROLES)}")
    username = username.strip().lower()
    if not username or len(username) > 64 or not username.replace(".", "").replace("-", "").replace("_", "").isalnum():
        raise Conflict("a username is 1-64 letters, digits, '.', '-' or '_'")
    taken = session.scalar(sa.select(Account.id).where(Account.lab_id == lab_id, Account.username == username))
    if taken is not None:
        raise Conflict(f"the username {username!r} is taken in this lab")
    secret = new_code()
    account = Account(
        lab_id=lab_id,
        username=username,
        role=role,
        status="pending",
        activation_secret_hash=code_hash(secret),
        activation_expires_at=utcnow() + timedelta(hours=policy.activation_hours),
        identity_verified=role != "technician",
    )
    session.add(account)
    session.flush()
    return Issued(account, secret)


def init_lab(session: Session, lab_name: str, manager_username: str, policy: IdentityPolicy) -> Issued:
    """Bootstrap a lab and its first manager (server side); returns the manager's activation secret."""
    lab = create_lab(session, lab_name)
    issued = _issue(session, lab.id, manager_username, "manager", policy)
    operation(session, issued.account, "account.create", None, role="manager")
    return issued


def add_account(session: Session, actor: Account, username: str, role: str, policy: IdentityPolicy) -> Issued:
    """A manager creates an account in their lab; it activates once with the returned secret."""
    issued = _issue(session, actor.lab_id, username, role, policy)
    operation(session, issued.account, "account.create", actor, role=role)
    return issued


def find_pending(session: Session, lab_name: str, username: str, secret: str, now: datetime) -> Account:
    """The pending account the activation secret belongs to; ActivationInvalid otherwise."""
    account = session.scalar(
        sa.select(Account).join(Lab, Lab.id == Account.lab_id).where(Lab.name == lab_name, Account.username == username)
    )
    expected = account.activation_secret_hash if account is not None else code_hash("-")
    if (
        account is None
        or account.status != "pending"
        or not hmac.compare_digest(expected or "", code_hash(secret))
        or account.activation_expires_at is None
        or account.activation_expires_at < now
    ):
        raise ActivationInvalid("the activation secret is wrong, used or expired; ask your manager for a new one")
    return account


def start_activation(
    session: Session, account: Account, new_password: str, keys: KeyProvider, policy: IdentityPolicy
) -> TotpEnrolment:
    """Set the first password and issue a TOTP secret to confirm; the account stays pending."""
    if not _is_current_password(account, new_password):
        _set_password(session, account, new_password, policy)
    secret = totp.new_secret()
    account.totp_secret_sealed = seal_field(keys, secret.encode(), _totp_context(account))
    account.totp_confirmed = False
    session.flush()
    operation(session, account, "account.activation-start", account)
    lab_name = session.scalar(sa.select(Lab.name).where(Lab.id == account.lab_id))
    return TotpEnrolment(secret, totp.provisioning_uri(secret, f"{account.username}@{lab_name}"))


def totp_secret(account: Account, keys: KeyProvider) -> str:
    if account.totp_secret_sealed is None:
        raise ActivationInvalid("no authenticator is enrolled for this account")
    return open_field(keys, account.totp_secret_sealed, _totp_context(account)).decode()


def accept_totp(session: Session, account: Account, code: str, keys: KeyProvider, now: datetime) -> int:
    """Accept `code` once and return its time step (claimed with a conditional UPDATE, so replicas cannot both)."""
    step = totp.matching_step(totp_secret(account, keys), code, now, account.totp_last_step)
    claim_totp_step(session, account, step)
    return step


def claim_totp_step(session: Session, account: Account, step: int) -> None:
    """Mark `step` as used unless it or a later one already was; ReplayedCode then."""
    claimed = session.execute(
        sa.update(Account)
        .where(
            Account.id == account.id,
            sa.or_(Account.totp_last_step.is_(None), Account.totp_last_step < step),
        )
        .values(totp_last_step=step)
        .execution_options(synchronize_session=False)
    )
    if claimed.rowcount != 1:
        raise totp.ReplayedCode("this code was already used; wait for the next one")
    account.totp_last_step = step


def finish_activation(
    session: Session, account: Account, code: str, keys: KeyProvider, policy: IdentityPolicy, now: datetime
) -> list[str]:
    """Confirm the authenticator with a first code; the account becomes active. Returns the recovery codes."""
    if account.password_hash is None or account.totp_secret_sealed is None:
        raise ActivationInvalid("set a password first")
    accept_totp(session, account, code, keys, now)
    account.totp_confirmed = True
    account.status = "active"
    account.activation_secret_hash = None
    account.activation_expires_at = None
    account.must_change_password = False
    codes = totp.new_recovery_codes(policy.recovery_codes)
    session.add_all(RecoveryCode(lab_id=account.lab_id, account_id=account.id, code_hash=code_hash(c)) for c in codes)
    operation(session, account, "account.activate", account)
    return codes


def use_recovery_code(session: Session, account: Account, code: str, now: datetime) -> None:
    """Spend one unused recovery code, or raise InvalidTOTP."""
    used = session.execute(
        sa.update(RecoveryCode)
        .where(
            RecoveryCode.account_id == account.id,
            RecoveryCode.code_hash == code_hash(code),
            RecoveryCode.used_at.is_(None),
        )
        .values(used_at=now)
        .execution_options(synchronize_session=False)
    )
    if used.rowcount != 1:
        raise totp.InvalidTOTP("the username, password or code is not correct")


def _is_current_password(account: Account, password: str) -> bool:
    try:
        passwords.verify_password(account.password_hash, password)
    except passwords.WrongPassword:
        return False
    return True


def _set_password(session: Session, account: Account, new_password: str, policy: IdentityPolicy) -> None:
    """Set a password that meets the policy and differs from the last N (G10); keep it in the history."""
    passwords.check_strength(new_password, policy, [account.username])
    earlier = session.scalars(
        sa.select(PasswordHistory.password_hash)
        .where(PasswordHistory.account_id == account.id)
        .order_by(PasswordHistory.id.desc())
        .limit(policy.password_history)
    ).all()
    passwords.check_not_reused(new_password, earlier)
    account.password_hash = passwords.hash_password(new_password)
    session.add(PasswordHistory(lab_id=account.lab_id, account_id=account.id, password_hash=account.password_hash))
    session.flush()


def change_password(
    session: Session, account: Account, current: str, new_password: str, policy: IdentityPolicy
) -> None:
    """The account holder changes their password, proving the current one first."""
    passwords.verify_password(account.password_hash, current)
    _set_password(session, account, new_password, policy)
    account.must_change_password = False
    operation(session, account, "account.password-change", account)


def get_account(session: Session, account_id: uuid.UUID) -> Account:
    account = session.get(Account, account_id)
    if account is None:
        raise NotFound(f"no account {account_id} in this lab")
    return account


def verify_identity(
    session: Session,
    actor: Account,
    account: Account,
    method: str,
    document_type: str,
    verified_on: date,
    now: datetime,
) -> IdentityVerification:
    """Record how a manager verified the person's identity; only then may the account work remotely (G6).
    Approving a remote worker needs the manager's current training (G21)."""
    from gateway.compliance.gates import require_approver_training
    from gateway.japan import japan_today  # late: the gates import profiles, which import us

    require_approver_training(session, actor.id, japan_today(now))
    entry = IdentityVerification(
        lab_id=account.lab_id,
        account_id=account.id,
        method=method,
        document_type=document_type,
        verified_on=verified_on,
        verifier_id=actor.id,
    )
    session.add(entry)
    account.identity_verified = True
    session.flush()
    operation(session, account, "account.identity-verify", actor, method=method, document_type=document_type)
    return entry


def reset_account(session: Session, actor: Account, account: Account, policy: IdentityPolicy) -> Issued:
    """Start the account over: new activation secret, password change forced, authenticator re-enrolled."""
    secret = new_code()
    account.status = "pending"
    account.password_hash = None  # activation must set a new password (strength and history checked)
    account.must_change_password = True
    account.totp_confirmed = False
    account.activation_secret_hash = code_hash(secret)
    account.activation_expires_at = utcnow() + timedelta(hours=policy.activation_hours)
    account.failed_logins = 0
    account.locked_until = None
    session.execute(sa.delete(RecoveryCode).where(RecoveryCode.account_id == account.id))
    ended = end_sessions(session, "account-reset", utcnow(), account_id=account.id)
    operation(session, account, "account.reset", actor, sessions_ended=ended)
    return Issued(account, secret)


def disable_account(session: Session, actor: Account, account: Account) -> None:
    account.status = "disabled"
    ended = end_sessions(session, "account-disabled", utcnow(), account_id=account.id)
    operation(session, account, "account.disable", actor, sessions_ended=ended)


def list_accounts(session: Session) -> list[Account]:
    return list(session.scalars(sa.select(Account).order_by(Account.username)))
