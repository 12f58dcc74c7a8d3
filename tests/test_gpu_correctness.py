"""What makes training correct on GPUs, checked on the CPU: precision scope, the
device-side ray generator, the rank-to-GPU mapping, the prior's independence of the
quadrature, deterministic mode."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from conftest import TINY_TRAIN
from dinr.errors import InputError
from dinr.geometry.parallel import ParallelGeometry
from dinr.inr.fourier import FourierFeatures
from dinr.inr.rays import RayBatch, sample_along_rays
from dinr.io.canonical import Sinogram
from dinr.baselines.device import nvidia_gpu_present, resolve_device
from dinr.train.device import check_gpus_usable, gpu_for_rank
from dinr.train.objective import rank_loss
from dinr.train.reducer import check_mpi_support
from dinr.train.sampler import RaySampler


def test_fourier_phases_stay_float32_under_bf16_autocast() -> None:
    features = FourierFeatures(64, sigma_t=0.5, sigma_s=30.0, seed=0)
    coords = torch.rand(1000, 4) * 2 - 1
    exact = features(coords)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        autocast = features(coords)
    assert autocast.dtype == torch.float32
    torch.testing.assert_close(autocast, exact, rtol=0, atol=0)
    # what the scope prevents: bf16 phases of a few hundred radians are off by radians
    rounded = (2.0 * np.pi) * (coords.bfloat16() @ features.B.T.bfloat16()).float()
    assert torch.max(torch.abs(torch.cos(rounded) - exact[:, :64])) > 0.5


def _sampler(shard: int = 0, seed: int = 0) -> RaySampler:
    sino = Sinogram(projections=np.random.default_rng(0).random((12, 3, 16), dtype=np.float32),
                    theta=np.linspace(0, 6, 12), time=np.linspace(0, 1, 12), center=8.0, scan_time=(0.0, 1.0),
                    pixel_size_mm=1.0)
    return RaySampler(sino, ParallelGeometry(rows=3, cols=16, center=8.0, n=16), shard=shard, seed=seed)


def test_ray_generator_is_counter_based_on_the_samplers_device() -> None:
    sampler = _sampler()
    assert sampler.generator(5).device == sampler.device
    rays, jitter = sampler.sample(5, 32, 8)
    assert jitter.device == sampler.device and rays.measured.device == sampler.device
    for _ in range(3):  # what came before never matters: resume replays a step exactly
        sampler.sample(7, 32, 8)
    again, jitter_again = sampler.sample(5, 32, 8)
    assert torch.equal(jitter, jitter_again) and torch.equal(rays.u, again.u) and torch.equal(rays.t, again.t)
    other_step, _ = sampler.sample(6, 32, 8)
    other_shard, _ = _sampler(shard=1).sample(5, 32, 8)
    assert not torch.equal(rays.u, other_step.u) and not torch.equal(rays.u, other_shard.u)


@pytest.mark.parametrize("local_size, devices, share, expected", [
    (4, 4, False, [0, 1, 2, 3]),
    (2, 8, False, [0, 1]),
    (4, 2, True, [0, 1, 0, 1]),
])
def test_ranks_map_to_gpus_by_node_local_rank(local_size: int, devices: int, share: bool,
                                              expected: list[int]) -> None:
    assert [gpu_for_rank(r, local_size, devices, share) for r in range(local_size)] == expected


def test_more_ranks_than_gpus_is_an_error_naming_the_key() -> None:
    with pytest.raises(InputError, match="train.share_gpus: 4 ranks on this node but 2 GPU"):
        gpu_for_rank(0, 4, 2, share=False)
    with pytest.raises(InputError, match="no CUDA device"):
        gpu_for_rank(0, 1, 0, share=True)


def test_tv_prior_strength_does_not_depend_on_samples_per_ray() -> None:
    """The same rays through the same object, sampled at 32 and 128 points: the prior's
    term agrees (it estimates the integral of |d mu / ds| per pixel of the diameter);
    normalised per difference, as before, it would shrink 4x."""
    radius = 32.0
    g = torch.Generator().manual_seed(0)
    rays = RayBatch(theta=torch.rand(400, generator=g) * 6, u=torch.rand(400, generator=g) * 50 - 25,
                    z=torch.zeros(400), t=torch.zeros(400), measured=torch.zeros(400))

    def disc(coords: torch.Tensor) -> torch.Tensor:  # a disc of radius 0.5 (in cylinder radii), mu = 1
        return (coords[..., 2] ** 2 + coords[..., 3] ** 2 < 0.25).float()

    terms = {}
    for samples in (32, 128):
        values, step = sample_along_rays(disc, rays, ParallelGeometry(1, 64, 32.0, 64), samples, torch.rand(400, samples, generator=g))
        with_prior = rank_loss(values, step, rays.measured, False, 1.0, 1, 400, 2 * radius)
        terms[samples] = float(with_prior - rank_loss(values, step, rays.measured, False, 0.0, 1, 400, 2 * radius))
    assert terms[128] == pytest.approx(terms[32], rel=0.05)


def test_deterministic_mode_uses_the_sorted_accumulation() -> None:
    """With ``train.deterministic`` the hash grid's PyTorch path (the one GPUs take)
    accumulates the table gradient in a fixed order; it equals the atomic path's sum."""
    from dinr.inr.hashgrid import HashGridEncoding

    grid = HashGridEncoding(np.array([4.0, 16.0]), np.array([2.0, 8.0]), (0.25, 1.0, 1.0), 2, 10, seed=0)
    unit = grid.unit_coordinates(torch.rand(500, 4))
    grads = []
    for deterministic in (False, True):
        torch.use_deterministic_algorithms(deterministic)
        try:
            grid.zero_grad()
            grid.encode_torch(unit).square().sum().backward()
            grads.append(torch.cat([table.grad for table in grid.tables]))
        finally:
            torch.use_deterministic_algorithms(False)
    torch.testing.assert_close(grads[0], grads[1])



