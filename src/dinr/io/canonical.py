"""The canonical prepared scan: what every reconstruction method reads.

Layout (axes order in parentheses):

- ``/projections`` (views, rows, cols) float32: line integrals -log(transmission),
  in units of attenuation x pixel length;
- ``/theta`` (views,) float64 radians; ``/time`` (views,) float64 seconds;
- ``/heldout`` (views,) bool: views kept out of training and FBP, to measure how well
  each method predicts data it has not seen;
- attributes ``center`` (rotation-axis position in detector columns, TomoPy's convention:
  ``cols / 2`` is the middle of the detector), ``pixel_size_mm``, ``beam`` (``parallel`` or
  ``cone``; a cone-beam scan adds ``source_axis_mm``, ``source_detector_mm`` and
  ``row_center``, the detector row of the central ray), ``noise_variance`` and
  ``noise_variance_weighted`` (of the line integrals, and of the transmission-weighted
  ones, estimated from the projections of the whole scan when it is written), plus
  provenance.

:func:`read_sinogram` reads only the views asked for (a split, or view indices), so a
rank of a training job holds its ray shards' projections and no others.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import h5py
import numpy as np

from dinr.errors import InputError
from dinr.io.atomic import atomic_path
from dinr.io.hdf5 import open_hdf5, require_datasets
from dinr.prep.noise import noise_variance
from dinr.provenance import is_provenance_key

_NOT_PREPARED = " (not a prepared scan?)"


@dataclass
class Sinogram:
    """Projections of a scan, or one rank's share of them.

    ``projections`` (views, rows, cols) float32 line integrals; ``theta`` (views,)
    radians; ``time`` (views,) seconds; ``center`` in detector columns; ``scan_time`` =
    (first, last) view time of the full scan in seconds; ``pixel_size_mm`` the detector
    pixel pitch; ``heldout`` (views,) which views are held out of training.
    """

    projections: np.ndarray
    theta: np.ndarray
    time: np.ndarray
    center: float
    scan_time: tuple[float, float]
    pixel_size_mm: float
    heldout: np.ndarray | None = None
    beam: str = "parallel"
    source_axis_mm: float | None = None
    source_detector_mm: float | None = None
    row_center: float | None = None

    @property
    def shape(self) -> tuple[int, int, int]:
        return tuple(self.projections.shape)  # type: ignore[return-value]

    def normalised_time(self, seconds: np.ndarray) -> np.ndarray:
        """Map seconds to the scan's normalised time in [0, 1]."""
        return normalised_time(seconds, self.scan_time)


def normalised_time(seconds: np.ndarray, scan_time: tuple[float, float]) -> np.ndarray:
    """Seconds mapped to normalised time: 0 at the first view of the scan, 1 at its last
    (``scan_time`` = (first, last) in seconds)."""
    t0, t1 = scan_time
    return (np.asarray(seconds, dtype=np.float64) - t0) / max(t1 - t0, 1e-12)


@contextmanager
def sinogram_writer(path: str | os.PathLike[str], shape: tuple[int, int, int],
                    attrs: dict[str, Any]) -> Iterator[h5py.File]:
    """A canonical file under construction: an empty float32 ``/projections`` (views,
    rows, cols), chunked per view, for the caller to fill block by block, then to finish
    with :func:`write_scan_description`. Renamed onto ``path`` only when the block ends
    without error."""
    with atomic_path(path) as tmp, h5py.File(tmp, "w") as f:
        f.create_dataset("projections", shape=shape, dtype=np.float32, chunks=(1, *shape[1:]))
        f.attrs.update(attrs)
        yield f


def write_scan_description(f: h5py.File, sino: Sinogram) -> None:
    """Everything of a canonical file but its projections, which ``f`` already holds:
    angles, times, the held-out mask, the axis and beam attributes, and the noise
    variances estimated from the projections written (``sino.projections`` is not read)."""
    f.create_dataset("theta", data=sino.theta).attrs["units"] = "radians"
    f.create_dataset("time", data=sino.time).attrs["units"] = "s"
    heldout = np.zeros(len(sino.theta), dtype=bool) if sino.heldout is None else sino.heldout
    f.create_dataset("heldout", data=heldout)
    f.attrs["center"] = sino.center
    f.attrs["pixel_size_mm"] = sino.pixel_size_mm
    f.attrs["beam"] = sino.beam
    if sino.beam == "cone":
        f.attrs["source_axis_mm"] = sino.source_axis_mm
        f.attrs["source_detector_mm"] = sino.source_detector_mm
        f.attrs["row_center"] = sino.row_center
    f.attrs["scan_time"] = np.asarray(sino.scan_time, dtype=np.float64)
    f.attrs["noise_variance"] = noise_variance(f["projections"], transmission_weighted=False)
    f.attrs["noise_variance_weighted"] = noise_variance(f["projections"], transmission_weighted=True)


def write_sinogram(path: str | os.PathLike[str], sino: Sinogram, attrs: dict[str, Any]) -> None:
    """Write a full-scan :class:`Sinogram` held in memory atomically, one chunk per view."""
    with sinogram_writer(path, sino.shape, attrs) as f:
        f["projections"][...] = sino.projections
        write_scan_description(f, sino)


