"""Projection-domain residuals: how well a reconstruction predicts measured views.

Used without ground truth (real data): each method predicts the held-out views (or all
views when none were held out), and the relative L2 residual ``||pred - y|| / ||y||``
is taken over the detector columns inside the reconstruction cylinder.
"""

from __future__ import annotations

import numpy as np
import torch

from dinr.baselines.fbp import forward_project
from dinr.baselines.fdk import cone_forward_project
from dinr.geometry import Geometry
from dinr.geometry.cone import ConeGeometry
from dinr.inr.field import AttenuationField
from dinr.inr.rays import RayBatch, integrate_rays
from dinr.io.canonical import Sinogram


def relative_l2(predicted: np.ndarray, measured: np.ndarray) -> float:
    """``||predicted - measured|| / ||measured||`` over all entries."""
    return float(np.linalg.norm(predicted - measured) / max(float(np.linalg.norm(measured)), 1e-12))


def volume_residual(volume: np.ndarray, frame_times: np.ndarray, sino: Sinogram, geometry: Geometry) -> float:
    """Residual of a (t, z, y, x) volume; each view is predicted by the frame nearest in
    time (ASTRA's line projector, or RTK's Joseph projector for cone beam)."""
    view_t = sino.normalised_time(sino.time)
    nearest = np.abs(view_t[:, None] - frame_times[None, :]).argmin(axis=1)
    predicted = np.empty_like(sino.projections)
    for f in np.unique(nearest):
        views = np.flatnonzero(nearest == f)
        if isinstance(geometry, ConeGeometry):
            predicted[views] = cone_forward_project(volume[f], sino.theta[views], geometry)
        else:
            predicted[views] = forward_project(volume[f], sino.theta[views], sino.center)
    columns = geometry.column_mask()
    return relative_l2(predicted[..., columns], sino.projections[..., columns])


@torch.no_grad()
def field_residual(field: AttenuationField, sino: Sinogram, geometry: Geometry, samples: int) -> float:
    """Residual of the field, each view predicted at its own acquisition time (midpoint
    quadrature with ``samples`` points per ray), on the field's device."""
    field.eval()
    device = next(field.parameters()).device
    views, rows, cols = sino.shape
    columns = geometry.column_mask()
    predicted = np.zeros_like(sino.projections)
    u = torch.as_tensor(geometry.detector_u()[columns], dtype=torch.float32, device=device)
    z = torch.as_tensor(geometry.detector_v(), dtype=torch.float32, device=device)
    zz, uu = torch.meshgrid(z, u, indexing="ij")
    n_rays = zz.numel()
    midpoints = torch.full((n_rays, samples), 0.5, device=device)
    times = sino.normalised_time(sino.time)
    for v in range(views):
        rays = RayBatch(
            theta=torch.full((n_rays,), float(sino.theta[v]), device=device), u=uu.reshape(-1), z=zz.reshape(-1),
            t=torch.full((n_rays,), float(times[v]), device=device), measured=torch.zeros(n_rays, device=device),
        )
        values = integrate_rays(field, rays, geometry, samples, midpoints)
        predicted[v][:, columns] = values.reshape(rows, -1).cpu().numpy()
    return relative_l2(predicted[..., columns], sino.projections[..., columns])
