"""Setting up a training run: device, geometry, field, optimizer, reducer, sampler,
budget and held-out rays from the settings and this rank's ray shards.

Every value derived from the scan (output scale, angular span, TV weight) is agreed
across ranks by a collective, so all ranks build the same field.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import os
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from dinr.geometry import Geometry
from dinr.geometry.resolve import geometry_of
from dinr.inr.build import build_field, field_spec, spec_time_span
from dinr.inr.field import AttenuationField
from dinr.inr.rays import coarse_samples_per_ray, samples_per_ray
from dinr.io.canonical import Sinogram
from dinr.settings import TrainSettings
from dinr.train.checkpoint import run_identity, settings_hash
from dinr.train.comm import Communicator
from dinr.train.device import choose_device
from dinr.train.objective import tv_time_weight, tv_weight
from dinr.train.reducer import GradientReducer
from dinr.train.sampler import RaySampler, ShardedSampler
from dinr.train.schedule import Budget, budget
from dinr.train.validation import HeldoutRays

log = logging.getLogger(__name__)

#: Control slots at the end of the gradient buffer: stop requested, loss non-finite.
STOP_SLOT, NONFINITE_SLOT = -2, -1


@dataclass
class TrainingRun:
    """What a run holds for its whole length: the settings (and as a dict, hashed with
    the shard count), the ranks, the scan's geometry and time span, the field and its
    optimizer, the gradient reducer, the ray sampler, the resolved quantities
    (``spec``, ``prior``, ``samples`` per ray and ``coarse_samples`` before the first
    plateau, ``global_rays`` per step, the ``budget``)
    and this rank's held-out rays (``heldout``, :mod:`dinr.train.validation`); the
    settings as a dict and the run's hash derive from them."""

    settings: TrainSettings
    comm: Communicator
    device: torch.device
    n_shards: int
    geometry: Geometry
    scan_time: tuple[float, float]
    spec: dict[str, Any]
    prior: dict[str, Any]
    field: AttenuationField
    optimizer: torch.optim.Optimizer
    reducer: GradientReducer
    sampler: ShardedSampler
    samples: int
    coarse_samples: int
    global_rays: int
    launch: dict[str, str]
    budget: Budget
    heldout: HeldoutRays
    sinogram_id: str = ""
    time_profile: torch.Tensor | None = None

    @property
    def config(self) -> dict[str, Any]:
        """The train settings as the dict a checkpoint stores."""
        return dataclasses.asdict(self.settings)

    @property
    def run_hash(self) -> str:
        """The hash that identifies the run: its settings, its ray-shard count and the
        fingerprint of its scan (``sinogram``)."""
        return settings_hash(self.identity)

    @property
    def identity(self) -> dict[str, Any]:
        """What :attr:`run_hash` hashes (:func:`dinr.train.checkpoint.run_identity`)."""
        return run_identity(self.config, self.n_shards, self.sinogram_id, self.budget.adaptive)


def line_integral_peak(projections: np.ndarray, overwrite: bool = False) -> float:
    """The 99.9th percentile of a shard's line integrals (NaN ignored): what ``auto``
    output scales are set by. With ``overwrite`` the array is reordered in place instead of
    copied (the caller reads it again), so a shard never exists twice in memory."""
    return float(np.nanpercentile(projections, 99.9, overwrite_input=overwrite))


def output_scale(settings: TrainSettings, shards: list[Sinogram], geometry: Geometry,
                 comm: Communicator, local_peak: float | None = None) -> float:
    """The field's output scale: configured, or ``auto`` = the attenuation that would
    give the largest measured line integral (the largest 99.9th percentile of a shard,
    :func:`line_integral_peak`; ``local_peak`` when the caller measured it) along a
    cylinder diameter."""
    if settings.output_scale != "auto":
        return float(settings.output_scale)
    local = local_peak if local_peak is not None else max(line_integral_peak(s.projections) for s in shards)
    return max(comm.allreduce_max(local), 1e-6) / (2.0 * geometry.radius)


