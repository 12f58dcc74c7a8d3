"""The noise level of prepared projections, estimated from the projections alone."""

from __future__ import annotations

import math

import h5py
import numpy as np

#: Median absolute deviation of a standard normal variable.
_MAD_TO_SIGMA = 1.4826
#: Values used for an estimate from the projections at most (a central block of detector
#: rows, :func:`central_rows`), which bounds its memory on large scans.
MAX_VALUES = 2**20


def central_rows(views: int, rows: int, cols: int) -> slice:
    """The central block of detector rows of a (views, rows, cols) scan that holds at most
    :data:`MAX_VALUES` values (at least one row): what the estimates from the projections
    alone read, which bounds their memory on large scans."""
    used = max(1, min(rows, MAX_VALUES // max(1, views * cols)))
    first = (rows - used) // 2
    return slice(first, first + used)


def noise_variance(projections: np.ndarray | h5py.Dataset, transmission_weighted: bool) -> float:
    """Variance of the noise on the line integrals ``projections`` (views, rows, cols),
    each times ``sqrt(exp(-y))`` when ``transmission_weighted`` (then the noise of the
    weighted measurements, which Poisson counts make the same for every ray).

    Along each axis with three or more samples, the second differences
    ``(a - 2b + c) / sqrt(6)`` have the noise's standard deviation where the signal is
    smooth; their median absolute value, which sparse edges barely move, estimates it
    (Donoho's MAD rule). Signal that is not smooth inflates an axis' estimate, so the
    smallest over the axes is returned, in the measurements' squared units; non-finite
    values are ignored. Only a central block of detector rows, of at most 2**20 values
    (at least one row), is used, and only it is read when ``projections`` is an HDF5
    dataset.
    """
    y = np.asarray(projections[:, central_rows(*projections.shape)], dtype=np.float64)
    weights = np.exp(-np.clip(y, 0.0, None)) if transmission_weighted else np.ones_like(y)
    estimates = []
    for axis in range(3):
        if y.shape[axis] < 3:
            continue
        values, w = np.moveaxis(y, axis, -1), np.moveaxis(weights, axis, -1)
        second = (values[..., 2:] - 2.0 * values[..., 1:-1] + values[..., :-2]) / math.sqrt(6.0)
        finite = np.isfinite(second)
        if finite.any():
            scaled = second[finite] * np.sqrt(w[..., 1:-1][finite])
            estimates.append(float(_MAD_TO_SIGMA * np.median(np.abs(scaled))) ** 2)
    return min(estimates, default=0.0)
