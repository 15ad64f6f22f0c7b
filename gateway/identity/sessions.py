"""Key-bound sessions: opaque tokens stored hashed, each bound to the key that proved possession at login."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from gateway.audit.service import AuditEntry, record
from gateway.identity.errors import DeviceRevoked, ProofReplayed, SessionEnded
from gateway.identity.models import Account, AuthSession, Device, Station, UsedProof
from gateway.identity.proofs import VerifiedProof
from gateway.identity.tokens import new_token, token_hash
from gateway.policy import IdentityPolicy


@dataclass(frozen=True)
class Principal:
    """Who is calling: an account (with its role) or a station, in one lab, through one session."""

    lab_id: uuid.UUID
    session_id: uuid.UUID
    role: str  # manager | technician | auditor | station
    scope: str  # full | enrol | station
    key_thumbprint: str
    account_id: uuid.UUID | None = None
    station_id: uuid.UUID | None = None
    device_id: uuid.UUID | None = None

    @property
    def actor_id(self) -> str:
        return str(self.account_id or self.station_id)


def claim_proof(session: Session, proof: VerifiedProof, policy: IdentityPolicy) -> None:
    """Accept each proof id once, across replicas (a primary-key insert); ProofReplayed otherwise."""
    try:
        with session.begin_nested():
            session.add(
                UsedProof(
                    jti_hash=token_hash(f"{proof.thumbprint}:{proof.jti}"),
                    expires_at=proof.issued_at + timedelta(seconds=2 * policy.proof_max_age_seconds),
                )
            )
    except IntegrityError as error:
        raise ProofReplayed("this key proof was already used; make a fresh one for each request") from error


def forget_stale_proofs(session: Session, now: datetime) -> None:
    """Drop remembered proof ids that are too old to be accepted anyway."""
    session.execute(sa.delete(UsedProof).where(UsedProof.expires_at < now))


def issue_session(
    session: Session,
    *,
    lab_id: uuid.UUID,
    thumbprint: str,
    scope: str,
    policy: IdentityPolicy,
    now: datetime,
    account: Account | None = None,
    station: Station | None = None,
    device: Device | None = None,
) -> tuple[str, AuthSession]:
    """A new session token (returned once) bound to `thumbprint`; only its hash is stored."""
    forget_stale_proofs(session, now)
    token = new_token()
    row = AuthSession(
        lab_id=lab_id,
        token_hash=token_hash(token),
        account_id=account.id if account else None,
        station_id=station.id if station else None,
        device_id=device.id if device else None,
        key_thumbprint=thumbprint,
        scope=scope,
        created_at=now,
        last_seen_at=now,
        expires_at=now + timedelta(hours=policy.session_absolute_hours),
    )
    session.add(row)
    session.flush()
    return token, row


def find_session(session: Session, token: str) -> AuthSession:
    row = session.scalar(sa.select(AuthSession).where(AuthSession.token_hash == token_hash(token)))
    if row is None:
        raise SessionEnded("the token is not a valid session; log in again")
    return row


def check_session(session: Session, row: AuthSession, policy: IdentityPolicy, now: datetime) -> Principal:
    """The caller behind a live session; SessionEnded, DeviceRevoked when it may no longer act (G6)."""
    if row.ended_at is not None:
        raise SessionEnded(f"the session ended ({row.end_reason}); log in again")
    if now >= row.expires_at:
        end_session(row, "expired", now)
        raise SessionEnded("the session reached its maximum lifetime; log in again")
    if now - row.last_seen_at > timedelta(minutes=policy.session_idle_minutes):
        end_session(row, "idle", now)
        raise SessionEnded("the session was idle too long; log in again")
    role = "station"
    if row.account_id is not None:
        account = session.get(Account, row.account_id)
        if account is None or account.status != "active":
            end_session(row, "account-inactive", now)
            raise SessionEnded("the account is no longer active")
        role = account.role
    if row.station_id is not None:
        station = session.get(Station, row.station_id)
        if station is None or station.status != "active":
            end_session(row, "station-revoked", now)
            raise SessionEnded("the station is no longer active")
    if row.device_id is not None:
        device = session.get(Device, row.device_id)
        if device is None or device.status != "active":
            end_session(row, "device-revoked", now)
            raise DeviceRevoked("the device was revoked; its sessions have ended")
    row.last_seen_at = now
    return Principal(
        lab_id=row.lab_id,
        session_id=row.id,
        role=role,
        scope=row.scope,
        key_thumbprint=row.key_thumbprint,
        account_id=row.account_id,
        station_id=row.station_id,
        device_id=row.device_id,
    )


def end_session(row: AuthSession, reason: str, now: datetime) -> None:
    if row.ended_at is None:
        row.ended_at = now
        row.end_reason = reason


def end_sessions(session: Session, reason: str, now: datetime, **owner: uuid.UUID) -> int:
    """End every open session of an account, device or station (`account_id=`, `device_id=`, `station_id=`)."""
    (column, value), *_ = owner.items()
    result = session.execute(
        sa.update(AuthSession)
        .where(getattr(AuthSession, column) == value, AuthSession.ended_at.is_(None))
        .values(ended_at=now, end_reason=reason)
        .execution_options(synchronize_session=False)
    )
    return result.rowcount


def principal_entry(
    principal: Principal,
    category: str,
    action: str,
    target: str,
    outcome: str = "success",
    reason: str | None = None,
    details: dict[str, object] | None = None,
) -> AuditEntry:
    """An audit entry of something the calling principal did, in its lab's chain: the one way to name the actor."""
    return AuditEntry(
        lab_id=principal.lab_id,
        category=category,  # type: ignore[arg-type]
        action=action,
        actor_type=principal.role,
        actor_id=principal.actor_id,
        outcome=outcome,  # type: ignore[arg-type]
        reason=reason,
        target=target,
        device_id=str(principal.device_id) if principal.device_id else None,
        details=dict(details or {}),
    )


def principal_event(
    session: Session,
    principal: Principal,
    action: str,
    outcome: str = "success",
    reason: str | None = None,
    **details: object,
) -> None:
    """Record an authentication event of the calling principal in its lab's chain."""
    record(session, principal_entry(principal, "auth", action, f"session:{principal.session_id}", outcome, reason,
                                    details))  # fmt: skip
