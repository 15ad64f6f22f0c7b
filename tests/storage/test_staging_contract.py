"""One contract for resumable-upload staging: the local directory and S3 (moto) must behave the same."""

from __future__ import annotations

import hashlib
import io
import os
import random
import socket
import subprocess
import sys
import tempfile
import time
import tracemalloc
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, BinaryIO, cast

import boto3
import pytest

from gateway.settings import Settings
from gateway.storage import InvalidObjectKey, ObjectNotFound, ObjectStore, ObjectTooLarge, new_object_key
from gateway.storage import staging_s3 as staging_s3_module
from gateway.storage.factory import open_staging_area
from gateway.storage.local import LocalObjectStore
from gateway.storage.s3 import S3ObjectStore
from gateway.storage.staging import (
    ChunkTooLarge,
    OffsetMismatch,
    StagedPart,
    StagingArea,
    StagingHandle,
    StagingLost,
)
from gateway.storage.staging_local import LocalStagingArea
from gateway.storage.staging_s3 import S3StagingArea

KIB = 1024
MIB = 1024 * KIB
PART_SIZE = 5 * MIB
REGION = "ap-northeast-1"
PREFIX = "lab-one/objects"
NO_CAP = 1024 * MIB


def payload(size: int, seed: int = 7) -> bytes:
    """Deterministic pseudo-random bytes, so a shifted, truncated or reordered slice cannot match."""
    return random.Random(seed).randbytes(size)


def s3_client(endpoint: str) -> Any:
    return boto3.client("s3", endpoint_url=endpoint, region_name=REGION)


class FailingReader:
    """A client upload that breaks off: yields `good` bytes, then raises OSError."""

    def __init__(self, good: bytes) -> None:
        self._data = io.BytesIO(good)

    def read(self, size: int = -1) -> bytes:
        chunk = self._data.read(size)
        if not chunk:
            raise OSError("connection reset by peer")
        return chunk


class GeneratedStream:
    """`size` pseudo-random bytes made on demand (never held whole), fed to `digest` as they are read."""

    def __init__(self, size: int, digest: Any, seed: int = 11) -> None:
        self._remaining = size
        self._random = random.Random(seed)
        self.digest = digest

    def read(self, size: int = -1) -> bytes:
        count = self._remaining if size < 0 else min(size, self._remaining)
        self._remaining -= count
        chunk = self._random.randbytes(count)
        self.digest.update(chunk)
        return chunk


# --- fixtures --------------------------------------------------------------------------------


@pytest.fixture(params=["local", pytest.param("s3", marks=pytest.mark.s3)])
def staging(request: pytest.FixtureRequest, tmp_path: Path) -> StagingArea:
    """The same tests run against each backend; S3 uses 5 MiB parts so parts and tails are both exercised."""
    if request.param == "local":
        return LocalStagingArea(tmp_path / "objects")
    return S3StagingArea(
        bucket=request.getfixturevalue("s3_bucket"),
        prefix=PREFIX,
        endpoint_url=request.getfixturevalue("moto_endpoint"),
        region=REGION,
        sse="AES256",
        part_size=PART_SIZE,
    )


@pytest.fixture
def restarted(staging: StagingArea, request: pytest.FixtureRequest, tmp_path: Path) -> Callable[[], StagingArea]:
    """Builds a brand-new staging area from the same settings, as another replica or a restarted gateway."""
    if isinstance(staging, LocalStagingArea):
        return lambda: LocalStagingArea(tmp_path / "objects")
    return lambda: S3StagingArea(
        bucket=request.getfixturevalue("s3_bucket"),
        prefix=PREFIX,
        endpoint_url=request.getfixturevalue("moto_endpoint"),
        region=REGION,
        sse="AES256",
        part_size=PART_SIZE,
    )


@pytest.fixture
def store(staging: StagingArea, request: pytest.FixtureRequest, tmp_path: Path) -> ObjectStore:
    """The object store the staging area completes into (same root, or same bucket and prefix)."""
    if isinstance(staging, LocalStagingArea):
        return LocalObjectStore(tmp_path / "objects")
    return S3ObjectStore(
        bucket=request.getfixturevalue("s3_bucket"),
        prefix=PREFIX,
        endpoint_url=request.getfixturevalue("moto_endpoint"),
        region=REGION,
        part_size=PART_SIZE,
    )


