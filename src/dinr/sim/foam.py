"""A liquid foam coarsening in a tube while the sample stage drifts."""

from __future__ import annotations

import numpy as np

from dinr.sim.ellipses import Ellipses


class FoamPhantom:
    """Gas bubbles in a liquid-filled tube, imaged while the foam coarsens.

    Over normalised time ``t`` in [0, 1]: bubbles (spherical voids in the liquid) larger
    than the median grow and the smaller ones shrink until they vanish, each with its
    squared radius changing linearly in time (Ostwald ripening); every bubble rises
    along z at a speed proportional to its starting radius; a dense grain sinks from the
    top of the field of view to its bottom; and the whole tube drifts sideways along a
    curved path, ``drift_px`` pixels by the end (stage drift, thermal creep). The tube
    wall is denser than the liquid. Bubbles and the grain never overlap in (y, x), so
    attenuation stays between 0 and the wall's.

    Parameters: ``n`` slice size and ``rows`` number of slices (pixels), ``seed`` for the
    bubbles' sizes, places and fates, ``peak_line_integral`` the measured line integral
    of the thickest ray through the liquid-filled tube (about), ``drift_px`` the lateral
    drift at the end of the scan (default 5 % of ``n``).
    """

    def __init__(self, n: int, rows: int, seed: int = 0, peak_line_integral: float = 1.5, n_bubbles: int = 9,
                 drift_px: float | None = None) -> None:
        rng = np.random.default_rng(seed)
        self.n = n
        self.outer = 0.70 * (n / 2.0)
        self.inner = self.outer - max(1.5, 0.08 * self.outer)
        self.mu_liquid = peak_line_integral / (2.0 * self.outer) / 1.1
        self.mu_wall = 2.0 * self.mu_liquid
        self.drift = 0.05 * n if drift_px is None else float(drift_px)
        half_height = max(rows / 2.0, 1.0)

        start = self.inner * rng.uniform(0.10, 0.22, n_bubbles)
        grows = start > np.median(start)
        self.r0_sq = start**2
        self.r1_sq = np.where(grows, (1.4 * start) ** 2, 0.0)
        self.vanish = np.where(grows, 1.0, rng.uniform(0.4, 1.0, n_bubbles))  # time a shrinking bubble is gone
        self.z0 = rng.uniform(-0.8, 0.6, n_bubbles) * half_height
        self.rise = 0.6 * half_height * start / start.max()  # pixels over the scan
        self.grain_radius = 0.12 * self.inner
        self.grain_z = (0.9 * half_height, -0.9 * half_height)  # from, to
        largest = np.concatenate([[self.grain_radius], np.where(grows, 1.4 * start, start)])
        self.centres = self._place_discs(largest, rng)

    def _place_discs(self, radii: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """(k, 2) (x, y) centres of discs of ``radii`` (pixels) inside the tube's bore,
        one pixel apart at least; discs that find no room after many tries are dropped
        (their centre is NaN)."""
        centres = np.full((len(radii), 2), np.nan)
        for k, r in enumerate(radii):
            reach = self.inner - r - 1.0
            for _ in range(2000):
                c = rng.uniform(-reach, reach, 2)
                if np.hypot(*c) > reach:
                    continue
                placed = ~np.isnan(centres[:k, 0])
                gaps = np.hypot(*(centres[:k][placed] - c).T) - radii[:k][placed] - r
                if np.all(gaps > 1.0):
                    centres[k] = c
                    break
        return centres

    def offset(self, t: float) -> tuple[float, float]:
        """The stage's lateral drift (x, y) at normalised time ``t``, pixels."""
        return self.drift * t, 0.4 * self.drift * np.sin(np.pi * t)

    def bubble_radii(self, t: float) -> np.ndarray:
        """(bubbles,) radius of each bubble at normalised time ``t`` (0 once vanished)."""
        fraction = np.clip(t / self.vanish, 0.0, 1.0)
        return np.sqrt(np.clip(self.r0_sq + (self.r1_sq - self.r0_sq) * fraction, 0.0, None))

    def slice_at(self, t: float, z: float) -> Ellipses:
        """The ellipses of slice height ``z`` (pixels) at normalised time ``t``."""
        dx, dy = self.offset(t)
        parts = [(dx, dy, self.outer, self.outer, 0.0, self.mu_wall),
                 (dx, dy, self.inner, self.inner, 0.0, self.mu_liquid - self.mu_wall)]
        grain_z = self.grain_z[0] + (self.grain_z[1] - self.grain_z[0]) * t
        spheres = [(self.centres[0], self.grain_radius, grain_z, 2.0 * self.mu_liquid)]
        radii, heights = self.bubble_radii(t), self.z0 + self.rise * t
        spheres += [(c, r, h, -self.mu_liquid) for c, r, h in zip(self.centres[1:], radii, heights)]
        for centre, radius, height, value in spheres:
            section = radius**2 - (z - height) ** 2
            if np.isnan(centre[0]) or section <= 0.0:
                continue
            a = float(np.sqrt(section))
            parts.append((centre[0] + dx, centre[1] + dy, a, a, 0.0, value))
        return Ellipses(*np.asarray(parts, dtype=np.float64).T)
