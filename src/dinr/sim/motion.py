"""How a phantom's deformation unfolds in time: a *motion* maps the scan's normalised
time ``t`` in [0, 1] to the phantom's own time (its progress through its deformation,
also in [0, 1]), so the same object can come to rest, start late, go back and forth,
speed up or jump.

- ``steady``: ``t`` itself (the phantoms as they are defined).
- ``rest``: decelerates to a stop at ``t = 0.7`` and stays put for the rest of the scan.
- ``late``: still until ``t = 0.3``, then accelerates through the whole deformation.
- ``oscillate``: there and back one and a half times (``sin^2(1.5 pi t)``): the motion
  reverses at ``t = 1/3`` and ``2/3`` and comes to a turning point at the scan's end.
- ``accelerate``: ``t^3``: hardly moves at first, fastest at the end.
- ``jerk``: the whole deformation between ``t = 0.4`` and ``0.6`` (a smoothstep), still
  before and after: within that fifth of the scan it moves five times as fast as steady.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from dinr.sim.ellipses import Ellipses, Phantom


def _smoothstep(x: float) -> float:
    x = min(1.0, max(0.0, x))
    return x * x * (3.0 - 2.0 * x)


#: Motion name -> the phantom's time at the scan's normalised time.
MOTIONS: dict[str, Callable[[float], float]] = {
    "steady": lambda t: t,
    "rest": lambda t: 1.0 - (1.0 - min(t / 0.7, 1.0)) ** 2,
    "late": lambda t: (max(0.0, t - 0.3) / 0.7) ** 2,
    "oscillate": lambda t: float(np.sin(1.5 * np.pi * t) ** 2),
    "accelerate": lambda t: t**3,
    "jerk": lambda t: _smoothstep((t - 0.4) / 0.2),
}


@dataclass(frozen=True)
class Moved:
    """``phantom`` whose deformation follows the motion ``name`` (:data:`MOTIONS`)."""

    phantom: Phantom
    name: str

    @property
    def n(self) -> int:
        return self.phantom.n

    def slice_at(self, t: float, z: float) -> Ellipses:
        """The ellipses of slice height ``z`` (pixels) at the scan's normalised time ``t``."""
        return self.phantom.slice_at(MOTIONS[self.name](t), z)
