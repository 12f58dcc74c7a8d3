"""TIFF stacks as lab CT systems and many beamlines write them.

A scan is a folder::

    projections/   one 2D TIFF per view (rows, cols), counts, any real dtype
    flats/         flat fields, same frame shape
    darks/         dark currents, same frame shape
    angles.csv     one line per view: column ``theta_deg`` or ``theta_rad``, and
                   optionally ``time_s`` (acquisition time, seconds)
  or angles.yaml   ``theta: [...]``, ``units: degrees|radians``, optional ``time: [...]``

Files in each folder are ordered by the number in their names (``proj_00042.tif``),
which must run without gaps: a missing frame is an error, never a silent shift of
every later angle. Inputs are only read.
"""

from __future__ import annotations

import csv
import re
from pathlib import Path

import numpy as np
import tifffile
import yaml

from dinr.errors import InputError
from dinr.io.dxchange import RawScan, check_angles, check_scan, roi_slice, within

SUFFIXES = (".tif", ".tiff")
_NUMBER = re.compile(r"(\d+)(?!.*\d)")


def _numbered_frames(folder: Path) -> list[Path]:
    """The TIFF files of ``folder`` in frame order; their numbers must be consecutive."""
    if not folder.is_dir():
        raise InputError(f"{folder}: folder not found")
    files = [p for p in folder.iterdir() if p.suffix.lower() in SUFFIXES]
    if not files:
        raise InputError(f"{folder}: no TIFF files")
    numbered = []
    for path in files:
        match = _NUMBER.search(path.stem)
        if match is None:
            raise InputError(f"{path}: no frame number in the file name")
        numbered.append((int(match.group(1)), path))
    numbered.sort()
    numbers = [n for n, _ in numbered]
    missing = sorted(set(range(numbers[0], numbers[-1] + 1)) - set(numbers))
    if missing:
        raise InputError(f"{folder}: frame {missing[0]} is missing (frames run {numbers[0]}..{numbers[-1]}; "
                         f"{len(missing)} missing)")
    if len(set(numbers)) != len(numbers):
        raise InputError(f"{folder}: two files share a frame number")
    return [p for _, p in numbered]


def _read_frame(path: Path) -> np.ndarray:
    """One 2D frame (rows, cols) as stored."""
    try:
        image = tifffile.imread(path)
    except (OSError, ValueError, tifffile.TiffFileError) as exc:
        raise InputError(f"{path}: not a readable TIFF ({exc})") from exc
    if image.ndim != 2 or not np.issubdtype(image.dtype, np.number) or np.iscomplexobj(image):
        raise InputError(f"{path}: expected one 2D frame of real numbers, found {image.dtype} {image.shape}")
    return image


def _read_frames(files: list[Path], rows: slice, frame_shape: tuple[int, ...]) -> np.ndarray:
    """(frames, rows, cols) float32 of the files, rows cut to ``rows``."""
    frames = []
    for path in files:
        image = _read_frame(path)
        if image.shape != frame_shape:
            raise InputError(f"{path}: frame is {image.shape}, expected {frame_shape}")
        values = np.asarray(image[rows], dtype=np.float32)
        if not np.all(np.isfinite(values)):
            raise InputError(f"{path}: contains NaN or infinite values")
        frames.append(values)
    return np.stack(frames)


def _angles(folder: Path) -> tuple[np.ndarray, np.ndarray | None, Path]:
    """(theta radians, time seconds or None, the file they came from)."""
    csv_path, yaml_path = folder / "angles.csv", folder / "angles.yaml"
    if csv_path.exists():
        with csv_path.open(newline="") as handle:
            table = list(csv.DictReader(handle))
        columns = set(table[0]) if table else set()
        unit_column = "theta_deg" if "theta_deg" in columns else "theta_rad" if "theta_rad" in columns else None
        if unit_column is None:
            raise InputError(f"{csv_path}: needs a column theta_deg or theta_rad (found {sorted(columns)})")
        try:
            theta = np.array([float(r[unit_column]) for r in table])
            time = np.array([float(r["time_s"]) for r in table]) if "time_s" in columns else None
        except (TypeError, ValueError) as exc:
            raise InputError(f"{csv_path}: a value is not a number ({exc})") from exc
        return (np.deg2rad(theta) if unit_column == "theta_deg" else theta), time, csv_path
    if yaml_path.exists():
        try:
            spec = yaml.safe_load(yaml_path.read_text())
            theta = np.asarray(spec["theta"], dtype=np.float64)
            time = np.asarray(spec["time"], dtype=np.float64) if "time" in spec else None
        except (yaml.YAMLError, KeyError, TypeError, ValueError) as exc:
            raise InputError(f"{yaml_path}: expected theta: [...], units, optional time: [...] ({exc})") from exc
        units = str(spec.get("units", "degrees")).lower()
        if units not in ("degrees", "radians"):
            raise InputError(f"{yaml_path}: units {units!r}, expected degrees or radians")
        return (np.deg2rad(theta) if units == "degrees" else theta), time, yaml_path
    raise InputError(f"{folder}: no angles.csv or angles.yaml")


