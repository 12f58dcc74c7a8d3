"""Frame times of the 4D results: the ground truth's times, or evenly spaced."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from dinr.io.canonical import Sinogram
from dinr.io.volume import read_volume


def frame_times(sino: Sinogram, truth_path: str | os.PathLike[str] | None, frames: int) -> tuple[np.ndarray, np.ndarray]:
    """``(seconds (frames,), normalised (frames,))`` frame times.

    With a ground-truth file, its ``/time``; otherwise ``frames`` instants at the centres
    of equal intervals of the scan.
    """
    if truth_path:
        _, seconds = read_volume(Path(truth_path), name="truth")
        return seconds, sino.normalised_time(seconds)
    normalised = (np.arange(frames) + 0.5) / frames
    t0, t1 = sino.scan_time
    return t0 + normalised * (t1 - t0), normalised
