"""What a 4D grid does before its first and after its last time node.

With ``time_resolution: auto`` the grid's time nodes run from the centre of the scan's
first half-turn to the centre of its last (:mod:`dinr.inr.build`), so the first and
last quarter-turns lie outside them. Three ways to continue there
(``train.time_ends``):

- ``linear``: the grid's end cells continue linearly (the grid's own behaviour): right
  when the motion keeps its pace to the scan's edges, wrong when it stops, turns back or
  speeds up there.
- ``held``: the features stay at their end node's value: right when the object is at
  rest at the scan's edges.
- ``fitted``: a blend ``held + a * (linear - held)`` with one weight ``a`` in (0, 1) for
  each end (a sigmoid of a learned logit, starting at 0.5), fitted by the training
  objective to the views of that end's quarter-turn, so each scan's own data choose how
  far the motion runs on. Costs a second evaluation of the grid for the points outside
  its nodes.
- ``heldout``: trained as ``fitted``; when training stops, each end's weight is chosen
  by the held-out views of its quarter-turn (:mod:`dinr.train.end_weights`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn

from dinr.inr.hashgrid import HashGridEncoding

class TimeEnds(nn.Module):
    """``grid``'s features of (..., 4) coordinates ``(t, z, y, x)``, continued before
    and after its time span as ``mode`` says (``held`` or ``fitted``; module note)."""

    def __init__(self, grid: HashGridEncoding, mode: str) -> None:
        super().__init__()
        if mode not in ("held", "fitted"):
            raise ValueError(f"TimeEnds mode must be 'held' or 'fitted', got {mode!r} (linear needs no wrapper)")
        self.grid = grid
        self.mode = mode
        self.out_features: int = grid.out_features
        if mode == "fitted":
            self.end_logits = nn.Parameter(torch.zeros(2))  # (first, last): a = 0.5 at the start

    def end_weights(self) -> torch.Tensor:
        """(2,) how far the first and last time cells run on (0 held, 1 linear)."""
        if self.mode == "held":
            return torch.zeros(2, device=self.grid.time_span.device)
        return torch.sigmoid(self.end_logits)

    @torch.no_grad()
    def set_end_weights(self, weights: Sequence[float]) -> None:
        """Set the (first, last) end weights of a ``fitted`` module (0 held, 1 linear;
        the ends are stored as logits, 0 and 1 as ``-+END_LOGIT_BOUND``)."""
        if self.mode != "fitted":
            raise ValueError(f"only fitted ends have weights to set, these are {self.mode!r}")
        self.end_logits.copy_(torch.tensor([_logit(float(w)) for w in weights], dtype=self.end_logits.dtype))

    def forward(self, coords: torch.Tensor) -> torch.Tensor:
        start, end = self.grid.time_span  # device tensors: comparing with them needs no host round trip
        if self.mode == "held":
            return self.grid(_clamp_time(coords, start, end))
        features = self.grid(coords)
        t = coords[..., 0].reshape(-1)
        after = t > end
        index = ((t < start) | after).nonzero().squeeze(1)
        if not len(index):
            return features
        flat = features.reshape(-1, features.shape[-1])
        held = self.grid(_clamp_time(coords.reshape(-1, coords.shape[-1])[index], start, end))
        first, last = self.end_weights().to(held.dtype)
        # torch.where, not an index into the two weights: the backward of such an index adds
        # every point's gradient into one of two rows, serially on a GPU (73 % of the step)
        weight = torch.where(after[index], last, first)[:, None]
        blended = held + weight * (flat[index] - held)
        return flat.index_put((index,), blended).reshape(features.shape)


#: The logit magnitude that stands for an end weight of 0 or 1 (its sigmoid is 2e-9 from it).
END_LOGIT_BOUND = 20.0


def _logit(weight: float) -> float:
    if not 0.0 <= weight <= 1.0:
        raise ValueError(f"an end weight must lie in [0, 1], got {weight}")
    if weight in (0.0, 1.0):
        return math.copysign(END_LOGIT_BOUND, weight - 0.5)
    return max(-END_LOGIT_BOUND, min(END_LOGIT_BOUND, math.log(weight / (1.0 - weight))))


def _clamp_time(coords: torch.Tensor, start: torch.Tensor, end: torch.Tensor) -> torch.Tensor:
    """``coords`` (..., 4) with ``t`` clamped into ``[start, end]`` (0-d tensors)."""
    return torch.cat([coords[..., :1].clamp(start, end), coords[..., 1:]], dim=-1)
