"""Opening HDF5 inputs read-only, with errors that name the file and the dataset path."""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

import h5py

from dinr.errors import InputError


def open_hdf5(path: str | os.PathLike[str]) -> h5py.File:
    """``path`` opened read-only; :class:`InputError` when it is missing, empty or not
    HDF5 (a truncated file usually is not)."""
    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: file not found")
    if path.stat().st_size == 0:
        raise InputError(f"{path}: file is empty")
    try:
        return h5py.File(path, "r")
    except OSError as exc:
        raise InputError(f"{path}: not a readable HDF5 file ({exc})") from exc


def require_datasets(f: h5py.File, keys: Iterable[str], what: str = "") -> None:
    """:class:`InputError` naming the file and the first of ``keys`` missing from ``f``;
    ``what`` says what kind of file was expected."""
    for key in keys:
        if key not in f:
            raise InputError(f"{f.filename}: dataset /{key.lstrip('/')} is missing{what}")
