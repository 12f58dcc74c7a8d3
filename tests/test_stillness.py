"""The scan's stillness measured from views a turn apart (dinr.prep.stillness), and the
temporal prior it scales (dinr.train.objective)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import TINY_SIMULATE, geometry_settings, prepare_settings
from dinr import stages
from dinr.geometry.resolve import geometry_of
from dinr.inr.rays import integrate_rays
from dinr.io.canonical import read_noise_variance, read_sinogram, training_views
from dinr.prep.stillness import TABLE_SIZE, read_stillness, turn_pairs
from dinr.train.comm import Communicator
from dinr.train.objective import stillness_at, time_variation
from dinr.train.validation import HeldoutRays


def test_turn_pairs_match_views_a_turn_apart_whether_angles_wrap_or_not() -> None:
    theta = np.arange(10) * (2 * np.pi / 4)  # 4 views a turn, 2.5 turns
    earlier, later = turn_pairs(theta)
    assert list(zip(earlier, later)) == [(i, i + 4) for i in range(6)]
    wrapped = turn_pairs(np.mod(theta, 2 * np.pi))
    assert np.array_equal(wrapped[0], earlier) and np.array_equal(wrapped[1], later)
    assert turn_pairs(theta[:4])[0].size == 0  # less than a turn: no pair


@pytest.fixture(scope="module")
def jerk_scan(tmp_path_factory: pytest.TempPathFactory) -> tuple[np.ndarray | None, np.ndarray | None]:
    """Stillness tables of a tiny 4-turn scan whose object moves only between 40 and 60 %
    of the scan (``jerk``) and of the same scan over half a turn less than one turn."""
    root = tmp_path_factory.mktemp("stillness")
    tables = []
    for name, views, turns in (("jerk", 240, 4), ("short", 50, 0.8)):
        simulate = dataclasses.replace(TINY_SIMULATE, motion="jerk", views=views, turns=turns, frames=8)
        raw, truth, sino = root / f"{name}.h5", root / f"{name}_truth.h5", root / f"{name}_sino.h5"
        stages.simulate(simulate, geometry_settings(), raw, truth)
        stages.prepare(prepare_settings(), geometry_settings(), raw, sino)
        tables.append(read_stillness(sino, read_noise_variance(sino, True), True)[0])  # pairs a turn apart
    return tables[0], tables[1]


def test_stillness_is_high_where_the_object_rests_and_low_where_it_moves(jerk_scan) -> None:
    table, short = jerk_scan
    assert table is not None and table.shape == (TABLE_SIZE,)
    at = lambda t: float(table[round(t * (TABLE_SIZE - 1))])  # noqa: E731
    assert at(0.1) > 0.7 and at(0.9) > 0.7, (at(0.1), at(0.9))  # still before 40 % and after 60 %
    assert at(0.5) < 0.3, at(0.5)
    assert short is None  # no view has another a turn later


@pytest.fixture(scope="module")
def oscillation(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Prepared tiny 4-turn scans of an object that turns there and back one and a half
    times (``oscillate``: at rest only near a third and two thirds of the scan, for less
    than a turn) and of the same object moving only between 40 and 60 % of the scan
    (``jerk``), in parallel and cone beam."""
    root = tmp_path_factory.mktemp("oscillation")
    scans = {}
    for name, motion, beam in (("parallel", "oscillate", "parallel"), ("cone", "oscillate", "cone"),
                               ("jerk", "jerk", "parallel"), ("cone_jerk", "jerk", "cone")):
        simulate = dataclasses.replace(TINY_SIMULATE, motion=motion, views=240, turns=4, frames=8)
        raw, truth, scans[name] = root / f"{name}_raw.h5", root / f"{name}_truth.h5", root / f"{name}.h5"
        stages.simulate(simulate, geometry_settings(beam=beam), raw, truth)
        stages.prepare(prepare_settings(), geometry_settings(beam=beam), raw, scans[name])
    return scans


