"""Compliance HTTP API: lab documents (G16, G17), training (G21), attestations (G5, G8, G15), the prefecture
roster (G3) and a technician's readiness. Routes only parse, delegate and shape the answer."""

from __future__ import annotations

import uuid
from datetime import datetime

from fastapi import APIRouter, Response
from sqlalchemy.orm import Session

from gateway.compliance import acknowledgements, attestations, documents, readiness, roster, training
from gateway.compliance import schemas as s
from gateway.compliance.documents import DocumentKind, lab_policy
from gateway.compliance.models import LabDocument
from gateway.deps import BackendsDep
from gateway.identity.accounts import get_account
from gateway.identity.auth import AuditReader, LabSession, Manager, Member, Technician
from gateway.japan import japan_today
from gateway.routing import TransactionalRoute
from gateway.spreadsheet import MEDIA_TYPES

router = APIRouter(prefix="/api/v1", tags=["compliance"], route_class=TransactionalRoute)


def _document_out(document: LabDocument) -> s.DocumentOut:
    return s.DocumentOut.model_validate(document)


@router.get("/documents/{kind}", response_model=s.DocumentInForceOut)
def document_in_force(kind: DocumentKind, member: Member, session: LabSession) -> s.DocumentInForceOut:
    """The lab's security policy (G16) or incident plan (G17) in force; before it publishes one, the template."""
    found = acknowledgements.document_in_force(session, member.lab_id, kind)
    if found.document is None:
        message = f"the lab has published no {kind} yet; the shipped template below is the text to adapt and publish"
        return s.DocumentInForceOut(kind=kind, published=False, message=message, document=None,
                                    template_version=found.template_version, template=found.template)  # fmt: skip
    message = f"{kind} version {found.document.version} is in force"
    return s.DocumentInForceOut(kind=kind, published=True, message=message, document=_document_out(found.document),
                                template_version=found.template_version, template=None)  # fmt: skip


@router.post("/documents/{kind}", response_model=s.DocumentOut, status_code=201)
def publish_document(kind: DocumentKind, body: s.DocumentIn, manager: Manager, session: LabSession) -> s.DocumentOut:
    """Publish a new version (TOML); it is in force at once and everyone acknowledges it anew (G16, G17)."""
    actor = get_account(session, manager.account_id)
    return _document_out(documents.publish(session, actor, kind, body.body))


@router.get("/documents/{kind}/history", response_model=list[s.DocumentOut])
def document_history(kind: DocumentKind, member: Member, session: LabSession) -> list[s.DocumentOut]:
    """Every published version, newest (the one in force) first."""
    return [_document_out(d) for d in documents.history(session, member.lab_id, kind)]


@router.post("/documents/{kind}/acknowledgements", response_model=s.AcknowledgementOut, status_code=201)
def acknowledge_document(
    kind: DocumentKind, body: s.AcknowledgeIn, member: Member, session: LabSession
) -> s.AcknowledgementOut:
    """The caller confirms they read `version`, which must be the version in force (G16)."""
    account = get_account(session, member.account_id)
    done = documents.acknowledge(session, account, kind, body.version)
    return s.AcknowledgementOut(kind=kind, version=body.version, account_id=account.id,
                                acknowledged_at=done.acknowledged_at)  # fmt: skip


@router.get("/documents/{kind}/acknowledgements", response_model=s.AcknowledgementsOut)
def document_readers(kind: DocumentKind, manager: Manager, session: LabSession) -> s.AcknowledgementsOut:
    """Who has and who has not acknowledged the version in force (G16)."""
    document, readers = acknowledgements.acknowledgements(session, manager.lab_id, kind)
    out = [s.ReaderOut(id=r.account.id, username=r.account.username, role=r.account.role,
                       acknowledged_at=r.acknowledged_at) for r in readers]  # fmt: skip
    return s.AcknowledgementsOut(kind=kind, version=document.version,
                                 acknowledged=[r for r in out if r.acknowledged_at is not None],
                                 not_acknowledged=[r for r in out if r.acknowledged_at is None])  # fmt: skip


def _training_out(held: training.HeldTraining) -> s.TrainingOut:
    t = held.training
    return s.TrainingOut(
        id=t.id, held_on=t.held_on, title=t.title, provider=t.provider, topics=t.topics,
        duration_minutes=t.duration_minutes, recorded_by=t.recorded_by, recorded_at=t.recorded_at,
        attendees=[s.PersonOut.model_validate(a) for a in held.attendees],
    )  # fmt: skip


@router.post("/training", response_model=s.TrainingOut, status_code=201)
def record_training(body: s.TrainingIn, manager: Manager, session: LabSession, backends: BackendsDep) -> s.TrainingOut:
    """Record a training that was held and who attended it (G21)."""
    actor = get_account(session, manager.account_id)
    held = training.record_training(
        session, actor, body.held_on, body.title, body.provider, body.topics, body.duration_minutes, body.attendees,
        lab_policy(session, manager.lab_id), today=japan_today(backends.clock()),
    )  # fmt: skip
    return _training_out(training.held_training(session, held))


@router.get("/training", response_model=list[s.TrainingOut])
def list_training(reader: AuditReader, session: LabSession) -> list[s.TrainingOut]:
    """The lab's training sessions, newest first, with their attendees (G21)."""
    return [_training_out(held) for held in training.list_trainings(session, reader.lab_id)]


