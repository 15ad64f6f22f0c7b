"""Resumable-upload staging in the local object store's directory: one append-only file per upload.

Files live in `root/.staging/` (the upload key with `/` as `.`, which keys never contain). Every append is
written, flushed and fsynced before it returns; a chunk that fails is truncated away, and bytes beyond the
handle's offset (an append whose handle was never persisted) are truncated before the next write. An exclusive
flock serialises appends, complete and sweep on one file between processes of this host.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import io
import os
import stat
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import BinaryIO

from gateway.files import fsync_directory, write_all
from gateway.storage import CHUNK_SIZE, StoredObject, validate_key
from gateway.storage.staging import (
    ChunkCounter,
    StagingHandle,
    StagingLost,
    as_utc,
    check_offset,
)

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: no advisory locks, single-process use only
    fcntl = None  # type: ignore[assignment]

_STAGING = ".staging"
_SENDFILE_MAX = 1 << 30
_OPEN_FLAGS = getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_BINARY", 0)


def _regular_file(stream: BinaryIO) -> tuple[int, int, int] | None:
    """(descriptor, position, size) when `stream` is a regular file the kernel can copy from, else None."""
    if not hasattr(os, "sendfile"):
        return None
    try:
        descriptor = stream.fileno()
        status = os.fstat(descriptor)
        position = stream.tell()
    except (AttributeError, OSError, io.UnsupportedOperation):
        return None
    return (descriptor, position, status.st_size) if stat.S_ISREG(status.st_mode) else None


def _copy_in_kernel(source: int, position: int, end: int, target: int) -> None:
    """Copy source[position:end] to target's current offset without passing the bytes through Python
    (sendfile between files, Linux); the PATCH body spooled by the gateway takes this way."""
    while position < end:
        sent = os.sendfile(target, source, position, min(end - position, _SENDFILE_MAX))
        if sent == 0:
            raise StagingLost(f"the chunk's spool ended {end - position} bytes early")
        position += sent


def _copy_stream(first: bytes, stream: BinaryIO, counter: ChunkCounter, target: int) -> None:
    chunk = first
    while chunk:
        write_all(target, chunk)
        chunk = stream.read(CHUNK_SIZE)
        counter.add(len(chunk))


def _flush_data(descriptor: int) -> None:
    """Make the written bytes (and the size that reaches them) durable; fdatasync skips the timestamps."""
    (getattr(os, "fdatasync", None) or os.fsync)(descriptor)


class LocalStagingArea:
    """Staged uploads as files under `root/.staging/`, completed by an atomic rename to `root/<final_key>`."""

    def __init__(self, root: Path) -> None:
        self._root = Path(root)
        self._staging = self._root / _STAGING
        self._root.mkdir(mode=0o700, parents=True, exist_ok=True)
        self._staging.mkdir(mode=0o700, exist_ok=True)

    def _path(self, key: str) -> Path:
        return self._staging / validate_key(key).replace("/", ".")

    def _checked_path(self, handle: StagingHandle) -> Path:
        if handle.backend != "local":
            raise ValueError(f"a {handle.backend} staging handle cannot be used with local staging")
        handle.check()
        return self._path(handle.key)

    def begin(self, upload_key: str) -> StagingHandle:
        """Create (or reset) the upload's empty file, durably."""
        path = self._path(upload_key)
        self._staging.mkdir(mode=0o700, exist_ok=True)
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | _OPEN_FLAGS, 0o600)
        try:
            os.fsync(descriptor)
        finally:
            os.close(descriptor)
        fsync_directory(self._staging)
        return StagingHandle(backend="local", key=upload_key)

    @contextlib.contextmanager
    def _locked(self, path: Path, key: str, offset: int) -> Iterator[int]:
        """The upload's file, opened and locked, holding exactly `offset` bytes; StagingLost if it cannot."""
        try:
            descriptor = os.open(path, os.O_RDWR | _OPEN_FLAGS)
        except (FileNotFoundError, NotADirectoryError) as error:
            raise StagingLost(f"staged data of upload {key} is gone") from error
        try:
            if fcntl is not None:
                fcntl.flock(descriptor, fcntl.LOCK_EX)
            status = os.fstat(descriptor)
            try:
                current = os.stat(path, follow_symlinks=False)
            except FileNotFoundError:
                current = None
            if current is None or (current.st_dev, current.st_ino) != (status.st_dev, status.st_ino):
                raise StagingLost(f"staged data of upload {key} was removed")
            if status.st_size < offset:
                raise StagingLost(f"upload {key} has {status.st_size} staged bytes, not {offset}")
            if status.st_size > offset:
                os.ftruncate(descriptor, offset)
                os.fsync(descriptor)
            yield descriptor
        finally:
            os.close(descriptor)

    def append(
        self, handle: StagingHandle, offset: int, stream: BinaryIO, max_total: int, max_chunk: int
    ) -> StagingHandle:
        """Write the chunk after the handle's offset and fsync; on failure truncate back to that offset."""
        path = self._checked_path(handle)
        check_offset(handle, offset)
        counter = ChunkCounter(handle.offset, max_total, max_chunk)
        source = _regular_file(stream)
        copy: Callable[[int], None]
        if source is not None:
            spool, position, size = source
            if size == position:
                return handle
            counter.add(size - position)  # refused before a byte is written
            copy = functools.partial(_copy_in_kernel, spool, position, size)
        else:
            chunk = stream.read(CHUNK_SIZE)
            if not chunk:
                return handle
            counter.add(len(chunk))
            copy = functools.partial(_copy_stream, chunk, stream, counter)
        with self._locked(path, handle.key, handle.offset) as descriptor:
            os.lseek(descriptor, handle.offset, os.SEEK_SET)
            try:
                copy(descriptor)
                _flush_data(descriptor)
            except BaseException as error:
                try:
                    os.ftruncate(descriptor, handle.offset)
                    os.fsync(descriptor)
                except OSError as cleanup_error:
                    error.add_note(f"truncating upload {handle.key} back to {handle.offset} failed: {cleanup_error}")
                raise
        return replace(handle, offset=counter.total)

    def complete(self, handle: StagingHandle, final_key: str) -> StoredObject:
        """fsync, rename into `root/<final_key>`, fsync the directories, then hash by reading the file back."""
        path = self._checked_path(handle)
        target = self._root / validate_key(final_key)
        try:
            with self._locked(path, handle.key, handle.offset) as descriptor:
                os.fsync(descriptor)
                target.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
                os.replace(path, target)
        except StagingLost:
            if not self._already_completed(path, target, handle.offset):
                raise
        fsync_directory(target.parent)
        fsync_directory(self._staging)
        return self._hash(target, final_key, handle)

    @staticmethod
    def _already_completed(path: Path, target: Path, size: int) -> bool:
        """A retried complete: the staging file is gone and the target has the upload's size."""
        if path.exists():
            return False
        try:
            return target.is_file() and not target.is_symlink() and target.stat().st_size == size
        except OSError:
            return False

    @staticmethod
    def _hash(target: Path, final_key: str, handle: StagingHandle) -> StoredObject:
        digest = hashlib.sha256()
        count = 0
        with target.open("rb") as file:
            while chunk := file.read(CHUNK_SIZE):
                digest.update(chunk)
                count += len(chunk)
        if count != handle.offset:
            raise StagingLost(f"object {final_key} has {count} bytes but upload {handle.key} staged {handle.offset}")
        return StoredObject(key=final_key, size=count, sha256=digest.hexdigest())

    def abort(self, handle: StagingHandle) -> None:
        """Unlink the upload's file (absent is fine) and make that durable."""
        path = self._checked_path(handle)
        try:
            path.unlink()
        except FileNotFoundError:
            return
        fsync_directory(self._staging)

    def sweep(self, older_than: datetime) -> int:
        """Unlink staging files last written before `older_than`, skipping any an append holds locked."""
        cutoff = as_utc(older_than).timestamp()
        removed = 0
        try:
            entries = list(os.scandir(self._staging))
        except FileNotFoundError:
            return 0
        for entry in entries:
            with contextlib.suppress(OSError):
                if entry.is_file(follow_symlinks=False) and entry.stat(follow_symlinks=False).st_mtime < cutoff:
                    removed += self._remove_if_idle(Path(entry.path), cutoff)
        if removed:
            fsync_directory(self._staging)
        return removed

    @staticmethod
    def _remove_if_idle(path: Path, cutoff: float) -> int:
        descriptor = os.open(path, os.O_RDONLY | _OPEN_FLAGS)
        try:
            if fcntl is not None:
                try:
                    fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    return 0
            status = os.fstat(descriptor)
            current = os.stat(path, follow_symlinks=False)
            if (current.st_dev, current.st_ino) != (status.st_dev, status.st_ino) or status.st_mtime >= cutoff:
                return 0
            path.unlink()
            return 1
        finally:
            os.close(descriptor)
