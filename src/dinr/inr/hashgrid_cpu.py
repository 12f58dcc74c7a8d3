"""CPU kernels of the hash encoding (Numba): one pass over the points per direction.

The PyTorch formulation of :class:`dinr.inr.hashgrid.HashGridEncoding` builds the 16
corners of every (point, level) as several full-size intermediate tensors and reads
each many times; on a CPU that traffic, not the arithmetic, bounds it. These kernels
compute each corner's table row and weight in registers and touch the table once per
corner: forward gathers and blends, backward scatters ``weight * grad`` into the
table's gradient. They implement exactly the grid of the PyTorch path (same cells,
same hash, same corner order), which stays the path on GPUs. They run on the calling
thread: an MPI job's ranks are its CPU parallelism (one thread each by default), and a
thread pool of Numba's own would fight PyTorch's OpenMP threads for the cores.

Arrays: ``unit`` (points, 4) float32 coordinates in the grid's unit box; ``res``
(levels, 4) float32 cells per axis; ``shift`` (4,) float32 node offset in cells;
``mult`` (levels, 4) int64 node strides (dense levels) or hash primes; ``max_cell``
(levels, 4) int64 the last cell per axis. Per level: its ``table`` (size, features),
whether it is ``dense`` and its ``size`` in rows; ``first_axis`` is 1 for a static grid
(no time cells: time node 1, 8 corners), else 0.
"""

from __future__ import annotations

import numba
import numpy as np

_CACHE = {"cache": True, "nogil": True}


@numba.njit(**_CACHE)
def _corners(unit: np.ndarray, point: int, level: int, res: np.ndarray, shift: np.ndarray, mult: np.ndarray,
             dense: bool, size: int, max_cell: np.ndarray, first_axis: int, rows: np.ndarray,
             weights: np.ndarray) -> int:
    """Fill ``rows`` and ``weights`` with the table row and multilinear weight of every
    corner of a point's cell at ``level`` (first axis slowest); return the corner count.
    Points outside the box take its border cell."""
    rows[0] = mult[level, 0] if first_axis == 1 else 0  # a static grid's time node (1) times its stride/prime
    weights[0] = np.float32(1.0)
    count = 1
    for axis in range(first_axis, 4):
        pos = unit[point, axis] * res[level, axis] + shift[axis]
        base = np.floor(pos)
        if axis == 0:  # time: instants beyond the span extrapolate the first or last cell linearly
            base = min(max(base, np.float32(0.0)), res[level, 0] - np.float32(1.0))
        frac = pos - base
        node = min(max(np.int64(base) + 1, 0), max_cell[level, axis])
        low, high = node * mult[level, axis], (node + 1) * mult[level, axis]
        for j in range(count - 1, -1, -1):  # each corner splits in two: this axis becomes the fastest bit
            row, weight = rows[j], weights[j]
            rows[2 * j], rows[2 * j + 1] = (row + low, row + high) if dense else (row ^ low, row ^ high)
            weights[2 * j], weights[2 * j + 1] = weight * (np.float32(1.0) - frac), weight * frac
        count *= 2
    if not dense:
        for j in range(count):
            rows[j] %= size
    return count


@numba.njit(**_CACHE)
def _blend(unit: np.ndarray, level: int, res: np.ndarray, shift: np.ndarray, mult: np.ndarray, dense: bool,
           size: int, max_cell: np.ndarray, first_axis: int, source: np.ndarray, target: np.ndarray,
           scatter: bool) -> None:
    """Walk every point's corners at ``level``. Gather (forward): ``target[point] =
    sum_c w_c * source[row_c]``; scatter (backward): ``target[row_c] += w_c *
    source[point]``."""
    rows = np.empty(16, dtype=np.int64)
    weights = np.empty(16, dtype=np.float32)
    for point in range(unit.shape[0]):
        count = _corners(unit, point, level, res, shift, mult, dense, size, max_cell, first_axis, rows, weights)
        for f in range(source.shape[1]):
            if scatter:
                g = source[point, f]
                for j in range(count):
                    target[rows[j], f] += weights[j] * g
            else:
                total = np.float32(0.0)
                for j in range(count):
                    total += weights[j] * source[rows[j], f]
                target[point, f] = total


@numba.njit(**_CACHE)
def encode_level(unit: np.ndarray, table: np.ndarray, level: int, res: np.ndarray, shift: np.ndarray,
                 mult: np.ndarray, dense: bool, size: int, max_cell: np.ndarray, first_axis: int) -> np.ndarray:
    """Features (points, features) of one level: the blend of its cell's corners from
    the level's ``table`` (size, features)."""
    out = np.empty((unit.shape[0], table.shape[1]), dtype=np.float32)
    _blend(unit, level, res, shift, mult, dense, size, max_cell, first_axis, table, out, False)
    return out


@numba.njit(**_CACHE)
def encode_level_backward(unit: np.ndarray, grad: np.ndarray, level: int, res: np.ndarray, shift: np.ndarray,
                          mult: np.ndarray, dense: bool, size: int, max_cell: np.ndarray,
                          first_axis: int) -> np.ndarray:
    """Gradient (size, features) of one level's table from its features' gradient
    ``grad`` (points, features)."""
    table_grad = np.zeros((size, grad.shape[1]), dtype=np.float32)
    _blend(unit, level, res, shift, mult, dense, size, max_cell, first_axis, grad, table_grad, True)
    return table_grad
