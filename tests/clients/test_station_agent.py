"""The station agent end to end against the app: claim, resumable download, verify, import, acknowledge or reject."""

from __future__ import annotations

import io
import json
import struct
import threading
import uuid
from pathlib import Path

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from pydantic import ValidationError

from clients.api import ApiError
from clients.identities import StationIdentity
from clients.sealing import BundleRefused, SealBroken, open_stream, seal_bundle
from clients.station_agent import (
    GatewayKeyMismatch,
    StationAgent,
    load_pinned_gateway_key,
    load_station_record,
    pin_gateway_key,
    save_station_record,
)
from gateway.transfer.manifest import Manifest, ManifestFile, ManifestRecipient, sign_manifest
from gateway.transfer.models import Design
from tests.gateway_fixtures import STORES, app_settings, running_app
from tests.transfer.scene import patch

CASE = "2026-1125-001"


@pytest.fixture
def gateway(request, tmp_path, database_url):
    """The app on a local directory; tests of what the agent reads from storage also run on S3 (indirect)."""
    yield from running_app(app_settings(request, getattr(request, "param", "local"), tmp_path, database_url))


on_each_store = pytest.mark.parametrize("gateway", STORES, indirect=True)


def tetrahedron_stl(size: float = 10.0) -> bytes:
    """A closed, consistently oriented binary STL tetrahedron, `size` mm along each axis."""
    v = [(0, 0, 0), (size, 0, 0), (0, size, 0), (0, 0, size)]
    faces = [(0, 2, 1), (0, 1, 3), (0, 3, 2), (1, 2, 3)]
    out = io.BytesIO()
    out.write(b"DentGate station agent test".ljust(80, b"\0"))
    out.write(struct.pack("<I", len(faces)))
    for face in faces:
        out.write(struct.pack("<3f", 0, 0, 0))
        for index in face:
            out.write(struct.pack("<3f", *v[index]))
        out.write(b"\0\0")
    return out.getvalue()


def sealed_bundle(scene: dict, tmp_path: Path, files: dict[str, bytes], case_reference: str = CASE):
    """Seal `files` as a bundle to the station and the archive; the signed manifest (JSON) and the ciphertext."""
    source = tmp_path / f"src-{uuid.uuid4().hex}"
    source.mkdir()
    pairs = []
    for name, content in files.items():
        (source / name).write_bytes(content)
        pairs.append((name, source / name))
    ciphertext = io.BytesIO()
    recipients = [str(scene["station_age"].to_public()), str(scene["archive"].to_public())]
    bundle = seal_bundle(pairs, ciphertext, recipients)
    technician = scene["technician"]
    manifest = Manifest(
        format="dentgate-manifest-v1",
        design_id=uuid.uuid4(),
        lab_id=uuid.UUID(scene["lab_id"]),
        case_reference=case_reference,
        files=[ManifestFile(name=e.name, media_type="model/stl", size=e.size, sha256=e.sha256) for e in bundle.files],
        teeth=[],
        material="zirconia",
        process="design",
        remote_location="home",
        target_stations=[uuid.UUID(scene["station_id"])],
        recipients=[
            ManifestRecipient(kind="station", station_id=uuid.UUID(scene["station_id"]), age_recipient=recipients[0]),
            ManifestRecipient(kind="archive", station_id=None, age_recipient=recipients[1]),
        ],
        technician_id=uuid.UUID(technician.account_id),
        device_id=uuid.UUID(scene["device_id"]),
        created_at=technician.gateway.clock(),
        ciphertext_size=bundle.sealed.ciphertext_size,
        ciphertext_sha256=bundle.sealed.ciphertext_sha256,
    )
    return sign_manifest(manifest, technician.key).model_dump(mode="json"), ciphertext.getvalue()


def upload(scene: dict, tmp_path: Path, files: dict[str, bytes], case_reference: str = CASE) -> str:
    manifest, ciphertext = sealed_bundle(scene, tmp_path, files, case_reference)
    technician = scene["technician"]
    started = technician.call("POST", "/api/v1/uploads", {"signed_manifest": manifest})
    assert started.status_code in (200, 201), started.text
    done = patch(technician, started.json()["upload_id"], 0, ciphertext)
    assert done.status_code == 200, done.text
    return done.json()["design_id"]


def make_agent(scene: dict, tmp_path: Path, pinned: bytes | None = None, transport=None) -> StationAgent:
    gateway = scene["lab"].gateway
    identity = StationIdentity(scene["station"].key, scene["station_age"])
    return StationAgent(
        "http://testserver",
        identity,
        scene["station_id"],
        tmp_path / "import",
        pinned if pinned is not None else gateway.backends.keys.public_key(),
        tmp_path / "work",
        transport=transport or gateway.client._transport,
        clock=gateway.clock,
    )


def design_status(scene: dict, design_id: str) -> str:
    designs = scene["technician"].call("GET", "/api/v1/designs").json()
    return {d["id"]: d["status"] for d in designs}[design_id]


def import_listing(agent: StationAgent) -> list[str]:
    return sorted(path.name for path in agent.import_dir.iterdir()) if agent.import_dir.exists() else []


