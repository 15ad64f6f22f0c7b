"""Signed audit checkpoints published outside the database (G19): an append-only file, or S3 under Object Lock.

Whoever controls the database can delete a chain's tail, its checkpoint rows and rewind its head,
or recompute a rewritten history; a checkpoint already published elsewhere still names the
sequence number and hash the chain had, signed by the gateway key.
"""

from __future__ import annotations

import base64
import json
import os
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import unquote, urlsplit

import structlog
from botocore.exceptions import BotoCoreError, ClientError
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from sqlalchemy.orm import Session

from gateway.audit.chain import FORMAT, ChainBroken, VerifiedChain, canonical_json, checkpoint_statement, format_instant
from gateway.audit.models import AuditCheckpoint
from gateway.audit.service import verify
from gateway.errors import DentGateError
from gateway.files import fsync_directory, write_all
from gateway.policy import AuditPolicy, default_policy
from gateway.settings import Settings
from gateway.storage.s3 import S3Target, s3_target

CHECKPOINT_FORMAT = f"{FORMAT}-checkpoint"
log = structlog.get_logger("dentgate.audit.publication")


def add_years(instant: datetime, years: int) -> datetime:
    """The same date and time `years` later (29 February becomes 28 February)."""
    try:
        return instant.replace(year=instant.year + years)
    except ValueError:
        return instant.replace(year=instant.year + years, day=28)


class PublicationFailed(DentGateError):
    """Publishing or reading back failed for now (endpoint, disk); publication is retried later."""

    code = "checkpoint-publication-failed"
    status = 503
    title = "Audit checkpoints could not be published"


class PublicationUnusable(DentGateError):
    """The configured destination can never hold checkpoints safely (e.g. a bucket without Object Lock)."""

    code = "checkpoint-publication-unusable"
    status = 500
    title = "Audit checkpoint publication is misconfigured"


@dataclass(frozen=True)
class PublishedCheckpoint:
    """A checkpoint as it leaves the database: the signed statement's fields, the key id and signature."""

    lab_id: uuid.UUID
    seq: int
    hash: str
    signed_at: datetime
    key_id: str
    signature: str

    @classmethod
    def of(cls, row: AuditCheckpoint) -> PublishedCheckpoint:
        return cls(row.lab_id, row.seq, row.hash, row.signed_at, row.key_id, row.signature)

    def to_json(self) -> bytes:
        return canonical_json(
            {
                "format": CHECKPOINT_FORMAT,
                "lab": str(self.lab_id),
                "seq": self.seq,
                "hash": self.hash,
                "signed_at": format_instant(self.signed_at),
                "key_id": self.key_id,
                "signature": self.signature,
            }
        )

    @classmethod
    def from_json(cls, data: bytes) -> PublishedCheckpoint:
        """Parse one published checkpoint; ValueError when it is not one."""
        try:
            value: Any = json.loads(data)
            if not isinstance(value, dict) or value.get("format") != CHECKPOINT_FORMAT:
                raise ValueError("not a DentGate audit checkpoint")
            seq = value["seq"]
            if not isinstance(seq, int) or seq < 0:
                raise ValueError("seq is not a sequence number")
            signed_at = datetime.strptime(value["signed_at"], "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)
            return cls(uuid.UUID(value["lab"]), seq, str(value["hash"]), signed_at, str(value["key_id"]),
                       str(value["signature"]))  # fmt: skip
        except (KeyError, TypeError, UnicodeDecodeError) as error:
            raise ValueError(f"malformed checkpoint: {error!r}") from error

    def check_signature(self, public_key: bytes) -> None:
        """ChainBroken at `seq` unless the gateway key signed exactly this statement (RFC 8032)."""
        statement = checkpoint_statement(self.lab_id, self.seq, self.hash, self.signed_at)
        try:
            Ed25519PublicKey.from_public_bytes(public_key).verify(base64.b64decode(self.signature), statement)
        except (InvalidSignature, ValueError) as error:
            raise ChainBroken(self.seq, "published checkpoint signature does not verify") from error


class Publisher(Protocol):
    def publish(self, checkpoint: PublishedCheckpoint) -> None:
        """Store `checkpoint` outside the database; publishing it again is harmless. PublicationFailed."""
        ...

    def published(self, lab_id: uuid.UUID) -> list[PublishedCheckpoint]:
        """Every checkpoint published for the lab (duplicates possible). PublicationFailed."""
        ...

    def describe(self) -> str: ...


class FilePublisher:
    """One JSON line per checkpoint appended (O_APPEND, fsync) to a local file created 0600."""

    def __init__(self, path: Path) -> None:
        if not path.is_absolute():
            raise ValueError(f"checkpoint file {path} must be an absolute path")
        self.path = path

    def publish(self, checkpoint: PublishedCheckpoint) -> None:
        line = checkpoint.to_json() + b"\n"
        try:
            created = not self.path.exists()
            self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o600)
            try:
                size = os.fstat(fd).st_size
                if size and os.pread(fd, 1, size - 1) != b"\n":
                    line = b"\n" + line  # a torn line from a crash stays on its own line
                write_all(fd, line)
                os.fsync(fd)
            finally:
                os.close(fd)
            if created:
                fsync_directory(self.path.parent)
        except OSError as error:
            raise PublicationFailed(f"appending to {self.path} failed: {error}") from error

    def published(self, lab_id: uuid.UUID) -> list[PublishedCheckpoint]:
        found: list[PublishedCheckpoint] = []
        try:
            with self.path.open("rb") as lines:
                for number, line in enumerate(lines, start=1):
                    try:
                        checkpoint = PublishedCheckpoint.from_json(line)
                    except ValueError as error:  # a torn write: its checkpoint stayed unpublished and was retried
                        log.warning("unreadable line in the checkpoint file", path=str(self.path), line=number,
                                    error=str(error))  # fmt: skip
                        continue
                    if checkpoint.lab_id == lab_id:
                        found.append(checkpoint)
        except FileNotFoundError:
            return []
        except OSError as error:
            raise PublicationFailed(f"reading {self.path} failed: {error}") from error
        return found

    def describe(self) -> str:
        return f"file {self.path}"


