"""Faults during training: signals, dead ranks, non-finite values. Nothing is lost."""

from __future__ import annotations

import dataclasses
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import TINY_TRAIN, dinr_command, mpiexec, train, write_settings
from dinr.errors import NumericalError
from dinr.io.canonical import read_sinogram, write_sinogram
from dinr.train.checkpoint import load_checkpoint, save_checkpoint
from dinr.train.comm import Communicator
from dinr.train.loop import LR_BACKOFF

LONG_TRAIN = dataclasses.replace(TINY_TRAIN, steps=1500, checkpoint_every=10, log_every=100)


def rank_processes(launcher_pid: int) -> list[int]:
    """Pids of the ``dinr`` processes below an ``mpiexec`` process (its ranks)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(parent, []).append(int(entry.name))
    found, todo = [], [launcher_pid]
    while todo:
        pid = todo.pop()
        for child in children.get(pid, []):
            todo.append(child)
            try:
                if b"dinr.cli" in Path(f"/proc/{child}/cmdline").read_bytes():
                    found.append(child)
            except OSError:
                continue
    return sorted(found)


def start_two_rank_training(args: list[str], checkpoint: Path) -> tuple[subprocess.Popen[str], list[int]]:
    """Start ``dinr train ARGS`` on 2 ranks; return once its first checkpoint exists,
    with the job and its two rank pids."""
    job = subprocess.Popen([mpiexec(), "-n", "2", sys.executable, "-m", "dinr.cli", *args],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.monotonic() + 120
    while not checkpoint.exists() and job.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    assert checkpoint.exists(), f"{checkpoint} never appeared"
    ranks = rank_processes(job.pid)
    assert len(ranks) == 2, f"expected 2 rank processes, found {ranks}"
    return job, ranks


def largest_difference(model_a: Path, model_b: Path) -> float:
    a = load_checkpoint(model_a).field().state_dict()
    b = load_checkpoint(model_b).field().state_dict()
    return max(float(torch.max(torch.abs(a[k].double() - b[k].double()))) for k in a)


def train_args(settings: Path, sinogram: Path, checkpoint: Path, model: Path) -> list[str]:
    return ["train", "--settings", str(settings), "--sinogram", str(sinogram),
            "--checkpoint", str(checkpoint), "--model", str(model)]


def test_sigterm_to_one_rank_checkpoints_stops_all_and_resumes_exactly(
        tiny_scan: dict[str, Path], tmp_path: Path) -> None:
    settings = write_settings(tmp_path / "train.json", LONG_TRAIN)
    checkpoint, model = tmp_path / "ck.pt", tmp_path / "model.pt"
    args = train_args(settings, tiny_scan["sinogram"], checkpoint, model)
    job, ranks = start_two_rank_training(args, checkpoint)
    os.kill(ranks[-1], signal.SIGTERM)  # Slurm signals every task; one is the harder case
    output, _ = job.communicate(timeout=60)
    assert job.returncode == 75, output
    assert "stopped by SIGTERM" in output or "stopped by a signal to another rank" in output
    stopped_at = int(load_checkpoint(checkpoint).step)
    assert 0 < stopped_at < LONG_TRAIN.steps and not model.exists()

    resumed = dinr_command(*args, ranks=2)
    assert resumed.returncode == 0, resumed.stderr
    assert f"resuming from {checkpoint} at step {stopped_at}" in resumed.stderr
    straight = dinr_command(*train_args(settings, tiny_scan["sinogram"], tmp_path / "s.pt", tmp_path / "s_model.pt"),
                            ranks=2)
    assert straight.returncode == 0, straight.stderr
    assert largest_difference(model, tmp_path / "s_model.pt") == 0.0


def test_a_killed_rank_ends_the_job_promptly_and_the_checkpoint_survives(
        tiny_scan: dict[str, Path], tmp_path: Path) -> None:
    settings = write_settings(tmp_path / "train.json", LONG_TRAIN)
    checkpoint, model = tmp_path / "ck.pt", tmp_path / "model.pt"
    args = train_args(settings, tiny_scan["sinogram"], checkpoint, model)
    job, ranks = start_two_rank_training(args, checkpoint)
    killed = time.monotonic()
    os.kill(ranks[-1], signal.SIGKILL)
    job.communicate(timeout=60)
    assert job.returncode != 0 and time.monotonic() - killed < 60
    survived = load_checkpoint(checkpoint)  # complete and finite, or this raises
    assert 0 < int(survived.step) < LONG_TRAIN.steps

    rerun = dinr_command(*args, ranks=2)
    assert rerun.returncode == 0, rerun.stderr
    assert f"at step {int(survived.step)}" in rerun.stderr
    assert int(load_checkpoint(model).step) == LONG_TRAIN.steps


def test_a_rank_that_raises_ends_the_job(tiny_scan: dict[str, Path], tmp_path: Path) -> None:
    """One training view: rank 1 has none and fails while rank 0 waits in a collective."""
    full = read_sinogram(tiny_scan["sinogram"], split="all")
    full.heldout = np.arange(len(full.theta)) > 0
    one_view = tmp_path / "one_view.h5"
    write_sinogram(one_view, full, {})
    settings = write_settings(tmp_path / "train.json", TINY_TRAIN)
    started = time.monotonic()
    result = dinr_command(*train_args(settings, one_view, tmp_path / "ck.pt", tmp_path / "m.pt"), ranks=2, timeout=90)
    assert result.returncode != 0 and time.monotonic() - started < 60
    assert "ray shard 1 (rank 1 of 2) has no training views" in result.stderr


def sinogram_with_nan_rays(source: Path, target: Path, fraction: float) -> Path:
    """A copy of a prepared scan with a ``fraction`` of its detector pixels set to NaN."""
    sino = read_sinogram(source, split="all")
    rng = np.random.default_rng(0)
    sino.projections[rng.random(sino.projections.shape) < fraction] = np.nan
    write_sinogram(target, sino, {})
    return target


def test_nonfinite_steps_are_skipped_with_a_lower_learning_rate(tiny_scan: dict[str, Path], tmp_path: Path) -> None:
    # 64 rays a step, 0.2 % NaN pixels: about one step in eight sees one.
    sinogram = sinogram_with_nan_rays(tiny_scan["sinogram"], tmp_path / "nan.h5", fraction=0.002)
    settings = dataclasses.replace(TINY_TRAIN, steps=100)
    state = train(settings, sinogram, tmp_path / "ck.pt", Communicator(use_mpi=False))
    skipped = state.skipped_steps
    assert 3 <= len(skipped) < 50, skipped
    assert state.lr_scale == LR_BACKOFF ** len(skipped)
    assert all(bool(torch.isfinite(t).all()) for t in state.model.values())
    assert load_checkpoint(tmp_path / "ck.pt").skipped_steps == skipped


def test_persistent_nonfinite_loss_stops_training_with_a_clear_error(
        tiny_scan: dict[str, Path], tmp_path: Path) -> None:
    sinogram = sinogram_with_nan_rays(tiny_scan["sinogram"], tmp_path / "nan.h5", fraction=1.0)
    settings = write_settings(tmp_path / "train.json", TINY_TRAIN)
    checkpoint = tmp_path / "ck.pt"
    result = dinr_command(*train_args(settings, sinogram, checkpoint, tmp_path / "m.pt"))
    assert result.returncode == 1
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("dinr train: error: non-finite loss or gradient in 4 steps in a row"), result.stderr
    assert "Traceback" not in result.stderr
    assert not checkpoint.exists()  # a failed run never writes a checkpoint it could not stand behind
    with pytest.raises(NumericalError):
        train(TINY_TRAIN, sinogram, tmp_path / "ck2.pt", Communicator(use_mpi=False))


def test_a_checkpoint_with_nonfinite_parameters_is_refused(tiny_scan: dict[str, Path], tmp_path: Path) -> None:
    checkpoint = tmp_path / "ck.pt"
    state = train(TINY_TRAIN, tiny_scan["sinogram"], checkpoint, Communicator(use_mpi=False))
    state.model["encoding.tables.0"][0, 0] = float("nan")
    save_checkpoint(checkpoint, state)
    settings = write_settings(tmp_path / "train.json", TINY_TRAIN)
    result = dinr_command(*train_args(settings, tiny_scan["sinogram"], checkpoint, tmp_path / "m.pt"))
    assert result.returncode == 2
    assert result.stderr.strip() == f"dinr train: error: {checkpoint}: checkpoint holds non-finite parameters (encoding.tables.0)"
