"""A continuous-rotation scan of a deforming phantom: counts, flats, darks, truth.

The object rotates at constant speed through ``turns`` full turns while ``n_views``
projections are taken back to back, so every view sees its own instant. Each detector
value averages ``sub_rays`` rays across the pixel width (in cone beam, where rays
diverge in z too, ``sub_rays / 2`` across its width times as many across its height) and ``sub_angles`` instants over the view's
exposure (the object keeps rotating and deforming while the shutter is open), and the
counts carry Poisson noise. A view's recorded angle and time are those at the middle of
its exposure, the instant its averaged rays stand for. Parallel-beam rays stay in their
slice and are projected exactly (:func:`~dinr.sim.ellipses.project_ellipses`); cone-beam
rays climb through the slices (:func:`~dinr.sim.cone.project_cone`).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from dinr.errors import InputError
from dinr.geometry import Geometry
from dinr.geometry.cone import ConeGeometry
from dinr.geometry.resolve import beam_attributes, beam_geometry
from dinr.io.dxchange import INSTRUMENT
from dinr.sim.cone import project_cone
from dinr.settings import GeometrySettings, SimulateSettings
from dinr.sim.ellipses import Phantom, project_ellipses, rasterise_phantom


#: The simulated lab CT when the config gives no distances: the fan's half-angle in the
#: orbit plane (degrees), the magnification source-detector / source-axis, and the
#: detector pitch (mm).
CONE_HALF_ANGLE_DEG, CONE_MAGNIFICATION, CONE_PIXEL_MM = 10.0, 2.0, 0.1

#: The largest count a detector pixel records (16-bit counts, as Data Exchange stores them).
COUNTS_MAX = 65535

#: The beam profile's brightest pixel over its mean (``photons``).
BEAM_PEAK = 1.05


def simulated_geometry(settings: SimulateSettings, beam: GeometrySettings,
                       raw_path: Path) -> tuple[Geometry, dict[str, float]]:
    """The geometry of a simulated scan (``settings.size`` columns and voxels across,
    ``settings.rows`` rows, the axis in the middle) and the instrument values (mm) its raw
    file ``raw_path`` records. Cone beam takes the configured distances and pitch, the
    defaults above for those left out; the values are checked as ``prepare`` checks them
    (:func:`~dinr.geometry.resolve.beam_attributes`)."""
    n, rows = settings.size, settings.rows
    if beam.beam == "cone":
        pixel = beam.pixel_size_mm or CONE_PIXEL_MM
        if beam.source_detector_mm is not None:
            detector = beam.source_detector_mm
        else:  # the half-angle fixes the source-to-detector distance in pixels
            detector = pixel * (n / 2.0) / math.tan(math.radians(CONE_HALF_ANGLE_DEG))
        axis = beam.source_axis_mm if beam.source_axis_mm is not None else detector / CONE_MAGNIFICATION
        beam = dataclasses.replace(beam, pixel_size_mm=pixel, source_detector_mm=detector, source_axis_mm=axis)
    fields = beam_attributes(beam, {}, rows, n, raw_path)
    instrument = {key: fields[key] for key in INSTRUMENT if key in fields}
    return beam_geometry(fields, rows, n, n / 2, n), instrument


@dataclass
class SimulatedScan:
    """Raw counts and what they were made from.

    ``data`` (views, rows, cols), ``flat`` (n_flats, rows, cols), ``dark`` (n_darks,
    rows, cols) uint16 counts; ``theta_deg`` (views,) degrees and ``time_s`` (views,)
    seconds, each at the middle of the view's exposure; ``truth`` (frames, rows, n, n)
    attenuation per pixel; ``truth_time_s`` (frames,) seconds.
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
    geometry: Geometry,
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
    """Simulate a scan; ``photons`` is the mean flat-field count per pixel and view (the
    beam profile's brightest pixel takes ``BEAM_PEAK`` times it)."""
    brightest = photons * BEAM_PEAK + dark_counts
    if brightest + 6.0 * math.sqrt(brightest) > COUNTS_MAX:
        raise InputError(f"simulate.photons: {photons:g} flat counts per pixel overflow the detector's 16-bit counts "
                         f"(its brightest pixel averages {brightest:.0f} of at most {COUNTS_MAX}); take at most 60000")
    rng = np.random.default_rng(seed + 1)
    k = np.arange(n_views)
    step = 2.0 * np.pi * turns / n_views
    theta = step * k  # where view k's exposure starts; it ends one step later
    u = geometry.detector_u()
    u_sub = u[:, None] + (np.arange(sub_rays) + 0.5) / sub_rays - 0.5  # (cols, sub_rays)
    z = geometry.slice_z()
    line_integrals = np.zeros((n_views, geometry.rows, geometry.cols))
    if isinstance(geometry, ConeGeometry):  # sub_rays // 2 rays across each of the pixel's two sides
        sub = max(1, sub_rays // 2)
        offsets = (np.arange(sub) + 0.5) / sub - 0.5
        grid_v, grid_u = np.broadcast_arrays((geometry.detector_v()[:, None] + offsets)[:, :, None, None],
                                             (u[:, None] + offsets)[None, None, :, :])  # (rows, sub, cols, sub)
    for v in range(n_views):
        for s in range(sub_angles):
            frac = (s + 0.5) / sub_angles
            t_norm = (k[v] + frac) / n_views
            angle = theta[v] + frac * step
            if isinstance(geometry, ConeGeometry):
                values = project_cone(phantom, t_norm, angle, geometry, grid_u, grid_v)
                line_integrals[v] += values.mean(axis=(1, 3)) / sub_angles
                continue
            for r, zr in enumerate(z):
                values = project_ellipses(phantom.slice_at(t_norm, zr), angle, u_sub)
                line_integrals[v, r] += values.mean(axis=1) / sub_angles
    # A smooth, slightly uneven beam profile, as flats show at real beamlines.
    profile = photons * (1.0 + (BEAM_PEAK - 1.0) * np.cos(np.pi * (u / geometry.cols)))[None, :]
    profile = np.broadcast_to(profile, (geometry.rows, geometry.cols))
    expected = profile[None] * np.exp(-line_integrals) + dark_counts
    data = rng.poisson(expected)
    flat = rng.poisson(profile + dark_counts, size=(n_flats, geometry.rows, geometry.cols))
    dark = rng.poisson(dark_counts, size=(n_darks, geometry.rows, geometry.cols))
    frame_t = (np.arange(n_frames) + 0.5) / n_frames
    truth = rasterise_phantom(phantom, frame_t, z)
    scan_s = n_views * view_time_s  # the phantom's time 0 to 1, first shutter opening to last closing
    return SimulatedScan(
        data=np.clip(data, 0, COUNTS_MAX).astype(np.uint16),
        flat=np.clip(flat, 0, COUNTS_MAX).astype(np.uint16),
        dark=dark.astype(np.uint16),
        theta_deg=np.rad2deg(theta + 0.5 * step),
        time_s=(k + 0.5) * view_time_s,
        truth=truth,
        truth_time_s=frame_t * scan_s,
    )
