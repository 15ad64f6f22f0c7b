"""Resumable uploads of encrypted designs (G11–G13): open with a signed manifest, append, commit with a receipt.

The protocol follows tus 1.0 core (offset-checked appends, HEAD for the offset) over our own JSON creation
call; see docs/transfer.md. The gateway never sees plaintext: it checks the manifest's signature and
recipients, the ciphertext's size and SHA-256, and signs a receipt.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import BinaryIO

import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker

from gateway.audit.service import AuditEntry, record
from gateway.compliance.gates import RemoteWorkRefused, require_remote_work
from gateway.db.engine import transaction
from gateway.db.scoping import bind_to_lab
from gateway.errors import DentGateError
from gateway.identity.errors import Forbidden, NotFound
from gateway.identity.models import Device, Lab, Station
from gateway.identity.sessions import Principal, principal_entry
from gateway.japan import japan_today
from gateway.keys import KeyProvider
from gateway.policy import SecurityPolicy, TransferPolicy
from gateway.records.service import add_remote_process
from gateway.storage import ObjectStore, new_object_key
from gateway.storage.staging import StagingArea, StagingHandle
from gateway.transfer.custody import SignedReceipt, receipt_for, sign_receipt
from gateway.transfer.events import design_event
from gateway.transfer.job_signal import announce
from gateway.transfer.manifest import SignedManifest, parse_signed_manifest, verify_manifest
from gateway.transfer.models import DeliveryJob, Design, Upload


class ManifestMismatch(DentGateError):
    code = "manifest-mismatch"
    status = 422
    title = "The manifest does not match the sender or the lab"


class UploadClosed(DentGateError):
    code = "upload-closed"
    status = 409
    title = "The upload is no longer open"


class CiphertextMismatch(DentGateError):
    code = "ciphertext-mismatch"
    status = 422
    title = "The bytes received are not the ones the manifest names"


def _check_recipients(session: Session, signed: SignedManifest, lab: Lab) -> None:
    """Every recipient is an active station of this lab (with its enrolled age key) or the lab's archive key."""
    manifest = signed.manifest
    stations = {
        s.id: s
        for s in session.scalars(sa.select(Station).where(Station.id.in_(manifest.target_stations)))
        if s.lab_id == lab.id
    }
    for station_id in manifest.target_stations:
        station = stations.get(station_id)
        if station is None or station.status != "active":
            raise ManifestMismatch(f"station {station_id} is not an active station of this lab")
    for recipient in manifest.recipients:
        if recipient.kind == "archive":
            if lab.archive_recipient is None:
                raise ManifestMismatch("the lab has no archive key registered; a manager must register it first")
            if recipient.age_recipient != lab.archive_recipient:
                raise ManifestMismatch("the archive recipient is not this lab's archive key")
        elif recipient.station_id not in stations or stations[recipient.station_id].age_recipient != (
            recipient.age_recipient
        ):
            raise ManifestMismatch(f"recipient for station {recipient.station_id} is not that station's key")


