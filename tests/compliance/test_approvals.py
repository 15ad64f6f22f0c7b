"""A manager approves remote workers, devices and stations only with current manager training (G21)."""

from __future__ import annotations

from gateway.identity.stations import key_fingerprint
from gateway.policy import default_policy
from tests.compliance.people import days_ago, manager_of
from tests.gateway_fixtures import Person, add_technician
from tests.identity.posture_samples import compliant_windows
from tests.identity.test_devices_and_stations import station_identity

VERIFICATION = {"method": "in-person", "document_type": "driver-licence", "verified_on": "2026-11-20"}
MANAGER_TOPICS = list(default_policy().training.required_topics("manager"))


def pending_device(technician: Person) -> str:
    assert technician.login().json()["scope"] == "enrol"
    posture = compliant_windows(technician.gateway.clock())
    enrolled = technician.call("POST", "/api/v1/devices", {"name": "CAD PC", "posture": posture})
    assert enrolled.status_code == 201, enrolled.text
    return enrolled.json()["device"]["id"]


def pending_station(manager: Person) -> tuple[str, str]:
    invite = {"name": "Mill 1", "maker": "Roland DGA", "model": "DWX-52D", "serial_number": "ZX9", "location": "Room 2"}
    invited = manager.call("POST", "/api/v1/stations/invitations", invite)
    assert invited.status_code == 201, invited.text
    station_key, recipient = station_identity()
    station = Person(manager.gateway, manager.lab, "station", key=station_key)
    body = {"enrolment_code": invited.json()["enrolment_code"], "age_recipient": recipient}
    enrolled = station.call("POST", "/api/v1/stations/enrol", body, token="")
    assert enrolled.status_code == 201, enrolled.text
    return enrolled.json()["id"], key_fingerprint(station_key.public_key().public_bytes_raw())


def refused_for_training(response) -> bool:
    body = response.json()
    return (
        response.status_code == 403
        and body["code"] == "approval-refused"
        and [f["requirement"] for f in body["failures"]] == ["G21"]
    )


def test_an_untrained_manager_approves_nothing_until_their_training_is_recorded(gateway):
    boss = manager_of(gateway, "Nara Dental Lab", ready=False)
    technician = add_technician(boss)
    device_id = pending_device(technician)
    station_id, fingerprint = pending_station(boss)
    verify = f"/api/v1/accounts/{technician.account_id}/identity-verification"
    assert refused_for_training(boss.call("POST", verify, VERIFICATION))
    assert refused_for_training(boss.call("POST", f"/api/v1/devices/{device_id}/approve", {"ownership": "lab-lent"}))
    station_approval = boss.call("POST", f"/api/v1/stations/{station_id}/approve", {"fingerprint": fingerprint})
    assert refused_for_training(station_approval)
    assert "Management of staff working remotely" in station_approval.json()["detail"]
    # Nothing was approved by the refusals.
    assert boss.call("GET", "/api/v1/devices").json()[0]["status"] == "pending"

    boss_id = boss.call("GET", "/api/v1/me").json()["account_id"]
    course = {"held_on": days_ago(boss, 0), "title": "管理者研修", "provider": "日本歯科技工士会",
              "topics": MANAGER_TOPICS, "duration_minutes": 120, "attendees": [boss_id]}  # fmt: skip
    assert boss.call("POST", "/api/v1/training", course).status_code == 201
    assert boss.call("POST", verify, VERIFICATION).status_code == 200
    assert boss.call("POST", f"/api/v1/devices/{device_id}/approve", {"ownership": "lab-lent"}).status_code == 200
    assert boss.call("POST", f"/api/v1/stations/{station_id}/approve", {"fingerprint": fingerprint}).status_code == 200


def test_a_manager_whose_training_ran_out_cannot_approve_a_device(lab):
    technician = add_technician(lab)
    lab.gateway.clock.advance(days=400)
    assert lab.login().status_code == 200
    device_id = pending_device(technician)
    refused = lab.call("POST", f"/api/v1/devices/{device_id}/approve", {"ownership": "lab-lent"})
    assert refused_for_training(refused)
    assert refused.json()["failures"][0]["rule"] == "training-expired" and "ran out" in refused.json()["detail"]