class _FakeComm:
    """What :func:`check_mpi_support` asks of the communicator."""

    def __init__(self, thread_level: int, kinds: str | None) -> None:
        self.size, self._level, self._kinds = 2, thread_level, kinds

    def thread_level(self) -> int:
        return self._level

    def memory_kinds(self) -> str | None:
        return self._kinds


def test_mpi_without_thread_or_cuda_support_is_refused_naming_the_key() -> None:
    cuda = torch.device("cuda", 0)  # only a name: no GPU is touched
    with pytest.raises(InputError, match="train.allreduce_buckets: 4 buckets .* thread level 1"):
        check_mpi_support(_FakeComm(1, "mpi,system"), cuda, buckets=4, cuda_aware=False)
    with pytest.raises(InputError, match="train.cuda_aware_mpi: this MPI cannot read CUDA memory"):
        check_mpi_support(_FakeComm(3, "mpi,system"), cuda, buckets=1, cuda_aware=True)
    check_mpi_support(_FakeComm(3, "mpi,system,cuda:device"), cuda, buckets=4, cuda_aware=True)
    check_mpi_support(_FakeComm(1, "mpi,system"), torch.device("cpu"), buckets=4, cuda_aware=True)  # CPU: not asked


class _RecordingComm(_FakeComm):
    """Two ranks whose non-blocking allreduces only record where they start."""

    def __init__(self, events: list[tuple[str, int]], base: list[int]) -> None:
        super().__init__(3, None)
        self.rank, self.events, self.base = 0, events, base

    def iallreduce_sum(self, values: np.ndarray) -> None:
        self.events.append(("bucket started", (values.__array_interface__["data"][0] - self.base[0]) // 4))

    def wait_all(self, requests: list[object]) -> None:
        pass


def test_hash_grid_buckets_start_while_coarser_levels_still_run_backward() -> None:
    """Each level of the hash grid is its own parameter and autograd node, so the bucket
    holding the finest level starts its allreduce before the coarsest level's gradient
    exists: communication overlaps backward (one table would finish last, in one piece)."""
    from dinr.inr.build import build_field, field_spec
    from dinr.train.reducer import GradientReducer

    settings = dataclasses.replace(TINY_TRAIN, hash_levels=6, hash_log2_table=14)
    field = build_field(settings, field_spec(settings, ParallelGeometry(4, 64, 32.0, 64), 8 * np.pi, 0.01))
    events: list[tuple[str, int]] = []
    base = [0]
    reducer = GradientReducer(field, _RecordingComm(events, base), buckets=4)  # type: ignore[arg-type]
    base[0] = reducer.buffer.data_ptr()
    tables = list(field.encoding.tables)
    finest_start = sum(len(t) for t in tables[:-1]) * tables[0].shape[1]
    tables[0].register_post_accumulate_grad_hook(lambda _: events.append(("coarsest level ready", 0)))
    field(torch.rand(512, 4) * 2 - 1).square().sum().backward()
    coarsest_ready = events.index(("coarsest level ready", 0))
    started_before = [offset for what, offset in events[:coarsest_ready] if what == "bucket started"]
    assert any(start <= finest_start < end for start, end, _ in reducer.buckets if start in started_before), (
        events, reducer.buckets)


@pytest.mark.parametrize("environ, requested, stops", [
    ({"SLURM_JOB_GPUS": "0,1"}, "auto", True),
    ({"CUDA_VISIBLE_DEVICES": "0"}, "auto", True),
    ({"SLURM_GPUS_ON_NODE": "0", "CUDA_VISIBLE_DEVICES": ""}, "auto", False),
    ({}, "auto", False),
    ({}, "cuda", True),
    ({"SLURM_JOB_GPUS": "0"}, "cpu", False),
])
def test_a_job_holding_gpus_it_cannot_use_stops_naming_the_key(environ: dict[str, str], requested: str,
                                                               stops: bool) -> None:
    if torch.cuda.is_available():
        pytest.skip("this machine's torch can use its GPUs")
    if stops:
        with pytest.raises(InputError, match=r"train.device: .*CPU-only build.*cannot use them"):
            check_gpus_usable(requested, environ)
    else:
        check_gpus_usable(requested, environ)


@pytest.mark.parametrize("method", ["fbp_static", "fdk_sliding", "mbir_sliding"])
def test_baselines_device_resolves_per_method_and_cuda_without_a_gpu_build_names_the_key(method: str) -> None:
    if nvidia_gpu_present():
        pytest.skip("this node has a GPU")
    assert resolve_device("auto", method) == "cpu" and resolve_device("cpu", method) == "cpu"
    with pytest.raises(InputError, match=r"baselines.device: 'cuda' for " + method + r", but .* no GPU build"):
        resolve_device("cuda", method)
    with pytest.raises(InputError, match=r"TomoPy's gridrec \(CPU only"):
        resolve_device("cuda", "fbp_sliding", "tomopy")
