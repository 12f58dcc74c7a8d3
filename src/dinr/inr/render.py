"""Sampling the trained field on a voxel grid at chosen times."""

from __future__ import annotations

import numpy as np
import torch

from dinr.geometry import Geometry
from dinr.inr.field import AttenuationField


class SliceRenderer:
    """Samples a field on the (y, x) grid of one slice at a time.

    Each pixel value is the mean of ``supersample`` x ``supersample`` point values spread
    over the pixel (a box filter: the pixel's mean attenuation, as a detector-sized
    voxel would hold), 1 takes the pixel centre. Voxels outside the reconstruction
    cylinder are 0. Points are evaluated ``chunk`` at a time, so memory stays bounded
    by one slice whatever the grid size.
    """

    def __init__(self, field: AttenuationField, geometry: Geometry, chunk: int = 65536,
                 supersample: int = 1, device: torch.device | str = "cpu") -> None:
        x, y = geometry.grid_xy()
        self.mask = geometry.cylinder_mask()
        offsets = (np.arange(supersample) + 0.5) / supersample - 0.5
        dy, dx = (o.ravel() for o in np.meshgrid(offsets, offsets, indexing="ij"))
        xy = np.stack([(y[self.mask][:, None] + dy).ravel(), (x[self.mask][:, None] + dx).ravel()], axis=-1)
        self.xy = torch.as_tensor(xy / geometry.half_width, dtype=torch.float32, device=device)
        self.z = geometry.slice_z() / geometry.half_width
        self.field, self.chunk, self.supersample = field.eval(), chunk, supersample

    @torch.no_grad()
    def __call__(self, time: float, row: int) -> np.ndarray:
        """(n, n) attenuation per pixel of slice ``row`` at normalised ``time``."""
        tz = torch.tensor([time, self.z[row]], dtype=torch.float32, device=self.xy.device)
        values = torch.empty(len(self.xy), dtype=torch.float32, device=self.xy.device)
        # Each chunk's values go straight into one buffer: a list of small pieces, kept
        # while the MLP's large activations come and go, fragmented the heap (a 2048-pixel
        # slice peaked at twice the process's steady size).
        for start in range(0, len(self.xy), self.chunk):
            xy = self.xy[start:start + self.chunk]
            values[start:start + len(xy)] = self.field(torch.cat([tz.expand(len(xy), 2), xy], dim=1))
        out = np.zeros(self.mask.shape, dtype=np.float32)
        out[self.mask] = values.reshape(-1, self.supersample**2).mean(dim=1).cpu().numpy()
        return out
