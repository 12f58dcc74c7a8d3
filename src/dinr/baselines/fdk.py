"""Cone-beam baselines with RTK (``itk-rtk``, CPU): FDK and the Joseph forward projector.

- ``fdk_static``: FDK of all training views. RTK weights each view by the angular gap to
  its neighbours, which several turns in one call get wrong, so each full turn is
  reconstructed on its own and the turns are averaged.
- ``fdk_sliding``: for each frame, FDK of the short scan centred on it — 180 degrees plus
  the fan angle, the least a cone-beam FDK needs — with Parker's short-scan weights.

The geometry is ours (:mod:`dinr.geometry.cone`) in RTK's terms: RTK turns about its y
axis, so our volume ``(z, y, x)`` is RTK's array ``(-y, -z, x)`` (index order ``(y row,
slice, x)``), the gantry angle is ``theta`` in degrees, and the detector keeps our row
and column order. The detector is placed at twice the source-to-axis distance with a
pitch of two voxels (a magnification of 2: RTK's rays end at the detector, so it must
lie beyond the object). RTK's FDK loses the outer half-pixel of the detector, so one
edge row is repeated above and below before filtering.
"""

from __future__ import annotations

import importlib
from typing import Any

import numpy as np

from dinr.baselines.fbp import window_bounds
from dinr.errors import InputError
from dinr.geometry.cone import ConeGeometry

#: Detector magnification of the geometry handed to RTK (detector pitch in voxels).
MAGNIFICATION = 2.0
#: Edge rows repeated above and below the detector before FDK.
PAD_ROWS = 1


def import_rtk(needed_by: str) -> tuple[Any, Any]:
    """ITK and RTK's Python modules, or an :class:`InputError` naming what needs them
    (``needed_by``: a baseline method or stage)."""
    try:
        itk = importlib.import_module("itk")
        return itk, itk.RTK
    except (ImportError, AttributeError) as err:
        raise InputError(f"{needed_by} needs RTK: pip install itk-rtk ({err})") from None


def _image(itk: Any, array: np.ndarray, origin: tuple[float, float, float], spacing: float) -> Any:
    image = itk.image_from_array(np.ascontiguousarray(array, dtype=np.float32))
    image.SetOrigin([float(o) for o in origin])
    image.SetSpacing([float(spacing)] * 3)
    return image


def _rtk_geometry(rtk: Any, geometry: ConeGeometry, theta: np.ndarray) -> Any:
    rtk_geometry = rtk.ThreeDCircularProjectionGeometry.New()
    for angle in np.degrees(np.asarray(theta, dtype=np.float64)):
        rtk_geometry.AddProjection(geometry.source_axis, MAGNIFICATION * geometry.source_axis, float(angle), 0.0, 0.0)
    return rtk_geometry


def _projections(itk: Any, projections: np.ndarray, geometry: ConeGeometry, pad: int) -> Any:
    """RTK's projection stack of (views, rows, cols) line integrals, ``pad`` edge rows
    repeated above and below; pixel (r, c) sits at ``((c + 0.5 - center), (r + 0.5 -
    row_center))`` times the magnification."""
    padded = np.pad(projections, ((0, 0), (pad, pad), (0, 0)), mode="edge")
    origin = ((0.5 - geometry.center) * MAGNIFICATION, (0.5 - pad - geometry.row_center) * MAGNIFICATION, 0.0)
    return _image(itk, padded, origin, MAGNIFICATION)


def _volume_origin(geometry: ConeGeometry) -> tuple[float, float, float]:
    # RTK (x, y, z) of array index (0, 0, 0): x = j + 0.5 - n/2, y = -z_ours, z = -y_ours.
    return (0.5 - geometry.n / 2.0, 0.5 - geometry.rows / 2.0, 0.5 - geometry.n / 2.0)


def _to_ours(rtk_volume: np.ndarray) -> np.ndarray:
    """RTK's (y row, slice, x) array as our (z, y, x) volume."""
    return np.ascontiguousarray(np.transpose(rtk_volume, (1, 0, 2)))


def _to_gpu(itk: Any, rtk: Any, image: Any) -> Any:
    """A CUDA image sharing ``image``'s buffer and geometry (RTK copies it to the GPU
    when a CUDA filter reads it)."""
    gpu = rtk.CudaImage[itk.F, 3].New()
    gpu.SetPixelContainer(image.GetPixelContainer())
    gpu.CopyInformation(image)
    gpu.SetBufferedRegion(image.GetBufferedRegion())
    gpu.SetRequestedRegion(image.GetRequestedRegion())
    return gpu


