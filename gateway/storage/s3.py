"""Object storage in an S3 bucket: streamed multipart uploads, aborted on any failure."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, BinaryIO

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError, EndpointConnectionError

from gateway.storage import (
    CHUNK_SIZE,
    InvalidRange,
    ObjectNotFound,
    ObjectTooLarge,
    StorageUnavailable,
    StoredObject,
    validate_key,
)

MIN_PART_SIZE = 5 * 1024 * 1024
MAX_PART_SIZE = 5 * 1024 * 1024 * 1024
_NOT_FOUND_CODES = {"NoSuchKey", "404", "NotFound"}


def _error_code(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code", "Unknown"))


def _error_text(error: ClientError) -> str:
    details = error.response.get("Error", {})
    return f"{details.get('Code', 'Unknown')}: {details.get('Message', '') or 'no message'}"


def _sse_arguments(sse: str, kms_key_id: str | None) -> dict[str, str]:
    """The ServerSideEncryption/SSEKMSKeyId arguments for put_object and create_multipart_upload."""
    if kms_key_id and sse != "aws:kms":
        raise ValueError(f"an SSE-KMS key id is set but SSE is {sse!r}, not 'aws:kms'")
    if sse == "none":
        return {}
    if sse == "AES256":
        return {"ServerSideEncryption": "AES256"}
    if sse == "aws:kms":
        arguments = {"ServerSideEncryption": "aws:kms"}
        if kms_key_id:
            arguments["SSEKMSKeyId"] = kms_key_id
        return arguments
    raise ValueError(f"unknown SSE mode {sse!r}: use 'none', 'AES256' or 'aws:kms'")


def make_s3_client(endpoint_url: str | None, region: str | None) -> Any:
    """A boto3 S3 client with short connect timeouts, bounded retries, path-style on custom endpoints."""
    config = Config(
        connect_timeout=3,
        read_timeout=30,
        retries={"mode": "standard", "max_attempts": 3},
        s3={"addressing_style": "path"} if endpoint_url else None,
    )
    session = boto3.session.Session()
    return session.client("s3", endpoint_url=endpoint_url, region_name=region, config=config)


@dataclass(frozen=True)
class S3Target:
    """Where and how objects go in S3: checked once, shared by the object store and the staging area."""

    bucket: str
    prefix: str
    client: Any
    sse_arguments: dict[str, str]
    part_size: int


def s3_target(
    bucket: str,
    prefix: str,
    client: Any,
    endpoint_url: str | None,
    region: str | None,
    sse: str,
    sse_kms_key_id: str | None,
    part_size: int,
) -> S3Target:
    """Validate the bucket, part size and SSE settings; make a client unless one is given."""
    if not bucket:
        raise ValueError("an S3 bucket name is required")
    if not MIN_PART_SIZE <= part_size <= MAX_PART_SIZE:
        raise ValueError(f"part_size must be between {MIN_PART_SIZE} and {MAX_PART_SIZE} bytes")
    return S3Target(
        bucket=bucket,
        prefix=prefix.strip("/"),
        client=client if client is not None else make_s3_client(endpoint_url, region),
        sse_arguments=_sse_arguments(sse, sse_kms_key_id),
        part_size=part_size,
    )


class S3ObjectStore:
    """Objects under `prefix/` in one bucket; memory per upload is bounded by one part."""

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
        self._endpoint_url = endpoint_url
        self._region = region
        self._sse = sse
        self._sse_kms_key_id = sse_kms_key_id

    def _name(self, key: str) -> str:
        validate_key(key)
        return f"{self._prefix}/{key}" if self._prefix else key

    def _where(self) -> str:
        return self._endpoint_url or (f"AWS ({self._region})" if self._region else "AWS")

    def _translate(self, error: ClientError, key: str, operation: str) -> Exception:
        """A ClientError as the storage error a caller understands."""
        code = _error_code(error)
        status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        if code in _NOT_FOUND_CODES:
            return ObjectNotFound(f"object {key} not found")
        if code == "InvalidRange" or status == 416:
            return InvalidRange(f"byte range not satisfiable for object {key}")
        return StorageUnavailable(f"S3 {operation} on {self._bucket} failed: {_error_text(error)}")

    def put(self, key: str, stream: BinaryIO, max_bytes: int) -> StoredObject:
        """One put_object when the stream fits one part, else multipart; aborted on any failure."""
        name = self._name(key)
        digest = hashlib.sha256()
        count = 0
        upload_id: str | None = None
        parts: list[dict[str, Any]] = []
        buffer = bytearray()
        try:
            while chunk := stream.read(min(CHUNK_SIZE, self._part_size - len(buffer))):
                count += len(chunk)
                if count > max_bytes:
                    raise ObjectTooLarge(f"object exceeds the cap of {max_bytes} bytes")
                digest.update(chunk)
                buffer += chunk
                if len(buffer) >= self._part_size:
                    if upload_id is None:
                        upload_id = self._client.create_multipart_upload(
                            Bucket=self._bucket, Key=name, **self._sse_arguments
                        )["UploadId"]
                    parts.append(self._upload_part(name, upload_id, len(parts) + 1, buffer))
                    buffer = bytearray()
            if upload_id is None:
                self._client.put_object(Bucket=self._bucket, Key=name, Body=buffer, **self._sse_arguments)
            else:
                if buffer:
                    parts.append(self._upload_part(name, upload_id, len(parts) + 1, buffer))
                self._client.complete_multipart_upload(
                    Bucket=self._bucket, Key=name, UploadId=upload_id, MultipartUpload={"Parts": parts}
                )
        except BaseException as error:
            if upload_id is not None:
                self._abort(name, upload_id, error)
            if isinstance(error, ClientError):
                raise self._translate(error, key, "upload") from error
            if isinstance(error, BotoCoreError):
                raise StorageUnavailable(f"S3 upload to {self._bucket} failed: {error}") from error
            raise
        return StoredObject(key=key, size=count, sha256=digest.hexdigest())

    def _upload_part(self, name: str, upload_id: str, number: int, data: bytearray) -> dict[str, Any]:
        response = self._client.upload_part(
            Bucket=self._bucket, Key=name, UploadId=upload_id, PartNumber=number, Body=data
        )
        return {"PartNumber": number, "ETag": response["ETag"]}

    def _abort(self, name: str, upload_id: str, cause: BaseException) -> None:
        """Abort a multipart upload; if that fails too, say so on the original error."""
        try:
            self._client.abort_multipart_upload(Bucket=self._bucket, Key=name, UploadId=upload_id)
        except (ClientError, BotoCoreError) as error:
            cause.add_note(f"aborting multipart upload {upload_id} of {name} also failed: {error}")

    def get(self, key: str, start: int = 0, end: int | None = None) -> Iterator[bytes]:
        """Request the range eagerly (errors surface here), then stream the body in CHUNK_SIZE pieces."""
        name = self._name(key)
        if start < 0 or (end is not None and end < start):
            raise InvalidRange(f"byte range {start}-{'' if end is None else end} is malformed")
        range_argument = {}
        if start > 0 or end is not None:
            range_argument["Range"] = f"bytes={start}-{'' if end is None else end}"
        try:
            response = self._client.get_object(Bucket=self._bucket, Key=name, **range_argument)
        except ClientError as error:
            raise self._translate(error, key, "download") from error
        except BotoCoreError as error:
            raise StorageUnavailable(f"S3 download from {self._bucket} failed: {error}") from error
        return self._stream(response["Body"])

    def _stream(self, body: Any) -> Iterator[bytes]:
        try:
            yield from body.iter_chunks(CHUNK_SIZE)
        except BotoCoreError as error:
            raise StorageUnavailable(f"S3 download from {self._bucket} broke off: {error}") from error
        finally:
            body.close()

    def size(self, key: str) -> int:
        """ContentLength from head_object; ObjectNotFound if absent."""
        name = self._name(key)
        try:
            return int(self._client.head_object(Bucket=self._bucket, Key=name)["ContentLength"])
        except ClientError as error:
            raise self._translate(error, key, "head") from error
        except BotoCoreError as error:
            raise StorageUnavailable(f"S3 head on {self._bucket} failed: {error}") from error

    def delete(self, key: str) -> None:
        """delete_object; S3 itself treats an absent key as success."""
        name = self._name(key)
        try:
            self._client.delete_object(Bucket=self._bucket, Key=name)
        except ClientError as error:
            raise self._translate(error, key, "delete") from error
        except BotoCoreError as error:
            raise StorageUnavailable(f"S3 delete on {self._bucket} failed: {error}") from error

    def check_ready(self) -> None:
        """head_bucket: the bucket exists and these credentials may use it."""
        try:
            self._client.head_bucket(Bucket=self._bucket)
        except ClientError as error:
            code = _error_code(error)
            if code in ("404", "NoSuchBucket", "NotFound"):
                reason = f"bucket {self._bucket} does not exist"
            elif code in ("403", "AccessDenied", "Forbidden"):
                reason = f"access to bucket {self._bucket} is denied"
            else:
                reason = f"bucket {self._bucket} is unusable ({_error_text(error)})"
            raise StorageUnavailable(f"S3 at {self._where()}: {reason}") from error
        except EndpointConnectionError as error:
            raise StorageUnavailable(f"S3 endpoint {self._where()} unreachable: {error}") from error
        except BotoCoreError as error:
            raise StorageUnavailable(f"S3 at {self._where()} unusable: {error}") from error

    def describe(self) -> str:
        if self._sse == "aws:kms":
            encryption = f"aws:kms, key {self._sse_kms_key_id or 'AWS-managed'}"
        else:
            encryption = self._sse
        return f"s3://{self._bucket}/{self._prefix} at {self._where()} (SSE: {encryption})"
