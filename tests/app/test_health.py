"""Probes, OpenAPI, problem+json errors and request ids, through the real app on both databases."""

from __future__ import annotations

import uuid

import pytest
from fastapi.testclient import TestClient

from gateway.app import create_app
from gateway.backends import open_backends
from gateway.db.migrate import migrate
from gateway.settings import Settings


@pytest.fixture
def settings(tmp_path, database_url) -> Settings:
    return Settings(data_dir=tmp_path / "data", database_url=database_url)


@pytest.fixture
def client(settings):
    backends = open_backends(settings)
    migrate(backends.engine)
    with TestClient(create_app(settings, backends)) as client:
        yield client


def test_healthz_answers_while_the_process_lives(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "alive"}


def test_readyz_reports_each_backend_ready(client, settings):
    response = client.get("/readyz")
    assert response.status_code == 200, response.text
    checks = response.json()["checks"]
    assert all(check["ok"] for check in checks.values())
    assert set(checks) == {"database", "storage", "keys"}
    assert str(settings.data_dir.resolve() / "objects") in checks["storage"]["detail"]


def test_readyz_is_503_with_a_reason_when_the_schema_is_not_migrated(tmp_path, database_url):
    settings = Settings(data_dir=tmp_path / "fresh", database_url=database_url)
    with TestClient(create_app(settings)) as client:
        response = client.get("/readyz")
    assert response.status_code == 503
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert body["code"] == "not-ready"
    assert "dentgate admin migrate" in body["detail"]
    assert body["checks"]["database"]["ok"] is False


def test_readyz_is_503_when_storage_is_gone(client, settings):
    objects = settings.data_dir.resolve() / "objects"
    for path in sorted(objects.rglob("*"), reverse=True):
        path.rmdir() if path.is_dir() else path.unlink()
    objects.rmdir()
    objects.write_text("not a directory")
    response = client.get("/readyz")
    assert response.status_code == 503
    assert response.json()["checks"]["storage"]["ok"] is False


def test_openapi_document_is_served(client):
    document = client.get("/openapi.json").json()
    assert document["info"]["title"] == "DentGate"
    assert {"/healthz", "/readyz"} <= set(document["paths"])


def test_unknown_route_is_a_problem_with_a_stable_code(client):
    response = client.get("/api/v1/no-such-thing")
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert (body["code"], body["status"], body["instance"]) == ("not-found", 404, "/api/v1/no-such-thing")
    assert body["request_id"] == response.headers["x-request-id"]


def test_wrong_method_is_a_problem_with_a_stable_code(client):
    response = client.post("/healthz")
    assert response.status_code == 405
    assert response.json()["code"] == "method-not-allowed"
    assert response.headers["allow"] == "GET"


def test_every_response_carries_a_request_id(client):
    first, second = client.get("/healthz"), client.get("/healthz")
    assert len(first.headers["x-request-id"]) == 32
    assert first.headers["x-request-id"] != second.headers["x-request-id"]


def test_a_well_formed_caller_request_id_is_kept_and_a_malformed_one_replaced(client):
    mine = f"cad-{uuid.uuid4()}"
    assert client.get("/healthz", headers={"X-Request-ID": mine}).headers["x-request-id"] == mine
    hostile = 'x"; DROP TABLE labs; --'
    assert client.get("/healthz", headers={"X-Request-ID": hostile}).headers["x-request-id"] != hostile


def test_an_unhandled_error_is_a_problem_that_names_the_request(settings):
    backends = open_backends(settings)
    migrate(backends.engine)
    app = create_app(settings, backends)

    @app.get("/boom")
    def boom() -> None:
        raise RuntimeError("secret internals")

    with TestClient(app, raise_server_exceptions=False) as client:
        response = client.get("/boom")
    assert response.status_code == 500
    body = response.json()
    assert body["code"] == "internal-error"
    assert "secret internals" not in response.text
    assert body["request_id"] == response.headers["x-request-id"]


def test_readyz_answers_within_its_deadline_when_a_backend_hangs(client, monkeypatch):
    import threading

    from gateway import health

    release = threading.Event()
    monkeypatch.setattr(health, "CHECK_DEADLINE_SECONDS", 0.5)
    monkeypatch.setattr(client.app.state.backends.store, "check_ready", lambda: release.wait(30))
    try:
        response = client.get("/readyz")
    finally:
        release.set()
    assert response.status_code == 503
    assert response.json()["checks"]["storage"] == {"ok": False, "detail": "storage did not answer within 0.5 s"}
    assert response.json()["checks"]["database"]["ok"] is True


