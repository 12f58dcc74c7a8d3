"""The training objective: weighted squared error of line integrals plus TV priors in
space and in time.

A maximum-a-posteriori fit: the data term is the (transmission-weighted) squared error
of the predicted line integrals, the prior a total variation of the field sampled along
the rays themselves (the summed absolute differences between consecutive quadrature
points along a ray, per pixel of the cylinder's diameter, in every in-plane direction
over the batch, so it costs no extra evaluation of the field).

For Gaussian noise of variance ``sigma2`` on the weighted measurements and a Laplace
prior of scale ``b`` on neighbour differences, the MAP objective divided by
``rays / (2 sigma2)`` is ``mean weighted error + lambda * mean |difference|`` with
``lambda = 2 sigma2 (unknowns / rays) / b``. ``train.tv_weight: auto`` keeps that form
with one change: the weight follows the noise's standard deviation, not its variance,
``lambda = 2 sigma sigma0 (unknowns / rays) / b`` (:data:`TV_NOISE_POWER` 1) with ``sigma0^2``
(:data:`REFERENCE_NOISE_VARIANCE`) the noise at which ``b`` was chosen (2e4 flat counts
per pixel), as the best threshold of a soft-thresholding denoiser grows with ``sigma``.
At 5000 flat counts (four times the variance) the MAP weight over-smoothed three scans
of three phantoms by 0.37 to 1.67 dB; at 50000 the stronger weight moved two scans by
-0.07 and +0.51 dB (docs/measurements.md, "The TV weight and the noise").
``sigma2`` comes from the prepared scan (:func:`dinr.prep.noise.noise_variance`,
estimated when it is written), ``unknowns / rays`` from the scan and the field, and
``b = TV_EDGE_SCALE * output scale``.

The temporal prior is a total variation in time: the absolute change of the field at a
quadrature point over one cell of the finest time level (``delta`` in normalised time,
a half-turn with ``time_resolution: auto``), at every ``samples // TIME_PRIOR_POINTS``-th
point of each ray (one extra evaluation of the field there). A Laplace prior of the same
scale ``b`` on changes over one time cell as on changes over one pixel gives the same
MAP weight, so ``train.tv_time_weight: auto`` is ``TV_TIME_RATIO`` times the spatial one,
times the scan's stillness at each instant (:mod:`dinr.prep.stillness`: 1 where views a
turn apart differ by their noise alone, near 0 where the object moves): the prior pools
the time cells of a stretch where the object rests and leaves moving ones alone. Applied
at every instant alike it gained 0.65 dB on the scan with a still start and end (the
jerk) and cost 0.48 dB on the demo, whose object moves throughout (docs/measurements.md, "The temporal
prior where the object is still"); without a stillness measure (a scan of less than a
turn, or a caller that passes none) ``auto`` applies it alike everywhere.
"""

from __future__ import annotations

import math

import torch

from dinr.geometry import Geometry
from dinr.inr.field import AttenuationField
from dinr.inr.rays import line_integrals
from dinr.settings import TrainSettings

#: Scale of the Laplace prior on neighbour differences, as a fraction of the field's
#: output scale (the attenuation of the densest ray's mean). Chosen on the built-in
#: phantom at 2e4 photons and checked on one scan with another seed, torsion and noise.
TV_EDGE_SCALE = 0.02

#: Noise variance of the weighted line integrals at which :data:`TV_EDGE_SCALE` was chosen
#: (the built-in scans' 2e4 flat counts per pixel: 1 / 2e4).
REFERENCE_NOISE_VARIANCE = 5.0e-5

#: Power of the noise's standard deviation in ``tv_weight: auto`` (2 would be the MAP weight).
TV_NOISE_POWER = 1.0

#: The temporal prior's weight as a multiple of the spatial one (``tv_time_weight: auto``).
TV_TIME_RATIO = 1.0

#: Points per ray at which the temporal prior is evaluated (at most).
TIME_PRIOR_POINTS = 16


def ray_weights(measured: torch.Tensor) -> torch.Tensor:
    """Inverse-variance weights of measured line integrals ``y``: with Poisson counts,
    ``var(y) ~ exp(y) / flat counts``, so ``w = exp(-y)``, the measured transmission
    (clamped at 1 for noise below zero). Rays through dense material are the noisiest."""
    return torch.exp(-torch.clamp(measured, min=0.0))


