"""End-to-end sealing of a design on the technician's device and opening it on a station, streamed.

A design travels as one age file (age-encryption.org/v1, X25519 recipients, via pyrage) whose plaintext
is an uncompressed PAX tar of the design's files. Everything is streamed in 64 KiB pieces, so memory
does not grow with the design, and the SHA-256 and size of both the plaintext and the ciphertext are
measured in the same pass that encrypts or decrypts.

age authenticates the payload in 64 KiB chunks and `open_stream` writes each chunk as it verifies, so
after a `SealBroken` the plaintext written so far must be thrown away. `open_bundle` does that for
the station: it decrypts into an anonymous temporary file and unpacks only a stream that verified whole.
"""

from __future__ import annotations

import hashlib
import os
import stat
import tarfile
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import pyrage

from gateway.transfer.manifest import MAX_FILES, check_file_name, file_name_key

CHUNK_BYTES = 64 * 1024
MAX_BUNDLE_BYTES = 1024**3  # 1 GiB of design files in one bundle
_BLOCK = tarfile.BLOCKSIZE
_RECORD = tarfile.RECORDSIZE
_BINARY = getattr(os, "O_BINARY", 0) | getattr(os, "O_CLOEXEC", 0)
_NO_FOLLOW = getattr(os, "O_NOFOLLOW", 0)
_REFUSED_TYPES = {
    tarfile.SYMTYPE: "a symbolic link",
    tarfile.LNKTYPE: "a hard link",
    tarfile.DIRTYPE: "a directory",
    tarfile.CHRTYPE: "a character device",
    tarfile.BLKTYPE: "a block device",
    tarfile.FIFOTYPE: "a FIFO",
    tarfile.CONTTYPE: "a contiguous file",
    tarfile.GNUTYPE_SPARSE: "a sparse file",
}


class SealingError(Exception):
    """Base of the sealing errors."""


class InvalidRecipient(SealingError, ValueError):
    """A recipient is not a canonical age X25519 recipient ("age1…"), or is given twice."""


class InvalidIdentity(SealingError, ValueError):
    """An identity is not an age X25519 identity ("AGE-SECRET-KEY-1…")."""


class SealBroken(SealingError):
    """The ciphertext does not open: not encrypted to this identity, altered, truncated or extended."""


class BundleRefused(SealingError):
    """A bundle (or the files to pack into one) breaks a rule: only plain, uniquely named files, within the caps."""


@dataclass(frozen=True)
class Sealed:
    plaintext_sha256: str
    plaintext_size: int
    ciphertext_sha256: str
    ciphertext_size: int


@dataclass(frozen=True)
class Opened:
    plaintext_sha256: str
    plaintext_size: int
    ciphertext_sha256: str
    ciphertext_size: int


@dataclass(frozen=True)
class BundleEntry:
    """One file of a bundle: its (sanitised) name, and the SHA-256 and size of its content."""

    name: str
    sha256: str
    size: int


@dataclass(frozen=True)
class SealedBundle:
    sealed: Sealed
    files: list[BundleEntry]


@dataclass(frozen=True)
class OpenedBundle:
    opened: Opened
    files: list[BundleEntry]


class _Counting:
    def __init__(self) -> None:
        self._hash = hashlib.sha256()
        self.size = 0
        self.error: BaseException | None = None

    def _count(self, data: bytes) -> None:
        self._hash.update(data)
        self.size += len(data)

    @property
    def sha256(self) -> str:
        return self._hash.hexdigest()


class _HashingReader(_Counting):
    """Reads `stream` in pieces of at most CHUNK_BYTES, hashing and counting; remembers its own failure."""

    def __init__(self, stream: BinaryIO) -> None:
        super().__init__()
        self._stream = stream

    def read(self, size: int = -1) -> bytes:
        wanted = CHUNK_BYTES if size is None or size < 0 else min(size, CHUNK_BYTES)
        try:
            data = self._stream.read(wanted)
            if data is None:
                raise BlockingIOError("non-blocking streams are not supported")
            data = bytes(data)
        except BaseException as error:
            self.error = error
            raise
        self._count(data)
        return data


class _HashingWriter(_Counting):
    """Writes everything to `stream` (looping over short writes), hashing and counting; remembers its failure."""

    def __init__(self, stream: BinaryIO) -> None:
        super().__init__()
        self._stream = stream

    def write(self, data: bytes) -> int:
        view = memoryview(data).cast("B")
        try:
            done = 0
            while done < len(view):
                written = self._stream.write(view[done:])
                if written is None:  # a duck-typed writer that returns nothing has taken everything
                    written = len(view) - done
                if written <= 0:
                    raise OSError("the output stream accepted no bytes")
                done += written
        except BaseException as error:
            self.error = error
            raise
        self._count(view)
        return len(view)

    def flush(self) -> None:
        flush = getattr(self._stream, "flush", None)
        if flush is not None:
            flush()


