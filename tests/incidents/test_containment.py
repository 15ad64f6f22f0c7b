"""Reporting an incident contains a lost or infected device at once; anything else waits for the manager (G17)."""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import sqlalchemy as sa

from gateway.audit.models import AuditEvent
from gateway.transfer.models import Upload
from tests.gateway_fixtures import Person, add_technician
from tests.identity.posture_samples import compliant_windows
from tests.transfer.scene import other_lab_scene, patch, sealed_design
from tests.transfer.test_delivery_api import station_session


def open_upload(scene: dict) -> str:
    """A design half sent from the technician's device: an open upload with bytes staged on the gateway."""
    technician = scene["technician"]
    manifest, ciphertext = sealed_design(scene, os.urandom(40_000))
    created = technician.call("POST", "/api/v1/uploads", {"signed_manifest": manifest})
    assert created.status_code == 201, created.text
    upload_id = created.json()["upload_id"]
    assert patch(technician, upload_id, 0, ciphertext[:10_000]).status_code == 204
    return upload_id


def staged_files(scene: dict) -> list[Path]:
    staging = scene["lab"].gateway.backends.settings.data_dir / "objects" / ".staging"
    return [path for path in staging.iterdir() if path.is_file()] if staging.exists() else []


def upload_row(scene: dict, upload_id: str) -> Upload:
    with scene["lab"].gateway.backends.sessions() as session:
        return session.get(Upload, uuid.UUID(upload_id))


def report(person: Person, kind: str, description: str = "left the bag on the Keihan line", **extra):
    return person.call("POST", "/api/v1/incidents", {"type": kind, "description": description, **extra})


def from_a_phone(technician: Person) -> Person:
    """The same technician logging in from an unenrolled phone: a session that may only enrol (and report)."""
    phone = Person(technician.gateway, technician.lab, technician.username, totp_secret=technician.totp_secret)
    assert phone.login().json()["scope"] == "enrol"
    return phone


def test_a_lost_device_reported_by_phone_is_revoked_its_session_ended_and_its_upload_aborted(scene):
    technician, manager = scene["technician"], scene["lab"]
    upload_id = open_upload(scene)
    assert len(staged_files(scene)) == 1
    phone = from_a_phone(technician)

    reported = report(phone, "lost-device", device_id=scene["device_id"])

    assert reported.status_code == 201, reported.text
    incident = reported.json()
    assert (incident["status"], incident["device"]["id"], incident["device"]["status"]) == (
        "contained",
        scene["device_id"],
        "revoked",
    )
    assert incident["time_to_containment_seconds"] == 0
    contained = next(e for e in incident["timeline"] if e["kind"] == "contained")
    assert contained["details"]["sessions_ended"] == 1
    assert len(contained["details"]["uploads_aborted"]) == 1
    after = technician.call("GET", "/api/v1/me")
    assert after.status_code == 401
    assert after.json()["code"] in ("device-revoked", "session-ended")
    assert upload_row(scene, upload_id).status == "aborted"
    assert staged_files(scene) == []
    relogin = technician.login(posture=compliant_windows(manager.gateway.clock()))
    assert relogin.json().get("scope") != "full"
    devices = {d["id"]: d["status"] for d in manager.call("GET", "/api/v1/devices").json()}
    assert devices[scene["device_id"]] == "revoked"


def test_malware_reported_from_the_infected_device_itself_revokes_it_and_ends_that_session(scene):
    technician = scene["technician"]
    open_upload(scene)

    reported = report(technician, "malware", "Defender quarantined a trojan")

    assert reported.status_code == 201, reported.text
    assert reported.json()["status"] == "contained"
    assert reported.json()["device"] == {"id": scene["device_id"], "name": "CAD PC", "status": "revoked"}
    assert technician.call("GET", "/api/v1/incidents").status_code == 401
    assert staged_files(scene) == []


def test_a_manager_files_a_lost_device_for_a_technician_who_phoned_in(scene):
    technician, manager = scene["technician"], scene["lab"]
    upload_id = open_upload(scene)

    filed = report(manager, "lost-device", "phoned at 21:10 from a friend's phone", technician="tanaka")

    assert filed.status_code == 201, filed.text
    body = filed.json()
    assert (body["technician"], body["reported_by"], body["reporter_role"]) == ("tanaka", "manager", "manager")
    assert body["device"]["id"] == scene["device_id"]  # the technician's only active device
    assert technician.call("GET", "/api/v1/me").status_code == 401
    assert upload_row(scene, upload_id).status == "aborted"
    assert manager.call("GET", "/api/v1/me").status_code == 200
    with manager.gateway.backends.sessions() as session:
        query = sa.select(AuditEvent.action).where(AuditEvent.target == f"incident:{body['id']}")
        actions = set(session.scalars(query))
    assert {"incident.report", "incident.contain"} <= actions


