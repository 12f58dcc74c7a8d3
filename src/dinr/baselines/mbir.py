"""Model-based iterative reconstruction (MBIR) with mbirjax: the field's strongest open 4D peers.

Two methods, both weighted least squares with mbirjax's q-GGMRF edge-preserving prior:

- ``mbir_sliding``: one MBIR reconstruction per frame from the frame's half-turn window of
  views, the same windows as sliding-window FBP (:func:`dinr.baselines.fbp.half_turn_window`).
- ``mace4d``: mbirjax's ``MACE4DModel``, which reconstructs overlapping half-turn frames of
  the continuous scan jointly, with priors in (x, y, t), (y, z, t) and (x, z, t), without its
  temporal dejitter filter (meant for gated scans: see :func:`mace4d`). Its frames
  are spaced by the median gap of the requested frame times and start where their centres
  fall on those times; a requested frame whose window would leave the scan takes the
  nearest reconstructed frame (sliding FBP slides its window inwards instead).

Axes and units follow :mod:`dinr.geometry`: sinograms (views, rows, cols) of line
integrals per pixel length, volumes (rows, n, n) in attenuation per pixel length, with
``n = cols``. mbirjax's parallel-beam convention is ours up to axis order (its volumes are
(y, x, z)) and the detector offset ``det_channel_offset = center - cols / 2``. Its cone-beam
model (``ConeBeamModel``) is ours with the same axis order once its length unit is our
voxel: the detector at twice the source-to-axis distance with a pitch of 2, the channel and
row offsets ``2 (center - cols / 2)`` and ``2 (row_center - rows / 2)`` (checked by
projecting a point), and its windows are short scans (180 degrees plus the fan angle), as
for sliding FDK. Held-out views enter with weight zero, so the angle grid stays uniform
and nothing is fitted to them.
The transmission weights ``exp(-line integral)`` are the inverse noise variance of
photon-counting data, up to the dose.

mbirjax is an optional dependency (``pip install mbirjax``, included by ``make install``).
"""

from __future__ import annotations

import collections
import functools
import importlib
import importlib.util
import logging
import multiprocessing
import os
import sys
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Executor, Future, ProcessPoolExecutor
from types import ModuleType

import numpy as np
from tqdm import tqdm

from dinr.baselines.fbp import half_turn_window
from dinr.baselines.fdk import short_scan_span, short_scan_window
from dinr.errors import InputError
from dinr.geometry import Geometry
from dinr.geometry.cone import ConeGeometry

log = logging.getLogger(__name__)

#: The baseline methods this module provides (their names in ``baselines.methods``).
MBIR_METHODS = ("mbir_sliding", "mace4d")

#: Detector magnification of the cone-beam model handed to mbirjax (detector pitch in voxels).
CONE_MAGNIFICATION = 2.0


def import_mbirjax(method: str, cpu_devices: int, device: str = "cpu") -> ModuleType:
    """mbirjax, or an :class:`InputError` naming ``method`` when it is not installed or
    its Python lacks Tk (mbirjax imports easygui, which needs tkinter);
    JAX runs on ``device`` (``cuda``: its CUDA plugin; else the CPU), unless the
    environment sets ``JAX_PLATFORMS``.

    On a CPU, JAX gets ``cpu_devices`` devices (mbirjax's ``MBIRJAX_NUM_CPU_DEVICES``
    unless the environment sets it; its own default is one per core): each keeps a thread
    busy, and they meet at every all-reduce, where XLA aborts a run after 40 s when one of
    them is starved by other jobs on the same cores. So a job uses the cores it holds."""
    os.environ.setdefault("MBIRJAX_NUM_CPU_DEVICES", str(cpu_devices))
    os.environ.setdefault("JAX_PLATFORMS", "cuda" if device == "cuda" else "cpu")
    try:
        return importlib.import_module("mbirjax")
    except ImportError as err:
        if importlib.util.find_spec("mbirjax") is not None and importlib.util.find_spec("tkinter") is None:
            # mbirjax imports its viewer, whose easygui needs Tk; easygui then fails
            # with an unrelated "No module named 'global_state'"
            raise InputError(
                f"baseline method {method!r} needs mbirjax, which is installed but needs Tk (tkinter), "
                f"missing from this Python ({sys.executable}; mbirjax imports easygui, which fails with "
                f"'{err}'): install your system's Tk for Python (Debian/Ubuntu: `apt-get install python3-tk`) "
                f"or make the venv from a Python that has it (`make install PYTHON=...`), or remove "
                f"{method!r} from baselines.methods"
            ) from err
        raise InputError(
            f"baseline method {method!r} needs mbirjax, which is not importable ({err}); "
            "install it with `pip install mbirjax` or `make install`, or remove "
            f"{method!r} from baselines.methods"
        ) from err


