"""Mesh checks before a design goes to a milling machine (G11: electronic transfer of designs).

Every reader raises `InvalidMesh` from explicit checks, never `assert` (gone under `python -O`); sizes come first.
"""

from __future__ import annotations

import io
import os
import re
import struct
import zipfile
import zlib
from array import array
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import IO
from xml.etree.ElementTree import Element

import numpy as np
from defusedxml import DefusedXmlException
from defusedxml.ElementTree import ParseError
from defusedxml.ElementTree import iterparse as safe_iterparse
from defusedxml.ElementTree import parse as safe_parse
from pydantic import BaseModel, ConfigDict, Field, model_validator
from stl.mesh import Mesh as StlMesh

from gateway.errors import DentGateError
from gateway.transfer.formats import STL_HEADER_BYTES, STL_RECORD_BYTES, FileKind, MediaKind, binary_stl_size

MiB = 1024 * 1024

#: A 3MF model part may inflate to at most this many times `max_file_bytes` (it is parsed as a stream).
THREE_MF_INFLATE_FACTOR = 8
#: At most this many entries in a 3MF package, and this many bytes for its small XML parts (relationships).
THREE_MF_MAX_ENTRIES = 1000
THREE_MF_MAX_PART_BYTES = 1 * MiB
#: Nesting depth of 3MF components (objects made of other objects).
THREE_MF_MAX_DEPTH = 16
#: The longest PLY header accepted.
PLY_MAX_HEADER_BYTES = 64 * 1024

_3MF_MODEL_RELATIONSHIP = "http://schemas.microsoft.com/3dmanufacturing/2013/01/3dmodel"
_3MF_UNITS_MM = {"micron": 0.001, "millimeter": 1.0, "centimeter": 10.0, "inch": 25.4, "foot": 304.8, "meter": 1000.0}


class InvalidMesh(DentGateError):
    code = "invalid-mesh"
    status = 422
    title = "Invalid mesh"


