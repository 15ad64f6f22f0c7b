"""`GET /api/v1/audit/custody/{design_id}`: a design's custody chain for auditors and managers (G19).

Metadata and signed artefacts only, never design content. Access is the Cedar `read-metadata` decision,
audited like every other; a design of another lab is "not found".
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel

from gateway.audit.custody_report import b64, custody_of
from gateway.deps import BackendsDep
from gateway.identity.auth import AuditReader, LabSession
from gateway.routing import TransactionalRoute

router = APIRouter(prefix="/api/v1/audit", tags=["audit"], route_class=TransactionalRoute)


class CustodyEventOut(BaseModel):
    """One event of the lab's audit chain about the design."""

    seq: int
    time: datetime
    category: str
    action: str
    actor_type: str
    actor_id: str | None
    device_id: str | None
    outcome: str
    reason: str | None
    details: dict[str, Any]
    client_address: str | None
    request_id: str | None
    hash: str


class CustodyJobOut(BaseModel):
    """One target station's delivery: the station's key and, once delivered, its signed acknowledgement."""

    job_id: uuid.UUID
    station_id: uuid.UUID
    station_name: str | None
    station_status: str | None
    station_public_key: str | None  # base64, raw Ed25519
    state: str
    attempts: int
    reason: str | None
    updated_at: datetime
    signed_acknowledgement: dict[str, Any] | None


class CustodyOut(BaseModel):
    """Everything needed to check the custody chain offline, with the gateway key the client pinned."""

    design_id: uuid.UUID
    lab_id: uuid.UUID
    case_reference: str
    status: str
    committed_at: datetime
    signed_manifest: dict[str, Any]
    device_id: uuid.UUID
    device_name: str | None
    device_status: str | None
    device_public_key: str | None  # base64, raw Ed25519: the key the gateway vouches for
    signed_receipt: dict[str, Any]
    jobs: list[CustodyJobOut]
    events: list[CustodyEventOut]
    events_truncated: bool


@router.get("/custody/{design_id}", response_model=CustodyOut)
def design_custody(design_id: uuid.UUID, reader: AuditReader, session: LabSession, backends: BackendsDep) -> CustodyOut:
    """The signed manifest, the device key, the gateway's receipt, each station's acknowledgement, the history."""
    custody = custody_of(session, reader, design_id, backends.clock())
    design, device = custody.design, custody.device
    return CustodyOut(
        design_id=design.id,
        lab_id=design.lab_id,
        case_reference=design.case_reference,
        status=design.status,
        committed_at=design.committed_at,
        signed_manifest=design.signed_manifest,
        device_id=design.device_id,
        device_name=device.name if device else None,
        device_status=device.status if device else None,
        device_public_key=b64(device.public_key) if device else None,
        signed_receipt=design.signed_receipt,
        jobs=[
            CustodyJobOut(
                job_id=item.job.id,
                station_id=item.job.station_id,
                station_name=item.station.name if item.station else None,
                station_status=item.station.status if item.station else None,
                station_public_key=b64(item.station.public_key) if item.station else None,
                state=item.job.state,
                attempts=item.job.attempts,
                reason=item.job.reason,
                updated_at=item.job.updated_at,
                signed_acknowledgement=item.job.acknowledgement,
            )
            for item in custody.jobs
        ],
        events=[
            CustodyEventOut(
                seq=event.seq,
                time=event.occurred_at,
                category=event.category,
                action=event.action,
                actor_type=event.actor_type,
                actor_id=event.actor_id,
                device_id=event.device_id,
                outcome=event.outcome,
                reason=event.reason,
                details=event.details,
                client_address=event.client_address,
                request_id=event.request_id,
                hash=event.hash,
            )
            for event in custody.events
        ],
        events_truncated=custody.events_truncated,
    )