@pytest.fixture
def leftovers(staging: StagingArea, request: pytest.FixtureRequest, tmp_path: Path) -> Callable[[], list[str]]:
    """Lists staging debris: files in `.staging/`, or multipart uploads and objects under `.staging/`."""
    if isinstance(staging, LocalStagingArea):
        directory = tmp_path / "objects" / ".staging"
        return lambda: sorted(path.name for path in directory.iterdir())
    client = s3_client(request.getfixturevalue("moto_endpoint"))
    bucket = request.getfixturevalue("s3_bucket")

    def debris() -> list[str]:
        uploads = client.list_multipart_uploads(Bucket=bucket).get("Uploads", [])
        objects = client.list_objects_v2(Bucket=bucket, Prefix=f"{PREFIX}/.staging/").get("Contents", [])
        return sorted([f"upload:{upload['Key']}" for upload in uploads] + [item["Key"] for item in objects])

    return debris


def upload_in_chunks(
    staging: StagingArea, key: str, chunks: list[bytes], handle: StagingHandle | None = None
) -> StagingHandle:
    """Append each chunk at the handle's offset, persisting (JSON round trip) the handle after every append."""
    handle = handle or staging.begin(key)
    for chunk in chunks:
        handle = staging.append(handle, handle.offset, io.BytesIO(chunk), max_total=NO_CAP, max_chunk=NO_CAP)
        handle = StagingHandle.from_json(handle.to_json())
    return handle


def read_all(store: ObjectStore, key: str) -> bytes:
    return b"".join(store.get(key))


def split(data: bytes, sizes: list[int]) -> list[bytes]:
    chunks, start = [], 0
    for size in sizes:
        chunks.append(data[start : start + size])
        start += size
    assert start == len(data)
    return chunks


# --- assembling -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "sizes",
    [
        [1, 3 * MIB, 7 * MIB, 100 * KIB, 1],
        [PART_SIZE, PART_SIZE],
        [PART_SIZE - 1, 1, 2 * PART_SIZE + 3],
        [1000],
        [11 * MIB],
    ],
    ids=["odd-sizes", "part-aligned", "around-boundaries", "one-small-chunk", "one-large-chunk"],
)
def test_chunks_of_any_size_assemble_to_identical_bytes(
    staging: StagingArea, store: ObjectStore, leftovers: Callable[[], list[str]], sizes: list[int]
) -> None:
    data = payload(sum(sizes), seed=len(sizes))
    key = new_object_key("designs")

    handle = upload_in_chunks(staging, key, split(data, sizes))
    stored = staging.complete(handle, key)

    assert handle.offset == len(data)
    assert stored.key == key
    assert stored.size == len(data)
    assert stored.sha256 == hashlib.sha256(data).hexdigest()
    assert store.size(key) == len(data)
    assert read_all(store, key) == data
    assert leftovers() == []


def test_complete_can_use_another_final_key(
    staging: StagingArea, store: ObjectStore, leftovers: Callable[[], list[str]]
) -> None:
    data = payload(7 * MIB + 3)
    upload_key, final_key = new_object_key("uploads"), new_object_key("designs")

    handle = upload_in_chunks(staging, upload_key, split(data, [MIB, 6 * MIB + 3]))
    stored = staging.complete(handle, final_key)

    assert stored == type(stored)(key=final_key, size=len(data), sha256=hashlib.sha256(data).hexdigest())
    assert read_all(store, final_key) == data
    assert leftovers() == []


def test_an_empty_upload_completes_as_an_empty_object(
    staging: StagingArea, store: ObjectStore, leftovers: Callable[[], list[str]]
) -> None:
    key = new_object_key("designs")

    stored = staging.complete(staging.begin(key), key)

    assert (stored.size, stored.sha256) == (0, hashlib.sha256(b"").hexdigest())
    assert read_all(store, key) == b""
    assert leftovers() == []


def test_a_zero_byte_append_is_a_no_op(staging: StagingArea, store: ObjectStore) -> None:
    key = new_object_key("designs")
    handle = upload_in_chunks(staging, key, [b"abc"])

    after = staging.append(handle, handle.offset, io.BytesIO(b""), max_total=3, max_chunk=0)

    assert after == handle
    assert staging.complete(after, key).size == 3
    assert read_all(store, key) == b"abc"


