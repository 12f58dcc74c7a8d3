"""Building the field from the training settings and the scan it is fitted to.

``auto`` resolutions of the hash encoding are resolved here from the scan — one cell
per pixel across the cylinder at the finest level, one cell per half-turn of rotation
in time, a box as tall as the detector — and the resolved values (the *field spec*)
are stored with every checkpoint, so a field can be rebuilt without the scan.

With ``time_resolution: auto`` the time axis of the grid runs from the middle of the
first half-turn of views to the middle of the last (its nodes sit at the centres of
the scan's half-turns), and the first and last quarter-turns continue its end cells as
``train.time_ends`` says (:mod:`dinr.inr.time_ends`). A node at the
scan's very first or last instant would be fitted from the views on one side of it
only, weighted down to nothing at the far end of that half-turn, so some directions
of the first and last frames would be left to chance; a node at the centre of a
half-turn sees every direction of that half-turn at weight 1 or more.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch

from dinr.geometry import Geometry
from dinr.inr.fourier import FourierFeatures
from dinr.inr.field import AttenuationField
from dinr.inr.hashgrid import HashGridEncoding, level_cells, level_nodes
from dinr.inr.spacetime import StaticAndDynamicEncoding
from dinr.inr.time_ends import TimeEnds
from dinr.settings import TrainSettings

#: ``train.hash_log2_table: auto``'s bounds: at least the 2^20 entries a level the
#: defaults were chosen with (every level of a 64-pixel scan fits), at most 2^24 (a level
#: of 2^24 entries x 2 features is 512 MiB with its gradient and Adam's moments).
AUTO_TABLE_LOG2 = (20, 24)

#: Time cells of the dynamic grid's coarsest level as a share of its finest level's: 0
#: (one cell) lets the levels' time cells grow geometrically with their spatial ones, so
#: a coarse level's cells are long in time and fitted from views of every direction. 1 (every
#: level at the finest time cells) cost the demo 1.78 dB and the jerk 0.32 (its pilots chose
#: two cells for the demo) for 0.55 on the oscillation; no level below one cell per half-turn
#: cost the demo 0.51 and the oscillation 0.05 (docs/measurements.md, "The oscillation's
#: turning points, a third look").
COARSEST_TIME_SHARE = 0.0


def field_spec(settings: TrainSettings, geometry: Geometry, angular_span: float, scale: float) -> dict[str, Any]:
    """Everything needed to rebuild the field besides the settings: the values resolved
    from the scan (its ``geometry``: the grid of ``n`` pixels across the cylinder and the
    height of the box the rays cross; ``angular_span`` radians of rotation from first to
    last view) and the output ``scale`` (1/pixel), with the time grid's ``time_span``
    (normalised time; see the module note). A scan of one half-turn or less gets a static
    grid under ``auto``: no two of its nodes could see every direction."""
    space_res = geometry.n if settings.space_resolution == "auto" else int(settings.space_resolution)
    spec = {"scale": scale, "space_resolution": space_res,
            "extent": (geometry.field_half_height / geometry.half_width, 1.0, 1.0)}
    if settings.time_resolution != "auto":  # cells taken as half-turns for the slow grid
        cells = int(settings.time_resolution)
        return {**spec, "time_resolution": cells, "slow_time_resolution": slow_time_cells(cells),
                "time_span": (0.0, 1.0)}
    half_turns = half_turns_of(angular_span)
    if half_turns == 1:  # one half-turn resolves no motion
        return {**spec, "time_resolution": 0, "time_span": (0.0, 1.0)}
    if settings.time_cells_per_half_turn == "auto":
        raise ValueError("time_cells_per_half_turn auto is resolved by pilot trainings (dinr.train.time_cells) "
                         "before a field is built")
    margin = 0.5 / half_turns
    return {**spec, "time_resolution": (half_turns - 1) * settings.time_cells_per_half_turn,
            "slow_time_resolution": slow_time_cells(half_turns - 1), "time_span": (margin, 1.0 - margin)}


def half_turns_of(angular_span: float) -> int:
    """Half-turns begun by ``angular_span`` radians of rotation (at least one): the time
    grid's node count under ``time_resolution: auto``."""
    return max(1, math.ceil(angular_span / math.pi - 1e-6))


