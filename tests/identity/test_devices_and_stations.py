"""Device enrolment and approval, posture at login, revocation, stations enrolled by code (G6–G9)."""

from __future__ import annotations

from datetime import timedelta

import pyrage
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from gateway.identity.stations import key_fingerprint
from tests.compliance_setup import make_compliant
from tests.gateway_fixtures import Person, add_technician
from tests.identity.posture_samples import compliant_windows


def verified_technician(lab: Person, username: str = "tanaka", compliant: bool = True) -> Person:
    """A technician whose identity the manager verified; `compliant`: also ready for remote work (G1–G21)."""
    technician = add_technician(lab, username)
    verification = {"method": "in-person", "document_type": "driver-licence", "verified_on": "2026-11-20"}
    response = lab.call("POST", f"/api/v1/accounts/{technician.account_id}/identity-verification", verification)
    assert response.status_code == 200
    assert response.json()["identity_verified"] is True
    if compliant:
        make_compliant(lab, technician)
    return technician


def enrolled_device(lab: Person, technician: Person) -> str:
    """Log in from the device (enrol scope), enrol it, and have the manager approve it; returns its id."""
    assert technician.login().json()["scope"] == "enrol"
    posture = compliant_windows(lab.gateway.clock())
    enrolled = technician.call("POST", "/api/v1/devices", {"name": "CAD PC", "posture": posture})
    assert enrolled.status_code == 201, enrolled.text
    device_id = enrolled.json()["device"]["id"]
    approval = {"ownership": "lab-lent"}
    assert lab.call("POST", f"/api/v1/devices/{device_id}/approve", approval).status_code == 200
    return device_id


def test_an_unverified_technician_may_only_enrol(lab):
    technician = add_technician(lab)
    session = technician.login()
    assert session.json()["scope"] == "enrol"
    refused = technician.call("GET", "/api/v1/me")
    assert refused.status_code == 200
    assert (
        technician.call(
            "POST", "/api/v1/devices/posture", {"posture": compliant_windows(lab.gateway.clock())}
        ).status_code
        == 404
    )


def test_approved_device_with_compliant_posture_gets_a_full_session(lab):
    technician = verified_technician(lab)
    device_id = enrolled_device(lab, technician)
    response = technician.login(posture=compliant_windows(lab.gateway.clock()))
    assert response.status_code == 200, response.text
    assert (response.json()["scope"], response.json()["device_id"]) == ("full", device_id)


def test_bluetooth_on_and_an_old_update_refuse_login_with_both_reasons(lab):
    technician = verified_technician(lab)
    enrolled_device(lab, technician)
    now = lab.gateway.clock()
    posture = compliant_windows(now, bluetooth_enabled=True, last_update=(now - timedelta(days=90)).date().isoformat())
    refused = technician.login(posture=posture)
    assert refused.status_code == 403
    assert refused.json()["code"] == "posture-refused"
    assert "90 days old" in refused.json()["detail"]
    assert "luetooth" in refused.json()["detail"]
    devices = lab.call("GET", "/api/v1/devices").json()
    assert len(devices) == 1


def test_a_technician_cannot_enrol_a_device_under_a_key_already_enrolled(lab):
    technician = verified_technician(lab)
    enrolled_device(lab, technician)
    assert technician.login(posture=compliant_windows(lab.gateway.clock())).status_code == 200
    again = technician.call(
        "POST", "/api/v1/devices", {"name": "again", "posture": compliant_windows(lab.gateway.clock())}
    )
    assert again.status_code == 409


def test_a_personal_device_needs_the_manager_to_administer_it(lab):
    technician = verified_technician(lab)
    technician.login()
    device = technician.call(
        "POST", "/api/v1/devices", {"name": "home PC", "posture": compliant_windows(lab.gateway.clock())}
    )
    device_id = device.json()["device"]["id"]
    refused = lab.call("POST", f"/api/v1/devices/{device_id}/approve", {"ownership": "personal"})
    assert refused.status_code == 409
    approved = lab.call(
        "POST", f"/api/v1/devices/{device_id}/approve", {"ownership": "personal", "manager_can_administer": True}
    )
    assert approved.status_code == 200
    assert approved.json()["manager_can_administer"] is True