def test_readyz_on_sqlite_does_not_wait_for_a_writer(tmp_path):
    import time

    import sqlalchemy as sa

    settings = Settings(data_dir=tmp_path / "data")
    backends = open_backends(settings)
    migrate(backends.engine)
    with TestClient(create_app(settings, backends)) as client, backends.engine.begin() as writer:
        writer.execute(sa.text("SELECT 1"))  # holds SQLite's write lock (BEGIN IMMEDIATE)
        started = time.monotonic()
        response = client.get("/readyz")
        assert response.status_code == 200
        assert time.monotonic() - started < 2


def test_an_oversized_json_body_is_refused_before_it_is_read(client):
    declared = client.post(
        "/api/v1/auth/login", content=b"{}", headers={"content-type": "application/json", "content-length": "99999999"}
    )
    assert declared.status_code == 413
    assert declared.json()["code"] == "body-too-large"

    def chunks():
        for _ in range(5):
            yield b" " * (1024 * 1024)

    streamed = client.post("/api/v1/auth/login", content=chunks(), headers={"content-type": "application/json"})
    assert streamed.status_code == 413


def test_readyz_reports_the_clock_source_and_whether_it_is_synchronized(client):
    response = client.get("/readyz")
    assert response.status_code == 200, response.text
    clock = response.json()["clock"]
    assert set(clock) == {"source", "synchronized", "detail"}
    assert clock["source"] in {"timedatectl", "chrony", "kernel", None}
    assert clock["synchronized"] in {True, False, None}


@pytest.mark.parametrize(
    "status",
    [
        {"source": "timedatectl", "synchronized": False, "detail": "NTP service disabled"},
        {"source": None, "synchronized": None, "detail": "no clock synchronization status is readable on this host"},
    ],
)
def test_an_unsynchronized_or_unknown_clock_never_makes_the_gateway_unready(client, monkeypatch, status):
    from gateway import health

    monkeypatch.setattr(health, "clock_status", lambda: health.ClockStatus(**status))
    response = client.get("/readyz")
    assert response.status_code == 200
    assert response.json()["clock"] == status


def test_a_broken_clock_probe_is_reported_as_unknown(client, monkeypatch):
    from gateway import health

    def broken() -> health.ClockStatus:
        raise RuntimeError("no clock here")

    monkeypatch.setattr(health, "clock_status", broken)
    response = client.get("/readyz")
    assert response.status_code == 200
    assert (response.json()["clock"]["source"], response.json()["clock"]["synchronized"]) == (None, None)


def test_a_not_ready_answer_still_reports_the_clock(tmp_path, database_url):
    settings = Settings(data_dir=tmp_path / "fresh", database_url=database_url)
    with TestClient(create_app(settings)) as client:
        response = client.get("/readyz")
    assert response.status_code == 503
    assert "synchronized" in response.json()["clock"]


def test_the_clock_sources_are_read_in_order_timedatectl_chrony_kernel(monkeypatch):
    from gateway import health

    outputs: dict[str, str | None] = {
        "timedatectl": "NTPSynchronized=yes\nNTP=yes\n",
        "chronyc": "Reference ID    : C0A80001 (192.168.0.1)\nLeap status     : Normal\n",
    }
    monkeypatch.setattr(health, "_run", lambda argv: outputs[argv[0]])
    assert health.clock_status() == health.ClockStatus("timedatectl", True, "NTP service enabled")
    outputs["timedatectl"] = None  # not installed, or no systemd (a container)
    assert health.clock_status() == health.ClockStatus("chrony", True, "reference C0A80001 (192.168.0.1), leap Normal")
    outputs["chronyc"] = "Reference ID    : 00000000 ()\nLeap status     : Not synchronised\n"
    assert health.clock_status().synchronized is False
    outputs["chronyc"] = None
    monkeypatch.setattr(health, "kernel_status", lambda: None)
    assert health.clock_status() == health.ClockStatus(
        None, None, "no clock synchronization status is readable on this host"
    )
