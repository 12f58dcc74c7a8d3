"""Filtered back-projection of parallel-beam slices, with TomoPy or ASTRA as backend.

Axes: sinograms are (views, rows, cols) line integrals; reconstructions are (rows, n, n)
slices with ``n = cols``, in attenuation per pixel length, oriented as described in
:mod:`dinr.geometry.parallel`. TomoPy (``gridrec``) is used when it can be imported
(its conda environment is ``envs/tomopy.yaml``); otherwise ASTRA's CPU FBP from PyPI.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import numpy as np
from scipy import ndimage

#: Filters offered by both backends: our name -> (ASTRA name, TomoPy name).
FILTERS = {
    "ramlak": ("ram-lak", "ramlak"),
    "shepp": ("shepp-logan", "shepp"),
    "cosine": ("cosine", "cosine"),
    "hann": ("hann", "hann"),
    "hamming": ("hamming", "hamming"),
}


def available_backend(requested: str = "auto") -> str:
    """Resolve ``auto`` to ``tomopy`` when importable, else ``astra``; check the choice."""
    has_tomopy = importlib.util.find_spec("tomopy") is not None
    if requested == "auto":
        return "tomopy" if has_tomopy else "astra"
    if requested == "tomopy" and not has_tomopy:
        raise ImportError("FBP backend 'tomopy' requested but tomopy is not importable (see envs/tomopy.yaml)")
    if requested not in ("tomopy", "astra"):
        raise ValueError(f"unknown FBP backend {requested!r}; use auto, tomopy or astra")
    return requested


def _astra_fbp(sinogram: np.ndarray, theta: np.ndarray, center: float, filter_name: str,
               threads: int, device: str = "cpu") -> np.ndarray:
    views, rows, cols = sinogram.shape
    offset = cols / 2.0 - center
    if offset != 0.0:
        # ASTRA's FBP is given a centred detector: move the axis to the middle.
        sinogram = ndimage.shift(sinogram, (0, 0, offset), order=1, mode="nearest")
    out = np.empty((rows, cols, cols), dtype=np.float32)
    groups = np.array_split(np.arange(rows), 1 if device == "cuda" else max(1, min(threads, rows)))
    with ThreadPoolExecutor(len(groups)) as pool:  # ASTRA releases the GIL while it runs
        futures = [pool.submit(_astra_fbp_rows, sinogram, theta, filter_name, g, out, device) for g in groups]
        for future in futures:
            future.result()  # re-raises a slice's error
    return out


def _astra_fbp_rows(sinogram: np.ndarray, theta: np.ndarray, filter_name: str, rows: np.ndarray,
                    out: np.ndarray, device: str = "cpu") -> None:
    """FBP of the centred ``sinogram``'s slices ``rows`` into ``out[rows]``, one slice at
    a time, on the CPU with a projector of their own (one per thread) or by ASTRA's
    CUDA FBP (``FBP_CUDA``, GPU 0 of the job)."""
    import astra

    cols = sinogram.shape[2]
    vol_geom = astra.create_vol_geom(cols, cols)
    proj_geom = astra.create_proj_geom("parallel", 1.0, cols, np.asarray(theta, dtype=np.float64))
    projector = astra.create_projector("line", proj_geom, vol_geom) if device == "cpu" else None
    try:
        for r in rows:
            sino_id = astra.data2d.create("-sino", proj_geom, np.ascontiguousarray(sinogram[:, r, :]))
            rec_id = astra.data2d.create("-vol", vol_geom, 0.0)
            cfg = astra.astra_dict("FBP" if device == "cpu" else "FBP_CUDA")
            cfg.update(ReconstructionDataId=rec_id, ProjectionDataId=sino_id)
            if projector is not None:
                cfg["ProjectorId"] = projector
            cfg["FilterType"] = FILTERS[filter_name][0]
            alg = astra.algorithm.create(cfg)
            try:
                astra.algorithm.run(alg)
                out[r] = astra.data2d.get(rec_id)
            finally:
                astra.algorithm.delete(alg)
                astra.data2d.delete([sino_id, rec_id])
    finally:
        if projector is not None:
            astra.projector.delete(projector)


def _tomopy_fbp(sinogram: np.ndarray, theta: np.ndarray, center: float, filter_name: str,
                threads: int) -> np.ndarray:
    import tomopy

    rec = tomopy.recon(
        sinogram, np.asarray(theta, dtype=np.float32), center=center,
        algorithm="gridrec", filter_name=FILTERS[filter_name][1], ncore=threads,
    )
    return np.asarray(rec, dtype=np.float32)


def fbp(sinogram: np.ndarray, theta: np.ndarray, center: float, filter_name: str = "ramlak",
        backend: str = "auto", threads: int = 1, device: str = "cpu") -> np.ndarray:
    """Reconstruct (rows, cols, cols) slices from a (views, rows, cols) sinogram.

    ``theta`` (views,) radians, any range (several turns are weighted correctly);
    ``center`` the rotation axis in detector columns (TomoPy's convention); ``backend``
    as :func:`available_backend` resolves it; ``threads`` slices are reconstructed at
    once (the result does not depend on it); ``device`` ``cuda`` runs ASTRA's CUDA FBP
    (:mod:`dinr.baselines.device` decides whether it can).
    """
    if filter_name not in FILTERS:
        raise ValueError(f"unknown FBP filter {filter_name!r}; use one of {sorted(FILTERS)}")
    if available_backend(backend) == "tomopy":
        return _tomopy_fbp(sinogram, theta, center, filter_name, threads)
    return _astra_fbp(sinogram, theta, center, filter_name, threads, device)


def window_bounds(theta: np.ndarray, time_norm: np.ndarray, frame_time: float, span: float) -> tuple[float, float]:
    """``(lo, hi)`` rotation angles (radians) of a window of ``span`` radians centred on
    ``frame_time`` (normalised), slid inwards at the ends of the scan so that it still
    spans ``span``. ``theta`` (views,) radians must increase (continuous rotation);
    ``time_norm`` (views,) the views' normalised times."""
    angle = float(np.interp(frame_time, time_norm, theta))
    lo, hi = angle - span / 2.0, angle + span / 2.0
    if lo < theta[0]:
        return float(theta[0]), float(theta[0]) + span
    if hi > theta[-1]:
        return float(theta[-1]) - span, float(theta[-1])
    return lo, hi


def half_turn_window(theta: np.ndarray, time_norm: np.ndarray, frame_time: float) -> np.ndarray:
    """Indices of the views within half a rotation centred on ``frame_time``
    (:func:`window_bounds`; the last angle excluded, so a window holds 180 degrees of
    views)."""
    lo, hi = window_bounds(theta, time_norm, frame_time, np.pi)
    return np.flatnonzero((theta >= lo - 1e-9) & (theta < hi - 1e-9))


def sliding_window_fbp_frames(
    sinogram: np.ndarray, theta: np.ndarray, time_norm: np.ndarray, frame_times: np.ndarray,
    center: float, filter_name: str = "ramlak", backend: str = "auto", threads: int = 1, device: str = "cpu",
) -> Iterator[np.ndarray]:
    """One (rows, cols, cols) FBP per frame, in order, from its half-turn window of views."""
    if np.any(np.diff(theta) <= 0):
        raise ValueError("sliding-window FBP needs angles that increase with view order (continuous rotation)")
    for t in frame_times:
        idx = half_turn_window(theta, time_norm, float(t))
        yield fbp(sinogram[idx], theta[idx], center, filter_name, backend, threads, device)


def sliding_window_fbp(
    sinogram: np.ndarray, theta: np.ndarray, time_norm: np.ndarray, frame_times: np.ndarray,
    center: float, filter_name: str = "ramlak", backend: str = "auto",
) -> np.ndarray:
    """(frames, rows, cols, cols): :func:`sliding_window_fbp_frames` stacked."""
    return np.stack(list(sliding_window_fbp_frames(sinogram, theta, time_norm, frame_times, center, filter_name,
                                                   backend)))


def forward_project(volume: np.ndarray, theta: np.ndarray, center: float) -> np.ndarray:
    """Line integrals (views, rows, cols) of (rows, n, n) slices with ASTRA's line projector.

    The inverse of :func:`fbp`'s geometry: ``theta`` radians, ``center`` in detector
    columns (TomoPy's convention), ``cols = n``.
    """
    import astra

    rows, n, _ = volume.shape
    vol_geom = astra.create_vol_geom(n, n)
    proj_geom = astra.create_proj_geom("parallel", 1.0, n, np.asarray(theta, dtype=np.float64))
    projector = astra.create_projector("line", proj_geom, vol_geom)
    out = np.empty((len(theta), rows, n), dtype=np.float32)
    try:
        for r in range(rows):
            sino_id, sino = astra.create_sino(np.ascontiguousarray(volume[r], dtype=np.float32), projector)
            astra.data2d.delete(sino_id)
            out[:, r, :] = sino
    finally:
        astra.projector.delete(projector)
    offset = center - n / 2.0
    return ndimage.shift(out, (0, 0, offset), order=1, mode="nearest") if offset != 0.0 else out
