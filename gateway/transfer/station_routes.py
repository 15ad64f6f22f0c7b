"""The station side of delivery: long-poll for a job, download its ciphertext (with ranges), acknowledge or reject."""

from __future__ import annotations

import asyncio
import base64
import json
import uuid
from typing import Any

from fastapi import APIRouter, Header, Query, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, ConfigDict, Field

from gateway.backends import Backends
from gateway.db.engine import transaction
from gateway.db.scoping import bind_to_lab
from gateway.deps import BackendsDep
from gateway.identity.auth import LabSession, StationCaller
from gateway.identity.sessions import Principal
from gateway.policy import default_policy
from gateway.routing import TransactionalRoute
from gateway.transfer import delivery
from gateway.transfer.design_routes import ciphertext_response

router = APIRouter(prefix="/api/v1", tags=["delivery"], route_class=TransactionalRoute)


class JobOut(BaseModel):
    job_id: uuid.UUID
    design_id: uuid.UUID
    attempt: int
    lease_until: str
    signed_manifest: dict[str, Any]
    signed_receipt: dict[str, Any]
    device_public_key: str


class AcknowledgeIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    signed_acknowledgement: dict[str, Any]


class RejectIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: str = Field(min_length=1, max_length=500)
    decline: bool = False


@router.get("/gateway-key", tags=["custody"])
def gateway_key(backends: BackendsDep) -> dict[str, str]:
    """The gateway's receipt-signing public key, which stations and auditors pin."""
    return {"key_id": backends.keys.key_id, "public_key": base64.b64encode(backends.keys.public_key()).decode()}


def _claim(backends: Backends, station: Principal) -> delivery.ClaimedJob | None:
    with transaction(backends.sessions) as session:
        bind_to_lab(session, station.lab_id)
        return delivery.claim_next(session, station, default_policy().transfer.lease_seconds, backends.clock())


@router.get("/station/jobs/next", response_model=JobOut, responses={204: {"description": "No job within the wait"}})
async def next_job(station: StationCaller, backends: BackendsDep, wait: float = Query(default=0, ge=0, le=30)):
    """Claim the next job, waiting up to `wait` seconds for one (long poll); 204 when none came."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + wait
    while True:
        ready = backends.job_signal.waiter(station.station_id)  # registered before looking: no lost wake-up
        try:
            claimed = await run_in_threadpool(_claim, backends, station)
            if claimed is not None:
                return JobOut(
                    job_id=claimed.job.id,
                    design_id=claimed.design.id,
                    attempt=claimed.job.attempts,
                    lease_until=claimed.job.lease_until.isoformat(),
                    signed_manifest=claimed.design.signed_manifest,
                    signed_receipt=claimed.design.signed_receipt,
                    device_public_key=base64.b64encode(claimed.device_public_key).decode(),
                )
            remaining = deadline - loop.time()
            if remaining <= 0:
                return Response(status_code=204)
            await backends.job_signal.wait(ready, remaining)
        finally:
            backends.job_signal.forget(station.station_id, ready)


@router.get("/station/jobs/{job_id}/ciphertext")
def download(
    job_id: uuid.UUID,
    station: StationCaller,
    session: LabSession,
    backends: BackendsDep,
    range_header: str | None = Header(default=None, alias="Range"),
) -> StreamingResponse:
    """The encrypted design (age), resumable with a `Range: bytes=N-` header."""
    job = delivery.claimed_job(session, station, job_id, backends.clock())
    design = delivery.authorize_download(session, station, job, backends.clock())
    return ciphertext_response(backends.store, design, range_header)


@router.post("/station/jobs/{job_id}/ack", status_code=204)
def acknowledge(
    job_id: uuid.UUID, body: AcknowledgeIn, station: StationCaller, session: LabSession, backends: BackendsDep
) -> Response:
    """The station's signed acknowledgement, checked against the design's whole custody chain."""
    delivery.acknowledge(
        session, station, job_id, json.dumps(body.signed_acknowledgement).encode(), backends.keys.public_key(),
        backends.clock(),
    )  # fmt: skip
    return Response(status_code=204)


@router.post("/station/jobs/{job_id}/reject", status_code=204)
def reject(
    job_id: uuid.UUID, body: RejectIn, station: StationCaller, session: LabSession, backends: BackendsDep
) -> Response:
    """Reject a design that failed verification, or decline one the machine cannot mill now."""
    delivery.reject(session, station, job_id, body.reason, backends.clock(), body.decline)
    return Response(status_code=204)
