"""The lab's hold on a committed design (G12, G13): who may see, fetch, cancel and requeue it, grants that
open one thing for a while, and every decision, allow or deny, on the audit chain with its rule."""

from __future__ import annotations

import io
import os
import uuid
from datetime import timedelta

import sqlalchemy as sa

from clients.sealing import open_stream
from gateway.audit.models import AuditEvent
from gateway.audit.service import verify
from tests.gateway_fixtures import Person
from tests.transfer.test_delivery_api import station_session, uploaded


def add_account(manager: Person, username: str, role: str) -> Person:
    created = manager.call("POST", "/api/v1/accounts", {"username": username, "role": role})
    assert created.status_code == 201, created.text
    person = Person(manager.gateway, manager.lab, username)
    person.account_id = created.json()["account"]["id"]  # type: ignore[attr-defined]
    person.activate(created.json()["activation_secret"])
    assert person.login().json()["scope"] == "full"
    return person


def decisions(gateway, design_id: str) -> list[tuple[str, str, str]]:
    """(action, outcome, deciding rule) of each decision audited on the design, in chain order."""
    with gateway.backends.sessions() as session:
        rows = session.execute(
            sa.select(AuditEvent.action, AuditEvent.outcome, AuditEvent.details)
            .where(AuditEvent.target == f"design:{design_id}")
            .order_by(AuditEvent.seq)
        )
        return [(action, outcome, details.get("rule", "")) for action, outcome, details in rows]


def test_an_auditor_reads_metadata_but_a_download_is_refused_and_audited(scene):
    lab: Person = scene["lab"]
    design_id = uploaded(scene, os.urandom(50_000))
    auditor = add_account(lab, "inspector", "auditor")
    metadata = auditor.call("GET", f"/api/v1/designs/{design_id}")
    assert metadata.status_code == 200
    assert metadata.json()["files"][0]["name"] == "crown_11.stl"
    assert metadata.json()["jobs"][0]["state"] == "available"
    refused = auditor.call("GET", f"/api/v1/designs/{design_id}/ciphertext")
    assert refused.status_code == 403
    assert refused.json()["code"] == "permission-denied"
    assert b"age-encryption" not in refused.content
    # Even a manager's grant cannot give an auditor content: the forbid rule wins, and the grant is refused.
    grant = {"subject_type": "account", "subject_id": auditor.account_id, "permission": "download",
             "expires_at": (lab.gateway.clock() + timedelta(days=1)).isoformat(), "reason": "inspection"}  # fmt: skip
    refused_grant = lab.call("POST", f"/api/v1/designs/{design_id}/grants", grant)
    assert (refused_grant.status_code, refused_grant.json()["code"]) == (409, "invalid-grant")
    assert "auditors-never-get-content" in refused_grant.json()["detail"]
    audited = decisions(lab.gateway, design_id)
    assert ("design.read-metadata", "success", "auditor-reads-metadata") in audited
    assert ("design.download", "denied", "auditors-never-get-content") in audited
    backends = lab.gateway.backends
    with backends.sessions() as session:
        verify(session, uuid.UUID(scene["lab_id"]), backends.keys.public_key())  # raises if a denial broke the chain


def test_a_download_grant_opens_the_ciphertext_until_it_is_revoked_or_expires(scene):
    lab: Person = scene["lab"]
    plaintext = os.urandom(80_000)
    design_id = uploaded(scene, plaintext)
    path = f"/api/v1/designs/{design_id}/ciphertext"
    assert lab.call("GET", path).status_code == 403  # managers administer designs, they do not read them
    me = lab.call("GET", "/api/v1/me").json()
    expires = (lab.gateway.clock() + timedelta(hours=1)).isoformat()
    grant = {"subject_type": "account", "subject_id": me["account_id"], "permission": "download",
             "expires_at": expires, "reason": "archive recovery"}  # fmt: skip
    created = lab.call("POST", f"/api/v1/designs/{design_id}/grants", grant)
    assert created.status_code == 201, created.text
    fetched = lab.call("GET", path)
    assert fetched.status_code == 200
    recovered = io.BytesIO()
    open_stream(io.BytesIO(fetched.content), recovered, scene["archive"])  # the lab's offline archive key
    assert recovered.getvalue() == plaintext
    lab.gateway.clock.advance(hours=2)
    lab.login()
    assert lab.call("GET", path).status_code == 403  # expired
    grant["expires_at"] = (lab.gateway.clock() + timedelta(hours=1)).isoformat()
    second = lab.call("POST", f"/api/v1/designs/{design_id}/grants", grant).json()
    assert lab.call("GET", path).status_code == 200
    assert lab.call("DELETE", f"/api/v1/designs/{design_id}/grants/{second['id']}").status_code == 204
    assert lab.call("GET", path).status_code == 403  # revoked
    listed = lab.call("GET", f"/api/v1/designs/{design_id}/grants").json()
    assert [g["revoked_at"] is not None for g in listed] == [False, True]
    outcomes = [(a, o, r) for a, o, r in decisions(lab.gateway, design_id) if a == "design.download"]
    assert outcomes == [
        ("design.download", "denied", "no rule permits it"),
        ("design.download", "success", "granted-download"),
        ("design.download", "denied", "no rule permits it"),
        ("design.download", "success", "granted-download"),
        ("design.download", "denied", "no rule permits it"),
    ]


