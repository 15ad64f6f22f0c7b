"""One contract for every object store: the local directory and S3 (moto) must behave the same."""

from __future__ import annotations

import hashlib
import io
import random
import shutil
import socket
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, BinaryIO, cast

import boto3
import pytest

from gateway.settings import Settings
from gateway.storage import (
    InvalidObjectKey,
    InvalidRange,
    ObjectNotFound,
    ObjectStore,
    ObjectTooLarge,
    StorageUnavailable,
    new_object_key,
)
from gateway.storage.factory import open_object_store
from gateway.storage.local import LocalObjectStore
from gateway.storage.s3 import S3ObjectStore

MIB = 1024 * 1024
PART_SIZE = 5 * MIB
REGION = "ap-northeast-1"
PREFIX = "lab-one/objects"


def payload(size: int, seed: int = 7) -> bytes:
    """Deterministic pseudo-random bytes, so a shifted, truncated or reordered slice cannot match."""
    return random.Random(seed).randbytes(size)


def s3_client(endpoint: str) -> Any:
    return boto3.client("s3", endpoint_url=endpoint, region_name=REGION)


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(params=["local", pytest.param("s3", marks=pytest.mark.s3)])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> ObjectStore:
    """The same tests run against each backend; S3 uses 5 MiB parts so multipart is exercised."""
    if request.param == "local":
        return LocalObjectStore(tmp_path / "objects")
    return S3ObjectStore(
        bucket=request.getfixturevalue("s3_bucket"),
        prefix=PREFIX,
        endpoint_url=request.getfixturevalue("moto_endpoint"),
        region=REGION,
        sse="AES256",
        part_size=PART_SIZE,
    )


@pytest.fixture
def leftovers(store: ObjectStore, request: pytest.FixtureRequest, tmp_path: Path) -> Callable[[], list[str]]:
    """Lists what a failed put might have left behind: temp files, or dangling multipart uploads."""
    if isinstance(store, LocalObjectStore):
        incoming = tmp_path / "objects" / ".incoming"
        return lambda: sorted(path.name for path in incoming.iterdir())
    client = s3_client(request.getfixturevalue("moto_endpoint"))
    bucket = request.getfixturevalue("s3_bucket")

    def dangling_uploads() -> list[str]:
        uploads = client.list_multipart_uploads(Bucket=bucket).get("Uploads", [])
        return [upload["Key"] for upload in uploads]

    return dangling_uploads


@pytest.fixture
def broken_store(store: ObjectStore, request: pytest.FixtureRequest, tmp_path: Path) -> ObjectStore:
    """A store of the same kind that cannot work: root replaced by a file, or a bucket that does not exist."""
    if isinstance(store, LocalObjectStore):
        root = tmp_path / "objects"
        shutil.rmtree(root)
        root.write_text("not a directory")
        return store
    return S3ObjectStore(
        bucket="dentgate-no-such-bucket",
        endpoint_url=request.getfixturevalue("moto_endpoint"),
        region=REGION,
        part_size=PART_SIZE,
    )


def read_all(chunks: Iterator[bytes]) -> bytes:
    return b"".join(chunks)


class FailingReader:
    """A client upload that breaks off: yields `good` bytes, then raises OSError."""

    def __init__(self, good: bytes) -> None:
        self._data = io.BytesIO(good)

    def read(self, size: int = -1) -> bytes:
        chunk = self._data.read(size)
        if not chunk:
            raise OSError("connection reset by peer")
        return chunk


# --- round trips -------------------------------------------------------------------------------


@pytest.mark.parametrize("size", [0, 1, 1000, PART_SIZE - 1])
def test_put_then_get_returns_the_same_bytes_with_size_and_sha256(store: ObjectStore, size: int) -> None:
    data = payload(size)
    key = new_object_key("designs")

    stored = store.put(key, io.BytesIO(data), max_bytes=20 * MIB)

    assert stored.key == key
    assert stored.size == size
    assert stored.sha256 == hashlib.sha256(data).hexdigest()
    assert read_all(store.get(key)) == data
    assert store.size(key) == size


@pytest.mark.parametrize("size", [PART_SIZE, 12 * MIB, 2 * PART_SIZE])
def test_objects_spanning_several_parts_round_trip_intact(store: ObjectStore, size: int) -> None:
    data = payload(size, seed=size)
    key = new_object_key("designs")

    stored = store.put(key, io.BytesIO(data), max_bytes=size)

    assert stored.size == size
    assert stored.sha256 == hashlib.sha256(data).hexdigest()
    assert hashlib.sha256(read_all(store.get(key))).hexdigest() == stored.sha256
    assert store.size(key) == size


