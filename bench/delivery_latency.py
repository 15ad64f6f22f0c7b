"""Delivery latency: from a technician's commit to the design being in the milling station's import folder.

Everything runs on this machine, on loopback, in a temporary folder that is removed at the end:

1. the database is migrated and the demo's lab created in it (embedded SQLite by default; with `--database-url`,
   a fresh PostgreSQL database created for the run and dropped at the end), then a real `dentgate serve`
   process starts on it;
2. through the HTTP API, a manager sets up one compliant technician (profile, training, attestations, policy
   acknowledged, roster filed) with an approved device, and one approved station (`bench/population.py`);
3. the station runs the real agent loop, `StationAgent.run_forever` with the `station run` default long poll of
   25 s, in a process of its own: claim, download, verify the custody chain, decrypt, check every file (a mesh
   is parsed and checked), write into the import folder atomically, acknowledge;
4. each run, the technician sends the design with `clients.uploader.upload_design` (the `dentgate tech upload`
   code: validate, seal to the station and the archive, sign, POST, PATCH, verify the receipt) under a case
   reference of its own, so the station writes a new file each time. The clock starts when the final PATCH's
   answer reaches the technician (the uploader's progress callback reports the whole size: the design is
   committed). It stops when the agent's `_import` returns in the station process: the file has been written,
   fsynced, renamed into the import folder and the folder fsynced. Both are `time.monotonic()`, one clock for
   every process on the machine. The agent's steps are timed the same way (wrappers on the instance; its code
   is not changed), so the table also splits the latency: wake-up and claim, download, open (decrypt, unpack,
   check), write.

The next run starts once the station has acknowledged the previous one, so the agent is back in its long poll
(as it is when a technician sends a design to an idle mill). One warm-up run comes first and is not counted. At the
end the agent's stop event is set and one more design (not counted) wakes its long poll, so that it ends its loop by
itself instead of being killed mid-request.

The design is a finely tessellated, closed binary STL crown of `--size-mb` MB (`--payload stl`, the default:
what exocad exports), or random bytes as a 3Shape `.dcm`, which the station passes through without parsing
(`--payload dcm`: the transfer alone).

Target: p95 ≤ 1 s. The exit status is 0 when the target holds, 1 when it does not.

    python bench/delivery_latency.py                       # 50 runs of a 20 MB STL, SQLite
    python bench/delivery_latency.py --runs 10 --size-mb 5  # a quick run
    python bench/delivery_latency.py --payload dcm         # the transfer without the station's mesh check
    python bench/delivery_latency.py --database-url postgresql+psycopg://postgres@127.0.0.1:5432/test
    python bench/delivery_latency.py --json                # one JSON object on stdout
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from harness import gateway_process, print_result, say
from population import (
    MB,
    PAYLOADS,
    StationSpec,
    drain,
    percentile,
    prepare_database,
    prepare_people,
    run_station,
    spawn,
    throwaway_database,
    write_design,
)

from clients.uploader import DesignRequest, upload_design

TARGET_P95_SECONDS = 1.0
STATION_WAIT_SECONDS = 25.0  # `dentgate station run`'s default long poll
DELIVERY_TIMEOUT_SECONDS = 60.0
PHASES = (
    ("commit → claimed", "claimed"),
    ("claimed → downloaded", "downloaded"),
    ("downloaded → opened and checked", "opened"),
    ("opened → written", "written"),
)


def _ms(seconds: float) -> float:
    return round(seconds * 1000, 1)


def run(runs: int, size_mb: float, payload: str, database_url: str | None) -> dict[str, Any]:
    samples: list[dict[str, float]] = []
    with (
        tempfile.TemporaryDirectory(prefix="dentgate-bench-delivery-") as folder,
        throwaway_database(database_url) as url_for_run,
    ):
        work = Path(folder)
        say(f"Working in {work} ({'PostgreSQL' if url_for_run else 'SQLite'})")
        lab_id, secret, env = prepare_database(work / "gateway-data", url_for_run)
        with gateway_process(work / "gateway-data", work, work / "gateway.log", env) as (_, url):
            say(f"Gateway ready at {url}; setting up the lab through the API")
            lab = prepare_people(url, lab_id, secret, work, technicians=1, stations=1, say=say)
            technician, station = lab.technicians[0], lab.stations[0]
            (work / "cad-export").mkdir()
            design = write_design(work / "cad-export", payload, int(size_mb * MB))
            design_bytes = design.stat().st_size
            say(f"Design: {design.name}, {design_bytes:,} bytes")

            context = spawn()
            reports, stop = context.Queue(), context.Event()
            spec = StationSpec.of(lab, station, work, STATION_WAIT_SECONDS, remove_delivered=True)
            agent = context.Process(target=run_station, args=(spec, reports, stop), name="station-agent", daemon=True)
            agent.start()

            def deliver(number: int) -> dict[str, float]:
                committed: list[float] = []

                def progress(done: int, total: int) -> None:
                    if done >= total and not committed:
                        committed.append(time.monotonic())

                request = DesignRequest(
                    files=[design],
                    case_reference=f"BENCH-DELIVERY-{number:04d}",
                    station_ids=[station.station_id],
                    process="design",
                    remote_location="home",
                    teeth=["11"],
                    material="zirconia",
                )
                uploaded = upload_design(
                    technician.client, request, technician.account_id, technician.device_id, lab.gateway_key, progress
                )
                returned = time.monotonic()
                deadline = returned + DELIVERY_TIMEOUT_SECONDS
                while (report := drain(reports, max(0.0, deadline - time.monotonic()))) is not None:
                    if report.get("design_id") == str(uploaded.design_id) or "error" in report:
                        break
                if report is None:
                    raise RuntimeError(
                        f"design {uploaded.design_id} did not reach the station within {DELIVERY_TIMEOUT_SECONDS:.0f} s"
                    )
                if "error" in report or not report["acknowledged"]:
                    raise RuntimeError(f"the station did not import design {uploaded.design_id}: {report}")
                if report["written_bytes"] != design_bytes:
                    raise RuntimeError(f"the station wrote {report['written_bytes']} bytes, not {design_bytes}")
                return {"committed": committed[0] if committed else returned, **report}

            try:
                deliver(0)  # warm-up: the agent's session, connections, caches
                say(f"Warm-up delivered; measuring {runs} deliveries")
                for number in range(1, runs + 1):
                    samples.append(deliver(number))
                    if number % 10 == 0 or number == runs:
                        latest = samples[-1]["written"] - samples[-1]["committed"]
                        say(f"  {number}/{runs} delivered (latest {_ms(latest)} ms)")
            finally:
                stop.set()
                if agent.is_alive():
                    try:  # one last design wakes the agent's long poll; it delivers it, then sees the stop
                        deliver(runs + 1)
                    except Exception as error:  # noqa: BLE001 (the run's own failure, if any, is the one to show)
                        say(f"(the closing delivery failed: {error})")
                    agent.join(timeout=10)
                if agent.is_alive():
                    agent.terminate()
                    agent.join()

    latencies = [sample["written"] - sample["committed"] for sample in samples]
    p95 = percentile(latencies, 0.95)
    result: dict[str, Any] = {
        "database": "postgresql" if database_url else "sqlite",
        "design": f"{PAYLOADS[payload][0]}, {design_bytes:,} bytes ({design_bytes / MB:.1f} MB)",
        "runs": len(latencies),
        "p50_ms": _ms(percentile(latencies, 0.50)),
        "p95_ms": _ms(p95),
        "min_ms": _ms(min(latencies)),
        "max_ms": _ms(max(latencies)),
        "mean_ms": _ms(statistics.fmean(latencies)),
        "target": f"p95 ≤ {TARGET_P95_SECONDS * 1000:.0f} ms",
        "target_met": p95 <= TARGET_P95_SECONDS,
    }
    start = "committed"
    for label, mark in PHASES:  # where the time goes, median of each step
        result[f"median {label} (ms)"] = _ms(statistics.median(sample[mark] - sample[start] for sample in samples))
        start = mark
    result["median written → acknowledged (ms, after the clock stops)"] = _ms(
        statistics.median(sample["done"] - sample["written"] for sample in samples)
    )
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=50, help="measured deliveries (default 50)")
    parser.add_argument("--size-mb", type=float, default=20, help="design size in MB (default 20)")
    parser.add_argument(
        "--payload", choices=sorted(PAYLOADS), default="stl", help="binary STL crown (default) or opaque .dcm"
    )
    parser.add_argument(
        "--database-url",
        help="PostgreSQL server URL: a throw-away database is created on it and "
        "dropped at the end (default: the embedded SQLite)",
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of the table")
    arguments = parser.parse_args(argv)
    if arguments.runs < 1 or arguments.size_mb <= 0:
        parser.error("--runs and --size-mb must be positive")
    result = run(arguments.runs, arguments.size_mb, arguments.payload, arguments.database_url)
    print_result(result, arguments.json)
    return 0 if result["target_met"] else 1


if __name__ == "__main__":
    sys.exit(main())