def _fdk_call(itk: Any, rtk: Any, projections: np.ndarray, theta: np.ndarray, geometry: ConeGeometry,
              short_scan: bool, device: str = "cpu") -> np.ndarray:
    image_type = itk.Image[itk.F, 3]
    rtk_geometry = _rtk_geometry(rtk, geometry, theta)
    stack = _projections(itk, projections, geometry, PAD_ROWS)
    if short_scan:
        parker = rtk.ParkerShortScanImageFilter[image_type].New()
        parker.SetInput(stack)
        parker.SetGeometry(rtk_geometry)
        parker.Update()
        stack = parker.GetOutput()
    volume = _image(itk, np.zeros((geometry.n, geometry.rows, geometry.n)), _volume_origin(geometry), 1.0)
    if device == "cuda":  # RTK's CUDA FDK (an itk-rtk-cuda* wheel): the same filter chain on the GPU
        fdk = rtk.CudaFDKConeBeamReconstructionFilter.New()
        volume, stack = _to_gpu(itk, rtk, volume), _to_gpu(itk, rtk, stack)
    else:
        fdk = rtk.FDKConeBeamReconstructionFilter[image_type].New()
    fdk.SetInput(0, volume)
    fdk.SetInput(1, stack)
    fdk.SetGeometry(rtk_geometry)
    fdk.Update()
    return _to_ours(itk.array_from_image(fdk.GetOutput()))


def fdk_static(projections: np.ndarray, theta: np.ndarray, geometry: ConeGeometry, device: str = "cpu") -> np.ndarray:
    """(rows, n, n) FDK of every view (attenuation per voxel): each full turn of
    ``theta`` (radians, increasing) reconstructed alone, the turns averaged (a last
    partial turn joins the one before it)."""
    itk, rtk = import_rtk("baseline method 'fdk_static'")
    step = float(np.median(np.diff(theta))) if len(theta) > 1 else 0.0
    full_turns = int(np.floor((theta[-1] - theta[0] + step) / (2.0 * np.pi) + 1e-6))
    turn = np.minimum(np.floor((theta - theta[0]) / (2.0 * np.pi) + 1e-9).astype(int), max(full_turns - 1, 0))
    volumes = [_fdk_call(itk, rtk, projections[turn == k], theta[turn == k], geometry, False, device)
               for k in np.unique(turn)]
    return np.mean(volumes, axis=0)


def short_scan_span(geometry: ConeGeometry, theta: np.ndarray) -> float:
    """Radians of a short scan: 180 degrees plus the fan angle, and one view of ``theta``
    (radians) to spare at each end, so Parker's weights have the data they need."""
    step = float(np.median(np.diff(theta)))
    return np.pi + 2.0 * np.radians(geometry.cone_half_angle_deg) + 2.0 * step


def short_scan_window(theta: np.ndarray, time_norm: np.ndarray, frame_time: float, span: float) -> np.ndarray:
    """Indices of the views within ``span`` radians of rotation centred on ``frame_time``
    (normalised; :func:`~dinr.baselines.fbp.window_bounds`), both ends included."""
    lo, hi = window_bounds(theta, time_norm, frame_time, span)
    return np.flatnonzero((theta >= lo - 1e-9) & (theta <= hi + 1e-9))


def fdk_sliding(projections: np.ndarray, theta: np.ndarray, time_norm: np.ndarray, frame_times: np.ndarray,
                geometry: ConeGeometry, device: str = "cpu") -> np.ndarray:
    """(frames, rows, n, n): per frame, Parker-weighted FDK of the short scan (180
    degrees plus the fan angle, and one view to spare at each end) centred on its
    normalised time."""
    itk, rtk = import_rtk("baseline method 'fdk_sliding'")
    span = short_scan_span(geometry, theta)
    return np.stack([
        _fdk_call(itk, rtk, projections[idx], theta[idx], geometry, True, device)
        for idx in (short_scan_window(theta, time_norm, float(t), span) for t in frame_times)
    ])


def cone_forward_project(volume: np.ndarray, theta: np.ndarray, geometry: ConeGeometry) -> np.ndarray:
    """Line integrals (views, rows, cols) of a (rows, n, n) volume (attenuation per voxel)
    along the cone ``geometry``'s rays, by RTK's Joseph projector."""
    itk, rtk = import_rtk("the cone-beam forward projector")
    image_type = itk.Image[itk.F, 3]
    stack = _projections(itk, np.zeros((len(theta), geometry.rows, geometry.cols)), geometry, pad=0)
    vol = _image(itk, np.transpose(volume, (1, 0, 2)), _volume_origin(geometry), 1.0)
    projector = rtk.JosephForwardProjectionImageFilter[image_type, image_type].New()
    projector.SetInput(0, stack)
    projector.SetInput(1, vol)
    projector.SetGeometry(_rtk_geometry(rtk, geometry, theta))
    projector.Update()
    return itk.array_from_image(projector.GetOutput())
