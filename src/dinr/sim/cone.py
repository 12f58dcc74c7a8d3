"""Line integrals of an ellipse-stack phantom along diverging (cone-beam) rays.

A cone-beam ray climbs through the slices, so it sees a different set of ellipses at
each height. The phantom is taken as constant over thin slabs of ``dz`` voxels (the
ellipses of the slab's mid-height); within a slab, the ray's path through each
ellipse is exact (a line clipped by the ellipse and by the slab's two planes). With
the default quarter-voxel slabs the only approximation is that staircase in z, far
below a voxel, and the data never come from the quadrature DINR fits them with.
Coordinates follow :mod:`dinr.geometry.cone` (voxels).
"""

from __future__ import annotations

import numpy as np

from dinr.geometry.cone import ConeGeometry
from dinr.sim.ellipses import Phantom

#: Slab thickness (voxels) over which the phantom is held constant in z.
SLAB_VOXELS = 0.25


def _ellipse_interval(px: np.ndarray, py: np.ndarray, dx: np.ndarray, dy: np.ndarray, e_x: np.ndarray,
                      e_y: np.ndarray, a: np.ndarray, b: np.ndarray, phi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Parameters ``(l_in, l_out)`` (rays, ellipses) where the lines ``p + l d`` (rays,)
    enter and leave each ellipse in the plane; ``l_in = l_out`` where they miss."""
    cp, sp = np.cos(phi), np.sin(phi)
    qx, qy = px[:, None] - e_x, py[:, None] - e_y
    # In the ellipse's frame, scaled to the unit circle.
    ox = (qx * cp + qy * sp) / a
    oy = (-qx * sp + qy * cp) / b
    vx = (dx[:, None] * cp + dy[:, None] * sp) / a
    vy = (-dx[:, None] * sp + dy[:, None] * cp) / b
    qa = vx**2 + vy**2
    qb = 2.0 * (ox * vx + oy * vy)
    qc = ox**2 + oy**2 - 1.0
    disc = np.clip(qb**2 - 4.0 * qa * qc, 0.0, None)
    root = np.sqrt(disc)
    return (-qb - root) / (2.0 * qa), (-qb + root) / (2.0 * qa)


def project_cone(phantom: Phantom, t: float, theta: float, geometry: ConeGeometry, u: np.ndarray,
                 v: np.ndarray, slab: float = SLAB_VOXELS) -> np.ndarray:
    """Line integrals (attenuation x voxels) of ``phantom`` at normalised time ``t``,
    view angle ``theta`` (radians), along the rays through virtual-detector points
    ``u, v`` (any equal shapes, voxels) of a cone ``geometry``; the result has their shape."""
    shape = np.shape(u)
    u, v = np.ravel(u).astype(np.float64), np.ravel(v).astype(np.float64)
    d = geometry.source_axis
    cos_t, sin_t = np.cos(theta), np.sin(theta)
    sx, sy = d * sin_t, -d * cos_t
    # Ray X(l) = S + l * (P - S), l = 1 on the virtual detector; z(l) = l * v.
    dx, dy = u * cos_t - d * sin_t, u * sin_t + d * cos_t
    speed = np.sqrt(dx**2 + dy**2 + v**2)  # 3D length per unit of l
    a = dx**2 + dy**2
    b = 2.0 * (sx * dx + sy * dy)
    disc = np.clip(b**2 - 4.0 * a * (d**2 - geometry.radius**2), 0.0, None)
    l_enter, l_leave = (-b - np.sqrt(disc)) / (2.0 * a), (-b + np.sqrt(disc)) / (2.0 * a)
    z_a, z_b = l_enter * v, l_leave * v
    z_lo, z_hi = np.minimum(z_a, z_b), np.maximum(z_a, z_b)
    first = np.floor(z_lo.min() / slab + 0.5).astype(int)
    last = np.floor(z_hi.max() / slab + 0.5).astype(int)
    total = np.zeros_like(u)
    flat = np.abs(v) < 1e-12
    for k in range(first, last + 1):
        zc = k * slab
        lo, hi = zc - slab / 2.0, zc + slab / 2.0
        crossing = (z_hi >= lo) & (z_lo < hi) & (disc > 0)
        crossing &= ~flat | ((lo <= 0.0) & (0.0 < hi))
        rays = np.flatnonzero(crossing)
        if rays.size == 0:
            continue
        e = phantom.slice_at(t, zc)
        if len(e.x) == 0:
            continue
        vr = v[rays]
        with np.errstate(divide="ignore", invalid="ignore"):
            l_lo = np.where(flat[rays], -np.inf, np.minimum(lo / vr, hi / vr))
            l_hi = np.where(flat[rays], np.inf, np.maximum(lo / vr, hi / vr))
        seg_lo = np.maximum(l_lo, l_enter[rays])
        seg_hi = np.minimum(l_hi, l_leave[rays])
        l_in, l_out = _ellipse_interval(np.full(rays.size, sx), np.full(rays.size, sy), dx[rays], dy[rays],
                                        e.x, e.y, e.a, e.b, e.phi)
        overlap = np.clip(np.minimum(l_out, seg_hi[:, None]) - np.maximum(l_in, seg_lo[:, None]), 0.0, None)
        total[rays] += (overlap * e.value).sum(axis=1) * speed[rays]
    return total.reshape(shape)
