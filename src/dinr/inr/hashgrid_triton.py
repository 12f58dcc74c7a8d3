"""Triton kernels of the hash encoding: the CUDA path of
:class:`dinr.inr.hashgrid.HashGridEncoding`, one launch per level and direction.

Each program takes ``BLOCK`` points; for every point the row and multilinear weight of
each corner of its cell are computed in registers (the grid of the PyTorch and Numba
paths: same cells, hash and corner order, the first axis slowest) and the level's table
is read once per corner. Forward blends the corners' rows into the point's features;
backward adds ``weight * grad`` into the table's gradient by fp32 atomic adds, or, in
the deterministic variant, writes each corner's row and contribution out and sums them
by one sorted, order-fixed accumulation (PyTorch's deterministic ``index_put_``), which
is bitwise repeatable on one GPU.

Under ``TRITON_INTERPRET=1`` (set before this module is imported) the same kernels run
on CPU tensors through Triton's interpreter; the tests hold them to the Numba and
PyTorch paths there.

Per level the kernels take: ``res`` (4,) cells per axis (t, z, y, x), ``shift`` (4,) the
node offset in cells, ``mult`` (4,) node strides (dense levels) or hash primes,
``max_cell`` (4,) the last cell per axis, ``size`` the table's rows, and whether the
level is ``dense`` and the grid ``static`` (no time cells: time node 1, 8 corners).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import triton
import triton.language as tl

#: Points per program.
BLOCK = 128


@dataclass(frozen=True)
class LevelSpec:
    """One level of a grid as the kernels take it (see the module note)."""

    res: tuple[float, float, float, float]
    shift: tuple[float, float, float, float]
    mult: tuple[int, int, int, int]
    max_cell: tuple[int, int, int, int]
    size: int
    dense: bool
    static: bool


@triton.jit
def _node_and_frac(unit_ptr, points, mask, axis: tl.constexpr, res, shift, max_cell, time: tl.constexpr):
    """The lowest corner's node (int64) and the fractional position (float32) of each
    point's cell along ``axis``; time clamps its cell to the span (beyond it the end
    cells continue linearly), space takes the border cell outside the box."""
    coordinate = tl.load(unit_ptr + points * 4 + axis, mask=mask, other=0.0)
    position = coordinate * res + shift
    base = tl.floor(position)
    if time:
        base = tl.minimum(tl.maximum(base, 0.0), res - 1.0)
    frac = position - base
    node = tl.minimum(tl.maximum(base.to(tl.int64) + 1, 0), max_cell)
    return node, frac


@triton.jit
def _corner(corner: tl.constexpr, start, size, dense: tl.constexpr, static: tl.constexpr,
            node_t, frac_t, mult_t, node_z, frac_z, mult_z, node_y, frac_y, mult_y, node_x, frac_x, mult_x):
    """Table row and weight of corner ``corner`` (its bits: the first axis slowest)."""
    if static:
        bit_z: tl.constexpr = (corner >> 2) & 1
        bit_y: tl.constexpr = (corner >> 1) & 1
        bit_x: tl.constexpr = corner & 1
    else:
        bit_t: tl.constexpr = (corner >> 3) & 1
        bit_z: tl.constexpr = (corner >> 2) & 1
        bit_y: tl.constexpr = (corner >> 1) & 1
        bit_x: tl.constexpr = corner & 1
    weight = (frac_z if bit_z else 1.0 - frac_z) * (frac_y if bit_y else 1.0 - frac_y)
    weight = weight * (frac_x if bit_x else 1.0 - frac_x)
    row = start
    if dense:
        if not static:
            row = row + (node_t + bit_t) * mult_t
            weight = (frac_t if bit_t else 1.0 - frac_t) * weight
        row = row + (node_z + bit_z) * mult_z + (node_y + bit_y) * mult_y + (node_x + bit_x) * mult_x
    else:
        if not static:
            row = row ^ ((node_t + bit_t) * mult_t)
            weight = (frac_t if bit_t else 1.0 - frac_t) * weight
        row = row ^ ((node_z + bit_z) * mult_z) ^ ((node_y + bit_y) * mult_y) ^ ((node_x + bit_x) * mult_x)
        row = row & (size - 1)  # hashed levels hold 2**log2_table rows: a mask, not a 64-bit division
    return row, weight


@triton.jit
def _cell(unit_ptr, points, mask, res_t, res_z, res_y, res_x, shift_t, shift_z, shift_y, shift_x,
          max_t, max_z, max_y, max_x, static: tl.constexpr):
    if static:
        node_t = tl.zeros_like(points).to(tl.int64)
        frac_t = tl.zeros_like(points).to(tl.float32)
    else:
        node_t, frac_t = _node_and_frac(unit_ptr, points, mask, 0, res_t, shift_t, max_t, True)
    node_z, frac_z = _node_and_frac(unit_ptr, points, mask, 1, res_z, shift_z, max_z, False)
    node_y, frac_y = _node_and_frac(unit_ptr, points, mask, 2, res_y, shift_y, max_y, False)
    node_x, frac_x = _node_and_frac(unit_ptr, points, mask, 3, res_x, shift_x, max_x, False)
    return node_t, frac_t, node_z, frac_z, node_y, frac_y, node_x, frac_x


@triton.jit
def _block(n_points, features: tl.constexpr, features_pow2: tl.constexpr, block: tl.constexpr):
    """This program's points, which of them exist, the feature columns, and the mask of
    (point, column) pairs that exist."""
    points = tl.program_id(0).to(tl.int64) * block + tl.arange(0, block)
    mask = points < n_points
    columns = tl.arange(0, features_pow2)
    return points, mask, columns, mask[:, None] & (columns[None, :] < features)


@triton.jit
def _forward_kernel(unit_ptr, table_ptr, out_ptr, n_points, res_t, res_z, res_y, res_x,
                    shift_t, shift_z, shift_y, shift_x, mult_t, mult_z, mult_y, mult_x,
                    max_t, max_z, max_y, max_x, start, size,
                    dense: tl.constexpr, static: tl.constexpr, features: tl.constexpr,
                    features_pow2: tl.constexpr, block: tl.constexpr):
    points, mask, columns, both = _block(n_points, features, features_pow2, block)
    node_t, frac_t, node_z, frac_z, node_y, frac_y, node_x, frac_x = _cell(
        unit_ptr, points, mask, res_t, res_z, res_y, res_x, shift_t, shift_z, shift_y, shift_x,
        max_t, max_z, max_y, max_x, static)
    total = tl.zeros((block, features_pow2), dtype=tl.float32)
    corners: tl.constexpr = 8 if static else 16
    for corner in tl.static_range(corners):
        row, weight = _corner(corner, start, size, dense, static, node_t, frac_t, mult_t, node_z, frac_z, mult_z,
                              node_y, frac_y, mult_y, node_x, frac_x, mult_x)
        values = tl.load(table_ptr + row[:, None] * features + columns[None, :], mask=both, other=0.0)
        total += weight[:, None] * values
    tl.store(out_ptr + points[:, None] * features + columns[None, :], total, mask=both)


@triton.jit
def _backward_kernel(unit_ptr, grad_ptr, table_grad_ptr, rows_ptr, parts_ptr, n_points, res_t, res_z, res_y, res_x,
                     shift_t, shift_z, shift_y, shift_x, mult_t, mult_z, mult_y, mult_x,
                     max_t, max_z, max_y, max_x, start, size,
                     dense: tl.constexpr, static: tl.constexpr, features: tl.constexpr,
                     features_pow2: tl.constexpr, block: tl.constexpr, atomic: tl.constexpr):
    """``atomic``: add ``weight * grad`` into ``table_grad``; else write each corner's
    row to ``rows`` (corners, points) and its contribution to ``parts`` (corners, points,
    features) for an order-fixed sum."""
    points, mask, columns, both = _block(n_points, features, features_pow2, block)
    node_t, frac_t, node_z, frac_z, node_y, frac_y, node_x, frac_x = _cell(
        unit_ptr, points, mask, res_t, res_z, res_y, res_x, shift_t, shift_z, shift_y, shift_x,
        max_t, max_z, max_y, max_x, static)
    grad = tl.load(grad_ptr + points[:, None] * features + columns[None, :], mask=both, other=0.0)
    corners: tl.constexpr = 8 if static else 16
    for corner in tl.static_range(corners):
        row, weight = _corner(corner, start, size, dense, static, node_t, frac_t, mult_t, node_z, frac_z, mult_z,
                              node_y, frac_y, mult_y, node_x, frac_x, mult_x)
        part = weight[:, None] * grad
        if atomic:
            tl.atomic_add(table_grad_ptr + row[:, None] * features + columns[None, :], part, mask=both)
        else:
            tl.store(rows_ptr + corner * n_points + points, row, mask=mask)
            tl.store(parts_ptr + (corner * n_points + points[:, None]) * features + columns[None, :], part, mask=both)


def _arguments(spec: LevelSpec) -> tuple[object, ...]:
    start = spec.mult[0] if spec.static else 0  # a static grid's time node (1) times its stride or prime
    return (*spec.res, *spec.shift, *spec.mult, *spec.max_cell, start, spec.size)


def _launch(points: int) -> tuple[int]:
    return (triton.cdiv(points, BLOCK),)


def encode_level(unit: torch.Tensor, table: torch.Tensor, spec: LevelSpec) -> torch.Tensor:
    """Features (points, features) of one level from unit-box coordinates (points, 4)
    float32 and the level's ``table`` (size, features) float32."""
    points, features = unit.shape[0], table.shape[1]
    out = torch.empty((points, features), dtype=torch.float32, device=unit.device)
    if points:
        _forward_kernel[_launch(points)](unit, table, out, points, *_arguments(spec), dense=spec.dense,
                                         static=spec.static, features=features,
                                         features_pow2=triton.next_power_of_2(features), block=BLOCK)
    return out


