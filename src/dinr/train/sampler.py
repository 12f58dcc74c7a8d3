"""Minibatches of rays drawn from one rank's share of the projections.

Randomness is counter-based: the rays and jitter of step ``s`` on shard ``j`` come from
a generator seeded by ``(seed, s, j)``. A run therefore draws the same rays whatever
happened before (resume is exact without saving generator states), and one rank that
holds several shards can replay what several ranks would draw. The generator lives on
the shard's device (CUDA's is Philox, itself counter-based), so a step moves no random
numbers from the host; a GPU draws other numbers than the CPU, each reproducibly.
"""

from __future__ import annotations

import numpy as np
import torch

from dinr.geometry import Geometry
from dinr.inr.rays import RayBatch
from dinr.io.canonical import Sinogram


class RaySampler:
    """Draws rays uniformly over (view, row, column) of one shard, inside the cylinder.

    ``sino`` holds the shard's views (views, rows, cols); ``shard`` its index, used only
    to seed its generator.
    """

    def __init__(self, sino: Sinogram, geometry: Geometry, shard: int, seed: int,
                 device: torch.device | str = "cpu") -> None:
        self.device = torch.device(device)
        self.projections = torch.as_tensor(sino.projections, device=self.device)
        self.theta = torch.as_tensor(sino.theta, dtype=torch.float32, device=self.device)
        self.t = torch.as_tensor(sino.normalised_time(sino.time), dtype=torch.float32, device=self.device)
        self.z = torch.as_tensor(geometry.detector_v(), dtype=torch.float32, device=self.device)
        u = geometry.detector_u()
        inside = np.flatnonzero(geometry.column_mask())
        self.columns = torch.as_tensor(inside, device=self.device)
        self.u = torch.as_tensor(u, dtype=torch.float32, device=self.device)
        self.shard, self.seed = shard, seed

    def generator(self, step: int) -> torch.Generator:
        """The generator of ``step``, on this shard's device, seeded by (seed, step, shard)."""
        state = np.random.SeedSequence([self.seed, step, self.shard]).generate_state(2, dtype=np.uint32)
        return torch.Generator(device=self.device).manual_seed(int(state[0]) << 32 | int(state[1]))

    def sample(self, step: int, rays: int, samples: int) -> tuple[RayBatch, torch.Tensor]:
        """``rays`` rays and their (rays, samples) quadrature jitter for ``step``."""
        g = self.generator(step)
        views, rows, _ = self.projections.shape
        v = torch.randint(views, (rays,), generator=g, device=self.device)
        r = torch.randint(rows, (rays,), generator=g, device=self.device)
        c = self.columns[torch.randint(len(self.columns), (rays,), generator=g, device=self.device)]
        jitter = torch.rand(rays, samples, generator=g, device=self.device)
        return self.batch_at(v, r, c), jitter

    def batch_at(self, view: torch.Tensor, row: torch.Tensor, column: torch.Tensor) -> RayBatch:
        """The rays at the shard's ``view``, detector ``row`` and ``column`` indices (equal-length tensors)."""
        return RayBatch(theta=self.theta[view], u=self.u[column], z=self.z[row], t=self.t[view],
                        measured=self.projections[view, row, column])


class ShardedSampler:
    """The rays of all shards a rank holds, concatenated in shard order."""

    def __init__(self, samplers: list[RaySampler]) -> None:
        self.samplers = samplers

    def sample(self, step: int, rays: int, samples: int) -> tuple[RayBatch, torch.Tensor]:
        """``rays`` rays per shard and their quadrature jitter for ``step``."""
        drawn = [sampler.sample(step, rays, samples) for sampler in self.samplers]
        if len(drawn) == 1:
            return drawn[0]
        batch = RayBatch(*(torch.cat([getattr(b, name) for b, _ in drawn])
                           for name in ("theta", "u", "z", "t", "measured")))
        return batch, torch.cat([jitter for _, jitter in drawn])
