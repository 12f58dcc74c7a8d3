"""Each time end's weight chosen by the views held out of training (``train.time_ends: heldout``).

Under ``fitted`` each end's weight ``a`` (0 holds the end node, 1 runs its cells on
linearly; :mod:`dinr.inr.time_ends`) is learned from the training views of that end's
quarter-turn, whose residual also rewards fitting their noise: on a low-dose scan the
fitted ends run on where holding them scores better against the truth. Under
``heldout`` a run trains as under ``fitted``; when it stops, each end's weight is
chosen, among the fitted one and :data:`CANDIDATES`, as the one whose validation rays
(:class:`dinr.train.validation.HeldoutRays`) in that end's quarter-turn (the only rays
the weight changes) have the lowest relative residual; the fitted weight is kept on a
tie or when no validation ray lies there. Every rank sums the same residuals (one
allreduce per candidate), so every rank chooses the same weights. The fitted logits are
kept in the record, so a stopped run whose cap is raised goes on from them
(:func:`restore_fitted`), exactly as if it had never stopped.
"""

from __future__ import annotations

import logging
from typing import Any

import torch

from dinr.inr.field import AttenuationField
from dinr.inr.time_ends import TimeEnds
from dinr.train.comm import Communicator
from dinr.train.validation import HeldoutRays

log = logging.getLogger(__name__)

#: The weights each end is scored at beside its fitted one (0 held, 1 linear).
CANDIDATES = (0.0, 0.25, 0.5, 0.75, 1.0)


def time_ends_of(field: AttenuationField) -> TimeEnds | None:
    """The field's time-end module with weights (``fitted`` or ``heldout`` ends), or None."""
    return next((m for m in field.modules() if isinstance(m, TimeEnds) and m.mode == "fitted"), None)


def choose_end_weights(field: AttenuationField, heldout: HeldoutRays, samples: int, comm: Communicator,
                       points_per_pass: int) -> dict[str, Any]:
    """Set each end weight of ``field``'s time ends to the one (of the fitted weight and
    :data:`CANDIDATES`) with the lowest relative residual of ``heldout``'s rays in that
    end's quarter-turn (``samples`` points per ray, passes of at most ``points_per_pass``
    points); return the record: ``fitted`` and ``chosen`` (first, last) weights, the
    ``fitted_logits`` (the parameters as trained), the ``candidates``, each end's
    ``residuals`` (the fitted weight's first; none for an end without validation rays,
    which keeps its fitted weight) and each end's validation ``rays`` (all ranks). An
    empty record when the field has no weighted ends."""
    ends = time_ends_of(field)
    if ends is None:
        return {}
    start, end = (float(v) for v in ends.grid.time_span)
    t = heldout.rays.t
    fitted = ends.end_weights().detach().tolist()
    fitted_logits = ends.end_logits.detach().tolist()
    chosen, residuals, rays = list(fitted), [], []
    for index, outside in enumerate((t < start, t > end)):
        rays.append(int(comm.allreduce_sum(float(outside.sum()))))
        candidates = [fitted[index], *CANDIDATES] if rays[index] else []
        scores = []
        for weight in candidates:
            ends.set_end_weights([weight if i == index else fitted[i] for i in range(2)])
            scores.append(heldout.relative_residual(field, samples, comm, points_per_pass, where=outside))
        residuals.append(scores)
        if scores:
            chosen[index] = candidates[scores.index(min(scores))]  # the first on a tie: the fitted weight
    ends.set_end_weights(chosen)
    record = {"fitted": fitted, "fitted_logits": fitted_logits, "chosen": chosen, "candidates": list(CANDIDATES),
              "residuals": residuals, "rays": rays}
    if comm.rank == 0:
        log.info("time ends chosen by the held-out views of their quarter-turns: first %.3f (fitted %.3f), last "
                 "%.3f (fitted %.3f); residuals %s over %s rays", chosen[0], fitted[0], chosen[1], fitted[1],
                 [[round(r, 6) for r in scores] for scores in residuals], rays)
    return record


@torch.no_grad()
def restore_fitted(field: AttenuationField, record: dict[str, Any]) -> None:
    """Put back the end logits a run was trained to before its weights were chosen
    (``record`` from :func:`choose_end_weights`), for training to go on from them."""
    ends = time_ends_of(field)
    if ends is not None and record:
        ends.end_logits.copy_(torch.tensor(record["fitted_logits"], dtype=ends.end_logits.dtype))
