"""Multiresolution hash encoding of (t, z, y, x) (Instant-NGP style), in plain PyTorch.

Level ``l`` lays a regular grid over the normalised box: ``time_res[l]`` cells across
the scan and ``space_res[l]`` cells across the cylinder diameter (the same cell size in
z, y and x). Each of the 16 corners of the 4D cell around a point looks up a learned
feature vector — directly when the level's grid fits in the table, through a spatial
hash otherwise — and the corners are blended by quadrilinear weights (a static grid,
with no cells in time, blends the 8 corners of its 3D cell). The levels' features are
concatenated. On the CPU each level is one pass of a Numba kernel
(:mod:`dinr.inr.hashgrid_cpu`); on CUDA one launch of a Triton kernel
(:mod:`dinr.inr.hashgrid_triton`) per level and direction, the corners in registers;
elsewhere (or without Triton) the corners of all levels are built together and each
level's table is read by one fused gather-and-blend (``embedding_bag``), the reference
the kernels are tested against. Fine
levels resolve pixel-sharp edges that a band-limited Fourier encoding needs many steps
(and a high bandwidth) to approach.
"""

from __future__ import annotations

import itertools
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from dinr.inr import hashgrid_cpu

#: Primes of the Instant-NGP spatial hash, one per axis (t, z, y, x).
_PRIMES = (1, 2654435761, 805459861, 3674653429)


def level_cells(space_res: np.ndarray, time_res: np.ndarray, extent: tuple[float, float, float]) -> np.ndarray:
    """Cells per axis ``(levels, 4)`` in (t, z, y, x) of levels with ``time_res`` cells in
    time and ``space_res`` across the diameter, in a box of half-sides ``extent``."""
    half = np.asarray(extent, dtype=np.float64)
    return np.concatenate([np.asarray(time_res, dtype=np.float64)[:, None],
                           np.ceil(np.asarray(space_res, dtype=np.float64)[:, None] * half[None, :])], axis=1)


def level_nodes(cells: np.ndarray) -> np.ndarray:
    """Grid nodes of each level of ``cells`` per axis (:func:`level_cells`; corner indices
    run from 1 to cells + 2): the table entries a level needs to be stored without collisions."""
    return np.prod(cells + 3, axis=1)


