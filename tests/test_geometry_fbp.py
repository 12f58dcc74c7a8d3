"""One geometry for the simulator, FBP and DINR: projections and reconstructions agree."""

import dataclasses
from pathlib import Path

import numpy as np
import pytest
import torch

from dinr.baselines.fbp import available_backend, fbp, forward_project, half_turn_window
from dinr.evaluate.center_scan import center_report
from dinr.geometry.parallel import ParallelGeometry
from dinr.inr.rays import RayBatch, integrate_rays
from dinr.io.canonical import read_sinogram
from dinr.sim.compression import CompressionPhantom
from dinr.sim.ellipses import Phantom, project_ellipses, rasterise_ellipses
from dinr.sim.foam import FoamPhantom


@pytest.mark.parametrize("phantom", [CompressionPhantom(64, 1, seed=1), FoamPhantom(64, 1, seed=1)],
                         ids=["compression", "foam"])
def test_analytic_projection_matches_astra_of_raster(phantom: Phantom) -> None:
    geometry = ParallelGeometry(rows=1, cols=64, center=32.0, n=64)
    ellipses = phantom.slice_at(0.6, 0.0)
    theta = np.linspace(0, np.pi, 24, endpoint=False)
    analytic = project_ellipses(ellipses, theta[:, None], geometry.detector_u()[None, :])
    raster = rasterise_ellipses(ellipses, 64, supersample=8)[None]
    astra = forward_project(raster, theta, 32.0)[:, 0, :]
    assert np.abs(astra - analytic).mean() < 0.01 * analytic.max()


def test_fbp_recovers_disk_value_over_several_turns() -> None:
    geometry = ParallelGeometry(rows=1, cols=48, center=24.0, n=48)
    x, y = geometry.grid_xy()
    disk = ((x**2 + y**2) < 12**2).astype(np.float32)[None] * 0.05
    for turns in (0.5, 3.0):
        theta = np.linspace(0, 2 * np.pi * turns, int(180 * turns), endpoint=False)
        rec = fbp(forward_project(disk, theta, 24.0), theta, 24.0)
        assert abs(rec[0, 20:28, 20:28].mean() - 0.05) < 0.002


def test_fbp_handles_an_offset_rotation_axis() -> None:
    geometry = ParallelGeometry(rows=1, cols=48, center=26.5, n=48)
    x, y = geometry.grid_xy()
    blob = (((x - 5) ** 2 + y**2) < 6**2).astype(np.float32)[None] * 0.05
    theta = np.linspace(0, np.pi, 120, endpoint=False)
    u = geometry.detector_u()
    sino = np.stack([2 * np.sqrt(np.clip(36 - (u - 5 * np.cos(t)) ** 2, 0, None)) * 0.05 for t in theta])[:, None]
    rec = fbp(sino.astype(np.float32), theta, 26.5)
    assert np.abs(rec[0] - blob[0]).mean() < 0.004


def test_half_turn_window_spans_180_degrees_and_stays_inside_the_scan() -> None:
    theta = np.linspace(0, 4 * np.pi, 360, endpoint=False)
    t = np.arange(360) / 360
    for frame in (0.0, 0.3, 0.999):
        idx = half_turn_window(theta, t, frame)
        assert len(idx) == 90 and np.all(np.diff(idx) == 1)


def test_ray_quadrature_matches_analytic_chord() -> None:
    class Disk(torch.nn.Module):
        def forward(self, coords: torch.Tensor) -> torch.Tensor:
            return 0.04 * (coords[..., 2] ** 2 + coords[..., 3] ** 2 < 0.5**2).float()

    u = torch.linspace(-20, 20, 41)
    rays = RayBatch(theta=torch.full_like(u, 0.3), u=u, z=torch.zeros_like(u), t=torch.zeros_like(u),
                    measured=torch.zeros_like(u))
    jitter = torch.rand(len(u), 2048, generator=torch.Generator().manual_seed(0))
    predicted = integrate_rays(Disk(), rays, ParallelGeometry(rows=1, cols=64, center=32.0, n=64), samples=2048,
                               jitter=jitter)  # type: ignore[arg-type]
    exact = 0.04 * 2 * torch.sqrt(torch.clamp(16.0**2 - u**2, min=0))
    assert torch.max(torch.abs(predicted - exact)) < 0.01


def test_centre_scan_finds_the_axis_coarse_then_fine(tiny_scan: dict[str, Path]) -> None:
    train, heldout = (read_sinogram(tiny_scan["sinogram"], split=split) for split in ("train", "heldout"))
    off = dataclasses.replace(train, center=train.center + 1.75)  # a centre found 1.75 columns off
    report = center_report(off, heldout, "shepp", available_backend("auto"))
    assert abs(report["best_by_residual"] - train.center) <= 0.25, report
    assert len(report["candidates"]) <= 20 and report["candidates"] == sorted(report["candidates"])
