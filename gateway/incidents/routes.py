"""Incident HTTP API (G17, G18): report, read, contain, resolve, annotate; and the plan in force. Routes parse,
delegate and shape the answer; the work that must wait for the commit runs as a background task after it."""

from __future__ import annotations

import uuid
from typing import Annotated, Literal

from fastapi import APIRouter, BackgroundTasks, Depends
from sqlalchemy.orm import Session

from gateway.deps import BackendsDep
from gateway.identity.auth import LabSession, Manager, requires
from gateway.identity.sessions import Principal
from gateway.incidents import schemas as s
from gateway.incidents import service
from gateway.incidents.models import Incident
from gateway.incidents.outbox import AfterCommit, retry_notifications, run_after_commit
from gateway.incidents.views import describe, plan_in_force
from gateway.routing import TransactionalRoute

__all__ = ["retry_notifications", "router"]  # the app includes the router and runs the chore

router = APIRouter(prefix="/api/v1", tags=["incidents"], route_class=TransactionalRoute)

# A technician whose device is lost may be logging in from an unapproved one (enrol scope): they can still
# report and read the plan. Stations cannot.
Reporter = Annotated[Principal, Depends(requires("technician", "manager", scopes=("full", "enrol")))]
Reader = Annotated[Principal, Depends(requires("technician", "manager", "auditor", scopes=("full", "enrol")))]


def _out(session: Session, incident: Incident) -> s.IncidentOut:
    return s.IncidentOut.of(describe(session, [incident])[0])


@router.post("/incidents", response_model=s.IncidentOut, status_code=201)
def report_incident(
    body: s.IncidentReportIn, reporter: Reporter, session: LabSession, backends: BackendsDep, tasks: BackgroundTasks
) -> s.IncidentOut:
    """Report an incident (G17); a lost device or malware is contained at once, the plan's contacts told (G18)."""
    subject = service.find_technician(session, body.technician) if body.technician else None
    reported = service.report_incident(session, reporter, subject, body.type, body.description, body.device_id,
                                       backends.settings, backends.clock())  # fmt: skip
    tasks.add_task(run_after_commit, backends, reported.after_commit)
    return _out(session, reported.incident)


@router.get("/incidents", response_model=list[s.IncidentOut])
def list_incidents(
    reader: Reader, session: LabSession, status: Literal["reported", "contained", "resolved"] | None = None
) -> list[s.IncidentOut]:
    """The lab's incidents, newest first (a technician's own), each with its timeline (G18)."""
    return [s.IncidentOut.of(d) for d in describe(session, service.list_incidents(session, reader, status))]


@router.get("/incidents/{incident_id}", response_model=s.IncidentOut)
def get_incident(incident_id: uuid.UUID, reader: Reader, session: LabSession) -> s.IncidentOut:
    return _out(session, service.get_incident(session, reader, incident_id))


@router.post("/incidents/{incident_id}/contain", response_model=s.IncidentOut)
def contain_incident(
    incident_id: uuid.UUID,
    body: s.ContainIn,
    manager: Manager,
    session: LabSession,
    backends: BackendsDep,
    tasks: BackgroundTasks,
) -> s.IncidentOut:
    """A manager contains the incident, revoking the named device of the technician (G17)."""
    incident, done = service.contain_incident(session, manager, incident_id, body.device_id, body.note,
                                              backends.clock())  # fmt: skip
    tasks.add_task(run_after_commit, backends, AfterCommit(staged=done.staged))
    return _out(session, incident)


@router.post("/incidents/{incident_id}/resolve", response_model=s.IncidentOut)
def resolve_incident(
    incident_id: uuid.UUID, body: s.ResolveIn, manager: Manager, session: LabSession, backends: BackendsDep
) -> s.IncidentOut:
    return _out(session, service.resolve_incident(session, manager, incident_id, body.note, backends.clock()))


@router.post("/incidents/{incident_id}/notes", response_model=s.IncidentOut, status_code=201)
def add_note(
    incident_id: uuid.UUID, body: s.NoteIn, author: Reporter, session: LabSession, backends: BackendsDep
) -> s.IncidentOut:
    return _out(session, service.add_note(session, author, incident_id, body.text, backends.clock()))


@router.get("/incident-plan", response_model=s.IncidentPlanOut)
def incident_plan(reader: Reader, session: LabSession) -> s.IncidentPlanOut:
    """The incident response plan in force: the lab's newest published version, else the template (G17)."""
    return s.IncidentPlanOut.of(plan_in_force(session, reader.lab_id))