def angular_span(shards: list[Sinogram], comm: Communicator) -> float:
    """Radians of rotation from the first to the last training view of the scan."""
    theta = np.concatenate([shard.theta for shard in shards])
    return comm.allreduce_max(float(theta.max())) + comm.allreduce_max(-float(theta.min()))


def launch_record(comm: Communicator, device: torch.device) -> dict[str, str]:
    """How this run was launched: ranks, device, and the Slurm job step when under Slurm."""
    slurm = {key.lower(): os.environ[key] for key in ("SLURM_JOB_ID", "SLURM_STEP_ID", "SLURM_STEP_NUM_TASKS")
             if key in os.environ}
    return {"ranks": str(comm.size), "device": str(device), **slurm}


def prior_record(settings: TrainSettings, noise_variance: float, views: int,
                 geometry: Geometry, spec: dict[str, Any], time_profile: np.ndarray | None = None) -> dict[str, Any]:
    """The TV priors' weights in space and time, the temporal prior's step (one cell of
    the finest time level, normalised time; 0 for a static field), the scan's noise
    variance they were derived from and the ``time_profile`` the temporal prior's weight
    is multiplied by over the scan (a table like the stillness's, :mod:`dinr.prep.stillness`;
    chosen by :func:`dinr.train.time_cells.time_prior_profile`), as a list (None: the
    temporal prior acts alike at every instant). The priors count the
    finest level's cells at its resolution across the whole scan (a grid spanning part of
    the scan, see :func:`dinr.inr.build.field_spec`, has fewer); ``views``: the scan's
    training views."""
    start, end = spec_time_span(spec)
    time_step = (end - start) / spec["time_resolution"] if spec["time_resolution"] else 0.0
    time_cells = round(1.0 / time_step) if time_step else 0
    weight = tv_weight(settings, noise_variance, geometry, views, time_cells, float(spec["scale"]))
    return {"tv_weight": weight, "tv_time_weight": tv_time_weight(settings, weight, time_cells),
            "time_step": time_step, "noise_variance": noise_variance,
            "time_profile": None if time_profile is None else [float(v) for v in time_profile]}


def epoch_rays(geometry: Geometry, views: int) -> int:
    """Rays of an epoch of ``views`` training views: each view's rays that cross the
    reconstruction cylinder (rows x crossing columns)."""
    return views * geometry.rows * int(np.count_nonzero(geometry.column_mask()))


def warn_if_motion_unresolved(settings: TrainSettings, spec: dict[str, Any], span: float) -> None:
    """Log a warning when ``time_resolution: auto`` made a static field because the
    training views span ``span`` radians, one half-turn or less: no two instants of such
    a scan see every direction, so motion during it cannot be told from structure."""
    if settings.time_resolution == "auto" and spec["time_resolution"] == 0:
        log.warning("the training views span %.1f degrees of rotation (%.2f half-turns): too little to resolve "
                    "motion, so train.time_resolution auto gives a static field; a deforming object needs more "
                    "than one half-turn (set train.time_resolution to force a time grid)", math.degrees(span),
                    span / math.pi)


#: ``train.initial: auto`` starts from FBP (``fbp``) on a scan whose epoch is more steps
#: than this, and from the initialisation (``none``) otherwise. Such a scan's training ends
#: within about two epochs (the 128-pixel scans of ``config/paper.yaml``, 2736 steps an
#: epoch: 1.1-1.7), so the shape the fit gives is worth most of a budget that never
#: reaches it from noise; a 64-pixel scan (342 steps an epoch) converges after 8-10 epochs,
#: gains at most 0.1 dB from the fit and can lose 0.3 dB to noise in it (docs/measurements.md, "Where
#: training starts").
AUTO_FBP_EPOCH_STEPS = 1000


def starting_point(initial: str, epoch_steps: float) -> str:
    """``train.initial`` resolved for a scan of ``epoch_steps`` steps an epoch:
    ``auto`` becomes ``fbp`` above :data:`AUTO_FBP_EPOCH_STEPS` and ``none`` otherwise;
    ``none`` and ``fbp`` stay."""
    if initial != "auto":
        return initial
    return "fbp" if epoch_steps > AUTO_FBP_EPOCH_STEPS else "none"


