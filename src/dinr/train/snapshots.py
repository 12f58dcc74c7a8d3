"""Snapshots of the field during training, for its quality against wall time.

A snapshot is the field's parameters at one step with the training's elapsed wall time,
``<dir>/step_<step>.pt``; unlike a checkpoint it holds no optimizer state and cannot
resume a run. The final model (a checkpoint) gives the settings to rebuild the field.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch

from dinr.errors import InputError
from dinr.io.atomic import atomic_path


def save_snapshot(directory: str | os.PathLike[str], step: int, elapsed_s: float,
                  model: dict[str, torch.Tensor]) -> Path:
    """Write the parameters ``model`` at ``step`` after ``elapsed_s`` seconds of training."""
    path = Path(directory) / f"step_{step:07d}.pt"
    with atomic_path(path) as tmp:
        torch.save({"step": step, "elapsed_s": float(elapsed_s), "model": model}, tmp)
    return path


def load_snapshots(directory: str | os.PathLike[str]) -> list[dict[str, object]]:
    """Every snapshot of ``directory``, by step: ``{"step", "elapsed_s", "model"}``."""
    paths = sorted(Path(directory).glob("step_*.pt"))
    if not paths:
        raise InputError(f"{directory}: no training snapshots (step_*.pt)")
    snapshots = []
    for path in paths:
        stored = torch.load(path, map_location="cpu", weights_only=True)
        if not isinstance(stored, dict) or set(stored) != {"step", "elapsed_s", "model"}:
            raise InputError(f"{path}: not a training snapshot")
        snapshots.append(stored)
    return snapshots
