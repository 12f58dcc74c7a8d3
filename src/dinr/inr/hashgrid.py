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

    Coordinates: ``t`` in [0, 1], ``z, y, x`` in [-1, 1] (normalised by the cylinder
    radius). ``space_res`` and ``time_res`` (levels,) give each level's cells across the
    diameter and across the scan; ``log2_table`` the table size per level. All levels
    share one flat table, so one gather (and one scatter in backward) serves them all.
    """

    def __init__(self, space_res: np.ndarray, time_res: np.ndarray, features: int, log2_table: int,
                 seed: int) -> None:
        super().__init__()
        self.levels = len(space_res)
        self.table_size = 2**log2_table
        self.features = features
        res = np.stack([time_res, space_res, space_res, space_res], axis=1)  # (levels, 4)
        self.register_buffer("res", torch.as_tensor(res, dtype=torch.float32))
        generator = torch.Generator().manual_seed(seed)
        table = (torch.rand(self.levels * self.table_size, features, generator=generator) * 2 - 1) * 1e-4
        self.table = nn.Parameter(table)
        self.out_features = self.levels * features
        # Per level and axis: the index multiplier (dense row-major strides, or hash primes).
        dense = np.prod(res + 2, axis=1) <= self.table_size
        strides = np.cumprod(np.concatenate([np.ones((self.levels, 1)), res[:, :0:-1] + 2], axis=1), axis=1)[:, ::-1]
        multipliers = np.where(dense[:, None], strides, np.asarray(_PRIMES)[None, :]).astype(np.int64)
        self.register_buffer("multipliers", torch.as_tensor(multipliers))
        self.register_buffer("dense", torch.as_tensor(dense))

    def forward(self, coords: torch.Tensor) -> torch.Tensor:
        shape = coords.shape[:-1]
        flat = coords.reshape(-1, 4)
        unit = torch.cat([flat[:, :1], (flat[:, 1:] + 1.0) * 0.5], dim=1)  # every axis in [0, 1]
        indices, weights = [], []
        for level in range(self.levels):
            pos = unit * self.res[level]
            base = torch.floor(pos)
            frac = pos - base
            cell = base.long() + 1  # +1 keeps dense indices non-negative at the box edges
            axis_weight = torch.stack([1.0 - frac, frac], dim=-1)  # (points, 4, 2)
            axis_index = torch.stack([cell, cell + 1], dim=-1) * self.multipliers[level][None, :, None]
            # Outer products over the axes (t slowest, x fastest): (points, 16) corners.
            w = axis_weight[:, 0]
            index = axis_index[:, 0]
            for axis in range(1, 4):
                w = (w[:, :, None] * axis_weight[:, axis, None, :]).reshape(len(flat), -1)
                if self.dense[level]:
                    index = (index[:, :, None] + axis_index[:, axis, None, :]).reshape(len(flat), -1)
                else:
                    index = (index[:, :, None] ^ axis_index[:, axis, None, :]).reshape(len(flat), -1)
            indices.append(index % self.table_size + level * self.table_size)
            weights.append(w)
        index = torch.stack(indices, dim=1)  # (points, levels, 16)
        values = self.table.index_select(0, index.reshape(-1)).reshape(*index.shape, self.features)
        features = (values * torch.stack(weights, dim=1)[..., None]).sum(dim=2)  # (points, levels, features)
        return features.reshape(*shape, self.out_features)
