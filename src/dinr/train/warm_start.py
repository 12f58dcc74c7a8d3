"""``train.initial: fbp``: the field starts from sliding-window FBP of the scan, not from noise.

Before the first training step the field is fitted, point by point, to reconstructions
of short windows of the training views centred on instants two per half-turn apart
(about the instants the time grid's nodes resolve): ASTRA's FBP of a half-turn window in
parallel beam, RTK's Parker-weighted FDK of a short scan in cone beam (without RTK, the
``cone`` extra, a cone-beam field starts from the network's initialisation, which the
log says). Each window is reconstructed from its even and its odd views; their mean,
Wiener-filtered by the power of half their difference (:func:`wiener_denoised`), is the
target, so the noise and streaks the views do not support stay out of the fine levels
(the 5000-photon foam ended 0.76 dB below its run from the initialisation when fitted to
the plain FBP, 0.33 dB below from the filtered one). Each rank reconstructs from its own
shards' views (every shard spans the whole scan) and all ranks fit the same points, so
the averaged gradient fits the mean of the ranks' reconstructions. Between two instants
the target is their linear blend; before the first and after the last it is held. A fit
step takes whole slices (the tables are read in order) and a voxel costs one field
evaluation where a training ray costs ``samples_per_ray`` (the fit took 39 s on the 2
cores at 128 pixels, about 100 training steps), and it skips the part of training that
only finds the object's shape. ``initial: auto`` (:func:`dinr.train.setup.starting_point`)
fits where an epoch is long enough that training never reaches its later epochs. The fit
has its own Adam; training then starts with fresh moments and its usual warm-up, and a
resumed run does not fit again.
"""

from __future__ import annotations

import dataclasses
import logging
import time

import numpy as np
import scipy.fft
import torch

from dinr.baselines.fbp import sliding_window_fbp_frames
from dinr.baselines.fdk import fdk_sliding
from dinr.errors import InputError
from dinr.geometry.resolve import geometry_of
from dinr.geometry.cone import ConeGeometry
from dinr.inr.build import half_turns_of
from dinr.inr.render import VoxelGrid
from dinr.io.canonical import Sinogram
from dinr.train.setup import TrainingRun, angular_span

log = logging.getLogger(__name__)

#: Fit steps, points per step (all ranks fit the same points) and the fit's learning rate.
#: The fit's rate falls exponentially from ``FIT_LR`` to ``FIT_LR_FINAL`` over its steps
#: (after a 50-step warm-up), so it ends at the target, not at a step's noise about it:
#: on the 128-pixel parallel scan (one process) 300 steps at a constant 0.01 gave 31.43 dB,
#: 900 at 0.01 32.86, 1800 at 0.01 31.72, 600 from 0.02 to 0.002 33.19 (41 s), 1200 33.58 (87 s).
FIT_STEPS, FIT_POINTS, FIT_LR, FIT_LR_FINAL = 600, 32768, 0.02, 0.002


def fbp_instants(angular_span: float) -> np.ndarray:
    """Normalised instants two per half-turn of a scan of ``angular_span`` radians of
    rotation: the centres of its ``2 x half-turns`` equal intervals."""
    count = 2 * half_turns_of(angular_span)
    return (np.arange(count) + 0.5) / count


#: Most voxels of a rank's window reconstructions (256 MiB of float32 each: the even
#: views', the odd views' and the target, 768 MiB together): a larger scan's views are
#: binned until they fit (a 2048-column scan of 256 rows over four turns, by 7), which
#: bounds the fit's memory and the reconstructions' time.
MAX_VOXELS = 2**26