def test_complete_retried_after_success_returns_the_same_object(staging: StagingArea, store: ObjectStore) -> None:
    data = payload(6 * MIB)
    key = new_object_key("designs")
    handle = upload_in_chunks(staging, key, split(data, [MIB, 5 * MIB]))

    first = staging.complete(handle, key)
    second = staging.complete(handle, key)

    assert first == second
    assert read_all(store, key) == data


# --- offsets ---------------------------------------------------------------------------------


@pytest.mark.parametrize("delta", [-1, 1, 5 * MIB], ids=["behind", "ahead", "far-ahead"])
def test_an_append_at_the_wrong_offset_is_refused_and_changes_nothing(
    staging: StagingArea, store: ObjectStore, delta: int
) -> None:
    data = payload(3 * MIB + 5)
    key = new_object_key("designs")
    handle = upload_in_chunks(staging, key, [data[: 2 * MIB]])
    stream = io.BytesIO(b"x" * 1000)

    with pytest.raises(OffsetMismatch) as raised:
        staging.append(handle, handle.offset + delta, stream, max_total=NO_CAP, max_chunk=NO_CAP)

    assert (raised.value.code, raised.value.status) == ("upload-offset-mismatch", 409)
    assert stream.tell() == 0, "a refused chunk must not be read"
    handle = upload_in_chunks(staging, key, [data[2 * MIB :]], handle)
    assert staging.complete(handle, key).sha256 == hashlib.sha256(data).hexdigest()
    assert read_all(store, key) == data


# --- broken chunks ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("before", "good"),
    [(0, 2 * MIB), (MIB + 7, 2 * MIB), (MIB + 7, 7 * MIB), (PART_SIZE, 2 * MIB)],
    ids=["first-chunk", "within-a-part", "after-a-part-was-sent", "after-a-full-part"],
)
def test_a_chunk_that_breaks_off_keeps_the_previous_offset_and_can_be_retried(
    staging: StagingArea,
    store: ObjectStore,
    restarted: Callable[[], StagingArea],
    leftovers: Callable[[], list[str]],
    before: int,
    good: int,
) -> None:
    data = payload(before + 9 * MIB, seed=before)
    key = new_object_key("designs")
    persisted = upload_in_chunks(staging, key, [data[:before]] if before else [])

    with pytest.raises(OSError, match="connection reset"):
        staging.append(
            persisted,
            persisted.offset,
            cast(BinaryIO, FailingReader(data[before : before + good])),
            max_total=NO_CAP,
            max_chunk=NO_CAP,
        )

    assert persisted.offset == before
    with pytest.raises(OffsetMismatch):
        staging.append(persisted, before + good, io.BytesIO(b"more"), max_total=NO_CAP, max_chunk=NO_CAP)
    # The retry may come to another replica, which only knows the persisted handle.
    handle = upload_in_chunks(restarted(), key, [data[before:]], StagingHandle.from_json(persisted.to_json()))
    stored = restarted().complete(handle, key)
    assert stored.sha256 == hashlib.sha256(data).hexdigest()
    assert read_all(store, key) == data
    assert leftovers() == []


def test_an_append_whose_handle_was_never_persisted_is_overwritten_by_the_retry(
    staging: StagingArea, store: ObjectStore, leftovers: Callable[[], list[str]]
) -> None:
    """The gateway crashes after the bytes were stored but before the database saved the new handle."""
    data = payload(9 * MIB + 11)
    key = new_object_key("designs")
    persisted = upload_in_chunks(staging, key, [data[: 3 * MIB]])

    lost = staging.append(persisted, persisted.offset, io.BytesIO(payload(4 * MIB, seed=99)), NO_CAP, NO_CAP)
    assert lost.offset == 7 * MIB

    handle = upload_in_chunks(staging, key, [data[3 * MIB :]], persisted)
    assert staging.complete(handle, key).sha256 == hashlib.sha256(data).hexdigest()
    assert read_all(store, key) == data
    assert leftovers() == []


