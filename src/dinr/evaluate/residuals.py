"""Projection-domain residuals: how well a reconstruction predicts measured views.

Used without ground truth (real data): each method predicts the held-out views (or all
views when none were held out), and the relative L2 residual ``||pred - y|| / ||y||``
is taken over the detector columns inside the reconstruction cylinder. The predictions
are made for a block of detector rows at a time (:class:`ResidualSum` adds the blocks
up), so memory is bounded by the block, not by the scan.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from dinr.baselines.fbp import forward_project
from dinr.baselines.fdk import cone_forward_project
from dinr.geometry import Geometry
from dinr.geometry.cone import ConeGeometry
from dinr.inr.field import AttenuationField
from dinr.inr.rays import RayBatch, integrate_rays
from dinr.io.canonical import Sinogram

#: Field evaluations per call when the field predicts views (bounds its activations).
MAX_POINTS = 2**19


@dataclass
class ResidualSum:
    """Sums of squares over blocks of views or rows: ``||pred - y||^2`` and ``||y||^2``."""

    error: float = 0.0
    measured: float = 0.0

    def add(self, predicted: np.ndarray, measured: np.ndarray) -> None:
        difference = np.asarray(predicted, dtype=np.float64) - measured
        self.error += float(np.sum(difference * difference))
        self.measured += float(np.sum(np.square(measured, dtype=np.float64)))

    @property
    def relative(self) -> float:
        """``||pred - y|| / ||y||`` of everything added."""
        return math.sqrt(self.error) / max(math.sqrt(self.measured), 1e-12)


def volume_prediction(volume: np.ndarray, frame_times: np.ndarray, sino: Sinogram, geometry: Geometry) -> np.ndarray:
    """The views of ``sino`` predicted by a (t, z, y, x) volume, each by the frame nearest
    in time (ASTRA's line projector; RTK's Joseph projector for cone beam, which needs
    every slice). In parallel beam ``volume``'s slices are those of ``sino``'s rows, so a
    block of rows is predicted from the same block of slices."""
    view_t = sino.normalised_time(sino.time)
    nearest = np.abs(view_t[:, None] - frame_times[None, :]).argmin(axis=1)
    predicted = np.empty_like(sino.projections)
    for f in np.unique(nearest):
        views = np.flatnonzero(nearest == f)
        if isinstance(geometry, ConeGeometry):
            predicted[views] = cone_forward_project(np.asarray(volume[f]), sino.theta[views], geometry)
        else:
            predicted[views] = forward_project(np.asarray(volume[f]), sino.theta[views], sino.center)
    return predicted


@torch.no_grad()
def field_prediction(field: AttenuationField, sino: Sinogram, geometry: Geometry, samples: int,
                     rows: slice = slice(None)) -> np.ndarray:
    """The views of ``sino`` (detector rows ``rows`` of ``geometry``) predicted by the field,
    each at its own acquisition time (midpoint quadrature with ``samples`` points per ray),
    on the field's device, at most :data:`MAX_POINTS` points at a time; zero outside the
    columns that cross the cylinder."""
    field.eval()
    device = next(field.parameters()).device
    views, block_rows, _ = sino.shape
    columns = geometry.column_mask()
    predicted = np.zeros_like(sino.projections)
    u = torch.as_tensor(geometry.detector_u()[columns], dtype=torch.float32, device=device)
    z = torch.as_tensor(geometry.detector_v()[rows], dtype=torch.float32, device=device)
    zz, uu = (grid.reshape(-1) for grid in torch.meshgrid(z, u, indexing="ij"))
    per_call = max(1, MAX_POINTS // samples)
    times = sino.normalised_time(sino.time)
    for v in range(views):
        values = []
        for start in range(0, zz.numel(), per_call):
            n_rays = min(per_call, zz.numel() - start)
            rays = RayBatch(
                theta=torch.full((n_rays,), float(sino.theta[v]), device=device), u=uu[start:start + n_rays],
                z=zz[start:start + n_rays], t=torch.full((n_rays,), float(times[v]), device=device),
                measured=torch.zeros(n_rays, device=device),
            )
            values.append(integrate_rays(field, rays, geometry, samples, torch.full((n_rays, samples), 0.5,
                                                                                      device=device)))
        predicted[v][:, columns] = torch.cat(values).reshape(block_rows, -1).cpu().numpy()
    return predicted
