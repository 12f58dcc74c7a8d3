"""The average of the iterates a run puts out (``train.average_steps``)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import torch
from torch import nn

from conftest import TINY_TRAIN, train
from dinr.train.averaging import parameter_average
from dinr.train.comm import Communicator


def test_no_horizon_means_no_average() -> None:
    assert parameter_average(nn.Linear(2, 1), 0) is None


@pytest.mark.parametrize("steps", [1, 5, 19])
def test_before_twice_the_horizon_each_iterate_weighs_its_step_number(steps: int) -> None:
    """Iterates 1, 2, ..., n weighted by 1, 2, ..., n average to (2n + 1) / 3."""
    layer = nn.Linear(1, 1, bias=False)
    average = parameter_average(layer, horizon=10)
    for value in range(1, steps + 1):
        layer.weight.data.fill_(float(value))
        average.update_parameters(layer)
    assert float(average.module.weight) == pytest.approx((2 * steps + 1) / 3, rel=1e-6)


def test_after_twice_the_horizon_the_average_forgets_exponentially() -> None:
    """After a jump from 0 to 1, the average approaches 1 as 1 - (1 - 1/H)^k."""
    horizon = 10
    layer = nn.Linear(1, 1, bias=False)
    average = parameter_average(layer, horizon)
    layer.weight.data.fill_(0.0)
    for _ in range(2 * horizon):
        average.update_parameters(layer)
    layer.weight.data.fill_(1.0)
    for _ in range(15):
        average.update_parameters(layer)
    assert float(average.module.weight) == pytest.approx(1 - (1 - 1 / horizon) ** 15, rel=1e-6)


def test_the_run_puts_out_the_average_of_the_same_iterates_and_it_predicts_held_out_views_better(
        tiny_scan: dict[str, Path], tmp_path: Path) -> None:
    """At a steady learning rate (``lr_final = lr``) the iterates wander; averaging them
    leaves the optimizer's path as it was (the same last iterate) and predicts the held-out
    views better than that iterate does."""
    steady = dataclasses.replace(TINY_TRAIN, steps=300, lr=0.02, lr_final=0.02)
    comm = Communicator(use_mpi=False)
    plain = train(steady, tiny_scan["sinogram"], tmp_path / "plain.pt", comm)
    averaged = train(dataclasses.replace(steady, average_steps=30), tiny_scan["sinogram"], tmp_path / "avg.pt", comm)
    assert not plain.iterate and set(averaged.iterate) == set(averaged.model)
    assert all(torch.equal(plain.model[k], averaged.iterate[k]) for k in plain.model)
    assert [row[0] for row in plain.validation] == [row[0] for row in averaged.validation]
    last_plain, last_averaged = plain.validation[-1][1], averaged.validation[-1][1]
    print(f"held-out residual after {steady.steps} steps: iterate {last_plain:.4f}, average {last_averaged:.4f}")
    assert last_averaged < 0.95 * last_plain
