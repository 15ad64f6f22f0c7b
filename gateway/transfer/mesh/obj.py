"""Wavefront OBJ reader: vertices and faces, read as bytes line by line."""

from __future__ import annotations

import io
from array import array

import numpy as np

from gateway.transfer.mesh.limits import InvalidMesh, MeshLimits, _Part

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
