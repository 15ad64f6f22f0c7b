"""Technician devices: enrolment with the device's own key, manager approval, revocation, posture ledger (G7–G9)."""

from __future__ import annotations

import uuid
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from gateway.audit.service import AuditEntry, record
from gateway.compliance.gates import require_approver_training
from gateway.identity.errors import Conflict, Forbidden, NotFound
from gateway.identity.models import Account, Device, PostureRecord
from gateway.identity.posture import PostureReport, evaluate_posture
from gateway.identity.proofs import VerifiedProof
from gateway.identity.sessions import Principal, end_sessions
from gateway.japan import japan_today
from gateway.policy import PosturePolicy


def device_event(session: Session, device: Device, action: str, actor: Principal | Account, **details: object) -> None:
    role = actor.role
    actor_id = actor.actor_id if isinstance(actor, Principal) else str(actor.id)
    record(
        session,
        AuditEntry(
            lab_id=device.lab_id,
            category="operation",
            action=action,
            actor_type=role,
            actor_id=actor_id,
            target=f"device:{device.id}",
            device_id=str(device.id),
            details={"name": device.name, **details},
        ),
    )


def record_posture(
    session: Session, device: Device, report: PostureReport, policy: PosturePolicy, now: datetime
) -> list[dict[str, str]]:
    """Keep the report in the device ledger and return the policy's failing checks (empty when compliant)."""
    failures = [
        {"rule": f.rule, "message": f.message, "requirement": f.requirement}
        for f in evaluate_posture(report, policy, now)
    ]
    session.add(
        PostureRecord(
            lab_id=device.lab_id,
            device_id=device.id,
            received_at=now,
            report=report.model_dump(mode="json"),
            compliant=not failures,
            failures=failures,
        )
    )
    session.flush()
    return failures


def enrol_device(
    session: Session,
    principal: Principal,
    proof: VerifiedProof,
    name: str,
    posture: PostureReport,
    policy: PosturePolicy,
    now: datetime,
) -> tuple[Device, list[dict[str, str]]]:
    """Register the key that signed this request as a pending device of the calling technician."""
    if principal.role != "technician" or principal.account_id is None:
        raise Forbidden("only a technician enrols a device, from the device itself")
    existing = session.scalar(sa.select(Device).where(Device.thumbprint == proof.thumbprint))
    if existing is not None:
        raise Conflict(f"this key is already enrolled as device {existing.id} ({existing.status})")
    device = Device(
        lab_id=principal.lab_id,
        account_id=principal.account_id,
        name=name.strip()[:100] or "device",
        public_key=proof.public_key,
        thumbprint=proof.thumbprint,
        status="pending",
        created_at=now,
    )
    try:
        with session.begin_nested():
            session.add(device)
    except IntegrityError as error:  # the key is enrolled in another lab, which this session cannot see
        raise Conflict("this key is already enrolled as a device") from error
    failures = record_posture(session, device, posture, policy, now)
    device_event(session, device, "device.enrol", principal, key=proof.thumbprint, compliant=not failures)
    return device, failures


def get_device(session: Session, device_id: uuid.UUID) -> Device:
    device = session.get(Device, device_id)
    if device is None:
        raise NotFound(f"no device {device_id} in this lab")
    return device


def approve_device(
    session: Session, actor: Principal, device: Device, ownership: str, manager_can_administer: bool, now: datetime
) -> None:
    """A manager approves a pending device as lab-lent or personal; a personal one must be administrable (G8)."""
    if device.status != "pending":
        raise Conflict(f"the device is {device.status}, not pending")
    if ownership not in ("lab-lent", "personal"):
        raise Conflict("ownership is 'lab-lent' or 'personal'")
    if ownership == "personal" and not manager_can_administer:
        raise Conflict("a personal device is allowed only when the manager can administer its settings (G8)")
    require_approver_training(session, actor.account_id, japan_today(now))
    device.status = "active"
    device.ownership = ownership
    device.manager_can_administer = manager_can_administer
    device.approved_by = actor.account_id
    device.approved_at = now
    device_event(session, device, "device.approve", actor, ownership=ownership, administrable=manager_can_administer)


def revoke_device(session: Session, actor: Principal, device: Device, reason: str, now: datetime) -> int:
    """Revoke a device at once: its open sessions end and it can no longer log in."""
    if device.status == "revoked":
        raise Conflict("the device is already revoked")
    device.status = "revoked"
    device.revoked_at = now
    ended = end_sessions(session, "device-revoked", now, device_id=device.id)
    device_event(session, device, "device.revoke", actor, reason=reason, sessions_ended=ended)
    return ended


def device_of_key(session: Session, principal: Principal) -> Device:
    """The calling technician's device whose key signs this session's requests."""
    device = session.scalar(
        sa.select(Device).where(
            Device.account_id == principal.account_id, Device.thumbprint == principal.key_thumbprint
        )
    )
    if device is None:
        raise NotFound("this key is not an enrolled device; enrol it first")
    return device


def list_devices(session: Session, account_id: uuid.UUID | None = None) -> list[Device]:
    query = sa.select(Device).order_by(Device.created_at)
    if account_id is not None:
        query = query.where(Device.account_id == account_id)
    return list(session.scalars(query))


def ledger(session: Session, device: Device) -> list[PostureRecord]:
    """The device's posture history, newest first (G8 device ledger)."""
    return list(
        session.scalars(
            sa.select(PostureRecord).where(PostureRecord.device_id == device.id).order_by(PostureRecord.id.desc())
        )
    )
