"""Multiresolution hash encoding of (t, z, y, x) (Instant-NGP style), in plain PyTorch.

Level ``l`` lays a regular grid over the normalised box: ``time_res[l]`` cells across
the scan and ``space_res[l]`` cells across the cylinder diameter (the same cell size in
z, y and x). Each of the 16 corners of the 4D cell around a point looks up a learned
feature vector — directly when the level's grid fits in the table, through a spatial
hash otherwise — and the corners are blended by quadrilinear weights. The levels'
features are concatenated. Fine levels resolve pixel-sharp edges that a band-limited
Fourier encoding needs many steps (and a high bandwidth) to approach.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

#: Primes of the Instant-NGP spatial hash, one per axis (t, z, y, x).
_PRIMES = (1, 2654435761, 805459861, 3674653429)


class HashGridEncoding(nn.Module):
    """Concatenated features (..., levels * features) of (..., 4) coordinates.

    Coordinates: ``t`` in [0, 1]; ``z, y, x`` in the box ``[-extent, extent]`` per axis
    (normalised by the cylinder radius: ``extent = (rows / n, 1, 1)`` for a scan of
    ``rows`` slices of ``n`` pixels). Level ``l`` has ``time_res[l]`` cells across the scan
    and cells of side ``2 / space_res[l]`` in space (the same on every spatial axis), so a
    thin slab gets few cells in z. A level's table holds one entry per grid node while
    that fits in ``2**log2_table`` entries (no collisions), else that many hashed entries.
    All levels share one flat table: one gather (and one scatter in backward) serves all.
    """

    def __init__(self, space_res: np.ndarray, time_res: np.ndarray, extent: tuple[float, float, float],
                 features: int, log2_table: int, seed: int) -> None:
        super().__init__()
        self.levels = len(space_res)
        self.features = features
        half = np.asarray(extent, dtype=np.float64)
        res = np.concatenate([np.asarray(time_res, dtype=np.float64)[:, None],
                              np.ceil(np.asarray(space_res, dtype=np.float64)[:, None] * half[None, :])], axis=1)
        self.register_buffer("res", torch.as_tensor(res, dtype=torch.float32))  # (levels, 4) cells per axis
        self.register_buffer("extent", torch.as_tensor(half, dtype=torch.float32))
        # Spatial nodes sit half a cell in, so a level with one cell per pixel has its
        # nodes on the voxel centres (and detector rows), which it then represents exactly.
        self.register_buffer("shift", torch.tensor([0.0, 0.5, 0.5, 0.5]))
        nodes = np.prod(res + 3, axis=1)  # corner indices run from 1 to res + 2
        dense = nodes <= 2**log2_table
        sizes = np.where(dense, nodes, 2**log2_table).astype(np.int64)
        strides = np.cumprod(np.concatenate([np.ones((self.levels, 1)), res[:, :0:-1] + 3], axis=1), axis=1)[:, ::-1]
        multipliers = np.where(dense[:, None], strides, np.asarray(_PRIMES)[None, :]).astype(np.int64)
        self.register_buffer("multipliers", torch.as_tensor(multipliers))
        self.dense = tuple(bool(d) for d in dense)  # per level; plain bools branch without a device sync
        self.register_buffer("sizes", torch.as_tensor(sizes))
        self.register_buffer("offsets", torch.as_tensor(np.concatenate([[0], np.cumsum(sizes)[:-1]])))
        generator = torch.Generator().manual_seed(seed)
        self.table = nn.Parameter((torch.rand(int(sizes.sum()), features, generator=generator) * 2 - 1) * 1e-4)
        self.out_features: int = self.levels * features

    def unit_coordinates(self, coords: torch.Tensor) -> torch.Tensor:
        """(points, 4) coordinates mapped into the unit box [0, 1]^4 of the grid."""
        return torch.cat([coords[:, :1], (coords[:, 1:] + self.extent) / (2.0 * self.extent)], dim=1)

    def corners(self, unit: torch.Tensor, level: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Table entries (points, 16) and quadrilinear weights (points, 16) of the 16
        corners of each point's cell at ``level`` (t slowest, x fastest)."""
        pos = unit * self.res[level] + self.shift
        base = torch.floor(pos)
        frac = pos - base
        cell = base.long() + 1  # +1 keeps dense indices non-negative at the box edges
        axis_weight = torch.stack([1.0 - frac, frac], dim=-1)  # (points, 4, 2)
        axis_index = torch.stack([cell, cell + 1], dim=-1) * self.multipliers[level][None, :, None]
        weight, index = axis_weight[:, 0], axis_index[:, 0]
        points = len(unit)
        for axis in range(1, 4):  # outer products over the axes
            weight = (weight[:, :, None] * axis_weight[:, axis, None, :]).reshape(points, -1)
            if self.dense[level]:
                index = (index[:, :, None] + axis_index[:, axis, None, :]).reshape(points, -1)
            else:
                index = (index[:, :, None] ^ axis_index[:, axis, None, :]).reshape(points, -1)
        return index % self.sizes[level] + self.offsets[level], weight

    def forward(self, coords: torch.Tensor) -> torch.Tensor:
        shape = coords.shape[:-1]
        unit = self.unit_coordinates(coords.reshape(-1, 4))
        entries = [self.corners(unit, level) for level in range(self.levels)]
        index = torch.stack([e[0] for e in entries], dim=1)  # (points, levels, 16)
        weight = torch.stack([e[1] for e in entries], dim=1)
        values = self.table.index_select(0, index.reshape(-1)).reshape(*index.shape, self.features)
        features = (values * weight[..., None]).sum(dim=2)  # (points, levels, features)
        return features.reshape(*shape, self.out_features)
