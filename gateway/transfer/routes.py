"""Transfer HTTP API: resumable uploads (tus 1.0 core style) and the design list. Routes only parse and delegate."""

from __future__ import annotations

import json
import uuid

from fastapi import APIRouter, Header, Request, Response
from fastapi.concurrency import run_in_threadpool

from gateway.compliance.documents import lab_policy
from gateway.deps import BackendsDep
from gateway.identity.auth import LabSession, Manager, Technician
from gateway.identity.models import Lab
from gateway.identity.service import set_archive_recipient
from gateway.identity.stations import list_stations
from gateway.policy import default_policy
from gateway.routing import TransactionalRoute
from gateway.transfer import schemas as s
from gateway.transfer import uploads
from gateway.transfer.body import spooled_body

router = APIRouter(prefix="/api/v1", tags=["transfer"], route_class=TransactionalRoute)
TUS_VERSION = "1.0.0"


def _offset_headers(upload) -> dict[str, str]:  # type: ignore[no-untyped-def]
    return {
        "Tus-Resumable": TUS_VERSION,
        "Upload-Offset": str(upload.offset),
        "Upload-Length": str(upload.length),
        "Cache-Control": "no-store",
    }


@router.put("/lab/archive-key", status_code=204)
def register_archive_key(body: s.ArchiveKeyIn, manager: Manager, session: LabSession) -> Response:
    """Register the lab's archive age recipient; every design is also encrypted to it for recovery."""
    set_archive_recipient(session, session.get(Lab, manager.lab_id), body.age_recipient, manager.role, manager.actor_id)
    return Response(status_code=204)


@router.get("/lab/recipients", response_model=s.RecipientsOut)
def recipients(technician: Technician, session: LabSession) -> s.RecipientsOut:
    """The age recipients a design must be encrypted to: the lab's active stations and its archive key."""
    lab = session.get(Lab, technician.lab_id)
    stations = [st for st in list_stations(session) if st.status == "active" and st.age_recipient]
    return s.RecipientsOut(
        lab_id=lab.id,
        archive_recipient=lab.archive_recipient,
        stations=[s.StationRecipientOut(id=st.id, name=st.name, age_recipient=st.age_recipient) for st in stations],
    )


@router.post("/uploads", response_model=s.UploadOut, status_code=201)
def create_upload(
    body: s.UploadIn, technician: Technician, session: LabSession, backends: BackendsDep, response: Response
) -> s.UploadOut:
    """Start an upload with the device-signed manifest; then PATCH the ciphertext to the returned location."""
    manifest_json = json.dumps(body.signed_manifest).encode()
    policy = lab_policy(session, technician.lab_id)
    upload = uploads.open_upload(session, technician, manifest_json, backends.staging, policy, backends.clock())
    response.headers.update(_offset_headers(upload) | {"Location": f"/api/v1/uploads/{upload.id}"})
    return s.UploadOut(
        upload_id=upload.id,
        design_id=upload.design_id,
        offset=upload.offset,
        length=upload.length,
        expires_at=upload.expires_at,
    )


@router.head("/uploads/{upload_id}")
def upload_offset(upload_id: uuid.UUID, technician: Technician, session: LabSession, backends: BackendsDep) -> Response:
    """How many bytes are durably stored: resume from here (tus HEAD)."""
    upload = uploads.locked_upload(session, technician, upload_id, backends.clock())
    return Response(status_code=200, headers=_offset_headers(upload))


@router.patch("/uploads/{upload_id}")
async def append_to_upload(
    upload_id: uuid.UUID,
    request: Request,
    technician: Technician,
    backends: BackendsDep,
    upload_offset: int = Header(alias="Upload-Offset", ge=0),
) -> Response:
    """Append the request body at `Upload-Offset`; the last chunk commits the design and returns its receipt."""
    async with spooled_body(request, default_policy().transfer.max_chunk_bytes) as chunk:
        upload = await run_in_threadpool(
            uploads.append,
            backends.sessions,
            technician,
            upload_id,
            upload_offset,
            chunk,
            backends.staging,
            default_policy().transfer,
            backends.clock(),
        )
    if upload.offset < upload.length:
        return Response(status_code=204, headers=_offset_headers(upload))
    committed = await run_in_threadpool(
        uploads.finish_upload,
        backends.sessions,
        technician,
        upload_id,
        backends.staging,
        backends.store,
        backends.keys,
        backends.clock(),
    )
    body = s.CommittedOut(design_id=committed.design.id, receipt=committed.receipt.model_dump(mode="json"))
    return Response(
        content=body.model_dump_json(), media_type="application/json", status_code=200, headers=_offset_headers(upload)
    )


@router.delete("/uploads/{upload_id}", status_code=204)
def abort_upload(upload_id: uuid.UUID, technician: Technician, session: LabSession, backends: BackendsDep) -> Response:
    uploads.abort_upload(session, technician, upload_id, backends.staging, backends.clock())
    return Response(status_code=204)
