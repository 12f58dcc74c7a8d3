"""Training checkpoints: the state of a run, written atomically, validated on load.

A checkpoint (and the final model, which is the last checkpoint plus provenance) is a
:class:`TrainingState` saved by ``torch.save`` as a plain dictionary of its fields, so a
file never depends on where a class lives. The ray schedule is a function of the seed,
the step and the shard, so no random-generator state needs saving.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import pickle
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from dinr.errors import InputError
from dinr.geometry import Geometry, geometry_from_dict
from dinr.inr.build import build_field
from dinr.inr.field import AttenuationField
from dinr.io.atomic import atomic_path
from dinr.settings import TrainSettings, section_defaults


#: Training keys of the field's architecture and of its optimizer, with the value a
#: checkpoint made before the key existed was trained with (fields before the static grid
#: had none; Adam was PyTorch's), whatever the key's default is or becomes.
TRAINED_BEFORE_KEY: dict[str, object] = {"hash_static_levels": 0, "time_ends": "linear",
                                         "time_cells_per_half_turn": 1, "hash_slow_levels": 0,
                                         "adam_beta2": 0.999, "adam_eps": 1e-8, "initial": "none",
                                         "tv_time_weight": 0}


@dataclass
class TrainingState:
    """Everything needed to resume a run, or to rebuild and use its field.

    ``model`` and ``optimizer`` are state dicts; ``step`` the steps done; ``settings`` the
    train section as a dict and ``settings_hash`` its hash with the ray-shard count;
    ``field_spec`` what :func:`dinr.inr.build.field_spec` resolved from the scan;
    ``history`` rows of (step, mean loss, rays/s); ``geometry`` the
    beam geometry (:mod:`dinr.geometry`) as a dict; ``scan_time`` (first,
    last) view time in seconds; ``launch`` ranks, device and Slurm step; ``lr_scale`` the
    learning-rate factor left by skipped steps, listed in ``skipped_steps``; ``prior`` the
    TV weight and the noise variance it came from; ``validation`` rows of (step, held-out
    relative residual, learning rate) and ``validation_moving`` rows of (step, the residual
    where the scan moves) when its stillness is measured (:mod:`dinr.train.validation`);
    ``plateau`` the state of ``steps: auto`` (:class:`dinr.train.schedule.Plateau` as a
    dict); ``train_seconds`` the training wall time summed over resumes; ``stop_reason``
    why the run ended (empty while it runs);
    ``sinogram_id`` the fingerprint of the prepared scan it was trained on
    (:func:`dinr.io.canonical.sinogram_id`; empty when unknown); ``pilots`` the pilot
    runs that chose its time cells (``time_cells_per_half_turn: auto``,
    :func:`dinr.train.time_cells.pilot_record`; final model only, empty when none ran);
    ``time_ends`` how ``time_ends: heldout`` chose the end weights when the run stopped
    (:func:`dinr.train.end_weights.choose_end_weights`; empty before, and for other ends);
    ``best`` the step, field and optimizer (host copies) of the best held-out evaluation of
    a ``steps: auto`` run, which a diverged run goes back to (:func:`dinr.train.loop.restore_best`;
    checkpoints only, empty in the final model); ``provenance`` (final model only).
    """

    model: dict[str, torch.Tensor]
    optimizer: dict[str, Any]
    step: int
    settings: dict[str, Any]
    settings_hash: str
    ranks: int
    ray_shards: int
    field_spec: dict[str, Any]
    history: list[list[float]]
    geometry: dict[str, Any]
    scan_time: tuple[float, float]
    launch: dict[str, str]
    lr_scale: float
    skipped_steps: list[int]
    prior: dict[str, Any]
    validation: list[list[float]] = dataclasses.field(default_factory=list)
    validation_moving: list[list[float]] = dataclasses.field(default_factory=list)
    plateau: dict[str, float] = dataclasses.field(default_factory=dict)
    train_seconds: float = 0.0
    stop_reason: str = ""
    sinogram_id: str = ""
    pilots: dict[str, Any] = dataclasses.field(default_factory=dict)
    time_ends: dict[str, Any] = dataclasses.field(default_factory=dict)
    best: dict[str, Any] = dataclasses.field(default_factory=dict)
    provenance: dict[str, str] | None = None

    def completed_settings(self) -> dict[str, Any]:
        """The run's training settings with the keys added to the schema since then: at
        their defaults, except those of ``TRAINED_BEFORE_KEY``, which take the value the
        run was trained with."""
        return {**section_defaults("train"), **TRAINED_BEFORE_KEY, **self.settings}

    def identity(self, adaptive: bool) -> dict[str, Any]:
        """The run's identity (:func:`run_identity`) over :meth:`completed_settings`: what
        a run of these settings is today, where the stored ``settings_hash`` predates the
        keys added since."""
        return run_identity(self.completed_settings(), self.ray_shards, self.sinogram_id, adaptive)

    def identity_hash(self, adaptive: bool) -> str:
        """:func:`settings_hash` of :meth:`identity`."""
        return settings_hash(self.identity(adaptive))

    def train_settings(self) -> TrainSettings:
        """The training settings of the run (:meth:`completed_settings`)."""
        known = {f.name for f in dataclasses.fields(TrainSettings)}
        return TrainSettings(**{k: v for k, v in self.completed_settings().items() if k in known})

    def field(self) -> AttenuationField:
        """The trained field, rebuilt from the settings and spec and loaded (CPU)."""
        field = build_field(self.train_settings(), self.field_spec)
        field.load_state_dict(self.model)
        return field

    def beam_geometry(self) -> Geometry:
        """The scan's geometry the field was trained in."""
        return geometry_from_dict(self.geometry)

    def losing_pilots_seconds(self) -> float:
        """Training seconds of the pilots that lost the time-cell choice (:attr:`pilots`;
        0 when none ran): they ran before the run went on from the winner's."""
        return losing_pilots_seconds(self.pilots)

    def seconds_trained(self) -> float:
        """Wall seconds the run has trained: ``train_seconds`` (summed over resumes; the
        winning pilot's, whose checkpoint the run continued, included) plus
        :meth:`losing_pilots_seconds`."""
        return self.train_seconds + self.losing_pilots_seconds()


