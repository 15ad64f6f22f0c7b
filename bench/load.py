"""Load: 32 technicians upload 8 MB designs as fast as the gateway takes them while 4 milling stations pull, 60 s.

Everything runs on this machine, on loopback, in a temporary folder that is removed at the end:

1. PostgreSQL by default, the production database: a fresh database is created for the run on the server of
   `--database-url` (default the test server, `postgresql+psycopg://postgres@127.0.0.1:5432/test`) and dropped at
   the end. `--sqlite` runs on the embedded SQLite instead. The database is migrated and the lab created in this
   process; then a real `dentgate serve` process starts on it (`--workers N` is passed on when N > 1 and this
   checkout's `dentgate serve` has the option).
2. Through the HTTP API (`bench/population.py`, eight calls at a time) a manager makes `--technicians` technicians
   ready for remote work: account, identity verified, activated, profile, training, attestations, a device of
   their own enrolled with its own key and approved, logged in from it with a compliant posture, the policy
   acknowledged, the roster filed. It approves `--stations` stations.
3. Technician i sends to station i mod `--stations`. A few designs (random bytes as a 3Shape `.dcm`, which the
   station passes through unparsed, so the client side spends no CPU on mesh checks) are sealed per station up
   front with `clients.sealing`, so no encryption runs during the measure. The gateway accepts the same
   ciphertext under a new design id (it refuses only a design id it has seen): each upload gets its own design
   id, case reference and manifest, signed by the technician's device key.
4. The clients run in processes of their own (spawned interpreters), so their GIL is never the gateway's
   bottleneck: `--client-processes` processes (default 4) each drive their share of the technicians with one
   thread per technician, and each station is one process running the real agent loop
   (`StationAgent.run_forever`, long poll of 5 s so it stops promptly: claim, download, verify the custody chain,
   decrypt, check, write atomically into its import folder, acknowledge; each delivered file is then deleted to
   keep the disk use flat). On a 2-core machine the clients still compete with the gateway for the CPU; the
   figures are for the whole machine doing both.
5. Each technician loops with no pause: sign a manifest, `POST /api/v1/uploads`, send the ciphertext with the
   uploader's own loop (`clients.uploader.send_ciphertext`: PATCHes of 8 MiB, the last one commits), verify the
   receipt. The latency of an upload is from the POST to the commit's answer; any exception or non-2xx answer is
   an error. No upload starts after `--seconds`; those under way finish, and the window ends with the last.
   The stations are stopped then.

The gateway's CPU (psutil: user + system of its process tree over the window) is given as % of one core and of
the machine; its RSS idle (median of 1 s before the window) and peak (sampled every 20 ms during it).

Targets: no errors, and upload latency p99 ≤ 5 × p50. The exit status is 0 when both hold, 1 otherwise.

    python bench/load.py                                  # 32 technicians, 4 stations, 60 s, 8 MB, PostgreSQL
    python bench/load.py --sqlite                         # the embedded SQLite
    python bench/load.py --technicians 8 --seconds 15     # a quick run
    python bench/load.py --workers 2                      # `dentgate serve --workers 2`, where it exists
    python bench/load.py --json                           # one JSON object on stdout
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import json
import os
import queue
import re
import shutil
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from harness import MIB, RssSampler, gateway_process, print_result, sample_for, say
from population import (
    MB,
    PAYLOADS,
    Lab,
    SealedDesign,
    StationSpec,
    drain,
    percentile,
    prepare_database,
    prepare_people,
    run_station,
    seal_design,
    signed_manifest,
    spawn,
    throwaway_database,
    tree_cpu_seconds,
    write_design,
)

from clients.api import GatewayClient
from clients.uploader import send_ciphertext
from gateway.transfer.custody import SignedReceipt, verify_receipt

DEFAULT_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
LATENCY_RATIO_TARGET = 5.0
SEALED_PER_STATION = 3
STATION_WAIT_SECONDS = 5.0
READY_TIMEOUT_SECONDS = 120.0
ERROR_PAUSE_SECONDS = 0.5  # after a failed upload, so that a broken gateway is not hammered in a tight loop
SHOWN_ERRORS = 5


@dataclass(frozen=True)
class LoadConfig:
    technicians: int
    stations: int
    seconds: float
    size_mb: float
    workers: int
    client_processes: int
    database_url: str | None  # None: the embedded SQLite


@dataclass(frozen=True)
class TechnicianSpec:
    username: str
    account_id: str
    device_id: str
    device_seed: bytes
    token: str
    sealed: SealedDesign


@dataclass(frozen=True)
class ClientBatch:
    url: str
    lab_id: str
    gateway_key: bytes
    seconds: float
    technicians: list[TechnicianSpec]


def _technician_loop(batch: ClientBatch, spec: TechnicianSpec, start: threading.Event, window: list[float],
                     results: Any) -> None:  # fmt: skip
    """Upload in a loop until the window ends; each upload's record goes to `results` as soon as it is known."""
    key = Ed25519PrivateKey.from_private_bytes(spec.device_seed)
    client = GatewayClient(batch.url, key, token=spec.token)
    sealed = spec.sealed.bundle.sealed
    try:
        client.get("/api/v1/me")  # warm-up: a pooled connection, as a technician's client would have
    except Exception as error:  # noqa: BLE001
        results.put({"began": 0.0, "ended": 0.0, "error": f"warm-up: {type(error).__name__}: {error}"})
    start.wait()
    number = 0
    with open(spec.sealed.path, "rb") as ciphertext:
        while time.monotonic() < window[1]:
            number += 1
            case = f"LOAD-{spec.username}-{number:05d}"
            began = time.monotonic()
            try:
                manifest = signed_manifest(spec.sealed, batch.lab_id, spec.account_id, spec.device_id, key, case)
                began = time.monotonic()  # the latency is the gateway's part: from the POST to the commit's answer
                created = client.post("/api/v1/uploads", {"signed_manifest": manifest})
                answer = send_ciphertext(
                    client, created["upload_id"], ciphertext, sealed.ciphertext_size, lambda done, total: None
                )
                ended = time.monotonic()
                receipt = verify_receipt(
                    SignedReceipt.model_validate_json(json.dumps(answer["receipt"])), batch.gateway_key
                )
                if receipt.ciphertext_sha256 != sealed.ciphertext_sha256:
                    raise RuntimeError("the receipt names other bytes than the ones sent")
                results.put(
                    {
                        "began": began,
                        "ended": ended,
                        "bytes": sealed.ciphertext_size,
                        "design_id": str(answer["design_id"]),
                    }
                )
            except Exception as error:  # noqa: BLE001 (every failure is a result of the load test)
                results.put(
                    {"began": began, "ended": time.monotonic(), "error": f"{type(error).__name__}: {str(error)[:300]}"}
                )
                time.sleep(ERROR_PAUSE_SECONDS)
    client.close()


