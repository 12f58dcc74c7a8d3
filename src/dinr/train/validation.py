"""The held-out residual a run is steered by: a fixed set of rays of the views held out
of training, projected through the field at regular intervals.

The held-out views are dealt to ray shards as the training views are (view ``k`` of
them to shard ``k % shards``), and each shard draws its share of ``validation_rays``
once, from a generator seeded by the run's seed and the shard alone, so the set is the
same at every evaluation, on every number of ranks and after a resume. Each ray is
integrated at the midpoints of its strata (no jitter), so two evaluations differ only
by what the field learned in between. The figure is the relative residual
``sqrt(sum w (p - m)^2 / sum w m^2)`` over the set (``w`` the training loss's ray
weights), summed over ranks by one allreduce. Given the scan's stillness
(:mod:`dinr.prep.stillness`), the same pass also gives it with each ray's weight times
the motion at its instant (``1 - stillness``): the residual where the object moves, by
which the time-cell pilots are compared (:mod:`dinr.train.time_cells`).
"""

from __future__ import annotations

import numpy as np
import torch

from dinr.geometry import Geometry
from dinr.inr.field import AttenuationField
from dinr.inr.rays import RayBatch, integrate_rays
from dinr.io.canonical import Sinogram
from dinr.train.comm import Communicator
from dinr.train.objective import ray_weights, stillness_at
from dinr.train.sampler import RaySampler

#: The step number whose generator draws a shard's validation rays: beyond any training
#: step, so the set shares no draws with the training batches.
VALIDATION_DRAW = 2**31 - 1


class HeldoutRays:
    """This rank's validation rays: ``rays_per_shard`` from each of its shards' held-out
    views (``shards``: shard index -> its held-out views; a shard without any adds none);
    ``total`` the set's rays on all ranks (summed when it is built: a collective);
    ``motion`` each ray's ``1 - stillness`` at its instant, given the scan's ``stillness``
    table with any instant above 0 (None otherwise: then every ray would weigh 1)."""

    def __init__(self, shards: dict[int, Sinogram], geometry: Geometry, rays_per_shard: int, seed: int,
                 device: torch.device, transmission_weights: bool, comm: Communicator,
                 stillness: torch.Tensor | None = None) -> None:
        self.geometry = geometry
        samplers = [RaySampler(sino, geometry, shard=index, seed=seed, device=device)
                    for index, sino in shards.items() if len(sino.theta)]
        batches = [sampler.sample(VALIDATION_DRAW, rays_per_shard, 1)[0] for sampler in samplers]
        self.rays = RayBatch(*(torch.cat([getattr(b, name) for b in batches]) if batches else
                               torch.zeros(0, device=device)
                               for name in ("theta", "u", "z", "t", "measured")))
        measured = self.rays.measured.double()
        self.weights = ray_weights(measured) if transmission_weights else torch.ones_like(measured)
        self.total = int(comm.allreduce_sum(float(len(self))))
        self.motion = (1.0 - stillness_at(stillness, self.rays.t).double()
                       if stillness is not None and bool(torch.any(stillness > 0)) else None)

    def __len__(self) -> int:
        return len(self.rays.measured)

    def relative_residual(self, field: AttenuationField, samples: int, comm: Communicator,
                          points_per_pass: int, where: torch.Tensor | None = None) -> float:
        """The set's relative residual (module note) with ``samples`` points per ray, in
        passes of at most ``points_per_pass`` points, over the rays ``where`` marks (a
        boolean per ray of this rank; default all); NaN when no rank holds such a ray."""
        rays, weights = (self.rays, self.weights) if where is None else (self.rays.select(where), self.weights[where])
        return self._residuals(field, samples, comm, points_per_pass, rays, weights, None)[0]

    def residuals(self, field: AttenuationField, samples: int, comm: Communicator,
                  points_per_pass: int) -> tuple[float, float | None]:
        """:meth:`relative_residual` over the whole set and, from the same pass, the
        residual with each ray's weight times its ``motion`` (None without it)."""
        return self._residuals(field, samples, comm, points_per_pass, self.rays, self.weights, self.motion)

    def _residuals(self, field: AttenuationField, samples: int, comm: Communicator, points_per_pass: int,
                   marked: RayBatch, weights: torch.Tensor,
                   motion: torch.Tensor | None) -> tuple[float, float | None]:
        """The relative residual of the ``marked`` rays of this rank (their loss ``weights``)
        and, given their ``motion``, the one with the weights times it (else None), summed
        over ranks."""
        sums = np.zeros(4)  # error, norm, and both weighted by the motion
        per_pass = max(1, points_per_pass // samples)
        with torch.no_grad():
            for start in range(0, len(marked.measured), per_pass):
                part = slice(start, start + per_pass)
                rays = marked.select(part)
                midpoints = torch.full((len(rays.measured), samples), 0.5, device=rays.measured.device)
                predicted = integrate_rays(field, rays, self.geometry, samples, midpoints).double()
                measured = rays.measured.double()
                error, norm = weights[part] * (predicted - measured) ** 2, weights[part] * measured ** 2
                sums[:2] += (float(torch.sum(error)), float(torch.sum(norm)))
                if motion is not None:
                    sums[2:] += (float(torch.sum(motion[part] * error)), float(torch.sum(motion[part] * norm)))
        totals = [comm.allreduce_sum(float(value)) for value in (sums if motion is not None else sums[:2])]
        plain = float(np.sqrt(totals[0] / totals[1])) if totals[1] > 0 else float("nan")
        if motion is None:
            return plain, None
        return plain, float(np.sqrt(totals[2] / totals[3])) if totals[3] > 0 else float("nan")
