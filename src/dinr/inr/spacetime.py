"""A hash encoding of the deforming object plus one of what stays put, and optionally
one of what changes slowly.

:class:`StaticAndDynamicEncoding` concatenates the features of a 4D
:class:`~dinr.inr.hashgrid.HashGridEncoding` (fine in space only as it is fine in time:
its finest level learns pixel-sharp detail from about one half-turn of views) with those
of a static 3D one (no cells in time), whose every level is fitted by every view of the
scan, and, where asked, those of a *slow* 4D grid: the static grid's spatial levels with
one time cell per turn at every level, so pixel-sharp detail that holds still for a turn
or more (an object at rest before or after it moves) is fitted from the views of that
turn, not of one half-turn. The network chooses, point by point, how much of each to
use: detail that does not move is learned from the whole scan, detail that moves from
the views around its instant.
"""

from __future__ import annotations

import torch
from torch import nn

from dinr.inr.hashgrid import HashGridEncoding


class StaticAndDynamicEncoding(nn.Module):
    """Features ``(..., out_features)`` of ``(..., 4)`` coordinates ``(t, z, y, x)``: the
    ``dynamic`` grid's, then the ``static`` grid's (a grid with no time cells, which
    ignores ``t``; ``None`` for none), then the ``slow`` grid's (``None`` for none)."""

    def __init__(self, dynamic: nn.Module, static: HashGridEncoding | None,
                 slow: HashGridEncoding | None = None) -> None:
        super().__init__()
        if static is None and slow is None:
            raise ValueError("a StaticAndDynamicEncoding needs a static or a slow grid beside the dynamic one")
        if static is not None and not static.axes:
            raise ValueError("the static grid of a StaticAndDynamicEncoding must have no time cells")
        if slow is not None and slow.axes:
            raise ValueError("the slow grid of a StaticAndDynamicEncoding must have time cells")
        self.dynamic = dynamic
        self.static = static
        self.slow = slow
        self.out_features: int = dynamic.out_features + sum(grid.out_features for grid in (static, slow)
                                                              if grid is not None)

    def forward(self, coords: torch.Tensor) -> torch.Tensor:
        return torch.cat([grid(coords) for grid in (self.dynamic, self.static, self.slow) if grid is not None],
                         dim=-1)