def test_a_suspicious_report_does_not_revoke_and_the_manager_contains_and_resolves_it(scene):
    technician, manager = scene["technician"], scene["lab"]
    reported = report(technician, "suspicious", "a login prompt I did not expect")
    assert reported.status_code == 201, reported.text
    incident_id = reported.json()["id"]
    assert (reported.json()["status"], reported.json()["contained_at"]) == ("reported", None)
    assert technician.call("GET", "/api/v1/me").status_code == 200

    manager.gateway.clock.advance(minutes=12)
    contained = manager.call("POST", f"/api/v1/incidents/{incident_id}/contain", {"note": "password reset"})
    assert contained.status_code == 200, contained.text
    assert contained.json()["status"] == "contained"
    assert 12 * 60 <= contained.json()["time_to_containment_seconds"] < 13 * 60
    assert technician.call("GET", "/api/v1/me").status_code == 200  # no device was named: nothing revoked
    resolved = manager.call("POST", f"/api/v1/incidents/{incident_id}/resolve", {"note": "phishing test by IT"})
    assert resolved.json()["status"] == "resolved"
    kinds = [e["kind"] for e in resolved.json()["timeline"] if e["kind"] != "notified"]
    assert kinds == ["reported", "contained", "resolved"]
    again = manager.call("POST", f"/api/v1/incidents/{incident_id}/contain", {})
    assert (again.status_code, again.json()["code"]) == (409, "conflict")


def test_a_manager_contains_a_suspicious_report_by_revoking_the_device(scene):
    technician, manager = scene["technician"], scene["lab"]
    incident_id = report(technician, "other", "screen flickered").json()["id"]
    contained = manager.call("POST", f"/api/v1/incidents/{incident_id}/contain", {"device_id": scene["device_id"]})
    assert contained.status_code == 200, contained.text
    assert contained.json()["device"]["status"] == "revoked"
    assert technician.call("GET", "/api/v1/me").status_code == 401


def test_a_technician_cannot_report_for_another_technician(scene):
    technician, manager = scene["technician"], scene["lab"]
    add_technician(manager, "suzuki")

    refused = report(technician, "lost-device", technician="suzuki")

    assert (refused.status_code, refused.json()["code"]) == (403, "forbidden")
    assert manager.call("GET", "/api/v1/incidents").json() == []
    assert technician.call("GET", "/api/v1/me").status_code == 200
    with manager.gateway.backends.sessions() as session:
        denied = session.scalar(
            sa.select(sa.func.count()).where(AuditEvent.action == "incident.report", AuditEvent.outcome == "denied")
        )
    assert denied == 1


def test_a_technician_cannot_name_a_device_that_is_not_theirs(scene):
    manager = scene["lab"]
    other = add_technician(manager, "suzuki")
    other.login()
    refused = report(other, "lost-device", device_id=scene["device_id"])
    assert refused.status_code == 404
    devices = {d["id"]: d["status"] for d in manager.call("GET", "/api/v1/devices").json()}
    assert devices[scene["device_id"]] == "active"


def test_a_technician_sees_only_incidents_about_themself(scene):
    technician, manager = scene["technician"], scene["lab"]
    colleague = add_technician(manager, "suzuki")
    colleague.login()
    theirs = report(colleague, "other", "odd e-mail").json()["id"]
    mine = report(technician, "suspicious", "odd pop-up").json()["id"]
    assert [i["id"] for i in technician.call("GET", "/api/v1/incidents").json()] == [mine]
    assert technician.call("GET", f"/api/v1/incidents/{theirs}").status_code == 404
    assert {i["id"] for i in manager.call("GET", "/api/v1/incidents").json()} == {mine, theirs}


def test_another_lab_cannot_see_contain_or_file_for_this_labs_incident(scene):
    manager = scene["lab"]
    incident_id = report(scene["technician"], "suspicious", "unknown USB stick").json()["id"]
    other = other_lab_scene(manager.gateway)["lab"]

    assert other.call("GET", "/api/v1/incidents").json() == []
    assert other.call("GET", f"/api/v1/incidents/{incident_id}").status_code == 404
    assert other.call("POST", f"/api/v1/incidents/{incident_id}/contain", {}).status_code == 404
    assert other.call("POST", f"/api/v1/incidents/{incident_id}/resolve", {"note": "x"}).status_code == 404
    refused = report(other, "lost-device", technician="tanaka", device_id=scene["device_id"])
    assert refused.status_code == 404  # tanaka and the device are not of the other lab
    devices = {d["id"]: d["status"] for d in manager.call("GET", "/api/v1/devices").json()}
    assert devices[scene["device_id"]] == "active"


def test_a_station_token_cannot_report_or_read_incidents(scene):
    station = station_session(scene)
    assert report(station, "lost-device").status_code == 403
    assert station.call("GET", "/api/v1/incidents").status_code == 403
    assert station.call("GET", "/api/v1/incident-plan").status_code == 403


def test_a_lost_device_report_naming_no_device_when_several_are_active_asks_which(scene):
    technician, manager = scene["technician"], scene["lab"]
    second = Person(manager.gateway, manager.lab, "tanaka", totp_secret=technician.totp_secret)
    second.login()
    posture = compliant_windows(manager.gateway.clock())
    enrolled = second.call("POST", "/api/v1/devices", {"name": "Laptop", "posture": posture}).json()["device"]
    approved = manager.call("POST", f"/api/v1/devices/{enrolled['id']}/approve", {"ownership": "lab-lent"})
    assert approved.status_code == 200, approved.text

    refused = report(manager, "lost-device", technician="tanaka")

    assert (refused.status_code, refused.json()["code"]) == (422, "incident-device-required")
    assert "CAD PC" in refused.json()["detail"] and "Laptop" in refused.json()["detail"]
    assert technician.call("GET", "/api/v1/me").status_code == 200