def binning(instants: int, rows: int, cols: int) -> int:
    """The smallest detector binning (columns per bin; rows too, up to all of them, see
    :func:`binned`) at which ``instants`` reconstructions of a ``rows x cols`` detector
    take at most :data:`MAX_VOXELS`."""
    factor = 1
    while instants * (rows // min(factor, rows)) * max(1, cols // factor) ** 2 > MAX_VOXELS:
        factor += 1
    return factor


def binned(sino: Sinogram, factor: int) -> Sinogram:
    """``sino`` with its detector binned ``factor`` columns by ``min(factor, rows)`` rows
    (line integrals averaged; the last rows and columns that do not fill a bin dropped),
    its axis, pixel pitch and central row in the binned pixels. A cone-beam detector needs
    square pixels: one with fewer rows than ``factor`` is an :class:`InputError`."""
    if factor == 1:
        return sino
    views, rows, cols = sino.shape
    down = min(factor, rows)
    if sino.beam == "cone" and down < factor:
        raise InputError(f"a cone-beam detector of {rows} rows cannot be binned {factor} x {factor} to bound "
                         "the window reconstructions' memory")
    rows, cols = rows // down, cols // factor
    projections = sino.projections[:, :rows * down, :cols * factor]
    projections = projections.reshape(views, rows, down, cols, factor).mean(axis=(2, 4), dtype=np.float32)
    return dataclasses.replace(sino, projections=projections, center=sino.center / factor,
                               pixel_size_mm=sino.pixel_size_mm * factor,
                               row_center=None if sino.row_center is None else sino.row_center / down)


def window_reconstructions(shards: list[Sinogram], instants: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Two (instants, rows, n, n) reconstructions, attenuation per pixel of the (binned)
    detector, from this rank's training views (all its shards together, in scan order)
    around each normalised instant: one from its even views, one from its odd views in
    angle order. Each is ASTRA's FBP of a half-turn window (parallel beam) or RTK's
    Parker-weighted FDK of a short scan (cone beam; :class:`~dinr.errors.InputError` when
    RTK is not installed). Their mean is the reconstruction from every view, half their
    difference has its noise (:func:`wiener_denoised`)."""
    theta = np.concatenate([s.theta for s in shards])
    order = np.argsort(theta)
    projections = np.concatenate([s.projections for s in shards])[order]
    time_norm = shards[0].normalised_time(np.concatenate([s.time for s in shards])[order])
    theta, geometry = theta[order], geometry_of(shards[0])
    halves = []
    for half in (slice(0, None, 2), slice(1, None, 2)):
        if isinstance(geometry, ConeGeometry):
            halves.append(fdk_sliding(projections[half], theta[half], time_norm[half], instants, geometry))
        else:
            halves.append(np.stack(list(sliding_window_fbp_frames(
                projections[half], theta[half], time_norm[half], instants, shards[0].center, "shepp"))))
    return halves[0], halves[1]


def wiener_denoised(even: np.ndarray, odd: np.ndarray) -> np.ndarray:
    """The mean of two reconstructions ``even`` and ``odd`` (..., n, n) of one object from
    disjoint halves of its views, with each in-plane spatial frequency shrunk by the
    Wiener gain ``max(0, 1 - N(k) / P(k))``: ``P`` the power of their mean and ``N`` that
    of half their difference (the mean's noise and streaks, which the object does not
    share), both averaged over every slice and frame in rings of ``|k|`` one frequency
    bin wide. A noisy scan's target thus loses its fine detail and a clean one keeps it,
    so the fit does not put into the field's fine levels what the views do not support.
    Transformed a window (leading index) at a time."""
    n = even.shape[-1]
    ky, kx = np.fft.fftfreq(n)[:, None], np.fft.rfftfreq(n)[None, :]
    ring = np.minimum(np.rint(np.hypot(ky, kx) * n).astype(int), n // 2)

    def ring_power(image: np.ndarray) -> np.ndarray:
        power = np.abs(scipy.fft.rfft2(image).reshape(-1, *ring.shape)) ** 2  # single precision
        return np.bincount(ring.ravel(), weights=power.sum(axis=0).ravel(), minlength=n // 2 + 1)

    signal_power, noise_power = np.zeros(n // 2 + 1), np.zeros(n // 2 + 1)
    for e, o in zip(even, odd):  # a window at a time: memory stays that of the reconstructions
        signal_power += ring_power((e + o) / 2)
        noise_power += ring_power((e - o) / 2)
    gain = np.clip(1 - noise_power / np.maximum(signal_power, np.finfo(float).tiny), 0, 1)[ring].astype(np.float32)
    denoised = np.empty(even.shape, dtype=np.float32)
    for index, (e, o) in enumerate(zip(even, odd)):
        denoised[index] = scipy.fft.irfft2(scipy.fft.rfft2((e + o) / 2) * gain, s=even.shape[-2:])
    return denoised


def warm_start(run: TrainingRun, shards: list[Sinogram]) -> tuple[float, bool]:
    """Fit ``run.field`` to window reconstructions of this rank's ``shards`` (see the
    module note); every rank ends with the same parameters. Returns the seconds it took
    and whether it fitted (not where RTK is missing: the seconds to find that out)."""
    started = time.perf_counter()
    instants = fbp_instants(angular_span(shards, run.comm))  # agreed: every rank fits the same instants
    _, detector_rows, detector_cols = shards[0].shape
    factor = binning(len(instants), detector_rows, detector_cols)
    try:
        even, odd = window_reconstructions([binned(s, factor) for s in shards], instants)
        frames = torch.as_tensor(wiener_denoised(even, odd), device=run.device)
    except InputError as err:  # no RTK, or a detector that cannot be binned: the same on every rank
        if run.comm.rank == 0:
            log.warning("train.initial fbp: %s; the field starts from the network's initialisation", err)
        return time.perf_counter() - started, False
    frames /= factor  # attenuation per binned pixel -> per pixel of the detector
    grid = VoxelGrid.full(run.geometry)
    z, y, x = (torch.as_tensor(a, dtype=torch.float32, device=run.device) for a in (grid.z, grid.y, grid.x))
    rows, columns = torch.nonzero(y[:, None] ** 2 + x[None, :] ** 2 < run.geometry.radius ** 2).unbind(1)
    plane = torch.stack([y[rows], x[columns]], dim=-1) / run.geometry.half_width  # (pixels, 2) in the cylinder
    cells_y, cells_x = (torch.clamp(index // factor, max=frames.shape[-1] - 1) for index in (rows, columns))
    # Whole slices a step, or a band of one slice's rows where a slice has more pixels than a
    # step fits: pixels in row order, so the tables are read in order.
    band = min(len(rows), FIT_POINTS)
    slices, offsets = max(1, FIT_POINTS // band), torch.arange(band, device=run.device)
    optimizer = torch.optim.Adam(run.field.parameters(), lr=FIT_LR, fused=run.device.type in ("cpu", "cuda"))
    generator = torch.Generator(device="cpu").manual_seed(run.settings.seed)
    scale, first, spacing = float(run.field.scale), float(instants[0]), float(instants[1] - instants[0])
    for step in range(FIT_STEPS):
        t = torch.rand(slices, generator=generator)
        height = torch.randint(len(z), (slices,), generator=generator)
        start = torch.randint(len(rows) - band + 1, (slices,), generator=generator)
        position = torch.clamp((t - first) / spacing, 0, len(instants) - 1)  # in instants
        low = torch.clamp(position.floor().long(), max=len(instants) - 2)
        frac = (position - low)[:, None]
        t, height, low, frac = (a.to(run.device) for a in (t, height, low, frac))
        pixels = start.to(run.device)[:, None] + offsets  # (slices, band)
        level = torch.clamp(height // min(factor, detector_rows), max=frames.shape[1] - 1)[:, None]
        target = (1 - frac) * frames[low[:, None], level, cells_y[pixels], cells_x[pixels]] + \
            frac * frames[low[:, None] + 1, level, cells_y[pixels], cells_x[pixels]]
        tz = torch.stack([t, z[height] / run.geometry.half_width], dim=-1)
        coords = torch.cat([tz[:, None, :].expand(slices, band, 2), plane[pixels]], dim=-1).reshape(-1, 4)
        for group in optimizer.param_groups:
            group["lr"] = FIT_LR * min(1.0, (step + 1) / 50) * (FIT_LR_FINAL / FIT_LR) ** (step / FIT_STEPS)
        run.reducer.zero_()
        loss = torch.mean(((run.field(coords) - target.reshape(-1)) / scale) ** 2)
        loss.backward()
        run.reducer.average_()
        optimizer.step()
    run.comm.check_identical(run.field, 0)
    if run.comm.rank == 0:
        log.info("initial: fitted to %s of %d windows%s in %d steps (%.1f s), loss %.3g",
                 "FDK" if isinstance(run.geometry, ConeGeometry) else "FBP", len(instants),
                 f" of views binned {factor} x {factor}" if factor > 1 else "", FIT_STEPS,
                 time.perf_counter() - started, loss.item())
    return time.perf_counter() - started, True