def test_get_streams_in_bounded_chunks(store: ObjectStore) -> None:
    data = payload(3 * MIB + 5)
    key = new_object_key("designs")
    store.put(key, io.BytesIO(data), max_bytes=10 * MIB)

    chunks = list(store.get(key))

    assert len(chunks) > 1
    assert max(len(chunk) for chunk in chunks) <= MIB
    assert b"".join(chunks) == data


def test_an_object_stored_under_another_key_is_not_affected(store: ObjectStore) -> None:
    first, second = new_object_key("designs"), new_object_key("designs")
    store.put(first, io.BytesIO(b"first design"), max_bytes=MIB)
    store.put(second, io.BytesIO(b"second design"), max_bytes=MIB)

    store.delete(first)

    assert read_all(store.get(second)) == b"second design"


# --- byte ranges -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("start", "end", "expected"),
    [
        (0, None, slice(0, None)),
        (100, None, slice(100, None)),
        (0, 0, slice(0, 1)),
        (10, 19, slice(10, 20)),
        (999, None, slice(999, None)),
        (999, 999, slice(999, 1000)),
        (990, 5000, slice(990, None)),
    ],
    ids=["whole", "start-only", "first-byte", "start-and-end", "last-byte", "last-byte-closed", "end-clamped"],
)
def test_byte_ranges_return_exactly_the_inclusive_slice(
    store: ObjectStore, start: int, end: int | None, expected: slice
) -> None:
    data = payload(1000)
    key = new_object_key("designs")
    store.put(key, io.BytesIO(data), max_bytes=MIB)

    assert read_all(store.get(key, start, end)) == data[expected]


def test_a_range_across_part_boundaries_is_exact(store: ObjectStore) -> None:
    data = payload(12 * MIB, seed=3)
    key = new_object_key("designs")
    store.put(key, io.BytesIO(data), max_bytes=12 * MIB)

    start, end = PART_SIZE - 10, 2 * PART_SIZE + 10

    assert read_all(store.get(key, start, end)) == data[start : end + 1]


@pytest.mark.parametrize(
    ("start", "end"),
    [(-1, None), (5, 4), (1000, None), (1000, 1200), (5000, None)],
    ids=["negative-start", "end-before-start", "start-at-size", "start-at-size-closed", "start-beyond-size"],
)
def test_unsatisfiable_ranges_raise_invalid_range(store: ObjectStore, start: int, end: int | None) -> None:
    key = new_object_key("designs")
    store.put(key, io.BytesIO(payload(1000)), max_bytes=MIB)

    with pytest.raises(InvalidRange):
        store.get(key, start, end)


def test_an_empty_object_reads_back_empty_but_has_no_byte_ranges(store: ObjectStore) -> None:
    key = new_object_key("designs")
    store.put(key, io.BytesIO(b""), max_bytes=MIB)

    assert read_all(store.get(key)) == b""
    with pytest.raises(InvalidRange):
        store.get(key, 0, 10)


# --- size cap and failed uploads leave nothing -----------------------------------------------


def test_a_stream_exactly_at_the_cap_is_accepted(store: ObjectStore) -> None:
    key = new_object_key("designs")

    stored = store.put(key, io.BytesIO(payload(4096)), max_bytes=4096)

    assert stored.size == 4096


@pytest.mark.parametrize(
    ("size", "cap"),
    [(4097, 4096), (12 * MIB, 7 * MIB), (12 * MIB, 10 * MIB)],
    ids=["within-first-part", "after-one-part", "after-two-parts"],
)
def test_a_stream_over_the_cap_is_refused_and_nothing_remains(
    store: ObjectStore, leftovers: Callable[[], list[str]], size: int, cap: int
) -> None:
    key = new_object_key("designs")

    with pytest.raises(ObjectTooLarge):
        store.put(key, io.BytesIO(payload(size)), max_bytes=cap)

    with pytest.raises(ObjectNotFound):
        store.get(key)
    with pytest.raises(ObjectNotFound):
        store.size(key)
    assert leftovers() == []


@pytest.mark.parametrize(
    "good_bytes", [1000, 6 * MIB, 11 * MIB], ids=["in-first-part", "in-second-part", "in-third-part"]
)
def test_an_upload_that_breaks_off_leaves_nothing_stored(
    store: ObjectStore, leftovers: Callable[[], list[str]], good_bytes: int
) -> None:
    key = new_object_key("designs")

    with pytest.raises(OSError, match="connection reset"):
        store.put(key, cast(BinaryIO, FailingReader(payload(good_bytes))), max_bytes=20 * MIB)

    with pytest.raises(ObjectNotFound):
        store.get(key)
    assert leftovers() == []


def test_a_failed_overwrite_keeps_the_previous_object(store: ObjectStore) -> None:
    key = new_object_key("designs")
    store.put(key, io.BytesIO(b"original"), max_bytes=MIB)

    with pytest.raises(ObjectTooLarge):
        store.put(key, io.BytesIO(payload(2 * MIB)), max_bytes=MIB)

    assert read_all(store.get(key)) == b"original"


