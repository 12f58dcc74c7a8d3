"""Sampling the trained field on a voxel grid at chosen times."""

from __future__ import annotations

import numpy as np
import torch

from dinr.geometry.parallel import ParallelGeometry
from dinr.inr.field import AttenuationField


@torch.no_grad()
def render_frames(
    field: AttenuationField, geometry: ParallelGeometry, times: np.ndarray, chunk: int = 65536,
    supersample: int = 1, device: torch.device | str = "cpu",
) -> np.ndarray:
    """(frames, rows, n, n) attenuation per pixel at normalised ``times`` (frames,).

    Each pixel value is the mean of ``supersample`` x ``supersample`` point values spread
    over the pixel (a box filter: the pixel's mean attenuation, as a detector-sized
    voxel would hold), 1 takes the pixel centre. Voxels outside the reconstruction
    cylinder are 0. Points are evaluated ``chunk`` at a time, so memory stays bounded
    whatever the grid size.
    """
    x, y = geometry.grid_xy()
    mask = geometry.cylinder_mask()
    offsets = (np.arange(supersample) + 0.5) / supersample - 0.5
    dy, dx = (o.ravel() for o in np.meshgrid(offsets, offsets, indexing="ij"))
    xy = np.stack([(y[mask][:, None] + dy).ravel(), (x[mask][:, None] + dx).ravel()], axis=-1) / geometry.radius
    z = geometry.slice_z() / geometry.radius
    out = np.zeros((len(times), geometry.rows, geometry.n, geometry.n), dtype=np.float32)
    field.eval()
    for f, t in enumerate(times):
        for r, zr in enumerate(z):
            coords = np.concatenate([np.full((len(xy), 2), (t, zr)), xy], axis=1)
            coords_t = torch.as_tensor(coords, dtype=torch.float32, device=device)
            values = torch.cat([field(c) for c in torch.split(coords_t, chunk)])
            out[f, r][mask] = values.reshape(-1, supersample**2).mean(dim=1).cpu().numpy()
    return out