def _s3_error(error: ClientError | BotoCoreError) -> str:
    if isinstance(error, ClientError):
        details = error.response.get("Error", {})
        return f"{details.get('Code', 'Unknown')}: {details.get('Message', '') or 'no message'}"
    return str(error)


class S3Publisher:
    """One object per checkpoint, `prefix/<lab>/<seq:020d>.json`, locked in COMPLIANCE mode until
    signed_at + the longest retention; the bucket must have Object Lock enabled."""

    def __init__(self, target: S3Target, retain_years: int, where: str) -> None:
        self._target = target
        self._retain_years = retain_years
        self._where = where
        self._lock_checked = False

    def _key(self, lab_id: uuid.UUID, seq: int | None = None) -> str:
        name = f"{lab_id}/" if seq is None else f"{lab_id}/{seq:020d}.json"
        return f"{self._target.prefix}/{name}" if self._target.prefix else name

    def check_object_lock(self) -> None:
        """PublicationUnusable unless the bucket has Object Lock enabled; PublicationFailed if unreachable."""
        bucket = self._target.bucket
        try:
            answer = self._target.client.get_object_lock_configuration(Bucket=bucket)
        except ClientError as error:
            code = str(error.response.get("Error", {}).get("Code", ""))
            if code in ("ObjectLockConfigurationNotFoundError", "NoSuchBucket", "AccessDenied", "404", "403"):
                raise PublicationUnusable(
                    f"bucket {bucket} at {self._where} cannot hold audit checkpoints ({_s3_error(error)}): "
                    "create it with Object Lock enabled, and allow s3:GetBucketObjectLockConfiguration"
                ) from error
            raise PublicationFailed(f"S3 at {self._where}: {_s3_error(error)}") from error
        except BotoCoreError as error:
            raise PublicationFailed(f"S3 at {self._where} unreachable: {error}") from error
        if answer.get("ObjectLockConfiguration", {}).get("ObjectLockEnabled") != "Enabled":
            raise PublicationUnusable(f"bucket {bucket} at {self._where} does not have Object Lock enabled")
        self._lock_checked = True

    def publish(self, checkpoint: PublishedCheckpoint) -> None:
        if not self._lock_checked:
            self.check_object_lock()
        key, body = self._key(checkpoint.lab_id, checkpoint.seq), checkpoint.to_json()
        client, bucket = self._target.client, self._target.bucket
        try:
            current = self._current_body(key)
            if current == body:
                return
            if current is not None:  # both versions stay; verification reads every version and compares them
                log.warning("another checkpoint is already published at this sequence number", key=key)
            client.put_object(
                Bucket=bucket,
                Key=key,
                Body=body,
                ContentType="application/json",
                ObjectLockMode="COMPLIANCE",
                ObjectLockRetainUntilDate=add_years(checkpoint.signed_at, self._retain_years),
                **self._target.sse_arguments,
            )
        except (ClientError, BotoCoreError) as error:
            raise PublicationFailed(f"publishing {key} to {bucket} at {self._where}: {_s3_error(error)}") from error

    def _current_body(self, key: str) -> bytes | None:
        try:
            response = self._target.client.get_object(Bucket=self._target.bucket, Key=key)
        except ClientError as error:
            if str(error.response.get("Error", {}).get("Code", "")) in ("NoSuchKey", "404", "NotFound"):
                return None
            raise
        return response["Body"].read()

    def published(self, lab_id: uuid.UUID) -> list[PublishedCheckpoint]:
        """Every version of every object under the lab's prefix: a later version hides nothing."""
        client, bucket = self._target.client, self._target.bucket
        found: list[PublishedCheckpoint] = []
        try:
            for page in client.get_paginator("list_object_versions").paginate(Bucket=bucket, Prefix=self._key(lab_id)):
                for version in page.get("Versions", []):
                    body = client.get_object(Bucket=bucket, Key=version["Key"], VersionId=version["VersionId"])
                    found.append(_parse_object(version["Key"], body["Body"].read(), lab_id))
        except (ClientError, BotoCoreError) as error:
            where = f"{bucket} at {self._where}"
            raise PublicationFailed(f"reading checkpoints from {where}: {_s3_error(error)}") from error
        return found

    def describe(self) -> str:
        prefix = f"/{self._target.prefix}" if self._target.prefix else ""
        lock = f"Object Lock COMPLIANCE, {self._retain_years} years"
        return f"s3://{self._target.bucket}{prefix} at {self._where} ({lock})"


