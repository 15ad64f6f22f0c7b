"""The lab's view of committed designs: list, look up, cancel, requeue, grants and the ciphertext by grant.

Routes parse and delegate; `design_operations` decides with the Cedar rules and audits every decision.
"""

from __future__ import annotations

import re
import uuid

from fastapi import APIRouter, Header, Response
from fastapi.responses import StreamingResponse

from gateway.deps import BackendsDep
from gateway.identity.auth import LabSession, Manager, Member
from gateway.routing import TransactionalRoute
from gateway.storage import InvalidRange, ObjectStore
from gateway.transfer import design_operations as ops
from gateway.transfer import schemas as s
from gateway.transfer.design_access import authorize, signed_manifest_of
from gateway.transfer.models import DeliveryJob, Design

router = APIRouter(prefix="/api/v1/designs", tags=["designs"], route_class=TransactionalRoute)
_RANGE = re.compile(r"^bytes=(\d+)-(\d*)$")


def design_out(design: Design, jobs: list[DeliveryJob]) -> s.DesignOut:
    manifest = signed_manifest_of(design).manifest
    return s.DesignOut(
        id=design.id,
        case_reference=design.case_reference,
        account_id=design.account_id,
        device_id=design.device_id,
        status=design.status,
        ciphertext_size=design.ciphertext_size,
        ciphertext_sha256=design.ciphertext_sha256,
        committed_at=design.committed_at,
        process=manifest.process,
        remote_location=manifest.remote_location,
        material=manifest.material,
        teeth=[tooth.fdi for tooth in manifest.teeth],
        files=[s.DesignFileOut(name=f.name, media_type=f.media_type, size=f.size) for f in manifest.files],
        jobs=[s.JobStateOut.model_validate(job) for job in jobs],
    )


def ciphertext_response(store: ObjectStore, design: Design, range_header: str | None) -> StreamingResponse:
    """The encrypted design (age) from storage, whole or from a single `Range: bytes=start-[end]`."""
    start, end = 0, None
    if range_header:
        match = _RANGE.fullmatch(range_header.strip())
        if match is None:
            raise InvalidRange("only a single `bytes=start-[end]` range is supported")
        start, end = int(match[1]), int(match[2]) if match[2] else None
    last = design.ciphertext_size - 1 if end is None else min(end, design.ciphertext_size - 1)
    body = store.get(design.object_key, start, last)
    headers = {"Accept-Ranges": "bytes", "Content-Length": str(last - start + 1)}
    if range_header:
        headers["Content-Range"] = f"bytes {start}-{last}/{design.ciphertext_size}"
    return StreamingResponse(
        body, status_code=206 if range_header else 200, media_type="application/age", headers=headers
    )


@router.get("", response_model=list[s.DesignOut])
def list_designs(member: Member, session: LabSession) -> list[s.DesignOut]:
    """Managers and auditors see the lab's designs, a technician their own, each with its jobs' states."""
    return [design_out(listed.design, listed.jobs) for listed in ops.list_designs(session, member)]


@router.get("/{design_id}", response_model=s.DesignOut)
def get_design(design_id: uuid.UUID, member: Member, session: LabSession, backends: BackendsDep) -> s.DesignOut:
    view = authorize(session, member, design_id, "read-metadata", backends.clock())
    return design_out(view.design, view.jobs)


@router.get("/{design_id}/ciphertext")
def download_by_grant(
    design_id: uuid.UUID,
    member: Member,
    session: LabSession,
    backends: BackendsDep,
    range_header: str | None = Header(default=None, alias="Range"),
) -> StreamingResponse:
    """The ciphertext for an account holding a download grant (recovery with the lab's archive key).

    Auditors never get content: the refusal is audited with the rule that decided it.
    """
    view = authorize(session, member, design_id, "download", backends.clock())
    return ciphertext_response(backends.store, view.design, range_header)


@router.post("/{design_id}/cancel", response_model=s.DesignOut)
def cancel_design(
    design_id: uuid.UUID, body: s.CancelIn, member: Member, session: LabSession, backends: BackendsDep
) -> s.DesignOut:
    """Withdraw the design from the stations that have not received it (owner before delivery, or a manager)."""
    view = ops.cancel(session, member, design_id, body.reason, backends.clock())
    return design_out(view.design, view.jobs)


@router.post("/{design_id}/jobs/{job_id}/requeue", response_model=s.JobStateOut)
def requeue_job(
    design_id: uuid.UUID,
    job_id: uuid.UUID,
    body: s.CancelIn,
    manager: Manager,
    session: LabSession,
    backends: BackendsDep,
) -> s.JobStateOut:
    """Offer a declined job to its station again (the machine is free, the material is loaded)."""
    job = ops.requeue(session, manager, design_id, job_id, body.reason, backends.clock())
    return s.JobStateOut.model_validate(job)


@router.get("/{design_id}/grants", response_model=list[s.GrantOut])
def list_grants(design_id: uuid.UUID, manager: Manager, session: LabSession, backends: BackendsDep):
    return [s.GrantOut.model_validate(g) for g in ops.list_grants(session, manager, design_id, backends.clock())]


@router.post("/{design_id}/grants", response_model=s.GrantOut, status_code=201)
def create_grant(
    design_id: uuid.UUID, body: s.GrantIn, manager: Manager, session: LabSession, backends: BackendsDep
) -> s.GrantOut:
    """Give one account or station one permission on this design until the grant expires."""
    row = ops.grant(
        session, manager, design_id, body.subject_type, body.subject_id, body.permission, body.expires_at,
        body.reason, backends.clock(),
    )  # fmt: skip
    return s.GrantOut.model_validate(row)


@router.delete("/{design_id}/grants/{grant_id}", status_code=204)
def revoke_grant(
    design_id: uuid.UUID, grant_id: uuid.UUID, manager: Manager, session: LabSession, backends: BackendsDep
) -> Response:
    ops.revoke_grant(session, manager, design_id, grant_id, backends.clock())
    return Response(status_code=204)
