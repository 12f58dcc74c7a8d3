"""The field a run puts out: an exponential average of its parameters over the last
steps (``train.average_steps``).

At a steady learning rate Adam's iterates do not settle: they wander about the
minimum they approach, by an amount set by the rate and the noise of the gradient (the
rays a step draws, the jitter of their quadrature points). The held-out residual of
iterates 64 steps apart then differs by up to a third, and the truth's PSNR of the last
iterate jumps by a decibel each time the rate is halved. An average of the iterates
(Polyak-Ruppert averaging, here an exponential moving average over ``average_steps``
steps) keeps their progress and cancels most of their wander, without lowering the rate
that makes the progress. The run's output (the model, the held-out residual that steers
``steps: auto``, snapshots) is the average; the optimizer steps the iterate, which the
checkpoint keeps beside it so a resumed run continues exactly.

Step ``n`` (1-based) enters with weight ``max(1 / average_steps, 2 / (n + 1))``: until
step ``2 average_steps - 1`` the average weighs each iterate by its step number
(polynomial-decay averaging, so the first iterates, far from any minimum, count for
little), from there on it is the exponential average. Every rank holds the same
iterates, so the same average.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn
from torch.optim.swa_utils import AveragedModel


def exponential_average(horizon: int) -> Callable[[list[torch.Tensor], list[torch.Tensor], torch.Tensor], None]:
    """The ``multi_avg_fn`` of :class:`~torch.optim.swa_utils.AveragedModel` that blends
    in the parameters after ``n_averaged`` earlier ones with weight
    ``max(1 / horizon, 2 / (n_averaged + 2))`` (module note)."""

    def blend(averaged: list[torch.Tensor], current: list[torch.Tensor], n_averaged: torch.Tensor) -> None:
        torch._foreach_lerp_(averaged, current, max(1.0 / horizon, 2.0 / (int(n_averaged) + 2)))

    return blend


def parameter_average(field: nn.Module, horizon: int) -> AveragedModel | None:
    """The running average of ``field``'s parameters over ``horizon`` steps (its
    ``module`` is the averaged field; updated by ``update_parameters(field)`` after each
    step), or ``None`` for ``horizon`` 0: the run puts out its last iterate."""
    if horizon == 0:
        return None
    average = AveragedModel(field, multi_avg_fn=exponential_average(horizon))
    average.requires_grad_(False)
    return average
