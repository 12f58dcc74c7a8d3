"""The distributed training loop of DINR.

The training views are dealt into ray shards (:mod:`dinr.train.shards`); a rank holds
only its shards' views and draws ``batch_rays`` rays a step from each, from a stream
seeded by (seed, step, shard). Each rank back-propagates its share of the objective
(:mod:`dinr.train.objective`); gradients are summed by one in-place MPI allreduce of a
flat buffer (:mod:`dinr.train.reducer`), and every rank takes the same Adam step
(:mod:`dinr.train.step`), so parameters stay identical (checked by CRC every
``checksum_every`` steps). The rays of a step do not depend on the number of ranks, only
on the shards: one rank holding two shards replays a two-rank run.

A stop request (a signal received by any rank) checkpoints and raises
:class:`~dinr.train.signals.Interrupted` on every rank at the same step. A step with a
non-finite loss or gradient is skipped and the learning rate halved; after
``nonfinite_retries`` such steps in a row training stops with :class:`NumericalError`.
Parameters are checked finite before every checkpoint.
"""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path
from typing import Any

import numpy as np
import torch

from dinr.errors import InputError, NumericalError
from dinr.io.canonical import Sinogram
from dinr.settings import TrainSettings
from dinr.train.checkpoint import (BUDGET_CAPS, TrainingState, differing_keys, differing_prior, load_checkpoint,
                                   save_checkpoint, settings_hash)
from dinr.train.comm import Communicator
from dinr.train.end_weights import choose_end_weights, restore_fitted
from dinr.train.progress import Progress
from dinr.train.setup import TrainingRun, set_up
from dinr.train.signals import Interrupted, stop_on_signals
from dinr.train.snapshots import save_snapshot
from dinr.train.schedule import DIVERGENCE_FACTOR, MIN_IMPROVEMENT, Plateau, learning_rate
from dinr.train.step import MAX_POINTS_PER_PASS, train_step
from dinr.train.warm_start import warm_start

log = logging.getLogger(__name__)

#: Factor applied to the learning rate after each step skipped as non-finite.
LR_BACKOFF = 0.5


def initial_state(run: TrainingRun) -> TrainingState:
    """The state of a run before its first step (parameters are filled in by
    :func:`snapshot`)."""
    return TrainingState(
        model={}, optimizer={}, step=0, settings=run.config, settings_hash=run.run_hash, ranks=run.comm.size,
        ray_shards=run.n_shards, field_spec=run.spec, history=[], geometry=dataclasses.asdict(run.geometry),
        scan_time=run.scan_time, launch=run.launch, lr_scale=1.0, skipped_steps=[], prior=run.prior,
        sinogram_id=run.sinogram_id,
    )


#: What :func:`resume` does with a checkpoint made with other settings.
OTHER_SETTINGS = ("refuse", "reuse", "restart")


def set_aside(checkpoint_path: Path, saved_hash: str) -> Path:
    """Rename a checkpoint made with other settings to ``<stem>.<hash>.pt`` beside it
    (the first 12 hex digits of its settings hash), keeping any earlier one of that name
    (the same settings under other priors): then ``<stem>.<hash>.<n>.pt``, the first
    ``n`` free."""
    stem, suffix = f"{checkpoint_path.stem}.{saved_hash[:12]}", checkpoint_path.suffix
    target, n = checkpoint_path.with_name(stem + suffix), 1
    while target.exists():
        target, n = checkpoint_path.with_name(f"{stem}.{n}{suffix}"), n + 1
    checkpoint_path.replace(target)
    return target


