"""The training objective: weighted squared error of line integrals plus a TV prior.

A maximum-a-posteriori fit: the data term is the (transmission-weighted) squared error
of the predicted line integrals, the prior a total variation of the field sampled along
the rays themselves (the summed absolute differences between consecutive quadrature
points along a ray, per pixel of the cylinder's diameter, in every in-plane direction
over the batch, so it costs no extra evaluation of the field).

For Gaussian noise of variance ``sigma2`` on the weighted measurements and a Laplace
prior of scale ``b`` on neighbour differences, the MAP objective divided by
``rays / (2 sigma2)`` is ``mean weighted error + lambda * mean |difference|`` with
``lambda = 2 sigma2 (unknowns / rays) / b``. ``train.tv_weight: auto`` takes ``sigma2``
from the prepared scan (:func:`dinr.prep.noise.noise_variance`, estimated when it is
written), ``unknowns / rays`` from the scan and the field, and
``b = TV_EDGE_SCALE * output scale``.
"""

from __future__ import annotations

import math

import torch

from dinr.geometry.parallel import ParallelGeometry
from dinr.inr.rays import line_integrals
from dinr.settings import TrainSettings

#: Scale of the Laplace prior on neighbour differences, as a fraction of the field's
#: output scale (the attenuation of the densest ray's mean). Chosen on the built-in
#: phantom at 2e4 photons and checked on one scan with another seed, torsion and noise.
TV_EDGE_SCALE = 0.02


def ray_weights(measured: torch.Tensor) -> torch.Tensor:
    """Inverse-variance weights of measured line integrals ``y``: with Poisson counts,
    ``var(y) ~ exp(y) / flat counts``, so ``w = exp(-y)``, the measured transmission
    (clamped at 1 for noise below zero). Rays through dense material are the noisiest."""
    return torch.exp(-torch.clamp(measured, min=0.0))


def tv_weight(settings: TrainSettings, noise_variance: float, geometry: ParallelGeometry, training_views: int,
              time_cells: int, scale: float) -> float:
    """``train.tv_weight``, with ``auto`` resolved as the MAP weight of the module note.

    Unknowns: voxels of the reconstruction cylinder times ``time_cells`` (1 for a static
    field); rays: ``training_views * rows`` times the detector columns that cross the
    cylinder; ``scale`` the field's output scale (1/pixel).
    """
    if settings.tv_weight != "auto":
        return float(settings.tv_weight)
    voxels = math.pi * geometry.radius**2 * geometry.rows * max(1, time_cells)
    rays = training_views * geometry.rows * min(geometry.cols, 2.0 * geometry.radius)
    return 2.0 * noise_variance * (voxels / rays) / (TV_EDGE_SCALE * scale)


def along_ray_variation(values: torch.Tensor) -> torch.Tensor:
    """Sum over rays of the absolute differences between consecutive quadrature points'
    attenuation (``values`` (rays, samples), 1/pixel); divided by the number of
    differences, it is the mean in-plane total variation per pixel step."""
    return torch.abs(values[:, 1:] - values[:, :-1]).sum()


def rank_loss(values: torch.Tensor, step: torch.Tensor, measured: torch.Tensor, transmission_weights: bool,
              tv_weight: float, ranks: int, global_rays: int, diameter: float) -> torch.Tensor:
    """This rank's share of the objective: summed over the ranks (by the gradient
    allreduce) it is the mean weighted squared error over all ``global_rays`` rays of the
    step plus ``tv_weight`` times the along-ray variation per pixel of the cylinder's
    ``diameter``, whichever rank holds which shard.

    ``values`` (rays, samples) the field along this rank's rays (1/pixel), ``step``
    (rays,) the strata lengths (pixels), ``measured`` (rays,) line integrals. A ray's
    summed variation approximates the integral of ``|d mu / ds|`` along it whatever the
    number of samples, so dividing by the diameter in pixels (not by the number of
    differences) keeps the prior's strength independent of ``samples_per_ray``; at the
    ``auto`` count (one sample per pixel) the two differ by ``(n - 1) / n``.
    """
    residual = (line_integrals(values, step) - measured) ** 2
    if transmission_weights:
        residual = residual * ray_weights(measured)
    loss = torch.sum(residual) * (ranks / global_rays)
    if tv_weight > 0:
        loss = loss + tv_weight * (along_ray_variation(values) * (ranks / (global_rays * diameter)))
    return loss
