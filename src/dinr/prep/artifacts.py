"""Detector artefacts removed before reconstruction: zingers and stripes (Vo et al.)."""

from __future__ import annotations

import numpy as np

def remove_zingers(transmission: np.ndarray, threshold: float, size: int) -> np.ndarray:
    """Zingers (isolated bright pixels from stray radiation) removed from every row's
    sinogram, where a zinger is as isolated as in its projection and the median
    neighbourhood does not depend on how many detector rows were read.

    ``transmission`` (views, rows, cols); ``threshold`` is algotom's segmentation
    threshold (0.05 to 0.1 typical; smaller finds more), ``size`` the largest zinger
    in pixels. Returns a new float32 array.
    """
    from algotom.prep.removal import remove_zinger

    out = np.empty_like(transmission, dtype=np.float32)
    for row in range(transmission.shape[1]):
        out[:, row, :] = remove_zinger(transmission[:, row, :], threshold, size)
    return out


def remove_stripes(transmission: np.ndarray, snr: float, large_size: int, small_size: int) -> np.ndarray:
    """Ring artefacts' cause, stripes in each row's sinogram, removed by Vo's combined
    method (algotom's ``remove_all_stripe``: large, unresponsive and partial stripes).

    ``transmission`` (views, rows, cols); ``snr`` detects stripes, ``large_size`` and
    ``small_size`` are the median-filter widths (pixels) for large and small stripes.
    """
    from algotom.prep.removal import remove_all_stripe

    out = np.empty_like(transmission, dtype=np.float32)
    for row in range(transmission.shape[1]):
        out[:, row, :] = remove_all_stripe(transmission[:, row, :], snr, large_size, small_size)
    return out
