"""What the benchmarks share: a real `dentgate serve` process on loopback, and its resident memory."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import httpx
import psutil
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from clients.sealing import Sealed
from gateway.transfer.manifest import Manifest, sign_manifest

MIB = 1024 * 1024
SAMPLE_SECONDS = 0.02
CHILDREN_REFRESH_SECONDS = 0.5
STARTUP_SECONDS = 30
STOP_SECONDS = 20


def say(line: str) -> None:
    """Progress goes to stderr, so that `--json` keeps stdout for the result."""
    print(line, file=sys.stderr, flush=True)


def print_result(result: dict, as_json: bool) -> None:
    """A benchmark's figures on stdout: one JSON object, or a Markdown table for bench/README.md."""
    if as_json:
        print(json.dumps(result))
        return
    print("| measure | value |\n|---|---|")
    for key, value in result.items():
        print(f"| {key} | {value} |")


@dataclass(frozen=True)
class Sender:
    """Who sends a bench design, and to which station: what a manifest names besides the design itself."""

    lab_id: uuid.UUID | str
    technician_id: uuid.UUID | str
    device_id: uuid.UUID | str
    device_key: Ed25519PrivateKey
    station_id: uuid.UUID | str
    station_recipient: str
    archive_recipient: str


def design_manifest(
    sender: Sender, files: list[dict[str, object]], sealed: Sealed, case_reference: str
) -> dict[str, object]:
    """The manifest `clients.uploader.upload_design` builds (tooth 11, zirconia, designed at home) for a fresh
    design id and the sealed `files`, signed with the device key; ready for `POST /api/v1/uploads`."""
    fields = {
        "format": "dentgate-manifest-v1",
        "design_id": str(uuid.uuid4()),
        "lab_id": str(sender.lab_id),
        "case_reference": case_reference,
        "files": files,
        "teeth": [{"fdi": 11, "source_system": "FDI", "source_value": "11"}],
        "material": "zirconia",
        "process": "design",
        "remote_location": "home",
        "target_stations": [str(sender.station_id)],
        "recipients": [
            {"kind": "station", "station_id": str(sender.station_id), "age_recipient": sender.station_recipient},
            {"kind": "archive", "station_id": None, "age_recipient": sender.archive_recipient},
        ],
        "technician_id": str(sender.technician_id),
        "device_id": str(sender.device_id),
        "created_at": datetime.now(UTC).isoformat(),
        "ciphertext_size": sealed.ciphertext_size,
        "ciphertext_sha256": sealed.ciphertext_sha256,
    }
    manifest = Manifest.model_validate_json(json.dumps(fields))
    return sign_manifest(manifest, sender.device_key).model_dump(mode="json")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextlib.contextmanager
def gateway_process(
    data_dir: Path, work_dir: Path, log_file: Path, env: dict[str, str] | None = None, workers: int = 1
) -> Iterator[tuple[psutil.Process, str]]:
    """`dentgate serve` on a free loopback port over `data_dir` (and `env`, e.g. DENTGATE_DATABASE_URL), with
    `workers` worker processes (more than one needs PostgreSQL); interrupted (then killed) on the way out."""
    port = free_port()
    environment = {key: value for key, value in os.environ.items() if not key.startswith("DENTGATE_")}
    environment |= env or {}
    environment["TMPDIR"] = str(work_dir)  # request bodies spooled to disk stay inside the bench's folder
    command = [sys.executable, "-m", "clients.cli", "serve", "--host", "127.0.0.1", "--port", str(port)]
    command += ["--workers", str(workers)] if workers > 1 else []
    with log_file.open("wb") as log:
        server = subprocess.Popen(  # noqa: S603 (our own interpreter and arguments)
            [*command, "--data-dir", str(data_dir)], cwd=work_dir, env=environment, stdout=log, stderr=log
        )
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + STARTUP_SECONDS
        while True:
            if server.poll() is not None:
                raise RuntimeError(f"the gateway exited with {server.returncode}:\n{log_file.read_text()[-4000:]}")
            try:
                if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"the gateway was not ready within {STARTUP_SECONDS} s")
            time.sleep(0.1)
        yield psutil.Process(server.pid), url
    finally:
        if server.poll() is None:
            server.send_signal(signal.SIGINT)
            try:
                server.wait(timeout=STOP_SECONDS)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()


def tree_rss(process: psutil.Process, children: list[psutil.Process]) -> int:
    """Resident bytes of the process and its children (gone children count for nothing)."""
    total = 0
    for member in [process, *children]:
        with contextlib.suppress(psutil.NoSuchProcess, psutil.ZombieProcess):
            total += member.memory_info().rss
    return total


class RssSampler(threading.Thread):
    """Samples the resident set of a process and its children every SAMPLE_SECONDS until stopped."""

    def __init__(self, process: psutil.Process) -> None:
        super().__init__(name="rss-sampler", daemon=True)
        self._process = process
        self._stop_event = threading.Event()
        self.samples: list[tuple[float, int]] = []  # (monotonic time, bytes)

    def run(self) -> None:
        children: list[psutil.Process] = []
        refreshed = 0.0
        while not self._stop_event.is_set():
            now = time.monotonic()
            if now - refreshed >= CHILDREN_REFRESH_SECONDS:  # listing children scans /proc: not every sample
                with contextlib.suppress(psutil.NoSuchProcess):
                    children = self._process.children(recursive=True)
                refreshed = now
            self.samples.append((now, tree_rss(self._process, children)))
            self._stop_event.wait(SAMPLE_SECONDS)

    def stop(self) -> list[tuple[float, int]]:
        self._stop_event.set()
        self.join()
        return self.samples


def sample_for(process: psutil.Process, seconds: float) -> list[int]:
    sampler = RssSampler(process)
    sampler.start()
    time.sleep(seconds)
    return [rss for _, rss in sampler.stop()]


def reset_kernel_peak(pid: int) -> bool:
    """Reset the kernel's peak-RSS counter (VmHWM) of `pid`; False where the system does not allow it."""
    try:
        Path(f"/proc/{pid}/clear_refs").write_text("5")
    except OSError:
        return False
    return True


def kernel_peak(pid: int) -> int | None:
    """VmHWM of `pid` in bytes (Linux), the resident peak the kernel saw; None where it is not available."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    for line in status.splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    return None
