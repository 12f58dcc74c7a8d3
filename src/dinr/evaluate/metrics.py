"""Image-quality metrics of 4D reconstructions inside the region every view sees.

Volumes are (t, z, y, x) in attenuation per pixel length. PSNR uses the data range of
the whole ground truth (max - min over all frames), so frames are comparable; SSIM is
3D per frame (scikit-image), averaged over the voxels inside the region (the
reconstruction cylinder; in cone beam only the slices every view sees).
"""

from __future__ import annotations

import numpy as np
from skimage.metrics import mean_squared_error, peak_signal_noise_ratio, structural_similarity


def _ssim_window(shape: tuple[int, ...]) -> int:
    """The largest odd window up to 7 that fits every axis (3D SSIM on thin volumes)."""
    return max(3, min(7, *(s if s % 2 else s - 1 for s in shape)))


def frame_metrics(truth: np.ndarray, recon: np.ndarray, mask: np.ndarray, data_range: float) -> dict[str, float]:
    """PSNR (dB), SSIM and MAE of one (z, y, x) frame inside ``mask`` ((y, x), or
    (z, y, x))."""
    inside = np.broadcast_to(mask, truth.shape)
    t, r = truth[inside], recon[inside]
    psnr = peak_signal_noise_ratio(t, r, data_range=data_range) if mean_squared_error(t, r) > 0 else np.inf
    win = _ssim_window(truth.shape)
    if min(truth.shape) >= 3:
        _, ssim_map = structural_similarity(truth, recon, data_range=data_range, win_size=win, full=True)
    else:  # fewer than 3 slices: 2D SSIM slice by slice
        ssim_map = np.stack([
            structural_similarity(a, b, data_range=data_range, win_size=_ssim_window(a.shape), full=True)[1]
            for a, b in zip(truth, recon)
        ])
    return {
        "psnr": float(psnr),
        "ssim": float(ssim_map[inside].mean()),
        "mae": float(np.abs(t - r).mean()),
    }


def volume_metrics(truth: np.ndarray, recon: np.ndarray, mask: np.ndarray) -> dict[str, object]:
    """Per-frame and mean metrics of (t, z, y, x) ``recon`` against ``truth``."""
    if truth.shape != recon.shape:
        raise ValueError(f"reconstruction {recon.shape} and truth {truth.shape} differ in shape")
    data_range = float(truth.max() - truth.min())
    per_frame = [frame_metrics(truth[i], recon[i], mask, data_range) for i in range(truth.shape[0])]
    return {
        "psnr_mean": float(np.mean([m["psnr"] for m in per_frame])),
        "ssim_mean": float(np.mean([m["ssim"] for m in per_frame])),
        "mae_mean": float(np.mean([m["mae"] for m in per_frame])),
        "per_frame": per_frame,
    }