def drive_technicians(batch: ClientBatch, ready: Any, go: Any, results: Any) -> None:
    """One client process: a thread per technician, all starting when `go` is set, for `batch.seconds`; a record
    per upload, then `{"finished": pid}`, go to `results`."""
    start = threading.Event()
    window = [0.0, 0.0]
    threads = [
        threading.Thread(target=_technician_loop, args=(batch, spec, start, window, results), daemon=True)
        for spec in batch.technicians
    ]
    for thread in threads:
        thread.start()
    ready.put(os.getpid())
    go.wait()
    window[0] = time.monotonic()
    window[1] = window[0] + batch.seconds
    start.set()
    for thread in threads:
        thread.join()
    results.put({"finished": os.getpid()})


def _sealed_designs(lab: Lab, work: Path, size: int) -> dict[str, list[SealedDesign]]:
    """SEALED_PER_STATION designs of random bytes per station, each sealed to that station and the archive."""
    folder = work / "cad-export"
    folder.mkdir()
    name, media_type, _ = PAYLOADS["dcm"]
    sealed: dict[str, list[SealedDesign]] = {}
    for station in lab.stations:
        copies = sealed.setdefault(str(station.station_id), [])
        for copy in range(SEALED_PER_STATION):
            design = write_design(folder, "dcm", size)
            out = work / f"sealed-{station.name.split()[-1]}-{copy}.age"
            copies.append(seal_design(design, out, media_type, station, lab.archive_recipient))
    ciphertext = next(iter(sealed.values()))[0].bundle.sealed.ciphertext_size
    say(f"Sealed {SEALED_PER_STATION} designs of {size:,} bytes ({name}) per station, ciphertext {ciphertext:,} bytes")
    return sealed


