"""Request and response bodies of the incident API (G17, G18)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from gateway.incidents.views import IncidentDetails, PlanInForce

IncidentType = Literal["lost-device", "malware", "suspicious", "other"]


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


class IncidentReportIn(_In):
    type: IncidentType
    description: str = Field(min_length=1, max_length=2000)
    device_id: uuid.UUID | None = Field(default=None, description="default: the device you report from")
    technician: str | None = Field(default=None, max_length=64, description="a manager files for this username")


class ContainIn(_In):
    device_id: uuid.UUID | None = Field(default=None, description="revoke this device of the technician")
    note: str | None = Field(default=None, max_length=2000)


class ResolveIn(_In):
    note: str = Field(min_length=1, max_length=2000)


class NoteIn(_In):
    text: str = Field(min_length=1, max_length=2000)


class DeviceRef(BaseModel):
    id: uuid.UUID
    name: str
    status: str


class TimelineEventOut(BaseModel):
    kind: str
    at: datetime
    actor: str | None
    details: dict[str, Any]


class NotificationOut(BaseModel):
    channel: str
    recipient: str
    status: str
    attempts: int
    last_error: str | None
    sent_at: datetime | None


class IncidentOut(BaseModel):
    id: uuid.UUID
    type: str
    status: str
    technician: str
    reported_by: str
    reporter_role: str
    device: DeviceRef | None
    description: str
    reported_at: datetime
    contained_at: datetime | None
    resolved_at: datetime | None
    time_to_containment_seconds: float | None
    timeline: list[TimelineEventOut]
    notifications: list[NotificationOut]

    @classmethod
    def of(cls, details: IncidentDetails) -> IncidentOut:
        incident, device, took = details.incident, details.device, details.time_to_containment
        return cls(
            id=incident.id, type=incident.type, status=incident.status, technician=details.technician,
            reported_by=details.reported_by, reporter_role=details.reporter_role,
            device=DeviceRef(id=device.id, name=device.name, status=device.status) if device else None,
            description=incident.description, reported_at=incident.reported_at, contained_at=incident.contained_at,
            resolved_at=incident.resolved_at,
            time_to_containment_seconds=took.total_seconds() if took is not None else None,
            timeline=[TimelineEventOut(kind=e.kind, at=e.at, actor=actor, details=e.details)
                      for e, actor in details.timeline],
            notifications=[NotificationOut.model_validate(n, from_attributes=True) for n in details.notifications],
        )  # fmt: skip


class IncidentPlanOut(BaseModel):
    """The plan in force; `template` when the lab has published none and the shipped template applies."""

    version: str
    template: bool
    published_at: datetime | None
    sha256: str | None
    plan: dict[str, Any]

    @classmethod
    def of(cls, in_force: PlanInForce) -> IncidentPlanOut:
        return cls(version=in_force.plan.version, template=in_force.template, published_at=in_force.published_at,
                   sha256=in_force.body_sha256, plan=in_force.plan.model_dump(mode="json"))  # fmt: skip
