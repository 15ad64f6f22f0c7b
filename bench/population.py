"""What the delivery and load benchmarks share: a throw-away database, a lab of compliant technicians and approved
stations set up through the HTTP API, design files, and a station agent running in its own process.

Everything here goes through the product's own code: the lab's people are created, verified, trained, attested,
enrolled and approved with the same API calls a manager makes (`clients.demo` and `clients.demo_compliance` show
them one by one); designs are sealed with `clients.sealing`; manifests are signed as `clients.uploader` signs
them; stations run `clients.station_agent.StationAgent.run_forever`.
"""

from __future__ import annotations

import contextlib
import math
import multiprocessing
import os
import queue
import struct
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psutil
import pyrage
import sqlalchemy as sa
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from harness import Sender, design_manifest

from clients.api import GatewayClient
from clients.demo import activate, approved_device, create_lab, demo_posture, login, totp_code, verified_technician
from clients.demo_compliance import TRAINING, adopt_guideline
from clients.identities import StationIdentity
from clients.sample_design import crown_triangles
from clients.sealing import SealedBundle, seal_bundle
from clients.uploader import gateway_key
from gateway.backends import open_backends
from gateway.db.migrate import migrate
from gateway.identity.proofs import key_fingerprint
from gateway.policy import default_policy
from gateway.settings import Settings

MB = 1_000_000
SETUP_THREADS = 8


# --- the database and the gateway process ---------------------------------------------------------------------


@contextlib.contextmanager
def throwaway_database(database_url: str | None) -> Iterator[str | None]:
    """On PostgreSQL, a fresh database for the run, dropped (with any connection left to it) at the end; its URL.

    `database_url` names the server and a database the role may connect to (e.g. `.../test`); None means the
    embedded SQLite, and yields None.
    """
    if database_url is None:
        yield None
        return
    server = sa.make_url(database_url)
    name = f"dentgate_bench_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(server, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as connection:
            connection.execute(sa.text(f'CREATE DATABASE "{name}"'))
        try:
            yield server.set(database=name).render_as_string(hide_password=False)
        finally:
            with admin.connect() as connection:
                connection.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        admin.dispose()


def prepare_database(data_dir: Path, database_url: str | None) -> tuple[uuid.UUID, str, dict[str, str]]:
    """Migrate the database and create the demo's lab and first manager, in this process, before the server
    starts; the lab id, the manager's activation secret, and the environment the server needs."""
    settings = Settings(data_dir=data_dir, host="127.0.0.1", database_url=database_url)
    backends = open_backends(settings)
    try:
        migrate(backends.engine)
        lab_id, secret = create_lab(backends)
    finally:
        backends.close()
    return lab_id, secret, ({"DENTGATE_DATABASE_URL": database_url} if database_url else {})


def tree_cpu_seconds(process: psutil.Process) -> float:
    """User + system CPU seconds of a process and its living children (workers, if any)."""
    total = 0.0
    members = [process]
    with contextlib.suppress(psutil.NoSuchProcess):
        members += process.children(recursive=True)
    for member in members:
        with contextlib.suppress(psutil.NoSuchProcess, psutil.ZombieProcess):
            times = member.cpu_times()
            total += times.user + times.system
    return total


# --- the lab's people and stations, through the API -----------------------------------------------------------


@dataclass(frozen=True)
class Technician:
    username: str
    account_id: uuid.UUID
    device_id: uuid.UUID
    device_key: Ed25519PrivateKey
    client: GatewayClient  # logged in from the approved device, with a compliant posture


@dataclass(frozen=True)
class Station:
    name: str
    station_id: uuid.UUID
    identity: StationIdentity


@dataclass(frozen=True)
class Lab:
    url: str
    lab_id: uuid.UUID
    manager: GatewayClient
    archive_recipient: str
    gateway_key: bytes
    technicians: list[Technician]
    stations: list[Station]


def _profile(number: int) -> dict[str, Any]:
    return {
        "full_name": f"技工 {number:03d}",
        "licence_number": f"第{100000 + number:06d}号",
        "phone": "075-000-1234",
        "location_label": "自宅",
        "location_address": f"京都府京都市左京区下鴨{number}-2-3",
        "prefecture": "京都府",
        "employed_by_lab": True,
    }


