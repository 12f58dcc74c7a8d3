"""Typed settings of each stage, built from the validated config.

The defaults live in ``workflow/schemas/config.schema.yaml``; the workflow resolves a
dataset's settings (defaults, then global sections, then the dataset's overrides) and
hands each stage its section as a JSON file. Here each section becomes a frozen
dataclass, and a key that is missing or unknown is an error that names it.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import os
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, TypeVar

import jsonschema
import yaml

from dinr.errors import InputError


@dataclass(frozen=True)
class SimulateSettings:
    """Built-in phantom scan. Sizes in pixels, ``photons`` in counts per flat pixel."""

    phantom: str
    size: int
    rows: int
    views: int
    turns: float
    photons: float
    frames: int
    view_time_s: float
    twist_deg: float
    motion: str
    seed: int


@dataclass(frozen=True)
class ConvertSettings:
    """Region of interest, [start, stop) detector ``rows`` and ``views`` (null: all), and
    ``flat_view``: the view index of each equal group of flats (null: from the file)."""

    rows: list[int] | None
    views: list[int] | None
    flat_view: list[int] | None


@dataclass(frozen=True)
class PrepareSettings:
    """Flat/dark correction, artefact removal and the rotation axis.

    ``center`` in detector columns (null: found by ``find_center``, or ``cols / 2`` when
    that is ``none``); every ``heldout_every``-th view is held out of training and FBP
    (0: none); ``angles_at`` says where in each exposure the raw file's angle and time
    of a view were recorded (``middle`` or ``start``); zingers are removed when ``zinger_threshold`` is set (``zinger_size``
    pixels); ``stripe`` ``vo`` removes stripes with Vo's method (``stripe_snr``,
    median widths ``stripe_large_size`` and ``stripe_small_size`` in pixels).
    """

    center: float | None
    find_center: str
    heldout_every: int
    angles_at: str
    transmission_floor: float
    zinger_threshold: float | None
    zinger_size: int
    stripe: str
    stripe_snr: float
    stripe_large_size: int
    stripe_small_size: int


@dataclass(frozen=True)
class TrainSettings:
    """The field and its distributed optimisation (see ``config/README.md`` for units)."""

    encoding: str
    n_features: int
    sigma_t: float
    sigma_s: float
    hash_levels: int
    hash_features: int
    hash_log2_table: int | str
    hash_min_resolution: int
    hash_static_levels: int
    hash_slow_levels: int
    space_resolution: int | str
    time_resolution: int | str
    time_cells_per_half_turn: int | str
    time_cells_pilot_epochs: float
    time_cells_pilot_rays: int
    time_ends: str
    initial: str
    width: int
    hidden_layers: int
    output_scale: float | str
    nonnegative: bool
    steps: int | str
    max_epochs: float
    max_wall_s: float | None
    validate_every_epochs: float
    validate_every_rays: int
    patience: int
    validation_rays: int
    batch_rays: int
    ray_shards: int | str
    samples_per_ray: int | str
    coarse_samples: int | str
    loss_weights: str
    tv_weight: float | str
    tv_time_weight: float | str
    lr: float
    lr_final: float
    adam_beta2: float
    adam_eps: float
    warmup_steps: int
    seed: int
    checkpoint_every: int
    log_every: int
    checksum_every: int
    nonfinite_retries: int
    allreduce_buckets: int
    cuda_aware_mpi: bool
    precision: str
    device: str
    share_gpus: bool
    deterministic: bool


@dataclass(frozen=True)
class RenderSettings:
    """Frame times and chunking of the rendered 4D volume, whether its frames are refined
    against the views around them (``refine``: ``auto`` or ``none``, at most
    ``refine_iterations`` L-BFGS iterations a frame; :mod:`dinr.inr.refine`), and the
    formats it and every rendering are exported to (``exports``)."""

    frames: int
    chunk: int
    supersample: int
    exports: list[str]
    refine: str
    refine_iterations: int


@dataclass(frozen=True)
class RenderingSettings:
    """One rendering of a trained field: its instants (``times``: a list of seconds,
    ``{"count": N}``, or ``{"rate_hz": R, "start_s": a, "stop_s": b}``), a ``region``
    of the scan's grid (``{"units": "voxels" | "mm", "z" | "y" | "x": [start, stop]}``,
    or ``None`` for all of it), ``upsample`` voxels per detector pixel, ``supersample``
    points per voxel side, and a ``plane`` (``volume``, ``axial``, ``vertical``) at
    ``at`` voxels (see :mod:`dinr.rendering`)."""

    times: list[float] | dict[str, Any]
    region: dict[str, Any] | None
    upsample: int
    supersample: int
    plane: str
    at: float | None


@dataclass(frozen=True)
class GeometrySettings:
    """The beam: ``parallel`` (synchrotron) or ``cone`` (point source, flat panel,
    circular orbit). Lengths in mm, each ``None`` to take the raw file's value
    (``/measurement``; see :mod:`dinr.io.dxchange`): the source-to-axis and
    source-to-detector distances (cone beam), the detector pitch, and
    ``detector_offset_rows``, the detector row of the central ray (the ray from the
    source perpendicular to the axis) minus the middle of the rows read, in pixels."""

    beam: str
    source_axis_mm: float | None
    source_detector_mm: float | None
    pixel_size_mm: float | None
    detector_offset_rows: float


@dataclass(frozen=True)
class BaselineSettings:
    """Baselines: the ``methods`` compared with DINR, FBP's backend (auto, tomopy, astra)
    and filter, the ``device`` they run on (auto, cpu, cuda; :mod:`dinr.baselines.device`),
    and the regularisation and iterations of the MBIR peers (mbirjax)."""

    backend: str
    filter: str
    methods: list[str]
    device: str
    mbir_sharpness: float
    mbir_iterations: int
    mace4d_iterations: int
    mace4d_prior_weight: float


S = TypeVar("S")

#: The config section each settings class is read from.
SECTIONS: dict[type, str] = {
    SimulateSettings: "simulate", ConvertSettings: "convert", PrepareSettings: "prepare",
    TrainSettings: "train", RenderSettings: "render", BaselineSettings: "baselines", GeometrySettings: "geometry",
    RenderingSettings: "rendering",
}


@functools.cache
def section_schemas() -> dict[str, Any]:
    """The JSON schemas of the config sections (``$defs`` of the workflow's schema,
    shipped inside the package as ``dinr/schemas/config.schema.yaml``)."""
    text = resources.files("dinr").joinpath("schemas/config.schema.yaml").read_text()
    return dict(yaml.safe_load(text)["$defs"])


def section_defaults(section: str) -> dict[str, Any]:
    """The schema's default value of every key of a config section."""
    return {key: spec["default"] for key, spec in section_schemas()[section]["properties"].items()}


