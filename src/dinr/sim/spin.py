"""A rigid part that spins about an axis off the rotation stage's axis."""

from __future__ import annotations

import numpy as np

from dinr.sim.ellipses import Ellipses


class SpinPhantom:
    """A rigid machined part turning on its own off-centre axis while it is scanned.

    An elliptical body with bored holes and dense inserts (all cylinders along z, so
    every slice shows the same sharp-edged section) turns rigidly by ``spin_deg`` over the
    scan about a pivot ``offset`` (fraction of the slice's half-width) from the stage's
    rotation axis, with its angular speed easing in and out (``0.5 - 0.5 cos(pi t)``).
    Nothing deforms: every edge moves, and only by the rigid motion.

    Parameters: ``n`` slice size and ``rows`` number of slices (pixels), ``seed`` for the
    holes' and inserts' places and sizes, ``peak_line_integral`` the line integral of
    the body's thickest ray (about), ``spin_deg`` the turn by the end of the scan.
    """

    def __init__(self, n: int, rows: int, seed: int = 0, peak_line_integral: float = 1.5,
                 spin_deg: float = 90.0, offset: float = 0.18, n_features: int = 6) -> None:
        rng = np.random.default_rng(seed)
        self.n = n
        half = n / 2.0
        self.pivot = (offset * half * np.cos(rng.uniform(0, 2 * np.pi)), offset * half * np.sin(rng.uniform(0, 2 * np.pi)))
        reach = 0.82 * half - np.hypot(*self.pivot)  # the body stays inside the cylinder every view sees
        self.a, self.b = reach, 0.62 * reach
        self.mu = peak_line_integral / (2.0 * self.a)
        self.spin = np.deg2rad(spin_deg)
        self.features = self._place(n_features, rng)

    def _place(self, count: int, rng: np.random.Generator) -> list[tuple[float, float, float, float]]:
        """(x, y, radius, value) of holes (voids) and inserts (twice the body's
        attenuation) in the body's frame, inside it and one pixel apart."""
        placed: list[tuple[float, float, float, float]] = []
        for k in range(count):
            for _ in range(2000):
                r = self.b * rng.uniform(0.10, 0.20)
                x, y = rng.uniform(-self.a, self.a), rng.uniform(-self.b, self.b)
                inside = (x / (self.a - r - 1.0)) ** 2 + (y / (self.b - r - 1.0)) ** 2 < 1.0
                if inside and all(np.hypot(x - px, y - py) > r + pr + 1.0 for px, py, pr, _ in placed):
                    placed.append((x, y, r, -self.mu if k % 2 else self.mu))
                    break
        return placed

    def angle(self, t: float) -> float:
        """The body's turn at normalised time ``t``, radians."""
        return self.spin * (0.5 - 0.5 * np.cos(np.pi * t))

    def slice_at(self, t: float, z: float) -> Ellipses:
        """The ellipses of slice height ``z`` (pixels) at normalised time ``t``."""
        turn = self.angle(t)
        c, s = np.cos(turn), np.sin(turn)
        px, py = self.pivot
        parts = [(px, py, self.a, self.b, turn, self.mu)]
        parts += [(px + c * x - s * y, py + s * x + c * y, r, r, 0.0, v) for x, y, r, v in self.features]
        return Ellipses(*np.asarray(parts, dtype=np.float64).T)