def _parse_object(key: str, body: bytes, lab_id: uuid.UUID) -> PublishedCheckpoint:
    """A locked object the gateway wrote; one that does not parse, or names another place, is tampering."""
    stem = key.rsplit("/", 1)[-1].removesuffix(".json")
    seq = int(stem) if stem.isdigit() else 0
    try:
        checkpoint = PublishedCheckpoint.from_json(body)
    except ValueError as error:
        raise ChainBroken(seq, f"published checkpoint {key} is unreadable: {error}") from error
    if checkpoint.lab_id != lab_id or checkpoint.seq != seq:
        raise ChainBroken(seq, f"published checkpoint {key} names lab {checkpoint.lab_id} seq {checkpoint.seq}")
    return checkpoint


def open_publisher(settings: Settings, policy: AuditPolicy | None = None) -> Publisher | None:
    """The publisher named by `checkpoint_publish_url`, or None when unset.

    An S3 bucket without Object Lock is refused (PublicationUnusable) so the gateway does not start;
    an endpoint unreachable now is only logged, and the lock is checked before the first publication.
    """
    url = settings.checkpoint_publish_url
    if url is None:
        return None
    parts = urlsplit(url)
    if parts.scheme == "file":
        if parts.netloc not in ("", "localhost"):
            raise ValueError(f"checkpoint publish URL {url!r} names a remote host; use file:///absolute/path")
        return FilePublisher(Path(unquote(parts.path)))
    if parts.scheme != "s3" or not parts.netloc:
        raise ValueError(f"checkpoint publish URL {url!r}: use s3://bucket/prefix or file:///absolute/path")
    target = s3_target(
        parts.netloc, unquote(parts.path), None, settings.s3_endpoint_url, settings.s3_region,
        settings.s3_sse, settings.s3_sse_kms_key_id, settings.s3_part_size,
    )  # fmt: skip
    where = settings.s3_endpoint_url or (f"AWS ({settings.s3_region})" if settings.s3_region else "AWS")
    publisher = S3Publisher(target, (policy or default_policy().audit).longest_retention_years, where)
    try:
        publisher.check_object_lock()
    except PublicationFailed as error:
        log.warning("checkpoint bucket unreachable; Object Lock is checked before publishing", error=error.detail)
    return publisher


@dataclass(frozen=True)
class PublishedVerification:
    chain: VerifiedChain
    published: int
    note: str


def verify_against_published(
    session: Session, lab_id: uuid.UUID, public_key: bytes, publisher: Publisher | None
) -> PublishedVerification:
    """`verify`, with every published checkpoint's signature checked and the chain held to it too.

    ChainBroken names the first missing event when the database's chain stops short of a published
    checkpoint, or the checkpoint's sequence number when the chain there has another hash.
    """
    if publisher is None:
        chain = verify(session, lab_id, public_key)
        return PublishedVerification(chain, 0, "no published checkpoints (publication is not configured)")
    published = publisher.published(lab_id)
    for checkpoint in published:
        checkpoint.check_signature(public_key)
    chain = verify(session, lab_id, public_key, published=[(c.seq, c.hash) for c in published])
    if not published:
        return PublishedVerification(chain, 0, f"no published checkpoints in {publisher.describe()}")
    last = max(c.seq for c in published)
    distinct = len({(c.seq, c.hash) for c in published})
    return PublishedVerification(chain, distinct, f"{distinct} published checkpoints agree, the last at {last}")
