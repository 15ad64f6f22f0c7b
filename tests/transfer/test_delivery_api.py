"""Delivery to the station: claim with a lease, ranged download, decrypt, signed acknowledgement (G13)."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import os
import uuid

from clients.sealing import open_stream
from gateway.transfer.custody import (
    AcknowledgedFile,
    Acknowledgement,
    SignedReceipt,
    receipt_sha256,
    sign_acknowledgement,
)
from tests.gateway_fixtures import Person
from tests.transfer.scene import patch, sealed_design


def uploaded(scene, plaintext: bytes) -> str:
    manifest, ciphertext = sealed_design(scene, plaintext)
    technician = scene["technician"]
    upload_id = technician.call("POST", "/api/v1/uploads", {"signed_manifest": manifest}).json()["upload_id"]
    done = patch(technician, upload_id, 0, ciphertext)
    assert done.status_code == 200, done.text
    return done.json()["design_id"]


def station_session(scene) -> Person:
    station: Person = scene["station"]
    response = station.call("POST", "/api/v1/stations/session", token="")
    assert response.status_code == 200, response.text
    station.token = response.json()["token"]
    return station


def acknowledgement(station: Person, job: dict, plaintext: bytes, station_id: str) -> dict:
    receipt = SignedReceipt.model_validate_json(json.dumps(job["signed_receipt"])).receipt
    ack = Acknowledgement(
        design_id=uuid.UUID(job["design_id"]),
        station_id=uuid.UUID(station_id),
        receipt_sha256=receipt_sha256(receipt),
        files=[AcknowledgedFile(name="crown_11.stl", sha256=hashlib.sha256(plaintext).hexdigest())],
        written_at=station.gateway.clock(),
        import_name="import",
    )
    return sign_acknowledgement(ack, station.key.sign).model_dump(mode="json")


def delivered(scene) -> tuple[str, str]:
    """A design uploaded, claimed, downloaded and acknowledged by the scene's station: (design id, job id)."""
    plaintext = os.urandom(20_000)
    design_id = uploaded(scene, plaintext)
    station = station_session(scene)
    job = station.call("GET", "/api/v1/station/jobs/next?wait=0").json()
    assert station.call("GET", f"/api/v1/station/jobs/{job['job_id']}/ciphertext").status_code == 200
    ack = acknowledgement(station, job, plaintext, scene["station_id"])
    done = station.call("POST", f"/api/v1/station/jobs/{job['job_id']}/ack", {"signed_acknowledgement": ack})
    assert done.status_code == 204, done.text
    return design_id, job["job_id"]


def test_a_station_claims_downloads_decrypts_and_acknowledges(scene):
    plaintext = os.urandom(200_000)
    design_id = uploaded(scene, plaintext)
    station = station_session(scene)
    job = station.call("GET", "/api/v1/station/jobs/next?wait=0").json()
    assert job["design_id"] == design_id
    path = f"/api/v1/station/jobs/{job['job_id']}/ciphertext"
    whole = station.call("GET", path)
    assert whole.status_code == 200
    decrypted = io.BytesIO()
    open_stream(io.BytesIO(whole.content), decrypted, scene["station_age"])
    assert decrypted.getvalue() == plaintext
    tail = station.gateway.client.get(path, headers={**_auth(station, "GET", path), "Range": "bytes=100-"})
    assert tail.status_code == 206
    assert tail.content == whole.content[100:]
    ack = acknowledgement(station, job, plaintext, scene["station_id"])
    assert (
        station.call("POST", f"/api/v1/station/jobs/{job['job_id']}/ack", {"signed_acknowledgement": ack}).status_code
        == 204
    )
    again = station.call("POST", f"/api/v1/station/jobs/{job['job_id']}/ack", {"signed_acknowledgement": ack})
    assert again.status_code == 204  # idempotent
    assert station.call("GET", "/api/v1/station/jobs/next?wait=0").status_code == 204


def _auth(person: Person, method: str, path: str) -> dict[str, str]:
    from gateway.identity.proofs import make_proof

    url = f"http://testserver{path}"
    proof = make_proof(person.key, method, url, access_token=person.token, now=person.gateway.clock())
    return {"Authorization": f"DPoP {person.token}", "DPoP": proof}


def test_an_acknowledgement_with_wrong_hashes_is_refused(scene):
    plaintext = os.urandom(10_000)
    uploaded(scene, plaintext)
    station = station_session(scene)
    job = station.call("GET", "/api/v1/station/jobs/next").json()
    ack = acknowledgement(station, job, b"not what was sent", scene["station_id"])
    refused = station.call("POST", f"/api/v1/station/jobs/{job['job_id']}/ack", {"signed_acknowledgement": ack})
    assert refused.status_code == 409
    assert refused.json()["code"] == "custody-broken"


def test_an_expired_lease_delivers_the_job_again(scene):
    uploaded(scene, os.urandom(5_000))
    station = station_session(scene)
    first = station.call("GET", "/api/v1/station/jobs/next").json()
    assert station.call("GET", "/api/v1/station/jobs/next").status_code == 204
    station.gateway.clock.advance(seconds=301)
    station_session(scene)
    again = station.call("GET", "/api/v1/station/jobs/next").json()
    assert (again["job_id"], again["attempt"]) == (first["job_id"], 2)


def test_people_cannot_use_the_station_endpoints(scene):
    uploaded(scene, os.urandom(1_000))
    assert scene["technician"].call("GET", "/api/v1/station/jobs/next").status_code == 403
    assert scene["lab"].call("GET", "/api/v1/station/jobs/next").status_code == 403


def test_a_station_rejects_a_design_that_fails_verification(scene):
    design_id = uploaded(scene, os.urandom(1_000))
    station = station_session(scene)
    job = station.call("GET", "/api/v1/station/jobs/next").json()
    body = {"reason": "mesh has NaN coordinates"}
    assert station.call("POST", f"/api/v1/station/jobs/{job['job_id']}/reject", body).status_code == 204
    designs = scene["technician"].call("GET", "/api/v1/designs").json()
    assert [(d["id"], d["status"]) for d in designs] == [(design_id, "rejected")]


def test_the_gateway_key_is_published_for_pinning(scene):
    published = scene["lab"].gateway.client.get("/api/v1/gateway-key").json()
    assert base64.b64decode(published["public_key"]) == scene["lab"].gateway.backends.keys.public_key()