# --- size caps -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("before", "chunk", "cap"),
    [(0, 4097, 4096), (MIB, 12 * MIB, 8 * MIB), (PART_SIZE + 1, 6 * MIB, 9 * MIB)],
    ids=["first-chunk", "after-a-part-was-sent", "with-a-part-and-a-tail"],
)
def test_a_chunk_over_the_total_cap_is_refused_and_a_smaller_retry_works(
    staging: StagingArea,
    store: ObjectStore,
    leftovers: Callable[[], list[str]],
    before: int,
    chunk: int,
    cap: int,
) -> None:
    data = payload(before + chunk, seed=chunk)
    key = new_object_key("designs")
    persisted = upload_in_chunks(staging, key, [data[:before]] if before else [])

    with pytest.raises(ObjectTooLarge) as raised:
        staging.append(persisted, persisted.offset, io.BytesIO(data[before:]), max_total=cap, max_chunk=NO_CAP)

    assert not isinstance(raised.value, ChunkTooLarge)
    assert (raised.value.code, raised.value.status) == ("object-too-large", 413)
    assert persisted.offset == before
    handle = staging.append(persisted, before, io.BytesIO(data[before:cap]), max_total=cap, max_chunk=NO_CAP)
    assert handle.offset == cap, "a total exactly at the cap is accepted"
    stored = staging.complete(handle, key)
    assert (stored.size, stored.sha256) == (cap, hashlib.sha256(data[:cap]).hexdigest())
    assert read_all(store, key) == data[:cap]
    assert leftovers() == []


def test_a_chunk_over_the_chunk_cap_is_refused(staging: StagingArea, store: ObjectStore) -> None:
    key = new_object_key("designs")
    persisted = upload_in_chunks(staging, key, [b"head"])

    with pytest.raises(ChunkTooLarge) as raised:
        staging.append(persisted, 4, io.BytesIO(payload(2 * MIB)), max_total=NO_CAP, max_chunk=MIB)

    assert raised.value.status == 413
    handle = staging.append(persisted, 4, io.BytesIO(b"tail"), max_total=NO_CAP, max_chunk=4)
    staging.complete(handle, key)
    assert read_all(store, key) == b"headtail"


def spooled(data: bytes, position: int = 0) -> BinaryIO:
    """A chunk as the gateway hands it over: the PATCH body in an unbuffered temporary file."""
    spool = tempfile.TemporaryFile(buffering=0)  # noqa: SIM115 (closed by the caller)
    spool.write(data)
    spool.seek(position)
    return spool  # type: ignore[return-value]


@pytest.mark.parametrize("sizes", [[1, 3 * MIB, 1], [PART_SIZE + 5, 2 * MIB]], ids=["small", "over-a-part"])
def test_chunks_spooled_to_files_assemble_to_identical_bytes(
    staging: StagingArea, store: ObjectStore, leftovers: Callable[[], list[str]], sizes: list[int]
) -> None:
    data = payload(sum(sizes), seed=3)
    key = new_object_key("designs")
    handle = staging.begin(key)
    for chunk in split(data, sizes):
        with spooled(chunk) as spool:
            handle = StagingHandle.from_json(
                staging.append(handle, handle.offset, spool, max_total=NO_CAP, max_chunk=NO_CAP).to_json()
            )
    stored = staging.complete(handle, key)
    assert (stored.size, stored.sha256) == (len(data), hashlib.sha256(data).hexdigest())
    assert read_all(store, key) == data
    assert leftovers() == []


def test_only_the_rest_of_a_spool_from_its_position_is_appended(staging: StagingArea, store: ObjectStore) -> None:
    key = new_object_key("designs")
    with spooled(b"skipped|kept", position=len(b"skipped|")) as spool:
        handle = staging.append(staging.begin(key), 0, spool, max_total=NO_CAP, max_chunk=NO_CAP)
    staging.complete(handle, key)
    assert read_all(store, key) == b"kept"


def test_a_spooled_chunk_over_a_cap_is_refused_and_nothing_of_it_is_kept(
    staging: StagingArea, store: ObjectStore
) -> None:
    key = new_object_key("designs")
    persisted = upload_in_chunks(staging, key, [b"head"])

    with spooled(payload(2 * MIB)) as spool, pytest.raises(ChunkTooLarge):
        staging.append(persisted, 4, spool, max_total=NO_CAP, max_chunk=MIB)
    with spooled(payload(2 * MIB)) as spool, pytest.raises(ObjectTooLarge):
        staging.append(persisted, 4, spool, max_total=MIB, max_chunk=NO_CAP)

    with spooled(b"tail") as spool:
        handle = staging.append(persisted, 4, spool, max_total=8, max_chunk=4)
    assert staging.complete(handle, key).sha256 == hashlib.sha256(b"headtail").hexdigest()
    assert read_all(store, key) == b"headtail"


