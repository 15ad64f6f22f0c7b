"""Resumable uploads through the real app on SQLite and PostgreSQL: signed, checked, committed with a receipt."""

from __future__ import annotations

import hashlib
import io
import json
import os
import uuid

import pyrage
import pytest
import sqlalchemy as sa

from clients.sealing import seal_stream
from gateway.audit.models import AuditEvent
from gateway.identity.proofs import key_fingerprint, make_proof
from gateway.transfer.custody import SignedReceipt, verify_receipt
from gateway.transfer.manifest import Manifest, ManifestFile, ManifestRecipient, sign_manifest
from tests.gateway_fixtures import Person
from tests.identity.posture_samples import compliant_windows
from tests.identity.test_devices_and_stations import enrolled_device, verified_technician


@pytest.fixture
def scene(lab):
    """A lab with an archive key, an active station, and a technician logged in from an approved device."""
    archive = pyrage.x25519.Identity.generate()
    assert lab.call("PUT", "/api/v1/lab/archive-key", {"age_recipient": str(archive.to_public())}).status_code == 204
    station_age = pyrage.x25519.Identity.generate()
    station = Person(lab.gateway, lab.lab, "station")
    invite = {"name": "Mill 1", "maker": "Roland DGA", "model": "DWX-52D", "serial_number": "Z1", "location": "Room 2"}
    code = lab.call("POST", "/api/v1/stations/invitations", invite).json()["enrolment_code"]
    enrolled = station.call(
        "POST",
        "/api/v1/stations/enrol",
        {"enrolment_code": code, "age_recipient": str(station_age.to_public())},
        token="",
    ).json()
    fingerprint = key_fingerprint(station.key.public_key().public_bytes_raw())
    assert (
        lab.call("POST", f"/api/v1/stations/{enrolled['id']}/approve", {"fingerprint": fingerprint}).status_code == 200
    )
    technician = verified_technician(lab)
    device_id = enrolled_device(lab, technician)
    assert technician.login(posture=compliant_windows(lab.gateway.clock())).json()["scope"] == "full"
    lab_id = lab.call("GET", "/api/v1/me").json()["lab_id"]
    return {
        "lab": lab, "technician": technician, "device_id": device_id, "station_id": enrolled["id"],
        "station_age": station_age, "archive": archive, "lab_id": lab_id,
    }  # fmt: skip


def sealed_design(scene, plaintext: bytes, **changes) -> tuple[dict, bytes]:
    ciphertext = io.BytesIO()
    recipients = [str(scene["station_age"].to_public()), str(scene["archive"].to_public())]
    sealed = seal_stream(io.BytesIO(plaintext), ciphertext, recipients)
    technician = scene["technician"]
    manifest = Manifest(
        format="dentgate-manifest-v1",
        design_id=uuid.uuid4(),
        lab_id=uuid.UUID(scene["lab_id"]),
        case_reference="2026-1125-001",
        files=[ManifestFile(name="crown_11.stl", media_type="model/stl", size=len(plaintext),
                            sha256=hashlib.sha256(plaintext).hexdigest())],
        teeth=[],
        material="zirconia",
        process="design",
        remote_location="home",
        target_stations=[uuid.UUID(scene["station_id"])],
        recipients=[
            ManifestRecipient(kind="station", station_id=uuid.UUID(scene["station_id"]), age_recipient=recipients[0]),
            ManifestRecipient(kind="archive", station_id=None, age_recipient=recipients[1]),
        ],
        technician_id=uuid.UUID(technician.account_id),
        device_id=uuid.UUID(scene["device_id"]),
        created_at=technician.gateway.clock(),
        ciphertext_size=sealed.ciphertext_size,
        ciphertext_sha256=sealed.ciphertext_sha256,
        **changes,
    )  # fmt: skip
    signed = sign_manifest(manifest, technician.key)
    return signed.model_dump(mode="json"), ciphertext.getvalue()


def patch(person: Person, upload_id: str, offset: int, data: bytes):
    path = f"/api/v1/uploads/{upload_id}"
    url = f"http://testserver{path}"
    headers = {
        "Authorization": f"DPoP {person.token}",
        "DPoP": make_proof(person.key, "PATCH", url, access_token=person.token, now=person.gateway.clock()),
        "Upload-Offset": str(offset),
        "Tus-Resumable": "1.0.0",
        "Content-Type": "application/offset+octet-stream",
    }
    return person.gateway.client.patch(path, content=data, headers=headers)


