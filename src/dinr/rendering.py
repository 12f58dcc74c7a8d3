"""What a rendering request asks for, resolved against a scan: its instants and its grid.

A request (:class:`~dinr.settings.RenderingSettings`, config ``renderings.<name>``) names
instants in seconds on the scan's clock (the raw file's ``/exchange/time``) and a part of
the scan's voxel grid: a box in voxels or millimetres, voxels ``upsample`` times finer
than the detector pixel, or one plane (an axial slice, or the vertical cut through the
rotation axis). Values are in attenuation per detector pixel length, as every volume.
"""

from __future__ import annotations

import numpy as np

from dinr.errors import InputError
from dinr.frames import frame_times
from dinr.geometry import Geometry
from dinr.inr.render import VoxelGrid
from dinr.io.canonical import normalised_time
from dinr.settings import RenderingSettings

#: Frames a rate over a time range may ask for (a typing slip like 1e6 Hz stops early).
MAX_INSTANTS = 100_000


def request_times(settings: RenderingSettings, scan_time: tuple[float, float],
                  where: str) -> tuple[np.ndarray, np.ndarray]:
    """``(seconds (t,), normalised (t,))`` instants of a request on a scan that ran from
    ``scan_time[0]`` to ``scan_time[1]`` seconds; an instant outside the scan is an
    error naming ``where`` (the request's config key)."""
    times = settings.times
    t0, t1 = scan_time
    if isinstance(times, list):
        seconds = np.asarray(times, dtype=np.float64)
    elif "count" in times:
        return frame_times(scan_time, None, int(times["count"]))
    else:
        start = t0 if times.get("start_s") is None else float(times["start_s"])
        stop = t1 if times.get("stop_s") is None else float(times["stop_s"])
        count = int(np.floor((stop - start) * float(times["rate_hz"]) + 1e-9)) + 1
        if stop < start or count > MAX_INSTANTS:
            raise InputError(f"{where}.times: {count if stop >= start else 'no'} instants from {start:g} s to "
                             f"{stop:g} s at {times['rate_hz']:g} Hz (at most {MAX_INSTANTS})")
        seconds = start + np.arange(count) / float(times["rate_hz"])
    outside = (seconds < t0 - 1e-9) | (seconds > t1 + 1e-9)
    if outside.any():
        raise InputError(f"{where}.times: {seconds[outside][0]:g} s lies outside the scan, which ran from "
                         f"{t0:g} s to {t1:g} s")
    return seconds, normalised_time(seconds, scan_time)


def _span(region: dict[str, object], axis: str, length: int, scale: float, where: str) -> tuple[int, int]:
    """[start, stop) voxels of ``axis`` (``length`` voxels) from the region's values,
    given in voxels or (``scale`` = 1 / voxel size) in mm; whole voxels that the range
    touches."""
    if axis not in region:
        return 0, length
    low, high = (float(v) * scale for v in region[axis])  # type: ignore[attr-defined]
    start, stop = int(np.floor(low + 1e-9)), int(np.ceil(high - 1e-9))
    if not 0 <= start < stop <= length:
        raise InputError(f"{where}.region.{axis}: {region[axis]} is not a non-empty range within the grid's "
                         f"{length} voxels ({region.get('units', 'voxels')})")
    return start, stop


def request_grid(settings: RenderingSettings, geometry: Geometry, voxel_mm: float, where: str) -> VoxelGrid:
    """The voxels of a request on the scan's grid (``rows`` slices of ``n x n`` voxels of
    ``voxel_mm`` millimetres): its region, ``upsample`` times finer, or one plane of it."""
    region = settings.region or {}
    scale = 1.0 / voxel_mm if region.get("units") == "mm" else 1.0
    z, y, x = (_span(region, axis, length, scale, where)
               for axis, length in (("z", geometry.rows), ("y", geometry.n), ("x", geometry.n)))
    grid = VoxelGrid.box(geometry, z, y, x, settings.upsample)
    if settings.plane == "axial":
        at = geometry.rows / 2.0 - 0.5 if settings.at is None else float(settings.at)
        if not 0 <= at <= geometry.rows - 1:
            raise InputError(f"{where}.at: slice {at:g} is outside the scan's {geometry.rows} slices")
        return VoxelGrid(z=np.array([geometry.rows / 2.0 - (at + 0.5)]), y=grid.y, x=grid.x, voxel=grid.voxel)
    if settings.plane == "vertical":
        offset = 0.0 if settings.at is None else float(settings.at)
        if abs(offset) >= geometry.radius:
            raise InputError(f"{where}.at: {offset:g} voxels from the axis is outside the reconstruction "
                             f"cylinder (radius {geometry.radius:.1f})")
        return VoxelGrid(z=grid.z, y=np.array([offset]), x=grid.x, voxel=grid.voxel)
    return grid


def voxel_size_zyx(grid: VoxelGrid, voxel_mm: float) -> tuple[float, float, float]:
    """Voxel size (z, y, x) of a grid in mm: one grid step along each axis of more than
    one voxel, else the voxel's own side."""
    def step(values: np.ndarray) -> float:
        return float(abs(values[1] - values[0])) if len(values) > 1 else grid.voxel

    return step(grid.z) * voxel_mm, step(grid.y) * voxel_mm, step(grid.x) * voxel_mm