def resume(run: TrainingRun, state: TrainingState, checkpoint_path: Path, other_settings: str = "refuse") -> None:
    """Continue from ``checkpoint_path`` when it exists: load the field and optimizer and
    take over step, history, learning-rate scale and skipped steps into ``state``; a run
    that had stopped at a cap (:data:`~dinr.train.checkpoint.BUDGET_CAPS`) that is now
    raised goes on (its steps are those of an uncapped run). Keys
    the checkpoint predates count at their schema defaults, or, for keys of the field's
    architecture, at the value it was trained with. A checkpoint made with other
    settings, or whose priors (:func:`~dinr.train.checkpoint.differing_prior`) the code
    now derives otherwise from the same settings, is, by ``other_settings``:
    ``refuse``-d, naming the differing keys; ``reuse``-d as it is (it goes on under
    this run's priors); or, for ``restart``, renamed aside (:func:`set_aside`) by
    rank 0 and the run started afresh, which the log says."""
    if other_settings not in OTHER_SETTINGS:
        raise ValueError(f"other_settings must be one of {OTHER_SETTINGS}, got {other_settings!r}")
    if not checkpoint_path.exists():
        return
    saved = load_checkpoint(checkpoint_path)
    stored = saved.identity(run.budget.adaptive)
    saved_hash = settings_hash(stored)
    prior_keys = differing_prior(saved.prior, run.prior)
    if (saved_hash != run.run_hash or prior_keys) and other_settings != "reuse":
        keys = ", ".join(differing_keys(stored, run.identity) + prior_keys) or "hash only"
        if other_settings == "refuse":
            raise InputError(f"{checkpoint_path}: checkpoint was made with other settings (differing: {keys}); "
                             "delete it or pass --reuse-checkpoint or --restart-on-other-settings")
        run.comm.barrier()  # every rank has read the checkpoint before rank 0 moves it
        if run.comm.rank == 0:
            kept = set_aside(checkpoint_path, saved_hash)
            log.warning("%s was made with other settings (differing: %s) at step %d; kept as %s, training "
                        "starts afresh", checkpoint_path, keys, int(saved.step), kept)
        run.comm.barrier()
        return
    run.field.load_state_dict(saved.model)
    run.optimizer.load_state_dict(saved.optimizer)
    state.step, state.history = int(saved.step), list(saved.history)
    state.lr_scale, state.skipped_steps = float(saved.lr_scale), list(saved.skipped_steps)
    state.validation, state.plateau = list(saved.validation), dict(saved.plateau)
    state.validation_moving = list(saved.validation_moving)
    state.train_seconds, state.stop_reason = float(saved.train_seconds), saved.stop_reason
    state.time_ends, state.best = dict(saved.time_ends), dict(saved.best)
    if run.comm.rank == 0:
        log.info("resuming from %s at step %d", checkpoint_path, state.step)
    if state.stop_reason.startswith(BUDGET_CAPS) and not budget_reason(run, state, state.step,
                                                                        agreed_seconds(run, state)):
        if run.comm.rank == 0:
            log.info("it had stopped for %s; the raised cap lets it go on", state.stop_reason)
        state.stop_reason = ""
        restore_fitted(run.field, state.time_ends)  # the end weights go on from their fit, not their choice
        state.time_ends = {}


def snapshot(run: TrainingRun, state: TrainingState, step: int, checkpoint_path: Path) -> TrainingState:
    """``state`` at ``step`` with the current parameters and optimizer state; refuses
    non-finite parameters (the previous checkpoint then stays)."""
    if not all(bool(torch.isfinite(p).all()) for p in run.field.parameters()):
        raise NumericalError(f"non-finite parameters at step {step}; checkpoint {checkpoint_path} not updated")
    return dataclasses.replace(state, model=run.field.state_dict(), optimizer=run.optimizer.state_dict(), step=step)


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