# --- restart ---------------------------------------------------------------------------------


def test_a_restarted_gateway_continues_from_the_persisted_handle(
    staging: StagingArea, store: ObjectStore, restarted: Callable[[], StagingArea]
) -> None:
    data = payload(13 * MIB + 17)
    key = new_object_key("designs")
    chunks = split(data, [3 * MIB, 4 * MIB + 17, 6 * MIB])
    saved = upload_in_chunks(staging, key, chunks[:2]).to_json()

    for chunk in chunks[2:]:
        area = restarted()
        handle = StagingHandle.from_json(saved)
        saved = area.append(handle, handle.offset, io.BytesIO(chunk), NO_CAP, NO_CAP).to_json()
    stored = restarted().complete(StagingHandle.from_json(saved), key)

    assert stored.sha256 == hashlib.sha256(data).hexdigest()
    assert read_all(store, key) == data


# --- abort and sweep -------------------------------------------------------------------------


def test_abort_removes_everything_staged_and_can_be_repeated(
    staging: StagingArea, store: ObjectStore, leftovers: Callable[[], list[str]]
) -> None:
    key = new_object_key("designs")
    handle = upload_in_chunks(staging, key, [payload(MIB), payload(6 * MIB)])
    with pytest.raises(OSError, match="connection reset"):
        staging.append(handle, handle.offset, cast(BinaryIO, FailingReader(payload(7 * MIB))), NO_CAP, NO_CAP)

    staging.abort(handle)
    staging.abort(handle)

    assert leftovers() == []
    with pytest.raises(StagingLost) as raised:
        staging.append(handle, handle.offset, io.BytesIO(b"more"), NO_CAP, NO_CAP)
    assert raised.value.status == 410
    with pytest.raises(StagingLost):
        staging.complete(handle, key)
    with pytest.raises(ObjectNotFound):
        store.size(key)


def test_abort_of_an_untouched_upload_leaves_nothing(staging: StagingArea, leftovers: Callable[[], list[str]]) -> None:
    staging.abort(staging.begin(new_object_key("designs")))

    assert leftovers() == []


def test_sweep_removes_abandoned_uploads_but_not_active_ones(
    staging: StagingArea, leftovers: Callable[[], list[str]]
) -> None:
    key = new_object_key("designs")
    handle = upload_in_chunks(staging, key, [payload(MIB), payload(6 * MIB)])

    assert staging.sweep(datetime.now(UTC) - timedelta(hours=1)) == 0
    assert leftovers() != []

    assert staging.sweep(datetime.now(UTC) + timedelta(minutes=1)) == 1

    assert leftovers() == []
    with pytest.raises(StagingLost):
        staging.append(handle, handle.offset, io.BytesIO(b"more"), NO_CAP, NO_CAP)
    assert staging.sweep(datetime.now(UTC) + timedelta(minutes=1)) == 0


def test_sweep_accepts_a_naive_cutoff_as_utc(staging: StagingArea, leftovers: Callable[[], list[str]]) -> None:
    upload_in_chunks(staging, new_object_key("designs"), [b"abandoned"])

    assert staging.sweep(datetime.now(UTC).replace(tzinfo=None) - timedelta(hours=1)) == 0
    assert staging.sweep(datetime.now(UTC).replace(tzinfo=None) + timedelta(minutes=1)) == 1
    assert leftovers() == []


# --- keys and handles ------------------------------------------------------------------------


@pytest.mark.parametrize("key", ["../etc/passwd", "/abs", "Designs/X", "a//b", "", "designs/.."], ids=repr)
def test_keys_not_made_by_the_gateway_are_refused(
    staging: StagingArea, leftovers: Callable[[], list[str]], key: str
) -> None:
    with pytest.raises(InvalidObjectKey):
        staging.begin(key)
    handle = upload_in_chunks(staging, new_object_key("designs"), [b"data"])
    with pytest.raises(InvalidObjectKey):
        staging.complete(handle, key)
    staging.abort(handle)
    assert leftovers() == []