@on_each_store
def test_a_design_is_verified_imported_and_acknowledged(scene, tmp_path):
    stl = tetrahedron_stl()
    design_id = upload(scene, tmp_path, {"crown_11.stl": stl})
    agent = make_agent(scene, tmp_path)
    agent.session()
    delivery = agent.run_once()
    assert delivery is not None and delivery.design_id == design_id
    assert delivery.acknowledged and delivery.rejected_reason is None
    assert [p.name for p in delivery.written] == [f"{CASE}_crown_11.stl"]
    assert (agent.import_dir / f"{CASE}_crown_11.stl").read_bytes() == stl
    assert import_listing(agent) == [f"{CASE}_crown_11.stl"]  # no temporary file left behind
    assert list(agent.work_dir.iterdir()) == []
    assert agent.run_once() is None  # the job is gone
    assert design_status(scene, design_id) == "acknowledged"  # every target station acknowledged it


def test_a_redelivered_job_leaves_exactly_one_copy(scene, tmp_path, monkeypatch):
    stl = tetrahedron_stl()
    design_id = upload(scene, tmp_path, {"crown_11.stl": stl})
    agent = make_agent(scene, tmp_path)
    with monkeypatch.context() as patched:  # the station writes the files, then dies before acknowledging
        patched.setattr(agent, "_acknowledge", lambda job, manifest, written: None)
        agent.run_once()
    assert import_listing(agent) == [f"{CASE}_crown_11.stl"]
    scene["lab"].gateway.clock.advance(seconds=301)  # the lease expires
    agent.session()
    delivery = agent.run_once()
    assert delivery is not None and delivery.design_id == design_id and delivery.acknowledged
    assert import_listing(agent) == [f"{CASE}_crown_11.stl"]
    assert delivery.written == [agent.import_dir / f"{CASE}_crown_11.stl"]


def test_another_design_with_the_same_name_gets_a_numbered_name(scene, tmp_path):
    agent = make_agent(scene, tmp_path)
    upload(scene, tmp_path, {"crown_11.stl": tetrahedron_stl(10.0)})
    upload(scene, tmp_path, {"crown_11.stl": tetrahedron_stl(12.0)})
    assert agent.run_once().acknowledged
    assert agent.run_once().acknowledged
    assert import_listing(agent) == [f"{CASE}_crown_11.stl", f"{CASE}_crown_11_2.stl"]
    assert (agent.import_dir / f"{CASE}_crown_11_2.stl").read_bytes() == tetrahedron_stl(12.0)