def _batches(lab: Lab, config: LoadConfig, work: Path) -> list[ClientBatch]:
    """The technicians, technician i sending to station i mod n, shared out among the client processes."""
    sealed = _sealed_designs(lab, work, int(config.size_mb * MB))
    specs = []
    for number, person in enumerate(lab.technicians):
        copies = sealed[str(lab.stations[number % len(lab.stations)].station_id)]
        copy = copies[(number // len(lab.stations)) % len(copies)]
        seed = person.device_key.private_bytes_raw()
        specs.append(TechnicianSpec(person.username, str(person.account_id), str(person.device_id), seed,
                                    str(person.client.token), copy))  # fmt: skip
    processes = max(1, min(config.client_processes, len(specs)))
    return [
        ClientBatch(lab.url, str(lab.lab_id), lab.gateway_key, config.seconds, specs[i::processes])
        for i in range(processes)
    ]


@dataclass
class Window:
    """What was measured while the clients ran."""

    records: list[dict[str, Any]] = field(default_factory=list)  # one per upload, from the client processes
    deliveries: list[dict[str, Any]] = field(default_factory=list)  # one per job, from the station processes
    start: float = 0.0
    end: float = 0.0
    gateway_cpu_seconds: float = 0.0
    machine: dict[str, float] = field(default_factory=dict)
    idle_rss: int = 0
    peak_rss: int = 0


@dataclass(frozen=True)
class Running:
    go: Any  # multiprocessing.Event: set, the client processes start their window
    results: Any  # multiprocessing.Queue: a record per upload from the client processes, then their end
    drivers: list[Any]  # the client processes


@contextlib.contextmanager
def _clients(lab: Lab, batches: list[ClientBatch], work: Path, window: Window) -> Iterator[Running]:
    """Start the station agents and the client processes, which wait for `go`. On the way out, stop the stations,
    collect their deliveries into `window`, and end every process (a client process that never got `go`, or is
    still running after a failure, is terminated)."""
    context = spawn()
    reports, stop = context.Queue(), context.Event()
    ready, go, results = context.Queue(), context.Event(), context.Queue()
    agents = [
        context.Process(target=run_station, name=f"station-{n}", daemon=True,
                        args=(StationSpec.of(lab, station, work, STATION_WAIT_SECONDS, True), reports, stop))
        for n, station in enumerate(lab.stations, start=1)
    ]  # fmt: skip
    drivers = [
        context.Process(target=drive_technicians, name=f"clients-{n}", daemon=True, args=(batch, ready, go, results))
        for n, batch in enumerate(batches, start=1)
    ]
    try:
        for process in agents + drivers:
            process.start()
        for _ in drivers:
            ready.get(timeout=READY_TIMEOUT_SECONDS)
        yield Running(go, results, drivers)
    finally:
        stop.set()
        for driver in drivers:
            if driver.is_alive() and not go.is_set():
                driver.terminate()
        deadline = time.monotonic() + STATION_WAIT_SECONDS + 30  # a job in hand, then the last long poll
        while any(agent.is_alive() for agent in agents) and time.monotonic() < deadline:
            if (report := drain(reports, 0.2)) is not None:
                window.deliveries.append(report)
        while (report := drain(reports, 0.5)) is not None:
            window.deliveries.append(report)
        for process in agents + drivers:
            process.join(timeout=5)
            if process.is_alive():
                process.terminate()
                process.join()


def _collect(running: Running, window: Window) -> None:
    """Gather the uploads' records until every client process has finished, showing progress."""
    progress_at, finished = window.start + 10, 0
    while finished < len(running.drivers):
        try:
            record = running.results.get(timeout=0.2)
        except queue.Empty:
            if not any(driver.is_alive() for driver in running.drivers) and running.results.empty():
                raise RuntimeError("a client process ended without finishing (see its traceback above)") from None
        else:
            if "finished" in record:
                finished += 1
            else:
                window.records.append(record)
        if time.monotonic() >= progress_at:
            failed = sum("error" in record for record in window.records)
            say(f"  {time.monotonic() - window.start:4.0f} s: {len(window.records) - failed} uploads, {failed} errors")
            progress_at += 10


def _measure(server: psutil.Process, lab: Lab, batches: list[ClientBatch], work: Path, window: Window) -> None:
    with _clients(lab, batches, work, window) as running:
        time.sleep(1.0)  # the stations' sessions and first long polls
        window.idle_rss = int(statistics.median(sample_for(server, 1.0)))
        say(f"{len(batches)} client processes ready, {len(lab.stations)} station agents polling; gateway idle RSS "
            f"{window.idle_rss / MIB:.1f} MiB. Loading for {batches[0].seconds:g} s")  # fmt: skip
        sampler = RssSampler(server)
        sampler.start()
        try:
            before, machine_before = tree_cpu_seconds(server), psutil.cpu_times()
            window.start = time.monotonic()
            running.go.set()
            _collect(running, window)
            window.end = max((record["ended"] for record in window.records), default=time.monotonic())
            window.gateway_cpu_seconds = tree_cpu_seconds(server) - before
            window.machine = machine_share(machine_before, psutil.cpu_times())
        finally:
            window.peak_rss = max(rss for _, rss in sampler.stop())


def run(config: LoadConfig, keep_log: Path | None = None) -> dict[str, Any]:
    window = Window()
    with (
        tempfile.TemporaryDirectory(prefix="dentgate-bench-load-") as folder,
        throwaway_database(config.database_url) as url_for_run,
    ):
        work = Path(folder)
        say(f"Working in {work} ({'PostgreSQL, a throw-away database' if url_for_run else 'SQLite'})")
        lab_id, secret, env = prepare_database(work / "gateway-data", url_for_run)
        try:
            with gateway_process(work / "gateway-data", work, work / "gateway.log", env, config.workers) as (
                server,
                url,
            ):
                say(f"Gateway {server.pid} ready at {url}; setting up the lab through the API")
                lab = prepare_people(url, lab_id, secret, work, config.technicians, config.stations, say)
                batches = _batches(lab, config, work)
                _measure(server, lab, batches, work, window)
        finally:
            if keep_log is not None and (work / "gateway.log").exists():
                shutil.copyfile(work / "gateway.log", keep_log)
    return _result(window, config, len(batches))


def machine_share(before: Any, after: Any) -> dict[str, float]:
    """The machine's CPU over the window, all processes: busy and I/O-wait, as % of all cores."""
    spent = {field: getattr(after, field) - getattr(before, field) for field in after._fields}
    total = sum(spent.values()) or 1.0
    idle = spent.get("idle", 0.0) + spent.get("iowait", 0.0)
    return {"busy": (total - idle) / total * 100, "iowait": spent.get("iowait", 0.0) / total * 100}


def _summary(messages: list[str]) -> str:
    """The SHOWN_ERRORS most frequent messages with their counts; request ids are masked so that equal errors group."""
    counted = collections.Counter(re.sub(r"\b[0-9a-f]{32}\b", "…", message) for message in messages)
    return " / ".join(f"{count}× {message}" for message, count in counted.most_common(SHOWN_ERRORS)) or "none"


def _delivery_failure(delivery: dict[str, Any]) -> str:
    if delivery.get("error"):
        return str(delivery["error"])[:300]
    if delivery.get("rejected_reason"):
        return f"rejected: {str(delivery['rejected_reason'])[:300]}"
    return "written into the import folder, but the gateway refused the acknowledgement"


def _ms(seconds: float) -> float:
    return round(seconds * 1000, 1)


def _result(window: Window, config: LoadConfig, processes: int) -> dict[str, Any]:
    done = [record for record in window.records if "error" not in record]
    errors = [record["error"] for record in window.records if "error" in record]
    latencies = [record["ended"] - record["began"] for record in done]
    elapsed = max(window.end - window.start, 1e-9)
    acknowledged = [d for d in window.deliveries if d.get("acknowledged")]
    in_window = [d for d in acknowledged if d["done"] <= window.end]
    committed = {record["design_id"]: record["ended"] for record in done}
    failures = [_delivery_failure(d) for d in window.deliveries if not d.get("acknowledged")]
    waits = [d["written"] - committed[d["design_id"]] for d in acknowledged if d["design_id"] in committed]
    p50 = percentile(latencies, 0.50) if latencies else float("nan")
    p99 = percentile(latencies, 0.99) if latencies else float("nan")
    ratio = p99 / p50 if latencies else float("inf")
    cpus = os.cpu_count() or 1
    return {
        "database": "postgresql" if config.database_url else "sqlite",
        "gateway workers": config.workers,
        "technicians / stations / client processes": f"{config.technicians} / {config.stations} / {processes}",
        "design ciphertext": f"{done[0]['bytes']:,} bytes" if done else "n/a",
        "window": f"{elapsed:.1f} s (new uploads during the first {config.seconds:g} s)",
        "uploads completed": len(done),
        "uploads/s": round(len(done) / elapsed, 2),
        "MB/s (ciphertext committed)": round(sum(record["bytes"] for record in done) / elapsed / MB, 1),
        "upload latency p50 (ms)": _ms(p50),
        "upload latency p95 (ms)": _ms(percentile(latencies, 0.95)) if latencies else None,
        "upload latency p99 (ms)": _ms(p99),
        "upload latency max (ms)": _ms(max(latencies)) if latencies else None,
        "p99 / p50": round(ratio, 2),
        "errors": len(errors),
        "errors by message (most frequent first)": _summary(errors),
        "deliveries acknowledged in the window": len(in_window),
        "deliveries acknowledged after it (jobs in hand)": len(acknowledged) - len(in_window),
        "deliveries not acknowledged (rejected or failed)": len(window.deliveries) - len(acknowledged),
        "delivery failures by message": _summary(failures),
        "commit → in the import folder, p50 / p95 (ms; queueing included)": (
            f"{_ms(percentile(waits, 0.5)):.0f} / {_ms(percentile(waits, 0.95)):.0f}" if waits else "n/a"
        ),
        "gateway CPU (% of one core)": round(window.gateway_cpu_seconds / elapsed * 100, 1),
        f"gateway CPU (% of the machine, {cpus} cores)": round(window.gateway_cpu_seconds / elapsed * 100 / cpus, 1),
        "whole machine: busy / waiting for I/O (% of all cores; clients included)": (
            f"{window.machine.get('busy', 0):.0f} / {window.machine.get('iowait', 0):.0f}"
        ),
        "gateway RSS idle (MiB)": round(window.idle_rss / MIB, 1),
        "gateway RSS peak (MiB)": round(window.peak_rss / MIB, 1),
        "target": f"no errors, p99 ≤ {LATENCY_RATIO_TARGET:g} × p50",
        "target_met": not errors and bool(latencies) and ratio <= LATENCY_RATIO_TARGET,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--technicians", type=int, default=32)
    parser.add_argument("--stations", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--size-mb", type=float, default=8, help="design size in MB (default 8)")
    parser.add_argument("--workers", type=int, default=1, help="`dentgate serve --workers N` (default 1)")
    parser.add_argument("--client-processes", type=int, default=4, help="processes driving the technicians")
    database = parser.add_mutually_exclusive_group()
    database.add_argument("--database-url", default=DEFAULT_URL, help="PostgreSQL server URL: a throw-away database "
                          f"is created on it and dropped at the end (default {DEFAULT_URL})")  # fmt: skip
    database.add_argument("--sqlite", action="store_true", help="run on the embedded SQLite instead")
    parser.add_argument("--gateway-log", type=Path, help="keep a copy of the gateway's log in this file")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of the table")
    arguments = parser.parse_args(argv)
    if min(arguments.technicians, arguments.stations, arguments.workers, arguments.client_processes) < 1:
        parser.error("--technicians, --stations, --workers and --client-processes must be at least 1")
    if arguments.seconds <= 0 or arguments.size_mb <= 0:
        parser.error("--seconds and --size-mb must be positive")
    if arguments.sqlite and arguments.workers > 1:
        parser.error("more than one gateway worker needs PostgreSQL")
    config = LoadConfig(arguments.technicians, arguments.stations, arguments.seconds, arguments.size_mb,
                        arguments.workers, arguments.client_processes,
                        None if arguments.sqlite else arguments.database_url)  # fmt: skip
    result = run(config, arguments.gateway_log)
    print_result(result, arguments.json)
    return 0 if result["target_met"] else 1


if __name__ == "__main__":
    sys.exit(main())