def test_the_owner_cancels_before_delivery_and_no_station_receives_it(scene):
    technician: Person = scene["technician"]
    design_id = uploaded(scene, os.urandom(30_000))
    cancelled = technician.call("POST", f"/api/v1/designs/{design_id}/cancel", {"reason": "wrong shade"})
    assert cancelled.status_code == 200, cancelled.text
    assert cancelled.json()["status"] == "cancelled"
    assert [job["state"] for job in cancelled.json()["jobs"]] == ["cancelled"]
    assert station_session(scene).call("GET", "/api/v1/station/jobs/next?wait=0").status_code == 204
    again = technician.call("POST", f"/api/v1/designs/{design_id}/cancel", {"reason": "twice"})
    assert (again.status_code, again.json()["code"]) == (403, "permission-denied")  # no longer cancellable


def test_once_a_station_holds_the_job_the_owner_cannot_cancel(scene):
    technician: Person = scene["technician"]
    design_id = uploaded(scene, os.urandom(30_000))
    assert station_session(scene).call("GET", "/api/v1/station/jobs/next?wait=0").status_code == 200
    refused = technician.call("POST", f"/api/v1/designs/{design_id}/cancel", {"reason": "too late"})
    assert (refused.status_code, refused.json()["code"]) == (403, "permission-denied")
    by_manager = scene["lab"].call("POST", f"/api/v1/designs/{design_id}/cancel", {"reason": "too late"})
    assert by_manager.status_code == 409  # the station is writing it now
    assert ("design.cancel", "denied", "no rule permits it") in decisions(technician.gateway, design_id)


def test_a_declined_job_is_requeued_by_the_manager_and_claimed_again(scene):
    lab, technician = scene["lab"], scene["technician"]
    design_id = uploaded(scene, os.urandom(30_000))
    station = station_session(scene)
    job = station.call("GET", "/api/v1/station/jobs/next?wait=0").json()
    declined = station.call("POST", f"/api/v1/station/jobs/{job['job_id']}/reject",
                            {"reason": "PMMA disc loaded, design needs zirconia", "decline": True})  # fmt: skip
    assert declined.status_code == 204
    status = technician.call("GET", "/api/v1/designs").json()[0]
    assert (status["status"], status["jobs"][0]["state"]) == ("available", "declined")
    assert status["jobs"][0]["reason"] == "PMMA disc loaded, design needs zirconia"
    assert station.call("GET", "/api/v1/station/jobs/next?wait=0").status_code == 204
    requeue = f"/api/v1/designs/{design_id}/jobs/{job['job_id']}/requeue"
    assert technician.call("POST", requeue, {"reason": "please"}).status_code == 403
    requeued = lab.call("POST", requeue, {"reason": "zirconia loaded"})
    assert (requeued.status_code, requeued.json()["state"]) == (200, "available")
    again = station.call("GET", "/api/v1/station/jobs/next?wait=0").json()
    assert (again["job_id"], again["attempt"]) == (job["job_id"], 2)


def test_a_colleague_is_refused_and_another_labs_manager_finds_nothing(scene, gateway):
    lab: Person = scene["lab"]
    design_id = uploaded(scene, os.urandom(20_000))
    colleague = add_account(lab, "sato", "auditor")
    colleague.call("GET", "/api/v1/me")
    other = Person(gateway, "Nagoya Dental Lab", "boss")
    other.activate(gateway.init_lab("Nagoya Dental Lab", "boss"))
    assert other.login().status_code == 200
    for path, method, body in [
        (f"/api/v1/designs/{design_id}", "GET", None),
        (f"/api/v1/designs/{design_id}/ciphertext", "GET", None),
        (f"/api/v1/designs/{design_id}/cancel", "POST", {"reason": "x"}),
        (f"/api/v1/designs/{design_id}/grants", "GET", None),
    ]:
        response = other.call(method, path, body)
        assert (response.status_code, response.json()["code"]) == (404, "design-not-found"), path
    assert other.call("GET", "/api/v1/designs").json() == []
    assert lab.call("GET", f"/api/v1/designs/{design_id}").status_code == 200
