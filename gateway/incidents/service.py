"""Incident reports and their response (G17, G18): a lost or infected device is contained in the report's own
transaction (device revoked, its sessions ended, its open uploads aborted), anything else waits for a manager;
the plan's contacts are notified through the outbox; every step is on the timeline and the audit chain."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Session

from gateway.audit.service import record
from gateway.compliance.documents import lab_plan
from gateway.errors import DentGateError
from gateway.identity.devices import revoke_device
from gateway.identity.errors import Conflict, Forbidden, NotFound
from gateway.identity.models import Account, Device, Lab
from gateway.identity.sessions import Principal, end_sessions, principal_entry
from gateway.incidents.messages import IncidentFacts
from gateway.incidents.models import Incident, IncidentEvent
from gateway.incidents.outbox import AfterCommit, queue_notifications
from gateway.incidents.plan import INCIDENT_TYPES
from gateway.settings import Settings
from gateway.transfer.models import Upload

CONTAINED_AT_ONCE = ("lost-device", "malware")


class DeviceRequired(DentGateError):
    code = "incident-device-required"
    status = 422
    title = "Name the device the incident concerns"


class IncidentInvalid(DentGateError):
    code = "incident-invalid"
    status = 422
    title = "The incident report is incomplete"


@dataclass(frozen=True)
class Containment:
    """What containing did: the device revoked (or already revoked), sessions ended, uploads aborted."""

    device_revoked: bool = False
    sessions_ended: int = 0
    aborted_designs: tuple[str, ...] = ()
    staged: tuple[dict, ...] = ()


@dataclass(frozen=True)
class Reported:
    incident: Incident
    after_commit: AfterCommit


def incident_audit(session: Session, actor: Principal, action: str, incident: Incident, **details: object) -> None:
    details = {"incident": str(incident.id), "type": incident.type, **details}
    record(session, principal_entry(actor, "operation", action, f"incident:{incident.id}", details=details))


def add_event(session: Session, incident: Incident, kind: str, actor: Principal | None, now: datetime,
              **details: object) -> IncidentEvent:  # fmt: skip
    event = IncidentEvent(lab_id=incident.lab_id, incident_id=incident.id, kind=kind, at=now,
                          actor_id=actor.account_id if actor else None, details=dict(details))  # fmt: skip
    session.add(event)
    return event


def find_technician(session: Session, username: str) -> Account:
    """A technician of the caller's lab by username (the session is lab-bound)."""
    account = session.scalar(sa.select(Account).where(Account.username == username, Account.role == "technician"))
    if account is None:
        raise NotFound(f"no technician {username!r} in this lab")
    return account


def _subject(session: Session, reporter: Principal, subject: Account | None) -> Account:
    """Technicians report for themselves only; a manager files for the technician who phoned in (G17)."""
    if reporter.role == "technician":
        if subject is not None and subject.id != reporter.account_id:
            refusal = "a technician reports incidents for themself only; ask the manager to file for a colleague"
            raise Forbidden(refusal).audited(principal_entry(
                reporter, "operation", "incident.report", f"account:{subject.id}", outcome="denied", reason=refusal,
            ))  # fmt: skip
        own = session.get(Account, reporter.account_id)
        if own is None:
            raise NotFound("your account is not in this lab")
        return own
    if reporter.role != "manager":
        raise Forbidden("incidents are reported by technicians and managers")
    if subject is None:
        raise IncidentInvalid("name the technician the incident concerns")
    return subject


def _device(session: Session, reporter: Principal, subject: Account, device_id: uuid.UUID | None,
            type_: str) -> Device | None:  # fmt: skip
    """The named device of the technician; else the device the technician reports from; else, for a device to
    contain, the technician's only active device. DeviceRequired when a lost or infected device stays unclear."""
    if device_id is not None:
        device = session.get(Device, device_id)
        if device is None or device.account_id != subject.id:
            raise NotFound(f"{subject.username} has no device {device_id}")
        return device
    if reporter.role == "technician" and reporter.device_id is not None:
        return session.get(Device, reporter.device_id)
    if type_ not in CONTAINED_AT_ONCE:
        return None
    devices = list(session.scalars(sa.select(Device).where(Device.account_id == subject.id).order_by(Device.id)))
    active = [d for d in devices if d.status == "active"]
    if len(active) == 1:
        return active[0]
    listed = ", ".join(f"{d.name} ({d.id}, {d.status})" for d in devices) or "none enrolled"
    raise DeviceRequired(f"say which of {subject.username}'s devices is concerned (--device ID): {listed}")


def _abort_uploads(session: Session, actor: Principal, incident: Incident, device: Device) -> list[Upload]:
    uploads = list(session.scalars(
        sa.select(Upload).where(Upload.device_id == device.id, Upload.status == "open").with_for_update()
    ))  # fmt: skip
    for upload in uploads:
        upload.status, upload.reason = "aborted", f"incident {incident.id}: the device is no longer trusted"
        record(session, principal_entry(actor, "operation", "upload.abort", f"design:{upload.design_id}",
                                        reason=upload.reason, details={"incident": str(incident.id)}))  # fmt: skip
    return uploads


