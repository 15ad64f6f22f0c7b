"""Resumable uploads (tus 1.0 core style): bytes staged chunk by chunk, each append durable before it returns.

The caller keeps a `StagingHandle` per upload in the database and replaces it after every successful `append`;
this layer only moves bytes. A handle describes exactly what is stored, so any replica (or the same one after a
restart) can take the next chunk from the persisted handle. The S3 backend keeps no state in process memory or
on local disk between calls.

Rules for callers:
- pass `append`/`complete`/`abort` the handle as last persisted, never one that was returned but not saved;
- serialise the appends of one upload (row lock or lease): two writers at the same offset are detected (S3: at
  `complete`; local: the later one wins) but not prevented here;
- if `append` raises, keep the previous handle: nothing beyond its offset counts, and retrying at its offset works.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, BinaryIO, Literal, Protocol

from gateway.errors import DentGateError
from gateway.storage import InvalidObjectKey, ObjectTooLarge, StoredObject, validate_key

if TYPE_CHECKING:
    pass

BackendKind = Literal["local", "s3"]
_BACKENDS = ("local", "s3")


class OffsetMismatch(DentGateError):
    code = "upload-offset-mismatch"
    status = 409
    title = "Upload offset does not match"


class ChunkTooLarge(ObjectTooLarge):
    code = "upload-chunk-too-large"
    status = 413
    title = "Upload chunk exceeds the size cap"


class StagingLost(DentGateError):
    """The staged bytes are gone (aborted, swept) or no longer match the handle; the upload must start over."""

    code = "upload-staging-lost"
    status = 410
    title = "Staged upload data is gone"


@dataclass(frozen=True)
class StagedPart:
    """One completed S3 multipart part: its number (1-based), ETag and byte count."""

    number: int
    etag: str
    size: int


@dataclass(frozen=True)
class StagingHandle:
    """What the caller persists per upload; JSON round-trips with `to_json`/`from_json`.

    `offset` is the number of durably staged bytes. S3 only: `upload_id` is the multipart upload, `parts` its
    completed parts, and the bytes after the last part (fewer than one part) live in the tail object named by
    `tail` (ETag `tail_etag`, `tail_size` bytes); `stale_tail` names a superseded tail removed on the next call.
    """

    backend: BackendKind
    key: str
    offset: int = 0
    upload_id: str | None = None
    parts: tuple[StagedPart, ...] = field(default=())
    tail: str | None = None
    tail_etag: str | None = None
    tail_size: int = 0
    stale_tail: str | None = None

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["parts"] = [asdict(part) for part in self.parts]
        return data

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), separators=(",", ":"), sort_keys=True)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> StagingHandle:
        """Rebuild a handle, refusing one whose fields do not add up (ValueError)."""
        try:
            parts = tuple(
                StagedPart(number=int(part["number"]), etag=str(part["etag"]), size=int(part["size"]))
                for part in data.get("parts", ())
            )
            handle = cls(
                backend=data["backend"],
                key=str(data["key"]),
                offset=int(data.get("offset", 0)),
                upload_id=data.get("upload_id"),
                parts=parts,
                tail=data.get("tail"),
                tail_etag=data.get("tail_etag"),
                tail_size=int(data.get("tail_size", 0)),
                stale_tail=data.get("stale_tail"),
            ).check()
        except (KeyError, TypeError, ValueError, InvalidObjectKey) as error:
            raise ValueError(f"not a staging handle: {error}") from error
        return handle

    @classmethod
    def from_json(cls, text: str | bytes) -> StagingHandle:
        data = json.loads(text)
        if not isinstance(data, dict):
            raise ValueError("not a staging handle: expected a JSON object")
        return cls.from_dict(data)

    def check(self) -> StagingHandle:
        """ValueError unless the fields are consistent; InvalidObjectKey for a bad key."""
        if self.backend not in _BACKENDS:
            raise ValueError(f"unknown staging backend {self.backend!r}")
        validate_key(self.key)
        if self.offset < 0 or self.tail_size < 0:
            raise ValueError("a staging handle cannot have a negative offset or tail size")
        if self.backend == "local":
            if self.upload_id or self.parts or self.tail or self.tail_size or self.stale_tail:
                raise ValueError("a local staging handle has no multipart fields")
            return self
        if not self.upload_id:
            raise ValueError("an S3 staging handle needs its multipart upload id")
        if [part.number for part in self.parts] != list(range(1, len(self.parts) + 1)):
            raise ValueError("S3 staging parts must be numbered 1, 2, 3, …")
        if any(part.size <= 0 for part in self.parts):
            raise ValueError("S3 staging parts cannot be empty")
        if (self.tail is None) != (self.tail_size == 0) or (self.tail is None) != (self.tail_etag is None):
            raise ValueError("an S3 tail needs a name, an ETag and a size, or none of them")
        if self.offset != sum(part.size for part in self.parts) + self.tail_size:
            raise ValueError("the S3 staging offset must equal the parts' sizes plus the tail size")
        return self


class StagingArea(Protocol):
    """Where resumable uploads collect their bytes until `complete` moves them into the object store."""

    def begin(self, upload_key: str) -> StagingHandle:
        """Start an empty upload; `upload_key` is a gateway-generated key (ideally the final object key)."""
        ...

    def append(
        self, handle: StagingHandle, offset: int, stream: BinaryIO, max_total: int, max_chunk: int
    ) -> StagingHandle:
        """Durably add the stream's bytes at `offset` and return the handle to persist.

        OffsetMismatch (stream unread) unless `offset == handle.offset`; ObjectTooLarge when the upload would
        exceed `max_total` bytes, ChunkTooLarge when this chunk exceeds `max_chunk`. On any error the previous
        handle still describes what is stored. A 0-byte stream returns the handle unchanged.
        """
        ...

    def complete(self, handle: StagingHandle, final_key: str) -> StoredObject:
        """Assemble the upload as `final_key` in the object store, hash it by reading it back, drop the staging.

        Retrying after a crash mid-way finishes the job (or finds it done); StagingLost if the bytes are gone.
        """
        ...

    def abort(self, handle: StagingHandle) -> None:
        """Remove everything staged for the upload; aborting twice is fine."""
        ...

    def sweep(self, older_than: datetime) -> int:
        """Best effort: remove uploads with no activity since `older_than`; returns how many were removed."""
        ...


def check_offset(handle: StagingHandle, offset: int) -> None:
    if offset != handle.offset:
        raise OffsetMismatch(f"upload {handle.key} is at offset {handle.offset}, not {offset}")


class ChunkCounter:
    """Counts a chunk's bytes, raising before a byte beyond `max_total` or `max_chunk` is accepted."""

    def __init__(self, start: int, max_total: int, max_chunk: int) -> None:
        self.start = start
        self.received = 0
        self._max_total = max_total
        self._max_chunk = max_chunk

    @property
    def total(self) -> int:
        return self.start + self.received

    def add(self, count: int) -> None:
        if self.received + count > self._max_chunk:
            raise ChunkTooLarge(f"upload chunk exceeds the cap of {self._max_chunk} bytes")
        if self.start + self.received + count > self._max_total:
            raise ObjectTooLarge(f"upload exceeds the cap of {self._max_total} bytes")
        self.received += count


def as_utc(moment: datetime) -> datetime:
    """An aware datetime; a naive one is taken to be UTC (as the database stores times)."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment
