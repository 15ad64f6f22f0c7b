"""The people of compliance tests: a second lab, a technician logged in from an approved device, audit look-ups."""

from __future__ import annotations

from datetime import date, timedelta

from tests.gateway_fixtures import Person
from tests.identity.posture_samples import compliant_windows
from tests.identity.test_devices_and_stations import enrolled_device, verified_technician


def manager_of(gateway, lab_name: str, username: str = "boss", ready: bool = True) -> Person:
    """The first manager of a new lab; `ready=False`: untrained, and the lab has published no policy."""
    manager = Person(gateway, lab_name, username)
    manager.activate(gateway.init_lab(lab_name, username, ready=ready))
    assert manager.login().status_code == 200
    return manager


def working_technician(lab: Person, username: str = "tanaka") -> Person:
    """A verified, compliant technician logged in (full scope) from their approved lab-lent device."""
    technician = verified_technician(lab, username)
    technician.device_id = enrolled_device(lab, technician)  # type: ignore[attr-defined]
    log_in_from_device(technician)
    return technician


def log_in_from_device(technician: Person) -> None:
    response = technician.login(posture=compliant_windows(technician.gateway.clock()))
    assert response.status_code == 200 and response.json()["scope"] == "full", response.text


def today(person: Person) -> date:
    return person.gateway.clock().date()


def days_ago(person: Person, days: int) -> str:
    return (today(person) - timedelta(days=days)).isoformat()


def audit_events(manager: Person, action: str) -> list[dict]:
    response = manager.call("GET", f"/api/v1/audit/events?action={action}&limit=1000")
    assert response.status_code == 200, response.text
    return response.json()["events"]
