"""Distributed training: identical ranks, checkpoints, exact resume after a kill."""

from __future__ import annotations

import dataclasses
import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from conftest import TINY_TRAIN, dinr_command, mpiexec, train, write_settings
from dinr.errors import InputError
from dinr.settings import TrainSettings
from dinr.train.checkpoint import differing_prior, load_checkpoint, save_checkpoint
from dinr.train.comm import Communicator

HERE = Path(__file__).parent


def train_two_ranks(settings: object, sinogram: Path, outdir: Path) -> list[np.lib.npyio.NpzFile]:
    """Train on 2 ranks under mpiexec; every rank's size, step and parameters."""
    outdir.mkdir(exist_ok=True)
    settings_file = write_settings(outdir / "train.json", settings)
    result = subprocess.run(
        [mpiexec(), "-n", "2", sys.executable, str(HERE / "mpi_train_dump.py"), str(settings_file),
         str(sinogram), str(outdir / "ck.pt"), str(outdir)],
        capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, result.stderr
    return [np.load(outdir / f"rank{r}.npz") for r in (0, 1)]


def test_two_ranks_end_with_identical_parameters(tiny_scan: dict[str, Path], tmp_path: Path) -> None:
    ranks = train_two_ranks(TINY_TRAIN, tiny_scan["sinogram"], tmp_path)
    assert int(ranks[0]["size"]) == 2 and int(ranks[1]["size"]) == 2, "MPI did not start 2 ranks"
    for key in ranks[0].files:
        np.testing.assert_array_equal(ranks[0][key], ranks[1][key], err_msg=key)
    assert int(ranks[0]["step"]) == int(ranks[1]["step"]) == TINY_TRAIN.steps


def test_two_ranks_match_one_rank_holding_both_ray_shards(tiny_scan: dict[str, Path], tmp_path: Path) -> None:
    """R ranks with batch B draw the rays of one rank with R shards (batch R x B)."""
    two_ranks = train_two_ranks(TINY_TRAIN, tiny_scan["sinogram"], tmp_path)[0]
    one_rank = train(dataclasses.replace(TINY_TRAIN, ray_shards=2), tiny_scan["sinogram"], tmp_path / "one.pt",
                     Communicator(use_mpi=False))
    params = one_rank.field().state_dict()
    largest = max(float(np.abs(two_ranks[k] - params[k].numpy()).max()) for k in params)
    for key, value in params.items():
        np.testing.assert_allclose(value.numpy(), two_ranks[key], rtol=1e-4, atol=1e-6, err_msg=key)
    print(f"largest difference, 2 ranks vs 1 rank with 2 shards: {largest:.3g}")


def test_bucketed_allreduce_gives_the_same_parameters(tiny_scan: dict[str, Path], tmp_path: Path) -> None:
    """Buckets reduced while backward runs (MPI_Iallreduce) end exactly where one allreduce does."""
    results = {}
    for buckets in (1, 4):
        wide = dataclasses.replace(TINY_TRAIN, width=128, hidden_layers=2, allreduce_buckets=buckets)  # 2 buckets
        results[buckets] = train_two_ranks(wide, tiny_scan["sinogram"], tmp_path / f"b{buckets}")[1]
    for key in results[1].files:
        np.testing.assert_array_equal(results[1][key], results[4][key], err_msg=key)


def test_bf16_autocast_trains_as_well_as_fp32(tiny_scan: dict[str, Path], tmp_path: Path) -> None:
    losses = {}
    for precision in ("fp32", "bf16"):
        settings = dataclasses.replace(TINY_TRAIN, steps=100, log_every=100, precision=precision)
        state = train(settings, tiny_scan["sinogram"], tmp_path / f"{precision}.pt", Communicator(use_mpi=False))
        losses[precision] = state.history[-1][1]
    assert losses["bf16"] < 1.2 * losses["fp32"], losses


def test_same_config_gives_the_same_checkpoint(tiny_scan: dict[str, Path], tmp_path: Path) -> None:
    runs = [train(TINY_TRAIN, tiny_scan["sinogram"], tmp_path / f"{i}.pt", Communicator(use_mpi=False))
            for i in range(2)]
    for key, value in runs[0].model.items():
        assert torch.equal(value, runs[1].model[key]), key


def test_checksum_guard_fires_on_a_perturbed_rank(tmp_path: Path) -> None:
    settings = write_settings(tmp_path / "train.json", TINY_TRAIN)
    result = subprocess.run([mpiexec(), "-n", "2", sys.executable, str(HERE / "mpi_drift.py"), str(settings)],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 3, result.stdout + result.stderr
    for rank in (0, 1):
        assert f"rank {rank}: parameters differ across ranks at step 1: CRC32 per rank 0:" in result.stdout


def test_training_reduces_the_loss(tiny_scan: dict[str, Path], tmp_path: Path) -> None:
    settings = dataclasses.replace(TINY_TRAIN, steps=200, log_every=20)
    state = train(settings, tiny_scan["sinogram"], tmp_path / "ck.pt", Communicator(use_mpi=False))
    losses = [loss for _, loss, _ in state.history]
    assert losses[-1] < 0.3 * losses[0]


def test_resume_after_kill_continues_from_checkpoint_and_matches(tiny_scan: dict[str, Path], tmp_path: Path) -> None:
    settings = dataclasses.replace(TINY_TRAIN, steps=1500, checkpoint_every=10, log_every=100)
    settings_file = write_settings(tmp_path / "train.json", settings)
    args = ["train", "--settings", str(settings_file), "--sinogram", str(tiny_scan["sinogram"])]
    checkpoint, model = tmp_path / "interrupted.pt", tmp_path / "interrupted_model.pt"
    process = subprocess.Popen(
        [sys.executable, "-m", "dinr.cli", *args, "--checkpoint", str(checkpoint), "--model", str(model)],
        stderr=subprocess.PIPE, text=True,
    )
    deadline = time.monotonic() + 120
    while not checkpoint.exists() and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    killed = load_checkpoint(checkpoint)
    killed_at = int(killed.step)
    assert 0 < killed_at < settings.steps and not model.exists() and killed.train_seconds > 0

    resumed = dinr_command(*args, "--checkpoint", str(checkpoint), "--model", str(model))
    assert resumed.returncode == 0, resumed.stderr
    assert f"resuming from {checkpoint} at step {killed_at}" in resumed.stderr
    # the model's seconds count the killed attempt's too (metrics.json's training wall time)
    assert load_checkpoint(model).seconds_trained() > killed.train_seconds

    straight = dinr_command(*args, "--checkpoint", str(tmp_path / "straight.pt"), "--model", str(tmp_path / "m.pt"))
    assert straight.returncode == 0, straight.stderr
    a = load_checkpoint(model).field().state_dict()
    b = load_checkpoint(tmp_path / "m.pt").field().state_dict()
    largest = max(float(torch.max(torch.abs(a[k].double() - b[k].double()))) for k in a)
    assert largest == 0.0, f"largest parameter difference {largest}"


def _checkpoint_without_key(settings: TrainSettings, key: str, sinogram: Path, checkpoint: Path,
                            comm: Communicator) -> None:
    """Train ``settings`` into ``checkpoint``, then rewrite it as if written before ``key``
    existed (its settings lack the key)."""
    train(settings, sinogram, checkpoint, comm)
    state = load_checkpoint(checkpoint)
    del state.settings[key]
    state.settings_hash = "written before the key existed"
    save_checkpoint(checkpoint, state)


def test_checkpoint_from_before_a_new_key_resumes_at_the_value_it_was_trained_with(
        tiny_scan: dict[str, Path], tmp_path: Path) -> None:
    """A checkpoint written before ``tv_time_weight`` existed (its settings lack the key)
    resumes a run with the key at the value it was trained with (0, not today's default
    ``auto``: :data:`dinr.train.checkpoint.TRAINED_BEFORE_KEY`), and is refused with another."""
    comm = Communicator(use_mpi=False)
    short = dataclasses.replace(TINY_TRAIN, tv_time_weight=0, steps=10)
    _checkpoint_without_key(short, "tv_time_weight", tiny_scan["sinogram"], tmp_path / "ck.pt", comm)
    with pytest.raises(InputError, match=r"differing: tv_time_weight"):
        train(dataclasses.replace(short, tv_time_weight="auto"), tiny_scan["sinogram"], tmp_path / "ck.pt", comm)
    resumed = train(short, tiny_scan["sinogram"], tmp_path / "ck.pt", comm)
    assert resumed.step == 10


def test_checkpoint_from_before_the_static_grid_loads_as_the_field_it_was(
        tiny_scan: dict[str, Path], tmp_path: Path) -> None:
    """A field saved before ``hash_static_levels`` existed had no static grid: it loads
    as such whatever the key's default, and a run with a static grid will not resume it."""
    comm = Communicator(use_mpi=False)
    short = dataclasses.replace(TINY_TRAIN, steps=10)
    _checkpoint_without_key(short, "hash_static_levels", tiny_scan["sinogram"], tmp_path / "ck.pt", comm)
    loaded = load_checkpoint(tmp_path / "ck.pt")
    assert loaded.train_settings().hash_static_levels == 0
    loaded.field()  # the saved tables fit the rebuilt grid
    with pytest.raises(InputError, match=r"differing: hash_static_levels"):
        train(dataclasses.replace(short, hash_static_levels=2), tiny_scan["sinogram"], tmp_path / "ck.pt", comm)


def test_adam_keys_set_the_optimizer_and_a_checkpoint_from_before_them_keeps_pytorchs(
        tiny_scan: dict[str, Path], tmp_path: Path) -> None:
    """``adam_beta2`` and ``adam_eps`` reach the optimizer (its state in the checkpoint);
    a run saved before the keys existed was trained with PyTorch's 0.999 and 1e-8, and
    is completed with those, not with the defaults."""
    comm = Communicator(use_mpi=False)
    short = dataclasses.replace(TINY_TRAIN, steps=10, adam_beta2=0.95, adam_eps=1e-12)
    state = train(short, tiny_scan["sinogram"], tmp_path / "set.pt", comm)
    group = state.optimizer["param_groups"][0]
    assert tuple(group["betas"]) == (0.9, 0.95) and group["eps"] == 1e-12
    _checkpoint_without_key(short, "adam_beta2", tiny_scan["sinogram"], tmp_path / "ck.pt", comm)
    assert load_checkpoint(tmp_path / "ck.pt").train_settings().adam_beta2 == 0.999


def test_checkpoint_from_other_settings_is_refused(tiny_scan: dict[str, Path], tmp_path: Path) -> None:
    comm = Communicator(use_mpi=False)
    train(TINY_TRAIN, tiny_scan["sinogram"], tmp_path / "ck.pt", comm)
    other = dataclasses.replace(TINY_TRAIN, lr=5e-3)
    with pytest.raises(InputError, match=r"ck\.pt.*differing: lr"):
        train(other, tiny_scan["sinogram"], tmp_path / "ck.pt", comm)
    train(other, tiny_scan["sinogram"], tmp_path / "ck.pt", comm, other_settings="reuse")


def test_checkpoint_from_other_settings_is_set_aside_on_restart(tiny_scan: dict[str, Path], tmp_path: Path,
                                                                  caplog: pytest.LogCaptureFixture) -> None:
    """``restart``: the old checkpoint is renamed with its settings hash, the new run
    starts at step 0 and ends equal to a run that never saw the old checkpoint."""
    comm = Communicator(use_mpi=False)
    first = train(dataclasses.replace(TINY_TRAIN, steps=10), tiny_scan["sinogram"], tmp_path / "ck.pt", comm)
    other = dataclasses.replace(TINY_TRAIN, steps=10, lr=5e-3)
    with caplog.at_level(logging.WARNING, logger="dinr.train.loop"):
        restarted = train(other, tiny_scan["sinogram"], tmp_path / "ck.pt", comm, other_settings="restart")
    kept = tmp_path / f"ck.{first.settings_hash[:12]}.pt"
    assert load_checkpoint(kept).step == 10 and load_checkpoint(kept).settings_hash == first.settings_hash
    assert "differing: lr" in caplog.text and str(kept) in caplog.text
    fresh = train(other, tiny_scan["sinogram"], tmp_path / "fresh.pt", comm)
    assert [row[:2] for row in restarted.history] == [row[:2] for row in fresh.history]  # step, loss
    for name, value in fresh.model.items():
        assert torch.equal(value, restarted.model[name]), name
    same = train(other, tiny_scan["sinogram"], tmp_path / "ck.pt", comm, other_settings="restart")
    assert same.history == restarted.history  # same settings: resumed (complete), nothing set aside
    assert sorted(p.name for p in tmp_path.glob("ck.*.pt")) == [kept.name]


def test_checkpoint_whose_priors_the_code_derives_otherwise_is_refused_or_restarted(
        tiny_scan: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture) -> None:
    """The same settings, but the code now derives another prior from them (a rule or a
    constant changed; here the spatial TV weight doubles): going on would train the rest
    of the run on another objective, so it is refused, or set aside on ``restart``, and
    the run it restarts is the one a fresh start under the new prior gives."""
    from dinr.train import setup

    comm = Communicator(use_mpi=False)
    short = dataclasses.replace(TINY_TRAIN, steps=10)
    first = train(short, tiny_scan["sinogram"], tmp_path / "ck.pt", comm)
    derived = setup.prior_record

    def doubled(*args: Any, **kwargs: Any) -> dict[str, Any]:
        prior = derived(*args, **kwargs)
        return {**prior, "tv_weight": 2.0 * prior["tv_weight"]}

    monkeypatch.setattr(setup, "prior_record", doubled)
    with pytest.raises(InputError, match=r"ck\.pt.*differing: prior tv_weight\)"):
        train(short, tiny_scan["sinogram"], tmp_path / "ck.pt", comm)
    with caplog.at_level(logging.WARNING, logger="dinr.train.loop"):
        restarted = train(short, tiny_scan["sinogram"], tmp_path / "ck.pt", comm, other_settings="restart")
    assert "differing: prior tv_weight)" in caplog.text
    assert restarted.prior["tv_weight"] == pytest.approx(2.0 * first.prior["tv_weight"])
    kept = tmp_path / f"ck.{first.settings_hash[:12]}.pt"
    assert load_checkpoint(kept).step == 10 and load_checkpoint(kept).prior == first.prior
    fresh = train(short, tiny_scan["sinogram"], tmp_path / "fresh.pt", comm)
    assert [row[:2] for row in restarted.history] == [row[:2] for row in fresh.history]  # step, loss
    monkeypatch.setattr(setup, "prior_record", derived)  # the old rule again: this checkpoint is now the other one
    train(short, tiny_scan["sinogram"], tmp_path / "ck.pt", comm, other_settings="restart")
    assert load_checkpoint(kept).prior == first.prior  # the first one set aside is kept, not overwritten
    assert load_checkpoint(tmp_path / f"ck.{first.settings_hash[:12]}.1.pt").prior == restarted.prior


def test_priors_differ_beyond_rounding_only_in_keys_both_hold() -> None:
    """:func:`differing_prior`: a relative 1e-9 is rounding, 1e-3 a difference; a profile
    against none, or of another length, differs; a key one checkpoint lacks is not compared."""
    prior = {"tv_weight": 0.01, "noise_variance": 2e-4, "time_profile": [1.0, 3.0, 5.0]}
    assert differing_prior(prior, {**prior, "tv_weight": 0.01 * (1 + 1e-9)}) == []
    assert differing_prior(prior, {**prior, "tv_weight": 0.01 * (1 + 1e-3)}) == ["prior tv_weight"]
    assert differing_prior(prior, {**prior, "time_profile": None}) == ["prior time_profile"]
    assert differing_prior(prior, {**prior, "time_profile": [1.0, 3.0]}) == ["prior time_profile"]
    assert differing_prior({**prior, "time_profile": None}, {**prior, "time_profile": None}) == []
    older = {k: v for k, v in prior.items() if k != "time_profile"}
    assert differing_prior(older, {**prior, "time_profile": [9.0]}) == []


def test_a_step_taken_in_passes_matches_one_pass(tiny_scan: dict[str, Path], tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """A step too large for one pass (a wide detector) adds up the gradients of passes of
    whole rays: the same training up to float rounding."""
    from dinr.train import step

    one_pass = train(TINY_TRAIN, tiny_scan["sinogram"], tmp_path / "one.pt", Communicator(use_mpi=False))
    monkeypatch.setattr(step, "MAX_POINTS_PER_PASS", 3 * TINY_TRAIN.samples_per_ray)  # 22 passes of <= 3 rays
    assert len(step.ray_passes(TINY_TRAIN.batch_rays, TINY_TRAIN.samples_per_ray)) == 22
    passes = train(TINY_TRAIN, tiny_scan["sinogram"], tmp_path / "passes.pt", Communicator(use_mpi=False))
    np.testing.assert_allclose([h[1] for h in passes.history], [h[1] for h in one_pass.history], rtol=1e-4)
    reference = one_pass.field().state_dict()
    for key, value in passes.field().state_dict().items():
        np.testing.assert_allclose(value.numpy(), reference[key].numpy(), rtol=1e-3, atol=1e-5, err_msg=key)
