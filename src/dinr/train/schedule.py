"""How long a run trains and at what learning rate it steps (``train.steps``).

An *epoch* is as many rays as the training views hold inside the reconstruction
cylinder (views x rows x crossing columns); with ``batch_rays`` rays on each of the
run's ray shards a step, it is ``epoch_steps`` steps.

- ``steps: N``: linear warm-up over ``warmup_steps``, then exponential decay from ``lr``
  to ``lr_final`` at step N.
- ``steps: auto`` (the default): the held-out residual decides
  (:mod:`dinr.train.validation`), evaluated every ``validate_every_epochs`` epochs or
  every ``validate_every_rays`` rays (over all shards), whichever comes first: the rate
  at which the residual stops improving at one learning rate is set by the optimizer's
  steps, not by the scan's size, so a wide scan's epoch of thousands of steps must not
  delay the decisions (its plateaus would be seen only epochs late). After
  the warm-up the learning rate stays at ``lr`` while the residual keeps improving; once
  it has not beaten its best by :data:`MIN_IMPROVEMENT` (relative) in ``patience``
  evaluations in a row, the rate is multiplied by :data:`PLATEAU_FACTOR`, and when that
  would take it below ``lr_final`` the run has converged and stops. An evaluation more
  than :data:`DIVERGENCE_FACTOR` times the best one means a step has thrown the field off
  (seen at 128 pixels from FBP at ``lr`` 0.02: the residual went from 0.021 to 0.48 and
  the run never recovered): the loop puts back the field and the optimizer of the best
  evaluation (:func:`dinr.train.loop.validate`) and the rate is halved as at a plateau. It also stops after
  ``max_epochs`` epochs and, when ``max_wall_s`` is set, after that many seconds of
  training (summed over resumes; the one stop that a resume does not reproduce). A scan
  without held-out views cannot steer: ``auto`` then trains ``max_epochs`` epochs on the
  exponential schedule of ``steps: N``.

Every decision is taken from figures summed over ranks at the same step, so every rank
stops at the same step; the plateau's state travels in the checkpoint, so a resumed run
takes the decisions an uninterrupted one takes.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

from dinr.settings import TrainSettings

#: The learning rate's factor at each plateau of the held-out residual.
PLATEAU_FACTOR = 0.5

#: Relative drop of the held-out residual below its best that counts as improvement.
MIN_IMPROVEMENT = 1e-3

#: A held-out residual above this multiple of the best means the run diverged. The
#: noisiest runs' evaluations (the spikes of a 16384-ray estimate and of single steps)
#: rose to at most 1.65 times their best and came back (every 64- and 128-pixel run of
#: 2026-12-04); the divergence seen rose 22-fold.
DIVERGENCE_FACTOR = 2.0

#: An evaluation above this multiple of the best that has not diverged is a spike and does
#: not count towards a plateau, unless ``patience`` spikes come in a row (a residual that
#: stays up is a plateau). Held-out residuals spike to 1.3-1.7 times their best and come
#: back at the next evaluation at ``lr`` 0.02 on some scans (the jerk, the demo), and
#: counted, those spikes halved the rate early (docs/measurements.md, "Spikes of the held-out residual").
SPIKE_FACTOR = 1.25

@dataclass(frozen=True)
class Budget:
    """A run's resolved budget: at most ``steps`` steps; the held-out residual evaluated
    every ``validate_every`` steps (0: never); ``adaptive`` when it steers the learning
    rate and the stop (``steps: auto`` with held-out views)."""

    steps: int
    validate_every: int
    adaptive: bool
    epoch_steps: float


def budget(settings: TrainSettings, training_rays: int, rays_per_step: int, has_heldout: bool) -> Budget:
    """The :class:`Budget` of ``settings`` for ``training_rays`` rays an epoch (module
    note), ``rays_per_step`` rays a step over all shards, and whether the scan has
    held-out views."""
    epoch_steps = training_rays / rays_per_step
    spacing = min(settings.validate_every_epochs * epoch_steps, settings.validate_every_rays / rays_per_step)
    every = max(1, round(spacing)) if has_heldout else 0
    if settings.steps != "auto":
        return Budget(int(settings.steps), every, False, epoch_steps)
    cap = max(settings.warmup_steps + 1, math.ceil(settings.max_epochs * epoch_steps))
    return Budget(cap, every, has_heldout, epoch_steps)


def learning_rate(settings: TrainSettings, budget: Budget, step: int, reductions: int) -> float:
    """The rate of step ``step`` (0-based): warm-up, then ``lr`` times
    :data:`PLATEAU_FACTOR` per plateau (``reductions``) when the budget is adaptive,
    else exponential decay to ``lr_final`` at the budget's last step."""
    if step < settings.warmup_steps:
        return settings.lr * (step + 1) / settings.warmup_steps
    if budget.adaptive:
        return settings.lr * PLATEAU_FACTOR ** reductions
    progress = (step - settings.warmup_steps) / max(1, budget.steps - settings.warmup_steps)
    return settings.lr * (settings.lr_final / settings.lr) ** progress


@dataclass
class Plateau:
    """The held-out residual's best value so far, the evaluations since it, and the
    learning-rate reductions taken (the state a checkpoint keeps, as a dict)."""

    best: float = math.inf
    since_best: int = 0
    reductions: int = 0
    spikes_in_row: int = 0

    def update(self, residual: float, settings: TrainSettings, step: int) -> str:
        """Take one evaluation at ``step`` (during the warm-up it only records the best; a
        spike above :data:`SPIKE_FACTOR` times the best counts only once ``patience`` come in a row);
        return ``improved``, ``waiting``, ``reduced`` (the rate was lowered) or
        ``converged`` (a further reduction would go below ``lr_final``), or ``diverged``
        (:meth:`diverged`: the rate was lowered; the caller puts back the best field)."""
        if residual < self.best * (1.0 - MIN_IMPROVEMENT):
            self.best, self.since_best, self.spikes_in_row = residual, 0, 0
            return "improved"
        if self.diverged(residual):
            return self._reduce(settings, "diverged")
        if step < settings.warmup_steps:
            return "waiting"
        self.spikes_in_row = self.spikes_in_row + 1 if residual > SPIKE_FACTOR * self.best else 0
        if 0 < self.spikes_in_row < settings.patience:
            return "waiting"  # a spike, not counted while the residual may come back
        self.since_best += settings.patience if self.spikes_in_row == settings.patience else 1  # it stayed up
        if self.since_best < settings.patience:
            return "waiting"
        return self._reduce(settings, "reduced")

    def diverged(self, residual: float) -> bool:
        """Whether ``residual`` is more than :data:`DIVERGENCE_FACTOR` times the best."""
        return residual > DIVERGENCE_FACTOR * self.best

    def _reduce(self, settings: TrainSettings, outcome: str) -> str:
        """Halve the rate and return ``outcome``, or ``converged`` where that would take
        it below ``lr_final``."""
        if settings.lr * PLATEAU_FACTOR ** (self.reductions + 1) < settings.lr_final:
            return "converged"
        self.reductions += 1
        self.since_best = self.spikes_in_row = 0
        return outcome

    def as_dict(self) -> dict[str, float]:
        return asdict(self)
