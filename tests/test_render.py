"""Rendering the trained field: ranks split the (frame, slice) images, the file is the same;
rendering requests (instants, regions, voxel sizes, planes) agree with the full rendering
and with the truth between the frames."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import h5py
import numpy as np
import pytest

from conftest import TINY_SIMULATE, TINY_TRAIN, dinr_command, train, write_settings
from dinr import stages
from dinr.errors import InputError
from dinr.settings import RenderingSettings, RenderSettings, section_defaults
from dinr.sim.ellipses import rasterise_phantom
from dinr.sim.phantoms import build_phantom
from dinr.train.checkpoint import load_checkpoint
from dinr.train.comm import Communicator


def test_three_ranks_render_the_volume_one_rank_renders(tiny_scan: dict[str, Path], tmp_path: Path) -> None:
    model = tmp_path / "model.pt"
    train(dataclasses.replace(TINY_TRAIN, steps=10), tiny_scan["sinogram"], model, Communicator(use_mpi=False))
    settings = RenderSettings(frames=16, chunk=100, supersample=1, exports=[], refine="none", refine_iterations=1)
    one = tmp_path / "one.h5"
    stages.render(settings, model, tiny_scan["sinogram"], tiny_scan["truth"], one, Communicator(use_mpi=False))

    three = tmp_path / "three.h5"  # 4 frames x 2 slices = 8 images: the last round leaves a rank idle
    result = dinr_command("render", "--settings", str(write_settings(tmp_path / "render.json", settings)),
                          "--model", str(model), "--sinogram", str(tiny_scan["sinogram"]),
                          "--frame-times", str(tiny_scan["truth"]), "--out", str(three), ranks=3)
    assert result.returncode == 0, result.stderr
    with h5py.File(one) as a, h5py.File(three) as b, h5py.File(tiny_scan["truth"]) as truth:
        assert a["recon"].shape == truth["truth"].shape
        np.testing.assert_array_equal(a["recon"][()], b["recon"][()])
        np.testing.assert_array_equal(a["time"][()], truth["time"][()])
        assert np.abs(a["recon"][()]).max() > 0
        assert "dinr_git_commit" in b.attrs and b["recon"].attrs["axes"] == "t,z,y,x"
    assert not list(tmp_path.glob(".*.tmp"))


def _request(**fields: object) -> RenderingSettings:
    return RenderingSettings(**{**section_defaults("rendering"), **fields})  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def tiny_model(tiny_scan: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A field trained well enough to tell instants apart (200 steps on the tiny scan)."""
    model = tmp_path_factory.mktemp("model") / "model.pt"
    settings = dataclasses.replace(TINY_TRAIN, steps=200, batch_rays=128, samples_per_ray=16, warmup_steps=20)
    train(settings, tiny_scan["sinogram"], model, Communicator(use_mpi=False))
    return model


def _render(request: RenderingSettings, model: Path, sinogram: Path, out: Path, chunk_mb: float = 256) -> np.ndarray:
    stages.render_request(request, "renderings.test", model, sinogram, out, Communicator(use_mpi=False), 100, chunk_mb)
    with h5py.File(out) as f:
        return f["recon"][()]


