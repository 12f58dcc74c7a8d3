"""A hydrogel that swells unevenly as it takes up water."""

from __future__ import annotations

import numpy as np

from dinr.sim.ellipses import Ellipses


class SwellingPhantom:
    """A gel cylinder with dense particles, swelling more on one side and at the top.

    Over normalised time ``t`` in [0, 1] the gel's section grows by ``swell`` (relative,
    along its swelling direction; half that across it) times ``1 - (1 - t)**2`` (fast,
    then slowing), more in the upper slices (water enters from the top: the growth is
    scaled by ``0.6 + 0.4 (z / half height + 1) / 2``), and its centre moves towards the
    swelling direction, so the swelling is uneven in (y, x) and in z. Its attenuation
    falls as it dilutes (mass conserved within each slice); the particles ride with the
    gel and keep their size and attenuation.

    Parameters: ``n`` slice size and ``rows`` number of slices (pixels), ``seed`` for
    the particles and the swelling direction, ``peak_line_integral`` the line integral
    of the gel's thickest ray at the start (about), ``swell`` the growth at the top.
    """

    def __init__(self, n: int, rows: int, seed: int = 0, peak_line_integral: float = 1.5,
                 swell: float = 0.3, n_particles: int = 7) -> None:
        rng = np.random.default_rng(seed)
        self.n = n
        self.half_height = max(rows / 2.0, 1.0)
        self.swell = swell
        self.radius = 0.82 * (n / 2.0) / (1.0 + swell)  # swollen, it still fits the cylinder
        self.mu = peak_line_integral / (2.0 * self.radius)
        self.direction = rng.uniform(0, 2 * np.pi)
        self.particles: list[tuple[float, float, float]] = []
        for _ in range(n_particles):
            for _ in range(2000):
                r = self.radius * rng.uniform(0.07, 0.13)
                rad = (self.radius - r - 1.5) * np.sqrt(rng.uniform(0, 1))
                ang = rng.uniform(0, 2 * np.pi)
                x, y = rad * np.cos(ang), rad * np.sin(ang)
                if all(np.hypot(x - px, y - py) > r + pr + 1.5 for px, py, pr in self.particles):
                    self.particles.append((x, y, r))
                    break

    def growth(self, t: float, z: float) -> tuple[float, float]:
        """Relative growth along and across the swelling direction in slice ``z`` at ``t``."""
        height = 0.6 + 0.4 * (np.clip(z / self.half_height, -1.0, 1.0) + 1.0) / 2.0
        along = self.swell * height * (1.0 - (1.0 - t) ** 2)
        return along, 0.5 * along

    def slice_at(self, t: float, z: float) -> Ellipses:
        """The ellipses of slice height ``z`` (pixels) at normalised time ``t``."""
        along, across = self.growth(t, z)
        c, s = np.cos(self.direction), np.sin(self.direction)
        shift = 0.5 * along * self.radius  # the centre moves as the far side swells more

        def place(x: float, y: float) -> tuple[float, float]:
            u, v = x * c + y * s, -x * s + y * c  # gel frame: u along the swelling direction
            u, v = u * (1.0 + along) + shift, v * (1.0 + across)
            return u * c - v * s, u * s + v * c

        gx, gy = place(0.0, 0.0)
        dilute = self.mu / ((1.0 + along) * (1.0 + across))
        parts = [(gx, gy, self.radius * (1.0 + along), self.radius * (1.0 + across), self.direction, dilute)]
        parts += [(*place(x, y), r, r, 0.0, 2.5 * self.mu - dilute) for x, y, r in self.particles]
        return Ellipses(*np.asarray(parts, dtype=np.float64).T)
