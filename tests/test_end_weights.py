"""``time_ends: heldout``: each end's weight chosen by the held-out rays of its quarter-turn."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import torch

from conftest import TINY_TRAIN, train
from dinr.inr.rays import integrate_rays
from dinr.io.canonical import read_sinogram
from dinr.train.checkpoint import load_checkpoint
from dinr.train.comm import Communicator
from dinr.train.end_weights import CANDIDATES, choose_end_weights, time_ends_of
from dinr.train.setup import set_up
from dinr.train.step import MAX_POINTS_PER_PASS

HELDOUT_ENDS = dataclasses.replace(TINY_TRAIN, time_ends="heldout", validation_rays=4096)


def test_end_weights_set_are_the_weights_read(tiny_scan: dict[str, Path]) -> None:
    sino = read_sinogram(tiny_scan["sinogram"])
    ends = time_ends_of(set_up(HELDOUT_ENDS, {0: sino}, 1, 1e-4, Communicator(use_mpi=False)).field)
    assert ends is not None
    for weights in ([0.0, 0.25], [1.0, 0.6]):
        ends.set_end_weights(weights)
        torch.testing.assert_close(ends.end_weights(), torch.tensor(weights), atol=1e-8, rtol=1e-6)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        ends.set_end_weights([1.5, 0.0])


def test_each_end_takes_the_weight_its_heldout_rays_prefer(tiny_scan: dict[str, Path]) -> None:
    comm = Communicator(use_mpi=False)
    sino = read_sinogram(tiny_scan["sinogram"], split="all")
    run = set_up(HELDOUT_ENDS, {0: sino}, 1, 1e-4, comm, heldout={0: sino})
    ends = time_ends_of(run.field)
    assert ends is not None
    with torch.no_grad():  # random tables: the ends' weights change what the field predicts there
        for table in ends.grid.tables:
            table.normal_(std=0.1, generator=torch.Generator().manual_seed(2))
    truth = [0.25, 1.0]  # the views "measured" with these weights; the fit starts at 0.5, 0.5
    ends.set_end_weights(truth)
    rays = run.heldout.rays
    with torch.no_grad():
        rays.measured.copy_(integrate_rays(run.field, rays, run.geometry, run.samples,
                                           torch.full((len(rays.t), run.samples), 0.5)))
    ends.set_end_weights([0.5, 0.5])
    record = choose_end_weights(run.field, run.heldout, run.samples, comm, MAX_POINTS_PER_PASS)
    assert record["chosen"] == truth and record["fitted"] == pytest.approx([0.5, 0.5])
    assert all(count > 0 for count in record["rays"])
    for end, scores in enumerate(record["residuals"]):
        best = 1 + list(CANDIDATES).index(truth[end])  # the fitted weight is listed first
        assert scores[best] == pytest.approx(0.0, abs=1e-6) and min(scores[:best] + scores[best + 1:]) > 1e-4
    torch.testing.assert_close(ends.end_weights(), torch.tensor(truth), atol=1e-8, rtol=1e-6)


def test_a_run_with_heldout_ends_chooses_them_once_and_a_rerun_keeps_them(tiny_scan: dict[str, Path],
                                                                         tmp_path: Path) -> None:
    comm = Communicator(use_mpi=False)
    settings = dataclasses.replace(HELDOUT_ENDS, steps=10)
    final = train(settings, tiny_scan["sinogram"], tmp_path / "ck.pt", comm)
    record = final.time_ends
    assert record["rays"][1] > 0  # the tiny scan's validation rays: none in its first quarter-turn
    assert record["rays"][0] == 0 and not record["residuals"][0] and record["chosen"][0] == record["fitted"][0]
    scores = record["residuals"][1]
    assert record["chosen"][1] == [record["fitted"][1], *CANDIDATES][scores.index(min(scores))]
    model = load_checkpoint(tmp_path / "ck-model.pt")
    torch.testing.assert_close(time_ends_of(model.field()).end_weights(), torch.tensor(record["chosen"]),
                               atol=1e-8, rtol=1e-6)
    again = train(settings, tiny_scan["sinogram"], tmp_path / "ck.pt", comm)  # nothing more to train or choose
    assert again.step == final.step and again.time_ends == record
    for name, tensor in again.model.items():
        assert torch.equal(tensor, final.model[name]), name
