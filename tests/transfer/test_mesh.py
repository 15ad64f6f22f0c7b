"""Mesh validation (G11): every format read, every refusal explained, no reliance on `assert`."""

from __future__ import annotations

import io
import os
import struct
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path

import numpy as np
import pytest
from pydantic import ValidationError
from stl import Mode
from stl.mesh import Mesh as StlMesh

from gateway.transfer.formats import MediaKind, classify
from gateway.transfer.mesh import InvalidMesh, MeshLimits, MeshReport, validate_mesh

# --- test meshes, made here ------------------------------------------------------------------------------------


def tetrahedron(size: float = 10.0) -> tuple[np.ndarray, np.ndarray]:
    """A closed, consistently oriented tetrahedron `size` mm on a side of its bounding box."""
    vertices = np.array([[0, 0, 0], [size, 0, 0], [0, size, 0], [0, 0, size]], dtype=np.float64)
    faces = np.array([[0, 2, 1], [0, 1, 3], [0, 3, 2], [1, 2, 3]], dtype=np.int64)
    return vertices, faces


def crown(segments: int = 24) -> tuple[np.ndarray, np.ndarray]:
    """A closed crown-like solid: a tapered, cusped cylinder about 10 mm across and 8 mm high."""
    angles = np.linspace(0, 2 * np.pi, segments, endpoint=False)
    base = np.column_stack([5.0 * np.cos(angles), 5.0 * np.sin(angles), np.zeros(segments)])
    cusps = 7.0 + 0.8 * np.cos(4 * angles)
    top = np.column_stack([4.4 * np.cos(angles), 4.4 * np.sin(angles), cusps])
    vertices = np.vstack([base, top, [[0, 0, 0]], [[0, 0, 6.0]]])  # fissure below the cusp tips
    bottom_centre, top_centre = 2 * segments, 2 * segments + 1
    faces = []
    for i in range(segments):
        j = (i + 1) % segments
        faces += [[bottom_centre, j, i], [i, j, segments + j], [i, segments + j, segments + i]]
        faces += [[top_centre, segments + i, segments + j]]
    return vertices, np.array(faces, dtype=np.int64)


def triangles_of(vertices: np.ndarray, faces: np.ndarray) -> np.ndarray:
    return vertices[faces]


def binary_stl(vectors: np.ndarray, header: bytes = b"DentGate test mesh", count: int | None = None) -> bytes:
    out = io.BytesIO()
    out.write(header[:80].ljust(80, b"\0"))
    out.write(struct.pack("<I", len(vectors) if count is None else count))
    for triangle in vectors:
        out.write(struct.pack("<3f", 0, 0, 0))
        out.write(struct.pack("<9f", *np.asarray(triangle, dtype=np.float64).ravel()))
        out.write(b"\0\0")
    return out.getvalue()


def numpy_stl_bytes(vectors: np.ndarray, mode: Mode) -> bytes:
    data = np.zeros(len(vectors), dtype=StlMesh.dtype)
    data["vectors"] = vectors
    out = io.BytesIO()
    StlMesh(data).save("crown.stl", fh=out, mode=mode)
    return out.getvalue()


def ascii_stl(vectors: np.ndarray, name: str = "crown") -> bytes:
    lines = [f"solid {name}"]
    for triangle in vectors:
        lines += ["  facet normal 0 0 0", "    outer loop"]
        lines += [f"      vertex {x!r} {y!r} {z!r}" for x, y, z in np.asarray(triangle, dtype=np.float64).tolist()]
        lines += ["    endloop", "  endfacet"]
    lines.append(f"endsolid {name}")
    return ("\n".join(lines) + "\n").encode()


def ply_ascii(vertices: np.ndarray, faces: np.ndarray) -> bytes:
    header = [
        "ply",
        "format ascii 1.0",
        "comment made by DentGate tests",
        f"element vertex {len(vertices)}",
        "property float x",
        "property float y",
        "property float z",
        f"element face {len(faces)}",
        "property list uchar int vertex_indices",
        "end_header",
    ]
    rows = [" ".join(repr(float(c)) for c in v) for v in vertices] + [
        " ".join(str(i) for i in [len(f), *f]) for f in faces
    ]
    return ("\n".join(header + rows) + "\n").encode()