def _log_start(run: TrainingRun) -> None:
    if run.comm.rank == 0:
        log.info("training on %s", ", ".join(f"{key} {value}" for key, value in run.launch.items()))
        log.info("gradient allreduce: %d bucket(s) of %s entries", len(run.reducer.bucket_sizes()),
                 run.reducer.bucket_sizes())
        log.info("TV prior weights %.4g in space, %.4g in time over %.4g of the scan (measurement noise "
                 "variance %.3g)", run.prior["tv_weight"], run.prior["tv_time_weight"], run.prior["time_step"],
                 run.prior["noise_variance"])
        if run.prior["tv_time_weight"] > 0 and run.prior["time_profile"] is not None:
            profile = np.asarray(run.prior["time_profile"])
            log.info("temporal prior scaled by the scan's stillness: by %.2f on average, %s by eighths of the scan",
                     profile.mean(), " ".join(f"{part.mean():.2f}" for part in np.array_split(profile, 8)))
        budget, settings = run.budget, run.settings
        if budget.adaptive:
            log.info("steps auto: until the held-out residual stops improving, at most %d steps (%g epochs of "
                     "%.0f steps); residual of %d held-out rays every %d steps", budget.steps, settings.max_epochs,
                     budget.epoch_steps, run.heldout.total, budget.validate_every)
            if run.coarse_samples != run.samples:
                log.info("%d quadrature points per ray until the first plateau, %d after", run.coarse_samples,
                         run.samples)
        elif settings.steps == "auto":
            log.warning("steps auto without held-out views (prepare.heldout_every is 0): training runs the cap of "
                        "train.max_epochs %g epochs, %d steps", settings.max_epochs, budget.steps)
        else:
            log.info("%d steps (%.1f epochs of %.0f steps)", budget.steps, budget.steps / budget.epoch_steps,
                     budget.epoch_steps)


def validate(run: TrainingRun, state: TrainingState, plateau: Plateau, done: int, lr: float) -> str:
    """Measure the held-out residual after step ``done`` (taken at rate ``lr``), record it
    in ``state.validation`` (and where the scan moves in ``state.validation_moving``) and,
    for an adaptive budget, take it into ``plateau``; return why training must stop now,
    or an empty string."""
    residual, moving = run.heldout.residuals(run.field, run.samples, run.comm, MAX_POINTS_PER_PASS)
    state.validation.append([done, residual, lr])
    if moving is not None:
        state.validation_moving.append([done, moving])
    if not run.budget.adaptive:
        return ""
    diverged = plateau.diverged(residual)
    outcome = plateau.update(residual, run.settings, done)
    state.plateau = plateau.as_dict()
    if run.comm.rank == 0:
        log.info("step %d held-out residual %.6g (best %.6g, %d evaluation(s) since): %s", done, residual,
                 plateau.best, plateau.since_best, outcome)
    if outcome == "improved":
        state.best = {"step": done, "model": host_copy(run.field.state_dict()),
                      "optimizer": host_copy(run.optimizer.state_dict())}
    elif diverged:
        restore_best(run, state, done)
    if outcome == "converged":
        return (f"converged: the held-out residual did not improve on {plateau.best:.6g} by "
                f"{MIN_IMPROVEMENT:g} in {run.settings.patience} evaluations at the lowest learning rate")
    return ""


def host_copy(value: Any) -> Any:
    """``value`` (a state dict: tensors in nested dicts and lists) with every tensor
    copied to host memory."""
    if isinstance(value, torch.Tensor):
        return value.detach().to("cpu", copy=True)
    if isinstance(value, dict):
        return {key: host_copy(item) for key, item in value.items()}
    if isinstance(value, list):
        return [host_copy(item) for item in value]
    return value


def restore_best(run: TrainingRun, state: TrainingState, done: int) -> None:
    """Put back the field and optimizer of the best held-out evaluation (``state.best``)
    after the evaluation at step ``done`` found the run diverged
    (:data:`~dinr.train.schedule.DIVERGENCE_FACTOR`); a checkpoint made before the best
    was kept has none, and the run then goes on at the lowered rate alone."""
    if not state.best:
        if run.comm.rank == 0:
            log.warning("step %d: the run diverged and no best field was kept (its checkpoint predates "
                        "that); it goes on at the lowered rate", done)
        return
    run.field.load_state_dict(state.best["model"])
    run.optimizer.load_state_dict(host_copy(state.best["optimizer"]))  # a copy: the kept one stays as it is
    if run.comm.rank == 0:
        log.warning("step %d: the held-out residual is more than %g times its best: the run diverged; it goes "
                    "on from the field and optimizer of step %d at half the rate", done, DIVERGENCE_FACTOR,
                    state.best["step"])


