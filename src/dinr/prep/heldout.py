"""Views held out of training and FBP, to measure how well a method predicts data it
has not seen."""

from __future__ import annotations

import numpy as np


def heldout_views(views: int, every: int) -> np.ndarray:
    """(views,) bool: every ``every``-th view (the 10th, 20th, ... for 10), none for 0."""
    mask = np.zeros(views, dtype=bool)
    if every > 0:
        mask[every - 1::every] = True
    return mask
