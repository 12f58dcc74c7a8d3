"""The attenuation field ``mu(t, z, y, x) = scale * MLP(encoding(t, z, y, x))``."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from dinr.inr.encoding import Encoding


class AttenuationField(nn.Module):
    """Coordinate network for the linear attenuation of a deforming object.

    Input: (..., 4) normalised coordinates ``(t, z, y, x)`` (t in [0, 1]; space in pixels
    divided by half the slice width, the cylinder within the unit disk). Output: (...,)
    attenuation per pixel length. ``encoding`` maps
    coordinates to features (an :class:`~dinr.inr.encoding.Encoding` module); the MLP has
    ``hidden_layers`` layers of ``width`` units with SiLU and a linear output, multiplied
    by ``scale`` (1/pixel); ``nonnegative`` passes the output through softplus first.
    """

    def __init__(self, encoding: Encoding, width: int, hidden_layers: int, scale: float,
                 nonnegative: bool = False) -> None:
        super().__init__()
        if not isinstance(encoding, nn.Module):
            raise TypeError(f"encoding must be an nn.Module, found {type(encoding).__name__}")
        self.encoding = encoding
        layers: list[nn.Module] = []
        in_features = int(encoding.out_features)
        for _ in range(hidden_layers):
            layers += [nn.Linear(in_features, width), nn.SiLU()]
            in_features = width
        layers.append(nn.Linear(in_features, 1))
        self.mlp = nn.Sequential(*layers)
        self.register_buffer("scale", torch.tensor(float(scale)))
        self.nonnegative = nonnegative

    def forward(self, coords: torch.Tensor) -> torch.Tensor:
        out = self.mlp(self.encoding(coords)).squeeze(-1).float()  # float32 even under autocast
        if self.nonnegative:
            out = F.softplus(out)
        return self.scale * out
