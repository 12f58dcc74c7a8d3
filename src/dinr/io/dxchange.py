"""APS Data Exchange HDF5: the raw-scan contract.

Layout read and written here (axes order in parentheses):

- ``/exchange/data`` (views, rows, cols): detector counts, any real or integer dtype;
- ``/exchange/data_white`` (n_flats, rows, cols) and ``/exchange/data_dark``
  (n_darks, rows, cols): flat-field and dark-current counts. Instead of
  ``data_white``, flats taken before and after the scan may come as
  ``/exchange/data_white_pre`` and ``/exchange/data_white_post``; flats taken in
  several equal groups during the scan are placed by ``/exchange/data_white_view``
  (groups,), the view index at which each group was taken (TomoPy's ``flat_loc``);
- ``/exchange/theta`` (views,): rotation angles, ``units`` attribute ``degrees``
  (default, as the spec says) or ``radians``; may run through several turns. When
  absent, the views are taken as evenly spaced over 180 degrees (with a warning);
- ``/exchange/time`` (views,): acquisition time of each view in seconds (optional;
  evenly spaced in view order when absent);
- the instrument's geometry, each optional, a scalar with a ``units`` attribute (``mm``
  when absent; ``um`` and ``m`` are converted): ``/measurement/instrument/detector/
  pixel_size_x`` (detector pitch), ``/measurement/instrument/source_to_axis_distance``
  and ``/measurement/instrument/source_to_detector_distance`` (cone beam).

A region of interest (rows, views) is read as HDF5 hyperslabs, never the whole file.
Files are opened read-only; every problem is reported as :class:`dinr.errors.InputError`
naming the file and the dataset path.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from dinr.errors import InputError
from dinr.io.atomic import atomic_path
from dinr.io.hdf5 import open_hdf5, require_datasets

log = logging.getLogger(__name__)

DATA = "/exchange/data"
FLAT = "/exchange/data_white"
FLAT_PRE = "/exchange/data_white_pre"
FLAT_POST = "/exchange/data_white_post"
FLAT_VIEW = "/exchange/data_white_view"
DARK = "/exchange/data_dark"
THETA = "/exchange/theta"
TIME = "/exchange/time"

#: Instrument values read from (and written to) the file, by their config key (mm).
INSTRUMENT = {
    "pixel_size_mm": "/measurement/instrument/detector/pixel_size_x",
    "source_axis_mm": "/measurement/instrument/source_to_axis_distance",
    "source_detector_mm": "/measurement/instrument/source_to_detector_distance",
}
_MM_PER_UNIT = {"mm": 1.0, "um": 1e-3, "microns": 1e-3, "m": 1e3}


@dataclass
class RawScan:
    """A raw scan in memory.

    ``data`` (views, rows, cols), ``flat`` (n_flats, rows, cols), ``dark``
    (n_darks, rows, cols) in counts as float32; ``theta`` (views,) radians;
    ``time`` (views,) seconds; ``flat_view`` (groups,) the view index at which each of
    the equal groups of flats was taken (one group at view 0 for a single set);
    ``instrument`` the geometry values the file holds (config key -> mm, see
    :data:`INSTRUMENT`).
    """

    path: Path
    data: np.ndarray
    flat: np.ndarray
    dark: np.ndarray
    theta: np.ndarray
    time: np.ndarray
    flat_view: np.ndarray
    instrument: dict[str, float]


def read_instrument(f: h5py.File, path: Path) -> dict[str, float]:
    """The instrument values of :data:`INSTRUMENT` present in the open file ``f``, in mm."""
    found = {}
    for key, name in INSTRUMENT.items():
        if name not in f:
            continue
        dset = f[name]
        units = dset.attrs.get("units", "mm")
        units = units.decode() if isinstance(units, bytes) else str(units)
        if units not in _MM_PER_UNIT:
            raise InputError(f"{path}: {name} has units {units!r}; expected one of {sorted(_MM_PER_UNIT)}")
        value = float(np.asarray(dset[()]).ravel()[0]) * _MM_PER_UNIT[units]
        if not np.isfinite(value) or value <= 0:
            raise InputError(f"{path}: {name} must be a positive length (found {value:g} mm)")
        found[key] = value
    return found


def _dataset(f: h5py.File, path: Path, key: str, ndim: int) -> h5py.Dataset:
    require_datasets(f, (key,))
    dset = f[key]
    if not isinstance(dset, h5py.Dataset):
        raise InputError(f"{path}: {key} is a group, expected a dataset")
    if dset.ndim != ndim:
        raise InputError(f"{path}: {key} has {dset.ndim} axes {dset.shape}, expected {ndim}")
    if dset.size == 0:
        raise InputError(f"{path}: {key} is empty {dset.shape}")
    if not (np.issubdtype(dset.dtype, np.number) and not np.issubdtype(dset.dtype, np.complexfloating)):
        raise InputError(f"{path}: {key} has dtype {dset.dtype}, expected real numbers")
    return dset


def _read(dset: h5py.Dataset, path: Path, key: str, rows: slice | None = None,
          views: slice | None = None, dtype: type = np.float32) -> np.ndarray:
    """The dataset (or, for frames, its ``views`` x ``rows`` hyperslab) as ``dtype``."""
    try:
        if rows is None and views is None:
            values = np.asarray(dset[()], dtype=dtype)
        else:
            values = np.asarray(dset[views or slice(None), rows or slice(None)], dtype=dtype)
    except OSError as exc:
        raise InputError(f"{path}: {key} cannot be read, the file may be truncated ({exc})") from exc
    if not np.all(np.isfinite(values)):
        raise InputError(f"{path}: {key} contains NaN or infinite values")
    return values


def _theta_radians(dset: h5py.Dataset, values: np.ndarray, path: Path) -> np.ndarray:
    units = dset.attrs.get("units", "degrees")
    if isinstance(units, bytes):
        units = units.decode()
    units = str(units).strip().lower()
    if units in ("degrees", "degree", "deg"):
        return np.deg2rad(values.astype(np.float64))
    if units in ("radians", "radian", "rad"):
        return values.astype(np.float64)
    raise InputError(f"{path}: {THETA} has units={units!r}, expected 'degrees' or 'radians'")


def roi_slice(selection: tuple[int, int] | None, length: int, path: Path, what: str) -> slice:
    """A [start, stop) region of interest as a slice, checked against ``length``."""
    if selection is None:
        return slice(0, length)
    start, stop = int(selection[0]), int(selection[1])
    if not 0 <= start < stop <= length:
        raise InputError(f"{path}: region of interest {what} [{start}, {stop}) is outside 0..{length}")
    return slice(start, stop)


def _flats(f: h5py.File, path: Path, views: int, frame: tuple[int, int], rows: slice) -> tuple[np.ndarray, np.ndarray]:
    """Flat frames (n, rows, cols) and the view at which each equal group was taken."""
    if FLAT in f:
        flat = _read(_frames(f, path, FLAT, frame), path, FLAT, rows)
        if FLAT_VIEW in f:
            flat_view = _read(_dataset(f, path, FLAT_VIEW, 1), path, FLAT_VIEW, dtype=np.float64).astype(np.int64)
            if len(flat) % len(flat_view) or np.any(np.diff(flat_view) <= 0) or flat_view.min() < 0:
                raise InputError(f"{path}: {FLAT_VIEW} must list increasing view indices of equal groups of "
                                 f"{FLAT} ({len(flat)} frames in {len(flat_view)} groups)")
        else:
            flat_view = np.zeros(1, dtype=np.int64)
        return flat, flat_view
    if FLAT_PRE in f or FLAT_POST in f:
        groups = [(key, at) for key, at in ((FLAT_PRE, 0), (FLAT_POST, views - 1)) if key in f]
        parts = [_read(_frames(f, path, key, frame), path, key, rows) for key, _ in groups]
        if len({len(p) for p in parts}) > 1:
            raise InputError(f"{path}: {FLAT_PRE} and {FLAT_POST} hold different numbers of frames")
        return np.concatenate(parts), np.asarray([at for _, at in groups], dtype=np.int64)
    raise InputError(f"{path}: dataset {FLAT} is missing (nor {FLAT_PRE}/{FLAT_POST})")


def _frames(f: h5py.File, path: Path, key: str, frame: tuple[int, int]) -> h5py.Dataset:
    dset = _dataset(f, path, key, 3)
    if dset.shape[1:] != frame:
        raise InputError(f"{path}: {key} frames are {dset.shape[1:]}, but {DATA} frames are {frame}")
    return dset


def read_raw(path: str | os.PathLike[str], rows: tuple[int, int] | None = None,
             views: tuple[int, int] | None = None) -> RawScan:
    """Read and check a Data Exchange scan (see the module docstring for the layout),
    optionally only detector ``rows`` [start, stop) and ``views`` [start, stop)."""
    path = Path(path)
    with open_hdf5(path) as f:
        data_ds = _dataset(f, path, DATA, 3)
        n_views, n_rows, cols = data_ds.shape
        row_slice = roi_slice(rows, n_rows, path, "rows")
        view_slice = roi_slice(views, n_views, path, "views")
        flat, flat_view = _flats(f, path, n_views, (n_rows, cols), row_slice)
        dark = _read(_frames(f, path, DARK, (n_rows, cols)), path, DARK, row_slice)
        if THETA in f:
            theta_ds = _dataset(f, path, THETA, 1)
            if theta_ds.shape[0] != n_views:
                raise InputError(f"{path}: {THETA} has {theta_ds.shape[0]} angles but {DATA} has {n_views} views")
            theta = _theta_radians(theta_ds, _read(theta_ds, path, THETA, dtype=np.float64), path)
        else:
            log.warning("%s: no %s; taking %d views evenly spaced over 180 degrees", path, THETA, n_views)
            theta = np.linspace(0.0, np.pi, n_views)
        if TIME in f:
            time_ds = _dataset(f, path, TIME, 1)
            if time_ds.shape[0] != n_views:
                raise InputError(f"{path}: {TIME} has {time_ds.shape[0]} entries but {DATA} has {n_views} views")
            time = _read(time_ds, path, TIME, dtype=np.float64)
            if np.any(np.diff(time) < 0):
                raise InputError(f"{path}: {TIME} is not in acquisition order (it decreases)")
        else:
            time = np.arange(n_views, dtype=np.float64)
        data = _read(data_ds, path, DATA, row_slice, view_slice)
        instrument = read_instrument(f, path)
    scan = RawScan(path=path, data=data, flat=flat, dark=dark, theta=theta[view_slice], time=time[view_slice],
                   flat_view=np.clip(flat_view - view_slice.start, 0, data.shape[0] - 1), instrument=instrument)
    check_scan(scan)
    return scan


def check_scan(scan: RawScan, names: tuple[str, str, str, str] = (DATA, FLAT, DARK, THETA)) -> None:
    """Checks that need the values (NaN/inf are caught when read): non-negative counts,
    flats above the darks, angles that do not run backwards. ``names`` are the
    (projections, flats, darks, angles) locations the messages name."""
    data_name, flat_name, dark_name, theta_name = names
    for key, values in ((data_name, scan.data), (flat_name, scan.flat), (dark_name, scan.dark)):
        if values.min() < 0:
            raise InputError(f"{scan.path}: {key} has negative counts (min {values.min():g})")
    signal = scan.flat.mean(axis=0) - scan.dark.mean(axis=0)
    dead = int(np.count_nonzero(signal <= 0))
    if dead > signal.size // 2:
        raise InputError(f"{scan.path}: {flat_name} is not above {dark_name} in {dead} of {signal.size} pixels "
                         "(flats and darks swapped, or no beam?)")
    backwards = np.flatnonzero(np.diff(scan.theta) < 0)
    if backwards.size:
        raise InputError(f"{scan.path}: {theta_name} decreases at view {backwards[0] + 1}; give the cumulative "
                         "rotation angle in acquisition order (not the angle modulo 360)")


def write_raw(
    path: str | os.PathLike[str],
    data: np.ndarray,
    flat: np.ndarray,
    dark: np.ndarray,
    theta_deg: np.ndarray,
    time_s: np.ndarray,
    attrs: dict[str, Any],
    flat_view: np.ndarray | None = None,
    instrument: dict[str, float] | None = None,
) -> None:
    """Write a scan in the Data Exchange layout (angles in degrees), atomically;
    ``flat_view`` places equal groups of flats within the scan (omitted: one set);
    ``instrument`` the geometry values (config key of :data:`INSTRUMENT` -> mm)."""
    with atomic_path(path) as tmp, h5py.File(tmp, "w") as f:
        f.create_dataset(DATA, data=data, chunks=(1, *data.shape[1:]))
        f.create_dataset(FLAT, data=flat)
        if flat_view is not None and len(flat_view) > 1:
            f.create_dataset(FLAT_VIEW, data=np.asarray(flat_view, dtype=np.int64))
        f.create_dataset(DARK, data=dark)
        f.create_dataset(THETA, data=theta_deg).attrs["units"] = "degrees"
        f.create_dataset(TIME, data=time_s).attrs["units"] = "s"
        for key, value in (instrument or {}).items():
            f.create_dataset(INSTRUMENT[key], data=float(value)).attrs["units"] = "mm"
        f.attrs.update(attrs)