def test_a_region_a_voxel_size_and_planes_render_what_the_full_rendering_does(
        tiny_scan: dict[str, Path], tiny_model: Path, tmp_path: Path) -> None:
    sino = tiny_scan["sinogram"]
    with h5py.File(tiny_scan["truth"]) as f:
        times = [float(t) for t in f["time"][()]]
    metric = tmp_path / "metric.h5"
    stages.render(RenderSettings(frames=4, chunk=100, supersample=1, exports=[], refine="none", refine_iterations=1), tiny_model, sino, tiny_scan["truth"],
                  metric, Communicator(use_mpi=False))
    full = _render(_request(times=times), tiny_model, sino, tmp_path / "full.h5")
    with h5py.File(metric) as f:
        np.testing.assert_array_equal(full, f["recon"][()])  # the same points, evaluated in the same chunks
        assert tuple(f["recon"].attrs["voxel_size_mm"]) == (0.001, 0.001, 0.001)
    box = {"z": [1, 2], "y": [3, 20], "x": [5, 27]}
    region = _render(_request(times=times, region=box), tiny_model, sino, tmp_path / "region.h5", chunk_mb=0.001)
    np.testing.assert_allclose(region, full[:, 1:2, 3:20, 5:27], rtol=1e-5, atol=1e-6)
    in_mm = _render(_request(times=times, region={"units": "mm", "y": [0.003, 0.020], "x": [0.005, 0.027], "z": [0.001, 0.002]}),
                    tiny_model, sino, tmp_path / "mm.h5")
    np.testing.assert_allclose(in_mm, region, rtol=1e-5, atol=1e-6)

    fine = _render(_request(times=times, upsample=2), tiny_model, sino, tmp_path / "fine.h5")
    fine_box = _render(_request(times=times, upsample=2, region=box), tiny_model, sino, tmp_path / "fine_box.h5")
    assert fine.shape == (4, 4, 64, 64)
    np.testing.assert_allclose(fine_box, fine[:, 2:4, 6:40, 10:54], rtol=1e-5, atol=1e-6)
    with h5py.File(tmp_path / "fine_box.h5") as f:
        np.testing.assert_allclose(f["recon"].attrs["voxel_size_mm"], (0.0005, 0.0005, 0.0005))
        np.testing.assert_allclose(f["y_mm"][:2], (0.01275, 0.01225))  # rows 6 and 7 of 64: y up from the axis

    axial = _render(_request(times=times, plane="axial", at=1), tiny_model, sino, tmp_path / "axial.h5")
    np.testing.assert_allclose(axial, full[:, 1:2], rtol=1e-5, atol=1e-6)
    vertical = _render(_request(times=times, plane="vertical", at=0.5), tiny_model, sino, tmp_path / "vertical.h5")
    np.testing.assert_allclose(vertical, full[:, :, 15:16], rtol=1e-5, atol=1e-6)  # y = 0.5: row 15 of 32


def test_instants_between_the_metric_frames_match_the_truth_as_well_as_the_frames(
        tiny_scan: dict[str, Path], tiny_model: Path, tmp_path: Path) -> None:
    """The field is continuous in time: at instants between the truth's frames it is as
    close to the simulator's phantom at those instants as at the frames themselves."""
    scan_s = TINY_SIMULATE.views * TINY_SIMULATE.view_time_s
    frames = (np.arange(4) + 0.5) / 4
    between = np.arange(1, 4) / 4  # midway between the frames
    geometry = load_checkpoint(tiny_model).beam_geometry()
    region = geometry.cylinder_mask()
    phantom = build_phantom(TINY_SIMULATE)

    def psnr(instants: np.ndarray, name: str) -> float:
        rendered = _render(_request(times=[float(t * scan_s) for t in instants]), tiny_model, tiny_scan["sinogram"],
                           tmp_path / f"{name}.h5")
        truth = rasterise_phantom(phantom, instants, geometry.slice_z())
        error = np.mean((rendered - truth)[..., region] ** 2)
        return float(10 * np.log10(np.ptp(truth) ** 2 / error))

    at_frames, at_between = psnr(frames, "frames"), psnr(between, "between")
    assert at_frames > 18, at_frames
    assert at_between > at_frames - 1.0, (at_frames, at_between)


def test_request_errors_name_the_key(tiny_scan: dict[str, Path], tiny_model: Path, tmp_path: Path) -> None:
    sino = tiny_scan["sinogram"]
    with pytest.raises(InputError, match=r"renderings.test.times: 99 s lies outside the scan"):
        _render(_request(times=[99.0]), tiny_model, sino, tmp_path / "late.h5")
    with pytest.raises(InputError, match=r"renderings.test.region.x: \[30, 40\] is not a non-empty range"):
        _render(_request(region={"x": [30, 40]}), tiny_model, sino, tmp_path / "outside.h5")
    times = _render(_request(times={"rate_hz": 50, "start_s": 0.2, "stop_s": 0.3}, plane="axial"), tiny_model, sino,
                    tmp_path / "rate.h5")
    assert times.shape == (6, 1, 32, 32)
    assert not list(tmp_path.glob(".*.tmp"))
