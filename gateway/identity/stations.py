"""Milling stations: a manager's one-time enrolment code, the station's own keys, approval by fingerprint."""

from __future__ import annotations

import hmac
import uuid
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.orm import Session

from gateway.audit.service import AuditEntry, record
from gateway.compliance.gates import require_approver_training
from gateway.identity.errors import ActivationInvalid, Conflict, Forbidden, NotFound
from gateway.identity.models import AuthSession, Station
from gateway.identity.proofs import VerifiedProof, key_fingerprint
from gateway.identity.sessions import Principal, claim_proof, end_sessions, issue_session
from gateway.identity.tokens import code_hash, new_code
from gateway.japan import japan_today
from gateway.policy import IdentityPolicy


def station_event(session: Session, station: Station, action: str, actor: Principal | None, **details: object) -> None:
    record(
        session,
        AuditEntry(
            lab_id=station.lab_id,
            category="operation",
            action=action,
            actor_type=actor.role if actor else "station",
            actor_id=actor.actor_id if actor else str(station.id),
            target=f"station:{station.id}",
            details={"name": station.name, **details},
        ),
    )


def _manager(actor: Principal) -> None:
    if actor.role != "manager":
        raise Forbidden("only a manager manages stations")


def invite_station(
    session: Session, actor: Principal, details: dict[str, str], policy: IdentityPolicy, now: datetime
) -> tuple[Station, str]:
    """A one-time enrolment code for a named station (maker, model, serial number, location)."""
    _manager(actor)
    code = new_code()
    station = Station(
        lab_id=actor.lab_id,
        status="invited",
        enrolment_code_hash=code_hash(code),
        enrolment_expires_at=now + timedelta(hours=policy.station_enrolment_hours),
        invited_by=actor.account_id,
        created_at=now,
        **details,
    )
    session.add(station)
    session.flush()
    station_event(session, station, "station.invite", actor, maker=station.maker, serial=station.serial_number)
    return station, code


def enrol_station(
    session: Session, code: str, proof: VerifiedProof, age_recipient: str, policy: IdentityPolicy, now: datetime
) -> Station:
    """The station agent presents the code with its signing key (proof) and age recipient; it waits for approval."""
    station = session.scalar(sa.select(Station).where(Station.enrolment_code_hash == code_hash(code)))
    if (
        station is None
        or station.status != "invited"
        or station.enrolment_expires_at is None
        or station.enrolment_expires_at < now
    ):
        raise ActivationInvalid("the enrolment code is wrong, used or expired; ask a manager for a new one")
    if not age_recipient.startswith("age1") or len(age_recipient) > 100:
        raise Conflict("the age recipient must be an X25519 recipient (age1…)")
    claim_proof(session, proof, policy)
    station.public_key = proof.public_key
    station.thumbprint = proof.thumbprint
    station.age_recipient = age_recipient
    station.status = "pending"
    station.enrolment_code_hash = None
    station_event(session, station, "station.enrol", None, fingerprint=key_fingerprint(proof.public_key))
    return station


def get_station(session: Session, station_id: uuid.UUID) -> Station:
    station = session.get(Station, station_id)
    if station is None:
        raise NotFound(f"no station {station_id} in this lab")
    return station


def approve_station(session: Session, actor: Principal, station: Station, fingerprint: str, now: datetime) -> None:
    """Approve only when the fingerprint the manager read on the station matches the enrolled key."""
    _manager(actor)
    if station.status != "pending" or station.public_key is None:
        raise Conflict(f"the station is {station.status}, not waiting for approval")
    if not hmac.compare_digest(key_fingerprint(station.public_key), fingerprint.strip()):
        raise Conflict("the fingerprint does not match the key the station enrolled with; do not approve")
    require_approver_training(session, actor.account_id, japan_today(now))
    station.status = "active"
    station.approved_by = actor.account_id
    station.approved_at = now
    station_event(session, station, "station.approve", actor, fingerprint=fingerprint)


def revoke_station(session: Session, actor: Principal, station: Station, reason: str, now: datetime) -> int:
    _manager(actor)
    if station.status == "revoked":
        raise Conflict("the station is already revoked")
    station.status = "revoked"
    station.revoked_at = now
    station.enrolment_code_hash = None
    ended = end_sessions(session, "station-revoked", now, station_id=station.id)
    station_event(session, station, "station.revoke", actor, reason=reason, sessions_ended=ended)
    return ended


def station_session(
    session: Session, proof: VerifiedProof, policy: IdentityPolicy, now: datetime
) -> tuple[str, AuthSession]:
    """An active station proves its key and gets a session bound to it (no human login)."""
    station = session.scalar(sa.select(Station).where(Station.thumbprint == proof.thumbprint))
    if station is None or station.status != "active":
        raise Forbidden("this key is not an approved station")
    claim_proof(session, proof, policy)
    token, row = issue_session(
        session, lab_id=station.lab_id, thumbprint=proof.thumbprint, scope="station", policy=policy, now=now,
        station=station,
    )  # fmt: skip
    station_event(session, station, "station.session", None)
    return token, row


def list_stations(session: Session) -> list[Station]:
    return list(session.scalars(sa.select(Station).order_by(Station.created_at)))
