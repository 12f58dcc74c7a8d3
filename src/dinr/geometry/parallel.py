"""Parallel-beam geometry shared by the simulator, the ray model of DINR and FBP.

Coordinates are in pixels, following ASTRA's and TomoPy's parallel-beam convention:
a slice of an ``n x n`` grid has pixel (row ``i``, column ``j``) centred at
``x = j + 0.5 - n/2`` and ``y = n/2 - (i + 0.5)`` (x to the right, y up). The view at
angle ``theta`` (radians) measures, at detector coordinate ``u``, the line integral
along the ray ``u * (cos theta, sin theta) + s * (-sin theta, cos theta)``.
Detector column ``c`` (centre of the pixel) sits at ``u = c + 0.5 - center`` with
``center`` in TomoPy's units (``cols / 2`` when the axis is in the middle). Detector row
``r`` and volume slice ``r`` sit at height ``z = rows/2 - (r + 0.5)`` (z up, along the
rotation axis).

DINR works in normalised coordinates: pixel coordinates divided by the radius of the
reconstruction cylinder, ``n / 2``, so the cylinder is the unit disk in (x, y).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from dinr.geometry.grid import SliceGrid


@dataclass(frozen=True)
class ParallelGeometry(SliceGrid):
    """Detector of ``rows x cols`` pixels, rotation axis at column ``center``, and a
    reconstruction grid of ``n x n`` pixels per slice (``rows`` slices); detector row ``r``
    images slice ``r``."""

    beam = "parallel"

    @property
    def radius(self) -> float:
        """Radius of the reconstruction cylinder in pixels."""
        return self.n / 2.0

    @property
    def half_height(self) -> float:
        """Half-height of the region every view sees (pixels): the whole detector."""
        return self.rows / 2.0

    @property
    def field_half_height(self) -> float:
        """Half-height of the box the field is learned in (pixels)."""
        return self.rows / 2.0

    def detector_v(self) -> np.ndarray:
        """(rows,) height of each detector row, pixels (that of its slice)."""
        return self.slice_z()

    def column_mask(self) -> np.ndarray:
        """(cols,) boolean: columns whose rays cross the reconstruction cylinder."""
        return np.abs(self.detector_u()) < self.radius

    def region_mask(self) -> np.ndarray:
        """(rows, n, n) boolean: voxels in the region every view sees (the cylinder)."""
        return np.broadcast_to(self.cylinder_mask(), (self.rows, self.n, self.n))

    def chord_points(self, theta: torch.Tensor, u: torch.Tensor, v: torch.Tensor, samples: int,
                     jitter: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """Quadrature points ``x, y, z`` (rays, samples) (pixels) of the rays at detector
        coordinate ``u`` and height ``v`` (rays,) of views ``theta`` (rays,), and the stratum
        length (rays,) (pixels): each ray's chord through the cylinder cut into ``samples``
        equal strata, one point per stratum at the offset ``jitter`` (rays, samples) in
        [0, 1). Rays with ``|u| >= radius`` miss the cylinder: their strata have length 0."""
        half_chord = torch.sqrt(torch.clamp(self.radius**2 - u**2, min=0.0))  # (rays,)
        step = 2.0 * half_chord / samples
        strata = torch.arange(samples, device=u.device, dtype=u.dtype)
        s = -half_chord[:, None] + (strata[None, :] + jitter) * step[:, None]  # (rays, samples)
        cos_t, sin_t = torch.cos(theta)[:, None], torch.sin(theta)[:, None]
        x = u[:, None] * cos_t - s * sin_t
        y = u[:, None] * sin_t + s * cos_t
        return x, y, v[:, None].expand_as(s), step