def contain(session: Session, actor: Principal, incident: Incident, device: Device | None, now: datetime,
            note: str | None = None) -> Containment:  # fmt: skip
    """Contain at once: revoke the device (reason "incident"), end its sessions, abort its open uploads (G17).
    The staged bytes are returned for deletion after commit."""
    if incident.status != "reported":
        raise Conflict(f"the incident is already {incident.status}")
    done = Containment()
    if device is not None:
        revoked = device.status != "revoked"
        ended = (revoke_device(session, actor, device, "incident", now) if revoked
                 else end_sessions(session, "incident", now, device_id=device.id))  # fmt: skip
        uploads = _abort_uploads(session, actor, incident, device)
        done = Containment(revoked, ended, tuple(str(u.design_id) for u in uploads), tuple(u.staging for u in uploads))
        incident.device_id = incident.device_id or device.id
    incident.status, incident.contained_at = "contained", now
    summary = {"device": str(device.id) if device else None, "device_revoked": done.device_revoked,
               "sessions_ended": done.sessions_ended, "uploads_aborted": list(done.aborted_designs)}  # fmt: skip
    add_event(session, incident, "contained", actor, now, **summary, **({"note": note} if note else {}))
    incident_audit(session, actor, "incident.contain", incident, **summary)
    return done


def report_incident(
    session: Session,
    reporter: Principal,
    subject: Account | None,
    type_: str,
    description: str,
    device_id: uuid.UUID | None,
    settings: Settings,
    now: datetime,
) -> Reported:
    """Record a report; a lost device or malware is contained in the same transaction; the plan's contacts
    are queued for notification (G17, G18). `subject` is None when technicians report for themselves."""
    if type_ not in INCIDENT_TYPES:
        raise IncidentInvalid(f"the type is one of {', '.join(INCIDENT_TYPES)}")
    technician = _subject(session, reporter, subject)
    device = _device(session, reporter, technician, device_id, type_)
    incident = Incident(lab_id=reporter.lab_id, type=type_, status="reported", subject_account_id=technician.id,
                        device_id=device.id if device else None, reported_by=reporter.account_id,
                        description=description.strip(), reported_at=now)  # fmt: skip
    session.add(incident)
    session.flush()
    add_event(session, incident, "reported", reporter, now, type=type_, technician=technician.username,
              device=str(device.id) if device else None, by_role=reporter.role)  # fmt: skip
    incident_audit(session, reporter, "incident.report", incident, technician=str(technician.id),
                   device=str(device.id) if device else None)  # fmt: skip
    done = contain(session, reporter, incident, device, now) if type_ in CONTAINED_AT_ONCE else Containment()
    plan, _ = lab_plan(session, reporter.lab_id)
    facts = IncidentFacts(
        incident_id=incident.id, type=type_, lab=session.get(Lab, reporter.lab_id).name,  # type: ignore[union-attr]
        technician=technician.username, reported_by=_username(session, reporter.account_id), reported_at=now,
        device_id=device.id if device else None, device_name=device.name if device else None,
        contained_at=incident.contained_at, device_revoked=done.device_revoked, sessions_ended=done.sessions_ended,
        uploads_aborted=len(done.aborted_designs),
    )  # fmt: skip
    queued = queue_notifications(session, incident, facts, plan, settings)
    return Reported(incident, AfterCommit(done.staged, tuple(n.id for n in queued if n.status == "pending")))


def _username(session: Session, account_id: uuid.UUID | None) -> str:
    account = session.get(Account, account_id) if account_id else None
    return account.username if account else "gateway"


def get_incident(session: Session, reader: Principal, incident_id: uuid.UUID) -> Incident:
    """An incident of the caller's lab; a technician sees only those about or by themself."""
    incident = session.get(Incident, incident_id)
    if incident is None or (reader.role == "technician" and reader.account_id not in
                            (incident.subject_account_id, incident.reported_by)):  # fmt: skip
        raise NotFound(f"no incident {incident_id}")
    return incident


def list_incidents(session: Session, reader: Principal, status: str | None = None) -> list[Incident]:
    """Newest first; managers and auditors see the lab's, a technician their own (G18)."""
    query = sa.select(Incident).order_by(Incident.reported_at.desc())
    if reader.role == "technician":
        mine = (Incident.subject_account_id == reader.account_id) | (Incident.reported_by == reader.account_id)
        query = query.where(mine)
    if status is not None:
        query = query.where(Incident.status == status)
    return list(session.scalars(query))


def contain_incident(session: Session, manager: Principal, incident_id: uuid.UUID, device_id: uuid.UUID | None,
                     note: str | None, now: datetime) -> tuple[Incident, Containment]:  # fmt: skip
    """A manager contains a reported incident, revoking the technician's device when one is named (G17)."""
    incident = get_incident(session, manager, incident_id)
    device = None
    if device_id is not None:
        device = session.get(Device, device_id)
        if device is None or device.account_id != incident.subject_account_id:
            raise NotFound(f"the technician of incident {incident_id} has no device {device_id}")
    return incident, contain(session, manager, incident, device, now, note)


def resolve_incident(session: Session, manager: Principal, incident_id: uuid.UUID, note: str,
                     now: datetime) -> Incident:  # fmt: skip
    """A manager closes the incident with what was found and done (G17); it can be resolved uncontained."""
    incident = get_incident(session, manager, incident_id)
    if incident.status == "resolved":
        raise Conflict("the incident is already resolved")
    incident.status, incident.resolved_at = "resolved", now
    add_event(session, incident, "resolved", manager, now, note=note)
    incident_audit(session, manager, "incident.resolve", incident, contained=incident.contained_at is not None)
    return incident


def add_note(session: Session, author: Principal, incident_id: uuid.UUID, text: str, now: datetime) -> Incident:
    """A note on the timeline: the manager's, or the technician's own on their incident."""
    incident = get_incident(session, author, incident_id)
    add_event(session, incident, "note", author, now, text=text)
    incident_audit(session, author, "incident.note", incident)
    return incident
