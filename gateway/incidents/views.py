"""Incidents as their readers see them (G18): who, which device, the timeline, time to containment, and whether
each notification went out. Batched: one query per table whatever the number of incidents."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.orm import Session

from gateway.compliance.documents import lab_plan
from gateway.identity.models import Account, Device
from gateway.incidents.models import Incident, IncidentEvent, Notification
from gateway.incidents.plan import IncidentPlan


@dataclass(frozen=True)
class IncidentDetails:
    incident: Incident
    technician: str
    reported_by: str
    reporter_role: str
    device: Device | None
    timeline: list[tuple[IncidentEvent, str | None]]  # each event with its actor's username (None: the gateway)
    notifications: list[Notification]

    @property
    def time_to_containment(self) -> timedelta | None:
        contained = self.incident.contained_at
        return None if contained is None else contained - self.incident.reported_at


def describe(session: Session, incidents: list[Incident]) -> list[IncidentDetails]:
    ids = [incident.id for incident in incidents]
    if not ids:
        return []
    events = list(session.scalars(
        sa.select(IncidentEvent).where(IncidentEvent.incident_id.in_(ids)).order_by(IncidentEvent.at, IncidentEvent.id)
    ))  # fmt: skip
    notifications = list(session.scalars(
        sa.select(Notification).where(Notification.incident_id.in_(ids)).order_by(Notification.id)
    ))  # fmt: skip
    people: set[uuid.UUID] = {i.subject_account_id for i in incidents} | {i.reported_by for i in incidents}
    people |= {e.actor_id for e in events if e.actor_id is not None}
    accounts = {a.id: a for a in session.scalars(sa.select(Account).where(Account.id.in_(people)))}
    device_ids = {i.device_id for i in incidents if i.device_id is not None}
    devices = {d.id: d for d in session.scalars(sa.select(Device).where(Device.id.in_(device_ids)))}
    return [
        IncidentDetails(
            incident=incident,
            technician=accounts[incident.subject_account_id].username,
            reported_by=accounts[incident.reported_by].username,
            reporter_role=accounts[incident.reported_by].role,
            device=devices.get(incident.device_id) if incident.device_id else None,
            timeline=[
                (e, accounts[e.actor_id].username if e.actor_id else None)
                for e in events
                if e.incident_id == incident.id
            ],
            notifications=[n for n in notifications if n.incident_id == incident.id],
        )
        for incident in incidents
    ]


@dataclass(frozen=True)
class PlanInForce:
    """The lab's incident plan in force, or the shipped template when the lab has published none (G17)."""

    plan: IncidentPlan
    template: bool
    published_at: datetime | None
    body_sha256: str | None


def plan_in_force(session: Session, lab_id: uuid.UUID) -> PlanInForce:
    plan, document = lab_plan(session, lab_id)
    if document is None:
        return PlanInForce(plan, True, None, None)
    return PlanInForce(plan, False, document.published_at, document.sha256)