def default_field_settings() -> TrainSettings:
    """The schema's train defaults for building one field outside ``dinr train``
    (benchmarks): ``time_cells_per_half_turn`` at 1, the first candidate of ``auto``,
    whose choice needs pilot trainings (:mod:`dinr.train.time_cells`)."""
    return TrainSettings(**{**section_defaults("train"), "time_cells_per_half_turn": 1})


def from_dict(cls: type[S], values: dict[str, Any], where: str) -> S:
    """Build settings ``cls`` from ``values``, checked against its section's schema;
    ``where`` names the source in errors, which also name the offending key."""
    if not isinstance(values, dict):
        raise InputError(f"{where}: expected a mapping of settings, found {type(values).__name__}")
    names = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    unknown = sorted(set(values) - names)
    missing = sorted(names - set(values))
    if unknown:
        raise InputError(f"{where}: unknown key(s) {', '.join(unknown)}")
    if missing:
        raise InputError(f"{where}: missing key(s) {', '.join(missing)}")
    section = SECTIONS[cls]
    error = jsonschema.exceptions.best_match(
        jsonschema.Draft202012Validator(section_schemas()[section]).iter_errors(values))
    if error is not None:
        key = ".".join([section, *map(str, error.absolute_path)])
        raise InputError(f"{where}: {key}: {error.message}")
    return cls(**values)


def load_section(cls: type[S], path: str | os.PathLike[str]) -> S:
    """Read one section's settings from a JSON file written by the workflow."""
    return load_section_and_records(cls, path, ())[0]


def load_section_and_records(cls: type[S], path: str | os.PathLike[str],
                             records: tuple[str, ...]) -> tuple[S, dict[str, Any]]:
    """Like :func:`load_section`, for a file that also records the values of ``records``
    beside the settings (e.g. the simulator's version): those keys are returned apart
    (absent ones left out)."""
    path = Path(path)
    try:
        values = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise InputError(f"{path}: cannot read settings ({exc})") from exc
    recorded = {key: values.pop(key) for key in records if isinstance(values, dict) and key in values}
    return from_dict(cls, values, str(path)), recorded
