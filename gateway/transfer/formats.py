"""What each file of a design bundle is (G11: electronic transfer of designs), and a safe name to keep it under.

Classification needs both a known extension and content that agrees with it; anything else is refused.
"""

from __future__ import annotations

import re
import struct
import unicodedata
from dataclasses import dataclass
from enum import StrEnum

from gateway.errors import DentGateError

#: How many leading bytes `classify` wants to see (it works with fewer, e.g. for tiny files).
SNIFF_BYTES = 4096
#: The longest name `sanitise_filename` returns, in UTF-8 bytes.
MAX_FILENAME_BYTES = 120

STL_HEADER_BYTES = 80
STL_RECORD_BYTES = 50


class UnsupportedFile(DentGateError):
    code = "unsupported-file"
    status = 415
    title = "Unsupported file type"


class MediaKind(StrEnum):
    STL_BINARY = "stl-binary"
    STL_ASCII = "stl-ascii"
    PLY = "ply"
    OBJ = "obj"
    THREE_MF = "3mf"
    EXOCAD_CONSTRUCTION_INFO = "exocad-construction-info"
    THREESHAPE_ORDER = "3shape-order"
    OPAQUE = "opaque"  # 3Shape .dcm / .3ml: passed through to the lab untouched

    @property
    def is_mesh(self) -> bool:
        return self in _MESH_KINDS

    @property
    def is_companion(self) -> bool:
        return self in (MediaKind.EXOCAD_CONSTRUCTION_INFO, MediaKind.THREESHAPE_ORDER)


_MESH_KINDS = frozenset({MediaKind.STL_BINARY, MediaKind.STL_ASCII, MediaKind.PLY, MediaKind.OBJ, MediaKind.THREE_MF})

MEDIA_TYPES: dict[MediaKind, str] = {
    MediaKind.STL_BINARY: "model/stl",
    MediaKind.STL_ASCII: "model/stl",
    MediaKind.PLY: "application/ply",
    MediaKind.OBJ: "model/obj",
    MediaKind.THREE_MF: "model/3mf",
    MediaKind.EXOCAD_CONSTRUCTION_INFO: "application/xml",
    MediaKind.THREESHAPE_ORDER: "application/xml",
    MediaKind.OPAQUE: "application/octet-stream",
}


@dataclass(frozen=True)
class FileKind:
    kind: MediaKind
    media_type: str

    @classmethod
    def of(cls, kind: MediaKind) -> FileKind:
        return cls(kind, MEDIA_TYPES[kind])


def binary_stl_size(triangle_count: int) -> int:
    """The exact length of a binary STL with `triangle_count` triangles: 80-byte header, count, 50 bytes each."""
    return STL_HEADER_BYTES + 4 + STL_RECORD_BYTES * triangle_count


def _extension(filename: str) -> str:
    name = re.split(r"[/\\]", filename)[-1].rstrip(" .")
    _, dot, ext = name.rpartition(".")
    return ext.lower() if dot else ""


_CONTROL_BYTES = re.compile(rb"[\x00-\x08\x0e-\x1f\x7f]")


def _is_text(head: bytes) -> bool:
    """No control bytes but whitespace: text in any ASCII-compatible encoding (UTF-8, Shift_JIS, Latin-1)."""
    return _CONTROL_BYTES.search(head) is None


def _xml_root_name(head: bytes) -> str | None:
    """The local name of the first element in an XML head, skipping the declaration, comments and a DOCTYPE."""
    utf16 = head.startswith((b"\xff\xfe", b"\xfe\xff"))
    text = head.decode("utf-16" if utf16 else "utf-8", errors="ignore")
    text = text.lstrip("\ufeff \t\r\n")
    if not text.startswith("<"):
        return None
    text = re.sub(r"<\?.*?\?>|<!--.*?-->|<!DOCTYPE[^>\[]*(\[.*?\])?\s*>", "", text, flags=re.S)
    match = re.search(r"<\s*([A-Za-z_][\w.\-]*:)?([A-Za-z_][\w.\-]*)", text)
    return match.group(2) if match else None


def _looks_like_xml(head: bytes) -> bool:
    stripped = head.lstrip(b"\xef\xbb\xbf \t\r\n")
    return stripped.startswith(b"<") or head.startswith((b"\xff\xfe<\x00", b"\xfe\xff\x00<"))


def _other_format(head: bytes) -> str | None:
    """The name of a well-known container format `head` starts with, if any."""
    if head.startswith(b"PK\x03\x04"):
        return "a ZIP archive"
    if re.match(rb"ply\r?\n", head):
        return "PLY"
    if _looks_like_xml(head) and _is_text(head):
        return "XML"
    return None


def _classify_stl(head: bytes, size: int) -> MediaKind:
    # Binary STL is decided by its length alone: many exporters begin the 80-byte header with "solid" too.
    if len(head) >= STL_HEADER_BYTES + 4:
        (count,) = struct.unpack_from("<I", head, STL_HEADER_BYTES)
        if size == binary_stl_size(count):
            return MediaKind.STL_BINARY
    other = _other_format(head)
    if other is not None:
        raise UnsupportedFile(f"the file is named .stl but its content is {other}")
    if head.lstrip().lower().startswith(b"solid") and _is_text(head):
        return MediaKind.STL_ASCII
    # Neither valid ASCII nor of the right binary length: mesh validation reports exactly what is wrong.
    return MediaKind.STL_BINARY