def _model(mj: ModuleType, shape: tuple[int, int, int], theta: np.ndarray, geometry: Geometry, sharpness: float):
    """An mbirjax model of a (views, rows, cols) sinogram in our ``geometry`` (parallel or cone)."""
    angles = np.asarray(theta, dtype=np.float32)
    if isinstance(geometry, ConeGeometry):
        model = mj.ConeBeamModel(shape, angles, source_detector_dist=CONE_MAGNIFICATION * geometry.source_axis,
                                 source_iso_dist=geometry.source_axis)
        model.set_params(delta_det_channel=CONE_MAGNIFICATION, delta_det_row=CONE_MAGNIFICATION, delta_voxel=1.0,
                         recon_shape=(geometry.n, geometry.n, geometry.rows),
                         det_channel_offset=CONE_MAGNIFICATION * float(geometry.center - shape[2] / 2.0),
                         det_row_offset=CONE_MAGNIFICATION * float(geometry.row_center - shape[1] / 2.0))
    else:
        model = mj.ParallelBeamModel(shape, angles)
        model.set_params(det_channel_offset=float(geometry.center - shape[2] / 2.0))
    model.set_params(sharpness=float(sharpness), verbose=0)
    return model


def frame_window(theta: np.ndarray, time_norm: np.ndarray, frame_time: float, geometry: Geometry) -> np.ndarray:
    """Indices of a frame's views: half a turn centred on it (parallel beam), or the short
    scan of sliding FDK (cone beam)."""
    if isinstance(geometry, ConeGeometry):
        return short_scan_window(theta, time_norm, frame_time, short_scan_span(geometry, theta))
    return half_turn_window(theta, time_norm, frame_time)


def _weights(sinogram: np.ndarray, heldout: np.ndarray) -> np.ndarray:
    """Transmission weights ``exp(-p)`` of a (views, rows, cols) sinogram, zero on held-out views."""
    return (np.exp(-sinogram) * ~heldout[:, None, None]).astype(np.float32)


def _to_slices(volume) -> np.ndarray:
    """mbirjax's (y, x, z) volume as our (z, y, x) slices, float32."""
    return np.ascontiguousarray(np.transpose(np.asarray(volume, dtype=np.float32), (2, 0, 1)))


def sliding_window_mbir(
    sinogram: np.ndarray, theta: np.ndarray, heldout: np.ndarray, time_norm: np.ndarray,
    frame_times: np.ndarray, geometry: Geometry, sharpness: float, iterations: int, seed: int = 0,
    workers: int = 1, device: str = "cpu",
) -> np.ndarray:
    """(frames, rows, cols, cols): one MBIR per frame from its window of views (half a
    turn, or a short scan in cone beam: :func:`frame_window`) in the scan's ``geometry``.

    ``sinogram`` (views, rows, cols) holds every view, ``heldout`` (views,) marks those kept
    out (weight zero); ``theta`` radians, increasing; ``time_norm`` (views,) and
    ``frame_times`` normalised times; ``sharpness`` mbirjax's prior sharpness (0 its
    default, negative smoother, positive sharper); ``iterations`` exactly this many
    (no early stop). ``seed`` fixes mbirjax's random pixel partitions (the same for every
    frame). On a CPU, ``workers`` processes (spawned, one JAX CPU device each) take the
    frames in turn: a frame's reconstruction does not depend on which process made it, and
    one JAX device keeps about one core busy. ``device``: JAX's platform (:func:`import_mbirjax`);
    on ``cuda`` the frames run one after another in this process.
    """
    if np.any(np.diff(theta) <= 0):
        raise ValueError("sliding-window MBIR needs angles that increase with view order (continuous rotation)")
    import_mbirjax("mbir_sliding", 1, device)  # a clear error before any frame
    windows = (frame_window(theta, time_norm, float(t), geometry) for t in frame_times)
    jobs = ((np.ascontiguousarray(sinogram[w], dtype=np.float32), theta[w], heldout[w]) for w in windows)
    reconstruct = functools.partial(_window_mbir, geometry=geometry, sharpness=sharpness, iterations=iterations,
                                    seed=seed, device=device)
    workers = max(1, min(workers if device == "cpu" else 1, len(frame_times)))
    progress = functools.partial(tqdm, total=len(frame_times), desc="mbir_sliding", unit="frame", mininterval=10)
    if workers == 1:
        return np.stack(list(progress(reconstruct(*job) for job in jobs)))
    log.info("mbir_sliding: %d frames in %d processes", len(frame_times), workers)
    with ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn"),
                             initializer=import_mbirjax, initargs=("mbir_sliding", 1, device)) as pool:
        return np.stack(list(progress(_in_order(pool, reconstruct, jobs, ahead=workers))))


