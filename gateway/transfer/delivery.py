"""Delivery to stations (G13): claim a job with a lease, download the ciphertext, acknowledge or reject.

A job whose lease runs out is claimed again; acknowledgements are idempotent; every step is audited.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.orm import Session

from gateway.errors import DentGateError
from gateway.identity.errors import Forbidden, NotFound
from gateway.identity.models import Device, Station
from gateway.identity.sessions import Principal
from gateway.transfer.custody import (
    CustodyBroken,
    SignedReceipt,
    acknowledgement_sha256,
    parse_signed_acknowledgement,
    verify_custody,
)
from gateway.transfer.design_access import authorize, jobs_of, signed_manifest_of
from gateway.transfer.events import design_entry, design_event
from gateway.transfer.models import DeliveryJob, Design

CLAIMABLE = ("available", "claimed")
FINAL = ("acknowledged", "rejected", "cancelled", "declined")


class JobNotClaimed(DentGateError):
    code = "job-not-claimed"
    status = 409
    title = "The job is not claimed by this station"


@dataclass(frozen=True)
class ClaimedJob:
    job: DeliveryJob
    design: Design
    device_public_key: bytes


def _station(principal: Principal) -> uuid.UUID:
    if principal.station_id is None:
        raise Forbidden("only a station receives jobs")
    return principal.station_id


def job_event(session: Session, principal: Principal, job: DeliveryJob, action: str, **details: object) -> None:
    """A delivery step, audited as an operation on the job's design."""
    details = {"job": str(job.id), "station": str(job.station_id), **details}
    design_event(session, principal, action, job.design_id, **details)  # type: ignore[arg-type]


def claim_next(session: Session, principal: Principal, lease_seconds: int, now: datetime) -> ClaimedJob | None:
    """Claim the oldest available job of this station, or one whose lease expired; None when there is none."""
    station_id = _station(principal)
    job = session.scalar(
        sa.select(DeliveryJob)
        .where(
            DeliveryJob.station_id == station_id,
            sa.or_(
                DeliveryJob.state == "available",
                sa.and_(DeliveryJob.state == "claimed", DeliveryJob.lease_until < now),
            ),
        )
        .order_by(DeliveryJob.updated_at)
        .limit(1)
        .with_for_update(skip_locked=True)
    )
    if job is None:
        return None
    redelivery = job.state == "claimed"
    job.state, job.lease_until, job.updated_at = "claimed", now + timedelta(seconds=lease_seconds), now
    job.attempts += 1
    design = session.get(Design, job.design_id)
    device = session.get(Device, design.device_id)
    job_event(session, principal, job, "job.claim", attempt=job.attempts, redelivery=redelivery)
    return ClaimedJob(job, design, device.public_key)


def claimed_job(session: Session, principal: Principal, job_id: uuid.UUID, now: datetime) -> DeliveryJob:
    job = session.get(DeliveryJob, job_id)
    if job is None or job.station_id != _station(principal):
        raise NotFound(f"no job {job_id} for this station")
    if job.state != "claimed" or job.lease_until is None or job.lease_until < now:
        raise JobNotClaimed(f"the job is {job.state}; claim it again")
    return job


def authorize_download(session: Session, principal: Principal, job: DeliveryJob, now: datetime) -> Design:
    """The Cedar rules decide; the decision and its rule are audited (G12)."""
    return authorize(session, principal, job.design_id, "download", now).design


def acknowledge(
    session: Session,
    principal: Principal,
    job_id: uuid.UUID,
    acknowledgement_json: bytes,
    gateway_key: bytes,
    now: datetime,
) -> DeliveryJob:
    """Verify the station's signed acknowledgement against the whole custody chain; idempotent."""
    job = session.get(DeliveryJob, job_id)
    if job is None or job.station_id != _station(principal):
        raise NotFound(f"no job {job_id} for this station")
    signed_ack = parse_signed_acknowledgement(acknowledgement_json)
    if job.state == "acknowledged":
        if job.acknowledgement == signed_ack.model_dump(mode="json"):
            return job
        raise JobNotClaimed("the job was already acknowledged with another acknowledgement")
    claimed_job(session, principal, job_id, now)
    design = session.get(Design, job.design_id)
    station = session.get(Station, job.station_id)
    device = session.get(Device, design.device_id)
    try:
        verify_custody(
            signed_manifest_of(design),
            device.public_key,
            SignedReceipt.model_validate_json(json.dumps(design.signed_receipt)),
            gateway_key,
            signed_ack,
            station.public_key,
        )
    except CustodyBroken as error:
        details = {"job": str(job.id), "station": str(job.station_id)}
        entry = design_entry(principal, "job.acknowledge", job.design_id, "failure", error.detail, **details)
        raise error.audited(entry) from None
    job.state, job.updated_at, job.lease_until = "acknowledged", now, None
    job.acknowledgement = signed_ack.model_dump(mode="json")
    session.flush()
    if all(other.state == "acknowledged" for other in jobs_of(session, [design.id])[design.id]):
        design.status = "acknowledged"
    job_event(
        session, principal, job, "job.acknowledge", acknowledgement=acknowledgement_sha256(signed_ack.acknowledgement)
    )
    return job


def reject(
    session: Session, principal: Principal, job_id: uuid.UUID, reason: str, now: datetime, decline: bool
) -> None:
    """The station refuses the job: verification failed (rejected) or it cannot mill it now (declined)."""
    job = claimed_job(session, principal, job_id, now)
    job.state, job.reason, job.updated_at, job.lease_until = ("declined" if decline else "rejected"), reason, now, None
    if not decline:
        session.get(Design, job.design_id).status = "rejected"
    job_event(session, principal, job, "job.decline" if decline else "job.reject", outcome="denied", reason=reason)