def test_half_turn_pairs_see_a_rest_shorter_than_a_turn(oscillation: dict[str, Path]) -> None:
    """Mirrored views half a turn apart differ by the noise alone where a parallel-beam
    scan is still (the mirror is about the rotation axis), and see the oscillation's
    turning points as stiller than pairs a turn apart do; in cone beam so do the fan-beam
    conjugates of the rows in the source's plane."""
    tables = {}
    for name, sino in oscillation.items():
        noise = read_noise_variance(sino, True)
        tables[name] = read_stillness(sino, noise, True)
    at = lambda table, t: float(table[round(t * (TABLE_SIZE - 1))])  # noqa: E731
    for jerk in ("jerk", "cone_jerk"):
        full, half = tables[jerk]
        assert half is not None and at(half, 0.1) > 0.7 and at(half, 0.9) > 0.7, jerk
        assert at(half, 0.5) == 0.0 and at(half, 1 / 3) > at(full, 1 / 3) + 0.5, jerk  # a rest shorter than a turn
    # measured: parallel 0.28 -> 0.57 and 0.29 -> 0.51; cone 0.38 -> 0.48 and 0.34 -> 0.54
    for beam, margin in (("parallel", 0.15), ("cone", 0.05)):
        full, half = tables[beam]
        for turning_point in (1 / 3, 2 / 3):
            assert at(half, turning_point) > at(full, turning_point) + margin, (beam, at(half, turning_point),
                                                                                at(full, turning_point))
        assert at(half, 0.5) == at(full, 0.5) == 0.0, beam  # the fastest instant: moving in both


def test_stillness_at_interpolates_the_table_and_holds_beyond_the_scan() -> None:
    table = torch.tensor([0.0, 1.0, 0.5])
    values = stillness_at(table, torch.tensor([-0.2, 0.0, 0.25, 0.5, 0.75, 1.0, 1.3]))
    assert torch.allclose(values, torch.tensor([0.0, 0.0, 0.5, 1.0, 0.75, 0.5, 0.5]))


def test_time_variation_weighs_each_point_by_the_stillness_and_skips_moving_ones() -> None:
    """A field that changes by ``t`` at every point: its change over ``delta`` is
    ``delta`` everywhere, so the weighted sum is ``delta`` times the stillness summed over
    the points evaluated; a table of zeros evaluates none."""
    evaluated = []

    def field(coords: torch.Tensor) -> torch.Tensor:
        evaluated.append(coords.shape[:-1].numel())
        return coords[..., 0] * 1.0

    times = torch.linspace(0.0, 0.8, 6)
    coords = torch.zeros(6, 2, 4)
    coords[..., 0] = times[:, None]
    values = field(coords)
    table = torch.tensor([1.0, 0.0])  # 1 at t = 0, falling linearly to 0 at t = 1
    delta = 0.1
    total = time_variation(field, coords, values, delta, stride=1, profile=table)
    expected = sum(2 * delta * float(stillness_at(table, t + delta / 2)) for t in times)
    assert float(total) == pytest.approx(expected, rel=1e-5)
    evaluated.clear()
    assert float(time_variation(field, coords, values, delta, stride=1, profile=torch.zeros(4))) == 0.0
    assert evaluated == []


def test_the_heldout_residual_where_the_scan_moves_weighs_each_ray_by_its_motion(
        tiny_scan: dict[str, Path]) -> None:
    """A stillness falling linearly from 1 at the scan's start to 0 at its end gives each
    held-out ray the weight ``t`` (its normalised time) beside its own: the figure is the
    residual recomputed ray by ray with those weights; a stillness of 0 throughout weighs
    every ray alike and gives none."""
    comm = Communicator(use_mpi=False)
    sino = read_sinogram(tiny_scan["sinogram"], views=training_views(tiny_scan["sinogram"], heldout=True))
    geometry = geometry_of(sino)
    field = torch.nn.Module()
    field.forward = lambda coords: 0.01 * (1.0 + coords[..., 0])  # type: ignore[method-assign]  # grows with t
    linear = HeldoutRays({0: sino}, geometry, 300, seed=3, device=torch.device("cpu"), transmission_weights=True,
                         comm=comm, stillness=torch.tensor([1.0, 0.0]))
    plain, moving = linear.residuals(field, 8, comm, 10**6)
    rays = linear.rays
    predicted = integrate_rays(field, rays, geometry, 8, torch.full((len(rays.measured), 8), 0.5)).double()
    error, norm = linear.weights * (predicted - rays.measured.double()) ** 2, linear.weights * rays.measured.double() ** 2
    t = torch.clamp(rays.t.double(), 0.0, 1.0)
    assert moving == pytest.approx(float(torch.sqrt((t * error).sum() / (t * norm).sum())), rel=1e-6)
    assert plain == pytest.approx(float(torch.sqrt(error.sum() / norm.sum())), rel=1e-6)
    assert plain == linear.relative_residual(field, 8, comm, 10**6) and abs(moving - plain) > 1e-4 * plain
    still_free = HeldoutRays({0: sino}, geometry, 300, seed=3, device=torch.device("cpu"), transmission_weights=True,
                             comm=comm, stillness=torch.zeros(8))
    assert still_free.motion is None and still_free.residuals(field, 8, comm, 10**6) == (plain, None)