class HashGridEncoding(nn.Module):
    """Concatenated features (..., levels * features) of (..., 4) coordinates.

    Coordinates: ``t`` in [0, 1]; ``z, y, x`` in the box ``[-extent, extent]`` per axis
    (normalised by half the slice width: ``extent = (rows / n, 1, 1)`` for a parallel scan of
    ``rows`` slices of ``n`` pixels). Level ``l`` has ``time_res[l]`` cells across the
    normalised ``time_span`` ``(start, end)`` and cells of side ``2 / space_res[l]`` in space
    (the same on every spatial axis), so a thin slab gets few cells in z. Before ``start``
    and after ``end`` the features continue the first and last time cell linearly. A
    level's table holds one entry per grid node while that fits in ``2**log2_table``
    entries (no collisions), else that many hashed entries.

    Each level has its own table (``tables[l]``, a parameter of its own) and its own
    autograd node, so backward finishes the finest level's gradient first and the
    allreduce of its bucket runs while the coarser levels' gradients are computed.
    """

    def __init__(self, space_res: np.ndarray, time_res: np.ndarray, extent: tuple[float, float, float],
                 features: int, log2_table: int, seed: int, time_span: tuple[float, float] = (0.0, 1.0)) -> None:
        super().__init__()
        if not time_span[0] < time_span[1]:
            raise ValueError(f"hash grid time span must have start < end, found {time_span}")
        self.levels = len(space_res)
        self.features = features
        half = np.asarray(extent, dtype=np.float64)
        res = level_cells(space_res, time_res, extent)
        self.register_buffer("res", torch.as_tensor(res, dtype=torch.float32))  # (levels, 4) cells per axis
        self.register_buffer("extent", torch.as_tensor(half, dtype=torch.float32))
        self.register_buffer("time_span", torch.as_tensor(time_span, dtype=torch.float32), persistent=False)
        # Spatial nodes sit half a cell in, so a level with one cell per pixel has its
        # nodes on the voxel centres (and detector rows), which it then represents exactly.
        self.register_buffer("shift", torch.tensor([0.0, 0.5, 0.5, 0.5]))
        nodes = level_nodes(res)
        dense = nodes <= 2**log2_table
        sizes = np.where(dense, nodes, 2**log2_table).astype(np.int64)
        strides = np.cumprod(np.concatenate([np.ones((self.levels, 1)), res[:, :0:-1] + 3], axis=1), axis=1)[:, ::-1]
        multipliers = np.where(dense[:, None], strides, np.asarray(_PRIMES)[None, :]).astype(np.int64)
        self.register_buffer("multipliers", torch.as_tensor(multipliers))
        # Dense levels (one entry per node) come first: nodes grow with the level.
        self.dense_levels = int(np.count_nonzero(dense))
        if not np.all(dense[:self.dense_levels]):
            raise ValueError(f"hash grid levels must grow in resolution: dense levels {dense.tolist()}")
        # A static grid (no time cells) blends only the 8 spatial corners of its cells.
        self.axes = 1 if np.all(res[:, 0] == 0) else 0
        bits = np.array(list(itertools.product((0, 1), repeat=4 - self.axes)), dtype=np.int64)  # (corners, axes)
        # A static grid's points all sit on time node 1 (0 cells in time): its share of the index.
        static_node = multipliers[:, 0] if self.axes else np.zeros(self.levels, dtype=np.int64)
        dense_corner = bits @ multipliers[:self.dense_levels, self.axes:].T + static_node[:self.dense_levels]
        self.register_buffer("dense_corner", torch.as_tensor(dense_corner.T.copy()), persistent=False)
        self.register_buffer("dense_mult", torch.as_tensor(multipliers[:self.dense_levels, self.axes:]),
                             persistent=False)
        self.register_buffer("max_cell_all", torch.as_tensor(res + 1, dtype=torch.int64), persistent=False)
        self.register_buffer("sizes", torch.as_tensor(sizes))
        generator = torch.Generator().manual_seed(seed)
        initial = (torch.rand(int(sizes.sum()), features, generator=generator) * 2 - 1) * 1e-4
        self.tables = nn.ParameterList([nn.Parameter(part.clone()) for part in torch.split(initial, sizes.tolist())])
        self.out_features: int = self.levels * features
        self._triton_specs: list[Any] | None = None
        #: The implementation of forward: auto (by device, :meth:`path_for`), cpu, triton or torch.
        self.path = "auto"

    def _load_from_state_dict(self, state_dict: dict[str, Any], prefix: str, *args: Any, **kwargs: Any) -> None:
        """Fields trained before the tables were split per level held one flat ``table``
        (and the levels' ``offsets`` into it)."""
        state_dict.pop(prefix + "offsets", None)
        single = state_dict.pop(prefix + "table", None)
        if single is not None:
            for level, part in enumerate(torch.split(single, self.sizes.tolist())):
                state_dict[f"{prefix}tables.{level}"] = part
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def unit_coordinates(self, coords: torch.Tensor) -> torch.Tensor:
        """(points, 4) coordinates mapped into the unit box of the grid: [0, 1] across the
        time span (outside it before its start and after its end), [0, 1] across the box."""
        start, end = self.time_span
        return torch.cat([(coords[:, :1] - start) / (end - start), (coords[:, 1:] + self.extent) / (2.0 * self.extent)],
                         dim=1)

    def corner_weights(self, frac: torch.Tensor) -> torch.Tensor:
        """Multilinear weights (corners, levels, points) of the corners of each point's
        cell from its fractional position ``frac`` (axes, levels, points) in the cell;
        the first axis varies slowest over the corners, x fastest. Corner-major, so that
        every operation runs along the long points axis."""
        axes, levels, points = frac.shape
        weight = torch.stack([1.0 - frac[0], frac[0]])  # (2, levels, points)
        for axis in range(1, axes):  # outer products over the axes
            axis_weight = torch.stack([1.0 - frac[axis], frac[axis]])
            weight = (weight[:, None] * axis_weight[None]).reshape(-1, levels, points)
        return weight

    def corner_entries(self, cell: torch.Tensor) -> torch.Tensor:
        """Rows of each level's table (corners, levels, points) at the corners of each point's cell,
        ``cell`` (axes, levels, points) its lowest corner's node on every axis. Dense
        levels index their nodes directly; hashed levels XOR the axes' node times a
        prime."""
        dense = self.dense_levels
        parts = []
        if dense:
            node = (cell[:, :dense] * self.dense_mult.T[:, :, None]).sum(dim=0)  # (dense levels, points)
            parts.append(node[None] + self.dense_corner.T[:, :, None])
        if dense < self.levels:
            primes = self.multipliers[dense:, self.axes:].T[:, :, None]  # (axes, hashed levels, 1)
            hashed = cell[:, dense:]
            index = torch.stack([hashed[0], hashed[0] + 1]) * primes[0]
            if self.axes:  # static: the time node (1) times its prime (1) goes first
                index = index ^ 1
            for axis in range(1, len(hashed)):
                axis_hash = torch.stack([hashed[axis], hashed[axis] + 1]) * primes[axis]
                index = (index[:, None] ^ axis_hash[None]).reshape(-1, *hashed.shape[1:])
            parts.append(index % self.sizes[dense:, None])
        return parts[0] if len(parts) == 1 else torch.cat(parts, dim=1)

    def forward(self, coords: torch.Tensor) -> torch.Tensor:
        shape = coords.shape[:-1]
        unit = self.unit_coordinates(coords.reshape(-1, 4).float())
        features = {"cpu": self.encode_cpu, "triton": self.encode_triton,
                    "torch": self.encode_torch}[self.path_for(unit.device)](unit)
        return features.reshape(*shape, self.out_features)

    def path_for(self, device: torch.device) -> str:
        """The implementation :meth:`forward` uses on ``device``: ``self.path`` when it is
        not ``auto`` (benchmarks compare them), else the Numba kernels on the CPU, the
        Triton kernels on CUDA, PyTorch operations elsewhere or for other dtypes."""
        if self.path != "auto":
            return self.path
        float32 = self.tables[0].dtype == torch.float32
        if device.type == "cpu" and float32:
            return "cpu"
        if device.type == "cuda" and float32 and triton_available():
            return "triton"
        return "torch"

    def encode_cpu(self, unit: torch.Tensor) -> torch.Tensor:
        """Features (points, levels * features) of unit-box coordinates (points, 4) by
        the CPU kernels, one autograd node per level."""
        unit = unit.contiguous()
        levels = [CpuHashGridLevel.apply(table, unit, self, level) for level, table in enumerate(self.tables)]
        return torch.cat(levels, dim=1)

    def encode_triton(self, unit: torch.Tensor) -> torch.Tensor:
        """Features (points, levels * features) of unit-box coordinates (points, 4) by
        the Triton kernels (CUDA tensors; CPU tensors under ``TRITON_INTERPRET=1``), one
        autograd node per level; backward is order-fixed under PyTorch's deterministic
        algorithms (``train.deterministic``), else atomic."""
        unit = unit.contiguous()
        if self._triton_specs is None:  # read from the buffers once: no host round trip per step
            self._triton_specs = [self.level_spec(level) for level in range(self.levels)]
        levels = [TritonHashGridLevel.apply(table, unit, spec) for table, spec in zip(self.tables, self._triton_specs)]
        return torch.cat(levels, dim=1)

    def level_spec(self, level: int) -> Any:
        """Level ``level`` as :mod:`dinr.inr.hashgrid_triton`'s kernels take it."""
        from dinr.inr.hashgrid_triton import LevelSpec

        def row(values: torch.Tensor, kind: type) -> tuple[Any, ...]:
            return tuple(kind(v) for v in values.tolist())

        return LevelSpec(res=row(self.res[level], float), shift=row(self.shift, float),
                         mult=row(self.multipliers[level], int), max_cell=row(self.max_cell_all[level], int),
                         size=int(self.sizes[level]), dense=level < self.dense_levels, static=bool(self.axes))

    def encode_torch(self, unit: torch.Tensor) -> torch.Tensor:
        """The same features in PyTorch operations (any device), one gather per level."""
        index, weight = self.corners(unit)
        levels = [GatherBlend.apply(table, index[:, level], weight[:, level]) for level, table in enumerate(self.tables)]
        return torch.cat(levels, dim=1)

    def kernel_arguments(self, level: int) -> tuple[object, ...]:
        """Level ``level`` of the grid as :mod:`dinr.inr.hashgrid_cpu`'s kernels take it."""
        return (level, self.res.numpy(), self.shift.numpy(), self.multipliers.numpy(), level < self.dense_levels,
                int(self.sizes[level]), self.max_cell_all.numpy(), self.axes)

    def corners(self, unit: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Table rows and multilinear weights (corners, levels, points) of the corners of
        each point's cell, from unit-box coordinates (points, 4)."""
        unit = unit[:, self.axes:].T  # (axes, points)
        pos = unit[:, None, :] * self.res.T[self.axes:, :, None] + self.shift[self.axes:, None, None]
        base = torch.floor(pos)  # (axes, levels, points)
        if not self.axes:  # time: instants beyond the span extrapolate the first or last cell linearly
            base[0] = torch.minimum(torch.clamp(base[0], min=0.0), self.res[:, 0, None] - 1.0)
        # +1 keeps indices non-negative at the box's edges; points outside it take the border cell
        cell = torch.minimum(torch.clamp(base.long() + 1, min=0), self.max_cell_all.T[self.axes:, :, None])
        return self.corner_entries(cell), self.corner_weights(pos - base)


class CpuHashGridLevel(torch.autograd.Function):
    """One level of the encoding by :mod:`dinr.inr.hashgrid_cpu`'s kernels: (points,
    features) from the level's table and unit-box coordinates (points, 4) on the CPU."""

    @staticmethod
    def forward(ctx: torch.autograd.function.FunctionCtx, table: torch.Tensor, unit: torch.Tensor,
                grid: HashGridEncoding, level: int) -> torch.Tensor:
        ctx.save_for_backward(unit)
        ctx.arguments = grid.kernel_arguments(level)
        return torch.from_numpy(hashgrid_cpu.encode_level(unit.detach().numpy(), table.detach().numpy(),
                                                          *ctx.arguments))

    @staticmethod
    def backward(ctx: torch.autograd.function.FunctionCtx,
                 grad: torch.Tensor) -> tuple[torch.Tensor, None, None, None]:
        (unit,) = ctx.saved_tensors
        table_grad = hashgrid_cpu.encode_level_backward(unit.numpy(), grad.contiguous().numpy(), *ctx.arguments)
        return torch.from_numpy(table_grad), None, None, None


def triton_available() -> bool:
    """Whether Triton can be imported (it ships with PyTorch's CUDA wheels)."""
    try:
        import triton  # noqa: F401
    except ImportError:
        return False
    return True


class TritonHashGridLevel(torch.autograd.Function):
    """One level of the encoding by :mod:`dinr.inr.hashgrid_triton`'s kernels: (points,
    features) from the level's table and unit-box coordinates (points, 4)."""

    @staticmethod
    def forward(ctx: torch.autograd.function.FunctionCtx, table: torch.Tensor, unit: torch.Tensor,
                spec: Any) -> torch.Tensor:
        from dinr.inr import hashgrid_triton

        ctx.save_for_backward(unit)
        ctx.spec = spec
        return hashgrid_triton.encode_level(unit, table.detach().contiguous(), spec)

    @staticmethod
    def backward(ctx: torch.autograd.function.FunctionCtx, grad: torch.Tensor) -> tuple[torch.Tensor, None, None]:
        from dinr.inr import hashgrid_triton

        (unit,) = ctx.saved_tensors
        deterministic = torch.are_deterministic_algorithms_enabled()
        return hashgrid_triton.encode_level_backward(unit, grad.contiguous(), ctx.spec, deterministic), None, None


class GatherBlend(torch.autograd.Function):
    """``out[p] = sum_c weight[c, p] * table[index[c, p]]``: (points, features) from
    ``table`` (entries, features), ``index`` and ``weight`` (corners, points).

    Forward is one fused gather-and-blend (``embedding_bag``); backward scatters
    ``weight * grad`` into the table's gradient one feature at a time along the long
    points axis (PyTorch's own embedding backward sorts the indices first). No gradient
    flows to the weights (coordinates are data)."""

    @staticmethod
    def forward(ctx: torch.autograd.function.FunctionCtx, table: torch.Tensor, index: torch.Tensor,
                weight: torch.Tensor) -> torch.Tensor:
        weight = weight.to(table.dtype)
        ctx.save_for_backward(index, weight)
        ctx.entries = table.shape[0]
        return F.embedding_bag(index.T.contiguous(), table, mode="sum", per_sample_weights=weight.T.contiguous())

    @staticmethod
    def backward(ctx: torch.autograd.function.FunctionCtx, grad: torch.Tensor) -> tuple[torch.Tensor, None, None]:
        index, weight = ctx.saved_tensors
        flat = index.reshape(-1)
        columns = []
        for g in grad.T.contiguous():
            spread = (weight * g[None, :]).reshape(-1)
            if torch.are_deterministic_algorithms_enabled():  # sorted accumulation: same sum order every run
                columns.append(grad.new_zeros(ctx.entries).index_put_((flat,), spread, accumulate=True))
            else:  # atomic adds on a GPU
                columns.append(grad.new_zeros(ctx.entries).index_add_(0, flat, spread))
        return torch.stack(columns, dim=1), None, None
