"""train.steps auto: the held-out residual steers the learning rate (and the quadrature's
coarse start) and stops training; the caps; exact resume; and a checkpoint never resumed
on another scan."""

from __future__ import annotations

import dataclasses
import math
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from conftest import TINY_SIMULATE, TINY_TRAIN, dinr_command, geometry_settings, prepare_settings, train, write_settings
from dinr import stages
from dinr.errors import InputError
from dinr.io.canonical import sinogram_id
from dinr.inr.rays import coarse_samples_per_ray
from dinr.train.checkpoint import load_checkpoint
from dinr.train.comm import Communicator
from dinr.io.canonical import read_sinogram
from dinr.train.loop import initial_state, step_samples, validate
from dinr.train.schedule import DIVERGENCE_FACTOR, SPIKE_FACTOR, Budget, Plateau, budget, learning_rate
from dinr.train.setup import set_up
from dinr.train.step import train_step

#: Converges in a few hundred steps: one halving of the rate allowed (lr_final a third of lr);
#: half the quadrature points per ray until then.
AUTO = dataclasses.replace(TINY_TRAIN, steps="auto", max_epochs=400, lr=1e-2, lr_final=3e-3, patience=2,
                           validate_every_epochs=0.5, checkpoint_every=10, log_every=50, coarse_samples="auto")


def test_plateau_halves_the_rate_then_converges() -> None:
    settings = dataclasses.replace(TINY_TRAIN, lr=1e-2, lr_final=2e-3, patience=2, warmup_steps=5)
    plateau = Plateau()
    outcomes = [plateau.update(r, settings, step) for step, r in
                enumerate([1.0, 0.9, 0.9, 0.8995, 0.95, 0.7, 0.7, 0.71, 0.7, 0.7], start=10)]
    # 0.8995 is not 0.1 % below 0.9; two evaluations without improvement halve the rate
    # (0.01 -> 0.005 -> 0.0025); a third halving would go below lr_final: converged.
    assert outcomes == ["improved", "improved", "waiting", "reduced", "waiting", "improved", "waiting", "reduced",
                        "waiting", "converged"]
    assert plateau.reductions == 2 and plateau.best == 0.7


def test_no_plateau_counts_during_warm_up() -> None:
    settings = dataclasses.replace(TINY_TRAIN, patience=1, warmup_steps=100)
    plateau = Plateau()
    assert [plateau.update(1.0, settings, step) for step in (10, 20, 30)] == ["improved", "waiting", "waiting"]
    assert plateau.update(1.0, settings, 100) == "reduced"


def test_a_residual_far_above_its_best_lowers_the_rate_at_once() -> None:
    settings = dataclasses.replace(TINY_TRAIN, lr=1e-2, lr_final=2e-3, patience=5, warmup_steps=5)
    plateau = Plateau()
    outcomes = [plateau.update(r, settings, step) for step, r in
                enumerate([1.0, 0.5, 0.99, 1.01, 0.45, 0.95], start=10)]
    # 0.99 is a spike within DIVERGENCE_FACTOR of the best 0.5: waiting; 1.01 is past it
    assert DIVERGENCE_FACTOR == 2.0
    assert outcomes == ["improved", "improved", "waiting", "diverged", "improved", "diverged"]
    assert plateau.reductions == 2 and plateau.since_best == 0
    assert plateau.update(10.0, settings, 20) == "converged"  # a third halving would go below lr_final