def ply_binary(
    vertices: np.ndarray, faces: list[list[int]] | np.ndarray, order: str = "<", colour: bool = True
) -> bytes:
    endian = "binary_little_endian" if order == "<" else "binary_big_endian"
    header = ["ply", f"format {endian} 1.0", f"element vertex {len(vertices)}"]
    header += ["property double x", "property double y", "property double z"]
    header += ["property uchar red", "property uchar green", "property uchar blue"] if colour else []
    header += [f"element face {len(faces)}", "property list uchar uint vertex_indices", "end_header"]
    body = io.BytesIO()
    for v in vertices:
        body.write(struct.pack(f"{order}3d", *v))
        if colour:
            body.write(bytes([200, 190, 170]))
    for f in faces:
        body.write(struct.pack(f"{order}B{len(f)}I", len(f), *f))
    return ("\n".join(header) + "\n").encode() + body.getvalue()


def obj(vertices: np.ndarray, faces: np.ndarray) -> bytes:
    lines = ["# DentGate test crown", "mtllib crown.mtl", "o crown"]
    lines += [f"v {x!r} {y!r} {z!r}" for x, y, z in vertices.tolist()]
    lines += ["vn 0 0 1", "vt 0 0", "usemtl zirconia", "s off"]
    lines += ["f " + " ".join(f"{i + 1}/1/1" for i in face) for face in faces]
    return ("\n".join(lines) + "\n").encode()


CONTENT_TYPES = (
    '<?xml version="1.0" encoding="UTF-8"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
    '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
    '<Default Extension="model" ContentType="application/vnd.ms-package.3dmanufacturing-3dmodel+xml"/></Types>'
)
RELS = (
    '<?xml version="1.0" encoding="UTF-8"?>'
    '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
    '<Relationship Target="/3D/3dmodel.model" Id="rel0" '
    'Type="http://schemas.microsoft.com/3dmanufacturing/2013/01/3dmodel"/></Relationships>'
)


def model_xml(
    vertices: np.ndarray, faces: np.ndarray, unit: str = "millimeter", transform: str | None = None, prolog: str = ""
) -> str:
    vs = "".join(f'<vertex x="{x!r}" y="{y!r}" z="{z!r}"/>' for x, y, z in vertices.tolist())
    ts = "".join(f'<triangle v1="{a}" v2="{b}" v3="{c}"/>' for a, b, c in faces.tolist())
    placed = f' transform="{transform}"' if transform else ""
    return (
        f'<?xml version="1.0" encoding="UTF-8"?>{prolog}'
        f'<model unit="{unit}" xml:lang="en-US" xmlns="http://schemas.microsoft.com/3dmanufacturing/core/2015/02">'
        '<metadata name="Application">DentGate tests</metadata>'
        f'<resources><object id="1" type="model"><mesh><vertices>{vs}</vertices><triangles>{ts}</triangles></mesh>'
        f'</object></resources><build><item objectid="1"{placed}/></build></model>'
    )


def three_mf(model: str | bytes, entries: dict[str, bytes | str] | None = None) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as package:
        package.writestr("[Content_Types].xml", CONTENT_TYPES)
        package.writestr("_rels/.rels", RELS)
        package.writestr("3D/3dmodel.model", model)
        for name, content in (entries or {}).items():
            package.writestr(name, content)
    return out.getvalue()


CROWN = crown()
CROWN_VECTORS = triangles_of(*CROWN)


def refused(data: bytes | str | Path, kind: MediaKind, limits: MeshLimits | None = None) -> str:
    with pytest.raises(InvalidMesh) as caught:
        validate_mesh(data, kind, limits)
    assert caught.value.code == "invalid-mesh"
    assert caught.value.status == 422
    return caught.value.detail


def assert_crown(report: MeshReport, kind: MediaKind) -> None:
    assert report.kind is kind
    assert report.triangles == len(CROWN[1])
    assert report.watertight is True
    assert report.warnings == []
    assert report.bbox_min == pytest.approx((-5.0, -5.0, 0.0), abs=1e-5)
    assert report.bbox_max == pytest.approx((5.0, 5.0, 7.8), abs=1e-5)
    assert all(4 < extent < 11 for extent in report.extent_mm)


# --- STL -------------------------------------------------------------------------------------------------------


def test_binary_stl_written_by_numpy_stl() -> None:
    data = numpy_stl_bytes(CROWN_VECTORS, Mode.BINARY)
    kind = classify("crown.stl", data)
    assert kind.kind is MediaKind.STL_BINARY
    assert_crown(validate_mesh(data, kind), MediaKind.STL_BINARY)


