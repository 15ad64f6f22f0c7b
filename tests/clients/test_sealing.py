"""Sealing on the device and opening on a station: streamed age encryption, hashes, and the bundle tar's rules."""

from __future__ import annotations

import hashlib
import io
import json
import os
import subprocess
import sys
import tarfile
import textwrap
from pathlib import Path

import pyrage
import pytest

from clients.sealing import (
    MAX_BUNDLE_BYTES,
    BundleReader,
    BundleRefused,
    InvalidIdentity,
    InvalidRecipient,
    SealBroken,
    SealingError,
    open_bundle,
    open_stream,
    pack_bundle,
    seal_bundle,
    seal_stream,
    unpack_bundle,
)

REPO = Path(__file__).resolve().parents[2]
MiB = 1024 * 1024


@pytest.fixture(scope="module")
def station() -> pyrage.x25519.Identity:
    return pyrage.x25519.Identity.generate()


@pytest.fixture(scope="module")
def archive() -> pyrage.x25519.Identity:
    return pyrage.x25519.Identity.generate()


def recipient_of(identity: pyrage.x25519.Identity) -> str:
    return str(identity.to_public())


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(MiB):
            digest.update(chunk)
    return digest.hexdigest()


def seal_bytes(data: bytes, *identities: pyrage.x25519.Identity) -> bytes:
    out = io.BytesIO()
    seal_stream(io.BytesIO(data), out, [recipient_of(i) for i in identities])
    return out.getvalue()


# --- sealing and opening streams ---


