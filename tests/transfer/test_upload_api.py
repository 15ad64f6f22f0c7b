"""Resumable uploads through the real app on SQLite and PostgreSQL: signed, checked, committed with a receipt."""

from __future__ import annotations

import hashlib
import json
import os
import uuid

import pyrage
import sqlalchemy as sa

from gateway.audit.models import AuditEvent
from gateway.transfer.custody import SignedReceipt, verify_receipt
from gateway.transfer.manifest import Manifest, sign_manifest
from tests.identity.posture_samples import compliant_windows
from tests.transfer.scene import other_lab_scene, patch, sealed_design


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


def test_an_upload_cut_half_way_resumes_from_the_gateways_offset(scene):
    technician = scene["technician"]
    manifest, ciphertext = sealed_design(scene, os.urandom(120_000))
    upload_id = technician.call("POST", "/api/v1/uploads", {"signed_manifest": manifest}).json()["upload_id"]
    half = len(ciphertext) // 2
    assert patch(technician, upload_id, 0, ciphertext[:half]).status_code == 204
    offset = technician.call("HEAD", f"/api/v1/uploads/{upload_id}")
    assert offset.headers["upload-offset"] == str(half)
    done = patch(technician, upload_id, int(offset.headers["upload-offset"]), ciphertext[half:])
    assert done.status_code == 200
    assert len(technician.call("GET", "/api/v1/designs").json()) == 1
    stored = b"".join(
        scene["lab"].gateway.backends.store.get(gateway_object_key(scene["lab"].gateway, done.json()["design_id"]))
    )
    assert stored == ciphertext


def test_another_labs_technician_sees_none_of_this_labs_designs(scene):
    technician = scene["technician"]
    manifest, ciphertext = sealed_design(scene, os.urandom(1_000))
    upload_id = technician.call("POST", "/api/v1/uploads", {"signed_manifest": manifest}).json()["upload_id"]
    assert patch(technician, upload_id, 0, ciphertext).status_code == 200
    design_id = technician.call("GET", "/api/v1/designs").json()[0]["id"]
    other = other_lab_scene(scene["lab"].gateway)
    assert other["technician"].call("GET", "/api/v1/designs").json() == []
    assert other["lab"].call("GET", "/api/v1/designs").json() == []
    looked_up = other["technician"].call("GET", f"/api/v1/designs/{design_id}")
    assert (looked_up.status_code, looked_up.json()["code"]) == (404, "design-not-found")


def test_a_station_of_another_lab_is_refused_as_a_recipient(scene):
    other = other_lab_scene(scene["lab"].gateway)
    foreign_station = uuid.UUID(other["station_id"])
    foreign_recipient = str(other["station_age"].to_public())
    manifest, _ = sealed_design(scene, b"design bytes")
    body = dict(manifest["manifest"])
    body["target_stations"] = [str(foreign_station)]
    body["recipients"] = [
        {"kind": "station", "station_id": str(foreign_station), "age_recipient": foreign_recipient},
        body["recipients"][1],
    ]
    technician = scene["technician"]
    resigned = sign_manifest(Manifest.model_validate_json(json.dumps(body)), technician.key)
    refused = technician.call("POST", "/api/v1/uploads", {"signed_manifest": resigned.model_dump(mode="json")})
    assert refused.status_code in (404, 422), refused.text
    assert str(foreign_station) in refused.json()["detail"]
    assert technician.call("GET", "/api/v1/designs").json() == []


def test_an_abandoned_upload_expires_and_its_bytes_are_deleted(scene):
    from gateway.transfer.models import Upload
    from gateway.transfer.uploads import expire_uploads

    technician, app = scene["technician"], scene["lab"].gateway
    manifest, ciphertext = sealed_design(scene, os.urandom(20_000))
    upload_id = technician.call("POST", "/api/v1/uploads", {"signed_manifest": manifest}).json()["upload_id"]
    assert patch(technician, upload_id, 0, ciphertext[:5_000]).status_code == 204
    assert expire_uploads(app.backends.sessions, app.backends.staging, app.clock()) == 0
    app.clock.advance(hours=25)
    assert expire_uploads(app.backends.sessions, app.backends.staging, app.clock()) == 1
    with app.backends.sessions() as session:
        assert session.get(Upload, uuid.UUID(upload_id)).status == "expired"
        assert session.scalar(sa.select(sa.func.count()).where(AuditEvent.action == "upload.expire")) == 1
    technician.login(posture=compliant_windows(app.clock()))
    resumed = patch(technician, upload_id, 5_000, ciphertext[5_000:])
    assert resumed.status_code == 409
    assert resumed.json()["code"] == "upload-closed"
