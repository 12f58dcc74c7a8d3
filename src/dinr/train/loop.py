"""The distributed training loop of DINR.

The training views are dealt into ``ray_shards`` shards (view ``k`` of the training
views to shard ``k % shards``; one shard per rank by default); a rank reads only the
views of its shards and draws ``batch_rays`` rays a step from each, from a stream seeded
by (seed, step, shard). Each rank back-propagates its part of the mean squared error of
all ``shards * batch_rays`` predicted line integrals; gradients are summed by one
in-place MPI allreduce of a flat buffer, and every rank takes the same Adam step, so
parameters stay identical (checked by CRC every ``checksum_every`` steps). The rays of
a step do not depend on the number of ranks, only on the shards: one rank holding two
shards replays a two-rank run.

Two flags travel at the end of the gradient buffer, so every rank takes the same
decision at the same step without an extra message: a stop request (a signal received
by any rank: checkpoint, then :class:`~dinr.train.signals.Interrupted` on every rank)
and a non-finite loss (with a non-finite gradient, the step is skipped and the learning
rate halved; after ``nonfinite_retries`` such steps in a row training stops with
:class:`NumericalError`). Parameters are checked finite before every checkpoint.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import os
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from dinr.errors import InputError, NumericalError
from dinr.geometry.parallel import ParallelGeometry
from dinr.inr.build import build_field, field_spec
from dinr.inr.field import AttenuationField
from dinr.inr.rays import sample_along_rays
from dinr.io.canonical import Sinogram, read_noise_variance, read_sinogram, training_views
from dinr.settings import TrainSettings, section_defaults
from dinr.train.checkpoint import differing_keys, load_checkpoint, save_checkpoint, settings_hash
from dinr.train.comm import Communicator
from dinr.train.objective import along_ray_variation, ray_weights, tv_weight
from dinr.train.reducer import GradientReducer
from dinr.train.sampler import RaySampler, ShardedSampler, owned_shards
from dinr.train.signals import Interrupted, stop_on_signals

log = logging.getLogger(__name__)

#: Factor applied to the learning rate after each step skipped as non-finite.
LR_BACKOFF = 0.5
#: Control slots at the end of the gradient buffer: stop requested, loss non-finite.
_STOP, _NONFINITE = -2, -1


def geometry_of(sino: Sinogram) -> ParallelGeometry:
    """The reconstruction geometry of a prepared scan (grid as wide as the detector)."""
    _, rows, cols = sino.shape
    return ParallelGeometry(rows=rows, cols=cols, center=sino.center, n=cols)


def settings_from_checkpoint(state: dict[str, Any]) -> TrainSettings:
    """The training settings a checkpoint was made with; keys added to the schema since
    then take their defaults (none of them changes the field's architecture)."""
    defaults = section_defaults("train")
    known = {f.name for f in dataclasses.fields(TrainSettings)}
    return TrainSettings(**{**defaults, **{k: v for k, v in state["settings"].items() if k in known}})


def field_from_checkpoint(state: dict[str, Any]) -> AttenuationField:
    """Rebuild the trained field stored in a checkpoint."""
    field = build_field(settings_from_checkpoint(state), state["field_spec"])
    field.load_state_dict(state["model"])
    return field


def choose_device(requested: str, comm: Communicator) -> torch.device:
    """One GPU per rank by node-local rank when CUDA is there (or asked for), else CPU."""
    if requested == "cpu" or (requested == "auto" and not torch.cuda.is_available()):
        torch.set_num_threads(comm.cpu_threads())
        return torch.device("cpu")
    if not torch.cuda.is_available():
        raise InputError("train.device: 'cuda' requested but no CUDA device is available")
    return torch.device("cuda", comm.local_rank % torch.cuda.device_count())


def samples_per_ray(settings: TrainSettings, geometry: ParallelGeometry) -> int:
    """Quadrature points per ray: configured, or ``auto`` = one stratum per pixel of the
    cylinder diameter. Coarser strata make the jittered estimate noisy across sharp
    edges, and the squared-error loss then rewards blurring them."""
    return geometry.n if settings.samples_per_ray == "auto" else int(settings.samples_per_ray)


def learning_rate(settings: TrainSettings, step: int) -> float:
    """Linear warm-up, then exponential decay from ``lr`` to ``lr_final`` at the last step."""
    if step < settings.warmup_steps:
        return settings.lr * (step + 1) / settings.warmup_steps
    progress = (step - settings.warmup_steps) / max(1, settings.steps - settings.warmup_steps)
    return settings.lr * (settings.lr_final / settings.lr) ** progress


def output_scale(settings: TrainSettings, shards: list[Sinogram], geometry: ParallelGeometry,
                 comm: Communicator) -> float:
    """The field's output scale: configured, or ``auto`` = the attenuation that would
    give the largest measured line integral (the largest 99.9th percentile of a shard)
    along a cylinder diameter."""
    if settings.output_scale != "auto":
        return float(settings.output_scale)
    local = max(float(np.nanpercentile(shard.projections, 99.9)) for shard in shards)
    return max(comm.allreduce_max(local), 1e-6) / (2.0 * geometry.radius)


def launch_record(comm: Communicator, device: torch.device) -> dict[str, str]:
    """How this run was launched: ranks, device, and the Slurm job step when under Slurm."""
    slurm = {key.lower(): os.environ[key] for key in ("SLURM_JOB_ID", "SLURM_STEP_ID", "SLURM_STEP_NUM_TASKS")
             if key in os.environ}
    return {"ranks": str(comm.size), "device": str(device), **slurm}


def ray_shard_count(settings: TrainSettings, comm: Communicator) -> int:
    """``train.ray_shards``, with ``auto`` = one shard per rank."""
    return comm.size if settings.ray_shards == "auto" else int(settings.ray_shards)


def read_shards(settings: TrainSettings, sinogram_path: str | Path, comm: Communicator) -> dict[int, Sinogram]:
    """This rank's ray shards (shard index -> its training views), read from disk."""
    shards = ray_shard_count(settings, comm)
    if shards < comm.size:
        raise InputError(f"train.ray_shards: {shards} shard(s) for {comm.size} ranks; each rank needs one or more")
    views = training_views(sinogram_path)
    mine = {}
    for shard in owned_shards(shards, comm.rank, comm.size):
        if len(views[shard::shards]) == 0:
            raise InputError(f"{sinogram_path}: ray shard {shard} (rank {comm.rank} of {comm.size}) has no "
                             f"training views ({len(views)} training views for {shards} shards)")
        mine[shard] = read_sinogram(sinogram_path, views=views[shard::shards])
    return mine


def prior_record(settings: TrainSettings, sinogram_path: str | Path, shards: dict[int, Sinogram],
                 geometry: ParallelGeometry, spec: dict[str, Any], comm: Communicator) -> dict[str, float]:
    """The TV prior's weight and the scan's noise variance it was derived from."""
    noise = read_noise_variance(sinogram_path, settings.loss_weights == "transmission")
    views = int(comm.allreduce_sum(float(sum(len(shard.theta) for shard in shards.values()))))
    weight = tv_weight(settings, noise, geometry, views, int(spec["time_resolution"]), float(spec["scale"]))
    return {"tv_weight": weight, "noise_variance": noise}


class Progress:
    """Periodic progress lines: step, loss, rays/s and ETA."""

    def __init__(self, total: int, start: int, rays_per_step: int) -> None:
        self.total, self.start, self.rays_per_step = total, start, rays_per_step
        self.t0 = time.perf_counter()

    def line(self, step: int, loss: float, lr: float) -> tuple[str, float]:
        done = step + 1 - self.start
        elapsed = time.perf_counter() - self.t0
        rate = done / elapsed if elapsed > 0 else 0.0
        eta = (self.total - step - 1) / rate if rate > 0 else math.inf
        rays = rate * self.rays_per_step
        text = (f"step {step + 1}/{self.total} loss {loss:.4e} lr {lr:.2e} "
                f"{rays:,.0f} rays/s elapsed {elapsed:.0f}s ETA {eta:.0f}s")
        return text, rays


def skip_nonfinite_step(step: int, skipped: list[int], lr_scale: float, retries: int, rank: int) -> float:
    """Record a step skipped for a non-finite loss or gradient; return the lowered
    learning-rate scale, or raise :class:`NumericalError` once more than ``retries``
    steps in a row were skipped."""
    skipped.append(step)
    in_a_row = 1
    while in_a_row < len(skipped) and skipped[-1 - in_a_row] == step - in_a_row:
        in_a_row += 1
    if in_a_row > retries:
        raise NumericalError(
            f"non-finite loss or gradient in {in_a_row} steps in a row (last: step {step}, learning-rate "
            f"scale {lr_scale:g}); the last checkpoint holds the last good parameters"
        )
    if rank == 0:
        log.warning("step %d: non-finite loss or gradient; step skipped, learning rate x%g", step, LR_BACKOFF)
    return lr_scale * LR_BACKOFF


def train(
    settings: TrainSettings, sinogram_path: str | Path, checkpoint_path: str | Path,
    comm: Communicator, reuse_checkpoint: bool = False,
) -> dict[str, Any]:
    """Train the field on a prepared scan; return the final state (as checkpointed).

    The run resumes from ``checkpoint_path`` when it exists and was made with the same
    settings; a checkpoint from other settings is refused (naming the differing keys)
    unless ``reuse_checkpoint``.
    """
    shards = read_shards(settings, sinogram_path, comm)
    n_shards = ray_shard_count(settings, comm)
    first = next(iter(shards.values()))
    geometry = geometry_of(first)
    device = choose_device(settings.device, comm)
    config = dataclasses.asdict(settings)
    run_hash = settings_hash({**config, "ray_shards": n_shards})
    scale = output_scale(settings, list(shards.values()), geometry, comm)
    theta = np.concatenate([shard.theta for shard in shards.values()])
    span = comm.allreduce_max(float(theta.max())) + comm.allreduce_max(-float(theta.min()))
    spec = field_spec(settings, geometry.n, geometry.rows, span, scale)
    field = build_field(settings, spec).to(device)
    prior = prior_record(settings, sinogram_path, shards, geometry, spec, comm)
    comm.broadcast_module(field)
    optimizer = torch.optim.Adam(field.parameters(), lr=settings.lr, fused=device.type in ("cpu", "cuda"))
    history: list[list[float]] = []
    start, lr_scale, skipped = 0, 1.0, []

    checkpoint_path = Path(checkpoint_path)
    if checkpoint_path.exists():
        state = load_checkpoint(checkpoint_path)
        if state["settings_hash"] != run_hash and not reuse_checkpoint:
            keys = differing_keys({**state["settings"], "ray_shards": state["ray_shards"]},
                                  {**config, "ray_shards": n_shards})
            raise InputError(
                f"{checkpoint_path}: checkpoint was made with other settings (differing: "
                f"{', '.join(keys) or 'hash only'}); delete it or pass --reuse-checkpoint"
            )
        field.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        start, history = int(state["step"]), list(state["history"])
        lr_scale, skipped = float(state["lr_scale"]), list(state["skipped_steps"])
        if comm.rank == 0:
            log.info("resuming from %s at step %d", checkpoint_path, start)

    reducer = GradientReducer(field, comm, control_slots=2, buckets=settings.allreduce_buckets,
                              cuda_aware=settings.cuda_aware_mpi)
    grad_buffer = reducer.buffer
    autocast = torch.autocast(device.type, dtype=torch.bfloat16, enabled=settings.precision == "bf16")
    sampler = ShardedSampler([RaySampler(shard, geometry, shard=index, seed=settings.seed, device=device)
                              for index, shard in shards.items()])
    comm.check_identical(field, start)
    global_rays = settings.batch_rays * n_shards
    progress = Progress(settings.steps, start, global_rays)
    launch = launch_record(comm, device)
    if comm.rank == 0:
        log.info("training on %s", ", ".join(f"{key} {value}" for key, value in launch.items()))
        log.info("gradient allreduce: %d bucket(s) of %s entries", len(reducer.bucket_sizes()), reducer.bucket_sizes())
        log.info("TV prior weight %.4g (measurement noise variance %.3g)", prior["tv_weight"], prior["noise_variance"])
    samples = samples_per_ray(settings, geometry)

    def state_at(step: int) -> dict[str, Any]:
        if not all(bool(torch.isfinite(p).all()) for p in field.parameters()):
            raise NumericalError(f"non-finite parameters at step {step}; checkpoint {checkpoint_path} not updated")
        return {
            "model": field.state_dict(), "optimizer": optimizer.state_dict(), "step": step,
            "settings": config, "settings_hash": run_hash, "ranks": comm.size, "ray_shards": n_shards,
            "field_spec": spec, "history": history, "geometry": dataclasses.asdict(geometry),
            "scan_time": first.scan_time, "launch": launch, "lr_scale": lr_scale, "skipped_steps": skipped,
            "prior": prior,
        }

    field.train()
    with stop_on_signals() as stop:
        for step in range(start, settings.steps):
            lr = learning_rate(settings, step) * lr_scale
            for group in optimizer.param_groups:
                group["lr"] = lr
            rays, jitter = sampler.sample(step, settings.batch_rays, samples)
            reducer.zero_()
            with autocast:
                values, stratum = sample_along_rays(field, rays, geometry.radius, samples, jitter)
            predicted = (values * stratum[:, None]).sum(dim=1)
            # This rank's share of the global mean: summed over ranks (allreduce) it is the
            # mean over all shards' rays, whichever rank holds which shard.
            residual = (predicted - rays.measured) ** 2
            if settings.loss_weights == "transmission":
                residual = residual * ray_weights(rays.measured)
            loss = torch.sum(residual) * (comm.size / global_rays)
            if prior["tv_weight"] > 0:
                variation = along_ray_variation(values) * (comm.size / (global_rays * (samples - 1)))
                loss = loss + prior["tv_weight"] * variation
            loss.backward()
            grad_buffer[_STOP] = float(stop.requested)
            grad_buffer[_NONFINITE] = (loss - loss).detach()  # 0, or NaN for an inf/NaN loss
            reducer.average_()
            finite, stop_requested = torch.stack([torch.isfinite(grad_buffer).all(), grad_buffer[_STOP] > 0]).tolist()
            done = step + 1
            if finite:
                optimizer.step()
            else:
                lr_scale = skip_nonfinite_step(done, skipped, lr_scale, settings.nonfinite_retries, comm.rank)
            if done % settings.log_every == 0 or done == settings.steps:
                mean_loss = comm.allreduce_sum(loss.item()) / comm.size
                text, rays_per_s = progress.line(step, mean_loss, lr)
                history.append([done, mean_loss, rays_per_s])
                if comm.rank == 0:
                    log.info(text)
            if done % settings.checksum_every == 0 or done == settings.steps:
                comm.check_identical(field, done)
            if stop_requested:
                if comm.rank == 0:
                    save_checkpoint(checkpoint_path, state_at(done))
                comm.barrier()
                raise Interrupted(stop.signal_name or "a signal to another rank", done, str(checkpoint_path))
            if done % settings.checkpoint_every == 0 and done < settings.steps and comm.rank == 0:
                save_checkpoint(checkpoint_path, state_at(done))
    final = state_at(settings.steps)
    if comm.rank == 0:
        save_checkpoint(checkpoint_path, final)
    comm.barrier()
    return final
