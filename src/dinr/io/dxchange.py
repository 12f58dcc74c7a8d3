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
from collections.abc import Iterator
from contextlib import contextmanager
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


def within(region: slice, part: slice) -> slice:
    """``part``, a slice of the indices of ``region`` (a [start, stop) slice of a file's
    axis), as a slice of the file's axis."""
    start, stop, _ = part.indices(region.stop - region.start)
    return slice(region.start + start, region.start + stop)


def _flat_layout(f: h5py.File, path: Path, views: int, frame: tuple[int, int]) -> tuple[list[str], np.ndarray]:
    """The flat datasets (read in this order and concatenated) and the view at which each
    equal group of flats was taken."""
    if FLAT in f:
        count = _frames(f, path, FLAT, frame).shape[0]
        if FLAT_VIEW in f:
            flat_view = _read(_dataset(f, path, FLAT_VIEW, 1), path, FLAT_VIEW, dtype=np.float64).astype(np.int64)
            if count % len(flat_view) or np.any(np.diff(flat_view) <= 0) or flat_view.min() < 0:
                raise InputError(f"{path}: {FLAT_VIEW} must list increasing view indices of equal groups of "
                                 f"{FLAT} ({count} frames in {len(flat_view)} groups)")
        else:
            flat_view = np.zeros(1, dtype=np.int64)
        return [FLAT], flat_view
    if FLAT_PRE in f or FLAT_POST in f:
        groups = [(key, at) for key, at in ((FLAT_PRE, 0), (FLAT_POST, views - 1)) if key in f]
        if len({_frames(f, path, key, frame).shape[0] for key, _ in groups}) > 1:
            raise InputError(f"{path}: {FLAT_PRE} and {FLAT_POST} hold different numbers of frames")
        return [key for key, _ in groups], np.asarray([at for _, at in groups], dtype=np.int64)
    raise InputError(f"{path}: dataset {FLAT} is missing (nor {FLAT_PRE}/{FLAT_POST})")


def _frames(f: h5py.File, path: Path, key: str, frame: tuple[int, int]) -> h5py.Dataset:
    dset = _dataset(f, path, key, 3)
    if dset.shape[1:] != frame:
        raise InputError(f"{path}: {key} frames are {dset.shape[1:]}, but {DATA} frames are {frame}")
    return dset


class RawScanFile:
    """An open Data Exchange scan whose counts are read in pieces (context manager).

    Opening reads and checks everything but the counts: the datasets' shapes, the angles
    (radians) and times (seconds), where the flats were taken and the instrument's
    geometry. ``shape`` is (views, rows, cols) of the region of interest (``rows`` and
    ``views`` [start, stop), null for all); :meth:`counts`, :meth:`flats` and
    :meth:`darks` read hyperslabs of it as float32, indices relative to the region.
    """

    def __init__(self, path: str | os.PathLike[str], rows: tuple[int, int] | None = None,
                 views: tuple[int, int] | None = None) -> None:
        self.path = Path(path)
        self._file = open_hdf5(self.path)
        try:
            self._open(rows, views)
        except BaseException:
            self._file.close()
            raise

    def _open(self, rows: tuple[int, int] | None, views: tuple[int, int] | None) -> None:
        f, path = self._file, self.path
        self._data = _dataset(f, path, DATA, 3)
        n_views, n_rows, cols = self._data.shape
        self._rows = roi_slice(rows, n_rows, path, "rows")
        self._views = roi_slice(views, n_views, path, "views")
        self._flat_keys, flat_view = _flat_layout(f, path, n_views, (n_rows, cols))
        self._dark = _frames(f, path, DARK, (n_rows, cols))
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
        self.theta, self.time = theta[self._views], time[self._views]
        self.shape = (self._views.stop - self._views.start, self._rows.stop - self._rows.start, cols)
        self.flat_view = np.clip(flat_view - self._views.start, 0, self.shape[0] - 1)
        self.instrument = read_instrument(f, path)
        self.names = (DATA, FLAT, DARK, THETA)
        check_angles(self.path, self.theta, THETA)

    def counts(self, views: slice = slice(None), rows: slice = slice(None)) -> np.ndarray:
        """Projection counts (views, rows, cols) float32 of a block of the region."""
        return _read(self._data, self.path, DATA, within(self._rows, rows), within(self._views, views))

    def flats(self, rows: slice = slice(None)) -> np.ndarray:
        """Flat-field counts (n_flats, rows, cols) float32 of a block of detector rows."""
        region = within(self._rows, rows)
        return np.concatenate([_read(self._file[key], self.path, key, region) for key in self._flat_keys])

    def darks(self, rows: slice = slice(None)) -> np.ndarray:
        """Dark-current counts (n_darks, rows, cols) float32 of a block of detector rows."""
        return _read(self._dark, self.path, DARK, within(self._rows, rows))

    def close(self) -> None:
        self._file.close()

    def __enter__(self) -> RawScanFile:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def read_raw(path: str | os.PathLike[str], rows: tuple[int, int] | None = None,
             views: tuple[int, int] | None = None) -> RawScan:
    """Read and check a whole Data Exchange scan (see the module docstring for the
    layout) into memory, optionally only detector ``rows`` [start, stop) and ``views``
    [start, stop). The stages read it in pieces through :class:`RawScanFile` instead."""
    with RawScanFile(path, rows, views) as raw:
        scan = RawScan(path=raw.path, data=raw.counts(), flat=raw.flats(), dark=raw.darks(), theta=raw.theta,
                       time=raw.time, flat_view=raw.flat_view, instrument=raw.instrument)
    check_scan(scan)
    return scan


