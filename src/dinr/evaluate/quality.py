"""No-reference image quality of reconstructions: noise level and blur.

Scans without ground truth still need image figures beside their held-out residuals:
a method can fit the projections by reproducing their noise, or stay smooth by blurring
edges. Both are measured on the square inscribed in the reconstruction cylinder (outside
it the methods differ by convention, not quality), on up to ``max_slices`` evenly spaced
(y, x) slices of every frame of a (t, z, y, x) volume, and averaged:

- ``noise_sigma``: the standard deviation of Gaussian noise estimated from the finest
  wavelet detail coefficients (Donoho's median absolute deviation; scikit-image's
  ``estimate_sigma``), in the volume's unit (attenuation per pixel length). Fine
  texture of the object counts towards it too, so compare methods on one scan, not
  scans with each other.
- ``blur``: the perceptual blur metric of Crété-Roffet et al. (2007), scikit-image's
  ``blur_effect``: 0 for the sharpest image, 1 for the blurriest. Noise lowers it.
"""

from __future__ import annotations

import math

import numpy as np
from skimage.measure import blur_effect
from skimage.restoration import estimate_sigma


def inscribed_square(n: int) -> slice:
    """The (y or x) index range of the largest square inside the cylinder of an
    ``n x n`` slice (diameter ``n`` pixels)."""
    half = int(math.floor(n / (2.0 * math.sqrt(2.0))))
    return slice(n // 2 - half, n // 2 + half)


def image_quality(volume: np.ndarray, max_slices: int = 8) -> dict[str, float]:
    """``noise_sigma`` (1/pixel) and ``blur`` (0..1) of a (t, z, y, x) volume, averaged
    over every frame and up to ``max_slices`` evenly spaced slices per frame."""
    if volume.ndim != 4 or volume.shape[2] != volume.shape[3]:
        raise ValueError(f"expected a (t, z, y, x) volume with square slices, got shape {volume.shape}")
    square = inscribed_square(volume.shape[2])
    if square.stop - square.start < 8:
        raise ValueError(f"slices of {volume.shape[2]} pixels are too small for image-quality figures")
    slices = np.unique(np.linspace(0, volume.shape[1] - 1, min(max_slices, volume.shape[1])).round().astype(int))
    images = [np.asarray(volume[t, z, square, square], dtype=np.float64)
              for t in range(volume.shape[0]) for z in slices]
    return {
        "noise_sigma": float(np.mean([estimate_sigma(image) for image in images])),
        "blur": float(np.mean([blur_effect(image) for image in images])),
    }
