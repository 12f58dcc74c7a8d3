"""Gaussian Fourier features of (t, z, y, x) with separate temporal and spatial bandwidth."""

from __future__ import annotations

import math

import torch
from torch import nn


class FourierFeatures(nn.Module):
    """``gamma(v) = [cos(2 pi B v), sin(2 pi B v)]`` for coordinates ``v = (t, z, y, x)``.

    ``B`` (n_features, 4) is drawn once from a standard normal (seeded) and its time
    column scaled by ``sigma_t``, its three spatial columns by ``sigma_s``: frequencies
    in cycles per unit of normalised time (the scan lasts 1) and of normalised space
    (the reconstruction cylinder has radius 1). ``sigma_t = 0`` makes the field static.
    ``B`` is a buffer, so it is saved in every checkpoint.
    """

    def __init__(self, n_features: int, sigma_t: float, sigma_s: float, seed: int) -> None:
        super().__init__()
        generator = torch.Generator().manual_seed(seed)
        matrix = torch.randn(n_features, 4, generator=generator)
        matrix[:, 0] *= sigma_t
        matrix[:, 1:] *= sigma_s
        self.register_buffer("B", matrix)
        self.out_features: int = 2 * n_features

    def forward(self, coords: torch.Tensor) -> torch.Tensor:
        """(..., 4) coordinates -> (..., 2 * n_features) features, float32.

        Phases reach hundreds of radians: rounded to bfloat16 (8 bits of mantissa) they
        would be off by whole radians, so they are computed in float32 even under
        autocast; the layers after the encoding may then run in lower precision."""
        with torch.autocast(coords.device.type, enabled=False):
            phase = (2.0 * math.pi) * (coords.float() @ self.B.T)
            return torch.cat([torch.cos(phase), torch.sin(phase)], dim=-1)