def losing_pilots_seconds(record: dict[str, Any]) -> float:
    """Training seconds of the candidates in a time-cell choice's ``record``
    (:func:`dinr.train.time_cells.pilot_record`; empty: none ran) other than the chosen one."""
    chosen = record.get("chosen")
    return sum(c["train_seconds"] for c in record.get("candidates", []) if c["time_cells_per_half_turn"] != chosen)


#: The fields every checkpoint must hold (all but the optional ones).
REQUIRED_KEYS = tuple(f.name for f in dataclasses.fields(TrainingState)
                      if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING)


#: Training keys that only cap a run steered by its held-out residual (``steps: auto``
#: with held-out views): they decide where it stops, not the steps it takes, so they are
#: left out of its identity and raising one continues a run stopped by it.
BUDGET_CAPS = ("max_epochs", "max_wall_s")


def run_identity(settings: dict[str, Any], ray_shards: int, sinogram: str, adaptive: bool) -> dict[str, Any]:
    """What identifies a training run (hashed by :func:`settings_hash`): its training
    settings, its ray-shard count and its scan's fingerprint, less :data:`BUDGET_CAPS`
    when the held-out residual steers it (``adaptive``)."""
    kept = {key: value for key, value in settings.items() if not (adaptive and key in BUDGET_CAPS)}
    return {**kept, "ray_shards": ray_shards, "sinogram": sinogram}


def settings_hash(settings: dict[str, Any]) -> str:
    """SHA-256 of the settings that define a training run, as canonical JSON."""
    return hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()


def differing_keys(a: dict[str, Any], b: dict[str, Any]) -> list[str]:
    """Top-level keys whose values differ between two settings dictionaries."""
    return sorted(k for k in set(a) | set(b) if a.get(k) != b.get(k))


#: Relative tolerance to which two runs' priors agree: the noise variance they come from is
#: a sum over ranks, whose rounding may differ between launches.
PRIOR_RTOL = 1e-6


def differing_prior(saved: dict[str, Any], current: dict[str, Any]) -> list[str]:
    """Keys of two priors (:func:`dinr.train.setup.prior_record`: the TV weights, the
    temporal prior's step and profile, the noise variance) that differ beyond
    :data:`PRIOR_RTOL`, each named ``prior <key>``; only keys both hold are compared (a
    checkpoint may predate one). The priors are derived from the settings and the scan
    by the code's rules (:mod:`dinr.train.time_cells`), so they change where a rule or
    a constant of the code changed although no setting did."""
    def agree(a: Any, b: Any) -> bool:
        if a is None or b is None:
            return a is None and b is None
        a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
        return a.shape == b.shape and bool(np.allclose(a, b, rtol=PRIOR_RTOL, atol=0.0))

    return [f"prior {key}" for key in sorted(set(saved) & set(current)) if not agree(saved[key], current[key])]


def save_checkpoint(path: str | os.PathLike[str], state: TrainingState) -> None:
    """Write ``state`` with torch.save to a temporary file, then rename it into place;
    the previous checkpoint stays intact until the new one is complete."""
    fields = {f.name: getattr(state, f.name) for f in dataclasses.fields(state)}
    if state.provenance is None:
        del fields["provenance"]
    with atomic_path(path) as tmp:
        torch.save(fields, tmp)


def load_checkpoint(path: str | os.PathLike[str]) -> TrainingState:
    """Load a checkpoint written by :func:`save_checkpoint` (onto the CPU); refuse one
    that is unreadable, lacks a field of :class:`TrainingState` or holds non-finite
    parameters."""
    path = Path(path)
    try:
        stored = torch.load(path, map_location="cpu", weights_only=False)
    except (OSError, RuntimeError, EOFError, pickle.UnpicklingError) as exc:
        raise InputError(f"{path}: not a readable checkpoint ({exc})") from exc
    missing = [key for key in REQUIRED_KEYS if not isinstance(stored, dict) or key not in stored]
    if missing:
        raise InputError(f"{path}: not a DINR checkpoint (missing: {', '.join(missing)})")
    known = {f.name for f in dataclasses.fields(TrainingState)}
    state = TrainingState(**{k: v for k, v in stored.items() if k in known})
    bad = [name for name, tensor in state.model.items() if not bool(torch.isfinite(tensor).all())]
    if bad:
        raise InputError(f"{path}: checkpoint holds non-finite parameters ({', '.join(bad)})")
    return state