class MeshLimits(BaseModel):
    """What a design mesh may be; the lab policy's `MeshPolicy` points at this."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    max_file_bytes: int = Field(default=200 * MiB, gt=0)
    max_triangles: int = Field(default=5_000_000, gt=0)
    bounding_box_max_mm: float = Field(default=120.0, gt=0, allow_inf_nan=False)
    min_extent_mm: float = Field(default=0.1, ge=0, allow_inf_nan=False)

    @model_validator(mode="after")
    def _extent_range(self) -> MeshLimits:
        if self.min_extent_mm >= self.bounding_box_max_mm:
            raise ValueError("min_extent_mm must be smaller than bounding_box_max_mm")
        return self


@dataclass(frozen=True)
class MeshReport:
    """What a valid mesh is: size, bounding box in mm, whether it is closed, and what deserves a look."""

    kind: MediaKind
    triangles: int
    bbox_min: tuple[float, float, float]
    bbox_max: tuple[float, float, float]
    watertight: bool | None
    warnings: list[str] = field(default_factory=list)

    @property
    def extent_mm(self) -> tuple[float, float, float]:
        return (
            self.bbox_max[0] - self.bbox_min[0],
            self.bbox_max[1] - self.bbox_min[1],
            self.bbox_max[2] - self.bbox_min[2],
        )


@dataclass
class _Part:
    """Vertices (n, 3) in mm and triangles (m, 3) int64 indices; STL parts use 3 fresh vertices a face."""

    vertices: np.ndarray
    faces: np.ndarray


# ---------------------------------------------------------------------------------------------------------------
# Entry point
# ---------------------------------------------------------------------------------------------------------------


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


# ---------------------------------------------------------------------------------------------------------------
# Checks common to every format
# ---------------------------------------------------------------------------------------------------------------


def _check_triangle_count(count: int, limits: MeshLimits) -> None:
    if count == 0:
        raise InvalidMesh("the mesh has no triangles")
    if count > limits.max_triangles:
        raise InvalidMesh(f"the mesh has {count} triangles; the limit is {limits.max_triangles}")


def _check(kind: MediaKind, parts: list[_Part], limits: MeshLimits, warnings: list[str]) -> MeshReport:
    triangles = sum(len(part.faces) for part in parts)
    _check_triangle_count(triangles, limits)
    lows, highs = [], []
    for part in parts:
        finite = np.isfinite(part.vertices).all(axis=1)
        if not finite.all():
            bad = int((~finite).sum())
            raise InvalidMesh(f"{bad} vertices have a coordinate that is not a finite number (NaN or infinity)")
        # Unreferenced vertices (possible in PLY, OBJ, 3MF) do not count towards the bounding box.
        used = part.vertices if len(part.faces) * 3 == len(part.vertices) else part.vertices[np.unique(part.faces)]
        lows.append(used.min(axis=0))
        highs.append(used.max(axis=0))
    low, high = np.min(lows, axis=0), np.max(highs, axis=0)
    extent = high - low
    for axis, size in zip("xyz", extent, strict=True):
        if size > limits.bounding_box_max_mm:
            raise InvalidMesh(
                f"the mesh is {size:.1f} mm along {axis}; the limit is {limits.bounding_box_max_mm:g} mm "
                "(coordinates are read as millimetres: was it exported in other units?)"
            )
        if size < limits.min_extent_mm:
            raise InvalidMesh(f"the mesh is {size:.4g} mm along {axis}; the minimum is {limits.min_extent_mm:g} mm")
    closed = True
    for part in parts:
        closed = _watertight(part, warnings) and closed
    if not closed:
        warnings.insert(0, "the mesh is open (not watertight): the CAM software may refuse or repair it")
    warnings[:] = list(dict.fromkeys(warnings))  # a 3MF object placed twice reports its problems once
    return MeshReport(
        kind=kind,
        triangles=triangles,
        bbox_min=(float(low[0]), float(low[1]), float(low[2])),
        bbox_max=(float(high[0]), float(high[1]), float(high[2])),
        watertight=closed,
        warnings=warnings,
    )


def _watertight(part: _Part, warnings: list[str]) -> bool:
    """Closed and consistently oriented: every directed edge is met exactly once in the opposite direction.

    Vertices with exactly equal coordinates are merged first (STL repeats them per triangle).
    """
    coords = np.ascontiguousarray(part.vertices) + part.vertices.dtype.type(0)  # -0.0 becomes 0.0
    keys = coords.view(np.dtype((np.void, coords.dtype.itemsize * 3))).ravel()
    _, merged = np.unique(keys, return_inverse=True)
    faces = merged.reshape(-1)[part.faces]
    degenerate = (faces[:, 0] == faces[:, 1]) | (faces[:, 1] == faces[:, 2]) | (faces[:, 0] == faces[:, 2])
    if degenerate.any():
        warnings.append(f"{int(degenerate.sum())} degenerate triangles (two corners at the same point)")
        faces = faces[~degenerate]
    if len(faces) == 0:
        return False
    n = np.int64(merged.max() + 1)
    start = faces.astype(np.int64)
    end = np.roll(start, -1, axis=1)
    forward = np.sort((start * n + end).ravel())
    backward = np.sort((end * n + start).ravel())
    duplicated = int((forward[1:] == forward[:-1]).sum())
    if duplicated == 0 and np.array_equal(forward, backward):
        return True
    undirected = np.minimum(start, end) * n + np.maximum(start, end)
    _, counts = np.unique(undirected.ravel(), return_counts=True)
    boundary, non_manifold = int((counts == 1).sum()), int((counts > 2).sum())
    if boundary:
        warnings.append(f"{boundary} boundary edges (holes in the surface)")
    if non_manifold:
        warnings.append(f"{non_manifold} non-manifold edges (shared by more than two triangles)")
    if not boundary and not non_manifold:
        warnings.append("inconsistently oriented triangles (some normals point inwards)")
    return False


# ---------------------------------------------------------------------------------------------------------------
# STL
# ---------------------------------------------------------------------------------------------------------------


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


# ---------------------------------------------------------------------------------------------------------------
# PLY
# ---------------------------------------------------------------------------------------------------------------

_PLY_TYPES = {
    "char": "i1",
    "int8": "i1",
    "uchar": "u1",
    "uint8": "u1",
    "short": "i2",
    "int16": "i2",
    "ushort": "u2",
    "uint16": "u2",
    "int": "i4",
    "int32": "i4",
    "uint": "u4",
    "uint32": "u4",
    "float": "f4",
    "float32": "f4",
    "double": "f8",
    "float64": "f8",
}


@dataclass
class _PlyProperty:
    name: str
    dtype: str  # scalar type, or the item type of a list
    count_dtype: str | None = None  # set for list properties


@dataclass
class _PlyElement:
    name: str
    count: int
    properties: list[_PlyProperty] = field(default_factory=list)


def _ply_header(data: bytes) -> tuple[str, list[_PlyElement], int]:
    match = re.search(rb"^end_header[ \t]*\r?\n", data[:PLY_MAX_HEADER_BYTES], re.MULTILINE)
    if not re.match(rb"ply\r?\n", data) or match is None:
        raise InvalidMesh("not a PLY file (no 'ply' magic line or no 'end_header' in the first 64 KiB)")
    try:
        lines = data[: match.start()].decode("ascii").splitlines()[1:]
    except UnicodeDecodeError as error:
        raise InvalidMesh("the PLY header is not ASCII text") from error
    fmt: str | None = None
    elements: list[_PlyElement] = []
    for line in lines:
        words = line.split()
        if not words or words[0] in ("comment", "obj_info"):
            continue
        if words[0] == "format" and len(words) == 3 and words[2] == "1.0":
            fmt = words[1]
        elif words[0] == "element" and len(words) == 3 and words[2].isdigit():
            elements.append(_PlyElement(words[1], int(words[2])))
        elif words[0] == "property" and elements and len(words) == 3 and words[1] in _PLY_TYPES:
            elements[-1].properties.append(_PlyProperty(words[2], _PLY_TYPES[words[1]]))
        elif (
            words[0] == "property"
            and elements
            and len(words) == 5
            and words[1] == "list"
            and words[2] in _PLY_TYPES
            and words[3] in _PLY_TYPES
            and _PLY_TYPES[words[2]][0] in "iu"
        ):
            elements[-1].properties.append(_PlyProperty(words[4], _PLY_TYPES[words[3]], _PLY_TYPES[words[2]]))
        else:
            raise InvalidMesh(f"malformed PLY header line: {line[:60]!r}")
    if fmt not in ("ascii", "binary_little_endian", "binary_big_endian"):
        raise InvalidMesh("the PLY header names no supported format (ascii, binary_little_endian, binary_big_endian)")
    return fmt, elements, match.end()


def _ply_layout(elements: list[_PlyElement], limits: MeshLimits) -> tuple[_PlyElement, _PlyElement, str]:
    by_name = {element.name: element for element in elements}
    vertex, face = by_name.get("vertex"), by_name.get("face")
    if vertex is None or face is None:
        raise InvalidMesh("the PLY file has no 'vertex' or no 'face' element")
    names = [prop.name for prop in vertex.properties if prop.count_dtype is None]
    if not {"x", "y", "z"} <= set(names):
        raise InvalidMesh("the PLY vertices have no x, y and z properties")
    lists = [prop for prop in face.properties if prop.count_dtype is not None]
    chosen = next((prop for prop in lists if prop.name in ("vertex_indices", "vertex_index")), None)
    chosen = chosen or (lists[0] if lists else None)
    if chosen is None or chosen.dtype[0] not in "iu":
        raise InvalidMesh("the PLY faces have no integer 'vertex_indices' list")
    _check_triangle_count(face.count, limits)
    for element in elements:  # bounds the work done row by row before anything is read
        if element.count > 3 * limits.max_triangles:
            raise InvalidMesh(f"the PLY header announces {element.count} '{element.name}' rows: implausibly many")
    return vertex, face, chosen.name


def _read_ply(data: bytes, limits: MeshLimits, warnings: list[str]) -> _Part:
    fmt, elements, body = _ply_header(data)
    vertex, face, index_name = _ply_layout(elements, limits)
    if fmt == "ascii":
        rows = _ply_ascii_rows(data[body:], elements)
    else:
        rows = _ply_binary_rows(data, body, elements, ">" if fmt == "binary_big_endian" else "<", warnings)
    vertex_rows, face_rows = rows[vertex.name], rows[face.name]
    vertices = np.column_stack([vertex_rows[axis] for axis in ("x", "y", "z")]).astype(np.float64)
    faces = _triangulate(face_rows[index_name], len(vertices), limits)
    return _Part(vertices, faces)


def _ply_ascii_rows(text: bytes, elements: list[_PlyElement]) -> dict[str, dict[str, object]]:
    lines = text.split(b"\n")
    cursor = 0
    result: dict[str, dict[str, object]] = {}
    for element in elements:
        if cursor + element.count > len(lines):
            raise InvalidMesh(f"the PLY file ends before all {element.count} '{element.name}' rows (truncated?)")
        chunk = lines[cursor : cursor + element.count]
        cursor += element.count
        columns: dict[str, object] = {}
        if all(prop.count_dtype is None for prop in element.properties):
            width = len(element.properties)
            tokens = b" ".join(chunk).split()
            if len(tokens) != width * element.count:
                raise InvalidMesh(f"the PLY '{element.name}' rows do not have {width} values each")
            try:
                table = np.array(tokens, dtype=np.float64).reshape(element.count, width)
            except ValueError as error:
                raise InvalidMesh(f"a PLY '{element.name}' value is not a number") from error
            for position, prop in enumerate(element.properties):
                columns[prop.name] = table[:, position]
        else:
            columns = _ply_ascii_mixed(chunk, element)
        result[element.name] = columns
    if any(line.strip() for line in lines[cursor:]):
        raise InvalidMesh("the PLY file has more rows than its header announces")
    return result


def _ply_ascii_mixed(chunk: list[bytes], element: _PlyElement) -> dict[str, object]:
    columns: dict[str, list[object]] = {prop.name: [] for prop in element.properties}
    for line in chunk:
        tokens = line.split()
        position = 0
        try:
            for prop in element.properties:
                if prop.count_dtype is None:
                    columns[prop.name].append(float(tokens[position]))
                    position += 1
                else:
                    length = int(tokens[position])
                    items = tokens[position + 1 : position + 1 + length]
                    if length < 0 or len(items) != length:
                        raise InvalidMesh(f"a PLY '{element.name}' row has a short list")
                    columns[prop.name].append([int(item) for item in items])
                    position += 1 + length
        except (IndexError, ValueError) as error:
            raise InvalidMesh(f"malformed PLY '{element.name}' row: {line[:60]!r}") from error
        if position != len(tokens):
            raise InvalidMesh(f"a PLY '{element.name}' row has extra values: {line[:60]!r}")
    return dict(columns)


def _ply_binary_rows(
    data: bytes, offset: int, elements: list[_PlyElement], order: str, warnings: list[str]
) -> dict[str, dict[str, object]]:
    result: dict[str, dict[str, object]] = {}
    for element in elements:
        if all(prop.count_dtype is None for prop in element.properties):
            dtype = np.dtype([(f"p{i}", order + prop.dtype) for i, prop in enumerate(element.properties)])
            needed = dtype.itemsize * element.count
            if offset + needed > len(data):
                raise InvalidMesh(f"the PLY file ends inside its '{element.name}' rows (truncated?)")
            table = np.frombuffer(data, dtype=dtype, count=element.count, offset=offset)
            offset += needed
            result[element.name] = {prop.name: table[f"p{i}"] for i, prop in enumerate(element.properties)}
        else:
            result[element.name], offset = _ply_binary_lists(data, offset, element, order)
    if offset != len(data):
        warnings.append(f"{len(data) - offset} bytes after the last PLY element were ignored")
    return result


def _ply_binary_lists(data: bytes, offset: int, element: _PlyElement, order: str) -> tuple[dict[str, object], int]:
    smallest_row = sum(np.dtype(prop.count_dtype or prop.dtype).itemsize for prop in element.properties)
    if offset + smallest_row * element.count > len(data):
        raise InvalidMesh(f"the PLY file ends inside its '{element.name}' rows (truncated?)")
    if element.count == 0:
        return {prop.name: [] for prop in element.properties}, offset
    only = element.properties[0] if len(element.properties) == 1 else None
    if only is not None and only.count_dtype is not None and offset + np.dtype(only.count_dtype).itemsize <= len(data):
        # Fast path: every face has as many corners as the first one (all triangles, or all quads).
        corners = int(np.frombuffer(data, dtype=order + only.count_dtype, count=1, offset=offset)[0])
        if corners >= 3:
            dtype = np.dtype([("n", order + only.count_dtype), ("i", order + only.dtype, (corners,))])
            if offset + dtype.itemsize * element.count <= len(data):
                table = np.frombuffer(data, dtype=dtype, count=element.count, offset=offset)
                if (table["n"] == corners).all():
                    return {only.name: table["i"]}, offset + dtype.itemsize * element.count
    columns: dict[str, list[object]] = {prop.name: [] for prop in element.properties}
    for _ in range(element.count):
        for prop in element.properties:
            if prop.count_dtype is None:
                size = np.dtype(prop.dtype).itemsize
                if offset + size > len(data):
                    raise InvalidMesh(f"the PLY file ends inside its '{element.name}' rows (truncated?)")
                columns[prop.name].append(np.frombuffer(data, order + prop.dtype, 1, offset)[0])
                offset += size
                continue
            count_size, item_size = np.dtype(prop.count_dtype).itemsize, np.dtype(prop.dtype).itemsize
            if offset + count_size > len(data):
                raise InvalidMesh(f"the PLY file ends inside its '{element.name}' rows (truncated?)")
            length = int(np.frombuffer(data, order + prop.count_dtype, 1, offset)[0])
            offset += count_size
            if length < 0 or offset + length * item_size > len(data):
                raise InvalidMesh(f"the PLY file ends inside its '{element.name}' rows (truncated?)")
            columns[prop.name].append(np.frombuffer(data, order + prop.dtype, length, offset).tolist())
            offset += length * item_size
    return dict(columns), offset


def _triangulate(polygons: object, vertex_count: int, limits: MeshLimits) -> np.ndarray:
    """Triangles from polygons given as an (m, k) array or a list of index lists (fans for k > 3)."""
    if isinstance(polygons, np.ndarray) and polygons.ndim == 2:
        table = polygons.astype(np.int64)
        if table.shape[1] < 3:
            raise InvalidMesh("a face has fewer than 3 corners")
        fans = [table[:, [0, k, k + 1]] for k in range(1, table.shape[1] - 1)]
        faces = np.stack(fans, axis=1).reshape(-1, 3)
    else:
        triangles: list[int] = []
        for polygon in polygons:  # type: ignore[attr-defined]
            if len(polygon) < 3:
                raise InvalidMesh("a face has fewer than 3 corners")
            for k in range(1, len(polygon) - 1):
                triangles.extend((int(polygon[0]), int(polygon[k]), int(polygon[k + 1])))
            if len(triangles) > 3 * limits.max_triangles:
                break
        faces = np.array(triangles, dtype=np.int64).reshape(-1, 3)
    _check_triangle_count(len(faces), limits)
    if faces.min() < 0 or faces.max() >= vertex_count:
        raise InvalidMesh(f"a face refers to a vertex that does not exist (there are {vertex_count})")
    return faces


# ---------------------------------------------------------------------------------------------------------------
# OBJ
# ---------------------------------------------------------------------------------------------------------------

_OBJ_IGNORED = frozenset(
    {"vn", "vt", "vp", "g", "o", "s", "usemtl", "mtllib", "l", "p", "cstype", "deg", "bmat", "step", "curv", "curv2"}
    | {"surf", "parm", "trim", "hole", "scrv", "sp", "end", "con", "mg", "bevel", "c_interp", "d_interp", "lod"}
    | {"maplib", "usemap", "shadow_obj", "trace_obj", "ctech", "stech"}
)


def _read_obj(data: bytes, limits: MeshLimits, warnings: list[str]) -> _Part:
    # Read as bytes line by line: keywords and numbers are ASCII, and names or comments may be in any encoding.
    if b"\x00" in data:
        raise InvalidMesh("not a text OBJ file (it contains NUL bytes)")
    stream = io.BytesIO(data)
    if data.startswith(b"\xef\xbb\xbf"):
        stream.seek(3)
    coordinates = array("d")
    faces = array("q")
    unknown = 0
    vertex_count = 0
    for number, raw in enumerate(stream, start=1):
        words = raw.split(b"#", 1)[0].split()
        if not words:
            continue
        keyword = words[0]
        try:
            if keyword == b"v":
                if len(words) < 4:
                    raise InvalidMesh(f"OBJ line {number}: a vertex needs x, y and z")
                coordinates.extend((float(words[1]), float(words[2]), float(words[3])))
                vertex_count += 1
            elif keyword == b"f":
                corners = [_obj_index(word, vertex_count, number) for word in words[1:]]
                if len(corners) < 3:
                    raise InvalidMesh(f"OBJ line {number}: a face needs at least 3 corners")
                for k in range(1, len(corners) - 1):
                    faces.extend((corners[0], corners[k], corners[k + 1]))
                if len(faces) > 3 * limits.max_triangles:
                    raise InvalidMesh(f"the mesh has more than {limits.max_triangles} triangles, the limit")
            elif keyword.decode("latin-1") not in _OBJ_IGNORED:
                unknown += 1
        except ValueError as error:
            shown = raw.strip()[:60].decode("utf-8", errors="replace")
            raise InvalidMesh(f"OBJ line {number}: {shown!r} is not valid") from error
    if vertex_count == 0 and not faces:
        raise InvalidMesh("not an OBJ mesh: no 'v' or 'f' lines")
    if unknown:
        warnings.append(f"{unknown} OBJ lines with unknown keywords were ignored")
    return _Part(
        np.frombuffer(coordinates, dtype=np.float64).reshape(-1, 3),
        np.frombuffer(faces, dtype=np.int64).reshape(-1, 3),
    )


def _obj_index(word: bytes, vertex_count: int, number: int) -> int:
    index = int(word.split(b"/", 1)[0])
    if index > 0 and index <= vertex_count:
        return index - 1
    if index < 0 and -index <= vertex_count:
        return vertex_count + index
    shown = word[:20].decode("utf-8", errors="replace")
    raise InvalidMesh(f"OBJ line {number}: face corner {shown!r} refers to a vertex that does not exist")


# ---------------------------------------------------------------------------------------------------------------
# 3MF
# ---------------------------------------------------------------------------------------------------------------


class _CappedReader(io.RawIOBase):
    """A read-only stream that fails once more than `limit` bytes have come out of `inner`."""

    def __init__(self, inner: IO[bytes], limit: int) -> None:
        self._inner, self._left = inner, limit

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        chunk = self._inner.read(min(len(buffer), self._left + 1))
        if len(chunk) > self._left:
            raise InvalidMesh("the 3MF model inflates beyond the size limit (zip bomb?)")
        self._left -= len(chunk)
        buffer[: len(chunk)] = chunk
        return len(chunk)


@dataclass
class _Object:
    mesh: _Part | None = None
    components: list[tuple[str, np.ndarray]] = field(default_factory=list)


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _transform(text: str | None) -> np.ndarray:
    """A 3MF transform "m00 m01 m02 m10 ... m32" as a 4x3 matrix applied to row vectors [x y z 1]."""
    if not text:
        return np.vstack([np.eye(3), np.zeros(3)])
    try:
        values = [float(value) for value in text.split()]
    except ValueError as error:
        raise InvalidMesh(f"a 3MF transform is not 12 numbers: {text[:60]!r}") from error
    if len(values) != 12 or not all(np.isfinite(values)):
        raise InvalidMesh(f"a 3MF transform is not 12 finite numbers: {text[:60]!r}")
    return np.array(values, dtype=np.float64).reshape(4, 3)


def _compose(inner: np.ndarray, outer: np.ndarray) -> np.ndarray:
    """The transform applying `inner` first, then `outer`."""
    linear = inner[:3] @ outer[:3]
    return np.vstack([linear, inner[3] @ outer[:3] + outer[3]])


def _read_3mf(
    source: bytes | bytearray | memoryview | str | os.PathLike[str], size: int, limits: MeshLimits, warnings: list[str]
) -> list[_Part]:
    handle: IO[bytes] | str | os.PathLike[str] = (
        io.BytesIO(bytes(source)) if isinstance(source, bytes | bytearray | memoryview) else source
    )
    try:
        with zipfile.ZipFile(handle) as package:
            entries = package.infolist()
            if len(entries) > THREE_MF_MAX_ENTRIES:
                raise InvalidMesh(f"the 3MF package has {len(entries)} entries; at most {THREE_MF_MAX_ENTRIES}")
            model = package.getinfo(_3mf_model_name(package))
            cap = THREE_MF_INFLATE_FACTOR * limits.max_file_bytes
            if model.file_size > cap:
                raise InvalidMesh(
                    f"the 3MF model declares {model.file_size} bytes uncompressed; at most {cap} (zip bomb?)"
                )
            with package.open(model) as raw:
                return _parse_3mf_model(io.BufferedReader(_CappedReader(raw, cap)), limits, warnings)
    except zipfile.BadZipFile as error:
        raise InvalidMesh(f"not a 3MF file: the ZIP package is damaged ({error})") from error
    except (
        zipfile.LargeZipFile,
        zlib.error,
        struct.error,
        ValueError,  # e.g. "negative seek value" from a damaged central directory
        NotImplementedError,
        RuntimeError,
        EOFError,
        OSError,
    ) as error:
        raise InvalidMesh(f"the 3MF package cannot be read ({error})") from error


def _3mf_model_name(package: zipfile.ZipFile) -> str:
    names = {info.filename.lower(): info.filename for info in package.infolist()}
    target = "3D/3dmodel.model"
    rels = names.get("_rels/.rels")
    if rels is not None:
        info = package.getinfo(rels)
        if info.file_size > THREE_MF_MAX_PART_BYTES:
            raise InvalidMesh("the 3MF relationships part is implausibly large")
        with package.open(info) as raw:
            root = _safe_xml_root(io.BufferedReader(_CappedReader(raw, THREE_MF_MAX_PART_BYTES)))
        for relation in root.iter():
            if _local(relation.tag) == "Relationship" and relation.get("Type") == _3MF_MODEL_RELATIONSHIP:
                target = (relation.get("Target") or "").lstrip("/")
                break
    resolved = PurePosixPath(target).as_posix().lower()
    if resolved not in names:
        raise InvalidMesh(f"not a 3MF file: the package has no model part {target!r}")
    return names[resolved]


def _safe_xml_root(stream: IO[bytes]) -> Element:
    try:
        return safe_parse(stream, forbid_dtd=True).getroot()
    except DefusedXmlException as error:
        raise InvalidMesh(f"the 3MF XML uses a DTD or entities, which are refused ({type(error).__name__})") from error
    except ParseError as error:
        raise InvalidMesh(f"the 3MF XML is not well-formed ({error})") from error
    except LookupError as error:
        raise InvalidMesh(f"the 3MF XML declares an unknown text encoding ({error})") from error


def _parse_3mf_model(stream: IO[bytes], limits: MeshLimits, warnings: list[str]) -> list[_Part]:
    objects: dict[str, _Object] = {}
    items: list[tuple[str, np.ndarray]] = []
    scale = 1.0
    coordinates, indices = array("d"), array("q")
    vertex_total = triangle_total = 0
    current: str | None = None
    container: Element | None = None  # the <vertices> or <triangles> being read, emptied as it goes
    try:
        for event, element in safe_iterparse(stream, events=("start", "end"), forbid_dtd=True):
            name = _local(element.tag)
            if event == "start":
                if name == "model":
                    unit = element.get("unit", "millimeter")
                    if unit not in _3MF_UNITS_MM:
                        raise InvalidMesh(f"the 3MF model has an unknown unit {unit!r}")
                    scale = _3MF_UNITS_MM[unit]
                elif name == "object":
                    current = element.get("id")
                    if not current or current in objects:
                        raise InvalidMesh("a 3MF object has no id or a duplicate id")
                    objects[current] = _Object()
                    coordinates, indices = array("d"), array("q")
                elif name in ("vertices", "triangles"):
                    container = element
                continue
            if name == "vertex":
                coordinates.extend(_numbers(element, ("x", "y", "z"), float))
                vertex_total += 1
                if vertex_total > 3 * limits.max_triangles:
                    limit = 3 * limits.max_triangles
                    raise InvalidMesh(
                        f"the 3MF model has more than {limit} vertices (the limit: 3 per triangle allowed)"
                    )
            elif name == "triangle":
                indices.extend(_numbers(element, ("v1", "v2", "v3"), int))
                triangle_total += 1
                if triangle_total > limits.max_triangles:
                    raise InvalidMesh(f"the mesh has more than {limits.max_triangles} triangles, the limit")
            elif name == "mesh" and current is not None:
                vertices = np.frombuffer(coordinates, dtype=np.float64).reshape(-1, 3) * scale
                faces = np.frombuffer(indices, dtype=np.int64).reshape(-1, 3)
                if len(faces) and (faces.min() < 0 or faces.max() >= len(vertices)):
                    raise InvalidMesh(f"a 3MF triangle refers to a vertex that does not exist in object {current}")
                objects[current].mesh = _Part(vertices, faces)
            elif name == "component" and current is not None:
                if any(_local(key) == "path" for key in element.attrib):
                    raise InvalidMesh("the 3MF model refers to other model parts (production extension): unsupported")
                objects[current].components.append((element.get("objectid", ""), _transform(element.get("transform"))))
            elif name == "object":
                current = None
            elif name == "item":
                if any(_local(key) == "path" for key in element.attrib):
                    raise InvalidMesh("the 3MF build refers to other model parts (production extension): unsupported")
                items.append((element.get("objectid", ""), _transform(element.get("transform"))))
            if name in ("vertex", "triangle") and container is not None:
                container.clear()  # drop the finished child from its parent, or millions would pile up
            elif name not in ("model", "resources", "object", "build", "components"):
                element.clear()
    except DefusedXmlException as error:
        raise InvalidMesh(f"the 3MF XML uses a DTD or entities, which are refused ({type(error).__name__})") from error
    except ParseError as error:
        raise InvalidMesh(f"the 3MF model XML is not well-formed ({error})") from error
    except LookupError as error:
        raise InvalidMesh(f"the 3MF model XML declares an unknown text encoding ({error})") from error
    if not items:
        warnings.append("the 3MF model has no build items; every mesh object was checked")
        items = [(object_id, _transform(None)) for object_id, obj in objects.items() if obj.mesh is not None]
    return list(_instances(objects, items, scale))


def _numbers(element: object, keys: tuple[str, ...], kind: type) -> tuple:
    try:
        return tuple(kind(element.get(key)) for key in keys)  # type: ignore[attr-defined]
    except (TypeError, ValueError) as error:
        raise InvalidMesh(f"a 3MF <{_local(element.tag)}> lacks a valid {'/'.join(keys)}") from error  # type: ignore[attr-defined]


def _instances(objects: dict[str, _Object], items: list[tuple[str, np.ndarray]], scale: float) -> Iterator[_Part]:
    """Each placed mesh, transformed into build coordinates (translations are in model units, hence `scale`)."""

    def place(object_id: str, transform: np.ndarray, seen: tuple[str, ...]) -> Iterator[_Part]:
        if object_id not in objects:
            raise InvalidMesh(f"the 3MF model refers to an object {object_id!r} that does not exist")
        if object_id in seen or len(seen) >= THREE_MF_MAX_DEPTH:
            raise InvalidMesh("the 3MF components nest too deeply or refer to themselves")
        obj = objects[object_id]
        if obj.mesh is not None and len(obj.mesh.faces):
            vertices = obj.mesh.vertices @ transform[:3] + transform[3] * scale
            yield _Part(vertices, obj.mesh.faces)
        for child, child_transform in obj.components:
            yield from place(child, _compose(child_transform, transform), (*seen, object_id))

    for object_id, transform in items:
        yield from place(object_id, transform, ())