def test_a_handle_of_the_other_backend_is_refused(staging: StagingArea) -> None:
    key = new_object_key("designs")
    if isinstance(staging, LocalStagingArea):
        other = StagingHandle(backend="s3", key=key, upload_id="upload-1")
    else:
        other = StagingHandle(backend="local", key=key)

    with pytest.raises(ValueError, match="cannot be used"):
        staging.append(other, 0, io.BytesIO(b"data"), NO_CAP, NO_CAP)
    with pytest.raises(ValueError, match="cannot be used"):
        staging.complete(other, key)
    with pytest.raises(ValueError, match="cannot be used"):
        staging.abort(other)


def test_handles_round_trip_through_json() -> None:
    handle = StagingHandle(
        backend="s3",
        key="designs/abc",
        offset=PART_SIZE + 3,
        upload_id="upload-1",
        parts=(StagedPart(number=1, etag='"e1"', size=PART_SIZE),),
        tail="0011",
        tail_etag='"e2"',
        tail_size=3,
        stale_tail="0010",
    )

    assert StagingHandle.from_json(handle.to_json()) == handle
    assert StagingHandle.from_dict(handle.to_dict()) == handle


@pytest.mark.parametrize(
    "changes",
    [
        {"offset": PART_SIZE + 4},
        {"parts": [{"number": 2, "etag": "e", "size": PART_SIZE}]},
        {"tail": None},
        {"upload_id": None},
        {"backend": "ftp"},
        {"key": "../x"},
        {"offset": "many"},
    ],
    ids=["offset-off", "part-numbering", "tail-without-name", "no-upload-id", "backend", "key", "offset-type"],
)
def test_inconsistent_handles_are_refused(changes: dict[str, Any]) -> None:
    data = {
        "backend": "s3",
        "key": "designs/abc",
        "offset": PART_SIZE + 3,
        "upload_id": "upload-1",
        "parts": [{"number": 1, "etag": "e1", "size": PART_SIZE}],
        "tail": "0011",
        "tail_etag": "e2",
        "tail_size": 3,
    }

    with pytest.raises(ValueError):
        StagingHandle.from_dict(data | changes)


# --- memory ----------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def moto_process() -> Iterator[str]:
    """moto in its own process, so tracemalloc counts only the gateway's allocations, not the fake S3's."""
    port = _free_port()
    environment = os.environ | {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}
    process = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=environment,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    pytest.fail("the moto server process did not start")
                time.sleep(0.1)
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(timeout=10)