def slow_time_cells(half_turns: int) -> int:
    """Time cells of the slow grid (``train.hash_slow_levels``) over a span of
    ``half_turns`` half-turns: one per turn, at least one."""
    return max(1, round(half_turns / 2))


def spec_time_span(spec: dict[str, Any]) -> tuple[float, float]:
    """The normalised time the grid's time cells span: the whole scan for specs written
    before the span was recorded."""
    start, end = spec.get("time_span", (0.0, 1.0))
    return float(start), float(end)


def _space_levels(settings: TrainSettings, spec: dict[str, Any], levels: int) -> np.ndarray:
    """Cells across the diameter of ``levels`` levels, geometric from the coarsest to the finest."""
    finest = max(spec["space_resolution"], settings.hash_min_resolution)
    return np.round(np.geomspace(settings.hash_min_resolution, finest, levels))


def build_field(settings: TrainSettings, spec: dict[str, Any]) -> AttenuationField:
    """The field described by ``settings`` and a :func:`field_spec`, initialised from
    ``settings.seed`` alone (the global random state is left untouched)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(settings.seed)
        return _build(settings, spec)


def grid_levels(settings: TrainSettings, spec: dict[str, Any]) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """The hash grids of the field, each as (cells across the diameter, cells in time) per
    level: ``dynamic`` always, ``static`` and ``slow`` beside it for a moving field when
    their levels are asked for."""
    levels = settings.hash_levels
    finest_time = max(spec["time_resolution"], 1)
    time = np.round(np.geomspace(max(1.0, COARSEST_TIME_SHARE * finest_time), finest_time, levels)) \
        if spec["time_resolution"] > 0 else np.zeros(levels)
    grids = {"dynamic": (_space_levels(settings, spec, levels), time)}
    if spec["time_resolution"] > 0:
        if settings.hash_static_levels:
            grids["static"] = (_space_levels(settings, spec, settings.hash_static_levels),
                               np.zeros(settings.hash_static_levels))
        if settings.hash_slow_levels:
            grids["slow"] = (_space_levels(settings, spec, settings.hash_slow_levels),
                             np.full(settings.hash_slow_levels, spec["slow_time_resolution"]))
    return grids


def table_log2(settings: TrainSettings, spec: dict[str, Any]) -> int:
    """``train.hash_log2_table``, with ``auto`` resolved: entries enough for the largest
    level of the field's grids to be stored without collisions, between
    :data:`AUTO_TABLE_LOG2` bounds (a level with more nodes than the upper bound is hashed)."""
    if settings.hash_log2_table != "auto":
        return int(settings.hash_log2_table)
    nodes = max(float(level_nodes(level_cells(space, time, tuple(spec["extent"]))).max())
                for space, time in grid_levels(settings, spec).values())
    low, high = AUTO_TABLE_LOG2
    return int(min(high, max(low, math.ceil(math.log2(nodes)))))


def _build(settings: TrainSettings, spec: dict[str, Any]) -> AttenuationField:
    if settings.encoding == "fourier":
        encoding = FourierFeatures(settings.n_features, settings.sigma_t, settings.sigma_s, settings.seed)
    else:
        grids, extent, log2 = grid_levels(settings, spec), tuple(spec["extent"]), table_log2(settings, spec)
        encoding = HashGridEncoding(*grids["dynamic"], extent, settings.hash_features, log2, settings.seed,
                                    spec_time_span(spec))
        if settings.time_ends != "linear" and spec_time_span(spec) != (0.0, 1.0):
            encoding = TimeEnds(encoding, "fitted" if settings.time_ends == "heldout" else settings.time_ends)
        if "static" in grids or "slow" in grids:
            static = HashGridEncoding(*grids["static"], extent, settings.hash_features, log2, settings.seed + 1) \
                if "static" in grids else None
            slow = HashGridEncoding(*grids["slow"], extent, settings.hash_features, log2, settings.seed + 2,
                                    spec_time_span(spec)) if "slow" in grids else None
            encoding = StaticAndDynamicEncoding(encoding, static, slow)
    return AttenuationField(encoding, settings.width, settings.hidden_layers, spec["scale"], settings.nonnegative)
