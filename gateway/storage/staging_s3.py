"""Resumable-upload staging in the object store's S3 bucket: one multipart upload per upload, plus a tail object.

S3 parts other than the last must be at least 5 MiB, but a client may send chunks of any size, so the bytes
after the last full part live in a small "tail" object (like tusd's s3store "incomplete part"). An append reads
the tail, emits every full part with upload_part, stores the rest as a new tail, and only then returns the new
handle. Nothing lives in process memory or on local disk between calls, so any replica can take the next chunk.

Names (`p` = the store's prefix, `k` = the upload key):
- the multipart upload is created on `p/k`, the object store's own name for key `k`: completing with
  `final_key == k` needs no copy, any other final key costs one server-side copy;
- tails are `p/.staging/k.tail.<random>`: a fresh name per append, so the tail of the last *persisted* handle
  survives an append whose handle was never saved; a superseded tail is deleted on the next call.
"""

from __future__ import annotations

import contextlib
import hashlib
import secrets
from collections import defaultdict
from collections.abc import Iterator
from datetime import datetime
from typing import Any, BinaryIO

from botocore.exceptions import BotoCoreError, ClientError

from gateway.storage import (
    CHUNK_SIZE,
    ObjectTooLarge,
    StorageUnavailable,
    StoredObject,
    validate_key,
)
from gateway.storage.s3 import _error_code, _error_text, s3_target
from gateway.storage.staging import (
    ChunkCounter,
    StagedPart,
    StagingHandle,
    StagingLost,
    as_utc,
    check_offset,
)

MAX_PARTS = 10_000
SINGLE_COPY_LIMIT = 5 * 1024 * 1024 * 1024
COPY_PART_SIZE = 512 * 1024 * 1024
_STAGING = ".staging"
_GONE_CODES = {"NoSuchUpload", "NoSuchKey", "404", "NotFound", "PreconditionFailed", "412"}
# complete_multipart_upload: a listed part is missing or has another ETag (a second writer replaced it).
_ASSEMBLY_GONE_CODES = _GONE_CODES | {"InvalidPart", "InvalidPartOrder"}


class _Gone(Exception):
    """Internal: a staging piece (upload, part or tail) no longer exists or has changed."""


