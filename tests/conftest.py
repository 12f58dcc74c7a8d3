"""Shared fixtures: a tiny simulated scan, prepared once per test session."""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

# Triton's kernels run on CPU tensors through its interpreter where there is no GPU; the
# flag is read when a kernel is defined, so it is set before any test imports one.
if not torch.cuda.is_available():
    os.environ.setdefault("TRITON_INTERPRET", "1")

from dinr import stages  # noqa: E402
from dinr.settings import GeometrySettings, PrepareSettings, SimulateSettings, TrainSettings, section_defaults  # noqa: E402
from dinr.train.checkpoint import TrainingState  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
PEER = SHARED / "peer-vectors" / "tomopy"

TINY_SIMULATE = SimulateSettings(
    phantom="compression", size=32, rows=2, views=120, turns=2, photons=2e4, frames=4,
    view_time_s=0.01, twist_deg=40.0, motion="steady", seed=3,
)
TINY_TRAIN = TrainSettings(
    encoding="hashgrid", n_features=16, sigma_t=0.5, sigma_s=3.0, hash_levels=4, hash_features=2,
    hash_log2_table=12, hash_min_resolution=4, hash_static_levels=0, hash_slow_levels=0, space_resolution="auto", time_resolution="auto",
    time_cells_per_half_turn=1, time_cells_pilot_epochs=2, time_cells_pilot_rays=10**9, time_ends="linear", initial="none",
    width=16, hidden_layers=1, output_scale="auto", nonnegative=False, steps=30, max_epochs=30, max_wall_s=None,
    validate_every_epochs=0.2, validate_every_rays=10**9, patience=3, validation_rays=256, batch_rays=64, ray_shards="auto",
    samples_per_ray=8, coarse_samples=0, loss_weights="transmission", tv_weight="auto", tv_time_weight="auto", lr=1e-2, lr_final=1e-3,
    adam_beta2=0.999, adam_eps=1e-8, warmup_steps=5, seed=0,
    checkpoint_every=10,
    log_every=5, checksum_every=5, nonfinite_retries=3, allreduce_buckets=1, cuda_aware_mpi=False, precision="fp32", device="cpu",
    share_gpus=False, deterministic=False,
)


def train(settings: TrainSettings, sinogram: Path, checkpoint: Path, comm: object,
          other_settings: str = "refuse") -> TrainingState:
    """``dinr train`` in this process: the final model goes beside the checkpoint."""
    model = checkpoint.with_name(checkpoint.stem + "-model.pt")
    return stages.train(settings, sinogram, checkpoint, model, comm, other_settings)  # type: ignore[arg-type]


def peer_vector(name: str) -> np.ndarray:
    """A TomoPy test vector from ``../shared/peer-vectors/tomopy`` (beside the checkout)."""
    path = PEER / name
    if not path.exists():
        pytest.fail(f"{path}: TomoPy peer vector missing; the tests expect shared/ beside the repository")
    return np.load(path)


def mpiexec() -> str:
    """The MPI launcher installed beside this Python (same MPI as mpi4py), or on PATH."""
    local = Path(sys.executable).parent / "mpiexec"
    found = str(local) if local.exists() else shutil.which("mpiexec")
    if found is None:
        pytest.fail("mpiexec not found: install the project (pip install -e '.[test]') to get MPICH")
    return found


def dinr_command(*args: str, ranks: int = 0, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """Run ``dinr ARGS`` (under ``mpiexec -n ranks`` when ranks > 0) and capture its output."""
    command = [sys.executable, "-m", "dinr.cli", *args]
    if ranks:
        command = [mpiexec(), "-n", str(ranks), *command]
    return subprocess.run(command, capture_output=True, text=True, timeout=timeout)


def write_settings(path: Path, settings: object) -> Path:
    path.write_text(json.dumps(dataclasses.asdict(settings)))  # type: ignore[call-overload]
    return path


def prepare_settings(**overrides: object) -> PrepareSettings:
    """The schema's ``prepare`` defaults, with ``overrides``."""
    return PrepareSettings(**{**section_defaults("prepare"), **overrides})  # type: ignore[arg-type]


def geometry_settings(**overrides: object) -> GeometrySettings:
    """The schema's ``geometry`` defaults (parallel beam), with ``overrides``."""
    return GeometrySettings(**{**section_defaults("geometry"), **overrides})  # type: ignore[arg-type]


@pytest.fixture(scope="session")
def tiny_scan(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A simulated tiny scan: raw file, truth and prepared sinogram paths."""
    root = tmp_path_factory.mktemp("tiny")
    raw, truth, sino = root / "scan.h5", root / "truth.h5", root / "sinogram.h5"
    stages.simulate(TINY_SIMULATE, geometry_settings(), raw, truth)
    stages.prepare(prepare_settings(), geometry_settings(), raw, sino)
    return {"root": root, "raw": raw, "truth": truth, "sinogram": sino}
