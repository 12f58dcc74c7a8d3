"""Frame times of the 4D results: the ground truth's times, or evenly spaced."""

from __future__ import annotations

import numpy as np

from dinr.io.canonical import normalised_time


def frame_times(scan_time: tuple[float, float], truth_times: np.ndarray | None,
                frames: int) -> tuple[np.ndarray, np.ndarray]:
    """``(seconds (frames,), normalised (frames,))`` frame times of a scan that ran from
    ``scan_time[0]`` to ``scan_time[1]`` seconds.

    With the ground truth's times (seconds), those; otherwise ``frames`` instants at the
    centres of equal intervals of the scan.
    """
    if truth_times is not None:
        return truth_times, normalised_time(truth_times, scan_time)
    normalised = (np.arange(frames) + 0.5) / frames
    t0, t1 = scan_time
    return t0 + normalised * (t1 - t0), normalised