def tv_weight(settings: TrainSettings, noise_variance: float, geometry: Geometry, training_views: int,
              time_cells: int, scale: float) -> float:
    """``train.tv_weight``, with ``auto`` resolved as in the module note.

    Unknowns: voxels of the reconstruction cylinder times ``time_cells`` (1 for a static
    field); rays: ``training_views * rows`` times the detector columns that cross the
    cylinder; ``scale`` the field's output scale (1/pixel).
    """
    if settings.tv_weight != "auto":
        return float(settings.tv_weight)
    voxels = math.pi * geometry.radius**2 * geometry.rows * max(1, time_cells)
    rays = training_views * geometry.rows * min(geometry.cols, 2.0 * geometry.radius)
    noise = REFERENCE_NOISE_VARIANCE * (noise_variance / REFERENCE_NOISE_VARIANCE) ** (TV_NOISE_POWER / 2.0)
    return 2.0 * noise * (voxels / rays) / (TV_EDGE_SCALE * scale)


def tv_time_weight(settings: TrainSettings, spatial_weight: float, time_cells: int) -> float:
    """``train.tv_time_weight``, with ``auto`` = ``TV_TIME_RATIO`` times the resolved
    spatial weight; 0 for a static field (``time_cells`` 0)."""
    if time_cells == 0:
        return 0.0
    if settings.tv_time_weight != "auto":
        return float(settings.tv_time_weight)
    return TV_TIME_RATIO * spatial_weight


def time_prior_stride(samples: int) -> int:
    """Every how many quadrature points of a ray the temporal prior is evaluated."""
    return max(1, samples // TIME_PRIOR_POINTS)


def stillness_at(table: torch.Tensor, time: torch.Tensor) -> torch.Tensor:
    """The stillness ``table`` (n,), tabulated at ``n`` evenly spaced normalised times
    0..1 (:func:`dinr.prep.stillness.stillness_table`), interpolated linearly at ``time``
    (any shape, normalised; held beyond 0 and 1)."""
    position = torch.clamp(time, 0.0, 1.0) * (table.numel() - 1)
    low = torch.clamp(position.floor().long(), max=table.numel() - 2)
    fraction = (position - low).to(table.dtype)
    return table[low] * (1.0 - fraction) + table[low + 1] * fraction


def time_variation(field: AttenuationField, coords: torch.Tensor, values: torch.Tensor, delta: float,
                   stride: int, profile: torch.Tensor | None = None) -> torch.Tensor:
    """Summed absolute change ``|mu(t + delta) - mu(t)|`` of the field over one time cell
    at every ``stride``-th point of ``coords`` (rays, samples, 4), whose field values are
    ``values`` (rays, samples) (1/pixel), multiplied by ``stride`` so it stands for every
    point, and by the ``profile`` table (the stillness or a function of it, read as
    :func:`stillness_at` reads it) at ``t + delta / 2`` when one is given (points where it
    is 0 are left out). Points whose later instant falls
    after the scan (t + delta > 1) count 0, so the first and last time cells are penalised
    alike."""
    points, before = coords[:, ::stride], values[:, ::stride]
    if profile is not None:  # points where it is 0 (the object moves, under auto) are not evaluated
        weight = stillness_at(profile, points[..., 0] + 0.5 * delta)
        acting = weight > 0
        points, before, weight = points[acting], before[acting], weight[acting]
        if points.shape[0] == 0:
            return values.new_zeros(())
    later = points[..., 0] + delta
    shifted = field(torch.cat([later[..., None], points[..., 1:]], dim=-1))
    change = torch.abs(shifted - before) * (later <= 1.0)
    if profile is not None:
        change = change * weight
    return change.sum() * stride


def along_ray_variation(values: torch.Tensor) -> torch.Tensor:
    """Sum over rays of the absolute differences between consecutive quadrature points'
    attenuation (``values`` (rays, samples), 1/pixel); divided by the number of
    differences, it is the mean in-plane total variation per pixel step."""
    return torch.abs(values[:, 1:] - values[:, :-1]).sum()


def rank_loss(values: torch.Tensor, step: torch.Tensor, measured: torch.Tensor, transmission_weights: bool,
              tv_weight: float, ranks: int, global_rays: int, diameter: float,
              time_variation_sum: torch.Tensor | None = None, tv_time_weight: float = 0.0) -> torch.Tensor:
    """This rank's share of the objective: summed over the ranks (by the gradient
    allreduce) it is the mean weighted squared error over all ``global_rays`` rays of the
    step plus ``tv_weight`` times the along-ray variation per pixel of the cylinder's
    ``diameter`` plus ``tv_time_weight`` times the :func:`time_variation` of the same
    points, normalised alike, whichever rank holds which shard.

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
    if time_variation_sum is not None and tv_time_weight > 0:
        loss = loss + tv_time_weight * (time_variation_sum * (ranks / (global_rays * diameter)))
    return loss
