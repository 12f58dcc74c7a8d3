"""The canonical prepared scan: what every reconstruction method reads.

Layout (axes order in parentheses):

- ``/projections`` (views, rows, cols) float32: line integrals -log(transmission),
  in units of attenuation x pixel length;
- ``/theta`` (views,) float64 radians; ``/time`` (views,) float64 seconds;
- ``/heldout`` (views,) bool: views kept out of training and FBP, to measure how well
  each method predicts data it has not seen;
- attributes ``center`` (rotation-axis position in detector columns, TomoPy's convention:
  ``cols / 2`` is the middle of the detector), ``pixel_size_mm``, ``noise_variance`` and
  ``noise_variance_weighted`` (of the line integrals, and of the transmission-weighted
  ones, estimated from the projections of the whole scan when it is written), plus
  provenance.

:func:`read_sinogram` reads one rank's share of the training (or held-out) views:
the ``k``-th selected view goes to rank ``k % size``, so every share spans the whole
scan time and a rank never holds the other ranks' projections.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from dinr.errors import InputError
from dinr.io.atomic import atomic_path
from dinr.prep.noise import noise_variance


@dataclass
class Sinogram:
    """Projections of a scan, or one rank's share of them.

    ``projections`` (views, rows, cols) float32 line integrals; ``theta`` (views,)
    radians; ``time`` (views,) seconds; ``view_index`` (views,) the views' indices in
    the full scan; ``center`` in detector columns; ``scan_time`` = (first, last) view
    time of the full scan in seconds; ``pixel_size_mm`` the detector pixel pitch.
    """

    projections: np.ndarray
    theta: np.ndarray
    time: np.ndarray
    view_index: np.ndarray
    center: float
    scan_time: tuple[float, float]
    pixel_size_mm: float
    heldout: np.ndarray | None = None

    @property
    def shape(self) -> tuple[int, int, int]:
        return tuple(self.projections.shape)  # type: ignore[return-value]

    def normalised_time(self, seconds: np.ndarray) -> np.ndarray:
        """Map seconds to the scan's normalised time in [0, 1]."""
        t0, t1 = self.scan_time
        return (np.asarray(seconds, dtype=np.float64) - t0) / max(t1 - t0, 1e-12)


def write_sinogram(path: str | os.PathLike[str], sino: Sinogram, attrs: dict[str, Any]) -> None:
    """Write a full-scan :class:`Sinogram` atomically, one chunk per view."""
    with atomic_path(path) as tmp, h5py.File(tmp, "w") as f:
        proj = sino.projections
        f.create_dataset("projections", data=proj, chunks=(1, *proj.shape[1:]))
        f.create_dataset("theta", data=sino.theta).attrs["units"] = "radians"
        f.create_dataset("time", data=sino.time).attrs["units"] = "s"
        heldout = np.zeros(len(sino.theta), dtype=bool) if sino.heldout is None else sino.heldout
        f.create_dataset("heldout", data=heldout)
        f.attrs.update(attrs)
        f.attrs["center"] = sino.center
        f.attrs["pixel_size_mm"] = sino.pixel_size_mm
        f.attrs["scan_time"] = np.asarray(sino.scan_time, dtype=np.float64)
        f.attrs["noise_variance"] = noise_variance(proj, transmission_weighted=False)
        f.attrs["noise_variance_weighted"] = noise_variance(proj, transmission_weighted=True)


def read_sinogram(
    path: str | os.PathLike[str], rank: int = 0, size: int = 1, split: str = "train",
    views: np.ndarray | None = None,
) -> Sinogram:
    """Read rank ``rank`` of ``size``'s share of the ``split`` views of a canonical file.

    ``split`` is ``train`` (views not held out), ``heldout`` or ``all``; ``views`` (view
    indices) overrides it. Only the selected views are read from disk.
    """
    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: file not found")
    try:
        f = h5py.File(path, "r")
    except OSError as exc:
        raise InputError(f"{path}: not a readable HDF5 file ({exc})") from exc
    with f:
        for key in ("projections", "theta", "time", "heldout"):
            if key not in f:
                raise InputError(f"{path}: dataset /{key} is missing (not a prepared scan?)")
        heldout = np.asarray(f["heldout"][()], dtype=bool)
        if views is None:
            chosen = {"train": ~heldout, "heldout": heldout, "all": np.ones_like(heldout)}[split]
            views = np.flatnonzero(chosen)[rank::size]
        index = np.asarray(views, dtype=np.int64)
        if index.size == 0:
            raise InputError(f"{path}: rank {rank} of {size} has no {split} views (the scan has {len(heldout)})")
        return Sinogram(
            projections=np.asarray(f["projections"][index], dtype=np.float32),
            theta=np.asarray(f["theta"][index], dtype=np.float64),
            time=np.asarray(f["time"][index], dtype=np.float64),
            view_index=index,
            center=float(f.attrs["center"]),
            scan_time=tuple(float(v) for v in f.attrs["scan_time"]),  # type: ignore[arg-type]
            pixel_size_mm=float(f.attrs["pixel_size_mm"]),
            heldout=heldout[index],
        )


def read_noise_variance(path: str | os.PathLike[str], transmission_weighted: bool) -> float:
    """The scan's noise variance recorded by :func:`write_sinogram` (weighted or not)."""
    key = "noise_variance_weighted" if transmission_weighted else "noise_variance"
    with h5py.File(path, "r") as f:
        if key not in f.attrs:
            raise InputError(f"{path}: attribute {key} is missing (prepared by an older dinr? rerun prepare)")
        return float(f.attrs[key])


def training_views(path: str | os.PathLike[str]) -> np.ndarray:
    """Indices (ascending) of the views not held out of training."""
    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: file not found")
    with h5py.File(path, "r") as f:
        if "heldout" not in f:
            raise InputError(f"{path}: dataset /heldout is missing (not a prepared scan?)")
        return np.flatnonzero(~np.asarray(f["heldout"][()], dtype=bool))


def has_heldout_views(path: str | os.PathLike[str]) -> bool:
    """Whether a canonical file holds any views out of training (its ``/heldout`` mask)."""
    with h5py.File(path, "r") as f:
        return bool(np.any(f["heldout"][()]))