class TiffStack:
    """A TIFF-stack scan (layout in the module docstring) read in pieces: the same
    interface as :class:`dinr.io.dxchange.RawScanFile`.

    Opening reads the angles and times, finds the frames and checks their count; ``shape``
    is (views, rows, cols) of the region of interest (``rows`` and ``views`` [start,
    stop), null for all). Frames are read when :meth:`counts`, :meth:`flats` or
    :meth:`darks` asks for them (one file per view, so :meth:`counts` is best read in
    blocks of views).
    """

    def __init__(self, folder: str | Path, rows: tuple[int, int] | None = None,
                 views: tuple[int, int] | None = None) -> None:
        folder = Path(folder)
        if not folder.is_dir():
            raise InputError(f"{folder}: folder not found")
        theta, time, angle_file = _angles(folder)
        projection_files = _numbered_frames(folder / "projections")
        if len(theta) != len(projection_files) or (time is not None and len(time) != len(theta)):
            raise InputError(f"{angle_file}: {len(theta)} angles{'' if time is None else f', {len(time)} times'} "
                             f"but {folder / 'projections'} has {len(projection_files)} frames")
        if not np.all(np.isfinite(theta)) or (time is not None and not np.all(np.isfinite(time))):
            raise InputError(f"{angle_file}: contains NaN or infinite values")
        if time is not None and np.any(np.diff(time) < 0):
            raise InputError(f"{angle_file}: time_s is not in acquisition order (it decreases)")
        self.path = folder
        self.names = (f"{folder / 'projections'}", f"{folder / 'flats'}", f"{folder / 'darks'}", str(angle_file))
        self._frame_shape = _read_frame(projection_files[0]).shape
        self._rows = roi_slice(rows, self._frame_shape[0], folder, "rows")
        view_slice = roi_slice(views, len(theta), folder, "views")
        self._projection_files = projection_files[view_slice]
        self.theta = theta[view_slice]
        self.time = (np.arange(len(theta), dtype=np.float64) if time is None else time)[view_slice]
        self.shape = (len(self._projection_files), self._rows.stop - self._rows.start, self._frame_shape[1])
        self.flat_view = np.zeros(1, dtype=np.int64)
        self.instrument: dict[str, float] = {}
        check_angles(folder, self.theta, self.names[3])

    def counts(self, views: slice = slice(None), rows: slice = slice(None)) -> np.ndarray:
        """Projection counts (views, rows, cols) float32 of a block of the region."""
        return _read_frames(self._projection_files[views], within(self._rows, rows), self._frame_shape)

    def flats(self, rows: slice = slice(None)) -> np.ndarray:
        """Flat-field counts (n_flats, rows, cols) float32 of a block of detector rows."""
        return _read_frames(_numbered_frames(self.path / "flats"), within(self._rows, rows), self._frame_shape)

    def darks(self, rows: slice = slice(None)) -> np.ndarray:
        """Dark-current counts (n_darks, rows, cols) float32 of a block of detector rows."""
        return _read_frames(_numbered_frames(self.path / "darks"), within(self._rows, rows), self._frame_shape)

    def __enter__(self) -> TiffStack:
        return self

    def __exit__(self, *exc: object) -> None:
        pass


def read_tiff_scan(folder: str | Path, rows: tuple[int, int] | None = None,
                   views: tuple[int, int] | None = None) -> RawScan:
    """Read a whole TIFF-stack scan into memory as a :class:`RawScan`, optionally only
    detector ``rows`` [start, stop) and ``views`` [start, stop)."""
    stack = TiffStack(folder, rows, views)
    scan = RawScan(path=stack.path, data=stack.counts(), flat=stack.flats(), dark=stack.darks(), theta=stack.theta,
                   time=stack.time, flat_view=stack.flat_view, instrument=stack.instrument)
    check_scan(scan, stack.names)
    return scan
