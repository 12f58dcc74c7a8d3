"""Where in time a scan's object is still, measured from its projections alone.

A view and the view one full turn later see the object from the same direction, in any
beam geometry, so they differ by the noise alone where the object did not move between
them. With ``sigma^2`` the noise variance of the (transmission-weighted) measurements,
the ratio

    r = mean over pixels of  w (p_later - p_earlier)^2  /  (2 sigma^2)

is 1 for a still object and grows with its motion (``w = exp(-y)``, the weighting under
which Poisson noise has the same variance on every ray; 1 when unweighted). On the built-in
scans it is 1.0 +- 0.1 over the stretches where the object rests and 2 to 500 where it
moves. The stillness of an instant is ``1 / max(r, 1)``: the share of the two views'
difference that noise explains (1 still, near 0 moving), taken from the pairs whose
midpoint lies at that instant (a pair spans one turn) after a running median over
:data:`SMOOTHING_TURNS` of a turn of pairs, and 0 below :data:`STILLNESS_FLOOR`.
``train.tv_time_weight: auto`` scales the temporal prior by it
(:mod:`dinr.train.objective`), so the prior ties the field's time cells together where
the data show no motion and leaves them free where they do.

A pair spans its separation in time, so it sees only rests at least that long. On parallel
beam a view and the view half a turn later, mirrored about the rotation axis, see the
same rays too: their pairs see rests half as long. Those measure the stillness at the
scale of a time grid with two or more cells per half-turn
(:func:`dinr.train.time_cells.time_prior_profile`); pairs a turn apart that of one cell.
"""

from __future__ import annotations

import os

import numpy as np

from dinr.io.canonical import read_scan_shape, read_sinogram, training_views
from dinr.prep.noise import central_rows

#: Instants at which the stillness is tabulated, evenly over the scan (normalised time 0..1).
TABLE_SIZE = 256

#: Length of the running median over the pairs' ratios, in turns.
SMOOTHING_TURNS = 0.25

#: Stillness below this counts as 0 (motion over 9 times the noise): a prior at a tenth
#: of its weight or less did not act (the demo, 0.06 to 0.08 throughout: +0.03 dB), and
#: its evaluation costs about 15 % of a training step on the CPU.
STILLNESS_FLOOR = 0.1