def parse_recipients(recipients: Sequence[str]) -> list[pyrage.x25519.Recipient]:
    """The age X25519 recipients named by `recipients`: at least one, canonical, no duplicates."""
    if isinstance(recipients, str) or not recipients:
        raise InvalidRecipient("give a list of at least one age recipient")
    if len(set(recipients)) != len(recipients):
        raise InvalidRecipient("an age recipient is given twice")
    parsed = []
    for text in recipients:
        try:
            recipient = pyrage.x25519.Recipient.from_str(text)
        except (pyrage.RecipientError, TypeError, ValueError):
            raise InvalidRecipient(f"{text!r} is not an age X25519 recipient (age1…)") from None
        if str(recipient) != text:
            raise InvalidRecipient(f"{text!r} is not in canonical (lower-case) form")
        parsed.append(recipient)
    return parsed


def _identities(identity: object) -> list[pyrage.x25519.Identity]:
    candidates = list(identity) if isinstance(identity, list | tuple) else [identity]
    if not candidates:
        raise InvalidIdentity("give at least one age identity")
    identities = []
    for candidate in candidates:
        if isinstance(candidate, pyrage.x25519.Identity):
            identities.append(candidate)
            continue
        try:
            identities.append(pyrage.x25519.Identity.from_str(candidate))
        except (pyrage.IdentityError, TypeError, ValueError):
            raise InvalidIdentity("not an age X25519 identity (AGE-SECRET-KEY-1…)") from None
    return identities


def _raise_own_failure(*wrappers: _Counting) -> None:
    for wrapper in wrappers:
        if wrapper.error is not None:
            raise wrapper.error


def seal_stream(plaintext: BinaryIO, ciphertext_out: BinaryIO, recipients: Sequence[str]) -> Sealed:
    """Encrypt `plaintext` to every age recipient into `ciphertext_out`, measuring both sides in one pass.

    An error of either stream is raised as itself; the output is then incomplete and must be discarded.
    """
    parsed = parse_recipients(recipients)
    reader, writer = _HashingReader(plaintext), _HashingWriter(ciphertext_out)
    try:
        pyrage.encrypt_io(reader, writer, parsed)
    except pyrage.EncryptError as error:
        _raise_own_failure(reader, writer)
        raise SealingError(f"age encryption failed: {error}") from None
    writer.flush()
    return Sealed(reader.sha256, reader.size, writer.sha256, writer.size)


def open_stream(
    ciphertext: BinaryIO,
    plaintext_out: BinaryIO,
    identity: pyrage.x25519.Identity | str | Sequence[pyrage.x25519.Identity | str],
) -> Opened:
    """Decrypt `ciphertext` with `identity` into `plaintext_out`, measuring both sides in one pass.

    SealBroken if it is not encrypted to the identity or any byte was altered, cut off or appended.
    Verified chunks are written as they come: after an error, discard whatever `plaintext_out` received.
    """
    identities = _identities(identity)
    reader, writer = _HashingReader(ciphertext), _HashingWriter(plaintext_out)
    try:
        pyrage.decrypt_io(reader, writer, identities)
    except (pyrage.DecryptError, OSError):
        _raise_own_failure(reader, writer)  # e.g. a full disk, which is no fault of the ciphertext
        raise SealBroken(
            "the design does not open: not encrypted to this station, or altered, truncated or extended"
        ) from None
    writer.flush()
    return Opened(writer.sha256, writer.size, reader.sha256, reader.size)


def _bundle_name(name: str, seen: set[str]) -> str:
    try:
        check_file_name(name)
    except ValueError as error:
        raise BundleRefused(f"file name {name!r} refused: {error}") from None
    key = file_name_key(name)
    if key in seen:
        raise BundleRefused(f"file name {name!r} appears twice")
    seen.add(key)
    return name


def _member_header(name: str, size: int) -> bytes:
    info = tarfile.TarInfo(name)
    info.size = size
    info.mode = 0o644
    info.mtime = 0
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    info.type = tarfile.REGTYPE
    return info.tobuf(tarfile.PAX_FORMAT, "utf-8", "strict")


