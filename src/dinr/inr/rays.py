"""Line integrals of the field along parallel-beam rays by stratified quadrature."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from dinr.inr.field import AttenuationField


@dataclass
class RayBatch:
    """A batch of rays; every tensor has shape (rays,).

    ``theta`` radians, ``u`` detector coordinate and ``z`` slice height in pixels (the
    convention of :mod:`dinr.geometry.parallel`), ``t`` normalised time, ``measured``
    the measured line integral (attenuation x pixels).
    """

    theta: torch.Tensor
    u: torch.Tensor
    z: torch.Tensor
    t: torch.Tensor
    measured: torch.Tensor


def sample_along_rays(
    field: AttenuationField, rays: RayBatch, radius: float, samples: int, jitter: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """The field along each ray: attenuation (rays, samples) in 1/pixel, and the
    stratum length (rays,) in pixels.

    Each ray's chord through the cylinder of ``radius`` pixels is cut into ``samples``
    equal strata and the field is evaluated once per stratum at the offset ``jitter``
    (rays, samples) in [0, 1) — uniform random draws make the quadrature unbiased.
    Rays with ``|u| >= radius`` miss the cylinder: their strata have length 0.
    """
    half_chord = torch.sqrt(torch.clamp(radius**2 - rays.u**2, min=0.0))  # (rays,)
    step = 2.0 * half_chord / samples
    strata = torch.arange(samples, device=rays.u.device, dtype=rays.u.dtype)
    s = -half_chord[:, None] + (strata[None, :] + jitter) * step[:, None]  # (rays, samples)
    cos_t, sin_t = torch.cos(rays.theta)[:, None], torch.sin(rays.theta)[:, None]
    x = rays.u[:, None] * cos_t - s * sin_t
    y = rays.u[:, None] * sin_t + s * cos_t
    coords = torch.stack(
        [rays.t[:, None].expand_as(s), rays.z[:, None].expand_as(s), y, x], dim=-1
    ) / torch.tensor([1.0, radius, radius, radius], device=s.device, dtype=s.dtype)
    return field(coords), step


def line_integrals(values: torch.Tensor, step: torch.Tensor) -> torch.Tensor:
    """The quadrature sum (rays,) of attenuation ``values`` (rays, samples) over strata
    of length ``step`` (rays,) pixels: line integrals in attenuation x pixels."""
    return (values * step[:, None]).sum(dim=1)


def integrate_rays(
    field: AttenuationField, rays: RayBatch, radius: float, samples: int, jitter: torch.Tensor
) -> torch.Tensor:
    """Predicted line integrals (rays,) by the quadrature of :func:`sample_along_rays`;
    rays that miss the cylinder predict 0."""
    return line_integrals(*sample_along_rays(field, rays, radius, samples, jitter))


def samples_per_ray(setting: int | str, diameter: int) -> int:
    """Quadrature points per ray (``train.samples_per_ray``): configured, or ``auto`` = one
    stratum per pixel of the cylinder's ``diameter``. Coarser strata make the jittered
    estimate noisy across sharp edges, and the squared-error loss then rewards blurring
    them."""
    return diameter if setting == "auto" else int(setting)