@router.get("/training/due", response_model=list[s.TrainingDueOut])
def training_due(reader: AuditReader, session: LabSession, backends: BackendsDep) -> list[s.TrainingDueOut]:
    """Per manager and technician: current, due soon, overdue or never trained, and the date it runs out (G21)."""
    policy = lab_policy(session, reader.lab_id)
    return [
        s.TrainingDueOut(id=d.account.id, username=d.account.username, role=d.account.role, status=d.status,
                         due_on=d.due_on, missing_topics=list(d.missing), last_trained_on=d.last_trained_on)
        for d in training.training_due(session, reader.lab_id, policy, backends.clock().date())
    ]  # fmt: skip


def _attest(
    session: Session, actor_id: uuid.UUID, account_id: uuid.UUID, body: s.AttestationIn, now: datetime
) -> s.AttestationOut:
    today = japan_today(now)
    recorded = attestations.record_attestation(
        session, get_account(session, actor_id), get_account(session, account_id), body.kind,
        body.attested_on or today, body.statement, body.device_id, today,
    )  # fmt: skip
    return s.AttestationOut.model_validate(recorded)


@router.post("/me/attestations", response_model=s.AttestationOut, status_code=201)
def attest(
    body: s.AttestationIn, technician: Technician, session: LabSession, backends: BackendsDep
) -> s.AttestationOut:
    """The technician attests one of their own remote-work measures (G5, G8, G15)."""
    assert technician.account_id is not None
    return _attest(session, technician.account_id, technician.account_id, body, backends.clock())


@router.post("/accounts/{account_id}/attestations", response_model=s.AttestationOut, status_code=201)
def confirm_attestation(
    account_id: uuid.UUID, body: s.AttestationIn, manager: Manager, session: LabSession, backends: BackendsDep
) -> s.AttestationOut:
    """A manager confirms a technician's remote-work measure (G5: the manager confirms)."""
    assert manager.account_id is not None
    return _attest(session, manager.account_id, account_id, body, backends.clock())


def _status_out(row: attestations.AttestationRow) -> s.AttestationStatusOut:
    return s.AttestationStatusOut(
        account_id=row.account.id, username=row.account.username, kind=row.kind, requirement=row.requirement,
        device_id=row.device_id, status=row.status, attested_on=row.attested_on, valid_until=row.valid_until,
    )  # fmt: skip


@router.get("/attestations", response_model=list[s.AttestationStatusOut])
def attestation_table(reader: AuditReader, session: LabSession, backends: BackendsDep) -> list[s.AttestationStatusOut]:
    """Per technician, each required attestation: current, expired or missing, and until when it holds."""
    policy = lab_policy(session, reader.lab_id)
    rows = attestations.attestation_table(session, reader.lab_id, policy, backends.clock().date())
    return [_status_out(row) for row in rows]


@router.get("/roster", response_model=s.RosterOut)
def show_roster(manager: Manager, session: LabSession) -> s.RosterOut:
    """The prefecture roster as it stands; workers whose change is not filed yet are flagged (G3)."""
    view = roster.roster_view(session, manager.lab_id)
    rows = [
        s.RosterRowOut(account_id=r.account.id, username=r.account.username, profile_id=r.profile.id,
                       full_name=r.profile.full_name, remote_work=r.remote_work, phone=r.profile.phone,
                       location=roster.location_text(r.profile, "ja"), licence_number=r.profile.licence_number,
                       unfiled=r.unfiled)
        for r in view.rows
    ]  # fmt: skip
    last = s.RosterExportOut.model_validate(view.last_export) if view.last_export else None
    return s.RosterOut(lab=view.lab_name, rows=rows, unfiled_changes=sum(r.unfiled for r in rows), last_export=last,
                       no_longer_listed=[s.PersonOut.model_validate(a) for a in view.no_longer_listed])  # fmt: skip


@router.post(
    "/roster/exports",
    response_class=Response,
    responses={200: {"content": {"application/pdf": {}, "text/csv": {}}, "description": "The roster document."}},
)
def export_roster(body: s.RosterExportIn, manager: Manager, session: LabSession, backends: BackendsDep) -> Response:
    """The roster as the filing's attachment (PDF or CSV), remembered as filed from now on (G3)."""
    now = backends.clock()
    data, export = roster.export_roster(session, get_account(session, manager.account_id), body.format, body.lang, now)
    name = f"roster-{japan_today(now).isoformat()}-{body.lang}.{body.format}"
    headers = {"Content-Disposition": f'attachment; filename="{name}"', "X-DentGate-Roster-Export": str(export.id),
               "X-DentGate-SHA256": export.sha256}  # fmt: skip
    return Response(content=data, media_type=MEDIA_TYPES[export.format], headers=headers)


@router.get("/me/readiness", response_model=s.ReadinessOut)
def my_readiness(technician: Technician, session: LabSession, backends: BackendsDep) -> s.ReadinessOut:
    """What stands between the technician, on this device, and an upload today, and when training runs out."""
    assert technician.account_id is not None
    found = readiness.readiness(session, technician.account_id, technician.device_id, japan_today(backends.clock()))
    return s.ReadinessOut(
        ready=found.ready, failures=[s.FailureOut(**f.as_dict()) for f in found.failures],
        training_due_on=found.training_due_on, attestations=[_status_out(row) for row in found.attestations],
    )  # fmt: skip
