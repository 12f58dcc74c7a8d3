"""Where a trained field rests or turns, read from its first difference over one time
cell: the turning points of an oscillation and the stretch where a motion stops are
found, a steady motion has none."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from dinr.geometry.parallel import ParallelGeometry
from dinr.train.field_rests import EDGE, INSTANTS, MAX_VOXELS, REST_SHARE, differences, rest_verdicts, sampled_grid

INSTANT_TIMES = (np.arange(INSTANTS) + 0.5) / INSTANTS


def _blob(position: float) -> np.ndarray:
    """A Gaussian blob of 3 pixels' deviation centred at ``position`` on a 64-pixel line."""
    return np.exp(-0.5 * ((np.arange(64) - 32.0 - position) / 3.0) ** 2)


def _rest_instants(path: callable, delta: float = 1 / 16) -> np.ndarray:  # type: ignore[valid-type]
    first, _ = differences(lambda t: _blob(path(t)), INSTANT_TIMES, delta)
    return INSTANT_TIMES[rest_verdicts(first) > 0]


def test_the_turning_points_of_an_oscillation_rest_and_nothing_else_does() -> None:
    rests = _rest_instants(lambda t: 12.0 * np.sin(2 * np.pi * t))  # turns at t = 1/4 and 3/4
    assert rests.size > 0
    assert np.all(np.minimum(np.abs(rests - 0.25), np.abs(rests - 0.75)) < 0.07)
    assert np.any(np.abs(rests - 0.25) < 0.04) and np.any(np.abs(rests - 0.75) < 0.04)


def test_a_motion_that_stops_rests_from_where_it_stops_to_the_end() -> None:
    rests = _rest_instants(lambda t: 20.0 * min(t, 0.5))
    assert np.all(rests > 0.5) and rests.min() < 0.6
    assert rests.max() == INSTANT_TIMES[-1]  # the end instants take the nearest judged verdict


def test_a_steady_motion_has_no_rest() -> None:
    assert _rest_instants(lambda t: 20.0 * t).size == 0


@pytest.mark.parametrize("inner, expected", [
    ([1.0, 0.2, 1.0], [0, 1, 0]),  # under the share of the largest
    ([0.5, REST_SHARE * 0.99, 0.5], [0, 0, 0]),  # the share is of the largest, not of 1
    ([0.0, 0.0, 0.0], [0, 0, 0]),  # a field that does not change: nothing to tell
])
def test_verdicts_are_shares_of_the_largest_and_the_ends_take_their_neighbours(
        inner: list[float], expected: list[int]) -> None:
    first = np.array([9.0] * EDGE + inner + [0.0] * EDGE)  # the end values are not judged
    verdicts = rest_verdicts(first)
    assert verdicts.tolist() == [expected[0]] * EDGE + expected + [expected[-1]] * EDGE


@pytest.mark.parametrize("rows, n, expected", [
    (8, 64, (8, 64, 64)),  # the built-in scans: every voxel
    (2048, 2048, (8, 90, 90)),  # a beamline scan: 8 slices, every 23rd pixel
])
def test_the_sampled_grid_keeps_every_voxel_of_a_small_scan_and_bounds_a_large_one(
        rows: int, n: int, expected: tuple[int, int, int]) -> None:
    state = SimpleNamespace(beam_geometry=lambda: ParallelGeometry(rows, n, n / 2, n))
    grid = sampled_grid(state)  # type: ignore[arg-type]
    assert grid.shape == expected and np.prod(grid.shape) <= MAX_VOXELS
    assert grid.z[0] == rows / 2 - 0.5 and grid.z[-1] == -rows / 2 + 0.5  # the top and bottom slices