def open_upload(
    session: Session,
    principal: Principal,
    manifest_json: bytes,
    staging: StagingArea,
    security: SecurityPolicy,
    now: datetime,
) -> Upload:
    """Check the remote-work conditions, then the signed manifest against the sending device, the lab and its
    stations; start staging. A refusal for unmet conditions names each of them and is kept on the chain."""
    if principal.role != "technician" or principal.device_id is None or principal.account_id is None:
        raise Forbidden("designs are uploaded by a technician from an approved device")
    policy = security.transfer
    try:
        require_remote_work(session, principal.account_id, principal.device_id, security, japan_today(now))
    except RemoteWorkRefused as refused:
        entry = principal_entry(principal, "operation", "upload.refused", f"account:{principal.account_id}",
                                "denied", refused.failures[0]["rule"], {"failures": refused.failures})  # fmt: skip
        refused.audited(entry)
        raise
    signed = parse_signed_manifest(manifest_json)
    manifest = signed.manifest
    if (manifest.lab_id, manifest.technician_id, manifest.device_id) != (
        principal.lab_id,
        principal.account_id,
        principal.device_id,
    ):
        raise ManifestMismatch("the manifest names another lab, technician or device than this session's")
    device = session.get(Device, principal.device_id)
    if device is None or signed.signer != device.thumbprint:
        raise ManifestMismatch("the manifest is not signed by this session's device")
    verify_manifest(signed, device.public_key)
    _check_recipients(session, signed, session.get(Lab, principal.lab_id))
    if manifest.ciphertext_size > policy.max_design_bytes:
        raise ManifestMismatch(f"the design is larger than the policy allows ({policy.max_design_bytes} bytes)")
    if session.scalar(sa.select(Upload.id).where(Upload.design_id == manifest.design_id)) is not None:
        raise ManifestMismatch(f"design {manifest.design_id} was already uploaded")
    key = new_object_key("designs")
    upload = Upload(
        lab_id=principal.lab_id,
        design_id=manifest.design_id,
        account_id=principal.account_id,
        device_id=principal.device_id,
        signed_manifest=signed.model_dump(mode="json"),
        length=manifest.ciphertext_size,
        object_key=key,
        staging=staging.begin(key).to_dict(),
        created_at=now,
        expires_at=now + timedelta(hours=policy.upload_expiry_hours),
    )
    session.add(upload)
    session.flush()
    design_event(session, principal, "upload.start", manifest.design_id, case=manifest.case_reference,
           size=manifest.ciphertext_size, stations=[str(s) for s in manifest.target_stations])  # fmt: skip
    return upload


def locked_upload(session: Session, principal: Principal, upload_id: uuid.UUID, now: datetime) -> Upload:
    """The caller's own open upload, row-locked so appends to it are serialised across replicas."""
    upload = session.scalar(
        sa.select(Upload).where(Upload.id == upload_id).with_for_update().execution_options(populate_existing=True)
    )
    if upload is None or upload.account_id != principal.account_id:
        raise NotFound(f"no upload {upload_id}")
    if upload.status != "open" or upload.expires_at <= now:
        raise UploadClosed(f"the upload is {upload.status if upload.status != 'open' else 'expired'}")
    return upload


def append_chunk(
    session: Session,
    principal: Principal,
    upload_id: uuid.UUID,
    offset: int,
    chunk: BinaryIO,
    staging: StagingArea,
    policy: TransferPolicy,
    now: datetime,
) -> Upload:
    """Append at `offset` (which must be the durable offset) and record the new offset."""
    upload = locked_upload(session, principal, upload_id, now)
    handle = staging.append(
        StagingHandle.from_dict(upload.staging),
        offset,
        chunk,
        max_total=upload.length,
        max_chunk=policy.max_chunk_bytes,
    )
    upload.staging = handle.to_dict()
    upload.offset = handle.offset
    return upload


def append(
    sessions: sessionmaker,
    principal: Principal,
    upload_id: uuid.UUID,
    offset: int,
    chunk: BinaryIO,
    staging: StagingArea,
    policy: TransferPolicy,
    now: datetime,
) -> Upload:
    """`append_chunk` in its own transaction, scoped to the caller's lab."""
    with transaction(sessions) as session:
        bind_to_lab(session, principal.lab_id)
        return append_chunk(session, principal, upload_id, offset, chunk, staging, policy, now)


@dataclass(frozen=True)
class Committed:
    design: Design
    receipt: SignedReceipt


