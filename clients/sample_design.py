"""A generated crown-shaped design, for the demo and for trying a lab's set-up without a CAD export."""

from __future__ import annotations

import math
import struct


def crown_triangles(segments: int = 48) -> list[tuple[tuple[float, float, float], ...]]:
    """A closed, consistently oriented crown-like solid about 10 mm across and 8 mm high (four cusps)."""
    angles = [2 * math.pi * i / segments for i in range(segments)]
    base = [(5.0 * math.cos(a), 5.0 * math.sin(a), 0.0) for a in angles]
    top = [(4.4 * math.cos(a), 4.4 * math.sin(a), 7.0 + 0.8 * math.cos(4 * a)) for a in angles]
    bottom_centre, fissure = (0.0, 0.0, 0.0), (0.0, 0.0, 6.0)
    triangles = []
    for i in range(segments):
        j = (i + 1) % segments
        triangles += [
            (bottom_centre, base[j], base[i]),
            (base[i], base[j], top[j]),
            (base[i], top[j], top[i]),
            (fissure, top[i], top[j]),
        ]
    return triangles


def crown_stl(segments: int = 48, name: str = "DentGate sample crown") -> bytes:
    """The crown as a binary STL: 80-byte header, triangle count, then 50 bytes per triangle."""
    triangles = crown_triangles(segments)
    out = bytearray(name.encode("ascii")[:80].ljust(80, b"\0"))
    out += struct.pack("<I", len(triangles))
    for triangle in triangles:
        out += struct.pack("<3f", 0.0, 0.0, 0.0)
        out += struct.pack("<9f", *(c for vertex in triangle for c in vertex))
        out += b"\0\0"
    return bytes(out)
