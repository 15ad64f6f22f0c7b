"""3MF reader: a ZIP package with an XML model, parsed as a stream behind zip-bomb and XML defences."""

from __future__ import annotations

import io
import os
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

from gateway.transfer.mesh.limits import InvalidMesh, MeshLimits, MiB, _Part

#: A 3MF model part may inflate to at most this many times `max_file_bytes` (it is parsed as a stream).
THREE_MF_INFLATE_FACTOR = 8
#: At most this many entries in a 3MF package, and this many bytes for its small XML parts (relationships).
THREE_MF_MAX_ENTRIES = 1000
THREE_MF_MAX_PART_BYTES = 1 * MiB
#: Nesting depth of 3MF components (objects made of other objects).
THREE_MF_MAX_DEPTH = 16

_3MF_MODEL_RELATIONSHIP = "http://schemas.microsoft.com/3dmanufacturing/2013/01/3dmodel"
_3MF_UNITS_MM = {"micron": 0.001, "millimeter": 1.0, "centimeter": 10.0, "inch": 25.4, "foot": 304.8, "meter": 1000.0}


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
