"""The neural field: encodings, interpolation, rendering."""

from __future__ import annotations

import dataclasses
import logging
import math

import numpy as np
import pytest
import torch

from conftest import TINY_TRAIN
from dinr.geometry.parallel import ParallelGeometry
from dinr.inr.build import AUTO_TABLE_LOG2, build_field, field_spec, table_log2
from dinr.inr.fourier import FourierFeatures
from dinr.inr.field import AttenuationField
from dinr.inr.hashgrid import HashGridEncoding
from dinr.inr.render import SliceRenderer
from dinr.inr.spacetime import StaticAndDynamicEncoding
from dinr.inr.time_ends import TimeEnds
from dinr.train.setup import warn_if_motion_unresolved


def _grid(log2_table: int = 16) -> HashGridEncoding:
    return HashGridEncoding(np.array([4.0, 16.0]), np.array([2.0, 8.0]), (0.25, 1.0, 1.0), 3, log2_table, seed=0)


def _points(n: int, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    p = torch.rand(n, 4, generator=g) * 2 - 1
    p[:, 0] = (p[:, 0] + 1) / 2
    p[:, 1] *= 0.25
    return p


def test_dense_levels_map_distinct_nodes_to_distinct_entries() -> None:
    grid = _grid()
    assert grid.dense_levels == grid.levels
    unit = grid.unit_coordinates(_points(4000))
    entries, _ = grid.corners(unit)  # (corners, levels, points)
    for level in range(grid.levels):
        index = entries[:, level].T
        base = torch.floor(unit * grid.res[level] + grid.shift).long()
        offsets = torch.tensor([[(c >> (3 - a)) & 1 for a in range(4)] for c in range(16)])
        nodes = (base[:, None, :] + offsets[None]).reshape(-1, 4)
        pairs = torch.unique(torch.cat([nodes, index.reshape(-1, 1)], dim=1), dim=0)
        assert len(pairs) == len(torch.unique(nodes, dim=0)) == len(torch.unique(index))


def test_interpolation_weights_are_a_partition_of_unity_and_continuous() -> None:
    grid = _grid(log2_table=10)  # the fine level is hashed here
    assert grid.dense_levels < grid.levels
    unit = grid.unit_coordinates(_points(500))
    _, weight = grid.corners(unit)
    torch.testing.assert_close(weight.sum(dim=0), torch.ones(grid.levels, 500))
    with torch.no_grad():
        for table in grid.tables:
            table.normal_()
        a = _points(200, seed=1)
        b = a + 1e-5
        assert torch.max(torch.abs(grid(a) - grid(b))) < 1e-2


@pytest.mark.parametrize("time_res, log2_table, span", [((2.0, 8.0), 16, (0.0, 1.0)), ((2.0, 8.0), 10, (0.0, 1.0)),
                                                         ((1.0, 7.0), 16, (0.0625, 0.9375)),
                                                         ((1.0, 7.0), 10, (0.0625, 0.9375)),
                                                         ((0.0, 0.0), 16, (0.0, 1.0)), ((0.0, 0.0), 9, (0.0, 1.0))])
@pytest.mark.parametrize("features", [2, 3])
def test_cpu_kernels_match_the_torch_path(time_res: tuple[float, float], log2_table: int,
                                          span: tuple[float, float], features: int) -> None:
    """The Numba kernels (CPU) and the PyTorch formulation (GPUs) are one grid: same
    features and table gradient, for dense and hashed levels, 4D and static grids, time
    spans of the whole scan or part of it, and points outside the box (they take the
    border cell) or the time span (they extrapolate the end cells)."""
    grid = HashGridEncoding(np.array([4.0, 16.0]), np.array(time_res), (0.25, 1.0, 1.0), 3, log2_table, seed=0,
                            time_span=span)
    with torch.no_grad():
        for table in grid.tables:
            table.normal_()
    points = _points(3000) * 1.1
    assert grid.corners(grid.unit_coordinates(points))[0].shape[0] == (8 if time_res[0] == 0 else 16)
    torch_path = grid.encode_torch(grid.unit_coordinates(points))
    upstream = torch.randn_like(torch_path)
    (torch_path * upstream).sum().backward()
    torch_grads = [table.grad.clone() for table in grid.tables]
    grid.zero_grad()
    kernels = grid(points)
    (kernels * upstream).sum().backward()
    torch.testing.assert_close(kernels, torch_path, rtol=1e-5, atol=1e-5)
    for table, torch_grad in zip(grid.tables, torch_grads):
        torch.testing.assert_close(table.grad, torch_grad, rtol=1e-5, atol=1e-4)


def test_instants_beyond_the_time_span_continue_its_end_cells_linearly() -> None:
    """Before the span's start and after its end, the features are the straight line
    through the first (last) cell's two nodes, at every level, not a held value."""
    span = (0.25, 0.75)
    grid = HashGridEncoding(np.array([4.0, 16.0]), np.array([1.0, 4.0]), (0.25, 1.0, 1.0), 3, 16, seed=0,
                            time_span=span)
    with torch.no_grad():
        for table in grid.tables:
            table.normal_()
    point = _points(1)[0]

    def at(t: float) -> torch.Tensor:
        return grid(torch.cat([torch.tensor([t]), point[1:]])[None])[0].detach()

    fine_cell = (span[1] - span[0]) / 4  # the finest level's cell, in normalised time
    for inside, edge, outside in ((span[0] + fine_cell / 2, span[0], 0.0), (span[1] - fine_cell / 2, span[1], 1.0)):
        slope = (at(edge) - at(inside)) / (edge - inside)
        torch.testing.assert_close(at(outside), at(edge) + slope * (outside - edge), rtol=1e-4, atol=1e-5)
    assert not torch.allclose(at(0.0), at(span[0]))


def test_auto_time_grid_runs_between_the_centres_of_the_first_and_last_half_turns() -> None:
    geometry = ParallelGeometry(rows=2, cols=32, center=16.0, n=32)
    spec = field_spec(TINY_TRAIN, geometry, 8 * np.pi, 0.01)  # 4 turns: 8 half-turns
    assert spec["time_resolution"] == 7
    np.testing.assert_allclose(spec["time_span"], (1 / 16, 15 / 16))
    assert field_spec(TINY_TRAIN, geometry, np.pi, 0.01)["time_resolution"] == 0  # one half-turn: no motion
    explicit = field_spec(dataclasses.replace(TINY_TRAIN, time_resolution=5), geometry, 8 * np.pi, 0.01)
    assert (explicit["time_resolution"], explicit["time_span"]) == (5, (0.0, 1.0))
    finer = field_spec(dataclasses.replace(TINY_TRAIN, time_cells_per_half_turn=2), geometry, 8 * np.pi, 0.01)
    assert (finer["time_resolution"], finer["time_span"]) == (14, spec["time_span"])  # nodes every quarter-turn


def test_a_scan_of_one_half_turn_warns_that_motion_is_not_resolved(caplog: pytest.LogCaptureFixture) -> None:
    geometry = ParallelGeometry(rows=2, cols=32, center=16.0, n=32)
    for span, warned in ((np.pi, True), (4 * np.pi, False)):
        caplog.clear()
        with caplog.at_level(logging.WARNING, logger="dinr.train.setup"):
            warn_if_motion_unresolved(TINY_TRAIN, field_spec(TINY_TRAIN, geometry, span, 0.01), span)
        assert ("too little to resolve motion" in caplog.text) == warned
    static = dataclasses.replace(TINY_TRAIN, time_resolution=0)  # asked for: no warning
    caplog.clear()
    warn_if_motion_unresolved(static, field_spec(static, geometry, np.pi, 0.01), np.pi)
    assert not caplog.text


def test_static_levels_add_a_time_independent_grid_to_a_moving_field() -> None:
    geometry = ParallelGeometry(rows=2, cols=32, center=16.0, n=32)
    settings = dataclasses.replace(TINY_TRAIN, hash_static_levels=3)
    field = build_field(settings, field_spec(settings, geometry, 4 * np.pi, 0.01))
    encoding = field.encoding
    assert isinstance(encoding, StaticAndDynamicEncoding)
    assert encoding.out_features == (TINY_TRAIN.hash_levels + 3) * TINY_TRAIN.hash_features
    p = _points(50)
    q = p.clone()
    q[:, 0] = 1 - q[:, 0]
    torch.testing.assert_close(encoding.static(p), encoding.static(q))
    assert not torch.allclose(encoding.dynamic(p), encoding.dynamic(q))
    static_scan = dataclasses.replace(settings, time_resolution=0)
    assert isinstance(build_field(static_scan, field_spec(static_scan, geometry, 4 * np.pi, 0.01)).encoding,
                      HashGridEncoding)


def test_slow_levels_add_a_grid_of_one_time_cell_per_turn() -> None:
    geometry = ParallelGeometry(rows=2, cols=32, center=16.0, n=32)
    settings = dataclasses.replace(TINY_TRAIN, hash_static_levels=2, hash_slow_levels=3)
    spec = field_spec(settings, geometry, 8 * np.pi, 0.01)  # 8 half-turns, grid nodes at centres of the end ones
    assert spec["slow_time_resolution"] == 4  # 7 half-turns between the end nodes: one cell per turn, rounded
    encoding = build_field(settings, spec).encoding
    assert isinstance(encoding, StaticAndDynamicEncoding)
    assert encoding.out_features == (TINY_TRAIN.hash_levels + 2 + 3) * TINY_TRAIN.hash_features
    assert encoding.slow.res[:, 0].tolist() == [4.0, 4.0, 4.0]
    assert encoding.slow.res[-1, 1:].tolist() == encoding.static.res[-1, 1:].tolist()  # as sharp in space
    p = _points(50)
    q = p.clone()
    q[:, 0] = 1 - q[:, 0]
    assert not torch.allclose(encoding.slow(p), encoding.slow(q))
    slow_only = dataclasses.replace(settings, hash_static_levels=0)
    encoding = build_field(slow_only, field_spec(slow_only, geometry, 8 * np.pi, 0.01)).encoding
    assert encoding.static is None and encoding.out_features == (TINY_TRAIN.hash_levels + 3) * TINY_TRAIN.hash_features


def test_table_auto_holds_the_largest_level_without_hashing() -> None:
    settings = dataclasses.replace(TINY_TRAIN, hash_log2_table="auto", hash_static_levels=2)
    small = ParallelGeometry(rows=2, cols=32, center=16.0, n=32)
    spec = field_spec(settings, small, 4 * np.pi, 0.01)
    assert table_log2(settings, spec) == AUTO_TABLE_LOG2[0]  # a small scan keeps the floor
    wide = ParallelGeometry(rows=16, cols=256, center=128.0, n=256)
    spec = field_spec(settings, wide, 8 * np.pi, 0.01)  # finest 4D level: 10 x 259^2 x 19 nodes
    log2 = table_log2(settings, spec)
    assert log2 == math.ceil(math.log2(10 * 259**2 * 19)) == 24
    field = build_field(dataclasses.replace(settings, hash_levels=2, hash_static_levels=1), spec)
    assert field.encoding.dynamic.dense_levels == 2 and field.encoding.static.dense_levels == 1
    fixed = dataclasses.replace(settings, hash_levels=2, hash_static_levels=1, hash_log2_table=20)
    assert build_field(fixed, spec).encoding.dynamic.dense_levels == 1  # the fixed 2^20 hashes the finest level
    huge = field_spec(settings, ParallelGeometry(rows=64, cols=1024, center=512.0, n=1024), 8 * np.pi, 0.01)
    assert table_log2(settings, huge) == AUTO_TABLE_LOG2[1]


def test_static_field_ignores_time() -> None:
    grid = HashGridEncoding(np.array([8.0]), np.array([0.0]), (1.0, 1.0, 1.0), 2, 14, seed=0)
    fourier = FourierFeatures(8, sigma_t=0.0, sigma_s=2.0, seed=0)
    p = _points(50)
    q = p.clone()
    q[:, 0] = 1 - q[:, 0]
    with torch.no_grad():
        for table in grid.tables:
            table.normal_()
    for encoding in (grid, fourier):
        torch.testing.assert_close(encoding(p), encoding(q))


def test_render_shape_mask_and_supersampled_constant() -> None:
    class Constant(torch.nn.Module):
        out_features = 1

        def forward(self, coords: torch.Tensor) -> torch.Tensor:
            return torch.ones(*coords.shape[:-1], 1)

    field = AttenuationField(Constant(), width=1, hidden_layers=1, scale=1.0)
    for p in field.mlp.parameters():
        torch.nn.init.constant_(p, 0.0)
    field.mlp[-1].bias.data.fill_(0.02)
    geometry = ParallelGeometry(rows=3, cols=20, center=10.0, n=20)
    render = SliceRenderer(field, geometry, chunk=37, supersample=2)
    volume = np.stack([[render(t, r) for r in range(3)] for t in (0.1, 0.9)])
    assert volume.shape == (2, 3, 20, 20)
    inside = geometry.cylinder_mask()
    np.testing.assert_allclose(volume[:, :, inside], 0.02, rtol=1e-6)
    assert np.all(volume[:, :, ~inside] == 0)


def test_a_field_saved_with_one_flat_table_still_loads() -> None:
    """Checkpoints from before the per-level tables held one ``table`` of all levels."""
    grid = _grid(log2_table=10)
    with torch.no_grad():
        for table in grid.tables:
            table.normal_()
    old = {k: v for k, v in grid.state_dict().items() if not k.startswith("tables.")}
    old["table"] = torch.cat(list(grid.tables))
    old["offsets"] = torch.cumsum(grid.sizes, 0) - grid.sizes
    loaded = _grid(log2_table=10)
    loaded.load_state_dict(old)
    points = _points(100)
    torch.testing.assert_close(loaded(points), grid(points), rtol=0, atol=0)


def _ends(mode: str) -> TimeEnds:
    grid = HashGridEncoding(np.array([4.0, 16.0]), np.array([2.0, 6.0]), (0.25, 1.0, 1.0), 3, 16, seed=0,
                            time_span=(0.125, 0.875))
    with torch.no_grad():
        for table in grid.tables:
            table.normal_(generator=torch.Generator().manual_seed(1))
    return TimeEnds(grid, mode)


def test_time_ends_hold_blend_or_run_on() -> None:
    p = _points(400)
    inside = (p[:, 0] >= 0.125) & (p[:, 0] <= 0.875)
    clamped = p.clone()
    clamped[:, 0] = p[:, 0].clamp(0.125, 0.875)
    held, fitted = _ends("held"), _ends("fitted")
    torch.testing.assert_close(held(p), held.grid(clamped))
    linear, at_node = fitted.grid(p), fitted.grid(clamped)
    assert not torch.allclose(linear[~inside], at_node[~inside])
    torch.testing.assert_close(fitted(p), 0.5 * (linear + at_node))  # both weights start at 0.5
    with torch.no_grad():
        fitted.end_logits.copy_(torch.tensor([-30.0, 30.0]))  # first end held, last end linear
    expected = torch.where((p[:, :1] < 0.125), at_node, linear)
    torch.testing.assert_close(fitted(p), expected)
    torch.testing.assert_close(fitted(p[inside]), linear[inside])  # inside the nodes: the grid itself


def test_each_end_weight_learns_from_its_own_end_only() -> None:
    fitted = _ends("fitted")
    p = _points(400)
    early = p[p[:, 0] < 0.125]
    fitted(early).sum().backward()
    assert fitted.end_logits.grad[0] != 0 and fitted.end_logits.grad[1] == 0


def test_fitted_ends_are_part_of_the_field() -> None:
    geometry = ParallelGeometry(rows=2, cols=32, center=16.0, n=32)
    settings = dataclasses.replace(TINY_TRAIN, hash_static_levels=3, time_ends="fitted")
    field = build_field(settings, field_spec(settings, geometry, 4 * np.pi, 0.01))
    assert "encoding.dynamic.end_logits" in dict(field.named_parameters())
    static_scan = dataclasses.replace(settings, time_resolution=0)  # no time span, nothing to continue
    assert not any("end_logits" in name for name, _ in
                   build_field(static_scan, field_spec(static_scan, geometry, 4 * np.pi, 0.01)).named_parameters())
