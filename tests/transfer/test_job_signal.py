"""A committed job reaches a station's long poll at once: in the same process, and from another replica
through PostgreSQL LISTEN/NOTIFY, well inside the 2 s the poll would otherwise sleep (G13)."""

from __future__ import annotations

import dataclasses
import os
import threading
import time

import pytest

from gateway.transfer.job_signal import FALLBACK_WAKE_SECONDS
from tests.gateway_fixtures import running_app
from tests.transfer.test_delivery_api import station_session, uploaded


def poll_in_background(station, wait: float) -> tuple[threading.Thread, dict]:
    result: dict = {}

    def poll() -> None:
        response = station.call("GET", f"/api/v1/station/jobs/next?wait={wait:g}")
        result["at"], result["response"] = time.monotonic(), response

    thread = threading.Thread(target=poll, daemon=True)
    thread.start()
    time.sleep(0.5)  # the poll is waiting by now
    return thread, result


def test_a_waiting_station_gets_the_job_as_soon_as_it_is_committed(scene):
    station = station_session(scene)
    thread, result = poll_in_background(station, wait=10)
    design_id = uploaded(scene, os.urandom(20_000))
    committed = time.monotonic()
    thread.join(timeout=10)
    assert result["response"].status_code == 200
    assert result["response"].json()["design_id"] == design_id
    assert result["at"] - committed < 1.0 < FALLBACK_WAKE_SECONDS


@pytest.mark.postgres
@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)  # replicas share PostgreSQL, not SQLite
def test_a_commit_on_one_replica_wakes_a_station_waiting_on_another(scene):
    replica_a = scene["lab"].gateway
    for replica_b in running_app(replica_a.backends.settings):
        station = dataclasses.replace(station_session(scene), gateway=replica_b)
        thread, result = poll_in_background(station, wait=10)
        design_id = uploaded(scene, os.urandom(20_000))  # through replica A
        committed = time.monotonic()
        thread.join(timeout=10)
        assert result["response"].status_code == 200
        assert result["response"].json()["design_id"] == design_id
        assert result["at"] - committed < 1.0