def check_counts(path: Path, name: str, values: np.ndarray) -> None:
    """Counts must not be negative (NaN and infinities are caught when read)."""
    if values.size and values.min() < 0:
        raise InputError(f"{path}: {name} has negative counts (min {values.min():g})")


def dead_pixels(flat: np.ndarray, dark: np.ndarray) -> int:
    """Pixels whose mean flat is not above their mean dark (no signal to normalise by)."""
    return int(np.count_nonzero(flat.mean(axis=0) - dark.mean(axis=0) <= 0))


def check_dead_pixels(path: Path, dead: int, pixels: int, flat_name: str, dark_name: str) -> None:
    """More than half the detector without signal means flats and darks are swapped (or
    there was no beam)."""
    if dead > pixels // 2:
        raise InputError(f"{path}: {flat_name} is not above {dark_name} in {dead} of {pixels} pixels "
                         "(flats and darks swapped, or no beam?)")


def check_angles(path: Path, theta: np.ndarray, theta_name: str) -> None:
    """Angles must not run backwards (the cumulative rotation in acquisition order)."""
    backwards = np.flatnonzero(np.diff(theta) < 0)
    if backwards.size:
        raise InputError(f"{path}: {theta_name} decreases at view {backwards[0] + 1}; give the cumulative "
                         "rotation angle in acquisition order (not the angle modulo 360)")


def check_scan(scan: RawScan, names: tuple[str, str, str, str] = (DATA, FLAT, DARK, THETA)) -> None:
    """Checks that need the values of a scan in memory: non-negative counts, flats above
    the darks, angles that do not run backwards. ``names`` are the (projections, flats,
    darks, angles) locations the messages name."""
    data_name, flat_name, dark_name, theta_name = names
    for key, values in ((data_name, scan.data), (flat_name, scan.flat), (dark_name, scan.dark)):
        check_counts(scan.path, key, values)
    check_dead_pixels(scan.path, dead_pixels(scan.flat, scan.dark), scan.flat[0].size, flat_name, dark_name)
    check_angles(scan.path, scan.theta, theta_name)


@contextmanager
def raw_writer(
    path: str | os.PathLike[str],
    shape: tuple[int, int, int],
    flat: np.ndarray,
    dark: np.ndarray,
    theta_deg: np.ndarray,
    time_s: np.ndarray,
    attrs: dict[str, Any],
    flat_view: np.ndarray | None = None,
    instrument: dict[str, float] | None = None,
    dtype: np.dtype[Any] | type = np.float32,
) -> Iterator[h5py.Dataset]:
    """A scan file in the Data Exchange layout (angles in degrees) whose empty
    ``/exchange/data`` (views, rows, cols) of ``dtype``, chunked per view, the caller fills block by
    block; renamed onto ``path`` only when the block ends without error. ``flat_view``
    places equal groups of flats within the scan (omitted: one set); ``instrument`` the
    geometry values (config key of :data:`INSTRUMENT` -> mm)."""
    with atomic_path(path) as tmp, h5py.File(tmp, "w") as f:
        data = f.create_dataset(DATA, shape=shape, dtype=dtype, chunks=(1, *shape[1:]))
        f.create_dataset(FLAT, data=flat)
        if flat_view is not None and len(flat_view) > 1:
            f.create_dataset(FLAT_VIEW, data=np.asarray(flat_view, dtype=np.int64))
        f.create_dataset(DARK, data=dark)
        f.create_dataset(THETA, data=theta_deg).attrs["units"] = "degrees"
        f.create_dataset(TIME, data=time_s).attrs["units"] = "s"
        for key, value in (instrument or {}).items():
            f.create_dataset(INSTRUMENT[key], data=float(value)).attrs["units"] = "mm"
        f.attrs.update(attrs)
        yield data


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
    """Write a scan held in memory in the Data Exchange layout, atomically (see
    :func:`raw_writer`)."""
    with raw_writer(path, data.shape, flat, dark, theta_deg, time_s, attrs, flat_view, instrument, data.dtype) as dset:
        dset[...] = data
