"""One training step: draw rays, evaluate the objective, back-propagate, average the
gradients across ranks and take the optimizer step every rank takes.

Two flags travel at the end of the gradient buffer, so every rank takes the same
decision at the same step without an extra message: a stop request (a signal received
by any rank) and a non-finite loss (NaN in its slot makes the averaged buffer
non-finite, and every rank then skips the update).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from dinr.inr.rays import RayBatch, ray_points
from dinr.train.objective import rank_loss, time_prior_stride, time_variation
from dinr.train.setup import NONFINITE_SLOT, STOP_SLOT, TrainingRun


@dataclass(frozen=True)
class StepOutcome:
    """This rank's loss share, whether the averaged gradient was finite (the update was
    taken) and whether any rank asked to stop."""

    loss: torch.Tensor
    finite: bool
    stop_requested: bool


#: Field evaluations in one forward and backward pass. A step with more points (a wide
#: detector: ``batch_rays x samples_per_ray`` grows with it) is taken in passes of whole
#: rays whose gradients add up, so a step's working memory stays bounded; the objective
#: is a sum over rays, so the gradient is the same up to float rounding.
MAX_POINTS_PER_PASS = 2**17


def ray_passes(rays: int, samples: int) -> list[slice]:
    """The rays of each pass of a step: one pass when ``rays x samples`` fits
    :data:`MAX_POINTS_PER_PASS`, else equal runs of whole rays that fit it."""
    per_pass = max(1, MAX_POINTS_PER_PASS // samples)
    return [slice(start, min(start + per_pass, rays)) for start in range(0, rays, per_pass)]


def train_step(run: TrainingRun, step: int, lr: float, stop_requested: bool, samples: int) -> StepOutcome:
    """Step ``step`` (0-based) at learning rate ``lr`` with ``samples`` quadrature points
    per ray; ``stop_requested`` is this rank's signal flag, shared with the others
    through the gradient buffer."""
    for group in run.optimizer.param_groups:
        group["lr"] = lr
    rays, jitter = run.sampler.sample(step, run.settings.batch_rays, samples)
    passes = ray_passes(len(rays.measured), samples)
    run.reducer.zero_(passes=len(passes))
    loss = torch.zeros((), device=run.device)
    for part in passes:
        part_loss = _pass_loss(run, rays.select(part), jitter[part], samples)
        part_loss.backward()
        loss = loss + part_loss.detach() if len(passes) > 1 else part_loss
    buffer = run.reducer.buffer
    buffer[STOP_SLOT] = float(stop_requested)
    buffer[NONFINITE_SLOT] = (loss - loss).detach()  # 0, or NaN for an inf/NaN loss
    run.reducer.average_()
    sum_finite, stop = torch.stack([torch.isfinite(buffer.sum()), buffer[STOP_SLOT] > 0]).tolist()
    # a sum is finite only if no entry is inf or NaN: one pass over the buffer, not three;
    # the entries are tested one by one only when it is not (or the sum overflowed)
    finite = sum_finite or bool(torch.isfinite(buffer).all())
    if finite:
        run.optimizer.step()
    return StepOutcome(loss=loss, finite=bool(finite), stop_requested=bool(stop))


def _pass_loss(run: TrainingRun, rays: RayBatch, jitter: torch.Tensor, samples: int) -> torch.Tensor:
    """This rank's share of the objective (:func:`rank_loss`) on some of its step's rays,
    ``samples`` points each."""
    with torch.autocast(run.device.type, dtype=torch.bfloat16, enabled=run.settings.precision == "bf16"):
        coords, stratum = ray_points(rays, run.geometry, samples, jitter)
        values = run.field(coords)
        in_time = None
        if run.prior["tv_time_weight"] > 0:
            in_time = time_variation(run.field, coords, values, run.prior["time_step"], time_prior_stride(samples),
                                     run.time_profile)
    return rank_loss(values, stratum, rays.measured, run.settings.loss_weights == "transmission",
                     run.prior["tv_weight"], run.comm.size, run.global_rays, 2.0 * run.geometry.radius,
                     in_time, run.prior["tv_time_weight"])