# --- keys ------------------------------------------------------------------------------------

BAD_KEYS = ["../etc/passwd", "/abs", "Designs/X", "a//b", "", "designs/", "designs/..", "a\\b", "designs/x\n"]


@pytest.mark.parametrize("key", BAD_KEYS, ids=repr)
def test_keys_not_made_by_the_gateway_are_refused_before_storage_is_touched(
    store: ObjectStore, tmp_path: Path, key: str
) -> None:
    before = sorted(str(path) for path in tmp_path.rglob("*"))
    stream = io.BytesIO(b"payload")

    with pytest.raises(InvalidObjectKey):
        store.put(key, stream, max_bytes=MIB)
    with pytest.raises(InvalidObjectKey):
        store.get(key)
    with pytest.raises(InvalidObjectKey):
        store.size(key)
    with pytest.raises(InvalidObjectKey):
        store.delete(key)

    assert stream.tell() == 0, "the upload stream must not be read for a refused key"
    assert sorted(str(path) for path in tmp_path.rglob("*")) == before


# --- missing objects and deletion --------------------------------------------------------------


def test_a_missing_object_raises_object_not_found(store: ObjectStore) -> None:
    key = new_object_key("designs")

    with pytest.raises(ObjectNotFound):
        store.get(key)
    with pytest.raises(ObjectNotFound):
        store.get(key, 10, 20)
    with pytest.raises(ObjectNotFound):
        store.size(key)


def test_delete_removes_the_object_and_deleting_twice_is_fine(store: ObjectStore) -> None:
    key = new_object_key("designs")
    store.put(key, io.BytesIO(b"design"), max_bytes=MIB)

    store.delete(key)

    with pytest.raises(ObjectNotFound):
        store.get(key)
    store.delete(key)
    store.delete(new_object_key("designs"))


# --- readiness and description -----------------------------------------------------------------


def test_check_ready_passes_on_a_working_store(store: ObjectStore) -> None:
    store.check_ready()


def test_check_ready_reports_a_broken_store(broken_store: ObjectStore) -> None:
    with pytest.raises(StorageUnavailable) as raised:
        broken_store.check_ready()

    assert "not a directory" in str(raised.value) or "does not exist" in str(raised.value)


def test_describe_says_where_objects_live(store: ObjectStore, tmp_path: Path) -> None:
    description = store.describe()

    if isinstance(store, LocalObjectStore):
        assert description == f"local directory {tmp_path / 'objects'}"
    else:
        assert description.startswith("s3://dentgate-test-")
        assert PREFIX in description and "127.0.0.1" in description and "AES256" in description


# --- local-only ------------------------------------------------------------------------------


def test_local_store_keeps_objects_private_and_outside_incoming(tmp_path: Path) -> None:
    root = tmp_path / "objects"
    store = LocalObjectStore(root)
    key = new_object_key("designs")

    store.put(key, io.BytesIO(b"design"), max_bytes=MIB)

    assert (root / key).read_bytes() == b"design"
    assert root.stat().st_mode & 0o777 == 0o700
    assert (root / key).stat().st_mode & 0o077 == 0
    assert list((root / ".incoming").iterdir()) == []


def test_local_check_ready_reports_a_root_that_vanished(tmp_path: Path) -> None:
    root = tmp_path / "objects"
    store = LocalObjectStore(root)
    shutil.rmtree(root)

    with pytest.raises(StorageUnavailable, match="missing"):
        store.check_ready()


# --- S3-only ---------------------------------------------------------------------------------


@pytest.mark.s3
@pytest.mark.parametrize("size", [1000, 12 * MIB], ids=["single-put", "multipart"])
def test_s3_objects_are_encrypted_at_rest_with_sse_aes256(moto_endpoint: str, s3_bucket: str, size: int) -> None:
    store = S3ObjectStore(
        s3_bucket, PREFIX, endpoint_url=moto_endpoint, region=REGION, sse="AES256", part_size=PART_SIZE
    )
    key = new_object_key("designs")
    store.put(key, io.BytesIO(payload(size)), max_bytes=size)

    head = s3_client(moto_endpoint).head_object(Bucket=s3_bucket, Key=f"{PREFIX}/{key}")

    assert head["ServerSideEncryption"] == "AES256"


