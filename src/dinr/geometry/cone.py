"""Circular cone-beam geometry (a lab CT: point source, flat panel, one circular orbit).

Everything is measured in *voxels*: the reconstruction voxel is one detector pixel
demagnified to the rotation axis, ``voxel_mm = pixel_size_mm * source_axis_mm /
source_detector_mm``, so on the *virtual detector* — the detector scaled down to the
plane through the axis — a pixel is one voxel wide, as in the parallel geometry. The
only new length is the source-to-axis distance ``source_axis = source_axis_mm /
voxel_mm`` (voxels); as it grows, the geometry tends to the parallel one.

Convention (the parallel one of :mod:`dinr.geometry.parallel`, extended):

- the view at angle ``theta`` (radians, counter-clockwise as seen from the top, z up)
  has its central ray along ``e_s = (-sin theta, cos theta, 0)``; the source sits at
  ``-source_axis * e_s``, at height z = 0;
- on the virtual detector, column ``c`` (pixel centre) is at ``u = c + 0.5 - center``
  along ``e_u = (cos theta, sin theta, 0)`` (``center``: the column of the rotation axis,
  TomoPy's units), and row ``r`` at height ``v = row_center - (r + 0.5)`` (row 0 images
  the top; ``row_center`` = ``rows / 2`` plus the detector's vertical offset in pixels, the
  row hit by the ray through the source perpendicular to the axis);
- the ray of pixel (r, c) runs from the source through ``u * e_u + v * e_z``;
- volume slice ``r`` is at height ``z = rows / 2 - (r + 0.5)``, and a slice of ``n x n``
  voxels is laid out as in the parallel geometry.

The reconstruction cylinder is the region every view sees. Its radius ``R`` is that of
the circle the outermost used rays touch: the rays through ``|u| = n / 2`` pass the axis at
``R = source_axis * sin(atan(n / 2 / source_axis))``. Its half-height is
``v_max * (source_axis - R) / source_axis``, with ``v_max`` the smaller distance from
``row_center`` to the detector's top or bottom edge: on the near side of the orbit, at
distance ``source_axis - R`` from the source, the outermost rows' rays are that high.
The field itself is learned over a taller box, as high as any ray climbs inside the
cylinder (``field_half_height``), because those rays also cross voxels that only some
views see; its coordinates are divided by ``n / 2`` (:mod:`dinr.geometry.grid`), so the
cylinder lies inside the unit disk.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from dinr.geometry.grid import SliceGrid


@dataclass(frozen=True)
class ConeGeometry(SliceGrid):
    """A flat detector of ``rows x cols`` pixels seen from a source ``source_axis``
    voxels from the rotation axis (at column ``center``; the central ray at row
    ``row_center``), and ``rows`` slices of ``n x n`` voxels."""

    source_axis: float
    row_center: float

    beam = "cone"

    def __post_init__(self) -> None:
        if not self.source_axis > self.n / 2.0:
            raise ValueError(f"the source ({self.source_axis:g} voxels from the axis) must lie outside the "
                             f"reconstruction grid ({self.n} voxels across)")

    @property
    def radius(self) -> float:
        """Radius of the reconstruction cylinder (voxels)."""
        return self.source_axis * math.sin(math.atan(self.n / 2.0 / self.source_axis))

    @property
    def half_height(self) -> float:
        """Half-height of the region every view sees (voxels)."""
        v_max = min(self.row_center, self.rows - self.row_center)
        return v_max * (self.source_axis - self.radius) / self.source_axis

    @property
    def field_half_height(self) -> float:
        """Half-height of the box the field is learned in (voxels): the highest point a
        ray reaches inside the cylinder (at the far side of the orbit), rounded up to a
        whole number of voxels beyond the slices, so that the grid's nodes stay on
        the slice centres."""
        v_max = max(self.row_center, self.rows - self.row_center)
        reach = v_max * (self.source_axis + self.radius) / self.source_axis
        return self.rows / 2.0 + math.ceil(max(reach - self.rows / 2.0, 0.0) - 1e-9)

    @property
    def cone_half_angle_deg(self) -> float:
        """Half the fan angle in the plane of the orbit (degrees)."""
        return math.degrees(math.atan(self.n / 2.0 / self.source_axis))

    def detector_v(self) -> np.ndarray:
        """(rows,) virtual-detector height of each row centre (voxels)."""
        return self.row_center - (np.arange(self.rows) + 0.5)

    def column_mask(self) -> np.ndarray:
        """(cols,) boolean: columns whose rays cross the reconstruction cylinder."""
        return np.abs(self.detector_u()) < self.n / 2.0

    def region_mask(self) -> np.ndarray:
        """(rows, n, n) boolean: voxel centres in the region every view sees."""
        inside = np.abs(self.slice_z()) <= self.half_height
        return inside[:, None, None] & self.cylinder_mask()[None]

    def chord_points(self, theta: torch.Tensor, u: torch.Tensor, v: torch.Tensor, samples: int,
                     jitter: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """Quadrature points ``x, y, z`` (rays, samples) (voxels) of the rays through
        virtual-detector points ``(u, v)`` (rays,) of views ``theta`` (rays,), and the
        stratum length (rays,) (voxels): each ray's chord through the cylinder (infinite
        in z) cut into ``samples`` equal strata, one point per stratum at the offset
        ``jitter`` (rays, samples) in [0, 1). Rays that miss the cylinder get length 0."""
        cos_t, sin_t = torch.cos(theta), torch.sin(theta)
        d = self.source_axis
        # Source at -d * e_s; direction to (u e_u + v e_z) is u e_u + d e_s + v e_z.
        sx, sy = d * sin_t, -d * cos_t
        dx, dy = u * cos_t - d * sin_t, u * sin_t + d * cos_t
        norm = torch.sqrt(dx**2 + dy**2 + v**2)
        dx, dy, dz = dx / norm, dy / norm, v / norm
        # |S_xy + l d_xy|^2 = R^2: a l^2 + b l + c = 0 with c = d^2 - R^2 > 0.
        a = dx**2 + dy**2
        b = 2.0 * (sx * dx + sy * dy)
        disc = torch.clamp(b**2 - 4.0 * a * (d**2 - self.radius**2), min=0.0)
        root = torch.sqrt(disc)
        enter = (-b - root) / (2.0 * a)
        length = root / a
        step = length / samples
        strata = torch.arange(samples, device=u.device, dtype=u.dtype)
        along = enter[:, None] + (strata[None, :] + jitter) * step[:, None]  # (rays, samples)
        x = sx[:, None] + along * dx[:, None]
        y = sy[:, None] + along * dy[:, None]
        z = along * dz[:, None]
        return x, y, z, step
