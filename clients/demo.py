"""`dentgate demo`: the whole job on one PC, end to end, narrated: a real gateway on loopback, a lab, people,
a device, a station, a crown designed "at home", delivered into the station's import folder, and the
audit chain verified. Every step goes through the same HTTP API and libraries a real lab uses.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pyotp
import pyrage
import uvicorn
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from clients.api import GatewayClient
from clients.demo_compliance import adopt_guideline, ready_for_remote_work, register_remote_worker, show_compliance
from clients.identities import StationIdentity
from clients.sample_design import crown_stl
from clients.station_agent import StationAgent
from clients.uploader import DesignRequest, gateway_key, upload_design
from gateway.app import create_app
from gateway.audit.service import verify
from gateway.backends import open_backends
from gateway.db.engine import transaction
from gateway.db.migrate import migrate
from gateway.identity.accounts import init_lab
from gateway.identity.proofs import key_fingerprint
from gateway.policy import default_policy
from gateway.settings import Settings

LAB = "DentGate Demo Lab"
PASSWORD = "demo zirconia crown milling 2026"  # noqa: S105 (the demo's throw-away accounts)


@dataclass(frozen=True)
class DemoResult:
    original_file: Path
    delivered_file: Path
    design_id: uuid.UUID
    receipt: dict[str, Any]
    audit_verified: bool
    audit_events: int
    gateway_url: str
    compliance_report: Path

    def as_json(self) -> dict[str, Any]:
        return {
            "original_file": str(self.original_file),
            "delivered_file": str(self.delivered_file),
            "design_id": str(self.design_id),
            "receipt": self.receipt,
            "audit_verified": self.audit_verified,
            "audit_events": self.audit_events,
            "gateway_url": self.gateway_url,
            "compliance_report": str(self.compliance_report),
        }


@contextlib.contextmanager
def running_gateway(settings: Settings) -> Iterator[tuple[str, Any]]:
    """A real gateway (uvicorn, HTTP on a free loopback port) on `settings`, migrated; yields (url, backends)."""
    backends = open_backends(settings)
    migrate(backends.engine)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = uvicorn.Server(
        uvicorn.Config(create_app(settings, backends), host="127.0.0.1", port=port, log_config=None, access_log=False)
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the demo gateway did not start")
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}", backends
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def totp_code(secret: str, steps_ahead: int = 0) -> str:
    return pyotp.TOTP(secret).at(datetime.now(UTC) + timedelta(seconds=30 * steps_ahead))


def activate(url: str, username: str, secret: str) -> tuple[str, list[str]]:
    client = GatewayClient(url, Ed25519PrivateKey.generate())
    body = {"lab": LAB, "username": username, "activation_secret": secret}
    totp_secret = client.post("/api/v1/auth/activate", {**body, "password": PASSWORD}, authenticated=False)[
        "totp_secret"
    ]
    codes = client.post("/api/v1/auth/activate/confirm", {**body, "totp": totp_code(totp_secret)}, authenticated=False)
    return totp_secret, codes["recovery_codes"]


def login(url: str, key: Ed25519PrivateKey, username: str, posture: dict | None = None, **factor: str) -> GatewayClient:
    client = GatewayClient(url, key)
    body: dict[str, Any] = {"lab": LAB, "username": username, "password": PASSWORD, **factor}
    if posture is not None:
        body["posture"] = posture
    client.token = client.post("/api/v1/auth/login", body, authenticated=False)["token"]
    return client


def demo_posture() -> dict[str, Any]:
    """A compliant posture report as the Windows collector would send it (the demo's PC is not checked)."""
    now = datetime.now(UTC)
    return {
        "os_family": "windows", "os_name": "Microsoft Windows 11 Pro", "os_version": "10.0.22631", "os_build": "22631",
        "serial_number": "DEMO-0001", "hostname": "CAD-PC", "user": "tanaka",
        "last_update": (now - timedelta(days=3)).date().isoformat(),
        "antimalware": [{"name": "Microsoft Defender Antivirus", "enabled": True, "up_to_date": True}],
        "disk_encryption": True, "firewall_enabled": True, "bluetooth_enabled": False, "adhoc_wifi_enabled": False,
        "network": {"kind": "wired", "wifi_ssid": None, "wifi_security": None, "wifi_open": None},
        "removable_media_blocked": True,
        "installed_applications": [{"name": "exocad DentalCAD", "version": "3.2", "publisher": "exocad GmbH"}],
        "cloud_sync_clients": [], "collected_at": now.isoformat(), "collector_version": "demo",
    }  # fmt: skip


@dataclass(frozen=True)
class DemoLab:
    """A lab ready for transfers: a manager and a technician logged in (from an approved device), a station."""

    url: str
    lab_id: uuid.UUID
    manager: GatewayClient
    technician: GatewayClient
    technician_id: uuid.UUID
    device_id: uuid.UUID
    station_id: uuid.UUID
    gateway_key: bytes


def create_lab(backends: Any) -> tuple[uuid.UUID, str]:
    """The demo lab and its first manager, straight in the database (as `dentgate admin init` does)."""
    with transaction(backends.sessions) as session:
        issued = init_lab(session, LAB, "manager", default_policy().identity)
        return issued.account.lab_id, issued.activation_secret


def verified_technician(url: str, manager: GatewayClient, username: str) -> tuple[str, str, list[str]]:
    """A new technician account, identity verified in person by `manager`, then activated: its id, TOTP secret
    and recovery codes."""
    created = manager.post("/api/v1/accounts", {"username": username, "role": "technician"})
    account_id = created["account"]["id"]
    verification = {
        "method": "in-person",
        "document_type": "driver-licence",
        "verified_on": datetime.now(UTC).date().isoformat(),
    }
    manager.post(f"/api/v1/accounts/{account_id}/identity-verification", verification)
    totp_secret, recovery = activate(url, username, created["activation_secret"])
    return account_id, totp_secret, recovery


def approved_device(
    url: str, manager: GatewayClient, username: str, recovery_code: str, name: str, posture: dict[str, Any]
) -> tuple[Ed25519PrivateKey, dict[str, Any]]:
    """A device with a fresh key of its own, enrolled by `username` (a recovery-code login) and approved by
    `manager` as lab-lent: its key and the gateway's record of it."""
    device_key = Ed25519PrivateKey.generate()
    enrolling = login(url, device_key, username, recovery_code=recovery_code)
    device = enrolling.post("/api/v1/devices", {"name": name, "posture": posture})["device"]
    enrolling.close()
    manager.post(f"/api/v1/devices/{device['id']}/approve", {"ownership": "lab-lent"})
    return device_key, device


def prepare_lab(
    url: str,
    lab_id: uuid.UUID,
    activation_secret: str,
    workdir: Path,
    station_identity: StationIdentity,
    say: Callable[[str], None],
) -> DemoLab:
    """Through the API: the manager activates, registers the archive key, adds and verifies a technician whose
    device is enrolled and approved, and approves a station with `station_identity`."""
    manager_totp, _ = activate(url, "manager", activation_secret)
    manager = login(url, Ed25519PrivateKey.generate(), "manager", totp=totp_code(manager_totp, 1))
    say("Manager activated: password + TOTP, ten recovery codes; logged in with a key-bound session")

    archive = pyrage.x25519.Identity.generate()
    archive_file = workdir / "archive-identity.txt"
    archive_file.write_text(str(archive) + "\n")
    archive_file.chmod(0o600)
    manager.request("PUT", "/api/v1/lab/archive-key", {"age_recipient": str(archive.to_public())})
    say(f"Archive key registered; its private half is in {archive_file} (keep it offline)")
    adopt_guideline(manager, say)

    technician_id, tech_totp, recovery = verified_technician(url, manager, "tanaka")
    say("Technician tanaka created, identity verified in person, account activated")
    register_remote_worker(manager, technician_id, say)

    device_key, device = approved_device(url, manager, "tanaka", recovery[0], "CAD PC", demo_posture())
    tech = login(url, device_key, "tanaka", posture=demo_posture(), totp=totp_code(tech_totp, 1))
    say("Device enrolled with its own key and approved (lab-lent); technician logged in from it")
    ready_for_remote_work(manager, tech, say)

    invite = manager.post("/api/v1/stations/invitations", {"name": "Mill 1", "maker": "Roland DGA",
                          "model": "DWX-52D", "serial_number": "DEMO-52D", "location": "Milling room"})  # fmt: skip
    enrolled = GatewayClient(url, station_identity.signing_key).post(
        "/api/v1/stations/enrol",
        {"enrolment_code": invite["enrolment_code"], "age_recipient": station_identity.age_recipient},
        authenticated=False,
    )
    fingerprint = key_fingerprint(station_identity.signing_key.public_key().public_bytes_raw())
    manager.post(f"/api/v1/stations/{enrolled['id']}/approve", {"fingerprint": fingerprint})
    say(f"Station 'Mill 1' enrolled and approved after comparing its fingerprint {fingerprint}")
    return DemoLab(
        url, lab_id, manager, tech, uuid.UUID(technician_id), uuid.UUID(device["id"]), uuid.UUID(enrolled["id"]),
        gateway_key(tech),
    )  # fmt: skip


def run_demo(workdir: Path, say: Callable[[str], None]) -> DemoResult:
    """Run the whole flow in `workdir`; `say` narrates each step."""
    workdir.mkdir(parents=True, exist_ok=True)
    settings = Settings(data_dir=workdir / "gateway-data", host="127.0.0.1")
    with running_gateway(settings) as (url, backends):
        say(f"Gateway running at {url} (SQLite and local storage in {workdir / 'gateway-data'})")
        station_identity = StationIdentity(Ed25519PrivateKey.generate(), pyrage.x25519.Identity.generate())
        lab_id, activation_secret = create_lab(backends)
        say(f"Lab {LAB!r} created with its first manager")
        lab = prepare_lab(url, lab_id, activation_secret, workdir, station_identity, say)
        original = workdir / "cad-export" / "crown_11.stl"
        original.parent.mkdir(exist_ok=True)
        original.write_bytes(crown_stl())
        uploaded = upload_design(
            lab.technician,
            DesignRequest(files=[original], case_reference="DEMO-0001", station_ids=[lab.station_id],
                          process="design", remote_location="home", teeth=["11"], material="zirconia"),
            lab.technician_id, lab.device_id, lab.gateway_key,
        )  # fmt: skip
        say(
            f"Crown validated, encrypted on the device, signed, uploaded: design {uploaded.design_id}; receipt verified"
        )

        import_dir = workdir / "cam-import"
        import_dir.mkdir(exist_ok=True)
        agent = StationAgent(
            url, station_identity, lab.station_id, import_dir, lab.gateway_key, workdir / "station-work"
        )
        delivery = agent.run_once(wait=5)
        if delivery is None or not delivery.written:
            raise RuntimeError("the station received nothing")
        delivered = Path(delivery.written[0])
        say(f"Station verified, decrypted and wrote {delivered}; acknowledgement signed and accepted")

        with backends.sessions() as session:
            chain = verify(session, lab.lab_id, backends.keys.public_key())
        say(f"Audit chain verified: {chain.count} events, unbroken")
        report = show_compliance(lab.manager, "DEMO-0001", workdir, say)
        return DemoResult(
            original, delivered, uploaded.design_id, uploaded.signed_receipt, True, chain.count, url, report
        )