def test_a_revoked_device_loses_its_open_session_on_the_next_request(lab):
    technician = verified_technician(lab)
    device_id = enrolled_device(lab, technician)
    assert technician.login(posture=compliant_windows(lab.gateway.clock())).status_code == 200
    assert technician.call("GET", "/api/v1/me").status_code == 200
    assert lab.call("POST", f"/api/v1/devices/{device_id}/revoke", {"reason": "lost on the train"}).status_code == 200
    after = technician.call("GET", "/api/v1/me")
    assert after.status_code == 401
    assert after.json()["code"] in ("device-revoked", "session-ended")
    relogin = technician.login(posture=compliant_windows(lab.gateway.clock()))
    assert relogin.json().get("scope") != "full"


def test_a_technician_cannot_approve_devices(lab):
    technician = verified_technician(lab)
    technician.login()
    device = technician.call(
        "POST", "/api/v1/devices", {"name": "PC", "posture": compliant_windows(lab.gateway.clock())}
    )
    device_id = device.json()["device"]["id"]
    assert technician.call("POST", f"/api/v1/devices/{device_id}/approve", {"ownership": "lab-lent"}).status_code == 403


def station_identity() -> tuple[Ed25519PrivateKey, str]:
    return Ed25519PrivateKey.generate(), pyrage.x25519.Identity.generate().to_public().__str__()


def test_station_enrols_with_its_code_and_is_approved_by_fingerprint(lab):
    invite = {
        "name": "Mill 1",
        "maker": "Roland DGA",
        "model": "DWX-52D",
        "serial_number": "ZX123",
        "location": "Room 2",
    }
    invited = lab.call("POST", "/api/v1/stations/invitations", invite)
    assert invited.status_code == 201
    station_key, recipient = station_identity()
    station = Person(lab.gateway, lab.lab, "station", key=station_key)
    body = {"enrolment_code": invited.json()["enrolment_code"], "age_recipient": recipient}
    enrolled = station.call("POST", "/api/v1/stations/enrol", body, token="")
    assert enrolled.status_code == 201, enrolled.text
    fingerprint = key_fingerprint(station_key.public_key().public_bytes_raw())
    assert enrolled.json()["fingerprint"] == fingerprint
    assert station.call("POST", "/api/v1/stations/enrol", body, token="").status_code == 401  # the code is spent
    assert station.call("POST", "/api/v1/stations/session", token="").status_code == 403  # not approved yet
    station_id = enrolled.json()["id"]
    wrong = lab.call("POST", f"/api/v1/stations/{station_id}/approve", {"fingerprint": "SHA256:" + "A" * 43})
    assert wrong.status_code == 409
    assert lab.call("POST", f"/api/v1/stations/{station_id}/approve", {"fingerprint": fingerprint}).status_code == 200
    session = station.call("POST", "/api/v1/stations/session", token="")
    assert session.status_code == 200
    station.token = session.json()["token"]
    assert station.call("GET", "/api/v1/me").json()["role"] == "station"
    assert lab.call("POST", f"/api/v1/stations/{station_id}/revoke", {"reason": "replaced"}).status_code == 200
    assert station.call("GET", "/api/v1/me").status_code == 401


def test_technicians_cannot_invite_stations(lab):
    technician = verified_technician(lab)
    enrolled_device(lab, technician)
    technician.login(posture=compliant_windows(lab.gateway.clock()))
    invite = {"name": "Mill", "maker": "m", "model": "m", "serial_number": "s", "location": "l"}
    assert technician.call("POST", "/api/v1/stations/invitations", invite).status_code == 403
