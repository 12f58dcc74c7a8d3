"""A continuous-rotation scan of a deforming phantom: counts, flats, darks, truth.

The object rotates at constant speed through ``turns`` full turns while ``n_views``
projections are taken back to back, so every view sees its own instant. Each detector
value averages ``sub_rays`` rays across the pixel width and ``sub_angles`` instants over
the view's exposure (the object keeps rotating and deforming while the shutter is
open), and the counts carry Poisson noise.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from dinr.geometry.parallel import ParallelGeometry
from dinr.sim.ellipses import Phantom, project_ellipses, rasterise_phantom


@dataclass
class SimulatedScan:
    """Raw counts and what they were made from.

    ``data`` (views, rows, cols), ``flat`` (n_flats, rows, cols), ``dark`` (n_darks,
    rows, cols) uint16 counts; ``theta_deg`` (views,) degrees; ``time_s`` (views,)
    seconds; ``truth`` (frames, rows, n, n) attenuation per pixel; ``truth_time_s``
    (frames,) seconds.
    """

    data: np.ndarray
    flat: np.ndarray
    dark: np.ndarray
    theta_deg: np.ndarray
    time_s: np.ndarray
    truth: np.ndarray
    truth_time_s: np.ndarray


def simulate_scan(
    phantom: Phantom,
    geometry: ParallelGeometry,
    n_views: int,
    turns: float,
    photons: float,
    n_frames: int,
    view_time_s: float = 0.01,
    dark_counts: float = 100.0,
    n_flats: int = 10,
    n_darks: int = 10,
    sub_rays: int = 4,
    sub_angles: int = 2,
    seed: int = 0,
) -> SimulatedScan:
    """Simulate a scan; ``photons`` is the mean flat-field count per pixel and view."""
    rng = np.random.default_rng(seed + 1)
    k = np.arange(n_views)
    theta = 2.0 * np.pi * turns * k / n_views
    step = 2.0 * np.pi * turns / n_views
    time_s = k * view_time_s
    u = geometry.detector_u()
    u_sub = u[:, None] + (np.arange(sub_rays) + 0.5) / sub_rays - 0.5  # (cols, sub_rays)
    z = geometry.slice_z()
    line_integrals = np.zeros((n_views, geometry.rows, geometry.cols))
    for v in range(n_views):
        for s in range(sub_angles):
            frac = (s + 0.5) / sub_angles
            t_norm = (k[v] + frac) / n_views
            angle = theta[v] + frac * step
            for r, zr in enumerate(z):
                values = project_ellipses(phantom.slice_at(t_norm, zr), angle, u_sub)
                line_integrals[v, r] += values.mean(axis=1) / sub_angles
    # A smooth, slightly uneven beam profile, as flats show at real beamlines.
    profile = photons * (1.0 + 0.05 * np.cos(np.pi * (u / geometry.cols)))[None, :]
    profile = np.broadcast_to(profile, (geometry.rows, geometry.cols))
    expected = profile[None] * np.exp(-line_integrals) + dark_counts
    data = rng.poisson(expected)
    flat = rng.poisson(profile + dark_counts, size=(n_flats, geometry.rows, geometry.cols))
    dark = rng.poisson(dark_counts, size=(n_darks, geometry.rows, geometry.cols))
    frame_t = (np.arange(n_frames) + 0.5) / n_frames
    truth = rasterise_phantom(phantom, frame_t, z)
    scan_span = time_s[-1] - time_s[0]
    return SimulatedScan(
        data=np.clip(data, 0, 65535).astype(np.uint16),
        flat=np.clip(flat, 0, 65535).astype(np.uint16),
        dark=dark.astype(np.uint16),
        theta_deg=np.rad2deg(theta),
        time_s=time_s,
        truth=truth,
        truth_time_s=time_s[0] + frame_t * scan_span,
    )
