"""`dentgate serve` as a user runs it: no configuration, a real port, the embedded database migrated."""

from __future__ import annotations

import json
import sqlite3

import httpx
import pytest

from gateway.db.migrate import head_revision
from tests.gateway_process import start_gateway, stop_gateway


def test_serve_with_no_configuration_is_ready_on_the_embedded_default(tmp_path):
    process, base = start_gateway(tmp_path)
    try:
        ready = httpx.get(f"{base}/readyz", timeout=10)
        assert ready.status_code == 200, ready.text
    finally:
        lines = stop_gateway(process)
    database = tmp_path / "dentgate-data" / "dentgate.db"
    assert database.is_file()
    assert database.stat().st_mode & 0o777 == 0o600
    with sqlite3.connect(database) as connection:
        assert connection.execute("SELECT version_num FROM alembic_version").fetchone()[0] == head_revision()
        assert connection.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert (tmp_path / "dentgate-data" / "objects").is_dir()
    key_file = tmp_path / "dentgate-data" / "keys" / "gateway-key.json"
    assert key_file.stat().st_mode & 0o777 == 0o600
    requests = [line for line in lines if line.get("event") == "request"]
    assert {line["path"] for line in requests} >= {"/healthz", "/readyz"}
    assert all(len(line["request_id"]) == 32 for line in requests)
    assert key_file.read_text() not in "\n".join(json.dumps(line) for line in lines)


@pytest.mark.postgres
def test_serve_on_postgresql_migrates_it_and_is_ready(tmp_path, postgres_url):
    process, base = start_gateway(tmp_path, env={"DENTGATE_DATABASE_URL": postgres_url})
    try:
        ready = httpx.get(f"{base}/readyz", timeout=10)
        assert ready.status_code == 200, ready.text
        assert ready.json()["checks"]["database"]["detail"] == f"postgresql at schema {head_revision()}"
    finally:
        stop_gateway(process)
    assert not (tmp_path / "dentgate-data" / "dentgate.db").exists()
