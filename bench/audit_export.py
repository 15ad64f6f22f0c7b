"""Exporting a million audit events: the gateway's memory stays flat, and the export verifies offline.

1. A data directory is migrated, a lab created, and its chain grown to `--events` events (bulk, correctly
   chained: `bench/audit_population.py`); SQLite by default, PostgreSQL with `--database-url`.
2. A real `dentgate serve` process starts on it; a manager logs in (password + TOTP) through the API.
3. Its idle RSS is taken; then `dentgate audit export`'s own code (`clients.audit_export.save_export`)
   streams the whole chain to a file while the gateway's RSS is sampled every 20 ms.
4. The file is verified offline against the signed manifest (`gateway.audit.export.verify_export`),
   then one byte in its middle is flipped and verification must fail.

Target: the gateway's peak RSS stays within 64 MiB of idle while it streams; exit status 1 otherwise.

    python bench/audit_export.py                       # 1,000,000 events on SQLite
    python bench/audit_export.py --events 100000       # a quick run
    python bench/audit_export.py --database-url postgresql+psycopg://postgres@127.0.0.1:5432/test
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from audit_population import populate
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from harness import MIB, RssSampler, gateway_process, print_result, sample_for, say

from clients.audit_export import save_export
from clients.demo import activate, create_lab, login, totp_code
from gateway.audit.export import ExportInvalid, verify_export
from gateway.backends import open_backends
from gateway.db.migrate import migrate
from gateway.settings import Settings

TARGET_GROWTH = 64 * MIB


def bench_schema(database_url: str | None) -> tuple[str | None, str | None]:
    """On PostgreSQL, a fresh schema for this run (dropped at the end); its URL and name."""
    if database_url is None:
        return None, None
    schema = f"bench_{uuid.uuid4().hex[:12]}"
    engine = sa.create_engine(database_url, isolation_level="AUTOCOMMIT")
    with engine.connect() as connection:
        connection.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    engine.dispose()
    separator = "&" if "?" in database_url else "?"
    return f"{database_url}{separator}options=-csearch_path%3D{schema}", schema


def drop_schema(database_url: str, schema: str) -> None:
    engine = sa.create_engine(database_url, isolation_level="AUTOCOMMIT")
    with engine.connect() as connection:
        connection.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
    engine.dispose()


def prepared(work: Path, database_url: str | None, events: int) -> tuple[dict[str, str], str, list[uuid.UUID]]:
    """Migrate, create the lab, grow its chain; the server's environment, the activation secret, the designs."""
    settings = Settings(data_dir=work / "gateway-data", host="127.0.0.1", database_url=database_url)
    backends = open_backends(settings)
    try:
        migrate(backends.engine)
        lab_id, secret = create_lab(backends)
        started = time.perf_counter()
        designs = populate(backends.engine, lab_id, events)
        say(f"{events:,} events chained and stored in {time.perf_counter() - started:.1f} s")
    finally:
        backends.close()
    return ({"DENTGATE_DATABASE_URL": database_url} if database_url else {}), secret, designs


def manager_client(url: str, secret: str):
    totp_secret, _ = activate(url, "manager", secret)
    return login(url, Ed25519PrivateKey.generate(), "manager", totp=totp_code(totp_secret, 1))


@contextlib.contextmanager
def audit_gateway(
    events: int, database_url: str | None
) -> Iterator[tuple[Any, Any, list[uuid.UUID], Path, str | None]]:
    """A gateway process over a lab whose chain holds `events` events, and its manager logged in; yields
    (server process, manager client, design ids, work folder, the run's database URL). Cleans up after."""
    url_for_run, schema = bench_schema(database_url)
    try:
        with tempfile.TemporaryDirectory(prefix="dentgate-bench-audit-") as folder:
            work = Path(folder)
            env, secret, designs = prepared(work, url_for_run, events)
            with gateway_process(work / "gateway-data", work, work / "gateway.log", env) as (server, url):
                yield server, manager_client(url, secret), designs, work, url_for_run
    finally:
        if schema is not None and database_url is not None:
            drop_schema(database_url, schema)


def run(events: int, database_url: str | None) -> dict:
    with audit_gateway(events, database_url) as (server, manager, _, work, _):
        manager.get("/api/v1/audit/events?limit=10")  # warm-up
        idle = int(statistics.median(sample_for(server, 1.0)))
        sampler = RssSampler(server)
        sampler.start()
        started = time.perf_counter()
        output = work / "audit.jsonl"
        manager.timeout = 600
        signed, _ = save_export(manager, {"format": "jsonl"}, output)
        seconds = time.perf_counter() - started
        peak = max(rss for _, rss in sampler.stop())
        size = output.stat().st_size
        started = time.perf_counter()
        with output.open("rb") as lines:
            verified = verify_export(lines, signed, None)
        verify_seconds = time.perf_counter() - started
        with output.open("r+b") as handle:  # one changed byte must fail verification
            handle.seek(size // 2)
            byte = handle.read(1)
            handle.seek(size // 2)
            handle.write(bytes([byte[0] ^ 0x01]))
        try:
            with output.open("rb") as lines:
                verify_export(lines, signed, None)
            tamper_detected = False
        except ExportInvalid:
            tamper_detected = True
    return {
        "database": "postgresql" if database_url else "sqlite",
        "events_exported": verified.count,
        "file_bytes": size,
        "export_seconds": round(seconds, 1),
        "events_per_second": round(verified.count / seconds),
        "gateway_idle_rss_mib": round(idle / MIB, 1),
        "gateway_peak_rss_mib": round(peak / MIB, 1),
        "growth_mib": round((peak - idle) / MIB, 1),
        "target_met": peak - idle <= TARGET_GROWTH,
        "offline_verify_seconds": round(verify_seconds, 1),
        "offline_verified": True,
        "one_flipped_byte_detected": tamper_detected,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--database-url", help="PostgreSQL URL (a throw-away schema is used); default SQLite.")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    result = run(args.events, args.database_url)
    print_result(result, args.json)
    return 0 if result["target_met"] and result["one_flipped_byte_detected"] else 1


if __name__ == "__main__":
    sys.exit(main())