@pytest.mark.s3
@pytest.mark.parametrize("size", [1000, 12 * MIB], ids=["single-put", "multipart"])
def test_s3_objects_can_be_encrypted_with_a_kms_key(
    moto_endpoint: str, s3_bucket: str, kms_key_id: str, size: int
) -> None:
    store = S3ObjectStore(
        s3_bucket,
        PREFIX,
        endpoint_url=moto_endpoint,
        region=REGION,
        sse="aws:kms",
        sse_kms_key_id=kms_key_id,
        part_size=PART_SIZE,
    )
    key = new_object_key("designs")
    data = payload(size)
    store.put(key, io.BytesIO(data), max_bytes=size)

    head = s3_client(moto_endpoint).head_object(Bucket=s3_bucket, Key=f"{PREFIX}/{key}")

    assert head["ServerSideEncryption"] == "aws:kms"
    assert kms_key_id in head["SSEKMSKeyId"]
    assert read_all(store.get(key)) == data


@pytest.mark.s3
@pytest.mark.parametrize(("size", "parts"), [(PART_SIZE - 1, 0), (PART_SIZE, 1), (12 * MIB, 3)])
def test_s3_uploads_larger_than_a_part_go_multipart(moto_endpoint: str, s3_bucket: str, size: int, parts: int) -> None:
    store = S3ObjectStore(s3_bucket, PREFIX, endpoint_url=moto_endpoint, region=REGION, part_size=PART_SIZE)
    key = new_object_key("designs")
    store.put(key, io.BytesIO(payload(size)), max_bytes=size)

    etag = s3_client(moto_endpoint).head_object(Bucket=s3_bucket, Key=f"{PREFIX}/{key}")["ETag"]

    if parts:
        assert etag.strip('"').endswith(f"-{parts}")
    else:
        assert "-" not in etag


@pytest.mark.s3
def test_s3_objects_live_under_the_prefix(moto_endpoint: str, s3_bucket: str) -> None:
    store = S3ObjectStore(s3_bucket, f"/{PREFIX}/", endpoint_url=moto_endpoint, region=REGION)
    key = new_object_key("designs")
    store.put(key, io.BytesIO(b"design"), max_bytes=MIB)

    listing = s3_client(moto_endpoint).list_objects_v2(Bucket=s3_bucket)

    assert [item["Key"] for item in listing["Contents"]] == [f"{PREFIX}/{key}"]


@pytest.mark.s3
def test_s3_check_ready_reports_an_unreachable_endpoint() -> None:
    store = S3ObjectStore("dentgate", endpoint_url=f"http://127.0.0.1:{closed_port()}", region=REGION)

    with pytest.raises(StorageUnavailable, match="unreachable"):
        store.check_ready()


def test_s3_store_refuses_parts_below_the_s3_minimum_and_kms_key_without_kms() -> None:
    with pytest.raises(ValueError, match="part_size"):
        S3ObjectStore("dentgate", client=object(), part_size=MIB)
    with pytest.raises(ValueError, match="aws:kms"):
        S3ObjectStore("dentgate", client=object(), sse="AES256", sse_kms_key_id="key-1")


# --- factory ---------------------------------------------------------------------------------


def test_factory_maps_file_urls_to_a_local_store(tmp_path: Path) -> None:
    root = tmp_path / "lab data" / "objects"

    store = open_object_store(Settings(storage_url=root.as_uri()))

    assert isinstance(store, LocalObjectStore)
    assert store.describe() == f"local directory {root}"
    assert root.is_dir()


def test_factory_defaults_to_objects_in_the_data_directory(tmp_path: Path) -> None:
    store = open_object_store(Settings(data_dir=tmp_path))

    assert isinstance(store, LocalObjectStore)
    assert store.describe() == f"local directory {tmp_path.resolve() / 'objects'}"


@pytest.mark.s3
def test_factory_maps_s3_urls_to_an_s3_store_with_the_settings(moto_endpoint: str, s3_bucket: str) -> None:
    settings = Settings(
        storage_url=f"s3://{s3_bucket}/{PREFIX}",
        s3_endpoint_url=moto_endpoint,
        s3_region=REGION,
        s3_sse="AES256",
    )

    store = open_object_store(settings)
    store.check_ready()
    key = new_object_key("designs")
    store.put(key, io.BytesIO(b"design"), max_bytes=MIB)

    assert isinstance(store, S3ObjectStore)
    assert store.describe() == f"s3://{s3_bucket}/{PREFIX} at {moto_endpoint} (SSE: AES256)"
    head = s3_client(moto_endpoint).head_object(Bucket=s3_bucket, Key=f"{PREFIX}/{key}")
    assert head["ServerSideEncryption"] == "AES256"


def test_factory_refuses_an_unknown_scheme() -> None:
    settings = Settings.model_construct(storage_url="ftp://example.org/objects")

    with pytest.raises(ValueError, match="scheme"):
        open_object_store(settings)


def test_factory_refuses_a_file_url_with_a_remote_host() -> None:
    with pytest.raises(ValueError, match="remote host"):
        open_object_store(Settings(storage_url="file://fileserver/objects"))
