"""Phantoms described slice by slice as sums of ellipses: their exact projections and
rasterisation.

Parallel-beam rays stay inside one slice (a plane perpendicular to the rotation axis),
so a 3D+t phantom is fully described by the ellipses of each slice at each instant.
Ellipses give exact line integrals (:func:`project_ellipses`) and exact rasterisation
(:func:`rasterise_ellipses`), so the simulated data never come from the projector that
DINR uses to fit them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np


@dataclass(frozen=True)
class Ellipses:
    """A set of ellipses in one slice; all arrays have shape (m,).

    ``x``, ``y`` centres and ``a``, ``b`` semi-axes in pixels, ``phi`` the angle of the
    ``a`` axis from the x axis in radians, ``value`` the attenuation added inside,
    per pixel length (negative values carve voids).
    """

    x: np.ndarray
    y: np.ndarray
    a: np.ndarray
    b: np.ndarray
    phi: np.ndarray
    value: np.ndarray


def project_ellipses(e: Ellipses, theta: np.ndarray, u: np.ndarray) -> np.ndarray:
    """Exact line integrals of ellipses along parallel rays.

    ``theta`` and ``u`` broadcast together (radians, pixels; the convention of
    :mod:`dinr.geometry.parallel`); returns their broadcast shape, in attenuation x pixels.
    """
    theta = np.asarray(theta, dtype=np.float64)[..., None]
    u = np.asarray(u, dtype=np.float64)[..., None]
    shift = u - (e.x * np.cos(theta) + e.y * np.sin(theta))
    alpha = theta - e.phi
    extent2 = (e.a * np.cos(alpha)) ** 2 + (e.b * np.sin(alpha)) ** 2
    inside = np.clip(extent2 - shift**2, 0.0, None)
    chord = 2.0 * e.a * e.b * np.sqrt(inside) / extent2
    return np.sum(e.value * chord, axis=-1)


def rasterise_ellipses(e: Ellipses, n: int, supersample: int = 4) -> np.ndarray:
    """(n, n) mean attenuation over each pixel of an ``n x n`` slice (row 0 at the top)."""
    s = supersample
    c = (np.arange(n * s) + 0.5) / s - n / 2.0
    x, y = np.meshgrid(c, -c, indexing="xy")
    image = np.zeros_like(x)
    for k in range(len(e.x)):
        dx, dy = x - e.x[k], y - e.y[k]
        cp, sp = np.cos(e.phi[k]), np.sin(e.phi[k])
        xr, yr = dx * cp + dy * sp, -dx * sp + dy * cp
        image += e.value[k] * ((xr / e.a[k]) ** 2 + (yr / e.b[k]) ** 2 <= 1.0)
    return image.reshape(n, s, n, s).mean(axis=(1, 3))


class Phantom(Protocol):
    """A deforming object given as the ellipses of each slice at each instant."""

    n: int

    def slice_at(self, t: float, z: float) -> Ellipses:
        """The ellipses of slice height ``z`` (pixels) at normalised time ``t`` in [0, 1]."""
        ...


def rasterise_phantom(phantom: Phantom, times: np.ndarray, z: np.ndarray, supersample: int = 4) -> np.ndarray:
    """(t, z, y, x) mean attenuation per pixel of ``phantom`` at normalised ``times``
    and slice heights ``z`` (pixels)."""
    out = np.empty((len(times), len(z), phantom.n, phantom.n), dtype=np.float32)
    for i, t in enumerate(times):
        for j, zj in enumerate(z):
            out[i, j] = rasterise_ellipses(phantom.slice_at(float(t), float(zj)), phantom.n, supersample)
    return out
