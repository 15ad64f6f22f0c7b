"""The technician's upload: validate on the device, seal to the stations and the archive, sign, send resumably.

Plaintext never leaves this machine: files are checked, packed and encrypted here (G11, G12); the gateway
gets ciphertext, a signed manifest, and answers with a signed receipt that is verified here too.
"""

from __future__ import annotations

import base64
import json
import tempfile
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from pydantic import ValidationError

from clients.api import GatewayClient, raise_for_problem
from clients.sealing import seal_bundle
from gateway.errors import DentGateError
from gateway.identity.proofs import make_proof
from gateway.transfer.custody import Receipt, SignedReceipt, verify_receipt
from gateway.transfer.formats import classify, sanitise_filename
from gateway.transfer.manifest import Manifest, sign_manifest
from gateway.transfer.mesh import validate_mesh
from gateway.transfer.teeth import ToothNumber, parse_tooth

CHUNK_BYTES = 32 * 1024 * 1024  # 8 requests per 256 MiB: each request costs authentication and audit (bench/README.md)
SNIFF_BYTES = 4096
RETRIES = 5


class UploadFailed(Exception):
    """The design could not be sent; the message says why and what to do."""


class DesignRefused(UploadFailed):
    """The design cannot be sent as it is (no case, a manifest that cannot be valid): change it, not the network."""


class ReceiptUnverified(UploadFailed):
    """The gateway's receipt is not for the bytes sent: the design may be committed, so not to be resent blindly."""


@dataclass(frozen=True)
class DesignRequest:
    files: list[Path]
    case_reference: str | None  # None only until `clients.prefill.fill_request` found it in a companion
    station_ids: list[uuid.UUID]
    process: str
    remote_location: str
    teeth: list[str | ToothNumber]  # text as written, with `tooth_system`; or already read (from a companion)
    tooth_system: str = "FDI"
    material: str | None = None


@dataclass(frozen=True)
class Uploaded:
    design_id: uuid.UUID
    receipt: Receipt
    signed_receipt: dict[str, Any]
    warnings: list[str]


def _checked_files(paths: list[Path]) -> tuple[list[tuple[str, Path]], dict[str, str], list[str]]:
    """Sanitised names, media types and mesh warnings; refuses unknown or invalid files before anything is sent."""
    named: list[tuple[str, Path]] = []
    media: dict[str, str] = {}
    warnings: list[str] = []
    for path in paths:
        if not path.is_file():
            raise UploadFailed(f"{path} is not a file")
        try:
            with path.open("rb") as file:
                kind = classify(path.name, file.read(SNIFF_BYTES), size=path.stat().st_size)
            if kind.kind.is_mesh:
                report = validate_mesh(path, kind)
                warnings += [f"{path.name}: {w}" for w in report.warnings]
        except DentGateError as error:
            error.detail = f"{path.name}: {error.detail}"  # say which file, the way the user named it
            raise
        name = sanitise_filename(path.name)
        named.append((name, path))
        media[name] = kind.media_type
    return named, media, warnings


