"""Where in its exposure a view's recorded angle and time lie.

The pipeline takes each view's angle and time as those at the middle of its exposure,
which the view's line integrals stand for (a view averages its rays over the rotation
during the exposure). Some fly-scan controllers record where each exposure starts;
those are moved to the middle here.
"""

from __future__ import annotations

import numpy as np

#: The values of ``prepare.angles_at``.
RECORDED_AT = ("middle", "start")


def exposure_middles(theta: np.ndarray, time: np.ndarray, recorded_at: str) -> tuple[np.ndarray, np.ndarray]:
    """``theta`` (views,) radians and ``time`` (views,) seconds moved to the middle of
    each exposure: unchanged when ``recorded_at`` is ``middle``; for ``start``, shifted
    by half the median step between consecutive views (a continuous rotation exposes
    each view for one step). A single view has no step and is returned unchanged."""
    if recorded_at not in RECORDED_AT:
        raise ValueError(f"recorded_at must be one of {RECORDED_AT}, got {recorded_at!r}")
    if recorded_at == "middle" or len(theta) < 2:
        return theta, time
    return theta + 0.5 * float(np.median(np.diff(theta))), time + 0.5 * float(np.median(np.diff(time)))
