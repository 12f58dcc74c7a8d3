"""APS Data Exchange HDF5: the raw-scan contract.

Layout read and written here (axes order in parentheses):

- ``/exchange/data`` (views, rows, cols): detector counts, any real or integer dtype;
- ``/exchange/data_white`` (n_flats, rows, cols) and ``/exchange/data_dark``
  (n_darks, rows, cols): flat-field and dark-current counts;
- ``/exchange/theta`` (views,): rotation angles, ``units`` attribute ``degrees``
  (default, as the spec says) or ``radians``; may run through several turns;
- ``/exchange/time`` (views,): acquisition time of each view in seconds (optional;
  evenly spaced in view order when absent).

Files are opened read-only; every problem is reported as :class:`dinr.errors.InputError`
naming the file and the dataset path.
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

DATA = "/exchange/data"
FLAT = "/exchange/data_white"
DARK = "/exchange/data_dark"
THETA = "/exchange/theta"
TIME = "/exchange/time"


@dataclass
class RawScan:
    """A raw scan in memory.

    ``data`` (views, rows, cols), ``flat`` (n_flats, rows, cols), ``dark``
    (n_darks, rows, cols) in counts as float32; ``theta`` (views,) radians;
    ``time`` (views,) seconds.
    """

    path: Path
    data: np.ndarray
    flat: np.ndarray
    dark: np.ndarray
    theta: np.ndarray
    time: np.ndarray


def _open(path: Path) -> h5py.File:
    if not path.exists():
        raise InputError(f"{path}: file not found")
    if path.stat().st_size == 0:
        raise InputError(f"{path}: file is empty")
    try:
        return h5py.File(path, "r")
    except OSError as exc:
        raise InputError(f"{path}: not a readable HDF5 file ({exc})") from exc


def _dataset(f: h5py.File, path: Path, key: str, ndim: int) -> h5py.Dataset:
    if key not in f:
        raise InputError(f"{path}: dataset {key} is missing")
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


def _read(dset: h5py.Dataset, path: Path, key: str) -> np.ndarray:
    try:
        values = np.asarray(dset[()], dtype=np.float32)
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


def read_raw(path: str | os.PathLike[str]) -> RawScan:
    """Read and check a Data Exchange scan; see the module docstring for the layout."""
    path = Path(path)
    with _open(path) as f:
        data_ds = _dataset(f, path, DATA, 3)
        views, rows, cols = data_ds.shape
        flat_ds = _dataset(f, path, FLAT, 3)
        dark_ds = _dataset(f, path, DARK, 3)
        for key, dset in ((FLAT, flat_ds), (DARK, dark_ds)):
            if dset.shape[1:] != (rows, cols):
                raise InputError(
                    f"{path}: {key} frames are {dset.shape[1:]}, but {DATA} frames are {(rows, cols)}"
                )
        theta_ds = _dataset(f, path, THETA, 1)
        if theta_ds.shape[0] != views:
            raise InputError(f"{path}: {THETA} has {theta_ds.shape[0]} angles but {DATA} has {views} views")
        theta = _theta_radians(theta_ds, _read(theta_ds, path, THETA), path)
        if TIME in f:
            time_ds = _dataset(f, path, TIME, 1)
            if time_ds.shape[0] != views:
                raise InputError(f"{path}: {TIME} has {time_ds.shape[0]} entries but {DATA} has {views} views")
            time = _read(time_ds, path, TIME).astype(np.float64)
            if np.any(np.diff(time) < 0):
                raise InputError(f"{path}: {TIME} is not in acquisition order (it decreases)")
        else:
            time = np.arange(views, dtype=np.float64)
        scan = RawScan(
            path=path,
            data=_read(data_ds, path, DATA),
            flat=_read(flat_ds, path, FLAT),
            dark=_read(dark_ds, path, DARK),
            theta=theta,
            time=time,
        )
    for key, values in ((DATA, scan.data), (FLAT, scan.flat), (DARK, scan.dark)):
        if values.min() < 0:
            raise InputError(f"{path}: {key} has negative counts (min {values.min():g})")
    return scan


def write_raw(
    path: str | os.PathLike[str],
    data: np.ndarray,
    flat: np.ndarray,
    dark: np.ndarray,
    theta_deg: np.ndarray,
    time_s: np.ndarray,
    attrs: dict[str, Any],
) -> None:
    """Write a scan in the Data Exchange layout (angles in degrees), atomically."""
    with atomic_path(path) as tmp, h5py.File(tmp, "w") as f:
        f.create_dataset(DATA, data=data, chunks=(1, *data.shape[1:]))
        f.create_dataset(FLAT, data=flat)
        f.create_dataset(DARK, data=dark)
        f.create_dataset(THETA, data=theta_deg).attrs["units"] = "degrees"
        f.create_dataset(TIME, data=time_s).attrs["units"] = "s"
        f.attrs.update(attrs)