def test_binary_stl_whose_header_begins_with_solid() -> None:
    data = binary_stl(CROWN_VECTORS, header=b"solid crown exported by CAD")
    assert data.startswith(b"solid")
    kind = classify("crown.stl", data)
    assert kind.kind is MediaKind.STL_BINARY
    assert_crown(validate_mesh(data, kind), MediaKind.STL_BINARY)


def test_tetrahedron_from_a_path(tmp_path: Path) -> None:
    path = tmp_path / "tetra.stl"
    path.write_bytes(binary_stl(triangles_of(*tetrahedron())))
    report = validate_mesh(path, MediaKind.STL_BINARY)
    assert (report.triangles, report.watertight, report.bbox_min, report.bbox_max) == (
        4,
        True,
        (0.0, 0.0, 0.0),
        (10.0, 10.0, 10.0),
    )
    assert validate_mesh(str(path), MediaKind.STL_BINARY) == report


def test_ascii_stl() -> None:
    data = ascii_stl(CROWN_VECTORS)
    assert classify("crown.stl", data).kind is MediaKind.STL_ASCII
    assert_crown(validate_mesh(data, MediaKind.STL_ASCII), MediaKind.STL_ASCII)


def test_ascii_stl_with_a_shift_jis_name() -> None:
    data = ascii_stl(CROWN_VECTORS, name="x").replace(b"solid x", "solid 山田様 #24".encode("shift_jis"))
    assert classify("crown.stl", data).kind is MediaKind.STL_ASCII
    assert_crown(validate_mesh(data, MediaKind.STL_ASCII), MediaKind.STL_ASCII)


def test_ascii_stl_written_by_numpy_stl_and_with_several_solids() -> None:
    data = numpy_stl_bytes(CROWN_VECTORS, Mode.ASCII)
    assert_crown(validate_mesh(data, MediaKind.STL_ASCII), MediaKind.STL_ASCII)
    half = len(CROWN_VECTORS) // 2
    two = ascii_stl(CROWN_VECTORS[:half], "part1") + ascii_stl(CROWN_VECTORS[half:], "part2").upper()
    assert_crown(validate_mesh(two.replace(b"\n", b"\r\n"), MediaKind.STL_ASCII), MediaKind.STL_ASCII)


def test_truncated_binary_stl() -> None:
    data = binary_stl(CROWN_VECTORS)
    message = refused(data[:-20], MediaKind.STL_BINARY)
    assert "truncated" in message and f"announces {len(CROWN_VECTORS)} triangles" in message
    assert "84-byte header" in refused(data[:50], MediaKind.STL_BINARY)


def test_binary_stl_count_mismatch() -> None:
    too_many = binary_stl(CROWN_VECTORS, count=len(CROWN_VECTORS) + 1)
    assert "announces" in refused(too_many, MediaKind.STL_BINARY)
    trailing = binary_stl(CROWN_VECTORS) + b"\0" * 50
    assert "announces" in refused(trailing, MediaKind.STL_BINARY)
    huge = binary_stl(CROWN_VECTORS, count=0xFFFFFFFF)
    assert "announces 4294967295 triangles" in refused(huge, MediaKind.STL_BINARY)


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf")])
def test_non_finite_vertex(bad: float) -> None:
    vectors = CROWN_VECTORS.copy()
    vectors[5, 1, 2] = bad
    assert "not a finite number" in refused(binary_stl(vectors), MediaKind.STL_BINARY)
    assert "not a finite number" in refused(ascii_stl(vectors), MediaKind.STL_ASCII)
    vertices, faces = CROWN[0].copy(), CROWN[1]
    vertices[3, 0] = bad
    assert "not a finite number" in refused(ply_binary(vertices, faces), MediaKind.PLY)
    assert "not a finite number" in refused(obj(vertices, faces), MediaKind.OBJ)


def test_one_metre_wide_mesh() -> None:
    vectors = triangles_of(*tetrahedron(1000.0))
    message = refused(binary_stl(vectors), MediaKind.STL_BINARY)
    assert "1000.0 mm along x" in message and "120 mm" in message


def test_mesh_in_metres_is_too_small() -> None:
    vectors = triangles_of(*tetrahedron(0.01))  # a 10 mm tooth exported in metres
    assert "minimum is 0.1 mm" in refused(binary_stl(vectors), MediaKind.STL_BINARY)