@pytest.fixture(params=["local", pytest.param("s3", marks=pytest.mark.s3)])
def isolated_staging(request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> StagingArea:
    if request.param == "local":
        return LocalStagingArea(tmp_path / "objects")
    endpoint = request.getfixturevalue("moto_process")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    bucket = f"dentgate-test-{uuid.uuid4().hex[:12]}"
    s3_client(endpoint).create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": REGION})
    return S3StagingArea(bucket, PREFIX, endpoint_url=endpoint, region=REGION, sse="AES256", part_size=PART_SIZE)


def test_a_64_mib_chunk_is_staged_and_completed_with_memory_bounded_by_about_one_part(
    isolated_staging: StagingArea,
) -> None:
    key = new_object_key("designs")
    handle = isolated_staging.begin(key)
    head = b"x" * (3 * MIB)
    handle = isolated_staging.append(handle, 0, io.BytesIO(head), NO_CAP, NO_CAP)
    stream = GeneratedStream(64 * MIB, digest=hashlib.sha256(head))

    tracemalloc.start()
    try:
        handle = isolated_staging.append(handle, handle.offset, cast(BinaryIO, stream), NO_CAP, 64 * MIB)
        _, append_peak = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        stored = isolated_staging.complete(handle, key)
        _, complete_peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    assert stored.size == 67 * MIB
    assert stored.sha256 == stream.digest.hexdigest()
    assert append_peak < 24 * MIB, f"append peaked at {append_peak / MIB:.1f} MiB"
    assert complete_peak < 24 * MIB, f"complete peaked at {complete_peak / MIB:.1f} MiB"


# --- S3 only ---------------------------------------------------------------------------------


@pytest.mark.s3
@pytest.mark.parametrize("sizes", [[1000], [PART_SIZE + 1]], ids=["tail-only", "parts-and-tail"])
def test_s3_staged_and_final_objects_use_the_store_sse_settings(
    moto_endpoint: str, s3_bucket: str, kms_key_id: str, sizes: list[int]
) -> None:
    area = S3StagingArea(
        s3_bucket,
        PREFIX,
        endpoint_url=moto_endpoint,
        region=REGION,
        sse="aws:kms",
        sse_kms_key_id=kms_key_id,
        part_size=PART_SIZE,
    )
    client = s3_client(moto_endpoint)
    key = new_object_key("designs")
    handle = upload_in_chunks(area, key, [payload(size) for size in sizes])

    tail = client.head_object(Bucket=s3_bucket, Key=f"{PREFIX}/.staging/{key}.tail.{handle.tail}")
    area.complete(handle, key)
    final = client.head_object(Bucket=s3_bucket, Key=f"{PREFIX}/{key}")

    for head in (tail, final):
        assert head["ServerSideEncryption"] == "aws:kms"
        assert kms_key_id in head["SSEKMSKeyId"]


@pytest.mark.s3
def test_s3_completing_under_the_upload_key_needs_no_copy(moto_endpoint: str, s3_bucket: str) -> None:
    area = S3StagingArea(s3_bucket, PREFIX, endpoint_url=moto_endpoint, region=REGION, part_size=PART_SIZE)
    key = new_object_key("designs")
    handle = upload_in_chunks(area, key, [payload(3 * MIB), payload(9 * MIB)])

    area.complete(handle, key)

    etag = s3_client(moto_endpoint).head_object(Bucket=s3_bucket, Key=f"{PREFIX}/{key}")["ETag"]
    assert etag.strip('"').endswith("-3"), "two full parts plus the tail as the last part"


@pytest.mark.s3
def test_s3_large_objects_are_copied_to_another_final_key_in_parts(
    moto_endpoint: str, s3_bucket: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(staging_s3_module, "SINGLE_COPY_LIMIT", 6 * MIB)
    monkeypatch.setattr(staging_s3_module, "COPY_PART_SIZE", PART_SIZE)
    area = S3StagingArea(s3_bucket, PREFIX, endpoint_url=moto_endpoint, region=REGION, part_size=PART_SIZE)
    store = S3ObjectStore(s3_bucket, PREFIX, endpoint_url=moto_endpoint, region=REGION, part_size=PART_SIZE)
    data = payload(12 * MIB + 5)
    upload_key, final_key = new_object_key("uploads"), new_object_key("designs")

    stored = area.complete(upload_in_chunks(area, upload_key, [data]), final_key)

    assert stored.sha256 == hashlib.sha256(data).hexdigest()
    assert read_all(store, final_key) == data
    listing = s3_client(moto_endpoint).list_objects_v2(Bucket=s3_bucket).get("Contents", [])
    assert [item["Key"] for item in listing] == [f"{PREFIX}/{final_key}"]
    assert s3_client(moto_endpoint).list_multipart_uploads(Bucket=s3_bucket).get("Uploads", []) == []


@pytest.mark.s3
def test_s3_a_tail_replaced_behind_the_handle_is_detected(moto_endpoint: str, s3_bucket: str) -> None:
    area = S3StagingArea(s3_bucket, PREFIX, endpoint_url=moto_endpoint, region=REGION, part_size=PART_SIZE)
    key = new_object_key("designs")
    handle = upload_in_chunks(area, key, [b"original tail"])
    s3_client(moto_endpoint).put_object(
        Bucket=s3_bucket, Key=f"{PREFIX}/.staging/{key}.tail.{handle.tail}", Body=b"another writer"
    )

    with pytest.raises(StagingLost):
        area.append(handle, handle.offset, io.BytesIO(b"more"), NO_CAP, NO_CAP)
    with pytest.raises(StagingLost):
        area.complete(handle, key)


def test_s3_staging_refuses_parts_below_the_s3_minimum() -> None:
    with pytest.raises(ValueError, match="part_size"):
        S3StagingArea("dentgate", client=object(), part_size=MIB)


# --- factory ---------------------------------------------------------------------------------


def test_open_staging_area_follows_the_storage_url(tmp_path: Path) -> None:
    root = tmp_path / "objects"

    area = open_staging_area(Settings(storage_url=root.as_uri()))

    assert isinstance(area, LocalStagingArea)
    assert (root / ".staging").is_dir()
    assert isinstance(open_staging_area(Settings(storage_url="s3://bucket/prefix", s3_region=REGION)), S3StagingArea)