@on_each_store
def test_a_ciphertext_altered_in_storage_is_rejected_and_nothing_is_written(scene, tmp_path):
    design_id = upload(scene, tmp_path, {"crown_11.stl": tetrahedron_stl()})
    gateway = scene["lab"].gateway
    with gateway.backends.sessions() as session:
        key = session.get(Design, uuid.UUID(design_id)).object_key
    stored = bytearray(b"".join(gateway.backends.store.get(key)))
    stored[len(stored) // 2] ^= 0x01
    gateway.backends.store.put(key, io.BytesIO(bytes(stored)), max_bytes=len(stored) + 1)
    agent = make_agent(scene, tmp_path)
    delivery = agent.run_once()
    assert delivery is not None and not delivery.acknowledged
    assert "SHA-256" in delivery.rejected_reason
    assert delivery.written == [] and import_listing(agent) == []
    assert design_status(scene, design_id) == "rejected"
    with pytest.raises(SealBroken):  # and were the hash not checked first, age's authentication tag refuses it
        open_stream(io.BytesIO(bytes(stored)), io.BytesIO(), scene["station_age"])


def test_a_receipt_that_does_not_verify_with_the_pinned_key_is_rejected(scene, tmp_path):
    design_id = upload(scene, tmp_path, {"crown_11.stl": tetrahedron_stl()})
    impostor = Ed25519PrivateKey.generate().public_key().public_bytes_raw()
    agent = make_agent(scene, tmp_path, pinned=impostor)
    delivery = agent.run_once()
    assert delivery is not None and delivery.rejected_reason is not None
    assert "pinned gateway key" in delivery.rejected_reason
    assert import_listing(agent) == []
    assert design_status(scene, design_id) == "rejected"


def test_an_invalid_mesh_is_rejected(scene, tmp_path):
    truncated = tetrahedron_stl()[:-20]
    upload(scene, tmp_path, {"crown_11.stl": truncated})
    agent = make_agent(scene, tmp_path)
    delivery = agent.run_once()
    assert delivery is not None and "not a valid mesh" in delivery.rejected_reason
    assert import_listing(agent) == []


def test_names_cannot_escape_the_import_folder(scene, tmp_path):
    with pytest.raises(ValidationError):
        ManifestFile(name="../evil.stl", media_type="model/stl", size=1, sha256="0" * 64)
    with pytest.raises(BundleRefused):
        sealed_bundle(scene, tmp_path, {"..evil.stl": tetrahedron_stl()})
    upload(scene, tmp_path, {"crown_11.stl": tetrahedron_stl()}, case_reference="../../outside")
    agent = make_agent(scene, tmp_path)
    delivery = agent.run_once()
    assert delivery.acknowledged
    root = agent.import_dir.resolve()
    assert all(path.resolve().parent == root for path in delivery.written)
    assert all(path.parent == root for path in root.iterdir())
    assert not (tmp_path / "outside_crown_11.stl").exists()


class DroppingTransport(httpx.BaseTransport):
    """Cuts the first ciphertext download off half-way; records every Range header asked for."""

    def __init__(self, inner: httpx.BaseTransport) -> None:
        self.inner = inner
        self.ranges: list[str | None] = []
        self.dropped = False

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = self.inner.handle_request(request)
        if not request.url.path.endswith("/ciphertext"):
            return response
        self.ranges.append(request.headers.get("range"))
        if self.dropped:
            return response
        self.dropped = True
        body = response.read()

        class Cut(httpx.SyncByteStream):
            def __iter__(self):
                yield body[: len(body) // 2]
                raise httpx.ReadError("connection dropped")

        return httpx.Response(response.status_code, headers=response.headers, stream=Cut())


@on_each_store
def test_a_dropped_download_resumes_with_a_range(scene, tmp_path):
    stl = tetrahedron_stl()
    upload(scene, tmp_path, {"crown_11.stl": stl})
    transport = DroppingTransport(scene["lab"].gateway.client._transport)
    agent = make_agent(scene, tmp_path, transport=transport)
    delivery = agent.run_once()
    assert delivery.acknowledged
    assert (
        transport.ranges[0] is None and transport.ranges[1].startswith("bytes=") and transport.ranges[1] != "bytes=0-"
    )
    assert (agent.import_dir / f"{CASE}_crown_11.stl").read_bytes() == stl


def test_run_forever_backs_off_and_stops(scene, tmp_path):
    class Unreachable(httpx.BaseTransport):
        def handle_request(self, request):
            raise httpx.ConnectError("no route to host")

    stop = threading.Event()
    delays: list[float] = []

    def sleep(seconds: float) -> None:
        delays.append(seconds)
        if len(delays) == 8:
            stop.set()

    agent = make_agent(scene, tmp_path, transport=Unreachable())
    agent._sleep = sleep
    agent.run_forever(stop, wait=0)
    assert delays == [1, 2, 4, 8, 16, 32, 60, 60]


def test_run_forever_logs_in_again_after_the_session_ends(scene, tmp_path):
    upload(scene, tmp_path, {"crown_11.stl": tetrahedron_stl()})
    agent = make_agent(scene, tmp_path)
    agent.session()
    agent.client.token = "not-a-live-session"
    stop = threading.Event()
    delivered = []
    original = agent.run_once

    def once(wait: float = 0):
        result = original(wait)
        delivered.append(result)
        stop.set()
        return result

    agent.run_once = once
    agent._sleep = lambda seconds: pytest.fail("no back-off expected")
    agent.run_forever(stop, wait=0)
    assert delivered and delivered[-1].acknowledged


def test_the_gateway_key_is_pinned_once(scene, tmp_path):
    gateway = scene["lab"].gateway
    home = tmp_path / "home"
    raw = pin_gateway_key(home, "http://testserver", transport=gateway.client._transport)
    assert raw == gateway.backends.keys.public_key() == load_pinned_gateway_key(home)
    assert pin_gateway_key(home, "http://testserver", transport=gateway.client._transport) == raw
    pinned = json.loads((home / "gateway-key.json").read_text())
    pinned["public_key"] = "A" * 43 + "="
    (home / "gateway-key.json").write_text(json.dumps(pinned))
    with pytest.raises(GatewayKeyMismatch):
        pin_gateway_key(home, "http://testserver", transport=gateway.client._transport)
    save_station_record(home, "http://testserver", scene["station_id"])
    assert load_station_record(home).station_id == scene["station_id"]


def test_a_revoked_session_surfaces_as_an_api_error_from_run_once(scene, tmp_path):
    agent = make_agent(scene, tmp_path)
    agent.client.token = "not-a-live-session"
    with pytest.raises(ApiError) as raised:
        agent.run_once()
    assert raised.value.status == 401


def test_the_once_command_imports_and_prints_json(scene, tmp_path, monkeypatch):
    from click.testing import CliRunner

    from clients.cli import main
    from clients.commands import station as station_commands

    upload(scene, tmp_path, {"crown_11.stl": tetrahedron_stl()})
    agent = make_agent(scene, tmp_path)
    monkeypatch.setattr(station_commands, "_agent", lambda import_dir: agent)
    result = CliRunner().invoke(main, ["station", "once", "--import-dir", str(agent.import_dir), "--json"])
    assert result.exit_code == 0, result.output
    printed = json.loads(result.output[result.output.rindex('{\n  "design_id"') :])  # after the app's own log lines
    assert printed["acknowledged"] is True
    assert printed["written"] == [str(agent.import_dir / f"{CASE}_crown_11.stl")]
    again = CliRunner().invoke(main, ["station", "once", "--import-dir", str(agent.import_dir)])
    assert again.exit_code == 0 and "No job waiting" in again.output
