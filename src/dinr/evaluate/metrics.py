"""Image-quality metrics of 4D reconstructions inside the region every view sees.

Volumes are (t, z, y, x) in attenuation per pixel length, as arrays or HDF5 datasets.
PSNR uses the data range of the whole ground truth (max - min over all frames), so
frames are comparable; SSIM is 3D per frame (scikit-image), averaged over the voxels
inside the region (the reconstruction cylinder; in cone beam only the slices every view
sees).

A frame is read in tiles of (z, y) with all of x, each with a margin of half the SSIM
window on the sides that are not the frame's edges, so that SSIM's filters see what they
would see in the whole frame: memory is set by ``chunk_mb``, not by the volume. The
figures are those of the whole frame up to float rounding (the filters' running sums
and the error sums start at other places); with one tile per frame they are bitwise
those of the whole frame.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
from skimage.metrics import structural_similarity
from tqdm import tqdm

from dinr.evaluate.frames import frame_summary
from dinr.io.blocks import DEFAULT_CHUNK_MB

#: Bytes per voxel of a tile while SSIM runs: both inputs in float64 and scikit-image's
#: dozen float64 intermediates (means, variances, covariance, the map).
_SSIM_BYTES_PER_VOXEL = 112


def _ssim_window(shape: tuple[int, ...]) -> int:
    """The largest odd window up to 7 that fits every axis (3D SSIM on thin volumes)."""
    return max(3, min(7, *(s if s % 2 else s - 1 for s in shape)))


def _tiles(shape: tuple[int, int, int], margin: int, chunk_mb: float) -> Iterator[tuple[slice, slice]]:
    """(z, y) tiles covering a (z, y, x) frame whose tile plus ``margin`` on each side
    fits ``chunk_mb`` at :data:`_SSIM_BYTES_PER_VOXEL`: whole slices when a slab of them
    fits, else tiles about as deep as they are tall, so that the margins read and
    filtered twice stay a small part of each tile (a band of one slice would read the
    window's depth, 7 slices, for every slice it scores)."""
    depth, rows, cols = shape
    budget = chunk_mb * 2**20 / (_SSIM_BYTES_PER_VOXEL * cols)  # (z + 2 margin) x (y + 2 margin)
    slab = int(budget // (rows + 2 * margin)) - 2 * margin
    if slab >= 1:
        for z in range(0, depth, slab):
            yield slice(z, min(z + slab, depth)), slice(0, rows)
        return
    deep = min(depth, max(1, int(np.sqrt(budget)) - 2 * margin))
    band = min(rows, max(1, int(budget // (deep + 2 * margin)) - 2 * margin))
    for z in range(0, depth, deep):
        for y in range(0, rows, band):
            yield slice(z, min(z + deep, depth)), slice(y, min(y + band, rows))


def _grown(index: slice, margin: int, length: int) -> slice:
    """``index`` with ``margin`` more on each side, within [0, length), and at least the
    SSIM window (2 margin + 1) long where the axis is (scikit-image needs it)."""
    start, stop = max(0, index.start - margin), min(length, index.stop + margin)
    short = min(2 * margin + 1, length) - (stop - start)
    if short > 0:
        start, stop = (start, stop + short) if start == 0 else (start - short, stop)
    return slice(start, stop)


def data_range(truth: Any, chunk_mb: float = DEFAULT_CHUNK_MB) -> float:
    """max - min of a (t, z, y, x) truth, read a block of slices at a time."""
    frames, depth, rows, cols = truth.shape
    step = max(1, int(chunk_mb * 2**20 // (4 * rows * cols)))
    lo, hi = np.inf, -np.inf
    for f in range(frames):
        for z in range(0, depth, step):
            block = np.asarray(truth[f, z:z + step])
            lo, hi = min(lo, float(block.min())), max(hi, float(block.max()))
    return hi - lo


def frame_metrics(truth: Any, recon: Any, frame: int, mask: np.ndarray, value_range: float,
                  chunk_mb: float = DEFAULT_CHUNK_MB) -> dict[str, float]:
    """PSNR (dB), SSIM and MAE of frame ``frame`` of (t, z, y, x) ``recon`` against
    ``truth`` inside ``mask`` ((y, x), or (z, y, x)), tile by tile (module docstring)."""
    shape = tuple(truth.shape[1:])
    inside_all = np.broadcast_to(mask, shape)
    win = _ssim_window(shape)
    thin = min(shape) < 3  # fewer than 3 slices: 2D SSIM slice by slice
    margin = 0 if thin else win // 2
    squared = absolute = ssim_sum = 0.0
    count = 0
    tiles = list(_tiles(shape, margin, chunk_mb))  # type: ignore[arg-type]
    for zs, ys in tqdm(tiles, desc=f"metrics, frame {frame}", unit="tile", mininterval=10, disable=len(tiles) < 2):
        zg, yg = _grown(zs, margin, shape[0]), _grown(ys, margin, shape[1])
        t, r = np.asarray(truth[frame, zg, yg], dtype=np.float32), np.asarray(recon[frame, zg, yg], dtype=np.float32)
        if thin:
            ssim_map = np.stack([
                structural_similarity(a, b, data_range=value_range, win_size=_ssim_window(a.shape), full=True)[1]
                for a, b in zip(t, r)
            ])
        else:
            ssim_map = structural_similarity(t, r, data_range=value_range, win_size=win, full=True)[1]
        own = (slice(zs.start - zg.start, zs.stop - zg.start), slice(ys.start - yg.start, ys.stop - yg.start))
        inside = inside_all[zs, ys]
        t_in, r_in = t[own][inside], r[own][inside]
        difference = t_in - r_in
        squared += float(np.sum(difference ** 2, dtype=np.float64))
        absolute += float(np.sum(np.abs(difference), dtype=np.float64))
        ssim_sum += float(np.sum(ssim_map[own][inside], dtype=np.float64))
        count += int(inside.sum())
    mse = squared / max(count, 1)
    return {
        "psnr": float(10 * np.log10(value_range ** 2 / mse)) if mse > 0 else float(np.inf),
        "ssim": ssim_sum / max(count, 1),
        "mae": absolute / max(count, 1),
    }


def volume_metrics(truth: Any, recon: Any, mask: np.ndarray, chunk_mb: float = DEFAULT_CHUNK_MB) -> dict[str, object]:
    """Per-frame and mean metrics of (t, z, y, x) ``recon`` against ``truth`` (arrays or
    HDF5 datasets, read in tiles of at most about ``chunk_mb`` MiB of working memory),
    with the worst, first and last frame's PSNR (:func:`dinr.evaluate.frames.frame_summary`)."""
    if tuple(truth.shape) != tuple(recon.shape):
        raise ValueError(f"reconstruction {recon.shape} and truth {truth.shape} differ in shape")
    value_range = data_range(truth, chunk_mb)
    per_frame = [frame_metrics(truth, recon, i, mask, value_range, chunk_mb) for i in range(truth.shape[0])]
    return {
        "psnr_mean": float(np.mean([m["psnr"] for m in per_frame])),
        "ssim_mean": float(np.mean([m["ssim"] for m in per_frame])),
        "mae_mean": float(np.mean([m["mae"] for m in per_frame])),
        **frame_summary(per_frame),
        "per_frame": per_frame,
    }
