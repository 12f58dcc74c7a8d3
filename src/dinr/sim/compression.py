"""A cylindrical specimen under compression: it bulges, twists and cracks."""

from __future__ import annotations

import numpy as np

from dinr.sim.ellipses import Ellipses


class CompressionPhantom:
    """A cylindrical specimen under axial compression, imaged while it deforms.

    Over normalised time ``t`` in [0, 1]: the specimen bulges (barrelling, most at
    mid-height) and twists (torsion growing with height); dense inclusions ride along
    with the matrix; pores collapse; a crack opens at the rim and propagates inwards,
    its front inclined through the height. Sizes scale with the grid, and
    ``peak_line_integral`` sets the attenuation so that the thickest ray of the intact
    specimen measures about that value.

    Parameters: ``n`` slice size and ``rows`` number of slices (pixels), ``seed`` for the
    placement of inclusions and pores, ``twist_deg`` the torsion at the top slice at the
    end of the scan, ``bulge`` the relative radius increase at mid-height.
    """

    def __init__(
        self,
        n: int,
        rows: int,
        seed: int = 0,
        peak_line_integral: float = 1.5,
        n_inclusions: int = 6,
        n_pores: int = 3,
        twist_deg: float = 40.0,
        bulge: float = 0.08,
    ) -> None:
        rng = np.random.default_rng(seed)
        self.n, self.rows = n, rows
        self.radius = 0.68 * (n / 2.0)
        self.mu = peak_line_integral / (2.0 * self.radius)
        self.twist = np.deg2rad(twist_deg)
        self.bulge = bulge
        half_height = max(rows / 2.0, 1.0)
        self.half_height = half_height

        def place(count: int, r_min: float, r_max: float) -> tuple[np.ndarray, ...]:
            rad = self.radius * np.sqrt(rng.uniform(r_min**2, r_max**2, count))
            ang = rng.uniform(0, 2 * np.pi, count)
            z = rng.uniform(-0.6, 0.6, count) * half_height
            return rad, ang, z

        self.inc_r, self.inc_ang, self.inc_z = place(n_inclusions, 0.15, 0.75)
        self.inc_size = self.radius * rng.uniform(0.10, 0.16, n_inclusions)
        self.inc_aspect = rng.uniform(0.6, 1.0, n_inclusions)
        self.inc_phi = rng.uniform(0, np.pi, n_inclusions)
        self.pore_r, self.pore_ang, self.pore_z = place(n_pores, 0.1, 0.6)
        self.pore_size = self.radius * rng.uniform(0.12, 0.18, n_pores)
        self.crack_angle = rng.uniform(0, 2 * np.pi)
        self.crack_width = max(0.9, 0.02 * n)  # largest half-width, pixels
        for k in range(n_pores):  # voids that overlap would add up to negative attenuation
            for _ in range(1000):
                if not self._pore_overlaps(k):
                    break
                (self.pore_r[k],), (self.pore_ang[k],), (self.pore_z[k],) = place(1, 0.1, 0.6)

    def _pore_overlaps(self, k: int) -> bool:
        """Whether pore ``k`` (as large as it gets) meets an earlier pore in (y, x), or
        the crack's path: the half-line from the centre at ``crack_angle`` in the material
        frame, in which the crack stays while the specimen twists."""
        x, y = self.pore_r[:k + 1] * np.cos(self.pore_ang[:k + 1]), self.pore_r[:k + 1] * np.sin(self.pore_ang[:k + 1])
        along = x[k] * np.cos(self.crack_angle) + y[k] * np.sin(self.crack_angle)
        across = abs(-x[k] * np.sin(self.crack_angle) + y[k] * np.cos(self.crack_angle))
        if along > -self.pore_size[k] and across < self.pore_size[k] + self.crack_width + 1.0:
            return True
        gaps = np.hypot(x[:k] - x[k], y[:k] - y[k]) - self.pore_size[:k] - self.pore_size[k]
        return bool(np.any(gaps < 1.0))

    def _map(self, r: np.ndarray, ang: np.ndarray, z: float, t: float) -> tuple[np.ndarray, np.ndarray]:
        """Material point at (radius, angle) in slice z, moved to its place at time t."""
        zeta = z / self.half_height
        stretch = 1.0 + self.bulge * t * (1.0 - 0.5 * zeta**2)
        turn = ang + self.twist * t * 0.5 * (1.0 + zeta)
        return r * stretch * np.cos(turn), r * stretch * np.sin(turn)

    def slice_at(self, t: float, z: float) -> Ellipses:
        """The ellipses of slice height ``z`` (pixels) at normalised time ``t``."""
        parts: list[tuple[float, float, float, float, float, float]] = []
        zeta = z / self.half_height
        specimen = self.radius * (1.0 + self.bulge * t * (1.0 - 0.5 * zeta**2))
        parts.append((0.0, 0.0, specimen, specimen, 0.0, self.mu))
        for k in range(len(self.inc_r)):
            # Ellipsoidal inclusion: its slice shrinks away from its own mid-height.
            depth = 1.0 - ((z - self.inc_z[k]) / (1.5 * self.inc_size[k] + 1.0)) ** 2
            if depth <= 0:
                continue
            x, y = self._map(self.inc_r[k], self.inc_ang[k], z, t)
            a = self.inc_size[k] * np.sqrt(depth)
            parts.append((x, y, a, a * self.inc_aspect[k], self.inc_phi[k] + self.twist * t, self.mu))
        for k in range(len(self.pore_r)):
            depth = 1.0 - ((z - self.pore_z[k]) / (1.5 * self.pore_size[k] + 1.0)) ** 2
            if depth <= 0:
                continue
            x, y = self._map(self.pore_r[k], self.pore_ang[k], z, t)
            size = self.pore_size[k] * np.sqrt(depth) * (1.0 - 0.75 * t)
            parts.append((x, y, size, size, 0.0, -self.mu))
        # Crack: opens at t = 0.15 at the rim and runs inwards, deeper at the top; its
        # outer tip stays on the rim (beyond it, its void would carve the air).
        growth = np.clip((t - 0.15) / 0.85, 0.0, 1.0) * (0.8 + 0.2 * zeta)
        if growth > 0:
            length = 0.75 * specimen * growth
            ang = self.crack_angle + self.twist * t * 0.5 * (1.0 + zeta)
            mid = specimen - 0.5 * length
            width = self.crack_width * (0.5 + 0.5 * growth)
            parts.append((mid * np.cos(ang), mid * np.sin(ang), 0.5 * length, width, ang, -self.mu))
        cols = np.asarray(parts, dtype=np.float64).T
        return Ellipses(*cols)