def step_samples(run: TrainingRun, plateau: Plateau) -> int:
    """Quadrature points per ray of the next step: ``train.coarse_samples`` until the
    held-out residual's first plateau halves the learning rate (``steps: auto`` with
    held-out views), ``samples_per_ray`` from then on and in every other run."""
    return run.coarse_samples if run.budget.adaptive and plateau.reductions == 0 else run.samples


def wall_limited(settings: TrainSettings) -> bool:
    """Whether ``max_wall_s`` bounds the run (``steps: auto``)."""
    return settings.steps == "auto" and settings.max_wall_s is not None


def agreed_seconds(run: TrainingRun, state: TrainingState) -> float:
    """The run's training seconds as every rank takes them (the slowest rank's), for
    the wall-time limit; 0 when no limit is set."""
    return run.comm.allreduce_max(state.train_seconds) if wall_limited(run.settings) else 0.0


def budget_reason(run: TrainingRun, state: TrainingState, done: int, seconds: float) -> str:
    """Why the run stops at step ``done`` for its budget (steps, epochs or wall time), or
    an empty string; ``seconds`` is the training time agreed across ranks
    (:func:`agreed_seconds`)."""
    settings, budget = run.settings, run.budget
    if wall_limited(settings) and seconds >= settings.max_wall_s:
        return f"max_wall_s: {seconds:.0f} s of training reached the limit of {settings.max_wall_s:g} s"
    if done < budget.steps:
        return ""
    if settings.steps == "auto":
        return f"max_epochs: {settings.max_epochs:g} epochs ({budget.steps} steps) reached"
    return f"steps: the configured {budget.steps} steps done"


def choose_time_ends(run: TrainingRun, state: TrainingState, done: int) -> None:
    """``time_ends: heldout``: choose the end weights of the stopped run by its held-out
    views (:mod:`dinr.train.end_weights`) into ``state.time_ends``; without held-out
    views the fitted weights stay, which the log says."""
    if not run.heldout.total:
        if run.comm.rank == 0:
            log.warning("time_ends heldout without held-out views (prepare.heldout_every is 0): the fitted end "
                        "weights stay")
        return
    state.time_ends = choose_end_weights(run.field, run.heldout, run.samples, run.comm, MAX_POINTS_PER_PASS)
    run.comm.check_identical(run.field, done)


