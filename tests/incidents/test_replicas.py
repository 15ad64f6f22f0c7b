"""Done when: with two gateway replicas on one PostgreSQL database, sharing the data directory and key as a
multi-replica deployment does, a lost device reported through one replica is refused by the other in under
a second from the report's answer (G17)."""

from __future__ import annotations

import time

import httpx
import pytest

from gateway.identity.proofs import make_proof
from tests.gateway_fixtures import Person
from tests.gateway_process import start_gateway, stop_gateway


def call(person: Person, base: str, method: str, path: str, json: dict | None = None) -> httpx.Response:
    """`person`'s request to a real gateway process: their token and a fresh proof made now for that URL."""
    url = f"{base}{path}"
    headers = {"DPoP": make_proof(person.key, method, url, access_token=person.token),
               "Authorization": f"DPoP {person.token}"}  # fmt: skip
    return httpx.request(method, url, json=json, headers=headers, timeout=10)


@pytest.mark.postgres
@pytest.mark.timeout(180)
@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)  # replicas share PostgreSQL, not SQLite
def test_a_lost_device_reported_through_one_replica_is_refused_by_another_within_a_second(scene, tmp_path):
    manager, technician = scene["lab"], scene["technician"]
    settings = manager.gateway.backends.settings  # the key file and objects live in its data directory
    shared = {"DENTGATE_DATABASE_URL": settings.database_url, "DENTGATE_DATA_DIR": str(settings.data_dir)}
    replica_a, url_a = start_gateway(tmp_path, env=shared)
    try:
        replica_b, url_b = start_gateway(tmp_path, env=shared)
        try:
            assert call(technician, url_b, "GET", "/api/v1/me").status_code == 200
            body = {"type": "lost-device", "description": "phoned in: laptop stolen", "technician": "tanaka"}
            filed = call(manager, url_a, "POST", "/api/v1/incidents", body)
            answered = time.monotonic()
            assert filed.status_code == 201, filed.text
            refused = call(technician, url_b, "GET", "/api/v1/me")
            elapsed = time.monotonic() - answered
            assert refused.status_code == 401, refused.text
            assert refused.json()["code"] in ("device-revoked", "session-ended")
            print(f"refused through the other replica {elapsed * 1000:.0f} ms after the report's answer")
            assert elapsed < 1.0
            seen = call(manager, url_b, "GET", f"/api/v1/incidents/{filed.json()['id']}").json()
            assert (seen["status"], seen["device"]["status"]) == ("contained", "revoked")
        finally:
            stop_gateway(replica_b)
    finally:
        stop_gateway(replica_a)
