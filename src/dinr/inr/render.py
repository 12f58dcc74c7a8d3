"""Sampling the trained field on a voxel grid at chosen times.

A :class:`VoxelGrid` says where: the heights ``z``, rows ``y`` and columns ``x`` of its
voxel centres, in pixels of the scan's grid (:mod:`dinr.geometry.grid`: x right, y up,
z up along the axis, origin on the axis at mid-height). The detector's grid is
:meth:`VoxelGrid.full`; a rendering request (:mod:`dinr.rendering`) may take a box
of it, finer voxels, or one plane. The field is continuous, so any such grid samples it
directly; a voxel of the full grid is rendered from the same points whatever box holds it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from dinr.geometry import Geometry
from dinr.inr.field import AttenuationField


@dataclass(frozen=True)
class VoxelGrid:
    """Voxel centres of a rendering, in pixels of the scan's grid: heights ``z`` (nz,)
    top first, rows ``y`` (ny,) top first, columns ``x`` (nx,) left first; ``voxel``
    the side of a voxel in (y, x), pixels (its supersampling spreads over it)."""

    z: np.ndarray
    y: np.ndarray
    x: np.ndarray
    voxel: float = 1.0

    @property
    def shape(self) -> tuple[int, int, int]:
        """(nz, ny, nx)."""
        return len(self.z), len(self.y), len(self.x)

    @classmethod
    def full(cls, geometry: Geometry) -> VoxelGrid:
        """The scan's own grid: ``rows`` slices of ``n x n`` pixels."""
        return cls.box(geometry, (0, geometry.rows), (0, geometry.n), (0, geometry.n), 1)

    @classmethod
    def box(cls, geometry: Geometry, z: tuple[int, int], y: tuple[int, int], x: tuple[int, int],
            upsample: int) -> VoxelGrid:
        """Voxels ``[start, stop)`` of the scan's grid along each axis (slice, row,
        column indices), each split into ``upsample`` voxels per side."""
        def centres(span: tuple[int, int]) -> np.ndarray:
            return (np.arange(span[0] * upsample, span[1] * upsample) + 0.5) / upsample

        half = geometry.n / 2.0
        return cls(z=geometry.rows / 2.0 - centres(z), y=half - centres(y), x=centres(x) - half,
                   voxel=1.0 / upsample)


class SliceRenderer:
    """Samples a field on the (y, x) plane of one slice of a :class:`VoxelGrid` (by
    default the scan's own grid) at a time, or on a band of its rows.

    Each voxel value is the mean of ``supersample`` x ``supersample`` point values spread
    over the voxel (a box filter: the voxel's mean attenuation), 1 takes the voxel
    centre. Voxels outside the reconstruction cylinder are 0. Points are evaluated
    ``chunk`` at a time, so memory stays bounded by the band rendered.
    """

    def __init__(self, field: AttenuationField, geometry: Geometry, chunk: int = 65536,
                 supersample: int = 1, device: torch.device | str = "cpu", grid: VoxelGrid | None = None) -> None:
        self.grid = grid if grid is not None else VoxelGrid.full(geometry)
        self.radius, self.half_width = geometry.radius, geometry.half_width
        offsets = ((np.arange(supersample) + 0.5) / supersample - 0.5) * self.grid.voxel
        self.dy, self.dx = (o.ravel() for o in np.meshgrid(offsets, offsets, indexing="ij"))
        self.z = self.grid.z / geometry.half_width
        self.field, self.chunk, self.supersample = field.eval(), chunk, supersample
        self.device = torch.device(device)

    @torch.no_grad()
    def __call__(self, time: float, row: int, band: slice = slice(None)) -> np.ndarray:
        """(rows of ``band``, nx) attenuation per pixel of slice ``row`` of the grid at
        normalised ``time``."""
        x, y = np.meshgrid(self.grid.x, self.grid.y[band], indexing="xy")
        mask = x**2 + y**2 < self.radius**2
        xy = np.stack([(y[mask][:, None] + self.dy).ravel(), (x[mask][:, None] + self.dx).ravel()], axis=-1)
        points = torch.as_tensor(xy / self.half_width, dtype=torch.float32, device=self.device)
        tz = torch.tensor([time, self.z[row]], dtype=torch.float32, device=self.device)
        values = torch.empty(len(points), dtype=torch.float32, device=self.device)
        # Each chunk's values go straight into one buffer: a list of small pieces, kept
        # while the MLP's large activations come and go, fragmented the heap (a 2048-pixel
        # slice peaked at twice the process's steady size).
        for start in range(0, len(points), self.chunk):
            part = points[start:start + self.chunk]
            values[start:start + len(part)] = self.field(torch.cat([tz.expand(len(part), 2), part], dim=1))
        out = np.zeros(mask.shape, dtype=np.float32)
        out[mask] = values.reshape(-1, self.supersample**2).mean(dim=1).cpu().numpy()
        return out

    def band_rows(self, chunk_mb: float) -> int:
        """Rows of a band whose points, values and image take at most about
        ``chunk_mb`` MiB (at least one row)."""
        bytes_per_row = len(self.grid.x) * (12 * self.supersample**2 + 4)
        return max(1, min(len(self.grid.y), int(chunk_mb * 2**20 // bytes_per_row)))
