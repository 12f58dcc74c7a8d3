"""Training checkpoints: written atomically, refused when made under another config."""

from __future__ import annotations

import hashlib
import json
import os
import pickle
from pathlib import Path
from typing import Any

import torch

from dinr.errors import InputError
from dinr.io.atomic import atomic_path


def settings_hash(settings: dict[str, Any]) -> str:
    """SHA-256 of the settings that define a training run, as canonical JSON."""
    return hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()


def differing_keys(a: dict[str, Any], b: dict[str, Any]) -> list[str]:
    """Top-level keys whose values differ between two settings dictionaries."""
    return sorted(k for k in set(a) | set(b) if a.get(k) != b.get(k))


def save_checkpoint(path: str | os.PathLike[str], state: dict[str, Any]) -> None:
    """Write ``state`` with torch.save to a temporary file, then rename it into place;
    the previous checkpoint stays intact until the new one is complete."""
    with atomic_path(path) as tmp:
        torch.save(state, tmp)


#: What every checkpoint holds (the ray schedule is a function of ``settings.seed`` and
#: ``step``, so no random-generator state needs saving).
REQUIRED_KEYS = ("model", "optimizer", "step", "settings", "settings_hash", "ranks", "ray_shards", "field_spec",
                 "history", "geometry", "scan_time", "lr_scale", "skipped_steps")


def load_checkpoint(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Load a checkpoint written by :func:`save_checkpoint` (onto the CPU); refuse one
    that is unreadable, lacks a key of :data:`REQUIRED_KEYS` or holds non-finite
    parameters."""
    path = Path(path)
    try:
        state = torch.load(path, map_location="cpu", weights_only=False)
    except (OSError, RuntimeError, EOFError, pickle.UnpicklingError) as exc:
        raise InputError(f"{path}: not a readable checkpoint ({exc})") from exc
    missing = [key for key in REQUIRED_KEYS if not isinstance(state, dict) or key not in state]
    if missing:
        raise InputError(f"{path}: not a DINR checkpoint (missing: {', '.join(missing)})")
    bad = [name for name, tensor in state["model"].items() if not bool(torch.isfinite(tensor).all())]
    if bad:
        raise InputError(f"{path}: checkpoint holds non-finite parameters ({', '.join(bad)})")
    return state
