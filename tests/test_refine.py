"""Frames refined against the views around them (:mod:`dinr.inr.refine`): the projector
follows the scan's geometry, the prior is the training's, views count where the field
sees the object still, and a refined frame is nearer the truth than the field's."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import h5py
import numpy as np
import torch

from conftest import TINY_TRAIN, dinr_command, train, write_settings
from dinr import stages
from dinr.evaluate.metrics import frame_metrics
from dinr.geometry.parallel import ParallelGeometry
from dinr.inr.refine import FrameRefiner, SliceProjector, frame_prior_weight
from dinr.io.canonical import Sinogram
from dinr.settings import RenderSettings
from dinr.train.comm import Communicator
from dinr.train.objective import tv_weight

GEOMETRY = ParallelGeometry(rows=1, cols=32, center=16.0, n=32)


class _StaticField(torch.nn.Module):
    """A field that is one (1, 32, 32) slice at every instant, bilinear between pixel
    centres: its line integrals are those of the slice."""

    def __init__(self, image: np.ndarray) -> None:
        super().__init__()
        self.image = torch.nn.Parameter(torch.as_tensor(image)[None], requires_grad=False)

    def forward(self, points: torch.Tensor) -> torch.Tensor:  # (..., 4) normalised (t, z, y, x)
        grid = torch.stack([points[..., 3], -points[..., 2]], dim=-1).reshape(1, -1, 1, 2)
        values = torch.nn.functional.grid_sample(self.image, grid, align_corners=False)
        return values.reshape(points.shape[:-1])


def _disk(x0: float, y0: float, radius: float) -> np.ndarray:
    """(1, 32, 32) slice of attenuation 1 per pixel inside a disk centred at (x0, y0) pixels (x right, y up)."""
    centres = np.arange(32) + 0.5 - 16.0
    x, y = np.meshgrid(centres, -centres, indexing="xy")
    return ((x - x0) ** 2 + (y - y0) ** 2 < radius**2).astype(np.float32)[None]


def test_the_projector_sees_a_disk_where_the_geometry_puts_it() -> None:
    theta = np.array([0.0, np.pi / 2, np.pi / 4])
    disk = _disk(6.0, -3.0, 3.0)
    projections = SliceProjector(GEOMETRY, theta, 1, torch.device("cpu"))(torch.as_tensor(disk))
    u = GEOMETRY.detector_u()
    for view, expected in zip(projections[:, 0].numpy(), (6.0, -3.0, (6.0 - 3.0) / np.sqrt(2))):
        assert abs(np.sum(u * view) / np.sum(view) - expected) < 0.2  # u = x cos(theta) + y sin(theta)
        assert abs(view.max() - 6.0) < 1.0  # the chord through the centre: the diameter, within a pixel
        np.testing.assert_allclose(view.sum(), disk.sum(), rtol=0.02)  # every view holds the disk's mass


def test_the_frame_prior_is_the_training_tv_weight_per_frame() -> None:
    settings = dataclasses.replace(TINY_TRAIN, tv_weight="auto")
    noise, scale, views = 7e-5, 0.03, 90
    voxels = np.pi * GEOMETRY.radius**2 * GEOMETRY.rows
    rays = views * GEOMETRY.rows * GEOMETRY.cols
    per_mean = tv_weight(settings, noise, GEOMETRY, views, 1, scale)
    np.testing.assert_allclose(per_mean * rays / (2 * noise) / voxels, frame_prior_weight(noise, scale), rtol=1e-9)


def _views(count: int, turns: float, slices: np.ndarray) -> Sinogram:
    theta = np.linspace(0.0, 2 * np.pi * turns, count, endpoint=False)
    measured = SliceProjector(GEOMETRY, theta, 1, torch.device("cpu"))(torch.as_tensor(slices)).numpy()
    return Sinogram(projections=measured, theta=theta, time=np.linspace(0.0, 1.0, count), center=16.0,
                    scan_time=(0.0, 1.0), pixel_size_mm=0.001)


def test_a_still_field_counts_every_view_and_a_moving_one_its_window() -> None:
    still = _disk(0.0, 0.0, 6.0)
    views = _views(240, 4, still)
    refiner = FrameRefiner(_StaticField(still), lambda t: still, GEOMETRY, views, views.time, slice(None), 1e-4, 1.0, 5,
                           torch.device("cpu"))
    moved = refiner.projector(torch.as_tensor(still))
    weights, share = refiner.view_weights(0.5, moved)
    np.testing.assert_array_equal(weights.numpy(), 1.0)
    assert share == 1.0

    def moving(t: float) -> np.ndarray:  # a swelling disk: every direction sees it change
        return _disk(0.0, 0.0, 3.0 + 8.0 * t)

    refiner = FrameRefiner(_StaticField(still), moving, GEOMETRY, views, views.time, slice(None), 1e-4, 1.0, 5,
                           torch.device("cpu"))
    weights, share = refiner.view_weights(0.5, refiner.projector(torch.as_tensor(moving(0.5))))
    weights = weights.numpy()
    assert 0.0 < share < 0.5  # the window's edges see a disk 1 px wider or narrower
    assert weights[(views.time > 0.45) & (views.time < 0.55)].min() == 1.0  # the frame's half-turn window
    assert weights[np.abs(views.time - 0.5) > 0.25].max() < 1e-3  # a disk 2 px wider or narrower is no evidence


def test_refining_brings_a_blurred_still_frame_nearer_the_views() -> None:
    truth = _disk(3.0, 2.0, 7.0) * 0.05
    rng = np.random.default_rng(0)
    views = _views(240, 4, truth)
    views.projections += rng.normal(0.0, 0.005, views.projections.shape).astype(np.float32)
    from scipy import ndimage
    blurred = ndimage.gaussian_filter(truth, (0, 1.5, 1.5)).astype(np.float32) * GEOMETRY.cylinder_mask()
    refiner = FrameRefiner(_StaticField(blurred), lambda t: blurred, GEOMETRY, views, views.time, slice(None), 2.5e-5, 0.05,
                           50, torch.device("cpu"))
    start, refined = refiner(0.5)
    mask = GEOMETRY.cylinder_mask()
    error = {name: np.sqrt(np.mean((image[0] - truth[0])[mask] ** 2)) for name, image in
             (("start", start), ("refined", refined))}
    assert error["refined"] < 0.5 * error["start"], error


def test_render_refines_parallel_frames_and_improves_them(tiny_scan: dict[str, Path], tmp_path: Path) -> None:
    model = tmp_path / "model.pt"
    train(dataclasses.replace(TINY_TRAIN, steps=60), tiny_scan["sinogram"], model, Communicator(use_mpi=False))
    volumes = {}
    for refine in ("none", "auto"):
        volumes[refine] = tmp_path / f"{refine}.h5"
        stages.render(RenderSettings(frames=4, chunk=4096, supersample=1, exports=[], refine=refine,
                                     refine_iterations=40),
                      model, tiny_scan["sinogram"], tiny_scan["truth"], volumes[refine], Communicator(use_mpi=False))
    with h5py.File(tiny_scan["truth"]) as f, h5py.File(volumes["none"]) as a, h5py.File(volumes["auto"]) as b:
        truth, field, refined = f["truth"][()], a["recon"][()], b["recon"][()]
        assert b["recon"].attrs["axes"] == "t,z,y,x" and "dinr_git_commit" in b.attrs
    mask = GEOMETRY.cylinder_mask()
    value_range = float(truth.max() - truth.min())
    for k in range(len(truth)):
        psnr = [frame_metrics(truth, volume, k, mask, value_range)["psnr"] for volume in (field, refined)]
        assert psnr[1] > psnr[0] + 1.0, (k, psnr)


def test_two_ranks_refine_the_volume_one_rank_refines(tiny_scan: dict[str, Path], tmp_path: Path) -> None:
    model = tmp_path / "model.pt"
    train(dataclasses.replace(TINY_TRAIN, steps=10), tiny_scan["sinogram"], model, Communicator(use_mpi=False))
    settings = RenderSettings(frames=4, chunk=4096, supersample=1, exports=[], refine="auto", refine_iterations=5)
    one = tmp_path / "one.h5"
    stages.render(settings, model, tiny_scan["sinogram"], tiny_scan["truth"], one, Communicator(use_mpi=False))
    two = tmp_path / "two.h5"
    result = dinr_command("render", "--settings", str(write_settings(tmp_path / "render.json", settings)),
                          "--model", str(model), "--sinogram", str(tiny_scan["sinogram"]),
                          "--frame-times", str(tiny_scan["truth"]), "--out", str(two), ranks=2)
    assert result.returncode == 0, result.stderr
    with h5py.File(one) as a, h5py.File(two) as b:
        np.testing.assert_array_equal(a["recon"][()], b["recon"][()])


def test_cone_beam_and_static_frames_are_never_refined() -> None:
    from dinr.geometry.cone import ConeGeometry
    settings = RenderSettings(frames=4, chunk=100, supersample=1, exports=[], refine="auto", refine_iterations=1)
    cone = ConeGeometry(rows=4, cols=32, center=16.0, n=32, source_axis=100.0, row_center=2.0)
    assert stages.refines(settings, GEOMETRY, True)
    assert not stages.refines(settings, cone, True) and not stages.refines(settings, GEOMETRY, False)