def test_flat_mesh_has_no_thickness() -> None:
    flat = np.array([[[0, 0, 0], [10, 0, 0], [0, 10, 0]], [[0, 0, 0], [0, 10, 0], [10, 0, 0]]], dtype=np.float64)
    assert "0 mm along z" in refused(binary_stl(flat), MediaKind.STL_BINARY)


def test_zero_triangles() -> None:
    empty = binary_stl(np.zeros((0, 3, 3)))
    assert len(empty) == 84
    assert "no triangles" in refused(empty, MediaKind.STL_BINARY)
    assert "no triangles" in refused(b"solid empty\nendsolid empty\n", MediaKind.STL_ASCII)


def test_empty_file() -> None:
    for kind in (MediaKind.STL_BINARY, MediaKind.STL_ASCII, MediaKind.PLY, MediaKind.OBJ, MediaKind.THREE_MF):
        assert refused(b"", kind) == "the file is empty"


def test_too_many_triangles() -> None:
    limits = MeshLimits(max_triangles=10)
    data = binary_stl(CROWN_VECTORS)
    assert f"has {len(CROWN_VECTORS)} triangles; the limit is 10" in refused(data, MediaKind.STL_BINARY, limits)
    assert "limit" in refused(ascii_stl(CROWN_VECTORS), MediaKind.STL_ASCII, limits)
    assert "limit" in refused(ply_binary(*CROWN), MediaKind.PLY, limits)
    assert "limit" in refused(obj(*CROWN), MediaKind.OBJ, limits)
    assert "limit" in refused(three_mf(model_xml(*CROWN)), MediaKind.THREE_MF, limits)


def test_file_size_is_checked_before_parsing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import gateway.transfer.mesh.validate as mesh_module

    def must_not_parse(*args: object) -> None:
        raise AssertionError("parsed a file that is over the size limit")

    for reader in ("_read_binary_stl", "_read_ascii_stl", "_read_ply", "_read_obj", "_read_3mf", "_read_all"):
        monkeypatch.setattr(mesh_module, reader, must_not_parse)
    limits = MeshLimits(max_file_bytes=1000)
    path = tmp_path / "big.stl"
    with open(path, "wb") as handle:
        handle.truncate(10**9)  # sparse: 1 GB declared, nothing read
    for kind in (MediaKind.STL_BINARY, MediaKind.PLY, MediaKind.THREE_MF):
        assert refused(path, kind, limits) == "the file is 1000000000 bytes; the limit is 1000 bytes"
    assert "the limit is 1000 bytes" in refused(b"\0" * 1001, MediaKind.STL_ASCII, limits)


@pytest.mark.parametrize(
    "kind", [MediaKind.STL_BINARY, MediaKind.STL_ASCII, MediaKind.PLY, MediaKind.OBJ, MediaKind.THREE_MF]
)
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_random_bytes_are_not_a_mesh(kind: MediaKind, seed: int) -> None:
    garbage = np.random.default_rng(seed).bytes(5000)
    refused(garbage, kind)
    refused(b"solid " + garbage, kind)
    refused(b"PK\x03\x04" + garbage, kind)


def test_text_that_is_not_a_mesh() -> None:
    prose = "歯科技工指示書\nこれはメッシュではありません。\n".encode() * 10
    assert "no 'v' or 'f' lines" in refused(prose, MediaKind.OBJ)
    assert "'solid'" in refused(prose, MediaKind.STL_ASCII)
    assert "not a PLY file" in refused(prose, MediaKind.PLY)