def _open_regular(path: str | os.PathLike[str]) -> tuple[int, int]:
    """A read descriptor for the regular file at `path` and its size; never blocks on a FIFO."""
    try:
        descriptor = os.open(path, os.O_RDONLY | _BINARY | getattr(os, "O_NONBLOCK", 0))
    except OSError as error:
        raise BundleRefused(f"{os.fspath(path)!r} cannot be read: {error.strerror or error}") from None
    status = os.fstat(descriptor)
    if not stat.S_ISREG(status.st_mode):
        os.close(descriptor)
        raise BundleRefused(f"{os.fspath(path)!r} is not a regular file")
    return descriptor, status.st_size


class PieceReader:
    """A readable stream over the pieces a generator produces (`_generate`), in constant memory."""

    def __init__(self) -> None:
        self._pieces = self._generate()
        self._pending = b""
        self._done = False

    def _generate(self) -> Iterator[bytes]:
        raise NotImplementedError

    def read(self, size: int = -1) -> bytes:
        wanted = CHUNK_BYTES if size is None or size < 0 else size
        while len(self._pending) < wanted and not self._done:
            try:
                self._pending += next(self._pieces)
            except StopIteration:
                self._done = True
        data, self._pending = self._pending[:wanted], self._pending[wanted:]
        return data

    def readable(self) -> bool:
        return True


class BundleReader(PieceReader):
    """A readable stream of the PAX tar of `files`, produced as it is read (no temporary file, no thread).

    Byte for byte what `tarfile` writes for the same members: a PAX header when the name needs one,
    mode 0644, mtime 0, uid/gid 0, no owner names, then the content padded to 512-byte blocks, two zero
    blocks and zero padding to a 10240-byte record. `entries` lists each file's SHA-256 and size once
    the stream has been read to its end.
    """

    def __init__(
        self, files: Sequence[tuple[str, str | os.PathLike[str]]], *, max_total_size: int = MAX_BUNDLE_BYTES
    ) -> None:
        if not files:
            raise BundleRefused("a bundle has at least one file")
        if len(files) > MAX_FILES:
            raise BundleRefused(f"a bundle has at most {MAX_FILES} files")
        seen: set[str] = set()
        self._files = [(_bundle_name(name, seen), path) for name, path in files]
        self._max_total_size = max_total_size
        total = 0
        for _, path in self._files:  # fail before the first byte where possible; checked again on opening
            try:
                status = os.stat(path)
            except OSError as error:
                raise BundleRefused(f"{os.fspath(path)!r} cannot be read: {error.strerror or error}") from None
            if not stat.S_ISREG(status.st_mode):
                raise BundleRefused(f"{os.fspath(path)!r} is not a regular file")
            total += status.st_size
        if total > max_total_size:
            raise BundleRefused(f"the files come to more than {max_total_size} bytes")
        self.entries: list[BundleEntry] = []
        super().__init__()

    def _generate(self) -> Iterator[bytes]:
        offset = total = 0
        for name, path in self._files:
            descriptor, size = _open_regular(path)
            with os.fdopen(descriptor, "rb", buffering=0) as handle:
                total += size
                if total > self._max_total_size:
                    raise BundleRefused(f"the files come to more than {self._max_total_size} bytes")
                header = _member_header(name, size)
                yield header
                digest, remaining = hashlib.sha256(), size
                while remaining:
                    data = handle.read(min(CHUNK_BYTES, remaining))
                    if not data:
                        raise BundleRefused(f"{name!r} shrank while it was being packed")
                    digest.update(data)
                    remaining -= len(data)
                    yield data
                padding = -size % _BLOCK
                yield b"\0" * padding
            offset += len(header) + size + padding
            self.entries.append(BundleEntry(name, digest.hexdigest(), size))
        offset += 2 * _BLOCK
        yield b"\0" * (2 * _BLOCK + (-offset % _RECORD))


def pack_bundle(files: Sequence[tuple[str, str | os.PathLike[str]]], out: BinaryIO) -> list[BundleEntry]:
    """Write the PAX tar of `files` ((sanitised name, path) pairs) to `out`, streamed; their names, hashes, sizes."""
    reader = BundleReader(files)
    writer = _HashingWriter(out)
    while data := reader.read(CHUNK_BYTES):
        writer.write(data)
    return reader.entries


def seal_bundle(
    files: Sequence[tuple[str, str | os.PathLike[str]]], ciphertext_out: BinaryIO, recipients: Sequence[str]
) -> SealedBundle:
    """Pack `files` into a tar and encrypt it to `recipients` in one streamed pass: what a manifest needs."""
    parse_recipients(recipients)  # refuse bad recipients before reading any file
    reader = BundleReader(files)
    sealed = seal_stream(reader, ciphertext_out, recipients)  # type: ignore[arg-type]
    return SealedBundle(sealed, reader.entries)


