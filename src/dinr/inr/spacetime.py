"""A hash encoding of the deforming object plus one of what stays put.

:class:`StaticAndDynamicEncoding` concatenates the features of a 4D
:class:`~dinr.inr.hashgrid.HashGridEncoding` (fine in space only as it is fine in time:
its finest level learns pixel-sharp detail from about one half-turn of views) with those
of a static 3D one (no cells in time), whose every level is fitted by every view of the
scan. The network chooses, point by point, how much of each to use: detail that does not
move is learned from the whole scan, detail that moves from the views around its instant.
"""

from __future__ import annotations

import torch
from torch import nn

from dinr.inr.hashgrid import HashGridEncoding


class StaticAndDynamicEncoding(nn.Module):
    """Features ``(..., dynamic.out_features + static.out_features)`` of ``(..., 4)``
    coordinates ``(t, z, y, x)``: the ``dynamic`` grid's, then the ``static`` grid's
    (a grid with no time cells, which ignores ``t``)."""

    def __init__(self, dynamic: HashGridEncoding, static: HashGridEncoding) -> None:
        super().__init__()
        if not static.axes:
            raise ValueError("the static grid of a StaticAndDynamicEncoding must have no time cells")
        self.dynamic = dynamic
        self.static = static
        self.out_features: int = dynamic.out_features + static.out_features

    def forward(self, coords: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.dynamic(coords), self.static(coords)], dim=-1)