@pytest.mark.parametrize(
    ("broken", "expected"),
    [
        (lambda d: d.replace(b"endloop", b"endlop", 1), "'endlop' where 'endloop' belongs"),
        (lambda d: d.replace(b"vertex", b"", 1), "found 'normal' where 'facet' belongs"),
        (lambda d: d.replace(b"endfacet\nendsolid", b"endsolid"), "incomplete facet"),
        (lambda d: d.rsplit(b"endsolid", 1)[0], "without 'endsolid'"),
        (lambda d: d.replace(b"vertex 0.0", b"vertex x0.0", 1), "not a number"),
        (lambda d: b"hello\n" + d, "must start with a 'solid' line"),
        (lambda d: d + b"trailing words\n", "after the last 'endsolid'"),
        (lambda d: d[: len(d) // 2], "without 'endsolid'"),
    ],
)
def test_malformed_ascii_stl(broken, expected: str) -> None:
    data = ascii_stl(CROWN_VECTORS)
    assert b"vertex 0.0" in data
    assert expected in refused(broken(data), MediaKind.STL_ASCII)


# --- open meshes and other warnings ----------------------------------------------------------------------------


def test_open_mesh_is_a_warning_not_an_error() -> None:
    vertices, faces = CROWN
    top_centre = len(vertices) - 1
    open_faces = faces[faces[:, 0] != top_centre]  # no lid
    assert len(open_faces) < len(faces)
    report = validate_mesh(binary_stl(triangles_of(vertices, open_faces)), MediaKind.STL_BINARY)
    assert report.watertight is False
    assert report.triangles == len(open_faces)
    assert report.warnings[0].startswith("the mesh is open")
    assert any("boundary edges" in warning for warning in report.warnings)
    for data, kind in ((ply_ascii(vertices, open_faces), MediaKind.PLY), (obj(vertices, open_faces), MediaKind.OBJ)):
        assert validate_mesh(data, kind).watertight is False


def test_inconsistent_orientation_is_a_warning() -> None:
    vertices, faces = tetrahedron()
    flipped = faces.copy()
    flipped[0] = flipped[0][::-1]
    report = validate_mesh(ply_ascii(vertices, flipped), MediaKind.PLY)
    assert report.watertight is False
    assert any("inconsistently oriented" in warning for warning in report.warnings)


def test_non_manifold_edge_is_a_warning() -> None:
    vertices, faces = tetrahedron()
    vertices = np.vstack([vertices, [[5, 5, -5]]])
    fin = np.array([[0, 1, 4]])  # a third triangle on the edge 0-1
    report = validate_mesh(obj(vertices, np.vstack([faces, fin])), MediaKind.OBJ)
    assert report.watertight is False
    assert any("non-manifold" in warning for warning in report.warnings)


def test_degenerate_triangles_are_reported() -> None:
    vertices, faces = tetrahedron()
    sliver = np.array([[vertices[0], vertices[0], vertices[1]]])
    report = validate_mesh(binary_stl(np.vstack([triangles_of(vertices, faces), sliver])), MediaKind.STL_BINARY)
    assert any("degenerate" in warning for warning in report.warnings)


# --- PLY -------------------------------------------------------------------------------------------------------


def test_ply_ascii() -> None:
    data = ply_ascii(*CROWN)
    assert classify("crown.ply", data).kind is MediaKind.PLY
    assert_crown(validate_mesh(data, MediaKind.PLY), MediaKind.PLY)


@pytest.mark.parametrize("order", ["<", ">"])
def test_ply_binary(order: str) -> None:
    data = ply_binary(*CROWN, order=order)
    assert_crown(validate_mesh(data, MediaKind.PLY), MediaKind.PLY)


def test_ply_with_quads_and_mixed_polygons() -> None:
    cube = np.array([[x, y, z] for z in (0, 8) for y in (0, 8) for x in (0, 8)], dtype=np.float64)
    quads = [[0, 2, 3, 1], [4, 5, 7, 6], [0, 1, 5, 4], [2, 6, 7, 3], [0, 4, 6, 2], [1, 3, 7, 5]]
    report = validate_mesh(ply_binary(cube, quads, colour=False), MediaKind.PLY)
    assert (report.triangles, report.watertight, report.bbox_max) == (12, True, (8.0, 8.0, 8.0))
    mixed = [[0, 2, 3], [0, 3, 1], *quads[1:]]
    report = validate_mesh(ply_binary(cube, mixed), MediaKind.PLY)
    assert (report.triangles, report.watertight) == (12, True)
    ascii_quads = ply_ascii(cube, np.array(quads))
    assert validate_mesh(ascii_quads, MediaKind.PLY).triangles == 12


def test_malformed_ply() -> None:
    good = ply_binary(*CROWN)
    assert "truncated" in refused(good[:-10], MediaKind.PLY)
    assert "not a PLY file" in refused(good.replace(b"end_header", b"end_heade"), MediaKind.PLY)
    assert "supported format" in refused(good.replace(b"binary_little_endian", b"binary_middle_endian"), MediaKind.PLY)
    assert "header line" in refused(good.replace(b"property double x", b"property quad x"), MediaKind.PLY)
    assert "x, y and z" in refused(good.replace(b"property double z", b"property double w"), MediaKind.PLY)
    assert "no triangles" in refused(ply_ascii(CROWN[0], np.zeros((0, 3), dtype=np.int64)), MediaKind.PLY)
    vertices, faces = CROWN
    out_of_range = faces.copy()
    out_of_range[0, 0] = len(vertices)
    assert "does not exist" in refused(ply_binary(vertices, out_of_range), MediaKind.PLY)
    ascii_data = ply_ascii(vertices, faces)
    assert "more rows" in refused(ascii_data + b"1 2 3\n", MediaKind.PLY)
    assert "not a number" in refused(ascii_data.replace(b"\n0.0 ", b"\nzero ", 1), MediaKind.PLY)
    huge = good.replace(f"element face {len(faces)}".encode(), b"element face 4000000000")
    assert "limit" in refused(huge, MediaKind.PLY)


# --- OBJ -------------------------------------------------------------------------------------------------------


def test_obj() -> None:
    data = obj(*CROWN)
    assert classify("crown.obj", data).kind is MediaKind.OBJ
    assert_crown(validate_mesh(data, MediaKind.OBJ), MediaKind.OBJ)


def test_obj_with_quads_negative_indices_and_comments() -> None:
    text = """# cube, 8 mm
v 0 0 0
v 8 0 0
v 0 8 0
v 8 8 0 # trailing comment
v 0 0 8 1.0
v 8 0 8
v 0 8 8
v 8 8 8
f -8 -6 -5 -7
f 5 6 8 7
f 1//1 2//1 6//1 5//1
f 3 7 8 4
f 1 5 7 3
f 2 4 8 6
"""
    report = validate_mesh(text.encode(), MediaKind.OBJ)
    assert (report.triangles, report.watertight, report.bbox_max) == (12, True, (8.0, 8.0, 8.0))


def test_malformed_obj() -> None:
    assert "refers to a vertex that does not exist" in refused(b"v 0 0 0\nv 1 0 0\nf 1 2 3\n", MediaKind.OBJ)
    assert "at least 3 corners" in refused(b"v 0 0 0\nv 1 0 0\nf 1 2\n", MediaKind.OBJ)
    assert "x, y and z" in refused(b"v 0 0\n", MediaKind.OBJ)
    assert "not valid" in refused(b"v 0 0 zero\n", MediaKind.OBJ)
    assert "NUL" in refused(obj(*CROWN) + b"\0", MediaKind.OBJ)
    shift_jis = "# 上顎右側 クラウン\ng 歯冠\n".encode("shift_jis") + obj(*CROWN)
    assert validate_mesh(shift_jis, MediaKind.OBJ).watertight is True
    warned = validate_mesh(obj(*CROWN) + b"frobnicate 1 2 3\n", MediaKind.OBJ)
    assert warned.warnings == ["1 OBJ lines with unknown keywords were ignored"]


# --- 3MF -------------------------------------------------------------------------------------------------------


def test_3mf() -> None:
    data = three_mf(model_xml(*CROWN))
    assert classify("crown.3mf", data).kind is MediaKind.THREE_MF
    assert_crown(validate_mesh(data, MediaKind.THREE_MF), MediaKind.THREE_MF)


def test_3mf_from_a_path(tmp_path: Path) -> None:
    path = tmp_path / "crown.3mf"
    path.write_bytes(three_mf(model_xml(*CROWN)))
    assert_crown(validate_mesh(path, MediaKind.THREE_MF), MediaKind.THREE_MF)


def test_3mf_units_and_build_transform() -> None:
    vertices, faces = tetrahedron(1.0)  # 1 cm
    report = validate_mesh(three_mf(model_xml(vertices, faces, unit="centimeter")), MediaKind.THREE_MF)
    assert report.bbox_max == pytest.approx((10.0, 10.0, 10.0))
    moved = model_xml(vertices, faces, unit="centimeter", transform="1 0 0 0 1 0 0 0 1 2 3 4")
    report = validate_mesh(three_mf(moved), MediaKind.THREE_MF)
    assert report.bbox_min == pytest.approx((20.0, 30.0, 40.0))
    assert report.bbox_max == pytest.approx((30.0, 40.0, 50.0))
    scaled = model_xml(*tetrahedron(10.0), transform="20 0 0 0 1 0 0 0 1 0 0 0")
    assert "200.0 mm along x" in refused(three_mf(scaled), MediaKind.THREE_MF)
    microns = model_xml(*tetrahedron(10.0), unit="micron")
    assert "minimum" in refused(three_mf(microns), MediaKind.THREE_MF)


def test_3mf_components() -> None:
    vertices, faces = tetrahedron()
    vs = "".join(f'<vertex x="{x}" y="{y}" z="{z}"/>' for x, y, z in vertices.tolist())
    ts = "".join(f'<triangle v1="{a}" v2="{b}" v3="{c}"/>' for a, b, c in faces.tolist())
    model = (
        '<model unit="millimeter" xmlns="http://schemas.microsoft.com/3dmanufacturing/core/2015/02"><resources>'
        f'<object id="1" type="model"><mesh><vertices>{vs}</vertices><triangles>{ts}</triangles></mesh></object>'
        '<object id="2" type="model"><components><component objectid="1"/>'
        '<component objectid="1" transform="1 0 0 0 1 0 0 0 1 20 0 0"/></components></object>'
        '</resources><build><item objectid="2" transform="1 0 0 0 1 0 0 0 1 0 0 5"/></build></model>'
    )
    report = validate_mesh(three_mf(model), MediaKind.THREE_MF)
    assert report.triangles == 8
    assert report.bbox_min == pytest.approx((0, 0, 5))
    assert report.bbox_max == pytest.approx((30, 10, 15))
    assert report.watertight is True
    looped = model.replace('<component objectid="1"/>', '<component objectid="2"/>')
    assert "refer to themselves" in refused(three_mf(looped), MediaKind.THREE_MF)
    missing = model.replace('<item objectid="2"', '<item objectid="9"')
    assert "does not exist" in refused(three_mf(missing), MediaKind.THREE_MF)


def test_3mf_refuses_a_dtd() -> None:
    prolog = '<!DOCTYPE model [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
    assert "DTD or entities" in refused(three_mf(model_xml(*CROWN, prolog=prolog)), MediaKind.THREE_MF)


def test_3mf_garbage() -> None:
    assert "not a 3MF file" in refused(b"PK\x03\x04" + b"\0" * 100, MediaKind.THREE_MF)
    no_model = io.BytesIO()
    with zipfile.ZipFile(no_model, "w") as package:
        package.writestr("readme.txt", "hello")
    assert "no model part" in refused(no_model.getvalue(), MediaKind.THREE_MF)
    assert "not well-formed" in refused(three_mf("<model><resources>"), MediaKind.THREE_MF)
    assert "no triangles" in refused(
        three_mf(model_xml(np.zeros((0, 3)), np.zeros((0, 3), dtype=int))), MediaKind.THREE_MF
    )
    bad_index = model_xml(*CROWN).replace('v1="0"', 'v1="9999"', 1)
    assert "does not exist" in refused(three_mf(bad_index), MediaKind.THREE_MF)
    bad_number = model_xml(*CROWN).replace('x="', 'x="east', 1)
    assert "valid x/y/z" in refused(three_mf(bad_number), MediaKind.THREE_MF)
    bad_encoding = model_xml(*CROWN).replace('encoding="UTF-8"', 'encoding="UTF-9"')
    assert "unknown text encoding" in refused(three_mf(bad_encoding), MediaKind.THREE_MF)
    assert "unknown unit" in refused(three_mf(model_xml(*CROWN, unit="cubit")), MediaKind.THREE_MF)


def _patch_sizes(data: bytes, name: bytes, uncompressed: int) -> bytes:
    """Rewrite the uncompressed size `name` declares in both its local and its central directory header."""
    patched = bytearray(data)
    local = patched.find(b"PK\x03\x04" + b"\0" * 0, 0)
    while local != -1:
        name_length = struct.unpack_from("<H", patched, local + 26)[0]
        if bytes(patched[local + 30 : local + 30 + name_length]) == name:
            struct.pack_into("<I", patched, local + 22, uncompressed)
        local = patched.find(b"PK\x03\x04", local + 4)
    central = patched.find(b"PK\x01\x02")
    while central != -1:
        name_length = struct.unpack_from("<H", patched, central + 28)[0]
        if bytes(patched[central + 46 : central + 46 + name_length]) == name:
            struct.pack_into("<I", patched, central + 24, uncompressed)
        central = patched.find(b"PK\x01\x02", central + 4)
    return bytes(patched)


def test_3mf_zip_bomb_declared_huge() -> None:
    data = _patch_sizes(three_mf(model_xml(*CROWN)), b"3D/3dmodel.model", 0xFFFFFFF0)
    message = refused(data, MediaKind.THREE_MF)
    assert "declares 4294967280 bytes uncompressed" in message and "zip bomb" in message


def test_3mf_zip_bomb_really_inflating() -> None:
    padding = " " * (9 * 1024 * 1024)  # 9 MiB of whitespace inside the model compresses to a few KiB
    data = three_mf(model_xml(*CROWN).replace("<resources>", f"<resources>{padding}"))
    assert len(data) < 100_000
    limits = MeshLimits(max_file_bytes=1024 * 1024)  # so at most 8 MiB may come out of the model part
    assert "zip bomb" in refused(data, MediaKind.THREE_MF, limits)


def test_3mf_entry_lying_about_its_size_is_caught() -> None:
    data = _patch_sizes(three_mf(model_xml(*CROWN)), b"3D/3dmodel.model", 100)
    message = refused(data, MediaKind.THREE_MF)
    assert "damaged" in message or "not well-formed" in message


# --- limits ----------------------------------------------------------------------------------------------------


def test_mesh_limits_defaults_and_validation() -> None:
    limits = MeshLimits()
    assert (limits.max_file_bytes, limits.max_triangles, limits.bounding_box_max_mm, limits.min_extent_mm) == (
        200 * 1024 * 1024,
        5_000_000,
        120.0,
        0.1,
    )
    with pytest.raises(ValidationError):
        limits.max_triangles = 1  # type: ignore[misc]
    for bad in ({"max_triangles": 0}, {"bounding_box_max_mm": float("nan")}, {"min_extent_mm": 200}, {"other": 1}):
        with pytest.raises(ValidationError):
            MeshLimits(**bad)  # type: ignore[arg-type]


def test_non_mesh_kinds_are_refused() -> None:
    assert "not a mesh format" in refused(b"<ConstructionInfo/>", MediaKind.EXOCAD_CONSTRUCTION_INFO)


def test_custom_bounding_box_limit() -> None:
    data = binary_stl(CROWN_VECTORS)
    assert "limit is 5 mm" in refused(data, MediaKind.STL_BINARY, MeshLimits(bounding_box_max_mm=5))
    assert validate_mesh(data, MediaKind.STL_BINARY, MeshLimits(bounding_box_max_mm=10.5)).watertight


# --- no reliance on assert -------------------------------------------------------------------------------------


def test_guards_hold_under_python_O(tmp_path: Path) -> None:
    samples = {
        "truncated.stl": binary_stl(CROWN_VECTORS)[:-20],
        "mismatch.stl": binary_stl(CROWN_VECTORS, count=len(CROWN_VECTORS) + 1),
        "nan.stl": binary_stl(
            np.where(np.arange(CROWN_VECTORS.size).reshape(CROWN_VECTORS.shape) == 7, np.nan, CROWN_VECTORS)
        ),
        "zero.stl": binary_stl(np.zeros((0, 3, 3))),
        "garbage.3mf": b"PK\x03\x04" + os.urandom(500),
        "bomb.3mf": _patch_sizes(three_mf(model_xml(*CROWN)), b"3D/3dmodel.model", 0xFFFFFFF0),
        "broken_ascii.stl": ascii_stl(CROWN_VECTORS).replace(b"endloop", b"endlop", 1),
        "good.stl": binary_stl(CROWN_VECTORS),
    }
    kinds = {"stl": "stl-binary", "3mf": "3mf"}
    for name, data in samples.items():
        (tmp_path / name).write_bytes(data)
    script = textwrap.dedent(
        f"""
        import sys
        from pathlib import Path
        from gateway.transfer.mesh import InvalidMesh, validate_mesh
        from gateway.transfer.formats import MediaKind

        try:
            assert False
        except AssertionError:
            sys.exit("assert statements are still active: this must run under python -O")
        root = Path({str(tmp_path)!r})
        for name, kind in {[(n, "stl-ascii" if "ascii" in n else kinds[n.rsplit(".", 1)[1]]) for n in samples]!r}:
            try:
                report = validate_mesh(root / name, MediaKind(kind))
            except InvalidMesh as error:
                print(name, "REFUSED", error.detail)
            else:
                print(name, "ACCEPTED", report.triangles)
        """
    )
    result = subprocess.run(
        [sys.executable, "-O", "-c", script], capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 0, result.stderr
    lines = dict(line.split(" ", 1) for line in result.stdout.splitlines())
    assert lines.pop("good.stl") == f"ACCEPTED {len(CROWN_VECTORS)}"
    assert set(lines) == set(samples) - {"good.stl"}
    assert all(outcome.startswith("REFUSED") for outcome in lines.values()), lines
