"""The technician's uploader against the real app: validated, sealed, signed, sent in chunks, receipt verified."""

from __future__ import annotations

import uuid
from datetime import timedelta

import httpx
import pyrage
import pytest

from clients import uploader
from clients.api import ApiError, GatewayClient
from clients.sample_design import crown_stl
from clients.sealing import SealBroken, open_bundle
from gateway.errors import DentGateError
from gateway.transfer.formats import UnsupportedFile
from gateway.transfer.mesh import InvalidMesh
from gateway.transfer.models import Design


@pytest.fixture
def client(scene):
    app = scene["lab"].gateway
    app.clock.offset = timedelta()  # the client signs proofs with the real time
    technician = scene["technician"]
    return GatewayClient("http://testserver", technician.key, technician.token, transport=app.client._transport)


def request(scene, *files, **changes) -> uploader.DesignRequest:
    values = dict(files=list(files), case_reference="2026-1125-007", station_ids=[uuid.UUID(scene["station_id"])],
                  process="design", remote_location="home", teeth=["11"])  # fmt: skip
    values.update(changes)
    return uploader.DesignRequest(**values)


def test_a_crown_is_sealed_sent_in_chunks_and_opens_only_for_the_station(scene, client, tmp_path, monkeypatch):
    monkeypatch.setattr(uploader, "CHUNK_BYTES", 1024)
    design = tmp_path / "crown_11.stl"
    design.write_bytes(crown_stl())
    me = client.get("/api/v1/me")
    seen: list[int] = []
    result = uploader.upload_design(
        client, request(scene, design), uuid.UUID(me["account_id"]), uuid.UUID(me["device_id"]),
        uploader.gateway_key(client), lambda done, total: seen.append(done),
    )  # fmt: skip
    assert len(seen) > 3 and seen[-1] == result.receipt.ciphertext_size
    app = scene["lab"].gateway
    with app.backends.sessions() as session:
        stored = session.get(Design, result.design_id)
    ciphertext = tmp_path / "ciphertext.age"
    ciphertext.write_bytes(b"".join(app.backends.store.get(stored.object_key)))
    (tmp_path / "station").mkdir()
    (tmp_path / "outsider").mkdir()
    with ciphertext.open("rb") as sealed:
        opened = open_bundle(sealed, tmp_path / "station", scene["station_age"])
    assert [f.name for f in opened.files] == ["crown_11.stl"]
    assert (tmp_path / "station" / "crown_11.stl").read_bytes() == design.read_bytes()
    with ciphertext.open("rb") as sealed, pytest.raises(SealBroken, match="not encrypted to this station"):
        open_bundle(sealed, tmp_path / "outsider", pyrage.x25519.Identity.generate())


@pytest.mark.parametrize(
    ("name", "content", "error"),
    [
        ("empty.stl", b"", UnsupportedFile),
        ("notes.stl", b"this is not a mesh at all, just some text\n" * 3, DentGateError),
        ("virus.exe", b"MZ\x90\x00", UnsupportedFile),
        ("huge.stl", b"\0" * 80 + (10**8).to_bytes(4, "little"), InvalidMesh),
    ],
)
def test_bad_files_are_refused_on_the_device_before_anything_is_sent(scene, client, tmp_path, name, content, error):
    path = tmp_path / name
    path.write_bytes(content)
    me = client.get("/api/v1/me")
    with pytest.raises(error) as refused:
        uploader.upload_design(client, request(scene, path), uuid.UUID(me["account_id"]), uuid.UUID(me["device_id"]),
                               uploader.gateway_key(client))  # fmt: skip
    assert refused.value.detail.startswith(f"{name}: ")
    assert client.get("/api/v1/designs") == []


def test_a_nan_coordinate_is_refused_with_a_clear_message(scene, client, tmp_path):
    data = bytearray(crown_stl())
    data[84 + 12 : 84 + 16] = b"\x00\x00\xc0\x7f"  # first vertex x = NaN
    path = tmp_path / "nan.stl"
    path.write_bytes(bytes(data))
    me = client.get("/api/v1/me")
    with pytest.raises(InvalidMesh, match=r"(?i)finite|nan"):
        uploader.upload_design(client, request(scene, path), uuid.UUID(me["account_id"]), uuid.UUID(me["device_id"]),
                               uploader.gateway_key(client))  # fmt: skip


class FlakyLink(httpx.BaseTransport):
    """Passes requests to the app, except that the PATCHes numbered in `drop_after` reach the gateway and are
    stored, but their answers are lost (the link breaks on the way back), and HEADs answer `head_status`."""

    def __init__(self, inner: httpx.BaseTransport, drop_after: set[int], head_status: int | None = None) -> None:
        self.inner = inner
        self.drop_after = drop_after
        self.head_status = head_status
        self.patches = 0
        self.heads = 0

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        if request.method == "HEAD":
            self.heads += 1
            if self.head_status is not None:
                body = {"code": "internal-error", "detail": "quote request id 42"}
                return httpx.Response(self.head_status, json=body, request=request)
        response = self.inner.handle_request(request)
        if request.method == "PATCH":
            self.patches += 1
            if self.patches in self.drop_after:
                response.read()
                raise httpx.ReadError("connection reset on the way back")
        return response


def send_design(scene, client, tmp_path, monkeypatch, link: FlakyLink):
    monkeypatch.setattr(uploader, "CHUNK_BYTES", 1024)
    design = tmp_path / "crown_11.stl"
    design.write_bytes(crown_stl())
    me = client.get("/api/v1/me")
    flaky = GatewayClient(client.base_url, client.key, client.token, transport=link)
    return uploader.upload_design(
        flaky, request(scene, design), uuid.UUID(me["account_id"]), uuid.UUID(me["device_id"]),
        uploader.gateway_key(client),
    )  # fmt: skip


def test_a_lost_answer_resumes_from_the_gateways_offset_and_nothing_is_sent_twice(scene, client, tmp_path, monkeypatch):
    link = FlakyLink(scene["lab"].gateway.client._transport, drop_after={2, 5})
    result = send_design(scene, client, tmp_path, monkeypatch, link)
    assert link.heads == 2, "each broken link asks the gateway how much it already has"
    chunks = -(-result.receipt.ciphertext_size // 1024)
    assert link.patches == chunks, "the chunks whose answers were lost were stored, so none was sent twice"
    with scene["lab"].gateway.backends.sessions() as session:
        assert session.get(Design, result.design_id).ciphertext_sha256 == result.receipt.ciphertext_sha256


def test_a_gateway_fault_while_resuming_is_reported_as_the_gateways_answer(scene, client, tmp_path, monkeypatch):
    link = FlakyLink(scene["lab"].gateway.client._transport, drop_after={1}, head_status=500)
    with pytest.raises(ApiError) as raised:
        send_design(scene, client, tmp_path, monkeypatch, link)
    assert (raised.value.status, raised.value.code) == (500, "internal-error")


def test_a_link_that_keeps_breaking_gives_up_with_a_clear_message(scene, client, tmp_path, monkeypatch):
    link = FlakyLink(scene["lab"].gateway.client._transport, drop_after=set(range(1, 100)))
    with pytest.raises(uploader.UploadFailed, match="keeps failing"):
        send_design(scene, client, tmp_path, monkeypatch, link)
    assert link.heads == uploader.RETRIES