def upload_design(
    client: GatewayClient,
    request: DesignRequest,
    technician_id: uuid.UUID,
    device_id: uuid.UUID,
    gateway_key: bytes,
    progress: Callable[[int, int], None] = lambda done, total: None,
) -> Uploaded:
    """Validate, seal, sign and upload one design bundle; returns the verified receipt."""
    if not (request.case_reference or "").strip():
        raise DesignRefused(
            "no case reference: give --case (the lab's instruction-form number), or include the exocad "
            ".constructionInfo or 3Shape order XML that names the case"
        )
    teeth = [t if isinstance(t, ToothNumber) else parse_tooth(t, request.tooth_system) for t in request.teeth]
    named, media, warnings = _checked_files(request.files)
    targets = client.get("/api/v1/lab/recipients")
    stations = {uuid.UUID(s["id"]): s["age_recipient"] for s in targets["stations"]}
    missing = [str(s) for s in request.station_ids if s not in stations]
    if missing:
        raise UploadFailed(f"not an active station of the lab: {', '.join(missing)}")
    if not targets["archive_recipient"]:
        raise UploadFailed("the lab has no archive key yet; ask your manager to register it")
    recipients = [stations[s] for s in request.station_ids] + [targets["archive_recipient"]]
    with tempfile.TemporaryFile() as ciphertext:
        bundle = seal_bundle(named, ciphertext, recipients)
        manifest = _manifest(
            {
                "format": "dentgate-manifest-v1",
                "design_id": str(uuid.uuid4()),
                "lab_id": targets["lab_id"],
                "case_reference": request.case_reference,
                "files": [
                    {"name": e.name, "media_type": media[e.name], "size": e.size, "sha256": e.sha256}
                    for e in bundle.files
                ],
                "teeth": [
                    {"fdi": t.fdi, "source_system": t.source_system, "source_value": t.source_value} for t in teeth
                ],
                "material": request.material,
                "process": request.process,
                "remote_location": request.remote_location,
                "target_stations": [str(s) for s in request.station_ids],
                "recipients": [
                    *(
                        {"kind": "station", "station_id": str(s), "age_recipient": stations[s]}
                        for s in request.station_ids
                    ),
                    {"kind": "archive", "station_id": None, "age_recipient": targets["archive_recipient"]},
                ],
                "technician_id": str(technician_id),
                "device_id": str(device_id),
                "created_at": datetime.now(UTC).isoformat(),
                "ciphertext_size": bundle.sealed.ciphertext_size,
                "ciphertext_sha256": bundle.sealed.ciphertext_sha256,
            }
        )
        signed = sign_manifest(manifest, client.key)
        created = client.post("/api/v1/uploads", {"signed_manifest": signed.model_dump(mode="json")})
        result = send_ciphertext(client, created["upload_id"], ciphertext, bundle.sealed.ciphertext_size, progress)
    signed_receipt = SignedReceipt.model_validate_json(json.dumps(result["receipt"]))
    receipt = verify_receipt(signed_receipt, gateway_key)
    if receipt.ciphertext_sha256 != bundle.sealed.ciphertext_sha256:
        raise ReceiptUnverified("the gateway's receipt names other bytes than the ones sent; tell your lab manager")
    return Uploaded(manifest.design_id, receipt, result["receipt"], warnings)


def _manifest(fields: dict[str, Any]) -> Manifest:
    """The manifest of these fields; DesignRefused naming each field the manifest rules refuse (none is sent)."""
    try:
        return Manifest.model_validate_json(json.dumps(fields))
    except ValidationError as error:
        problems = "; ".join(
            f"{'.'.join(str(part) for part in e['loc']) or 'manifest'}: {e['msg']}"
            for e in error.errors(include_input=False, include_url=False)
        )
        raise DesignRefused(f"the design cannot be described as it is: {problems}") from None


def send_ciphertext(
    client: GatewayClient, upload_id: str, ciphertext: Any, total: int, progress: Callable[[int, int], None]
) -> dict:
    """PATCH the ciphertext in chunks; after a dropped connection, ask the gateway's offset and go on from there."""
    path = f"/api/v1/uploads/{upload_id}"
    url = client.base_url.rstrip("/") + path
    offset: int | None = 0  # None: the link broke, ask the gateway how much it has before going on
    failures = 0
    with httpx.Client(timeout=client.timeout, transport=client.transport) as http:
        while True:
            try:
                if offset is None:
                    answer = http.head(url, headers=_headers(client, "HEAD", url))
                    raise_for_problem(answer)
                    offset = int(answer.headers["upload-offset"])
                ciphertext.seek(offset)
                chunk = ciphertext.read(CHUNK_BYTES)
                headers = _headers(client, "PATCH", url) | {
                    "Upload-Offset": str(offset),
                    "Tus-Resumable": "1.0.0",
                    "Content-Type": "application/offset+octet-stream",
                }
                response = http.patch(url, content=chunk, headers=headers)
            except httpx.TransportError as error:
                failures += 1
                if failures > RETRIES:
                    raise UploadFailed(f"the connection keeps failing ({error}); run the upload again") from error
                offset = None
                continue
            raise_for_problem(response)
            if response.status_code == 200:
                progress(total, total)
                return response.json()
            if response.status_code != 204:
                raise UploadFailed(f"the gateway answered {response.status_code} to a chunk; run the upload again")
            offset = int(response.headers["upload-offset"])
            progress(offset, total)


def _headers(client: GatewayClient, method: str, url: str) -> dict[str, str]:
    return {
        "Authorization": f"DPoP {client.token}",
        "DPoP": make_proof(client.key, method, url, access_token=client.token),
    }


def gateway_key(client: GatewayClient) -> bytes:
    return base64.b64decode(client.get("/api/v1/gateway-key")["public_key"])