def _in_order(pool: Executor, function: Callable[..., np.ndarray], jobs: Iterable[tuple[np.ndarray, ...]],
              ahead: int) -> Iterator[np.ndarray]:
    """``function(*job)`` of each job on ``pool``, in the jobs' order, with at most
    ``ahead`` + 1 jobs (their windows of the scan) submitted and not yet returned."""
    pending: collections.deque[Future[np.ndarray]] = collections.deque()
    for job in jobs:
        pending.append(pool.submit(function, *job))
        if len(pending) > ahead:
            yield pending.popleft().result()
    while pending:
        yield pending.popleft().result()


def _window_mbir(sino: np.ndarray, theta: np.ndarray, heldout: np.ndarray, geometry: Geometry, sharpness: float,
                 iterations: int, seed: int, device: str) -> np.ndarray:
    """(rows, cols, cols): the MBIR of one frame's window (views, rows, cols) of views at
    angles ``theta``, ``heldout`` with weight zero (:func:`sliding_window_mbir`)."""
    mj = import_mbirjax("mbir_sliding", 1, device)
    model = _model(mj, sino.shape, theta, geometry, sharpness)
    np.random.seed(seed)
    volume, _ = model.recon(sino, weights=_weights(sino, heldout), max_iterations=iterations,
                            stop_threshold_change_pct=0, print_logs=False, logfile_path=None)
    return _to_slices(volume)


def mace4d_frames(theta: np.ndarray, time_norm: np.ndarray, frame_times: np.ndarray,
                  span_angle: float = np.pi) -> tuple[int, int, int]:
    """MACE4D's frame layout for the requested frame times: ``(first_view, stride, span)``.

    Frames are ``span`` consecutive views (``span_angle`` radians: half a turn by
    default), one every ``stride`` views (the median gap between requested frames, at
    least one view), starting at ``first_view`` so that their centres fall on the
    requested times where the windows fit in the scan.
    """
    step = float(np.median(np.diff(theta)))
    span = int(round(span_angle / step))
    if span > len(theta):
        raise ValueError(f"MACE4D needs half a turn of views ({span}); the scan has {len(theta)}")
    centre_views = np.interp(frame_times, time_norm, np.arange(len(theta), dtype=float))
    gaps = np.diff(centre_views)
    stride = max(1, int(round(float(np.median(gaps))))) if gaps.size else span
    first = int(round(centre_views[0] - span / 2.0)) % stride
    return first, stride, span


def mace4d(
    sinogram: np.ndarray, theta: np.ndarray, heldout: np.ndarray, time_norm: np.ndarray,
    frame_times: np.ndarray, geometry: Geometry, sharpness: float, iterations: int, prior_weight: float,
    seed: int = 0, cpu_devices: int = 1, device: str = "cpu",
) -> np.ndarray:
    """(frames, rows, cols, cols): mbirjax MACE4D of the whole scan at ``frame_times``.

    Arguments as :func:`sliding_window_mbir`; ``iterations`` MACE iterations (the frames'
    initial MBIR reconstructions run mbirjax's default count); ``prior_weight`` MACE's
    total weight of its three space-time prior agents (0..1).
    """
    mj = import_mbirjax("mace4d", cpu_devices, device)
    span_angle = short_scan_span(geometry, theta) if isinstance(geometry, ConeGeometry) else np.pi
    first, stride, span = mace4d_frames(theta, time_norm, frame_times, span_angle)
    views = np.arange(first, len(theta))
    sino = np.ascontiguousarray(sinogram[views], dtype=np.float32)
    ct_model = _model(mj, sino.shape, theta[views], geometry, sharpness)
    step = float(np.median(np.diff(theta)))
    frames_per_rotation = 2.0 * np.pi / (stride * step)
    model = mj.MACE4DModel(ct_model, frames_per_rotation=frames_per_rotation,
                           frame_overlap_factor=span / stride)
    # mbirjax's temporal dejitter filter zeroes the temporal modes at one rotation's period
    # and its harmonics; on our scans (a few turns, deformation that is not periodic) it
    # removes real motion: on the demo, 29.47 dB / SSIM 0.964 with it, 31.07 / 0.968 without.
    model.set_params(mace_prior_weight=float(prior_weight), dejitter=False, verbose=0)
    model.set_device_pool(1)
    np.random.seed(seed)
    log.info("mace4d: %d frames of %d views every %d views from view %d", model.num_frames, span, stride, first)
    volumes, _ = model.recon(sino, weights=_weights(sino, heldout[views]), max_iterations=iterations,
                             stop_threshold_change_pct=0)
    centres = np.array([(views[s.start] + views[s.stop - 1]) / 2.0 for s in model.view_slices])
    requested = np.interp(frame_times, time_norm, np.arange(len(theta), dtype=float))
    nearest = np.abs(requested[:, None] - centres[None, :]).argmin(axis=1)
    return np.stack([_to_slices(volumes[k]) for k in nearest])