def _refuse_member(member: tarfile.TarInfo, seen: set[str]) -> str:
    name = member.name
    if member.sparse is not None:
        raise BundleRefused(f"member {name!r} is a sparse file, not a regular file")
    if member.type not in (tarfile.REGTYPE, tarfile.AREGTYPE):
        kind = _REFUSED_TYPES.get(member.type, f"of type {member.type!r}")
        raise BundleRefused(f"member {name!r} is {kind}, not a regular file")
    if name.startswith(("/", "\\")) or (len(name) > 1 and name[1] == ":"):
        raise BundleRefused(f"member {name!r} has an absolute path")
    if ".." in name:
        raise BundleRefused(f"member {name!r} contains '..'")
    if "/" in name or "\\" in name:
        raise BundleRefused(f"member {name!r} names a directory")
    return _bundle_name(name, seen)


def unpack_bundle(
    tar_stream: BinaryIO,
    dest_dir: str | os.PathLike[str],
    *,
    max_total_size: int = MAX_BUNDLE_BYTES,
    max_files: int = MAX_FILES,
) -> list[BundleEntry]:
    """Write the regular files of the tar read from `tar_stream` into the existing `dest_dir`, streamed.

    BundleRefused, leaving nothing behind, for any member that is not a regular file, a name with a
    directory, '..', an absolute path, a drive or any character `check_file_name` refuses, a name given
    twice (ignoring case) or already in `dest_dir`, more than `max_files` members, more than
    `max_total_size` bytes, or a damaged tar. Files are created 0600 and never through a link.
    """
    destination = Path(dest_dir)
    if not destination.is_dir():
        raise BundleRefused(f"{destination} is not a directory")
    created: list[Path] = []
    entries: list[BundleEntry] = []
    seen: set[str] = set()
    total = 0
    try:
        with tarfile.open(fileobj=tar_stream, mode="r|", encoding="utf-8", errors="strict") as archive:
            for member in archive:
                name = _refuse_member(member, seen)
                if len(entries) >= max_files:
                    raise BundleRefused(f"a bundle has at most {max_files} files")
                total += member.size
                if total > max_total_size:
                    raise BundleRefused(f"the bundle holds more than {max_total_size} bytes")
                source = archive.extractfile(member)
                if source is None:  # pragma: no cover - regular members always have content
                    raise BundleRefused(f"member {name!r} has no content")
                target = destination / name
                flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | _NO_FOLLOW | _BINARY
                try:
                    descriptor = os.open(target, flags, 0o600)
                except FileExistsError:
                    raise BundleRefused(f"{name!r} already exists in {destination}") from None
                created.append(target)
                with os.fdopen(descriptor, "wb") as handle:
                    writer = _HashingWriter(handle)
                    while data := source.read(CHUNK_BYTES):
                        writer.write(data)
                if writer.size != member.size:
                    raise BundleRefused(f"member {name!r} is cut short")
                entries.append(BundleEntry(name, writer.sha256, writer.size))
        if not entries:
            raise BundleRefused("the bundle holds no files")
    except BaseException as error:
        for path in created:
            path.unlink(missing_ok=True)
        if isinstance(error, tarfile.TarError | UnicodeError):
            raise BundleRefused(f"the bundle is not a readable tar: {error}") from None
        raise
    return entries


def open_bundle(
    ciphertext: BinaryIO,
    dest_dir: str | os.PathLike[str],
    identity: pyrage.x25519.Identity | str | Sequence[pyrage.x25519.Identity | str],
    *,
    max_total_size: int = MAX_BUNDLE_BYTES,
    work_dir: str | os.PathLike[str] | None = None,
) -> OpenedBundle:
    """Decrypt a sealed bundle and unpack it into `dest_dir`; nothing is written there unless it all verifies.

    The plaintext goes to a temporary file in `work_dir` (default `dest_dir`) first: anonymous where the
    system allows (Linux), otherwise named and deleted on close. Files appear in `dest_dir` one by one.
    """
    with tempfile.TemporaryFile(dir=work_dir if work_dir is not None else dest_dir) as plaintext:
        opened = open_stream(ciphertext, plaintext, identity)  # type: ignore[arg-type]
        plaintext.seek(0)
        files = unpack_bundle(plaintext, dest_dir, max_total_size=max_total_size)  # type: ignore[arg-type]
    return OpenedBundle(opened, files)
