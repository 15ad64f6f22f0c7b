"""A lab ready for transfers: archive key, an approved station, a technician logged in from an approved device."""

from __future__ import annotations

import hashlib
import io
import uuid

import pyrage
import pytest

from clients.sealing import seal_stream
from gateway.identity.proofs import key_fingerprint, make_proof
from gateway.transfer.manifest import Manifest, ManifestFile, ManifestRecipient, sign_manifest
from tests.gateway_fixtures import Person
from tests.identity.posture_samples import compliant_windows
from tests.identity.test_devices_and_stations import enrolled_device, verified_technician


@pytest.fixture
def scene(lab: Person) -> dict:
    """A lab with an archive key, an active station, and a technician logged in from an approved device."""
    return build_scene(lab)


def other_lab_scene(gateway) -> dict:
    """A second lab on the same gateway, set up like `scene` (its own manager, technician and station)."""
    manager = Person(gateway, "Nagoya Dental Lab", "boss")
    manager.activate(gateway.init_lab("Nagoya Dental Lab", "boss"))
    assert manager.login().status_code == 200
    return build_scene(manager, technician_name="suzuki")


def build_scene(lab: Person, technician_name: str = "tanaka") -> dict:
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
    technician = verified_technician(lab, technician_name)
    device_id = enrolled_device(lab, technician)
    assert technician.login(posture=compliant_windows(lab.gateway.clock())).json()["scope"] == "full"
    lab_id = lab.call("GET", "/api/v1/me").json()["lab_id"]
    return {
        "lab": lab, "technician": technician, "device_id": device_id, "station_id": enrolled["id"],
        "station_age": station_age, "archive": archive, "lab_id": lab_id, "station": station,
    }  # fmt: skip


def sealed_design(scene: dict, plaintext: bytes, **changes) -> tuple[dict, bytes]:
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
