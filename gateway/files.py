"""Small durability primitives for files the gateway writes itself."""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
from pathlib import Path

ON_WINDOWS = os.name == "nt"
# Errors of os.link meaning "this file system has no hard links", not "the name is taken".
_NO_HARD_LINKS = {errno.EPERM, errno.EXDEV, errno.ENOSYS, errno.EMLINK} | {
    getattr(errno, code) for code in ("ENOTSUP", "EOPNOTSUPP") if hasattr(errno, code)
}


def fsync_directory(directory: Path) -> None:
    """Make a link, rename or unlink inside `directory` durable (POSIX: fsync the directory)."""
    descriptor = os.open(directory, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def write_all(descriptor: int, data: bytes | bytearray | memoryview) -> None:
    """Write every byte of `data` to `descriptor`, looping over short writes."""
    view = memoryview(data)
    while view:
        view = view[os.write(descriptor, view) :]


def create_new_private_file(path: Path, content: bytes) -> bool:
    """Write `content` to an exclusive 0600 temp file beside `path`, fsync it, then move it into place.

    The move is a hard link, which fails rather than replace an existing file; where the file system has no
    hard links it falls back to os.replace after an existence check. False if `path` already existed.
    """
    temp = path.with_name(f".{path.name}.{secrets.token_hex(8)}.tmp")
    flags = (
        os.O_CREAT
        | os.O_EXCL
        | os.O_WRONLY
        | getattr(os, "O_NOFOLLOW", 0)
        | getattr(os, "O_CLOEXEC", 0)
        | getattr(os, "O_BINARY", 0)
    )
    descriptor = os.open(temp, flags, 0o600)
    try:
        try:
            write_all(descriptor, content)
            os.fsync(descriptor)
        finally:
            os.close(descriptor)
        try:
            os.link(temp, path)
        except FileExistsError:
            return False
        except OSError as error:
            if error.errno not in _NO_HARD_LINKS and not ON_WINDOWS:
                raise
            if path.exists() or path.is_symlink():
                return False
            os.replace(temp, path)
        return True
    finally:
        with contextlib.suppress(FileNotFoundError):
            temp.unlink()
        fsync_directory(path.parent)
