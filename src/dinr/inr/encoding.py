"""What the field asks of an encoding: a module mapping coordinates to features.

An encoding is a new file beside :mod:`dinr.inr.fourier` and :mod:`dinr.inr.hashgrid`
that satisfies :class:`Encoding`, plus one branch in :mod:`dinr.inr.build`.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import torch


@runtime_checkable
class Encoding(Protocol):
    """``(..., 4)`` normalised coordinates ``(t, z, y, x)`` -> ``(..., out_features)``."""

    out_features: int

    def __call__(self, coords: torch.Tensor) -> torch.Tensor: ...
