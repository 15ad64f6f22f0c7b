"""A real `dentgate serve` process on a free loopback port, for tests that drive it like a user."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import httpx

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