def _posture(number: int) -> dict[str, Any]:
    return demo_posture() | {"serial_number": f"BENCH-{number:04d}", "hostname": f"CAD-PC-{number:03d}"}


@dataclass(frozen=True)
class _Activated:
    username: str
    account_id: str
    totp_secret: str
    recovery_code: str


def _new_technician(url: str, manager: GatewayClient, number: int) -> _Activated:
    """Account, identity verified in person, activated, remote-work profile and the manager's attestations."""
    username = f"tech{number:03d}"
    account_id, totp_secret, recovery = verified_technician(url, manager, username)
    manager.request("PUT", f"/api/v1/accounts/{account_id}/profile", _profile(number))
    for kind in default_policy().attestation.required:
        manager.post(f"/api/v1/accounts/{account_id}/attestations", {"kind": kind})
    return _Activated(username, account_id, totp_secret, recovery[0])


def _equip_technician(url: str, manager: GatewayClient, number: int, activated: _Activated) -> Technician:
    """Enrol a device with its own key, have it approved, log in from it, acknowledge the lab's policy."""
    username = activated.username
    device_key, device = approved_device(
        url, manager, username, activated.recovery_code, f"CAD PC {number:03d}", _posture(number)
    )
    client = login(url, device_key, username, posture=_posture(number), totp=totp_code(activated.totp_secret, 1))
    version = client.get("/api/v1/documents/security-policy")["document"]["version"]
    client.post("/api/v1/documents/security-policy/acknowledgements", {"version": version})
    return Technician(username, uuid.UUID(activated.account_id), uuid.UUID(device["id"]), device_key, client)


def _new_station(url: str, manager: GatewayClient, number: int) -> Station:
    identity = StationIdentity(Ed25519PrivateKey.generate(), pyrage.x25519.Identity.generate())
    name = f"Mill {number}"
    invite = manager.post(
        "/api/v1/stations/invitations",
        {
            "name": name,
            "maker": "Roland DGA",
            "model": "DWX-52D",
            "serial_number": f"BENCH-52D-{number:03d}",
            "location": "Milling room",
        },
    )
    enrolled = GatewayClient(url, identity.signing_key).post(
        "/api/v1/stations/enrol",
        {"enrolment_code": invite["enrolment_code"], "age_recipient": identity.age_recipient},
        authenticated=False,
    )
    fingerprint = key_fingerprint(identity.signing_key.public_key().public_bytes_raw())
    manager.post(f"/api/v1/stations/{enrolled['id']}/approve", {"fingerprint": fingerprint})
    return Station(name, uuid.UUID(enrolled["id"]), identity)


def _parallel(function: Callable[..., Any], argument_lists: list[tuple]) -> list[Any]:
    with ThreadPoolExecutor(SETUP_THREADS) as pool:
        return list(pool.map(lambda arguments: function(*arguments), argument_lists))


def prepare_people(
    url: str, lab_id: uuid.UUID, secret: str, work: Path, technicians: int, stations: int, say: Callable[[str], None]
) -> Lab:
    """The manager activates and adopts the guideline, registers the archive key, approves `stations` stations
    and makes `technicians` technicians ready for remote work, through the API, several at a time."""
    started = time.perf_counter()
    manager_totp, _ = activate(url, "manager", secret)
    manager = login(url, Ed25519PrivateKey.generate(), "manager", totp=totp_code(manager_totp, 1))
    archive = pyrage.x25519.Identity.generate()
    (work / "archive-identity.txt").write_text(str(archive) + "\n")
    manager.request("PUT", "/api/v1/lab/archive-key", {"age_recipient": str(archive.to_public())})
    adopt_guideline(manager, lambda _: None)  # the manager's training, the security policy and incident plan

    made = _parallel(_new_technician, [(url, manager, n) for n in range(1, technicians + 1)])
    topics = list(default_policy().training.required_topics("technician"))
    held_on = (datetime.now(UTC) - timedelta(days=1)).date().isoformat()
    manager.post(
        "/api/v1/training",
        {**TRAINING, "held_on": held_on, "topics": topics, "attendees": [person.account_id for person in made]},
    )
    people = _parallel(_equip_technician, [(url, manager, n, person) for n, person in enumerate(made, start=1)])
    mills = _parallel(_new_station, [(url, manager, n) for n in range(1, stations + 1)])
    manager.download("POST", "/api/v1/roster/exports", {"format": "pdf", "lang": "ja"})  # file the roster (G3)

    blocked = [(t.username, r["failures"]) for t in people if (r := t.client.get("/api/v1/me/readiness"))["failures"]]
    if blocked:
        raise RuntimeError(f"technicians who may not upload: {blocked[:3]}")
    say(
        f"Lab ready in {time.perf_counter() - started:.1f} s: {technicians} compliant technicians, each with an "
        f"approved device of its own, and {stations} approved stations"
    )
    return Lab(url, lab_id, manager, str(archive.to_public()), gateway_key(manager), people, mills)


