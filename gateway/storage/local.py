"""Object storage in a local directory: temp file in `.incoming/`, fsync, atomic rename into place."""

from __future__ import annotations

import hashlib
import os
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from gateway.files import fsync_directory
from gateway.storage import (
    CHUNK_SIZE,
    InvalidRange,
    ObjectNotFound,
    ObjectTooLarge,
    StorageUnavailable,
    StoredObject,
    validate_key,
)

_INCOMING = ".incoming"


def _resolve_range(start: int, end: int | None, size: int) -> tuple[int, int]:
    """Inclusive `start..end` clamped to `size`, as (offset, length); InvalidRange if unsatisfiable."""
    if start < 0 or (end is not None and end < start):
        raise InvalidRange(f"byte range {start}-{'' if end is None else end} is malformed")
    if size == 0 and start == 0 and end is None:
        return 0, 0
    if start >= size:
        raise InvalidRange(f"byte range starts at {start} but the object has {size} bytes")
    last = size - 1 if end is None else min(end, size - 1)
    return start, last - start + 1


class LocalObjectStore:
    """Objects as files under `root/<key>`; writes are all-or-nothing."""

    def __init__(self, root: Path) -> None:
        self._root = Path(root)
        self._incoming = self._root / _INCOMING
        self._root.mkdir(mode=0o700, parents=True, exist_ok=True)
        self._incoming.mkdir(mode=0o700, exist_ok=True)

    def _path(self, key: str) -> Path:
        return self._root / validate_key(key)

    def put(self, key: str, stream: BinaryIO, max_bytes: int) -> StoredObject:
        """Write the stream to a temp file, hashing and counting; rename into place only when complete."""
        target = self._path(key)
        self._incoming.mkdir(mode=0o700, exist_ok=True)
        descriptor, temp_name = tempfile.mkstemp(prefix="put-", dir=self._incoming)
        temp_path = Path(temp_name)
        digest = hashlib.sha256()
        count = 0
        committed = False
        try:
            with os.fdopen(descriptor, "wb") as temp_file:
                while chunk := stream.read(CHUNK_SIZE):
                    count += len(chunk)
                    if count > max_bytes:
                        raise ObjectTooLarge(f"object exceeds the cap of {max_bytes} bytes")
                    digest.update(chunk)
                    temp_file.write(chunk)
                temp_file.flush()
                os.fsync(temp_file.fileno())
            target.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            os.replace(temp_path, target)
            committed = True
        finally:
            if not committed:
                temp_path.unlink(missing_ok=True)
        fsync_directory(target.parent)
        return StoredObject(key=key, size=count, sha256=digest.hexdigest())

    def get(self, key: str, start: int = 0, end: int | None = None) -> Iterator[bytes]:
        """Open and range-check eagerly, then stream the inclusive range in CHUNK_SIZE pieces."""
        path = self._path(key)
        try:
            handle = path.open("rb")
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError) as error:
            raise ObjectNotFound(f"object {key} not found") from error
        try:
            offset, length = _resolve_range(start, end, os.fstat(handle.fileno()).st_size)
            handle.seek(offset)
        except BaseException:
            handle.close()
            raise
        return self._stream(handle, length)

    @staticmethod
    def _stream(handle: BinaryIO, length: int) -> Iterator[bytes]:
        with handle:
            remaining = length
            while remaining > 0:
                chunk = handle.read(min(CHUNK_SIZE, remaining))
                if not chunk:
                    return
                remaining -= len(chunk)
                yield chunk

    def size(self, key: str) -> int:
        """The file's size; ObjectNotFound if there is no regular file for `key`."""
        path = self._path(key)
        try:
            status = path.stat()
        except (FileNotFoundError, NotADirectoryError) as error:
            raise ObjectNotFound(f"object {key} not found") from error
        if not stat.S_ISREG(status.st_mode):
            raise ObjectNotFound(f"object {key} not found")
        return status.st_size

    def delete(self, key: str) -> None:
        """Unlink the file (absent is fine) and make the removal durable."""
        path = self._path(key)
        try:
            path.unlink()
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
            return
        fsync_directory(path.parent)

    def check_ready(self) -> None:
        """Root is a writable directory: a probe file can be created and removed in `.incoming/`."""
        if not self._root.is_dir():
            raise StorageUnavailable(f"storage root {self._root} is missing or not a directory")
        try:
            self._incoming.mkdir(mode=0o700, exist_ok=True)
            with tempfile.NamedTemporaryFile(prefix="probe-", dir=self._incoming):
                pass
        except OSError as error:
            raise StorageUnavailable(f"storage root {self._root} is not writable: {error}") from error

    def describe(self) -> str:
        return f"local directory {self._root}"
