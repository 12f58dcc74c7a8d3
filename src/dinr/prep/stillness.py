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
same rays too: their pairs see rests half as long. In cone beam the rays of the detector
rows through the source's plane (the central rows) form a fan, and the ray of fan angle
``gamma`` at view angle ``theta`` is seen again, reversed, at ``theta + pi - 2 gamma``
in the column mirrored about the axis (its conjugate): each view's central rows are
paired with their conjugates, interpolated between the two nearest views and columns,
where the scan holds the whole fan (:func:`conjugate_views`); they pair views about half
a turn apart as well. Those
measure the stillness at the scale of a time grid with two or more cells per half-turn
(:func:`dinr.train.time_cells.time_prior_profile`); pairs a turn apart that of one cell.
"""

from __future__ import annotations

import os

import numpy as np

from dinr.geometry.resolve import geometry_of
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


def conjugate_rows(rows: int, row_center: float) -> slice | None:
    """The detector rows of a cone-beam scan whose centres lie within one pixel of the
    source's plane (``row_center``, in rows from the top edge; at most two rows), or
    None when none does. Their conjugate rays cross the object within ``2 |v| R / D`` of
    the same height (``v`` the row's height on the virtual detector, ``R`` the object's
    radius, ``D`` the source-axis distance): under 0.2 voxel where ``R < D / 5``."""
    near = [row for row in range(rows) if abs(row_center - (row + 0.5)) < 1.0]
    return slice(near[0], near[-1] + 1) if near else None


def conjugate_views(projections: np.ndarray, theta: np.ndarray, center: float,
                    source_axis: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The fan-beam conjugate of each view of ``projections`` (views, rows, cols; rows of
    the source's plane, :func:`conjugate_rows`) in acquisition order, angles ``theta``
    (radians): ``(earlier, conjugates, position)``, the indices of the views whose
    conjugates the scan holds in every column, those conjugates (pairs, rows, cols) and
    each pair's mean fractional view index of its conjugates. Column ``c`` is at
    ``u = c + 0.5 - center`` on the virtual detector, fan angle
    ``gamma = atan(u / source_axis)``; its conjugate lies at the angle ``pi - 2 gamma``
    further along the rotation, in the column at ``-u``, interpolated linearly between
    the two nearest views and columns; NaN where that column falls off the detector."""
    views, _, cols = projections.shape
    angle = np.unwrap(theta)
    direction = 1.0 if angle[-1] >= angle[0] else -1.0
    forward = direction * angle  # ascending for a monotonic rotation
    u = np.arange(cols) + 0.5 - center
    fan = np.arctan(u / source_axis)
    target = forward[:, None] + np.pi - direction * 2.0 * fan[None, :]  # (views, cols)
    position = np.interp(target, forward, np.arange(views, dtype=np.float64), right=np.nan)
    column = 2.0 * center - 1.0 - np.arange(cols)  # the column at -u
    inside = (column >= 0) & (column <= cols - 1)
    # whole fans only: a view near the end keeps conjugates in its outer columns alone,
    # which see the edge of the object and would read it still
    earlier = np.flatnonzero(np.all(np.isfinite(position) | ~inside, axis=1))
    position = np.where(inside, position[earlier], np.nan)
    known = np.nan_to_num(position)  # the columns off the detector are set to NaN below
    low_view = np.clip(np.floor(known).astype(int), 0, views - 2)
    view_weight = np.clip(known - low_view, 0.0, 1.0)
    low_col = np.clip(np.floor(column).astype(int), 0, cols - 2)
    col_weight = np.clip(column - low_col, 0.0, 1.0)
    conjugates = np.zeros((len(earlier), projections.shape[1], cols), dtype=np.float64)
    for dv, wv in ((0, 1.0 - view_weight), (1, view_weight)):
        for dc, wc in ((0, 1.0 - col_weight), (1, col_weight)):
            # (pairs, cols) indices into (views, rows, cols): rows broadcast between them
            picked = projections[(low_view + dv)[:, None, :], np.arange(projections.shape[1])[None, :, None],
                                 (low_col + dc)[None, None, :]]
            conjugates += (wv * wc[None, :])[:, None, :] * picked
    conjugates[..., ~inside] = np.nan
    return earlier, conjugates, np.nanmean(position, axis=1)


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
    read once, and on cone beam its :func:`conjugate_rows`): ``(turn, half_turn)``, of
    views paired a turn apart and, on a parallel-beam scan, half a turn apart with the
    later view :func:`mirrored`, on a cone-beam scan with their fan-beam conjugates
    (:func:`cone_half_turn_table`; module note). Each is None when no two views are so far
    apart or the noise variance is not positive."""
    if not noise_variance > 0:
        return None, None
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
        if earlier.size == 0:
            return None
        later_views = mirrored(projections[later], scan.center) if half_turn else projections[later]
        ratios = motion_ratios(projections[earlier], later_views, noise_variance, transmission_weighted)
        return stillness_table(0.5 * (times[earlier] + times[later]), ratios, pairs_per_turn)

    if scan.beam == "parallel":
        return table(False), table(True)
    near = conjugate_rows(rows, float(scan.row_center))  # type: ignore[arg-type]
    if near is None:
        return table(False), None
    source_axis = geometry_of(scan).source_axis  # type: ignore[attr-defined]
    return table(False), cone_half_turn_table(read_sinogram(path, views=views, rows=near).projections[order],
                                              theta, scan.center, source_axis, times, pairs_per_turn,
                                              noise_variance, transmission_weighted)


def cone_half_turn_table(projections: np.ndarray, theta: np.ndarray, center: float, source_axis: float,
                         times: np.ndarray, pairs_per_turn: float, noise_variance: float,
                         transmission_weighted: bool) -> np.ndarray | None:
    """The stillness table of a cone-beam scan's fan-beam conjugate pairs
    (:func:`conjugate_views`) from its :func:`conjugate_rows`' ``projections`` (views,
    rows, cols) in acquisition order, at angles ``theta`` and normalised ``times``;
    None where no view has a conjugate."""
    earlier, conjugates, position = conjugate_views(projections, theta, center, source_axis)
    if earlier.size == 0:
        return None
    ratios = motion_ratios(projections[earlier], conjugates, noise_variance, transmission_weighted)
    midpoints = 0.5 * (times[earlier] + np.interp(position, np.arange(len(times)), times))
    return stillness_table(midpoints, ratios, pairs_per_turn)