# --- designs -------------------------------------------------------------------------------------------------------


def write_crown_stl(path: Path, size: int) -> int:
    """The demo's closed crown (`clients.sample_design`) as a binary STL of about `size` bytes, finely
    tessellated (four triangles of 50 bytes per segment): a valid mesh the station parses and checks. Its size."""
    segments = max(12, (size - 84) // 200)
    record = struct.Struct("<12fH")
    with path.open("wb") as out:
        out.write(b"DentGate bench crown".ljust(80, b"\0") + struct.pack("<I", 4 * segments))
        triangles = crown_triangles(segments)
        for first in range(0, len(triangles), 4096):
            out.write(
                b"".join(
                    record.pack(0.0, 0.0, 0.0, *(c for vertex in triangle for c in vertex), 0)
                    for triangle in triangles[first : first + 4096]
                )
            )
    return path.stat().st_size


def write_random_dcm(path: Path, size: int) -> int:
    """`size` random bytes as a 3Shape `.dcm` design: an opaque format the station passes through unparsed."""
    with path.open("wb") as out:
        remaining = size
        while remaining:
            piece = os.urandom(min(1 << 20, remaining))
            out.write(piece)
            remaining -= len(piece)
    return size


PAYLOADS = {
    "stl": ("crown.stl", "model/stl", write_crown_stl),
    "dcm": ("design.dcm", "application/octet-stream", write_random_dcm),
}


def write_design(folder: Path, payload: str, size: int) -> Path:
    name, _, writer = PAYLOADS[payload]
    path = folder / name
    writer(path, size)
    return path


@dataclass(frozen=True)
class SealedDesign:
    """A design sealed to one station and the archive, ready to be sent again and again under new design ids."""

    path: str
    station_id: str
    station_recipient: str
    archive_recipient: str
    media_type: str
    bundle: SealedBundle


def seal_design(design: Path, out: Path, media_type: str, station: Station, archive_recipient: str) -> SealedDesign:
    """Seal the design file with `clients.sealing.seal_bundle`, as the uploader does, into `out`."""
    with out.open("wb") as ciphertext:
        bundle = seal_bundle([(design.name, design)], ciphertext, [station.identity.age_recipient, archive_recipient])
    return SealedDesign(
        str(out), str(station.station_id), station.identity.age_recipient, archive_recipient, media_type, bundle
    )


def signed_manifest(
    sealed: SealedDesign,
    lab_id: uuid.UUID | str,
    technician_id: uuid.UUID | str,
    device_id: uuid.UUID | str,
    device_key: Ed25519PrivateKey,
    case_reference: str,
) -> dict[str, Any]:
    """A fresh design id and the manifest `clients.uploader.upload_design` builds for it, signed by the device."""
    sender = Sender(lab_id, technician_id, device_id, device_key, sealed.station_id, sealed.station_recipient,
                    sealed.archive_recipient)  # fmt: skip
    files = [{"name": f.name, "media_type": sealed.media_type, "size": f.size, "sha256": f.sha256}
             for f in sealed.bundle.files]  # fmt: skip
    return design_manifest(sender, files, sealed.bundle.sealed, case_reference)


# --- a station agent in a process of its own --------------------------------------------------------------------


@dataclass(frozen=True)
class StationSpec:
    """What a station process needs: the gateway, the station's keys (raw), its folders and its long-poll wait."""

    url: str
    station_id: str
    signing_seed: bytes
    age_identity: str
    gateway_key: bytes
    import_dir: str
    work_dir: str
    wait: float
    remove_delivered: bool = False  # delete each delivered file once acknowledged (keeps the disk use flat)

    @classmethod
    def of(cls, lab: Lab, station: Station, folder: Path, wait: float, remove_delivered: bool = False) -> StationSpec:
        number = station.name.split()[-1]
        return cls(
            lab.url,
            str(station.station_id),
            station.identity.signing_key.private_bytes_raw(),
            str(station.identity.age_identity),
            lab.gateway_key,
            str(folder / f"cam-import-{number}"),
            str(folder / f"station-work-{number}"),
            wait,
            remove_delivered,
        )


def run_station(spec: StationSpec, reports: Any, stop: Any) -> None:
    """The real agent loop (`StationAgent.run_forever`) until `stop` is set, in a process of its own.

    The agent's own steps are timed by wrapping them on the instance (their code is untouched); for each job
    a dict goes to `reports`: monotonic times when the job arrived (claimed), was downloaded, opened and
    checked, written into the import folder (`_import` returned: renamed into place and the folder fsynced),
    and acknowledged (`run_once` returned), with the design id, the files written and the outcome.
    """
    from clients.station_agent import StationAgent  # imported here: a fresh (spawned) process

    identity = StationIdentity(
        Ed25519PrivateKey.from_private_bytes(spec.signing_seed), pyrage.x25519.Identity.from_str(spec.age_identity)
    )
    agent = StationAgent(
        spec.url, identity, spec.station_id, Path(spec.import_dir), spec.gateway_key, Path(spec.work_dir)
    )
    marks: dict[str, float] = {}

    def timed(name: str, method: Callable[..., Any], at_start: bool = False) -> Callable[..., Any]:
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            if at_start:
                marks[name] = time.monotonic()
            result = method(*args, **kwargs)
            if not at_start:
                marks[name] = time.monotonic()
            return result

        return wrapper

    agent._verify_custody = timed("claimed", agent._verify_custody, at_start=True)  # type: ignore[method-assign]
    agent._download = timed("downloaded", agent._download)  # type: ignore[method-assign]
    agent._open = timed("opened", agent._open)  # type: ignore[method-assign]
    agent._import = timed("written", agent._import)  # type: ignore[method-assign]
    run_once = agent.run_once

    def reported_run_once(wait: float = 0) -> Any:
        marks.clear()
        try:
            delivery = run_once(wait)
        except Exception as error:
            if marks:  # a job was in hand: report it failed
                reports.put({"station_id": spec.station_id, "error": f"{type(error).__name__}: {error}", **marks})
            raise
        if delivery is not None:
            report = {
                "station_id": spec.station_id,
                "design_id": delivery.design_id,
                "acknowledged": delivery.acknowledged,
                "rejected_reason": delivery.rejected_reason,
                "written_files": [str(p) for p in delivery.written],
                "written_bytes": sum(p.stat().st_size for p in delivery.written),
                **marks,
                "done": time.monotonic(),
            }
            if spec.remove_delivered:
                for path in delivery.written:
                    path.unlink(missing_ok=True)
            reports.put(report)
        return delivery

    agent.run_once = reported_run_once  # type: ignore[method-assign]
    agent.run_forever(stop, wait=spec.wait)  # a multiprocessing.Event has the is_set() and wait() it uses


def spawn() -> multiprocessing.context.SpawnContext:
    """Fresh interpreters for the client processes: no state (threads, sockets) inherited from the bench."""
    return multiprocessing.get_context("spawn")


def drain(reports: Any, timeout: float) -> dict | None:
    try:
        return reports.get(timeout=timeout)
    except queue.Empty:
        return None


def percentile(values: list[float], fraction: float) -> float:
    """The nearest-rank percentile (`fraction` in 0..1) of `values`."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(fraction * len(ordered)) - 1)]
