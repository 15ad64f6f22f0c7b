"""Bundle file classification and safe names (G11)."""

from __future__ import annotations

import random
import struct
import unicodedata
from pathlib import Path

import pytest

from gateway.transfer.formats import (
    MAX_FILENAME_BYTES,
    FileKind,
    MediaKind,
    UnsupportedFile,
    classify,
    sanitise_filename,
)

SAMPLES = Path(__file__).parent / "samples"


def binary_stl(triangles: int, header: bytes = b"binary STL") -> bytes:
    record = struct.pack("<12fH", *([0.0] * 3), 0, 0, 0, 1, 0, 0, 0, 1, 0, 0)
    return header.ljust(80, b" ") + struct.pack("<I", triangles) + record * triangles


ASCII_STL = b"""solid crown
  facet normal 0 0 1
    outer loop
      vertex 0 0 0
      vertex 1 0 0
      vertex 0 1 0
    endloop
  endfacet
endsolid crown
"""


# --- classify -------------------------------------------------------------------------------------------------


def test_binary_stl() -> None:
    assert classify("crown.stl", binary_stl(2)) == FileKind(MediaKind.STL_BINARY, "model/stl")


def test_binary_stl_whose_header_begins_with_solid_is_binary() -> None:
    data = binary_stl(3, header=b"solid exported by SomeCAD 2.0")
    assert classify("crown.STL", data).kind is MediaKind.STL_BINARY
    # Only the head is given, with the total size: the length rule still decides.
    assert classify("crown.stl", data[:100], size=len(data)).kind is MediaKind.STL_BINARY


def test_binary_stl_header_solid_with_text_like_payload_is_still_binary_by_length() -> None:
    # Records made only of printable bytes: a sniff by content would call this ASCII; the length rule does not.
    header = b"solid " + b"x" * 74
    record = b"A" * 50
    data = header + struct.pack("<I", 2) + record * 2
    assert struct.unpack_from("<I", data, 80) == (2,)
    assert classify("x.stl", data).kind is MediaKind.STL_BINARY


def test_ascii_stl() -> None:
    assert classify("crown.stl", ASCII_STL) == FileKind(MediaKind.STL_ASCII, "model/stl")
    assert classify("crown.stl", b"  SOLID x\n facet").kind is MediaKind.STL_ASCII


def test_ascii_stl_head_of_a_large_file() -> None:
    big = ASCII_STL * 1000
    assert classify("crown.stl", big[:4096], size=len(big)).kind is MediaKind.STL_ASCII


def test_stl_that_is_neither_goes_to_mesh_validation_as_binary() -> None:
    # Wrong length and not text: the mesh check reports exactly what is wrong (count mismatch).
    assert classify("crown.stl", binary_stl(3)[:-7]).kind is MediaKind.STL_BINARY


@pytest.mark.parametrize(
    ("name", "head"),
    [
        ("a.stl", b"PK\x03\x04rest of a zip"),
        ("a.stl", b"ply\nformat ascii 1.0\n"),
        ("a.stl", b'<?xml version="1.0"?><DentalContainer/>'),
        ("a.ply", b"solid x\n"),
        ("a.ply", b"plyformat"),
        ("a.obj", b"\x00\x01\x02\x03binary"),
        ("a.obj", b"PK\x03\x04"),
        ("a.3mf", b"solid x"),
        ("a.constructionInfo", b"not xml"),
        ("a.xml", b"<html><body/></html>"),
        ("a.xml", b"\x89PNG\r\n"),
        ("a.exe", b"MZ\x90\x00"),
        ("a.stl.exe", binary_stl(1)),
        ("README", b"hello"),
        ("a.zip", b"PK\x03\x04"),
        ("a.stl", b""),
    ],
)
def test_unknown_or_contradicting_files_are_refused(name: str, head: bytes) -> None:
    with pytest.raises(UnsupportedFile) as caught:
        classify(name, head)
    assert caught.value.code == "unsupported-file"


def test_ply_obj_3mf() -> None:
    assert classify("scan.ply", b"ply\r\nformat binary_little_endian 1.0\r\n") == FileKind(
        MediaKind.PLY, "application/ply"
    )
    assert classify("crown.obj", b"# exported\nv 0 0 0\n") == FileKind(MediaKind.OBJ, "model/obj")
    assert classify("crown.obj", "# 歯冠\nv 0 0 0\n".encode()[:9]).kind is MediaKind.OBJ  # a character cut at the end
    assert classify("crown.3mf", b"PK\x03\x04\x14\x00") == FileKind(MediaKind.THREE_MF, "model/3mf")


def test_companions_by_root_element() -> None:
    exocad = (SAMPLES / "bridge_24-26.constructionInfo").read_bytes()
    order = (SAMPLES / "2024-0815-0042.xml").read_bytes()
    assert classify("bridge.constructionInfo", exocad) == FileKind(
        MediaKind.EXOCAD_CONSTRUCTION_INFO, "application/xml"
    )
    assert classify("2024-0815-0042.xml", order) == FileKind(MediaKind.THREESHAPE_ORDER, "application/xml")
    assert classify("ORDER.XML", b"\xef\xbb\xbf<!-- c --><ns:DentalContainer xmlns:ns='x'/>").kind is (
        MediaKind.THREESHAPE_ORDER
    )
    utf16 = '<?xml version="1.0" encoding="UTF-16"?><DentalContainer version="2022-1"/>'.encode("utf-16")
    assert classify("order.xml", utf16).kind is MediaKind.THREESHAPE_ORDER