class S3StagingArea:
    """Staged uploads in `bucket` under the object store's `prefix`; memory per append is bounded by one part."""

    def __init__(
        self,
        bucket: str,
        prefix: str = "",
        client: Any = None,
        endpoint_url: str | None = None,
        region: str | None = None,
        sse: str = "AES256",
        sse_kms_key_id: str | None = None,
        part_size: int = 8 * 1024 * 1024,
    ) -> None:
        target = s3_target(bucket, prefix, client, endpoint_url, region, sse, sse_kms_key_id, part_size)
        self._bucket, self._prefix, self._client = target.bucket, target.prefix, target.client
        self._sse_arguments, self._part_size = target.sse_arguments, target.part_size
        self._staging = f"{self._prefix}/{_STAGING}/" if self._prefix else f"{_STAGING}/"

    # --- names ---------------------------------------------------------------------------------

    def _object_name(self, key: str) -> str:
        validate_key(key)
        return f"{self._prefix}/{key}" if self._prefix else key

    def _tail_name(self, key: str, tail: str) -> str:
        return f"{self._staging}{key}.tail.{tail}"

    def _helper_prefix(self, key: str) -> str:
        """Every helper object of upload `key` starts with this (keys never contain `.`)."""
        return f"{self._staging}{key}."

    def _checked(self, handle: StagingHandle) -> StagingHandle:
        if handle.backend != "s3":
            raise ValueError(f"a {handle.backend} staging handle cannot be used with S3 staging")
        return handle.check()

    def _failure(self, error: Exception, operation: str, key: str) -> Exception:
        if isinstance(error, _Gone):
            return StagingLost(f"staged data of upload {key} is gone: {error}")
        if isinstance(error, ClientError):
            if _error_code(error) == "NoSuchUpload":
                return StagingLost(f"the multipart upload of upload {key} is gone")
            return StorageUnavailable(f"S3 {operation} on {self._bucket} failed: {_error_text(error)}")
        return StorageUnavailable(f"S3 {operation} on {self._bucket} failed: {error}")

    # --- begin / append ------------------------------------------------------------------------

    def begin(self, upload_key: str) -> StagingHandle:
        """Create the multipart upload (with the store's SSE settings) on the object store's name for the key."""
        name = self._object_name(upload_key)
        try:
            response = self._client.create_multipart_upload(Bucket=self._bucket, Key=name, **self._sse_arguments)
        except (ClientError, BotoCoreError) as error:
            raise self._failure(error, "create multipart upload", upload_key) from error
        return StagingHandle(backend="s3", key=upload_key, upload_id=response["UploadId"])

    def append(
        self, handle: StagingHandle, offset: int, stream: BinaryIO, max_total: int, max_chunk: int
    ) -> StagingHandle:
        """Tail + chunk → full parts (upload_part) + a new tail object; the previous handle stays valid on error."""
        self._checked(handle)
        check_offset(handle, offset)
        counter = ChunkCounter(handle.offset, max_total, max_chunk)
        chunk = stream.read(CHUNK_SIZE)
        if not chunk:
            return handle
        counter.add(len(chunk))
        try:
            if handle.stale_tail:
                self._delete_best_effort(self._tail_name(handle.key, handle.stale_tail))
            buffer = self._read_tail(handle)
            parts = list(handle.parts)
            while chunk:
                view = memoryview(chunk)
                while view:
                    room = self._part_size - len(buffer)
                    buffer += view[:room]
                    view = view[room:]
                    if len(buffer) == self._part_size:
                        parts.append(self._upload_part(handle, len(parts) + 1, buffer))
                        buffer = bytearray()
                del view
                chunk = stream.read(min(CHUNK_SIZE, self._part_size - len(buffer)))
                counter.add(len(chunk))
            tail = tail_etag = None
            if buffer:
                tail = secrets.token_hex(8)
                tail_etag = self._client.put_object(
                    Bucket=self._bucket, Key=self._tail_name(handle.key, tail), Body=buffer, **self._sse_arguments
                )["ETag"]
        except (ClientError, BotoCoreError, _Gone) as error:
            raise self._failure(error, "append", handle.key) from error
        return StagingHandle(
            backend="s3",
            key=handle.key,
            offset=counter.total,
            upload_id=handle.upload_id,
            parts=tuple(parts),
            tail=tail,
            tail_etag=tail_etag,
            tail_size=len(buffer),
            stale_tail=handle.tail,
        )

    def _read_tail(self, handle: StagingHandle) -> bytearray:
        """The persisted tail's bytes, checked against its ETag and size; _Gone if missing or changed."""
        buffer = bytearray()
        if handle.tail is None:
            return buffer
        name = self._tail_name(handle.key, handle.tail)
        try:
            response = self._client.get_object(Bucket=self._bucket, Key=name, IfMatch=handle.tail_etag)
        except ClientError as error:
            if _error_code(error) in _GONE_CODES:
                raise _Gone(f"tail {name} is missing or was replaced") from error
            raise
        body = response["Body"]
        try:
            for piece in body.iter_chunks(CHUNK_SIZE):
                buffer += piece
        finally:
            body.close()
        if len(buffer) != handle.tail_size:
            raise _Gone(f"tail {name} has {len(buffer)} bytes, not {handle.tail_size}")
        return buffer

    def _upload_part(self, handle: StagingHandle, number: int, body: bytearray) -> StagedPart:
        if number > MAX_PARTS:
            raise ObjectTooLarge(f"upload {handle.key} would need more than {MAX_PARTS} parts")
        response = self._client.upload_part(
            Bucket=self._bucket,
            Key=self._object_name(handle.key),
            UploadId=handle.upload_id,
            PartNumber=number,
            Body=body,
        )
        return StagedPart(number=number, etag=response["ETag"], size=len(body))

    # --- complete ------------------------------------------------------------------------------

    def complete(self, handle: StagingHandle, final_key: str) -> StoredObject:
        """Tail → last part (server-side copy), complete_multipart_upload, copy if `final_key` differs, hash, clean.

        An upload smaller than one part has no parts: its tail is copied to the final name (an empty upload puts
        an empty object) and the multipart upload is aborted.
        """
        self._checked(handle)
        final_name = self._object_name(final_key)
        upload_name = self._object_name(handle.key)
        try:
            try:
                if handle.parts:
                    self._complete_multipart(handle, upload_name)
                    if upload_name != final_name:
                        self._copy(upload_name, final_name, handle.offset)
                elif handle.tail is not None:
                    self._client.copy_object(
                        Bucket=self._bucket,
                        Key=final_name,
                        CopySource={"Bucket": self._bucket, "Key": self._tail_name(handle.key, handle.tail)},
                        CopySourceIfMatch=handle.tail_etag,
                        **self._sse_arguments,
                    )
                else:
                    self._client.put_object(Bucket=self._bucket, Key=final_name, Body=b"", **self._sse_arguments)
            except ClientError as error:
                if _error_code(error) not in _ASSEMBLY_GONE_CODES:
                    raise
                self._resume_complete(handle, upload_name, final_name, error)
            stored = self._hash(final_name, final_key)
            if stored.size != handle.offset:
                raise _Gone(f"object {final_key} has {stored.size} bytes but {handle.offset} were staged")
            if handle.parts and upload_name != final_name:
                self._delete_quietly(upload_name)
            self._discard(handle)
        except (ClientError, BotoCoreError, _Gone) as error:
            raise self._failure(error, "complete", handle.key) from error
        return stored

    def _complete_multipart(self, handle: StagingHandle, upload_name: str) -> None:
        parts = [{"PartNumber": part.number, "ETag": part.etag} for part in handle.parts]
        if handle.tail is not None:
            response = self._client.upload_part_copy(
                Bucket=self._bucket,
                Key=upload_name,
                UploadId=handle.upload_id,
                PartNumber=len(parts) + 1,
                CopySource={"Bucket": self._bucket, "Key": self._tail_name(handle.key, handle.tail)},
                CopySourceIfMatch=handle.tail_etag,
            )
            parts.append({"PartNumber": len(parts) + 1, "ETag": response["CopyPartResult"]["ETag"]})
        self._client.complete_multipart_upload(
            Bucket=self._bucket, Key=upload_name, UploadId=handle.upload_id, MultipartUpload={"Parts": parts}
        )

    def _resume_complete(self, handle: StagingHandle, upload_name: str, final_name: str, cause: ClientError) -> None:
        """A piece is gone: fine if an earlier complete already assembled the upload, else _Gone."""
        if handle.parts and upload_name != final_name and self._size(upload_name) == handle.offset:
            self._copy(upload_name, final_name, handle.offset)
            return
        if self._size(final_name) == handle.offset:
            return
        raise _Gone(f"{_error_text(cause)}, and no assembled object of {handle.offset} bytes exists") from cause

    def _size(self, name: str) -> int | None:
        try:
            return int(self._client.head_object(Bucket=self._bucket, Key=name)["ContentLength"])
        except ClientError as error:
            if _error_code(error) in _GONE_CODES:
                return None
            raise

    def _copy(self, source: str, target: str, size: int) -> None:
        """Server-side copy with the store's SSE settings; multipart copy above the single-copy limit."""
        copy_source = {"Bucket": self._bucket, "Key": source}
        if size <= SINGLE_COPY_LIMIT:
            self._client.copy_object(Bucket=self._bucket, Key=target, CopySource=copy_source, **self._sse_arguments)
            return
        upload_id = self._client.create_multipart_upload(Bucket=self._bucket, Key=target, **self._sse_arguments)[
            "UploadId"
        ]
        try:
            parts = []
            for number, start in enumerate(range(0, size, COPY_PART_SIZE), start=1):
                end = min(start + COPY_PART_SIZE, size) - 1
                response = self._client.upload_part_copy(
                    Bucket=self._bucket,
                    Key=target,
                    UploadId=upload_id,
                    PartNumber=number,
                    CopySource=copy_source,
                    CopySourceRange=f"bytes={start}-{end}",
                )
                parts.append({"PartNumber": number, "ETag": response["CopyPartResult"]["ETag"]})
            self._client.complete_multipart_upload(
                Bucket=self._bucket, Key=target, UploadId=upload_id, MultipartUpload={"Parts": parts}
            )
        except BaseException as error:
            try:
                self._client.abort_multipart_upload(Bucket=self._bucket, Key=target, UploadId=upload_id)
            except (ClientError, BotoCoreError) as abort_error:
                error.add_note(f"aborting the copy's multipart upload {upload_id} also failed: {abort_error}")
            raise

    def _hash(self, name: str, key: str) -> StoredObject:
        response = self._client.get_object(Bucket=self._bucket, Key=name)
        body = response["Body"]
        digest = hashlib.sha256()
        count = 0
        try:
            for piece in body.iter_chunks(CHUNK_SIZE):
                digest.update(piece)
                count += len(piece)
        finally:
            body.close()
        return StoredObject(key=key, size=count, sha256=digest.hexdigest())

    # --- abort / sweep -------------------------------------------------------------------------

    def abort(self, handle: StagingHandle) -> None:
        """Abort the multipart upload(s) of the upload and delete its helper objects; aborting twice is fine."""
        self._checked(handle)
        try:
            self._discard(handle)
        except (ClientError, BotoCoreError) as error:
            raise self._failure(error, "abort", handle.key) from error

    def _discard(self, handle: StagingHandle) -> None:
        """Abort every multipart upload on the upload's name and delete its tails (current, stale or orphaned).

        An object already assembled under the upload's own name is left alone: it may be the completed object.
        """
        name = self._object_name(handle.key)
        upload_ids = {upload["UploadId"] for upload in self._uploads(name) if upload["Key"] == name}
        upload_ids.add(str(handle.upload_id))
        for upload_id in sorted(upload_ids):
            self._abort_quietly(name, upload_id)
        for item in self._objects(self._helper_prefix(handle.key)):
            self._delete_quietly(item["Key"])

    def sweep(self, older_than: datetime) -> int:
        """Remove uploads with no activity (initiated, part or tail written) since `older_than`; returns how many.

        Looks at multipart uploads under the store's prefix and helper objects under `.staging/`. A multipart
        upload of the object store's own `put` is only removed if it too has been idle since `older_than`.
        """
        cutoff = as_utc(older_than)
        activity: dict[str, datetime] = {}
        uploads: dict[str, list[tuple[str, str]]] = defaultdict(list)
        helpers: dict[str, list[str]] = defaultdict(list)
        object_prefix = f"{self._prefix}/" if self._prefix else ""

        def touch(key: str, moment: datetime) -> None:
            if key not in activity or moment > activity[key]:
                activity[key] = moment

        try:
            for upload in self._uploads(object_prefix):
                key = upload["Key"][len(object_prefix) :]
                if not upload["Key"].startswith(object_prefix) or key.startswith(f"{_STAGING}/"):
                    continue
                uploads[key].append((upload["Key"], upload["UploadId"]))
                touch(key, upload["Initiated"])
                if upload["Initiated"] < cutoff:
                    for part in self._parts(upload["Key"], upload["UploadId"]):
                        touch(key, part["LastModified"])
            for item in self._objects(self._staging):
                key = item["Key"][len(self._staging) :].split(".", 1)[0]
                helpers[key].append(item["Key"])
                touch(key, item["LastModified"])
            removed = 0
            for key, moment in activity.items():
                if moment >= cutoff:
                    continue
                for name, upload_id in uploads.get(key, []):
                    self._abort_quietly(name, upload_id)
                for name in helpers.get(key, []):
                    self._delete_quietly(name)
                removed += 1
        except (ClientError, BotoCoreError) as error:
            raise StorageUnavailable(f"S3 sweep of {self._bucket} failed: {_error_text(error)}") from error
        return removed

    # --- listing and quiet deletes -------------------------------------------------------------

    def _uploads(self, prefix: str) -> Iterator[dict[str, Any]]:
        arguments: dict[str, Any] = {"Bucket": self._bucket, "Prefix": prefix}
        while True:
            response = self._client.list_multipart_uploads(**arguments)
            for upload in response.get("Uploads", []):
                if upload["Key"].startswith(prefix):
                    yield upload
            if not response.get("IsTruncated"):
                return
            arguments["KeyMarker"] = response["NextKeyMarker"]
            arguments["UploadIdMarker"] = response["NextUploadIdMarker"]

    def _parts(self, name: str, upload_id: str) -> Iterator[dict[str, Any]]:
        arguments: dict[str, Any] = {"Bucket": self._bucket, "Key": name, "UploadId": upload_id}
        try:
            while True:
                response = self._client.list_parts(**arguments)
                yield from response.get("Parts", [])
                if not response.get("IsTruncated"):
                    return
                arguments["PartNumberMarker"] = response["NextPartNumberMarker"]
        except ClientError as error:
            if _error_code(error) != "NoSuchUpload":
                raise

    def _objects(self, prefix: str) -> Iterator[dict[str, Any]]:
        arguments: dict[str, Any] = {"Bucket": self._bucket, "Prefix": prefix}
        while True:
            response = self._client.list_objects_v2(**arguments)
            for item in response.get("Contents", []):
                if item["Key"].startswith(prefix):
                    yield item
            if not response.get("IsTruncated"):
                return
            arguments["ContinuationToken"] = response["NextContinuationToken"]

    def _abort_quietly(self, name: str, upload_id: str) -> None:
        try:
            self._client.abort_multipart_upload(Bucket=self._bucket, Key=name, UploadId=upload_id)
        except ClientError as error:
            if _error_code(error) not in _GONE_CODES:
                raise

    def _delete_quietly(self, name: str) -> None:
        """delete_object; S3 itself treats an absent key as success."""
        self._client.delete_object(Bucket=self._bucket, Key=name)

    def _delete_best_effort(self, name: str) -> None:
        """delete_object ignoring failures: leftovers are removed by complete, abort or sweep."""
        with contextlib.suppress(ClientError, BotoCoreError):
            self._client.delete_object(Bucket=self._bucket, Key=name)