def classify(filename: str, head: bytes, *, size: int | None = None) -> FileKind:
    """Classify a bundle file by its extension and its first bytes (`size`: total length, default `len(head)`).

    Raises UnsupportedFile for an unknown extension or content that contradicts the extension.
    """
    size = len(head) if size is None else size
    ext = _extension(filename)
    if not head:
        raise UnsupportedFile(f"{filename!r} is empty")
    if ext == "stl":
        return FileKind.of(_classify_stl(head, size))
    if ext == "ply":
        if not re.match(rb"ply\r?\n", head):
            raise UnsupportedFile("the file is named .ply but does not start with the PLY magic line")
        return FileKind.of(MediaKind.PLY)
    if ext == "obj":
        if not _is_text(head) or _other_format(head) is not None:
            raise UnsupportedFile("the file is named .obj but is not a text OBJ file")
        return FileKind.of(MediaKind.OBJ)
    if ext == "3mf":
        if not head.startswith(b"PK\x03\x04"):
            raise UnsupportedFile("the file is named .3mf but is not a ZIP (OPC) package")
        return FileKind.of(MediaKind.THREE_MF)
    if ext in ("constructioninfo", "xml"):
        if not _looks_like_xml(head):
            raise UnsupportedFile(f"the file is named .{ext} but is not XML")
        root = _xml_root_name(head)
        if root == "ConstructionInfo":
            return FileKind.of(MediaKind.EXOCAD_CONSTRUCTION_INFO)
        if root == "DentalContainer":
            return FileKind.of(MediaKind.THREESHAPE_ORDER)
        raise UnsupportedFile(
            f"XML with root element {root!r} is neither an exocad ConstructionInfo nor a 3Shape DentalContainer"
        )
    if ext in ("dcm", "3ml"):
        return FileKind.of(MediaKind.OPAQUE)
    shown = f".{ext}" if ext else "no extension"
    raise UnsupportedFile(f"{filename!r} has {shown}; accepted: .stl .ply .obj .3mf .constructionInfo .xml .dcm .3ml")


# ---------------------------------------------------------------------------------------------------------------
# Filenames
# ---------------------------------------------------------------------------------------------------------------

_WINDOWS_RESERVED = frozenset(
    {"CON", "PRN", "AUX", "NUL", "CONIN$", "CONOUT$"}
    | {f"{device}{n}" for device in ("COM", "LPT") for n in [*"123456789", "¹", "²", "³"]}
)
_WINDOWS_FORBIDDEN = re.compile(r'[<>:"|?*]')
_EXTENSION = re.compile(r"[A-Za-z0-9]{1,20}")
_DEFAULT_STEM = "design"


def _drop_unsafe_characters(text: str) -> str:
    # Cc: C0/C1 controls including NUL and newlines; Cf: bidi overrides and other invisible format characters
    # (U+202E can make "x\u202elts.exe" display as "xexe.stl"); Zl/Zp: line and paragraph separators.
    return "".join(ch for ch in text if unicodedata.category(ch) not in ("Cc", "Cf", "Zl", "Zp", "Cs", "Co", "Cn"))


def _utf8_prefix(text: str, max_bytes: int) -> str:
    encoded = text.encode("utf-8")[:max_bytes]
    return encoded.decode("utf-8", errors="ignore")


def sanitise_filename(name: str) -> str:
    """A safe base name for a received file: no directories, controls, reserved or hidden names, ≤ 120 UTF-8 bytes.

    NFC-normalised; Japanese and other letters are kept; an empty result becomes "design" plus the extension.
    """
    # Drop first, then compose: removing an invisible character can bring a letter and its accent together.
    text = unicodedata.normalize("NFC", _drop_unsafe_characters(name))
    text = re.split(r"[/\\]", text)[-1]  # both separators, whatever the OS the sender used
    text = _WINDOWS_FORBIDDEN.sub("_", text)  # also the drive colon of "C:name" and NTFS stream names
    text = re.sub(r"\.{2,}", ".", text)  # no ".." anywhere
    text = text.rstrip(" .")  # Windows drops trailing dots and spaces
    stem, dot, ext = text.rpartition(".")
    if not dot or not _EXTENSION.fullmatch(ext):
        stem, ext = text, ""
    stem = stem.strip(" .")  # a leading dot hides a file
    device = stem.split(".")[0].rstrip(" ").upper()
    if device in _WINDOWS_RESERVED:
        stem = f"_{stem}"
    suffix = f".{ext}" if ext else ""
    stem = _utf8_prefix(stem, MAX_FILENAME_BYTES - len(suffix.encode("utf-8"))).rstrip(" .")
    return f"{stem or _DEFAULT_STEM}{suffix}"
