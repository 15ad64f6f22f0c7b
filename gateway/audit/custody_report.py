"""A design's custody for an inspector (G19): the signed artefacts, the keys the gateway vouches for, the history.

The gateway hands over what it holds; it does not claim anything verifies. The inspector's client
checks every signature and link itself (`clients/commands/audit_custody.py`) with the gateway key it
pinned, so a gateway that altered an artefact cannot make it look right.
"""

from __future__ import annotations

import base64
import uuid
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Session

from gateway.audit.models import AuditEvent
from gateway.identity.models import Device, Station
from gateway.identity.sessions import Principal
from gateway.transfer.design_access import authorize
from gateway.transfer.models import DeliveryJob, Design

MAX_EVENTS = 10_000  # a design's operations; far more means someone is flooding it, and the reply says so


@dataclass(frozen=True)
class JobCustody:
    job: DeliveryJob
    station: Station | None


@dataclass(frozen=True)
class DesignCustody:
    design: Design
    device: Device | None
    jobs: list[JobCustody]
    events: list[AuditEvent]
    events_truncated: bool


def b64(raw: bytes | None) -> str | None:
    return base64.b64encode(raw).decode("ascii") if raw is not None else None


def design_events(session: Session, design_id: uuid.UUID, limit: int = MAX_EVENTS) -> tuple[list[AuditEvent], bool]:
    """The design's events in chain order (upload, commit, claims, downloads, deliveries, decisions, grants…).

    Access events name sessions, not designs, and are left out; the session must be bound to the lab.
    """
    rows = list(
        session.scalars(
            sa.select(AuditEvent)
            .where(AuditEvent.target == f"design:{design_id}", AuditEvent.category != "access")
            .order_by(AuditEvent.seq)
            .limit(limit + 1)
        )
    )
    return rows[:limit], len(rows) > limit


def custody_of(session: Session, principal: Principal, design_id: uuid.UUID, now: datetime) -> DesignCustody:
    """Decide `read-metadata` (audited, refused as 403 or 404), then gather the design's custody record.

    The decision is recorded first, so the inspection itself is the last event of the history it returns.
    """
    view = authorize(session, principal, design_id, "read-metadata", now)
    design = view.design
    device = session.get(Device, design.device_id)
    station_ids = [job.station_id for job in view.jobs]
    stations = {s.id: s for s in session.scalars(sa.select(Station).where(Station.id.in_(station_ids)))}
    events, truncated = design_events(session, design.id)
    return DesignCustody(
        design=design,
        device=device,
        jobs=[JobCustody(job, stations.get(job.station_id)) for job in view.jobs],
        events=events,
        events_truncated=truncated,
    )
