"""PLY reader: ASCII and binary (either byte order), polygons triangulated as fans."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import numpy as np

from gateway.transfer.mesh.checks import _check_triangle_count
from gateway.transfer.mesh.limits import InvalidMesh, MeshLimits, _Part

#: The longest PLY header accepted.
PLY_MAX_HEADER_BYTES = 64 * 1024

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
