"""`dentgate serve` as a user runs it: no configuration, a real port, the embedded database migrated."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time

import httpx
import pytest

from gateway.db.migrate import head_revision
from tests.conftest import free_port


def start_gateway(cwd, *args: str, env: dict[str, str] | None = None) -> tuple[subprocess.Popen, str]:
    port = free_port()
    clean = {key: value for key, value in os.environ.items() if not key.startswith("DENTGATE_")}
    process = subprocess.Popen(
        [sys.executable, "-m", "clients.cli", "serve", "--port", str(port), *args],
        cwd=cwd,
        env={**clean, **(env or {})},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"gateway exited early:\n{process.stdout.read()}")
        try:
            httpx.get(f"{base}/healthz", timeout=1)
            return process, base
        except httpx.TransportError:
            time.sleep(0.2)
    process.kill()
    raise AssertionError("gateway did not start within 30 s")


def stop_gateway(process: subprocess.Popen) -> list[dict]:
    process.send_signal(signal.SIGINT)
    output, _ = process.communicate(timeout=20)
    return [json.loads(line) for line in output.splitlines() if line.startswith("{")]


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