def test_an_upload_in_two_chunks_commits_the_design_with_a_signed_receipt(scene):
    technician, gateway = scene["technician"], scene["lab"].gateway
    manifest, ciphertext = sealed_design(scene, os.urandom(300_000))
    created = technician.call("POST", "/api/v1/uploads", {"signed_manifest": manifest})
    assert created.status_code == 201, created.text
    upload_id = created.json()["upload_id"]
    half = len(ciphertext) // 2
    first = patch(technician, upload_id, 0, ciphertext[:half])
    assert (first.status_code, first.headers["upload-offset"]) == (204, str(half))
    wrong = patch(technician, upload_id, 0, ciphertext[half:])
    assert wrong.status_code == 409
    assert wrong.json()["code"] == "upload-offset-mismatch"
    done = patch(technician, upload_id, half, ciphertext[half:])
    assert done.status_code == 200, done.text
    receipt = SignedReceipt.model_validate_json(json.dumps(done.json()["receipt"]))
    verified = verify_receipt(receipt, gateway.backends.keys.public_key())
    assert verified.ciphertext_sha256 == hashlib.sha256(ciphertext).hexdigest()
    designs = technician.call("GET", "/api/v1/designs").json()
    assert [d["id"] for d in designs] == [done.json()["design_id"]]
    stored = b"".join(gateway.backends.store.get(gateway_object_key(gateway, done.json()["design_id"])))
    assert stored == ciphertext
    with gateway.backends.sessions() as session:
        actions = list(session.scalars(sa.select(AuditEvent.action).where(AuditEvent.action.like("%design%"))))
        assert "design.commit" in actions


def gateway_object_key(gateway, design_id: str) -> str:
    from gateway.transfer.models import Design

    with gateway.backends.sessions() as session:
        return session.get(Design, uuid.UUID(design_id)).object_key


def test_a_flipped_ciphertext_byte_is_refused_at_commit_and_leaves_no_design(scene):
    technician = scene["technician"]
    manifest, ciphertext = sealed_design(scene, os.urandom(50_000))
    upload_id = technician.call("POST", "/api/v1/uploads", {"signed_manifest": manifest}).json()["upload_id"]
    tampered = bytearray(ciphertext)
    tampered[len(tampered) // 2] ^= 0x01
    refused = patch(technician, upload_id, 0, bytes(tampered))
    assert refused.status_code == 422
    assert refused.json()["code"] == "ciphertext-mismatch"
    assert technician.call("GET", "/api/v1/designs").json() == []


def test_a_manifest_signed_by_another_key_is_refused(scene):
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    technician = scene["technician"]
    manifest, _ = sealed_design(scene, b"solid x")
    forged = sign_manifest(Manifest.model_validate_json(json.dumps(manifest["manifest"])), Ed25519PrivateKey.generate())
    refused = technician.call("POST", "/api/v1/uploads", {"signed_manifest": forged.model_dump(mode="json")})
    assert refused.status_code == 422
    assert refused.json()["code"] == "manifest-mismatch"


def test_a_recipient_that_is_not_the_stations_key_is_refused(scene):
    stranger = str(pyrage.x25519.Identity.generate().to_public())
    technician = scene["technician"]
    manifest, _ = sealed_design(scene, b"design bytes")
    body = dict(manifest["manifest"])
    body["recipients"] = [{**body["recipients"][0], "age_recipient": stranger}, body["recipients"][1]]
    resigned = sign_manifest(Manifest.model_validate_json(json.dumps(body)), technician.key)
    refused = technician.call("POST", "/api/v1/uploads", {"signed_manifest": resigned.model_dump(mode="json")})
    assert refused.status_code == 422
    assert "not that station's key" in refused.json()["detail"]


def test_a_manager_cannot_upload_and_an_upload_is_only_its_owners(scene):
    manifest, ciphertext = sealed_design(scene, b"design bytes for the mill")
    assert scene["lab"].call("POST", "/api/v1/uploads", {"signed_manifest": manifest}).status_code == 403
    upload_id = scene["technician"].call("POST", "/api/v1/uploads", {"signed_manifest": manifest}).json()["upload_id"]
    assert patch(scene["lab"], upload_id, 0, ciphertext).status_code == 403
