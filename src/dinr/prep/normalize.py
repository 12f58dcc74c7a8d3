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


def normalize_nf(tomo: np.ndarray, flats: np.ndarray, dark: np.ndarray, flat_loc: np.ndarray | list[int],
                 cutoff: float | None = None) -> np.ndarray:
    """Transmission with the nearest of several flat-field sets, as ``tomopy.normalize_nf``.

    ``flats`` (n_flats, rows, cols) holds ``len(flat_loc)`` equal groups in order, group
    ``m`` taken at view index ``flat_loc[m]``. Each group's median (and the darks'
    median) is used for the views nearest to it: group ``m`` covers views up to halfway
    (rounded half to even) to the next group. Returns float32 (views, rows, cols).
    """
    tomo = np.asarray(tomo, dtype=np.float32)
    dark_median = np.median(np.asarray(dark, dtype=np.float32), axis=0)
    groups = np.split(np.asarray(flats, dtype=np.float32)[: len(flat_loc) * (len(flats) // len(flat_loc))],
                      len(flat_loc))
    out = np.empty_like(tomo)
    start = 0
    for m, (loc, group) in enumerate(zip(flat_loc, groups)):
        stop = len(tomo) if m == len(flat_loc) - 1 else int(np.round((flat_loc[m + 1] - loc) / 2)) + int(loc)
        denominator = np.median(group, axis=0) - dark_median
        denominator[denominator < DENOMINATOR_FLOOR] = DENOMINATOR_FLOOR
        out[start:stop] = (tomo[start:stop] - dark_median) / denominator
        start = stop
    if cutoff is not None:
        np.minimum(out, np.float32(cutoff), out=out)
    return out