def train(settings: TrainSettings, shards: dict[int, Sinogram], n_shards: int, noise_variance: float,
          checkpoint_path: str | Path, comm: Communicator, other_settings: str = "refuse",
          snapshot_dir: Path | None = None, snapshot_every: int = 0, local_peak: float | None = None,
          heldout: dict[int, Sinogram] | None = None, sinogram_id: str = "", choose_ends: bool = True,
          stillness: np.ndarray | None = None, time_profile: np.ndarray | None = None) -> TrainingState:
    """Train the field on this rank's ray ``shards`` (shard index -> its training views)
    of ``n_shards``, with the scan's ``noise_variance`` for the prior (``local_peak``: the
    shards' line-integral peak, if already measured) and ``heldout`` (shard index -> its
    held-out views) for the stopping rule (:mod:`dinr.train.schedule`) and the scan's
    ``sinogram_id`` (a checkpoint of another scan is one of other settings); return the final
    state (as checkpointed), whose ``stop_reason`` says why it ended. Resumes from
    ``checkpoint_path`` (see :func:`resume`, which treats a checkpoint made with other
    settings by ``other_settings``). With ``snapshot_dir``, rank 0 also saves the field
    every ``snapshot_every`` steps and at the end (:mod:`dinr.train.snapshots`), with the
    run's ``train_seconds`` so far (summed over resumes, the warm start's fit included; a
    run that goes on from its time-cell pilot counts the pilot's). Under ``time_ends:
    heldout`` the stopped run's end weights are chosen by its held-out views
    (:func:`choose_time_ends`), unless ``choose_ends`` is false (a pilot, which a run may
    go on from). ``stillness``: the scan's table of :mod:`dinr.prep.stillness` (None: not
    measured), for the held-out residual where the scan moves; ``time_profile``: the
    temporal prior's weight over the scan (:func:`dinr.train.setup.prior_record`; None:
    alike at every instant)."""
    checkpoint_path = Path(checkpoint_path)
    run = set_up(settings, shards, n_shards, noise_variance, comm, local_peak, heldout, sinogram_id, stillness,
                 time_profile)
    state = initial_state(run)
    resume(run, state, checkpoint_path, other_settings)
    fit_seconds, fitted = (warm_start(run, list(shards.values())) if state.step == 0 and run.settings.initial == "fbp"
                           else (0.0, False))
    if fitted and run.budget.adaptive:
        # The fit counts as the first plateau: it has found what the first rate finds, the
        # object's shape. From FBP at lr 0.02 the 128-pixel parallel scan's held-out residual
        # spiked and once diverged before its first plateau; at 0.01 it passed sliding MBIR.
        state.plateau = Plateau(reductions=1).as_dict()
    state.train_seconds += fit_seconds  # the fit counts as training: max_wall_s and the snapshots' clock include it
    if snapshot_dir is not None and fit_seconds and comm.rank == 0:
        save_snapshot(snapshot_dir, 0, state.train_seconds, run.field.state_dict())
    comm.check_identical(run.field, state.step)
    plateau = Plateau(**state.plateau)
    budget = run.budget
    progress = Progress(budget.steps, state.step, run.global_rays, bound=settings.steps == "auto")
    seconds_before = state.train_seconds
    _log_start(run)
    run.field.train()
    done = state.step
    with stop_on_signals() as stop:
        for step in range(state.step, budget.steps if not state.stop_reason else state.step):
            lr = learning_rate(settings, budget, step, plateau.reductions) * state.lr_scale
            outcome = train_step(run, step, lr, stop.requested, step_samples(run, plateau))
            done = step + 1
            state.train_seconds = seconds_before + progress.elapsed()
            seconds = agreed_seconds(run, state)
            if not outcome.finite:
                state.lr_scale = skip_nonfinite_step(done, state.skipped_steps, state.lr_scale,
                                                     settings.nonfinite_retries, comm.rank)
            reason = validate(run, state, plateau, done, lr) if budget.validate_every and \
                done % budget.validate_every == 0 else ""
            logged = done % settings.log_every == 0
            reason = reason or budget_reason(run, state, done, seconds)
            if logged or reason:
                mean_loss = comm.allreduce_sum(outcome.loss.item()) / comm.size
                text, rays_per_s = progress.line(step, mean_loss, lr)
                state.history.append([done, mean_loss, rays_per_s])
                if comm.rank == 0:
                    log.info(text)
            if done % settings.checksum_every == 0 or reason:
                comm.check_identical(run.field, done)
            if outcome.stop_requested:
                if comm.rank == 0:
                    save_checkpoint(checkpoint_path, snapshot(run, state, done, checkpoint_path))
                comm.barrier()
                raise Interrupted(stop.signal_name or "a signal to another rank", done, str(checkpoint_path))
            if reason:
                state.stop_reason = reason
                if comm.rank == 0:
                    log.info("training stopped at step %d (%.2f epochs, %.0f s): %s", done,
                             done / budget.epoch_steps, state.train_seconds, reason)
                break
            if done % settings.checkpoint_every == 0 and comm.rank == 0:
                save_checkpoint(checkpoint_path, snapshot(run, state, done, checkpoint_path))
            if snapshot_dir is not None and done % snapshot_every == 0 and comm.rank == 0:
                save_snapshot(snapshot_dir, done, state.train_seconds, run.field.state_dict())
    if choose_ends and settings.time_ends == "heldout" and (done > state.step or not state.time_ends):
        choose_time_ends(run, state, done)
        state.train_seconds = seconds_before + progress.elapsed()  # the final field's ends are part of its training
    if snapshot_dir is not None and comm.rank == 0 and done > 0:
        save_snapshot(snapshot_dir, done, state.train_seconds, run.field.state_dict())
    final = snapshot(run, state, done, checkpoint_path)
    if comm.rank == 0:
        save_checkpoint(checkpoint_path, final)
    comm.barrier()
    return final