def test_spikes_above_the_spike_factor_do_not_count_towards_a_plateau(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = dataclasses.replace(TINY_TRAIN, lr=1e-2, lr_final=1e-4, patience=2, warmup_steps=5)
    residuals = [1.0, 0.5, 0.8, 0.51, 0.8, 0.51]  # the jerk's pattern: spikes between near-bests
    assert SPIKE_FACTOR == 1.25
    skipped = Plateau()
    assert [skipped.update(r, settings, step) for step, r in enumerate(residuals, start=10)] == \
        ["improved", "improved", "waiting", "waiting", "waiting", "reduced"]  # 0.8 > 1.25 x 0.5: not counted
    assert skipped.reductions == 1
    monkeypatch.setattr("dinr.train.schedule.SPIKE_FACTOR", DIVERGENCE_FACTOR)  # every evaluation counts
    counted = Plateau()
    assert [counted.update(r, settings, step) for step, r in enumerate(residuals, start=10)][-3:] == \
        ["reduced", "waiting", "reduced"]


def test_a_residual_that_stays_above_the_spike_factor_is_a_plateau() -> None:
    settings = dataclasses.replace(TINY_TRAIN, lr=1e-2, lr_final=1e-4, patience=3, warmup_steps=5)
    plateau = Plateau()
    outcomes = [plateau.update(r, settings, step) for step, r in enumerate([1.0, 0.5, 0.8, 0.7, 0.9, 0.8], start=10)]
    assert outcomes == ["improved", "improved", "waiting", "waiting", "reduced", "waiting"]  # three spikes in a row
    assert plateau.reductions == 1 and plateau.since_best == 0 and plateau.spikes_in_row == 1  # the next one
    assert Plateau(**{"best": 0.5, "since_best": 1, "reductions": 2}).spikes_in_row == 0  # a checkpoint's plateau


def test_a_diverged_run_goes_on_from_its_best_field(tiny_scan: dict[str, Path]) -> None:
    comm = Communicator(use_mpi=False)
    sino = read_sinogram(tiny_scan["sinogram"], split="all")
    run = set_up(AUTO, {0: sino}, 1, 1e-4, comm, heldout={0: sino})
    state, plateau = initial_state(run), Plateau()
    for step in range(20):
        train_step(run, step, AUTO.lr, False, run.samples)
    assert validate(run, state, plateau, 20, AUTO.lr) == "" and state.best["step"] == 20
    kept = {name: tensor.clone() for name, tensor in run.field.state_dict().items()}
    kept_moments = {index: entry["exp_avg_sq"].clone() for index, entry in run.optimizer.state_dict()["state"].items()}
    for step in range(20, 25):
        train_step(run, step, AUTO.lr, False, run.samples)
    with torch.no_grad():  # a step that throws the field off
        for parameter in run.field.parameters():
            parameter.add_(torch.randn_like(parameter), alpha=3.0)
    assert validate(run, state, plateau, 25, AUTO.lr) == ""
    assert state.validation[-1][1] > DIVERGENCE_FACTOR * state.validation[0][1]  # it had diverged
    assert plateau.reductions == 1 and state.best["step"] == 20
    for name, tensor in run.field.state_dict().items():
        assert torch.equal(tensor, kept[name]), name
    for index, entry in run.optimizer.state_dict()["state"].items():
        assert torch.equal(entry["exp_avg_sq"], kept_moments[index])
    train_step(run, 25, AUTO.lr / 2, False, run.samples)  # training on leaves the kept copy as it was
    assert all(torch.equal(tensor, kept[name]) for name, tensor in state.best["model"].items())
    assert not all(torch.equal(tensor, kept[name]) for name, tensor in run.field.state_dict().items())
    assert validate(run, state, plateau, 26, AUTO.lr / 2) == ""
    assert state.validation[-1][1] < DIVERGENCE_FACTOR * state.validation[0][1]


def test_budget_follows_the_scan() -> None:
    auto = dataclasses.replace(TINY_TRAIN, steps="auto", max_epochs=10, validate_every_epochs=0.25, warmup_steps=5)
    assert budget(auto, training_rays=100_000, rays_per_step=1000, has_heldout=True) == Budget(1000, 25, True, 100.0)
    # twice the rays: twice the cap, evaluations twice as far apart
    assert budget(auto, training_rays=200_000, rays_per_step=1000, has_heldout=True) == Budget(2000, 50, True, 200.0)
    # no held-out views: the cap, on the exponential schedule, no evaluations
    assert budget(auto, 100_000, 1000, has_heldout=False) == Budget(1000, 0, False, 100.0)
    # a wide scan's epoch: evaluations every validate_every_rays rays, whatever the batch
    wide = dataclasses.replace(auto, validate_every_rays=64_000)
    assert budget(wide, 10**9, 1000, True).validate_every == 64
    assert budget(wide, 10**9, 4000, True).validate_every == 16
    assert budget(wide, 100_000, 1000, True).validate_every == 25  # a small scan: the epochs' spacing comes first
    fixed = dataclasses.replace(auto, steps=300)
    assert budget(fixed, 100_000, 1000, True) == Budget(300, 25, False, 100.0)
    plan = budget(fixed, 100_000, 1000, True)
    assert learning_rate(fixed, plan, 300, 0) == pytest.approx(fixed.lr_final)
    assert learning_rate(auto, budget(auto, 100_000, 1000, True), 500, 2) == pytest.approx(auto.lr / 4)


def test_coarse_quadrature_until_the_first_plateau() -> None:
    assert [coarse_samples_per_ray(setting, 64) for setting in ("auto", 0, 16)] == [32, 64, 16]
    assert coarse_samples_per_ray("auto", 3) == 2
    run = SimpleNamespace(coarse_samples=4, samples=8, budget=Budget(100, 10, True, 50.0))
    assert step_samples(run, Plateau(reductions=0)) == 4  # type: ignore[arg-type]
    assert step_samples(run, Plateau(reductions=1)) == 8  # type: ignore[arg-type]
    fixed = SimpleNamespace(coarse_samples=4, samples=8, budget=Budget(100, 10, False, 50.0))
    assert step_samples(fixed, Plateau(reductions=0)) == 8  # type: ignore[arg-type]  # steps: N never coarsens


def test_a_converged_run_stops_early_and_says_why(tiny_scan: dict[str, Path], tmp_path: Path) -> None:
    state = train(AUTO, tiny_scan["sinogram"], tmp_path / "ck.pt", Communicator(use_mpi=False))
    model = load_checkpoint(tmp_path / "ck-model.pt")
    assert state.stop_reason.startswith("converged"), state.stop_reason
    assert model.stop_reason == state.stop_reason and model.step == state.step
    cap = math.ceil(AUTO.max_epochs * (TINY_SIMULATE.views * 19 // 20) * TINY_SIMULATE.rows * TINY_SIMULATE.size
                    / AUTO.batch_rays)
    assert 0 < state.step < cap / 4, (state.step, cap)
    residuals = [r for _, r, _ in state.validation]
    assert min(residuals) < 0.8 * residuals[0], state.validation  # the held-out views are predicted better
    assert state.plateau["reductions"] == 1 and {lr for *_, lr in state.validation} == {AUTO.lr, AUTO.lr / 2}
    assert state.train_seconds > 0


def test_the_caps_stop_a_run(tiny_scan: dict[str, Path], tmp_path: Path) -> None:
    capped = dataclasses.replace(AUTO, max_epochs=0.5)
    state = train(capped, tiny_scan["sinogram"], tmp_path / "a.pt", Communicator(use_mpi=False))
    assert state.stop_reason.startswith("max_epochs: 0.5 epochs")
    timed = dataclasses.replace(AUTO, lr_final=1e-6, max_wall_s=1.0, log_every=5)
    state = train(timed, tiny_scan["sinogram"], tmp_path / "b.pt", Communicator(use_mpi=False))
    assert state.stop_reason.startswith("max_wall_s") and 1.0 <= state.train_seconds < 10.0


def test_a_resumed_auto_run_stops_at_the_same_step(tiny_scan: dict[str, Path], tmp_path: Path) -> None:
    settings_file = write_settings(tmp_path / "train.json", AUTO)
    args = ["train", "--settings", str(settings_file), "--sinogram", str(tiny_scan["sinogram"])]
    straight = dinr_command(*args, "--checkpoint", str(tmp_path / "straight.pt"), "--model", str(tmp_path / "m.pt"))
    assert straight.returncode == 0, straight.stderr
    reference = load_checkpoint(tmp_path / "m.pt")
    assert reference.stop_reason.startswith("converged") and "training stopped at step" in straight.stderr

    checkpoint, model = tmp_path / "killed.pt", tmp_path / "killed_model.pt"
    process = subprocess.Popen([sys.executable, "-m", "dinr.cli", *args, "--checkpoint", str(checkpoint),
                                "--model", str(model)], stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while process.poll() is None and time.monotonic() < deadline:  # past the first halving of the rate
        if checkpoint.exists() and load_checkpoint(checkpoint).plateau.get("reductions", 0) >= 1:
            break
        time.sleep(0.05)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    killed = load_checkpoint(checkpoint)
    assert 0 < killed.step < reference.step and killed.plateau["reductions"] == 1 and not model.exists()

    resumed = dinr_command(*args, "--checkpoint", str(checkpoint), "--model", str(model))
    assert resumed.returncode == 0, resumed.stderr
    final = load_checkpoint(model)
    assert final.step == reference.step and final.stop_reason == reference.stop_reason
    assert final.validation == reference.validation
    for name, tensor in reference.model.items():
        assert torch.equal(tensor, final.model[name]), name


@pytest.mark.parametrize("time_ends", ["linear", "heldout"])  # heldout: chosen at the cap, trained on from the fit
def test_a_raised_cap_continues_a_capped_run_as_if_uncapped(tiny_scan: dict[str, Path], tmp_path: Path,
                                                            time_ends: str) -> None:
    comm = Communicator(use_mpi=False)
    auto = dataclasses.replace(AUTO, time_ends=time_ends)
    reference = train(auto, tiny_scan["sinogram"], tmp_path / "straight.pt", comm)
    capped = train(dataclasses.replace(auto, max_epochs=0.5), tiny_scan["sinogram"], tmp_path / "ck.pt", comm)
    assert capped.stop_reason.startswith("max_epochs") and 0 < capped.step < reference.step
    assert bool(capped.time_ends) == (time_ends == "heldout")
    extended = train(auto, tiny_scan["sinogram"], tmp_path / "ck.pt", comm)
    assert extended.step == reference.step and extended.stop_reason == reference.stop_reason
    assert extended.validation == reference.validation
    for name, tensor in reference.model.items():
        assert torch.equal(tensor, extended.model[name]), name
    assert extended.time_ends == reference.time_ends
    again = train(dataclasses.replace(auto, max_epochs=800), tiny_scan["sinogram"], tmp_path / "straight.pt", comm)
    assert again.step == reference.step  # a converged run stays converged whatever its cap


def test_a_checkpoint_of_another_scan_is_not_resumed(tiny_scan: dict[str, Path], tmp_path: Path) -> None:
    other = tmp_path / "other.h5"  # the same raw scan prepared with other held-out views
    stages.prepare(prepare_settings(heldout_every=10), geometry_settings(), tiny_scan["raw"], other)
    settings = dataclasses.replace(TINY_TRAIN, steps=20)
    train(settings, tiny_scan["sinogram"], tmp_path / "ck.pt", Communicator(use_mpi=False))
    with pytest.raises(InputError, match=r"other settings \(differing: sinogram[,)]"):
        train(settings, other, tmp_path / "ck.pt", Communicator(use_mpi=False))


def test_the_same_scan_prepared_again_keeps_its_fingerprint(tiny_scan: dict[str, Path], tmp_path: Path) -> None:
    raw, again = tmp_path / "copy of scan.h5", tmp_path / "again.h5"  # other provenance, the same data
    shutil.copyfile(tiny_scan["raw"], raw)
    stages.prepare(prepare_settings(), geometry_settings(), raw, again)
    assert sinogram_id(again) == sinogram_id(tiny_scan["sinogram"])
    other = tmp_path / "other.h5"
    stages.prepare(prepare_settings(heldout_every=10), geometry_settings(), tiny_scan["raw"], other)
    assert sinogram_id(other) != sinogram_id(tiny_scan["sinogram"])
