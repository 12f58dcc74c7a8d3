"""Exports of a (t, z, y, x) volume file for viewers: OME-Zarr (NGFF) and ImageJ TIFF.

Both are streamed from the HDF5 volume a slice at a time, so memory stays at a few
slices whatever the volume's size. Physical units come from the volume's own
attributes (``voxel_size_mm`` (z, y, x), ``frame_interval_s``; :mod:`dinr.io.volume`):
lengths in micrometres when a voxel is under 0.1 mm, else millimetres; time in seconds.
Values stay in attenuation per scan voxel (the volume's unit). Each export carries the
volume's provenance attributes and its own (``dinr_export``).
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import dask
import dask.array as da
import h5py
import numpy as np
import tifffile
import zarr
from ome_zarr.writer import write_image
from tqdm import tqdm
from tqdm.dask import TqdmCallback

from dinr.errors import InputError
from dinr.io.atomic import atomic_path
from dinr.io.volume import open_volume
from dinr.provenance import PROVENANCE_PREFIX

#: Pyramid levels of an OME-Zarr export, each halving y and x, down to about this size.
PYRAMID_SMALLEST = 64


def length_unit(voxel_mm: float) -> tuple[str, float]:
    """(NGFF unit name, factor from mm) for lengths of a grid of ``voxel_mm`` voxels."""
    return ("micrometer", 1000.0) if voxel_mm < 0.1 else ("millimeter", 1.0)


def physical_scale(volume: h5py.Dataset) -> tuple[np.ndarray, float]:
    """The volume's (z, y, x) voxel size in mm and frame interval in seconds; an error
    naming the file when it does not record them (written before they were kept)."""
    missing = [key for key in ("voxel_size_mm", "frame_interval_s") if key not in volume.attrs]
    if missing:
        raise InputError(f"{volume.file.filename}: {volume.name} does not record {', '.join(missing)}; "
                         "render or reconstruct it again with this version of dinr")
    return np.asarray(volume.attrs["voxel_size_mm"], dtype=np.float64), float(volume.attrs["frame_interval_s"])


def _provenance(f: h5py.File, source: Path, what: str) -> dict[str, str]:
    """The source file's ``dinr_*`` attributes and this export's own record."""
    attrs = {key: str(value) for key, value in f.attrs.items() if key.startswith(PROVENANCE_PREFIX)}
    attrs["dinr_export"] = json.dumps({"source": str(source), "format": what})
    return attrs


def pyramid_factors(ny: int, nx: int) -> list[int]:
    """Down-sampling factors (2, 4, ...) of y and x while the smaller side stays at
    least :data:`PYRAMID_SMALLEST` pixels."""
    factors, factor = [], 2
    while min(ny, nx) // factor >= PYRAMID_SMALLEST:
        factors.append(factor)
        factor *= 2
    return factors


def export_ome_zarr(volume_path: Path, out_path: Path, name: str = "recon", workers: int = 1) -> None:
    """An OME-Zarr image (NGFF, written by ``ome-zarr``) of a volume file: axes t, z, y,
    x with units, scale transforms equal to the voxel size and the frame interval, a
    pyramid halving y and x (:func:`pyramid_factors`), chunks of whole slices, computed
    by ``workers`` threads (a progress line with rate and ETA every 10 s). Written to a temporary folder, renamed onto ``out_path`` when
    complete."""
    with open_volume(volume_path, name) as (volume, _), h5py.File(volume_path, "r") as f:
        voxel, interval = physical_scale(volume)
        unit, factor = length_unit(float(voxel.min()))
        _, _, ny, nx = volume.shape
        lazy = da.from_array(volume, chunks=(1, 1, ny, nx))
        tmp = out_path.with_name(f".{out_path.name}.tmp{os.getpid()}")
        shutil.rmtree(tmp, ignore_errors=True)
        group = zarr.open_group(str(tmp), mode="w")
        scale = {"t": interval or 1.0, **{axis: float(v * factor) for axis, v in zip("zyx", voxel)}}
        with dask.config.set(scheduler="threads", num_workers=workers), \
                TqdmCallback(desc="export ome-zarr", unit="task", mininterval=10, file=sys.stderr):
            write_image(lazy, group, scale_factors=pyramid_factors(ny, nx), axes=["t", "z", "y", "x"], scale=scale,
                        axes_units={"t": "second", "z": unit, "y": unit, "x": unit},
                        storage_options={"chunks": (1, 1, ny, nx)}, name=out_path.stem)
        group.attrs.update(_provenance(f, volume_path, "ome-zarr"))
    shutil.rmtree(out_path, ignore_errors=True)
    tmp.rename(out_path)


def _pages(volume: h5py.Dataset) -> Iterator[np.ndarray]:
    """The volume's (y, x) slices in (t, z) order, with a progress line."""
    frames, slices = volume.shape[:2]
    for t in tqdm(range(frames), desc="export tiff", unit="frame", mininterval=10, disable=frames < 2):
        for z in range(slices):
            yield np.asarray(volume[t, z], dtype=np.float32)


def export_imagej_tiff(volume_path: Path, out_path: Path, name: str = "recon") -> None:
    """An ImageJ hyperstack TIFF (TZYX, float32, written by ``tifffile``) of a volume
    file, with its pixel width and height, slice spacing, unit and frame interval, which
    Fiji opens as a calibrated 4D stack; written atomically."""
    with open_volume(volume_path, name) as (volume, _), h5py.File(volume_path, "r") as f:
        voxel, interval = physical_scale(volume)
        unit, factor = length_unit(float(voxel.min()))
        dz, dy, dx = (float(v * factor) for v in voxel)
        metadata: dict[str, Any] = {"axes": "TZYX", "spacing": dz, "unit": "micron" if unit == "micrometer" else "mm",
                                    "finterval": interval, "Info": json.dumps(_provenance(f, volume_path, "tiff"))}
        with atomic_path(out_path) as tmp:
            tifffile.imwrite(tmp, _pages(volume), shape=volume.shape, dtype=np.float32, imagej=True,
                             resolution=(1.0 / dx, 1.0 / dy), metadata=metadata)
