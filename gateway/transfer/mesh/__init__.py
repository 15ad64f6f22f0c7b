"""Mesh checks before a design goes to a milling machine (G11: electronic transfer of designs).

Every reader raises `InvalidMesh` from explicit checks, never `assert` (gone under `python -O`); sizes come first.
"""

from __future__ import annotations

from gateway.transfer.mesh.limits import InvalidMesh, MeshLimits, MeshReport, MiB
from gateway.transfer.mesh.ply import PLY_MAX_HEADER_BYTES
from gateway.transfer.mesh.threemf import (
    THREE_MF_INFLATE_FACTOR,
    THREE_MF_MAX_DEPTH,
    THREE_MF_MAX_ENTRIES,
    THREE_MF_MAX_PART_BYTES,
)
from gateway.transfer.mesh.validate import validate_mesh

__all__ = [
    "PLY_MAX_HEADER_BYTES",
    "THREE_MF_INFLATE_FACTOR",
    "THREE_MF_MAX_DEPTH",
    "THREE_MF_MAX_ENTRIES",
    "THREE_MF_MAX_PART_BYTES",
    "InvalidMesh",
    "MeshLimits",
    "MeshReport",
    "MiB",
    "validate_mesh",
]