def test_round_trip_of_20_mib_file(tmp_path: Path, station: pyrage.x25519.Identity) -> None:
    source, sealed_path, opened_path = tmp_path / "design.stl", tmp_path / "design.age", tmp_path / "opened.stl"
    with source.open("wb") as handle:
        for _ in range(20):
            handle.write(os.urandom(MiB))
    with source.open("rb") as plaintext, sealed_path.open("wb") as ciphertext:
        sealed = seal_stream(plaintext, ciphertext, [recipient_of(station)])
    assert sealed.plaintext_size == 20 * MiB
    assert sealed.plaintext_sha256 == sha256_file(source)
    assert sealed.ciphertext_size == sealed_path.stat().st_size
    assert sealed.ciphertext_sha256 == sha256_file(sealed_path)
    # age: 16-byte payload nonce and a 16-byte tag per 64 KiB chunk on top of the header
    assert sealed.ciphertext_size > sealed.plaintext_size + 16 + 16 * (20 * MiB // (64 * 1024))
    with sealed_path.open("rb") as ciphertext, opened_path.open("wb") as plaintext:
        opened = open_stream(ciphertext, plaintext, station)
    assert (opened.plaintext_sha256, opened.plaintext_size) == (sealed.plaintext_sha256, sealed.plaintext_size)
    assert (opened.ciphertext_sha256, opened.ciphertext_size) == (sealed.ciphertext_sha256, sealed.ciphertext_size)
    assert sha256_file(opened_path) == sealed.plaintext_sha256


MEMORY_PROBE = textwrap.dedent(
    """
    import json, os, resource, sys
    import pyrage
    from clients.sealing import seal_stream

    class Source:
        def __init__(self, total):
            self.left = total
        def read(self, size=-1):
            size = min(self.left, 1 << 16 if size is None or size < 0 else size)
            self.left -= size
            return os.urandom(size)

    class Sink:
        def write(self, data):
            return len(data)

    def peak():
        value = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return value if sys.platform == "darwin" else value * 1024

    recipient = str(pyrage.x25519.Identity.generate().to_public())
    seal_stream(Source(4 << 20), Sink(), [recipient])  # warm up: imports, allocator arenas
    before = peak()
    sealed = seal_stream(Source(200 << 20), Sink(), [recipient])
    print(json.dumps({"before": before, "after": peak(), "size": sealed.plaintext_size,
                      "ciphertext_size": sealed.ciphertext_size}))
    """
)


def test_memory_stays_bounded_while_sealing_200_mib() -> None:
    pytest.importorskip("resource")
    result = subprocess.run(
        [sys.executable, "-c", MEMORY_PROBE], cwd=REPO, capture_output=True, text=True, timeout=240, check=False
    )
    assert result.returncode == 0, result.stderr
    measured = json.loads(result.stdout)
    assert measured["size"] == 200 * MiB
    assert measured["ciphertext_size"] > 200 * MiB
    assert measured["after"] - measured["before"] < 64 * MiB, measured


def test_wrong_identity_is_refused(station: pyrage.x25519.Identity) -> None:
    ciphertext = seal_bytes(b"crown" * 1000, station)
    with pytest.raises(SealBroken):
        open_stream(io.BytesIO(ciphertext), io.BytesIO(), pyrage.x25519.Identity.generate())


def _flip(data: bytes, position: int) -> bytes:
    changed = bytearray(data)
    changed[position] ^= 0x01
    return bytes(changed)


@pytest.mark.parametrize(
    "tamper",
    [
        pytest.param(lambda c: _flip(c, 30), id="stanza"),
        pytest.param(lambda c: _flip(c, c.index(b"\n---") + 10), id="header-mac"),
        pytest.param(lambda c: _flip(c, c.index(b"\n---") + 60), id="payload-nonce"),
        pytest.param(lambda c: _flip(c, len(c) // 2), id="middle"),
        pytest.param(lambda c: _flip(c, len(c) - 1), id="last-byte"),
        pytest.param(lambda c: c[:-1], id="truncated-by-one"),
        pytest.param(lambda c: c[: len(c) - 70000], id="truncated-by-a-chunk"),
        pytest.param(lambda c: c + b"\0", id="extended"),
        pytest.param(lambda c: c[:20], id="header-only"),
        pytest.param(lambda c: b"", id="empty"),
        pytest.param(lambda c: b"age-encryption.org/v1\n", id="not-age"),
    ],
)
def test_altered_ciphertext_is_refused(tamper, station: pyrage.x25519.Identity) -> None:
    plaintext = os.urandom(300_000)
    ciphertext = seal_bytes(plaintext, station)
    with pytest.raises(SealBroken):
        open_stream(io.BytesIO(tamper(ciphertext)), io.BytesIO(), station)


def test_every_recipient_opens_and_no_one_else(
    station: pyrage.x25519.Identity, archive: pyrage.x25519.Identity
) -> None:
    second = pyrage.x25519.Identity.generate()
    plaintext = os.urandom(100_000)
    ciphertext = seal_bytes(plaintext, station, second, archive)
    for identity in (station, second, archive, str(archive)):
        out = io.BytesIO()
        opened = open_stream(io.BytesIO(ciphertext), out, identity)
        assert out.getvalue() == plaintext
        assert opened.plaintext_sha256 == hashlib.sha256(plaintext).hexdigest()
    with pytest.raises(SealBroken):
        open_stream(io.BytesIO(ciphertext), io.BytesIO(), pyrage.x25519.Identity.generate())
    # A list of identities opens with whichever matches.
    out = io.BytesIO()
    open_stream(io.BytesIO(ciphertext), out, [pyrage.x25519.Identity.generate(), second])
    assert out.getvalue() == plaintext


def test_empty_plaintext(station: pyrage.x25519.Identity) -> None:
    out = io.BytesIO()
    opened = open_stream(io.BytesIO(seal_bytes(b"", station)), out, station)
    assert (opened.plaintext_size, out.getvalue()) == (0, b"")
    assert opened.plaintext_sha256 == hashlib.sha256(b"").hexdigest()


@pytest.mark.parametrize(
    "recipients",
    [
        [],
        ["age1notarecipient"],
        ["AGE1" + "Q" * 58],
        ["ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHsKLqeplhpW+uObz5dvMgjz1OxfM/XXUB+VHtZ6isGN"],
        "age1ky2c8vlu6c7449xv55cyw72jkh28pdrstp0af6vzw99g80c3s98s8ds0ws",
        ["age1ky2c8vlu6c7449xv55cyw72jkh28pdrstp0af6vzw99g80c3s98s8ds0ws"] * 2,
        ["AGE1KY2C8VLU6C7449XV55CYW72JKH28PDRSTP0AF6VZW99G80C3S98S8DS0WS"],
    ],
)
def test_bad_recipients_are_refused(recipients) -> None:
    out = io.BytesIO()
    with pytest.raises(InvalidRecipient):
        seal_stream(io.BytesIO(b"x"), out, recipients)
    assert out.getvalue() == b""


def test_bad_identity_is_refused(station: pyrage.x25519.Identity) -> None:
    ciphertext = seal_bytes(b"x", station)
    for identity in ("AGE-SECRET-KEY-1NOPE", [], recipient_of(station)):
        with pytest.raises(InvalidIdentity):
            open_stream(io.BytesIO(ciphertext), io.BytesIO(), identity)


class Failing(io.RawIOBase):
    def __init__(self, after: int, error: BaseException) -> None:
        self.after, self.error = after, error

    def readable(self) -> bool:
        return True

    def writable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        if self.after <= 0:
            raise self.error
        self.after -= 1
        return b"x" * (size if size and size > 0 else 10)

    def write(self, data) -> int:
        if self.after <= 0:
            raise self.error
        self.after -= 1
        return len(data)


def test_stream_errors_are_raised_as_themselves(station: pyrage.x25519.Identity) -> None:
    disk_full = OSError(28, "No space left on device")
    with pytest.raises(OSError) as caught:
        seal_stream(io.BytesIO(os.urandom(500_000)), Failing(2, disk_full), [recipient_of(station)])
    assert caught.value is disk_full
    unreadable = OSError(5, "Input/output error")
    with pytest.raises(OSError) as caught:
        seal_stream(Failing(3, unreadable), io.BytesIO(), [recipient_of(station)])
    assert caught.value is unreadable
    # A full disk while opening is no sign of a broken seal.
    ciphertext = seal_bytes(os.urandom(500_000), station)
    with pytest.raises(OSError) as caught:
        open_stream(io.BytesIO(ciphertext), Failing(3, disk_full), station)
    assert caught.value is disk_full and not isinstance(caught.value, SealBroken)


class Trickle(io.RawIOBase):
    """A raw writer that takes at most 1000 bytes a call, as raw streams may."""

    def __init__(self) -> None:
        self.data = bytearray()

    def writable(self) -> bool:
        return True

    def write(self, data) -> int:
        piece = bytes(data[:1000])
        self.data += piece
        return len(piece)


def test_short_writes_lose_nothing(station: pyrage.x25519.Identity) -> None:
    plaintext = os.urandom(200_000)
    trickle = Trickle()
    sealed = seal_stream(io.BytesIO(plaintext), trickle, [recipient_of(station)])
    assert sealed.ciphertext_size == len(trickle.data)
    out = Trickle()
    opened = open_stream(io.BytesIO(bytes(trickle.data)), out, station)
    assert bytes(out.data) == plaintext and opened.plaintext_size == len(plaintext)


def test_errors_are_sealing_errors() -> None:
    for error in (InvalidRecipient, InvalidIdentity, SealBroken, BundleRefused):
        assert issubclass(error, SealingError)


# --- packing bundles ---


@pytest.fixture
def design_files(tmp_path: Path) -> list[tuple[str, Path]]:
    folder = tmp_path / "cad"
    folder.mkdir()
    files = {
        "クラウン_36.stl": os.urandom(150_000),
        "order.xml": b"<order><tooth>36</tooth></order>",
        "empty.txt": b"",
        "x" * 200 + ".stl": os.urandom(512),  # a name that needs a PAX header
    }
    paths = []
    for name, content in files.items():
        path = folder / f"source-{len(paths)}"
        path.write_bytes(content)
        paths.append((name, path))
    return paths


def _tarfile_reference(files: list[tuple[str, Path]]) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w|", format=tarfile.PAX_FORMAT, encoding="utf-8") as archive:
        for name, path in files:
            info = tarfile.TarInfo(name)
            info.size = path.stat().st_size
            info.mode, info.mtime, info.uid, info.gid, info.uname, info.gname = 0o644, 0, 0, 0, "", ""
            with path.open("rb") as handle:
                archive.addfile(info, handle)
    return out.getvalue()


def test_pack_is_tarfile_pax_byte_for_byte(design_files: list[tuple[str, Path]]) -> None:
    out = io.BytesIO()
    entries = pack_bundle(design_files, out)
    assert out.getvalue() == _tarfile_reference(design_files)
    again = io.BytesIO()
    pack_bundle(design_files, again)
    assert again.getvalue() == out.getvalue()  # deterministic
    assert [(e.name, e.sha256, e.size) for e in entries] == [
        (name, sha256_file(path), path.stat().st_size) for name, path in design_files
    ]
    with tarfile.open(fileobj=io.BytesIO(out.getvalue()), mode="r:") as archive:
        members = archive.getmembers()
    assert [m.name for m in members] == [name for name, _ in design_files]
    for member in members:
        assert member.isreg() and member.type == tarfile.REGTYPE
        assert (member.mode, member.mtime, member.uid, member.gid, member.uname, member.gname) == (
            0o644,
            0,
            0,
            0,
            "",
            "",
        )
    assert len(out.getvalue()) % tarfile.RECORDSIZE == 0


def test_bundle_reader_serves_any_read_size(design_files: list[tuple[str, Path]]) -> None:
    reader = BundleReader(design_files)
    pieces = []
    for size in [1, 511, 512, 513, 8192, 100_000, 7] * 100:
        piece = reader.read(size)
        if not piece:
            break
        assert len(piece) <= size
        pieces.append(piece)
    pieces.append(reader.read())
    while tail := reader.read(-1):
        pieces.append(tail)
    assert b"".join(pieces) == _tarfile_reference(design_files)


def test_pack_refuses_what_is_not_a_plain_file(tmp_path: Path, design_files: list[tuple[str, Path]]) -> None:
    directory = tmp_path / "folder"
    directory.mkdir()
    cases: list[list[tuple[str, Path]]] = [
        [],
        [("folder.stl", directory)],
        [("missing.stl", tmp_path / "missing")],
        [("../evil.stl", design_files[0][1])],
        [("a/b.stl", design_files[0][1])],
        [("/abs.stl", design_files[0][1])],
        [("con.stl", design_files[0][1])],
        [("same.stl", design_files[0][1]), ("SAME.stl", design_files[1][1])],
        [(f"f{i}.stl", design_files[1][1]) for i in range(33)],
    ]
    if hasattr(os, "mkfifo"):
        fifo = tmp_path / "fifo"
        os.mkfifo(fifo)
        cases.append([("fifo.stl", fifo)])
    for files in cases:
        out = io.BytesIO()
        with pytest.raises(BundleRefused):
            pack_bundle(files, out)
        assert out.getvalue() == b""


def test_pack_refuses_more_than_the_cap(design_files: list[tuple[str, Path]]) -> None:
    with pytest.raises(BundleRefused, match="more than 1000 bytes"):
        BundleReader(design_files, max_total_size=1000)


def test_file_that_shrinks_while_packing_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "growing.stl"
    path.write_bytes(b"x" * 100_000)
    reader = BundleReader([("a.stl", path)])
    reader.read(1024)
    path.write_bytes(b"x" * 10)  # truncated by the CAD program while we read
    with pytest.raises(BundleRefused, match="shrank"):
        while reader.read(65536):
            pass


# --- unpacking bundles ---


def _tar(*members: tuple[tarfile.TarInfo, bytes | None]) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as archive:
        for info, content in members:
            if content is not None:
                info.size = len(content)
            archive.addfile(info, io.BytesIO(content) if content is not None else None)
    return out.getvalue()


def _member(name: str, kind: bytes = tarfile.REGTYPE, **attributes) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    for key, value in attributes.items():
        setattr(info, key, value)
    return info


def _refused(archive: bytes, dest: Path, match: str, **caps) -> None:
    dest.mkdir(parents=True, exist_ok=True)
    before = sorted(dest.parent.rglob("*"))
    with pytest.raises(BundleRefused, match=match):
        unpack_bundle(io.BytesIO(archive), dest, **caps)
    assert list(dest.iterdir()) == []  # nothing left behind
    assert sorted(dest.parent.rglob("*")) == before  # and nothing written outside


GOOD = (_member("good.stl"), b"solid good\nendsolid good\n")

UNSAFE_BUNDLES = {
    "parent directory": ([GOOD, (_member("../evil"), b"pwned")], "contains '..'"),
    "deeper parent directory": ([(_member("a/../../evil"), b"pwned")], "contains '..'"),
    "absolute path": ([GOOD, (_member("/tmp/evil"), b"pwned")], "absolute path"),
    "windows absolute path": ([(_member("C:\\evil"), b"pwned")], "absolute path"),
    "drive-relative path": ([(_member("C:evil"), b"pwned")], "absolute path"),
    "backslash directory": ([(_member("dir\\evil"), b"pwned")], "names a directory"),
    "directory in name": ([(_member("dir/evil"), b"pwned")], "names a directory"),
    "dot dot alone": ([(_member(".."), b"pwned")], "contains '..'"),
    "symlink": ([GOOD, (_member("link", tarfile.SYMTYPE, linkname="/etc/passwd"), None)], "symbolic link"),
    "hard link": ([GOOD, (_member("hard", tarfile.LNKTYPE, linkname="good.stl"), None)], "hard link"),
    "character device": ([(_member("tty", tarfile.CHRTYPE, devmajor=5, devminor=0), None)], "character device"),
    "block device": ([(_member("sda", tarfile.BLKTYPE, devmajor=8, devminor=0), None)], "block device"),
    "fifo": ([(_member("pipe", tarfile.FIFOTYPE), None)], "FIFO"),
    "directory": ([(_member("folder", tarfile.DIRTYPE), None)], "directory"),
    "duplicate names": ([GOOD, (_member("good.stl"), b"replacement")], "appears twice"),
    "names differing in case": ([GOOD, (_member("GOOD.STL"), b"replacement")], "appears twice"),
    "device name": ([(_member("NUL.stl"), b"x")], "Windows device name"),
    "control character": ([(_member("a\x1bb.stl"), b"x")], "control"),
    "no files": ([], "holds no files"),
    "parent directory in a PAX header": ([(_member("../évité.stl"), b"pwned")], "contains '..'"),
    "absolute path in a PAX header": ([(_member("/tmp/" + "x" * 120), b"pwned")], "absolute path"),
    "sparse file": (
        [(_member("s.stl", pax_headers={"GNU.sparse.map": "0,3", "GNU.sparse.size": "3"}), b"abc")],
        "sparse file",
    ),
    "unknown member type": ([(_member("odd", b"Z"), b"x")], "not a regular file"),
}


@pytest.mark.parametrize(("members", "match"), UNSAFE_BUNDLES.values(), ids=UNSAFE_BUNDLES.keys())
def test_unsafe_bundles_are_refused(tmp_path: Path, members, match: str) -> None:
    _refused(_tar(*members), tmp_path / "import" / "dest", match)


def test_size_and_count_caps(tmp_path: Path) -> None:
    big = _tar((_member("a.stl"), b"a" * 600), (_member("b.stl"), b"b" * 600))
    _refused(big, tmp_path / "dest", "more than 1000 bytes", max_total_size=1000)
    many = _tar(*[(_member(f"{i}.stl"), b"x") for i in range(4)])
    _refused(many, tmp_path / "dest", "at most 3 files", max_files=3)
    assert MAX_BUNDLE_BYTES == 1024**3


def test_damaged_tars_are_refused(tmp_path: Path) -> None:
    archive = _tar((_member("a.stl"), os.urandom(5000)), (_member("b.stl"), os.urandom(5000)))
    _refused(archive[:7000], tmp_path / "dest", "cut short|not a readable tar")
    _refused(b"", tmp_path / "dest", "not a readable tar")
    _refused(b"this is not a tar" * 100, tmp_path / "dest", "not a readable tar")
    _refused(os.urandom(10240), tmp_path / "dest", "not a readable tar")


def test_existing_file_is_not_overwritten(tmp_path: Path) -> None:
    dest = tmp_path / "dest"
    dest.mkdir()
    (dest / "good.stl").write_bytes(b"the lab's own file")
    with pytest.raises(BundleRefused, match="already exists"):
        unpack_bundle(io.BytesIO(_tar(GOOD)), dest)
    assert (dest / "good.stl").read_bytes() == b"the lab's own file"


@pytest.mark.skipif(not hasattr(os, "symlink"), reason="no symbolic links")
def test_symlink_planted_in_destination_is_not_followed(tmp_path: Path) -> None:
    dest, outside = tmp_path / "dest", tmp_path / "outside.txt"
    dest.mkdir()
    (dest / "good.stl").symlink_to(outside)
    with pytest.raises(BundleRefused):
        unpack_bundle(io.BytesIO(_tar(GOOD)), dest)
    assert not outside.exists()


def test_unpack_from_a_non_seekable_stream(tmp_path: Path, design_files: list[tuple[str, Path]]) -> None:
    class Pipe(io.RawIOBase):
        def __init__(self, data: bytes) -> None:
            self._data = io.BytesIO(data)

        def readable(self) -> bool:
            return True

        def readinto(self, buffer) -> int:
            chunk = self._data.read(min(len(buffer), 3000))
            buffer[: len(chunk)] = chunk
            return len(chunk)

    tar_bytes = io.BytesIO()
    packed = pack_bundle(design_files, tar_bytes)
    dest = tmp_path / "dest"
    dest.mkdir()
    unpacked = unpack_bundle(Pipe(tar_bytes.getvalue()), dest)  # type: ignore[arg-type]
    assert unpacked == packed
    for entry in unpacked:
        assert sha256_file(dest / entry.name) == entry.sha256
        if hasattr(os, "getuid"):
            assert (dest / entry.name).stat().st_mode & 0o777 == 0o600


# --- sealed bundles end to end ---


def test_seal_and_open_bundle(
    tmp_path: Path,
    design_files: list[tuple[str, Path]],
    station: pyrage.x25519.Identity,
    archive: pyrage.x25519.Identity,
) -> None:
    ciphertext = tmp_path / "design.age"
    with ciphertext.open("wb") as out:
        sealed = seal_bundle(design_files, out, [recipient_of(station), recipient_of(archive)])
    assert sealed.sealed.ciphertext_sha256 == sha256_file(ciphertext)
    assert sealed.sealed.plaintext_size == len(_tarfile_reference(design_files))
    assert [e.name for e in sealed.files] == [name for name, _ in design_files]
    for identity in (station, archive):
        dest = tmp_path / f"import-{identity.to_public()}"[:40]
        dest.mkdir()
        with ciphertext.open("rb") as source:
            opened = open_bundle(source, dest, identity)
        assert opened.files == sealed.files
        assert opened.opened.plaintext_sha256 == sealed.sealed.plaintext_sha256
        assert opened.opened.ciphertext_sha256 == sealed.sealed.ciphertext_sha256
        assert sorted(p.name for p in dest.iterdir()) == sorted(name for name, _ in design_files)
        for name, path in design_files:
            assert (dest / name).read_bytes() == path.read_bytes()


def test_tampered_bundle_leaves_nothing(
    tmp_path: Path, design_files: list[tuple[str, Path]], station: pyrage.x25519.Identity
) -> None:
    out = io.BytesIO()
    seal_bundle(design_files, out, [recipient_of(station)])
    damaged = _flip(out.getvalue(), len(out.getvalue()) - 100)  # the last chunk: earlier chunks already verified
    dest = tmp_path / "dest"
    dest.mkdir()
    with pytest.raises(SealBroken):
        open_bundle(io.BytesIO(damaged), dest, station)
    assert list(dest.iterdir()) == []
    with pytest.raises(SealBroken):
        open_bundle(io.BytesIO(out.getvalue()), dest, pyrage.x25519.Identity.generate())
    assert list(dest.iterdir()) == []


def test_seal_bundle_checks_recipients_before_reading(design_files: list[tuple[str, Path]]) -> None:
    out = io.BytesIO()
    with pytest.raises(InvalidRecipient):
        seal_bundle(design_files, out, ["age1bad"])
    assert out.getvalue() == b""


def test_seal_bundle_raises_the_bundle_error(tmp_path: Path, station: pyrage.x25519.Identity) -> None:
    path = tmp_path / "a.stl"
    path.write_bytes(b"x" * 200_000)
    bundle = BundleReader([("a.stl", path)])

    class TruncatingAfterFirstRead:
        def read(self, size: int = -1) -> bytes:
            data = bundle.read(size)
            path.write_bytes(b"x")  # the CAD program rewrites the file while it is being sealed
            return data

    with pytest.raises(BundleRefused, match="shrank"):
        seal_stream(TruncatingAfterFirstRead(), io.BytesIO(), [recipient_of(station)])  # type: ignore[arg-type]
