"""A manager of lab A cannot see, approve or revoke anything of lab B."""

from __future__ import annotations

import pytest

from tests.gateway_fixtures import Person, add_technician
from tests.identity.posture_samples import compliant_windows


@pytest.fixture
def other_lab(gateway, lab):
    manager = Person(gateway, "Nagoya Dental Lab", "boss")
    manager.activate(gateway.init_lab("Nagoya Dental Lab", "boss"))
    assert manager.login().status_code == 200
    technician = add_technician(manager, "suzuki")
    technician.login()
    device = technician.call("POST", "/api/v1/devices", {"name": "PC", "posture": compliant_windows(gateway.clock())})
    invite = {"name": "Mill B", "maker": "m", "model": "m", "serial_number": "s", "location": "l"}
    station = manager.call("POST", "/api/v1/stations/invitations", invite)
    return {
        "account": technician.account_id,
        "device": device.json()["device"]["id"],
        "station": station.json()["station"]["id"],
    }


def test_lists_show_only_the_managers_own_lab(lab, other_lab):
    assert [a["username"] for a in lab.call("GET", "/api/v1/accounts").json()] == ["manager"]
    assert lab.call("GET", "/api/v1/devices").json() == []
    assert lab.call("GET", "/api/v1/stations").json() == []


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/api/v1/accounts/{account}/identity-verification",
         {"method": "in-person", "document_type": "passport", "verified_on": "2026-11-01"}),
        ("/api/v1/accounts/{account}/reset", None),
        ("/api/v1/accounts/{account}/disable", None),
        ("/api/v1/devices/{device}/approve", {"ownership": "lab-lent"}),
        ("/api/v1/devices/{device}/revoke", {"reason": "x"}),
        ("/api/v1/stations/{station}/approve", {"fingerprint": "SHA256:x"}),
        ("/api/v1/stations/{station}/revoke", {"reason": "x"}),
    ],
)  # fmt: skip
def test_another_labs_resources_are_not_found(lab, other_lab, path, body):
    response = lab.call("POST", path.format(**other_lab), body)
    assert response.status_code == 404
    assert response.json()["code"] == "not-found"
