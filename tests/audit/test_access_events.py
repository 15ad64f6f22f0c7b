"""Access events (G19): one audit event per request of an authenticated principal, after its response."""

from __future__ import annotations

import time
import uuid

import sqlalchemy as sa

from gateway.audit import access
from gateway.audit.models import AuditEvent
from gateway.audit.service import verify
from tests.gateway_fixtures import Person, add_technician
from tests.transfer.test_delivery_api import station_session


def events(gateway, after_seq: int = 0, **where) -> list[AuditEvent]:
    with gateway.backends.sessions() as session:
        query = sa.select(AuditEvent).where(AuditEvent.seq > after_seq).order_by(AuditEvent.lab_id, AuditEvent.seq)
        for column, value in where.items():
            query = query.where(getattr(AuditEvent, column) == value)
        return list(session.scalars(query))


def access_events(gateway, after_seq: int = 0) -> list[AuditEvent]:
    return events(gateway, after_seq, category="access")


def head(gateway) -> int:
    with gateway.backends.sessions() as session:
        return session.scalar(sa.select(sa.func.max(AuditEvent.seq))) or 0


def test_each_authenticated_request_is_one_access_event_with_its_route_template(lab):
    gateway = lab.gateway
    technician = add_technician(lab)
    technician.login()
    start = head(gateway)
    missing = uuid.uuid4()
    calls = [
        (lab, "GET", "/api/v1/me", None),
        (lab, "GET", "/api/v1/accounts", None),
        (lab, "GET", f"/api/v1/designs/{missing}", None),
        (lab, "POST", f"/api/v1/accounts/{technician.account_id}/identity-verification",
         {"method": "in-person", "document_type": "driver-licence", "verified_on": "2026-11-20"}),
        (technician, "GET", "/api/v1/accounts", None),
    ]  # fmt: skip
    responses = [person.call(method, path, body) for person, method, path, body in calls]
    assert [r.status_code for r in responses] == [200, 200, 404, 200, 403]
    gateway.client.get("/healthz")
    gateway.client.get("/readyz")
    lab.call("GET", "/api/v1/me", proof=False)  # refused authentication: an auth event, not an access event

    recorded = access_events(gateway, start)
    assert len(recorded) == len(calls)
    me = lab.call("GET", "/api/v1/me").json()
    assert [(e.action, e.details["method"], e.details["route"], e.details["status"]) for e in recorded] == [
        ("http.request", "GET", "/api/v1/me", 200),
        ("http.request", "GET", "/api/v1/accounts", 200),
        ("http.request", "GET", "/api/v1/designs/{design_id}", 404),
        ("http.request", "POST", "/api/v1/accounts/{account_id}/identity-verification", 200),
        ("http.request", "GET", "/api/v1/accounts", 403),
    ]
    assert [e.outcome for e in recorded] == ["success", "success", "failure", "success", "denied"]
    assert [e.actor_id for e in recorded] == [me["account_id"]] * 4 + [technician.account_id]
    assert [e.actor_type for e in recorded] == ["manager"] * 4 + ["technician"]
    assert [e.request_id for e in recorded] == [r.headers["x-request-id"] for r in responses]
    assert {e.client_address for e in recorded} == {"testclient"}
    assert all(e.target.startswith("session:") and e.details["latency_ms"] >= 0 for e in recorded)
    assert recorded[2].details["params"] == {"design_id": str(missing)}
    assert all("?" not in e.details["route"] for e in recorded)

    # The operation's own events come first in the chain, then the request's access event.
    verification = events(gateway, start, request_id=responses[3].headers["x-request-id"])
    assert [(e.category, e.action) for e in verification] == [
        ("operation", "account.identity-verify"),
        ("access", "http.request"),
    ]
    with gateway.backends.sessions() as session:
        lab_id = uuid.UUID(me["lab_id"])
        verify(session, lab_id, gateway.backends.keys.public_key())


def test_a_long_poll_that_gets_nothing_is_exactly_one_event(scene):
    gateway = scene["lab"].gateway
    station = station_session(scene)
    start = head(gateway)
    started = time.monotonic()
    response = station.call("GET", "/api/v1/station/jobs/next?wait=2")
    assert response.status_code == 204
    assert time.monotonic() - started >= 2
    [event] = access_events(gateway, start)
    assert (event.actor_type, event.actor_id) == ("station", scene["station_id"])
    assert event.details["route"] == "/api/v1/station/jobs/next"
    assert (event.details["status"], event.details["station"]) == (204, scene["station_id"])
    assert event.details["latency_ms"] >= 2000
    assert event.device_id is None


def test_a_device_session_names_its_device(scene):
    technician: Person = scene["technician"]
    start = head(technician.gateway)
    assert technician.call("GET", "/api/v1/designs").status_code == 200
    [event] = access_events(technician.gateway, start)
    assert event.device_id == scene["device_id"]


def test_a_failure_to_record_is_logged_and_the_response_stands(lab, monkeypatch):
    logged: list[tuple[str, dict]] = []

    class Log:
        def exception(self, event: str, **values: object) -> None:
            logged.append((event, values))

    def broken(sessions, entry) -> None:
        raise RuntimeError("database went away")

    monkeypatch.setattr(access, "store_access", broken)
    monkeypatch.setattr(access, "log", Log())
    start = head(lab.gateway)
    response = lab.call("GET", "/api/v1/me")
    assert response.status_code == 200
    assert response.json()["role"] == "manager"
    assert logged == [("access event not recorded", {"route": "/api/v1/me", "status": 200})]
    assert access_events(lab.gateway, start) == []