def encode_level_backward(unit: torch.Tensor, grad: torch.Tensor, spec: LevelSpec, deterministic: bool) -> torch.Tensor:
    """Gradient (size, features) of one level's table from its features' gradient
    ``grad`` (points, features): atomic adds, or with ``deterministic`` an order-fixed
    sum of the corners' contributions (bitwise repeatable)."""
    points, features = grad.shape
    table_grad = torch.zeros((spec.size, features), dtype=torch.float32, device=grad.device)
    if not points:
        return table_grad
    corners = 8 if spec.static else 16
    if deterministic:
        rows = torch.empty((corners, points), dtype=torch.int64, device=grad.device)
        parts = torch.empty((corners, points, features), dtype=torch.float32, device=grad.device)
    else:
        rows = parts = table_grad  # unused by the atomic variant
    _backward_kernel[_launch(points)](unit, grad, table_grad, rows, parts, points, *_arguments(spec), dense=spec.dense,
                                      static=spec.static, features=features,
                                      features_pow2=triton.next_power_of_2(features), block=BLOCK,
                                      atomic=not deterministic)
    if deterministic:
        _sorted_sum(table_grad, rows.reshape(-1), parts.reshape(-1, features))
    return table_grad


def _sorted_sum(target: torch.Tensor, rows: torch.Tensor, parts: torch.Tensor) -> None:
    """``target[rows[i]] += parts[i]`` in an order fixed by the rows (PyTorch's
    deterministic ``index_put_``: it sorts the indices first), whatever the caller's
    setting of deterministic algorithms."""
    enabled = torch.are_deterministic_algorithms_enabled()
    torch.use_deterministic_algorithms(True)
    try:
        target.index_put_((rows,), parts, accumulate=True)
    finally:
        torch.use_deterministic_algorithms(enabled)