def finish_upload(
    sessions: sessionmaker,
    principal: Principal,
    upload_id: uuid.UUID,
    staging: StagingArea,
    store: ObjectStore,
    keys: KeyProvider,
    now: datetime,
) -> Committed:
    """Assemble the ciphertext, check size and SHA-256, then commit the design, its jobs, receipt and events.

    A mismatch rejects the upload (recorded, bytes deleted) and raises CiphertextMismatch.
    """
    rejection: CiphertextMismatch | None = None
    with transaction(sessions) as session:
        bind_to_lab(session, principal.lab_id)
        upload = locked_upload(session, principal, upload_id, now)
        if upload.offset != upload.length:
            raise UploadClosed(f"the upload has {upload.offset} of {upload.length} bytes")
        signed = parse_signed_manifest(json.dumps(upload.signed_manifest).encode())
        stored = staging.complete(StagingHandle.from_dict(upload.staging), upload.object_key)
        try:
            receipt = receipt_for(
                signed,
                ciphertext_sha256=stored.sha256,
                ciphertext_size=stored.size,
                received_at=now,
                key_id=keys.key_id,
            )
        except ValueError:
            store.delete(upload.object_key)
            upload.status, upload.reason = "rejected", "ciphertext SHA-256 or size differs from the manifest"
            design_event(session, principal, "upload.reject", upload.design_id, outcome="failure", reason=upload.reason)
            rejection = CiphertextMismatch("the ciphertext's SHA-256 differs from the manifest's; upload it again")
        else:
            return _commit(session, principal, upload, signed, sign_receipt(receipt, keys.sign), now)
    raise rejection


def _commit(
    session: Session,
    principal: Principal,
    upload: Upload,
    signed: SignedManifest,
    receipt: SignedReceipt,
    now: datetime,
) -> Committed:
    manifest = signed.manifest
    design = Design(
        id=manifest.design_id,
        lab_id=principal.lab_id,
        case_reference=manifest.case_reference,
        account_id=upload.account_id,
        device_id=upload.device_id,
        signed_manifest=upload.signed_manifest,
        signed_receipt=receipt.model_dump(mode="json"),
        object_key=upload.object_key,
        ciphertext_size=manifest.ciphertext_size,
        ciphertext_sha256=manifest.ciphertext_sha256,
        committed_at=now,
    )
    session.add(design)
    session.flush()  # the jobs refer to it
    session.add_all(
        DeliveryJob(lab_id=principal.lab_id, design_id=design.id, station_id=station_id, updated_at=now)
        for station_id in manifest.target_stations
    )
    upload.status = "committed"
    session.flush()
    announce(session, manifest.target_stations)
    design_event(session, principal, "design.commit", design.id, case=manifest.case_reference,
           ciphertext_sha256=manifest.ciphertext_sha256, process=manifest.process,
           location=manifest.remote_location)  # fmt: skip
    add_remote_process(session, design, signed, principal)  # the case's 歯科技工録 (G20), in this transaction
    return Committed(design, receipt)


def abort_upload(
    session: Session, principal: Principal, upload_id: uuid.UUID, staging: StagingArea, now: datetime
) -> None:
    upload = locked_upload(session, principal, upload_id, now)
    staging.abort(StagingHandle.from_dict(upload.staging))
    upload.status = "aborted"
    design_event(session, principal, "upload.abort", upload.design_id)


def expire_uploads(sessions: sessionmaker, staging: StagingArea, now: datetime, batch: int = 100) -> int:
    """Abandon open uploads past their expiry: delete their staged bytes and record why (any replica may run it)."""
    with transaction(sessions) as session:
        expired = session.scalars(
            sa.select(Upload)
            .where(Upload.status == "open", Upload.expires_at <= now)
            .limit(batch)
            .with_for_update(skip_locked=True)
        ).all()
        for upload in expired:
            staging.abort(StagingHandle.from_dict(upload.staging))
            upload.status, upload.reason = "expired", "not finished before it expired; its bytes were deleted"
            record(
                session,
                AuditEntry(
                    lab_id=upload.lab_id,
                    category="operation",
                    action="upload.expire",
                    actor_type="gateway",
                    target=f"design:{upload.design_id}",
                    reason=upload.reason,
                    details={"received": upload.offset, "length": upload.length},
                ),
            )
        return len(expired)
