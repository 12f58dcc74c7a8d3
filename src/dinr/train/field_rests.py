"""Where a trained field rests or turns, read from the field itself.

A field trained on a dynamic scan changes over time about as its object does: the RMS
over the scan's voxels of its first difference over one time cell,
``(mu(t + delta) - mu(t - delta)) / 2`` (1/pixel, ``delta`` the temporal prior's step),
followed the simulated truth's with a correlation of 0.96 to 0.99 on the built-in scans
whose speed changes, after two epochs of a two-cell pilot
(:mod:`dinr.train.time_cells`; docs/measurements.md, "Does the training itself see where
the object rests or turns?"). As a share of the scan's largest, it was 0.06 to 0.24 where
the object rests or turns back and 0.38 or more where it moves; an instant whose share is
under :data:`REST_SHARE` counts as resting. Unlike views a turn or half a turn apart
(:mod:`dinr.prep.stillness`), which compare the same rays over a fixed separation, this
sees a turning point, where the object moves on both sides of an instant but hardly
across it.

The field is sampled at :data:`INSTANTS` evenly spaced instants, on at most
:data:`MAX_VOXELS` voxels of the scan's grid per instant (evenly strided slices and
pixels; all of them on the built-in 64-pixel scans). The first and last :data:`EDGE`
instants are not judged, since ``t -+ delta`` is held at 0 or 1 there: they take the
verdict of the nearest instant that is.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable

import numpy as np
import torch

from dinr.inr.render import SliceRenderer, VoxelGrid
from dinr.train.checkpoint import TrainingState

#: An instant rests (or turns) where the field's first difference is under this share of
#: its largest over the scan: the midpoint of the built-in scans' values (0.285), fixed on
#: the eight not held out before any run used it (docs/measurements.md).
REST_SHARE = 0.285

#: Instants at which the field is sampled, evenly over the scan (at ``(i + 0.5) / INSTANTS``).
INSTANTS = 32

#: Instants at each end not judged: their ``t -+ delta`` is held at 0 or 1.
EDGE = 2

#: Voxels sampled per instant at most.
MAX_VOXELS = 65536

#: Slices sampled at most (evenly over the scan's rows).
MAX_SLICES = 8


def differences(volume: Callable[[float], np.ndarray], instants: np.ndarray,
                delta: float) -> tuple[np.ndarray, np.ndarray]:
    """``(first (t,), second (t,))``: the RMS of ``(v(t + delta) - v(t - delta)) / 2``
    and of ``v(t + delta) - 2 v(t) + v(t - delta)`` over the values ``volume`` gives
    at each normalised instant ``t`` (``t +- delta`` held within 0..1). Each instant's
    volume is sampled once where one instant's ``t + delta`` is a later one's ``t`` or
    ``t - delta`` (an 8-entry cache)."""
    sampled = functools.lru_cache(maxsize=8)(volume)
    first, second = [], []
    for t in instants:
        # rounded, so that the same instant reached from two sides is one cache key
        before, now, after = (sampled(round(float(np.clip(t + shift, 0.0, 1.0)), 12))
                              for shift in (-delta, 0.0, delta))
        first.append(np.sqrt(np.mean(((after - before) / 2) ** 2)))
        second.append(np.sqrt(np.mean((after - 2 * now + before) ** 2)))
    return np.asarray(first), np.asarray(second)


def sampled_grid(state: TrainingState) -> VoxelGrid:
    """At most :data:`MAX_SLICES` slices of the scan's grid, evenly over its rows, and
    every ``k``-th row and column of them, ``k`` the smallest stride that keeps the grid
    within :data:`MAX_VOXELS` voxels."""
    full = VoxelGrid.full(state.beam_geometry())
    slices = np.linspace(0, len(full.z) - 1, min(MAX_SLICES, len(full.z))).round().astype(int)
    stride = max(1, math.ceil(len(full.y) / math.sqrt(MAX_VOXELS / len(slices))))
    return VoxelGrid(z=full.z[slices], y=full.y[::stride], x=full.x[::stride], voxel=full.voxel)


@torch.no_grad()
def first_differences(state: TrainingState, instants: np.ndarray) -> np.ndarray:
    """:func:`differences`' first difference of a checkpointed field at ``instants``
    over :func:`sampled_grid`, ``delta`` its temporal prior's step. Voxels outside the
    reconstruction cylinder are 0 at every instant: they scale the RMS alike at every
    instant and leave its shares as they are."""
    render = SliceRenderer(state.field(), state.beam_geometry(), grid=sampled_grid(state))
    rows = range(len(render.grid.z))
    return differences(lambda t: np.stack([render(t, row) for row in rows]), instants,
                       float(state.prior["time_step"]))[0]


def rest_verdicts(first: np.ndarray) -> np.ndarray:
    """1 where ``first`` (one value per instant) is under :data:`REST_SHARE` of its
    largest, 0 elsewhere; the first and last :data:`EDGE` instants take the verdict of
    the nearest judged one. All 0 where the field does not change at all."""
    inner = first[EDGE:len(first) - EDGE]
    if inner.size == 0 or inner.max() <= 0:
        return np.zeros(len(first))
    verdict = (inner < REST_SHARE * inner.max()).astype(float)
    return np.concatenate([np.full(EDGE, verdict[0]), verdict, np.full(EDGE, verdict[-1])])


def rest_table(state: TrainingState, table_size: int) -> np.ndarray:
    """(table_size,) at evenly spaced normalised times 0..1 (as
    :func:`dinr.prep.stillness.stillness_table` tabulates): the
    :func:`rest_verdicts` of the checkpointed field at :data:`INSTANTS` instants,
    interpolated linearly between them and held beyond the first and last."""
    instants = (np.arange(INSTANTS) + 0.5) / INSTANTS
    verdicts = rest_verdicts(first_differences(state, instants))
    return np.interp(np.linspace(0.0, 1.0, table_size), instants, verdicts)
