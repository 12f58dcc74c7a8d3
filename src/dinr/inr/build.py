"""Building the field from the training settings and the scan it is fitted to.

``auto`` resolutions of the hash encoding are resolved here from the scan — one cell
per pixel across the cylinder at the finest level, one cell per half-turn of rotation
in time, a box as tall as the detector — and the resolved values (the *field spec*)
are stored with every checkpoint, so a field can be rebuilt without the scan.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch

from dinr.geometry import Geometry
from dinr.inr.fourier import FourierFeatures
from dinr.inr.field import AttenuationField
from dinr.inr.hashgrid import HashGridEncoding
from dinr.settings import TrainSettings


def field_spec(settings: TrainSettings, geometry: Geometry, angular_span: float, scale: float) -> dict[str, Any]:
    """Everything needed to rebuild the field besides the settings: the values resolved
    from the scan (its ``geometry``: the grid of ``n`` pixels across the cylinder and the
    height of the box the rays cross; ``angular_span`` radians of rotation from first to
    last view) and the output ``scale`` (1/pixel)."""
    half_turns = max(1, math.ceil(angular_span / math.pi - 1e-6))
    time_res = half_turns if settings.time_resolution == "auto" else int(settings.time_resolution)
    space_res = geometry.n if settings.space_resolution == "auto" else int(settings.space_resolution)
    return {"scale": scale, "time_resolution": time_res, "space_resolution": space_res,
            "extent": (geometry.field_half_height / geometry.half_width, 1.0, 1.0)}


def build_field(settings: TrainSettings, spec: dict[str, Any]) -> AttenuationField:
    """The field described by ``settings`` and a :func:`field_spec`, initialised from
    ``settings.seed`` alone (the global random state is left untouched)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(settings.seed)
        return _build(settings, spec)


def _build(settings: TrainSettings, spec: dict[str, Any]) -> AttenuationField:
    if settings.encoding == "fourier":
        encoding = FourierFeatures(settings.n_features, settings.sigma_t, settings.sigma_s, settings.seed)
    else:
        levels = settings.hash_levels
        space = np.geomspace(settings.hash_min_resolution, max(spec["space_resolution"], settings.hash_min_resolution),
                             levels)
        time = np.geomspace(1, max(spec["time_resolution"], 1), levels) if spec["time_resolution"] > 0 \
            else np.zeros(levels)
        encoding = HashGridEncoding(np.round(space), np.round(time), tuple(spec["extent"]),
                                    settings.hash_features, settings.hash_log2_table, settings.seed)
    return AttenuationField(encoding, settings.width, settings.hidden_layers, spec["scale"], settings.nonnegative)
