"""Flat/dark correction and the negative logarithm, following TomoPy's conventions."""

from __future__ import annotations

import numpy as np

#: Smallest flat-minus-dark denominator, as in ``tomopy.prep.normalize.normalize``.
DENOMINATOR_FLOOR = 1e-6


def normalize(tomo: np.ndarray, flat: np.ndarray, dark: np.ndarray, cutoff: float | None = None) -> np.ndarray:
    """Transmission ``(tomo - dark) / max(flat - dark, 1e-6)`` with mean flats and darks.

    ``tomo`` (views, rows, cols), ``flat`` (n_flats, rows, cols), ``dark`` (n_darks,
    rows, cols), all in counts; returns float32 (views, rows, cols), optionally clipped
    from above at ``cutoff``. Matches ``tomopy.normalize``.
    """
    flat_mean = np.mean(flat, axis=0, dtype=np.float32)
    dark_mean = np.mean(dark, axis=0, dtype=np.float32)
    denominator = flat_mean - dark_mean
    denominator[denominator < DENOMINATOR_FLOOR] = DENOMINATOR_FLOOR
    out = (np.asarray(tomo, dtype=np.float32) - dark_mean) / denominator
    if cutoff is not None:
        np.minimum(out, np.float32(cutoff), out=out)
    return out


def minus_log(transmission: np.ndarray, floor: float = 1e-6) -> np.ndarray:
    """Line integrals ``-log(max(transmission, floor))`` as float32 (same axes as input).

    The floor keeps pixels where the dark exceeds the signal (photon starvation,
    detector noise) finite instead of NaN or infinite.
    """
    return -np.log(np.maximum(transmission, np.float32(floor))).astype(np.float32)
