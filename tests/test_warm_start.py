"""``train.initial: fbp``: the field fitted to sliding-window FBP before training."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch

from conftest import TINY_TRAIN, train
from dinr.evaluate.metrics import volume_metrics
from dinr.inr.render import SliceRenderer
from dinr.io.canonical import read_sinogram
from dinr.train.comm import Communicator
from dinr.train.setup import AUTO_FBP_EPOCH_STEPS, TrainingRun, set_up, starting_point
from dinr.train.warm_start import (MAX_VOXELS, binned, binning, fbp_instants, warm_start, wiener_denoised,
                                  window_reconstructions)

WARM = dataclasses.replace(TINY_TRAIN, initial="fbp", hash_levels=6, width=32)


def _psnr_to_truth(run: TrainingRun, truth_path: Path) -> float:
    """Mean PSNR inside the cylinder (the pipeline's own metric) of the field's frames at
    the truth's instants against the truth."""
    with h5py.File(truth_path) as f:
        truth, seconds = f["truth"][:], f["time"][:]
    sino = read_sinogram(truth_path.with_name("sinogram.h5"))
    render = SliceRenderer(run.field, run.geometry)
    volume = np.stack([np.stack([render(float(t), row) for row in range(run.geometry.rows)])
                       for t in sino.normalised_time(seconds)])
    return float(volume_metrics(truth, volume, run.geometry.region_mask())["psnr_mean"])


def test_instants_are_two_per_half_turn_at_interval_centres() -> None:
    theta = np.linspace(0, 4 * np.pi, 400, endpoint=False)  # two turns = four half-turns
    np.testing.assert_allclose(fbp_instants(float(theta[-1] - theta[0])), (np.arange(8) + 0.5) / 8)


def test_the_warm_started_field_is_close_to_the_truth_before_any_step(tiny_scan: dict[str, Path]) -> None:
    sino = read_sinogram(tiny_scan["sinogram"])
    run = set_up(WARM, {0: sino}, 1, 1e-4, Communicator(use_mpi=False))
    before = _psnr_to_truth(run, tiny_scan["truth"])
    warm_start(run, [sino])
    after = _psnr_to_truth(run, tiny_scan["truth"])
    assert after > 20.0 and after > before + 10.0, (before, after)


def test_a_run_warm_starts_once_and_a_rerun_does_not_fit_again(tiny_scan: dict[str, Path], tmp_path: Path,
                                                              caplog: pytest.LogCaptureFixture) -> None:
    comm = Communicator(use_mpi=False)
    caplog.set_level("INFO", logger="dinr.train.warm_start")
    settings = dataclasses.replace(WARM, steps=10)
    first = train(settings, tiny_scan["sinogram"], tmp_path / "ck.pt", comm)
    assert sum("fitted to FBP" in r.message for r in caplog.records) == 1
    caplog.clear()
    again = train(settings, tiny_scan["sinogram"], tmp_path / "ck.pt", comm)  # resumes at its last step
    assert again.step == first.step == 10
    assert not any("fitted to FBP" in r.message for r in caplog.records)
    for name, tensor in again.model.items():
        assert torch.equal(tensor, first.model[name]), name


def test_a_run_fitted_to_fbp_starts_at_half_the_rate(tiny_scan: dict[str, Path], tmp_path: Path) -> None:
    """Under steps auto the fit counts as the first plateau; from the initialisation the
    run starts at lr."""
    auto = dataclasses.replace(WARM, steps="auto", max_epochs=1, validate_every_epochs=0.5, lr_final=1e-4,
                               patience=100)
    for initial, rate in (("fbp", auto.lr / 2), ("none", auto.lr)):
        state = train(dataclasses.replace(auto, initial=initial), tiny_scan["sinogram"], tmp_path / f"{initial}.pt",
                      Communicator(use_mpi=False))
        assert {lr for *_, lr in state.validation} == {rate}, (initial, state.validation)
        assert state.plateau["reductions"] == (1 if initial == "fbp" else 0)


def test_binning_bounds_the_reconstructions_of_a_beamline_scan() -> None:
    assert binning(8, 32, 64) == 1
    factor = binning(16, 256, 2048)  # four turns of a 2048-column, 256-row detector
    assert 16 * (256 // factor) * (2048 // factor) ** 2 <= MAX_VOXELS < 16 * (256 // (factor - 1)) * (2048 // (factor - 1)) ** 2


def test_binned_views_reconstruct_the_object_at_the_coarser_pixel(tiny_scan: dict[str, Path]) -> None:
    sino = read_sinogram(tiny_scan["sinogram"])
    instants = fbp_instants(float(sino.theta.max() - sino.theta.min()))
    full, half = (sum(window_reconstructions([binned(sino, f)], instants)) / 2 for f in (1, 2))
    assert half.shape == (len(instants), 1, 16, 16)
    coarse = full.reshape(len(instants), 1, 2, 16, 2, 16, 2).mean(axis=(2, 4, 6))  # full's voxels 2 x 2 x 2
    assert np.corrcoef((half / 2).ravel(), coarse.ravel())[0, 1] > 0.9
    np.testing.assert_allclose((half / 2).sum(), coarse.sum(), rtol=0.1)


def test_a_fit_to_binned_views_still_finds_the_object(tiny_scan: dict[str, Path],
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    sino = read_sinogram(tiny_scan["sinogram"])
    monkeypatch.setattr("dinr.train.warm_start.MAX_VOXELS", 8 * 2 * 16 * 16)  # binned 2 x 2
    run = set_up(WARM, {0: sino}, 1, 1e-4, Communicator(use_mpi=False))
    warm_start(run, [sino])
    assert _psnr_to_truth(run, tiny_scan["truth"]) > 18.0


def test_the_wiener_target_keeps_a_clean_object_and_removes_noise_the_halves_disagree_on() -> None:
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[-1:1:64j, -1:1:64j]
    disk = np.stack([(yy ** 2 + xx ** 2 < r ** 2).astype(np.float32) for r in (0.3, 0.5, 0.7)])  # (3, 64, 64)
    np.testing.assert_allclose(wiener_denoised(disk, disk), disk, atol=1e-5)  # halves agree: nothing is noise
    even, odd = (disk + rng.normal(0, 0.5, disk.shape).astype(np.float32) for _ in range(2))
    error_of = lambda image: float(np.sqrt(np.mean((image - disk) ** 2)))
    assert error_of(wiener_denoised(even, odd)) < 0.5 * error_of((even + odd) / 2)


def test_auto_starts_from_fbp_only_where_an_epoch_is_many_steps(tiny_scan: dict[str, Path]) -> None:
    assert [starting_point("auto", steps) for steps in (342, 2736)] == ["none", "fbp"]  # 64 and 128 pixels
    assert starting_point("none", 10**6) == "none" and starting_point("fbp", 1) == "fbp"
    sino = read_sinogram(tiny_scan["sinogram"])
    auto = dataclasses.replace(WARM, initial="auto")
    run = set_up(auto, {0: sino}, 1, 1e-4, Communicator(use_mpi=False))
    assert run.budget.epoch_steps <= AUTO_FBP_EPOCH_STEPS and run.identity["initial"] == "none"  # as trained before the key
    rays_per_epoch = run.budget.epoch_steps * auto.batch_rays
    small_batches = dataclasses.replace(auto, batch_rays=max(1, int(rays_per_epoch // (2 * AUTO_FBP_EPOCH_STEPS))))
    assert set_up(small_batches, {0: sino}, 1, 1e-4, Communicator(use_mpi=False)).settings.initial == "fbp"