def set_up(settings: TrainSettings, shards: dict[int, Sinogram], n_shards: int, noise_variance: float,
           comm: Communicator, local_peak: float | None = None,
           heldout: dict[int, Sinogram] | None = None, sinogram_id: str = "",
           stillness: np.ndarray | None = None, time_profile: np.ndarray | None = None) -> TrainingRun:
    """A run on this rank's ``shards`` (shard index -> its views) of ``n_shards``, with
    the scan's ``noise_variance`` for the priors, its ``stillness`` table
    (:mod:`dinr.prep.stillness`, or None) for the held-out residual where it moves, and
    the temporal prior's ``time_profile`` (:func:`prior_record`); parameters broadcast
    from rank 0.
    ``local_peak``: the shards' :func:`line_integral_peak`, if already measured;
    ``heldout``: shard index -> its held-out views (none: the run cannot validate);
    ``sinogram_id``: the scan's fingerprint, part of the run's identity."""
    held = list(shards.values())
    geometry = geometry_of(held[0])
    device = choose_device(settings.device, comm, settings.share_gpus)
    if settings.deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")  # cuBLAS's condition for repeatable matmuls
        torch.use_deterministic_algorithms(True)
    scale = output_scale(settings, held, geometry, comm, local_peak)
    span = angular_span(held, comm)
    spec = field_spec(settings, geometry, span, scale)
    if comm.rank == 0:
        warn_if_motion_unresolved(settings, spec, span)
    field = build_field(settings, spec).to(device)
    views = int(comm.allreduce_sum(float(sum(len(shard.theta) for shard in held))))
    validation = HeldoutRays(heldout or {}, geometry, settings.validation_rays // n_shards, settings.seed, device,
                             settings.loss_weights == "transmission", comm,
                             None if stillness is None else torch.tensor(stillness, dtype=torch.float32, device=device))
    run_budget = budget(settings, epoch_rays(geometry, views), settings.batch_rays * n_shards, validation.total > 0)
    initial = starting_point(settings.initial, run_budget.epoch_steps)
    if settings.initial == "auto" and comm.rank == 0:
        log.info("initial auto: %s (an epoch is %.0f steps; fbp above %d)", initial, run_budget.epoch_steps,
                 AUTO_FBP_EPOCH_STEPS)
    settings = dataclasses.replace(settings, initial=initial)
    prior = prior_record(settings, noise_variance, views, geometry, spec, time_profile)
    if settings.tv_time_weight == "auto" and prior["tv_time_weight"] > 0 and stillness is None and comm.rank == 0:
        log.warning("the scan's stillness is not measured (no two training views a turn apart): tv_time_weight "
                    "auto acts alike at every instant")
    comm.broadcast_module(field)
    optimizer = torch.optim.Adam(field.parameters(), lr=settings.lr, betas=(0.9, settings.adam_beta2),
                                 eps=settings.adam_eps, fused=device.type in ("cpu", "cuda"))
    reducer = GradientReducer(field, comm, control_slots=2, buckets=settings.allreduce_buckets,
                              cuda_aware=settings.cuda_aware_mpi)
    sampler = ShardedSampler([RaySampler(shard, geometry, shard=index, seed=settings.seed, device=device)
                              for index, shard in shards.items()])
    samples = samples_per_ray(settings.samples_per_ray, geometry.n)
    return TrainingRun(
        settings=settings, comm=comm, device=device, n_shards=n_shards, geometry=geometry, scan_time=held[0].scan_time, spec=spec,
        prior=prior, field=field, optimizer=optimizer, reducer=reducer, sampler=sampler,
        samples=samples, coarse_samples=coarse_samples_per_ray(settings.coarse_samples, samples),
        global_rays=settings.batch_rays * n_shards, launch=launch_record(comm, device),
        budget=run_budget,
        heldout=validation,
        sinogram_id=sinogram_id,
        time_profile=(None if prior["time_profile"] is None
                      else torch.tensor(prior["time_profile"], dtype=torch.float32, device=device)),
    )
