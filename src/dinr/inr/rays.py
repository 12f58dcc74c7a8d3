"""Line integrals of the field along the rays of a beam geometry by stratified quadrature."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from dinr.geometry import Geometry
from dinr.inr.field import AttenuationField


@dataclass
class RayBatch:
    """A batch of rays; every tensor has shape (rays,).

    ``theta`` radians; ``u`` and ``z`` the detector pixel's coordinate and height in
    pixels (on the virtual detector through the axis for cone beam: see
    :mod:`dinr.geometry`); ``t`` normalised time; ``measured`` the measured line integral
    (attenuation x pixels).
    """

    theta: torch.Tensor
    u: torch.Tensor
    z: torch.Tensor
    t: torch.Tensor
    measured: torch.Tensor

    def select(self, rays: slice | torch.Tensor) -> RayBatch:
        """The batch of rays ``rays`` (a slice, or a tensor of indices or a boolean mask) of this one."""
        return RayBatch(self.theta[rays], self.u[rays], self.z[rays], self.t[rays], self.measured[rays])


def ray_points(rays: RayBatch, geometry: Geometry, samples: int, jitter: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Quadrature points of each ray: normalised field coordinates (rays, samples, 4) in
    the ``(t, z, y, x)`` order of :class:`~dinr.inr.field.AttenuationField` (pixels divided
    by the geometry's ``half_width``), and the stratum length (rays,) in pixels.

    Each ray's chord through the reconstruction cylinder of ``geometry`` is cut into
    ``samples`` equal strata with one point per stratum at the offset ``jitter`` (rays,
    samples) in [0, 1) — uniform random draws make the quadrature unbiased. Rays that
    miss the cylinder have strata of length 0.
    """
    x, y, z, step = geometry.chord_points(rays.theta, rays.u, rays.z, samples, jitter)
    coords = torch.stack([rays.t[:, None].expand_as(x), z, y, x], dim=-1) / torch.tensor(
        [1.0, geometry.half_width, geometry.half_width, geometry.half_width], device=x.device, dtype=x.dtype)
    return coords, step


def sample_along_rays(
    field: AttenuationField, rays: RayBatch, geometry: Geometry, samples: int, jitter: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """The field along each ray at the points of :func:`ray_points`: attenuation
    (rays, samples) in 1/pixel, and the stratum length (rays,) in pixels."""
    coords, step = ray_points(rays, geometry, samples, jitter)
    return field(coords), step


def line_integrals(values: torch.Tensor, step: torch.Tensor) -> torch.Tensor:
    """The quadrature sum (rays,) of attenuation ``values`` (rays, samples) over strata
    of length ``step`` (rays,) pixels: line integrals in attenuation x pixels."""
    return (values * step[:, None]).sum(dim=1)


def integrate_rays(
    field: AttenuationField, rays: RayBatch, geometry: Geometry, samples: int, jitter: torch.Tensor
) -> torch.Tensor:
    """Predicted line integrals (rays,) by the quadrature of :func:`sample_along_rays`;
    rays that miss the cylinder predict 0."""
    return line_integrals(*sample_along_rays(field, rays, geometry, samples, jitter))


def samples_per_ray(setting: int | str, diameter: int) -> int:
    """Quadrature points per ray (``train.samples_per_ray``): configured, or ``auto`` = one
    stratum per pixel of the cylinder's ``diameter``. Coarser strata make the jittered
    estimate noisy across sharp edges, and the squared-error loss then rewards blurring
    them."""
    return diameter if setting == "auto" else int(setting)


def coarse_samples_per_ray(setting: int | str, samples: int) -> int:
    """Quadrature points per ray before the first plateau (``train.coarse_samples``):
    configured, ``auto`` = half of ``samples`` (at least 2), or 0 = ``samples``. Early in
    training the field is far from the data and a ray's cost, not the blur that coarse
    strata reward, is what limits it."""
    if setting == "auto":
        return max(2, samples // 2)
    return int(setting) or samples
