"""`dentgate serve --workers N`: N worker processes on one port, built from the same flags and environment, all
stopped by one Ctrl-C; refused for N < 1, and for N > 1 on the embedded SQLite database."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time

import httpx
import psutil
import pytest

from tests.gateway_process import start_gateway

WEBHOOK_SECRET = "scaleout-webhook-secret-9f3a1c"


def _clean_environment(**extra: str) -> dict[str, str]:
    return {**{k: v for k, v in os.environ.items() if not k.startswith("DENTGATE_")}, **extra}


def _collect(process: subprocess.Popen, lines: list[str]) -> threading.Thread:
    """Read the gateway's log lines as they come (the workers write to the same stdout)."""

    def read() -> None:
        for line in process.stdout:
            lines.append(line)

    thread = threading.Thread(target=read, daemon=True)
    thread.start()
    return thread


def _events(lines: list[str]) -> list[str]:
    return [json.loads(line).get("event", "") for line in list(lines) if line.startswith("{")]


@pytest.mark.postgres
@pytest.mark.timeout(180)
def test_two_workers_serve_one_port_and_stop_together_on_ctrl_c(tmp_path, postgres_url):
    data = tmp_path / "data"
    environment = {"DENTGATE_DATABASE_URL": postgres_url, "DENTGATE_INCIDENT_WEBHOOK_SECRET": WEBHOOK_SECRET}
    process, base = start_gateway(tmp_path, "--workers", "2", "--data-dir", str(data), env=environment)
    lines: list[str] = []
    reader = _collect(process, lines)
    children: list[psutil.Process] = []
    try:
        deadline = time.monotonic() + 60
        while _events(lines).count("Application startup complete.") < 2 and time.monotonic() < deadline:
            time.sleep(0.2)
        assert _events(lines).count("Application startup complete.") == 2, "".join(lines)
        started = {int(pid) for e in _events(lines) for pid in re.findall(r"^Started server process \[(\d+)\]$", e)}

        ready = httpx.get(f"{base}/readyz", timeout=10)
        assert ready.status_code == 200, ready.text
        # Workers use the --data-dir flag the parent was given: its objects and the key file the parent created.
        assert ready.json()["checks"]["storage"]["detail"] == f"local directory {data.resolve() / 'objects'}"
        assert not (tmp_path / "dentgate-data").exists()
        for _ in range(10):  # whichever worker takes it
            assert httpx.get(f"{base}/readyz", timeout=10).status_code == 200

        children = psutil.Process(process.pid).children()
        workers = [child for child in children if "spawn_main" in " ".join(child.cmdline())]
        assert {worker.pid for worker in workers} == started and len(started) == 2
        for worker in workers:  # each a gateway worker, given the flags but no secret
            assert process.pid == worker.ppid()
            flags = json.loads(worker.environ()["_DENTGATE_SERVE_FLAGS"])
            assert flags == {"port": int(base.rsplit(":", 1)[1]), "data_dir": str(data)}
        for child in [psutil.Process(process.pid), *children]:
            assert WEBHOOK_SECRET not in " ".join(child.cmdline())
    finally:
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=30) == 0
        reader.join(timeout=10)
    _, alive = psutil.wait_procs(children, timeout=10)
    assert not alive, alive  # no worker (nor multiprocessing's helper) left behind
    finished = _events(lines)
    assert sorted(int(p) for e in finished for p in re.findall(r"^Finished server process \[(\d+)\]$", e)) == sorted(
        started
    )  # each worker shut down cleanly
    assert finished.count("Application shutdown complete.") == 2
    assert finished.count("database migrated") == 1  # by the parent, before the workers started
    assert WEBHOOK_SECRET not in "".join(lines)


def _serve(tmp_path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "clients.cli", "serve", *args],
        cwd=tmp_path,
        env=_clean_environment(),
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_zero_workers_are_refused(tmp_path):
    refused = _serve(tmp_path, "--workers", "0")
    assert refused.returncode == 2
    assert "Invalid value for '--workers': 0 is not in the range x>=1" in refused.stderr
    assert list(tmp_path.iterdir()) == []


def test_several_workers_on_the_embedded_sqlite_database_are_refused(tmp_path):
    refused = _serve(tmp_path, "--workers", "2")
    assert refused.returncode == 2
    assert "Invalid value for '--workers': several workers need PostgreSQL" in refused.stderr
    assert list(tmp_path.iterdir()) == []  # refused before anything was created or migrated


def test_a_worker_that_cannot_start_ends_with_the_status_that_stops_the_supervisor(tmp_path):
    """uvicorn restarts a worker that dies, except one ending with its startup-failure status (3)."""
    failed = subprocess.run(
        [sys.executable, "-c", "from gateway.server import worker_app; worker_app()"],
        cwd=tmp_path,
        env=_clean_environment(_DENTGATE_SERVE_FLAGS=json.dumps({"port": 0})),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert failed.returncode == 3, failed.stderr
    logged = [json.loads(line) for line in failed.stdout.splitlines() if line.startswith("{")]
    assert [line["event"] for line in logged] == ["worker could not start"]
    assert "port" in logged[0]["exception"]
