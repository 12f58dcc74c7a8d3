"""Rotation-axis position from the data: Vo's method, phase correlation as fallback.

Centres are in dinr's convention (that of :mod:`dinr.geometry.parallel`): detector
columns with the middle of the detector at ``cols / 2``. Vo's ``find_center_vo`` (in
algotom, as in TomoPy) reports a pixel index, pixel centres at integers; the two differ
by half a pixel.
"""

from __future__ import annotations

import logging

import numpy as np
from skimage.registration import phase_cross_correlation

from dinr.errors import InputError

log = logging.getLogger(__name__)

def half_turn_views(theta: np.ndarray) -> np.ndarray:
    """Indices of the views of the first half-turn, ``theta`` (views,) in radians."""
    return np.flatnonzero(theta - theta[0] < np.pi - 1e-9)


def find_center_vo(projections: np.ndarray, theta: np.ndarray, row: int | None = None) -> float:
    """Vo's method (algotom) on one row's sinogram of the first half-turn.

    ``projections`` (views, rows, cols) line integrals, ``theta`` (views,) radians;
    ``row`` defaults to the middle row.
    """
    from algotom.prep.calculation import find_center_vo as algotom_vo

    views = half_turn_views(theta)
    if theta[views[-1]] - theta[0] < 0.9 * np.pi:
        raise ValueError("the scan covers less than 180 degrees")
    sinogram = projections[views, projections.shape[1] // 2 if row is None else row, :]
    return float(algotom_vo(np.ascontiguousarray(sinogram, dtype=np.float32))) + 0.5


def find_center_phase(projections: np.ndarray, theta: np.ndarray) -> float:
    """Phase correlation of the pair of views closest to 180 degrees apart.

    The view at ``theta + pi`` is the mirror image of the view at ``theta`` about the
    axis; flipped, it is shifted by ``2 * center - cols`` columns.
    """
    later = np.abs((theta[None, :] - theta[:, None]) % (2 * np.pi) - np.pi)  # |separation - 180 deg|
    first, second = np.unravel_index(np.argmin(later), later.shape)
    if later[first, second] > np.deg2rad(2.0):
        raise ValueError("no pair of views 180 degrees apart (within 2 degrees)")
    shift = phase_cross_correlation(projections[first], projections[second][:, ::-1], upsample_factor=20)[0]
    return (projections.shape[2] + float(shift[-1])) / 2.0


def find_center(projections: np.ndarray, theta: np.ndarray, method: str, source: str) -> tuple[float, str]:
    """(centre, method used): ``vo`` falls back to ``phase`` when Vo's method cannot run
    or lands off the detector. ``source`` names the file in errors."""
    cols = projections.shape[2]
    attempts = ["vo", "phase"] if method == "vo" else [method]
    reasons = []
    for attempt in attempts:
        try:
            center = find_center_vo(projections, theta) if attempt == "vo" else find_center_phase(projections, theta)
        except ValueError as exc:
            reasons.append(f"{attempt}: {exc}")
            continue
        if 0.0 < center < cols:
            return center, attempt
        reasons.append(f"{attempt}: centre {center:.2f} is off the detector")
        log.warning("%s: centre finding by %s failed (%s)", source, attempt, reasons[-1])
    raise InputError(f"{source}: prepare.find_center={method!r} failed ({'; '.join(reasons)}); set prepare.center")
