"""What a mesh may be (`MeshLimits`), what a valid one is (`MeshReport`), the refusal (`InvalidMesh`),
and the `_Part` every reader produces."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator

from gateway.errors import DentGateError
from gateway.transfer.formats import MediaKind

MiB = 1024 * 1024


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
