"""The beam geometry of a scan: from the config's ``geometry`` section and the raw
file's instrument values at prepare time, and from a prepared scan afterwards."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from dinr.errors import InputError
from dinr.geometry import Geometry
from dinr.geometry.cone import ConeGeometry
from dinr.geometry.parallel import ParallelGeometry
from dinr.io.canonical import Sinogram
from dinr.settings import GeometrySettings

#: Detector pitch of a parallel-beam scan that states none (mm); it only sets the
#: physical unit of the attenuation.
DEFAULT_PIXEL_SIZE_MM = 0.001


def beam_attributes(settings: GeometrySettings, instrument: dict[str, float], rows: int, cols: int,
                    raw_path: Path) -> dict[str, Any]:
    """The :class:`~dinr.io.canonical.Sinogram` beam fields (``beam``, ``pixel_size_mm``,
    and for cone beam the two distances and ``row_center``) of a scan with ``rows x cols``
    detector pixels: each length from the config, else from the raw file's ``instrument``
    values. A missing or inconsistent value raises :class:`InputError` naming the
    config key (and the raw file)."""
    def value(key: str) -> float | None:
        configured = getattr(settings, key)
        return float(configured) if configured is not None else instrument.get(key)

    pixel = value("pixel_size_mm")
    if settings.beam == "parallel":
        return {"beam": "parallel", "pixel_size_mm": pixel if pixel is not None else DEFAULT_PIXEL_SIZE_MM}
    lengths = {key: value(key) for key in ("source_axis_mm", "source_detector_mm", "pixel_size_mm")}
    missing = [key for key, length in lengths.items() if length is None]
    if missing:
        raise InputError(f"geometry.{missing[0]}: needed for beam: cone, and {raw_path} has no "
                         f"{', '.join(missing)} in its /measurement group either")
    if lengths["source_detector_mm"] <= lengths["source_axis_mm"]:  # type: ignore[operator]
        raise InputError(f"geometry.source_detector_mm ({lengths['source_detector_mm']:g} mm) must exceed "
                         f"geometry.source_axis_mm ({lengths['source_axis_mm']:g} mm): the detector lies "
                         "beyond the rotation axis")
    if lengths["source_detector_mm"] / lengths["pixel_size_mm"] <= cols / 2.0:  # type: ignore[operator]
        raise InputError(f"geometry.source_detector_mm ({lengths['source_detector_mm']:g} mm) is within half the "
                         f"detector's width ({cols} pixels of {lengths['pixel_size_mm']:g} mm) of the source: "
                         "a fan of 90 degrees or more (check the units: mm)")
    row_center = rows / 2.0 + settings.detector_offset_rows
    if not 0.0 < row_center < rows:
        raise InputError(f"geometry.detector_offset_rows ({settings.detector_offset_rows:g}) puts the central ray "
                         f"off the detector's {rows} rows")
    return {"beam": "cone", **lengths, "row_center": row_center}


def beam_geometry(beam: dict[str, Any], rows: int, cols: int, center: float, n: int) -> Geometry:
    """The reconstruction geometry of a detector of ``rows x cols`` pixels with the axis at
    column ``center`` and slices ``n`` voxels wide, in the beam that ``beam`` (the fields
    of :func:`beam_attributes`) describes. A cone-beam source lies ``source_detector_mm /
    pixel_size_mm`` voxels from the axis (the voxel being a pixel demagnified to the axis)."""
    if beam["beam"] != "cone":
        return ParallelGeometry(rows=rows, cols=cols, center=center, n=n)
    return ConeGeometry(rows=rows, cols=cols, center=center, n=n,
                        source_axis=float(beam["source_detector_mm"]) / float(beam["pixel_size_mm"]),
                        row_center=float(beam["row_center"]))


def geometry_of(sino: Sinogram, n: int | None = None) -> Geometry:
    """The reconstruction geometry of a prepared scan, with slices ``n`` voxels wide
    (default: as wide as the detector)."""
    _, rows, cols = sino.shape
    beam = {"beam": sino.beam, "source_detector_mm": sino.source_detector_mm, "pixel_size_mm": sino.pixel_size_mm,
            "row_center": sino.row_center}
    return beam_geometry(beam, rows, cols, sino.center, cols if n is None else n)


def voxel_size_mm(sino: Sinogram) -> float:
    """The side of a reconstruction voxel in mm: the detector pixel in parallel beam,
    demagnified to the rotation axis in cone beam (pitch x source-axis / source-detector)."""
    if sino.beam == "cone":
        return sino.pixel_size_mm * float(sino.source_axis_mm) / float(sino.source_detector_mm)  # type: ignore[arg-type]
    return sino.pixel_size_mm