def test_opaque_pass_through() -> None:
    for name in ("scan.dcm", "case.3ml", "SCAN.DCM"):
        assert classify(name, b"\x00\x01anything") == FileKind(MediaKind.OPAQUE, "application/octet-stream")


def test_media_kind_groups() -> None:
    meshes = {kind for kind in MediaKind if kind.is_mesh}
    assert meshes == {MediaKind.STL_BINARY, MediaKind.STL_ASCII, MediaKind.PLY, MediaKind.OBJ, MediaKind.THREE_MF}
    assert {kind for kind in MediaKind if kind.is_companion} == {
        MediaKind.EXOCAD_CONSTRUCTION_INFO,
        MediaKind.THREESHAPE_ORDER,
    }


# --- sanitise_filename ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "safe"),
    [
        ("../../etc/passwd", "passwd"),
        ("..\\..\\win.ini", "win.ini"),
        ("/abs/path.stl", "path.stl"),
        ("C:\\x\\y.stl", "y.stl"),
        ("C:y.stl", "C_y.stl"),
        ("CON.stl", "_CON.stl"),
        ("con", "_con"),
        ("nul.tar.gz", "_nul.tar.gz"),
        ("LPT1.obj", "_LPT1.obj"),
        ("COM9 .stl", "_COM9.stl"),
        ("console.stl", "console.stl"),
        ("crown\x00.stl", "crown.stl"),
        ("evil.stl\x00.exe", "evil.stl.exe"),
        ("a\nb\tc\x7f\x85.stl", "abc.stl"),
        ("x\u202elts.exe", "xlts.exe"),
        (".htaccess", "design.htaccess"),
        (".stl", "design.stl"),
        ("...", "design"),
        ("..", "design"),
        ("", "design"),
        ("   ", "design"),
        ("/", "design"),
        ("dir/", "design"),
        ("crown.stl. . .", "crown.stl"),
        ("crown  ", "crown"),
        ("a..b.stl", "a.b.stl"),
        ("...hidden.stl", "hidden.stl"),
        ('a<b>c:d"e|f?g*.stl', "a_b_c_d_e_f_g_.stl"),
        ("file.stl:Zone.Identifier", "file.stl_Zone.Identifier"),
        ("山田様_上顎_#24-26.stl", "山田様_上顎_#24-26.stl"),
        ("クラウン.constructionInfo", "クラウン.constructionInfo"),
    ],
)
def test_sanitise(raw: str, safe: str) -> None:
    assert sanitise_filename(raw) == safe


def test_sanitise_nfc_normalises_japanese() -> None:
    decomposed = "カ\u3099ス.stl"  # ガ as カ + combining dakuten (as macOS file names arrive)
    assert sanitise_filename(decomposed) == "ガス.stl"


def test_sanitise_caps_long_japanese_names_at_120_bytes_keeping_the_extension() -> None:
    name = "上顎右側第一大臼歯クラウン" * 20 + ".constructionInfo"
    safe = sanitise_filename(name)
    assert len(safe.encode("utf-8")) <= MAX_FILENAME_BYTES
    assert safe.endswith(".constructionInfo")
    assert safe.startswith("上顎右側第一大臼歯")
    safe.encode("utf-8").decode("utf-8")  # no character was cut in half
    assert len(safe.encode("utf-8")) > MAX_FILENAME_BYTES - 3  # filled up to the last whole character


def test_sanitise_caps_long_names_without_extension() -> None:
    safe = sanitise_filename("あ" * 100)
    assert safe == "あ" * 40
    assert len(safe.encode()) == 120


@pytest.mark.parametrize(
    "raw",
    ["../../etc/passwd", "..\\..\\win.ini", "a/../../b", "\x00/..\x00/x", "\\\\server\\share\\x.stl", "~/.ssh/id"],
)
def test_sanitised_names_are_plain_base_names(raw: str) -> None:
    safe = sanitise_filename(raw)
    assert "/" not in safe and "\\" not in safe and ".." not in safe and "\x00" not in safe
    assert not safe.startswith(".") and safe == sanitise_filename(safe)


def test_sanitise_properties_on_random_names() -> None:
    rnd = random.Random(20240815)
    pieces = [
        *'abcXYZ./\\ .:*?<>|"\x00\x01\n\t\u202e\u200b\u3000あいう漢字ｶﾞ\u0301\ufeff~-_#',
        "CON",
        "nul",
        "COM1",
        "..",
        "LPT9",
    ]
    for _ in range(5000):
        raw = "".join(rnd.choice(pieces) for _ in range(rnd.randint(0, 90)))
        safe = sanitise_filename(raw)
        assert safe and len(safe.encode("utf-8")) <= MAX_FILENAME_BYTES, raw
        assert not any(ch in safe for ch in '/\\\x00\x01\n\t\u202e\u200b\ufeff:*?<>|"'), raw
        assert ".." not in safe and not safe.startswith((".", " ")) and not safe.endswith((".", " ")), raw
        assert safe.split(".")[0].rstrip(" ").upper() not in {"CON", "NUL", "COM1", "LPT9"}, raw
        assert unicodedata.is_normalized("NFC", safe) and sanitise_filename(safe) == safe, raw