def read_sinogram(path: str | os.PathLike[str], split: str = "train", views: np.ndarray | None = None,
                  rows: slice = slice(None)) -> Sinogram:
    """Read the ``split`` views of a canonical file: ``train`` (views not held out),
    ``heldout`` or ``all``; ``views`` (view indices, ascending) overrides it; ``rows``
    a block of detector rows (default all). Only the selected views and rows are read
    from disk."""
    with open_hdf5(path) as f:
        require_datasets(f, ("projections", "theta", "time", "heldout"), _NOT_PREPARED)
        heldout = np.asarray(f["heldout"][()], dtype=bool)
        if views is None:
            chosen = {"train": ~heldout, "heldout": heldout, "all": np.ones_like(heldout)}[split]
            views = np.flatnonzero(chosen)
        index = np.asarray(views, dtype=np.int64)
        if index.size == 0:
            raise InputError(f"{path}: no {split} views (the scan has {len(heldout)})")
        return Sinogram(
            projections=_read_views(f["projections"], index, rows),
            theta=np.asarray(f["theta"][index], dtype=np.float64),
            time=np.asarray(f["time"][index], dtype=np.float64),
            center=float(f.attrs["center"]),
            scan_time=_scan_time(f),
            pixel_size_mm=float(f.attrs["pixel_size_mm"]),
            heldout=heldout[index],
            **_beam(f),
        )


def _read_views(projections: h5py.Dataset, index: np.ndarray, rows: slice) -> np.ndarray:
    """(views, rows, cols) float32 of the views ``index`` (ascending) and a block of rows;
    a run of consecutive views is read as one hyperslab."""
    start, stop, _ = rows.indices(projections.shape[1])
    if stop <= start:  # no rows: the views' angles and times alone are wanted
        return np.empty((index.size, 0, projections.shape[2]), dtype=np.float32)
    if index.size and index[-1] - index[0] == index.size - 1:
        return np.asarray(projections[int(index[0]):int(index[-1]) + 1, rows], dtype=np.float32)
    return np.asarray(projections[index, rows], dtype=np.float32)


def read_scan_shape(path: str | os.PathLike[str]) -> tuple[int, int, int]:
    """(views, rows, cols) of a canonical file's projections, without reading them."""
    with open_hdf5(path) as f:
        require_datasets(f, ("projections",), _NOT_PREPARED)
        return tuple(f["projections"].shape)  # type: ignore[return-value]


def _beam(f: h5py.File) -> dict[str, Any]:
    """The beam attributes of a canonical file (parallel beam for files written before
    cone beam was supported)."""
    beam = str(f.attrs.get("beam", "parallel"))
    if beam != "cone":
        return {"beam": beam}
    return {"beam": beam, **{key: float(f.attrs[key]) for key in ("source_axis_mm", "source_detector_mm", "row_center")}}


def _scan_time(f: h5py.File) -> tuple[float, float]:
    first, last = (float(v) for v in f.attrs["scan_time"])
    return first, last


def read_scan_time(path: str | os.PathLike[str]) -> tuple[float, float]:
    """(first, last) view time of the scan in seconds, without reading its views."""
    with open_hdf5(path) as f:
        return _scan_time(f)


def read_noise_variance(path: str | os.PathLike[str], transmission_weighted: bool) -> float:
    """The scan's noise variance recorded by :func:`write_sinogram` (weighted or not)."""
    key = "noise_variance_weighted" if transmission_weighted else "noise_variance"
    with open_hdf5(path) as f:
        if key not in f.attrs:
            raise InputError(f"{path}: attribute {key} is missing (prepared by an older dinr? rerun prepare)")
        return float(f.attrs[key])


def training_views(path: str | os.PathLike[str], heldout: bool = False) -> np.ndarray:
    """Indices (ascending) of the views not held out of training (with ``heldout``: of
    those held out)."""
    with open_hdf5(path) as f:
        require_datasets(f, ("heldout",), _NOT_PREPARED)
        return np.flatnonzero(np.asarray(f["heldout"][()], dtype=bool) == heldout)


def sinogram_id(path: str | os.PathLike[str]) -> str:
    """A fingerprint of a prepared scan (SHA-256, hex): its shape, angles, times,
    held-out mask and the attributes measured from its projections (noise variances,
    centre, geometry), without reading the projections; not its provenance, so the same
    scan prepared again (another time, commit or path) keeps its fingerprint. A
    checkpoint records it, so training never resumes on other data under the same
    settings."""
    digest = hashlib.sha256()
    with open_hdf5(path) as f:
        require_datasets(f, ("projections", "theta", "time", "heldout"), _NOT_PREPARED)
        digest.update(repr(f["projections"].shape).encode())
        for name in ("theta", "time", "heldout"):
            digest.update(np.ascontiguousarray(f[name][()]).tobytes())
        for key in sorted(f.attrs):
            if not is_provenance_key(key):
                digest.update(f"{key}={np.asarray(f.attrs[key]).tolist()!r}".encode())
    return digest.hexdigest()


def has_heldout_views(path: str | os.PathLike[str]) -> bool:
    """Whether a canonical file holds any views out of training (its ``/heldout`` mask)."""
    with open_hdf5(path) as f:
        require_datasets(f, ("heldout",), _NOT_PREPARED)
        return bool(np.any(f["heldout"][()]))
