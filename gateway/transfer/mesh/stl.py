"""STL readers: binary (size checked against the announced triangle count) and ASCII (read in bounded chunks)."""

from __future__ import annotations

import re
import struct
from collections.abc import Iterator

import numpy as np
from stl.mesh import Mesh as StlMesh

from gateway.transfer.formats import STL_HEADER_BYTES, STL_RECORD_BYTES, binary_stl_size
from gateway.transfer.mesh.checks import _check_triangle_count
from gateway.transfer.mesh.limits import InvalidMesh, MeshLimits, MiB, _Part


def _soup(vectors: np.ndarray) -> _Part:
    """A part from (m, 3, 3) triangle corners, three vertices per triangle."""
    vertices = np.asarray(vectors).reshape(-1, 3)  # float32 as stored in STL: half the memory of float64
    return _Part(vertices, np.arange(len(vertices), dtype=np.int64).reshape(-1, 3))


def _read_binary_stl(data: bytes, limits: MeshLimits) -> _Part:
    if len(data) < STL_HEADER_BYTES + 4:
        raise InvalidMesh(f"a binary STL has an 84-byte header; this file has only {len(data)} bytes (truncated?)")
    (count,) = struct.unpack_from("<I", data, STL_HEADER_BYTES)
    expected = binary_stl_size(count)
    if len(data) != expected:
        records, rest = divmod(len(data) - STL_HEADER_BYTES - 4, STL_RECORD_BYTES)
        raise InvalidMesh(
            f"the binary STL header announces {count} triangles ({expected} bytes) but the file has {len(data)} "
            f"bytes ({records} whole triangles{f' and {rest} stray bytes' if rest else ''}): truncated or corrupt"
        )
    _check_triangle_count(count, limits)
    records = np.frombuffer(data, dtype=StlMesh.dtype, count=count, offset=STL_HEADER_BYTES + 4)
    stl = StlMesh(records, calculate_normals=False, speedups=False)
    return _soup(stl.vectors)


_ASCII_SOLID_LINE = re.compile(rb"^[ \t]*(end)?solid\b[^\r\n]*", re.MULTILINE | re.IGNORECASE)
_FACET_TOKENS = 21  # facet normal i j k / outer loop / 3 x (vertex x y z) / endloop / endfacet
_FACET_KEYWORDS = {0: b"facet", 1: b"normal", 5: b"outer", 6: b"loop", 7: b"vertex", 11: b"vertex", 15: b"vertex"}
_FACET_KEYWORDS |= {19: b"endloop", 20: b"endfacet"}
_ASCII_CHUNK_BYTES = 8 * MiB
_WHITESPACE = re.compile(rb"\s")


def _read_ascii_stl(data: bytes, limits: MeshLimits) -> _Part:
    markers = list(_ASCII_SOLID_LINE.finditer(data))
    if not markers or markers[0].group(1) is not None or data[: markers[0].start()].strip():
        raise InvalidMesh("an ASCII STL must start with a 'solid' line")
    vectors: list[np.ndarray] = []
    total = 0
    position = 0
    for index in range(0, len(markers), 2):
        opening = markers[index]
        closing = markers[index + 1] if index + 1 < len(markers) else None
        if data[position : opening.start()].strip():
            raise InvalidMesh("unexpected text between solids of the ASCII STL")
        if closing is None or closing.group(1) is None:
            raise InvalidMesh("the ASCII STL ends without 'endsolid' (truncated?) or nests 'solid' lines")
        for tokens in _facet_tokens(data, opening.end(), closing.start()):
            total += len(tokens) // _FACET_TOKENS
            if total > limits.max_triangles:
                raise InvalidMesh(f"the mesh has more than {limits.max_triangles} triangles, the limit")
            vectors.append(_facets(tokens))
        position = closing.end()
    if data[position:].strip():
        raise InvalidMesh("unexpected text after the last 'endsolid' of the ASCII STL")
    if not total:
        raise InvalidMesh("the mesh has no triangles")
    return _soup(np.concatenate(vectors))


def _facet_tokens(data: bytes, start: int, end: int) -> Iterator[list[bytes]]:
    """The lower-cased tokens between `start` and `end`, a whole number of facets at a time (bounded memory)."""
    carry: list[bytes] = []
    while start < end:
        stop = min(end, start + _ASCII_CHUNK_BYTES)
        if stop < end:
            space = _WHITESPACE.search(data, stop, end)
            stop = space.end() if space else end
        tokens = carry + data[start:stop].lower().split()
        whole = len(tokens) - len(tokens) % _FACET_TOKENS
        carry = tokens[whole:]
        if whole:
            yield tokens[:whole]
        start = stop
    if carry:
        raise InvalidMesh("the ASCII STL has an incomplete facet (each needs a normal, a loop of 3 vertices)")


def _facets(tokens: list[bytes]) -> np.ndarray:
    """(m, 3, 3) corners from the tokens of m facets, every keyword in its place."""
    for offset, keyword in _FACET_KEYWORDS.items():
        found = set(tokens[offset::_FACET_TOKENS])
        if found - {keyword}:
            wrong = sorted(found - {keyword})[0].decode("latin-1")[:40]
            raise InvalidMesh(f"malformed ASCII STL: found {wrong!r} where {keyword.decode()!r} belongs")
    columns = [tokens[offset::_FACET_TOKENS] for offset in (8, 9, 10, 12, 13, 14, 16, 17, 18)]
    normals = [tokens[offset::_FACET_TOKENS] for offset in (2, 3, 4)]
    try:
        np.array(normals, dtype=np.float64)
        return np.array(columns, dtype=np.float64).T.reshape(-1, 3, 3)
    except ValueError as error:
        raise InvalidMesh("malformed ASCII STL: a coordinate is not a number") from error
