"""What both beam geometries share: a detector of ``rows x cols`` pixels with the
rotation axis at column ``center``, and ``rows`` slices of ``n x n`` pixels (voxels).

Pixel (row ``i``, column ``j``) of a slice is centred at ``x = j + 0.5 - n/2``,
``y = n/2 - (i + 0.5)`` (x to the right, y up); slice ``r`` at height
``z = rows/2 - (r + 0.5)`` (z up, along the rotation axis); detector column ``c`` at
``u = c + 0.5 - center``. The radius of the reconstruction cylinder is the geometry's own.

The field's coordinates are pixel coordinates divided by ``half_width = n / 2`` (not by
the cylinder's radius, which is smaller in cone beam), so the finest level of the hash
grid, one cell per pixel, has its nodes on the voxel centres in either beam.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class SliceGrid:
    """Detector of ``rows x cols`` pixels, rotation axis at column ``center``, and a
    reconstruction grid of ``n x n`` pixels per slice (``rows`` slices)."""

    rows: int
    cols: int
    center: float
    n: int

    @property
    def radius(self) -> float:
        """Radius of the reconstruction cylinder in pixels (set by each geometry)."""
        raise NotImplementedError

    @property
    def half_width(self) -> float:
        """Half the slice width (pixels): the unit of the field's normalised coordinates."""
        return self.n / 2.0

    def detector_u(self) -> np.ndarray:
        """(cols,) detector coordinate of each column centre, pixels."""
        return np.arange(self.cols) + 0.5 - self.center

    def slice_z(self) -> np.ndarray:
        """(rows,) height of each volume slice, pixels."""
        return self.rows / 2.0 - (np.arange(self.rows) + 0.5)

    def grid_xy(self) -> tuple[np.ndarray, np.ndarray]:
        """(n, n) x and y of every pixel centre of a slice, pixels (rows index y)."""
        c = np.arange(self.n) + 0.5 - self.n / 2.0
        return np.meshgrid(c, -c, indexing="xy")

    def cylinder_mask(self) -> np.ndarray:
        """(n, n) boolean: pixel centres inside the reconstruction cylinder."""
        x, y = self.grid_xy()
        return x**2 + y**2 < self.radius**2