def turn_pairs(theta: np.ndarray, turns: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """Indices ``(earlier, later)`` of the views (in acquisition order, angles ``theta``
    in radians, wrapped or not) whose angle is ``turns`` (1 or 0.5) turns after another's,
    within half the median angular step; empty arrays when the views span less than that."""
    angle = np.unwrap(theta)
    if angle.size < 3:
        return np.empty(0, np.int64), np.empty(0, np.int64)
    step = float(np.median(np.abs(np.diff(angle))))
    direction = 1.0 if angle[-1] >= angle[0] else -1.0
    forward = direction * angle  # ascending for a monotonic rotation
    separation = 2.0 * np.pi * turns
    later = np.searchsorted(forward, forward + separation - 0.5 * step)
    valid = later < angle.size
    earlier = np.flatnonzero(valid)
    later = later[valid]
    close = np.abs(forward[later] - forward[earlier] - separation) <= 0.5 * step
    return earlier[close], later[close]


def mirrored(projections: np.ndarray, center: float) -> np.ndarray:
    """``projections`` (views, rows, cols) mirrored about the rotation axis at detector
    column coordinate ``center`` (column ``i`` at ``u = i + 0.5 - center``), by linear
    interpolation between columns; NaN where the mirror falls off the detector. A
    parallel-beam view mirrored so is the view half a turn earlier or later."""
    cols = projections.shape[-1]
    source = 2.0 * center - 1.0 - np.arange(cols)  # the column that u -> -u brings here
    low = np.floor(source).astype(int)
    frac = (source - low).astype(projections.dtype)
    inside = (source >= 0) & (source <= cols - 1)
    low_c, high_c = np.clip(low, 0, cols - 1), np.clip(low + 1, 0, cols - 1)
    out = projections[..., low_c] * (1 - frac) + projections[..., high_c] * frac
    out[..., ~inside] = np.nan
    return out


def motion_ratios(earlier: np.ndarray, later: np.ndarray, noise_variance: float,
                  transmission_weighted: bool) -> np.ndarray:
    """``r`` (module note) of each pair of views ``earlier[k]``, ``later[k]`` (pairs,
    rows, cols) of line integrals (NaN pixels left out); ``noise_variance`` of the
    measurements as the weighting gives them."""
    a = earlier.astype(np.float64)
    b = later.astype(np.float64)
    squared = (b - a) ** 2
    if transmission_weighted:
        squared *= np.exp(-np.clip(0.5 * (a + b), 0.0, None))
    return np.nanmean(squared.reshape(len(a), -1), axis=1) / (2.0 * noise_variance)


def stillness_table(midpoints: np.ndarray, ratios: np.ndarray, pairs_per_turn: float) -> np.ndarray:
    """(:data:`TABLE_SIZE`,) stillness at evenly spaced normalised times 0..1 from the
    pairs' normalised ``midpoints`` and ``ratios``: a running median of the ratios over
    :data:`SMOOTHING_TURNS` of ``pairs_per_turn``, ``1 / max(r, 1)``, interpolated
    linearly between midpoints and held beyond the first and last, 0 below
    :data:`STILLNESS_FLOOR`."""
    order = np.argsort(midpoints)
    midpoints, ratios = midpoints[order], ratios[order]
    half = max(0, int(round(SMOOTHING_TURNS * pairs_per_turn)) // 2)
    padded = np.pad(ratios, half, mode="edge")
    windows = np.lib.stride_tricks.sliding_window_view(padded, 2 * half + 1)
    smoothed = np.median(windows, axis=1)
    still = 1.0 / np.maximum(smoothed, 1.0)
    table = np.interp(np.linspace(0.0, 1.0, TABLE_SIZE), midpoints, still)
    return np.where(table < STILLNESS_FLOOR, 0.0, table)


def read_stillness(path: str | os.PathLike[str], noise_variance: float,
                   transmission_weighted: bool) -> tuple[np.ndarray | None, np.ndarray | None]:
    """The stillness tables (:func:`stillness_table`) of the prepared scan at ``path``
    from its training views (a central block of rows, :func:`dinr.prep.noise.central_rows`,
    read once): ``(turn, half_turn)``, of views paired a turn apart and, on a parallel-beam
    scan, half a turn apart with the later view :func:`mirrored` (module note). Each is
    None when no two views are so far apart or the noise variance is not positive, and
    ``half_turn`` is None on a cone-beam scan."""
    views = training_views(path)
    _, rows, cols = read_scan_shape(path)
    scan = read_sinogram(path, views=views, rows=central_rows(len(views), rows, cols))
    order = np.argsort(scan.time, kind="stable")
    theta, projections = scan.theta[order], scan.projections[order]
    t0, t1 = scan.scan_time
    times = (scan.time[order] - t0) / (t1 - t0)
    angle = np.unwrap(theta)
    pairs_per_turn = len(views) / max(abs(float(angle[-1] - angle[0])) / (2.0 * np.pi), 1.0)

    def table(half_turn: bool) -> np.ndarray | None:
        earlier, later = turn_pairs(theta, 0.5 if half_turn else 1.0)
        if earlier.size == 0 or not noise_variance > 0:
            return None
        later_views = mirrored(projections[later], scan.center) if half_turn else projections[later]
        ratios = motion_ratios(projections[earlier], later_views, noise_variance, transmission_weighted)
        return stillness_table(0.5 * (times[earlier] + times[later]), ratios, pairs_per_turn)

    return table(False), (table(True) if scan.beam == "parallel" else None)
