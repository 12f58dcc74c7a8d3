"""CPU kernels of the hash encoding (Numba): one pass over the points per direction.

The PyTorch formulation of :class:`dinr.inr.hashgrid.HashGridEncoding` builds the 16
corners of every (point, level) as several full-size intermediate tensors and reads
each many times; on a CPU that traffic, not the arithmetic, bounds it. These kernels
find each point's cell once per axis, walk its corners in nested loops (rows and weights
in registers) and touch the table once per corner: forward gathers and blends, backward
scatters ``weight * grad`` into the table's gradient. They implement exactly the grid of
the PyTorch path (same cells, same hash, same corner order and summation order), which
stays the path on GPUs. They run on the calling thread: an MPI job's ranks are its CPU
parallelism (one thread each by default), and a thread pool of Numba's own would fight
PyTorch's OpenMP threads for the cores.

Arrays: ``unit`` (points, 4) float32 coordinates in the grid's unit box; ``res``
(levels, 4) float32 cells per axis; ``shift`` (4,) float32 node offset in cells;
``mult`` (levels, 4) int64 node strides (dense levels) or hash primes; ``max_cell``
(levels, 4) int64 the last cell per axis. Per level: its ``table`` (size, features),
whether it is ``dense`` and its ``size`` in rows (a hashed level's is ``2**log2_table``,
so its hash is reduced to a row by a mask: the same rows as the PyTorch path's modulo,
and a fifth less time than a 64-bit division over eight levels, four of them hashed);
``first_axis`` is 1 for a static grid (no time cells: time node 1, 8 corners), else 0.
"""

from __future__ import annotations

import numba
import numpy as np

_CACHE = {"cache": True, "nogil": True}


@numba.njit(inline="always", **_CACHE)
def _axis(unit: np.ndarray, point: int, axis: int, level: int, res: np.ndarray, shift: np.ndarray,
          mult: np.ndarray, max_cell: np.ndarray) -> tuple[int, int, np.float32]:
    """A point's cell on one axis at ``level``: the index terms (stride or prime times the
    node) of its low and high corner and its fractional position in the cell. Points
    outside the box take its border cell; instants beyond the time span extrapolate the
    first or last time cell linearly."""
    pos = unit[point, axis] * res[level, axis] + shift[axis]
    base = np.floor(pos)
    if axis == 0:
        base = min(max(base, np.float32(0.0)), res[level, 0] - np.float32(1.0))
    node = min(max(np.int64(base) + 1, 0), max_cell[level, axis])
    return node * mult[level, axis], (node + 1) * mult[level, axis], pos - base


@numba.njit(inline="always", **_CACHE)
def _join(row: int, term: int, dense: bool) -> int:
    """A corner's row so far combined with one axis's term: a sum (dense) or a XOR (hash)."""
    return row + term if dense else row ^ term


@numba.njit(**_CACHE)
def _blend(unit: np.ndarray, level: int, res: np.ndarray, shift: np.ndarray, mult: np.ndarray, dense: bool,
           size: int, max_cell: np.ndarray, first_axis: int, source: np.ndarray, target: np.ndarray,
           scatter: bool) -> None:
    """Walk every point's corners at ``level`` (first axis slowest, x fastest). Gather
    (forward): ``target[point] = sum_c w_c * source[row_c]`` into a zeroed ``target``;
    scatter (backward): ``target[row_c] += w_c * source[point]``. A corner's weight is
    the product of its axes' weights in axis order (t, z, y, x); each feature's sum runs
    over the corners in that order."""
    features = source.shape[1]
    pair = features == 2  # the default: both features in registers
    one, zero = np.float32(1.0), np.float32(0.0)
    times = 1 if first_axis == 1 else 2
    for point in range(unit.shape[0]):
        if first_axis == 1:  # a static grid's points sit on time node 1: its stride or prime
            t_low, t_high, t_frac = mult[level, 0], mult[level, 0], zero
        else:
            t_low, t_high, t_frac = _axis(unit, point, 0, level, res, shift, mult, max_cell)
        z_low, z_high, z_frac = _axis(unit, point, 1, level, res, shift, mult, max_cell)
        y_low, y_high, y_frac = _axis(unit, point, 2, level, res, shift, mult, max_cell)
        x_low, x_high, x_frac = _axis(unit, point, 3, level, res, shift, mult, max_cell)
        first, second = (source[point, 0], source[point, 1]) if scatter and pair else (zero, zero)
        for a in range(times):
            row_t = t_low if a == 0 else t_high
            weight_t = (one - t_frac) if a == 0 else t_frac  # a static grid: 1 - 0, its one time corner
            for b in range(2):
                row_z = _join(row_t, z_low if b == 0 else z_high, dense)
                weight_z = weight_t * ((one - z_frac) if b == 0 else z_frac)
                for c in range(2):
                    row_y = _join(row_z, y_low if c == 0 else y_high, dense)
                    weight_y = weight_z * ((one - y_frac) if c == 0 else y_frac)
                    for d in range(2):
                        row = _join(row_y, x_low if d == 0 else x_high, dense)
                        if not dense:
                            row &= size - 1
                        weight = weight_y * ((one - x_frac) if d == 0 else x_frac)
                        if scatter and pair:
                            target[row, 0] += weight * first
                            target[row, 1] += weight * second
                        elif scatter:
                            for f in range(features):
                                target[row, f] += weight * source[point, f]
                        elif pair:
                            first += weight * source[row, 0]
                            second += weight * source[row, 1]
                        else:
                            for f in range(features):
                                target[point, f] += weight * source[row, f]
        if pair and not scatter:
            target[point, 0], target[point, 1] = first, second


@numba.njit(**_CACHE)
def encode_level(unit: np.ndarray, table: np.ndarray, level: int, res: np.ndarray, shift: np.ndarray,
                 mult: np.ndarray, dense: bool, size: int, max_cell: np.ndarray, first_axis: int) -> np.ndarray:
    """Features (points, features) of one level: the blend of its cell's corners from
    the level's ``table`` (size, features)."""
    out = np.zeros((unit.shape[0], table.shape[1]), dtype=np.float32)
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
