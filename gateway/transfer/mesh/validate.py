"""The entry point: `validate_mesh` checks the size, reads the mesh by kind and runs the common checks."""

from __future__ import annotations

import os

from gateway.transfer.formats import FileKind, MediaKind
from gateway.transfer.mesh.checks import _check
from gateway.transfer.mesh.limits import InvalidMesh, MeshLimits, MeshReport
from gateway.transfer.mesh.obj import _read_obj
from gateway.transfer.mesh.ply import _read_ply
from gateway.transfer.mesh.stl import _read_ascii_stl, _read_binary_stl
from gateway.transfer.mesh.threemf import _read_3mf


def validate_mesh(
    source: bytes | bytearray | memoryview | str | os.PathLike[str],
    kind: MediaKind | FileKind,
    limits: MeshLimits | None = None,
) -> MeshReport:
    """Parse and check a mesh (bytes or a file path) of the given kind; InvalidMesh names the first problem found.

    An open (non-watertight) mesh is reported as a warning, not refused.
    """
    limits = limits or MeshLimits()
    kind = kind.kind if isinstance(kind, FileKind) else MediaKind(kind)
    if not kind.is_mesh:
        raise InvalidMesh(f"{kind.value} is not a mesh format")
    size = _size_of(source)
    if size == 0:
        raise InvalidMesh("the file is empty")
    if size > limits.max_file_bytes:
        raise InvalidMesh(f"the file is {size} bytes; the limit is {limits.max_file_bytes} bytes")
    warnings: list[str] = []
    if kind is MediaKind.THREE_MF:
        parts = _read_3mf(source, size, limits, warnings)
    else:
        data = _read_all(source, size)
        if kind is MediaKind.STL_BINARY:
            parts = [_read_binary_stl(data, limits)]
        elif kind is MediaKind.STL_ASCII:
            parts = [_read_ascii_stl(data, limits)]
        elif kind is MediaKind.PLY:
            parts = [_read_ply(data, limits, warnings)]
        else:
            parts = [_read_obj(data, limits, warnings)]
    return _check(kind, parts, limits, warnings)


def _size_of(source: bytes | bytearray | memoryview | str | os.PathLike[str]) -> int:
    if isinstance(source, bytes | bytearray | memoryview):
        return memoryview(source).nbytes
    try:
        return os.stat(source).st_size
    except OSError as error:
        raise InvalidMesh(f"cannot read the file: {error.strerror}") from error


def _read_all(source: bytes | bytearray | memoryview | str | os.PathLike[str], size: int) -> bytes:
    if isinstance(source, bytes | bytearray | memoryview):
        return bytes(source)
    with open(source, "rb") as handle:
        data = handle.read(size + 1)
    if len(data) != size:
        raise InvalidMesh("the file changed while it was being read")
    return data
