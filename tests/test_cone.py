"""Cone beam: geometry, simulator, RTK's projector and FDK, training across ranks, config errors."""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import TINY_SIMULATE, TINY_TRAIN, geometry_settings, prepare_settings, train
from dinr import stages
from dinr.errors import InputError
from dinr.evaluate.metrics import volume_metrics
from dinr.geometry.cone import ConeGeometry
from dinr.geometry.resolve import beam_attributes, geometry_of
from dinr.inr.rays import RayBatch, integrate_rays
from dinr.io.canonical import read_sinogram
from dinr.io.volume import read_volume
from dinr.prep.stillness import conjugate_rows, conjugate_views
from dinr.sim.compression import CompressionPhantom
from dinr.sim.cone import project_cone
from dinr.sim.ellipses import project_ellipses, rasterise_phantom
from dinr.settings import BaselineSettings, section_defaults
from dinr.train.comm import Communicator
from test_train import train_two_ranks

N, ROWS = 32, 16
#: A 10-degree half-angle fan over N voxels.
SOURCE_AXIS = N / 2 / math.tan(math.radians(10.0))
GEOMETRY = ConeGeometry(rows=ROWS, cols=N, center=N / 2, n=N, source_axis=SOURCE_AXIS, row_center=ROWS / 2)


def detector_grid(geometry: ConeGeometry) -> tuple[np.ndarray, np.ndarray]:
    return np.meshgrid(geometry.detector_v(), geometry.detector_u(), indexing="ij")[::-1]  # type: ignore[return-value]


def test_chords_match_a_brute_force_ray_march() -> None:
    """Each ray's chord through the cylinder against a march in 1e-3 voxel steps."""
    g = torch.Generator().manual_seed(0)
    theta = torch.rand(50, generator=g, dtype=torch.float64) * 2 * math.pi
    u = (torch.rand(50, generator=g, dtype=torch.float64) - 0.5) * 1.2 * N
    v = (torch.rand(50, generator=g, dtype=torch.float64) - 0.5) * ROWS
    x, y, z, step = GEOMETRY.chord_points(theta, u, v, 1, torch.zeros(50, 1, dtype=torch.float64))
    source = torch.stack([SOURCE_AXIS * torch.sin(theta), -SOURCE_AXIS * torch.cos(theta)], dim=1)
    target = torch.stack([u * torch.cos(theta), u * torch.sin(theta)], dim=1)  # (u, v) on the virtual detector
    direction = torch.cat([target - source, v[:, None]], dim=1)
    direction = direction / direction.norm(dim=1, keepdim=True)
    s = torch.arange(0, 2 * SOURCE_AXIS, 1e-3, dtype=torch.float64)
    xy = source[:, None, :] + s[None, :, None] * direction[:, None, :2]
    marched = ((xy**2).sum(-1) < GEOMETRY.radius**2).sum(1) * 1e-3
    np.testing.assert_allclose(step.numpy(), marched.numpy(), atol=3e-3)
    # the chord's first point lies on the ray: (x, y, z) - source is parallel to the direction
    offset = torch.stack([x[:, 0] - source[:, 0], y[:, 0] - source[:, 1], z[:, 0]], dim=1)
    hits = step > 0
    cross = torch.linalg.cross(offset[hits], direction[hits])
    assert float(cross.abs().max()) < 1e-9


def test_the_cone_simulator_tends_to_parallel_beam_far_from_the_source() -> None:
    phantom = CompressionPhantom(N, ROWS, seed=1)
    far = dataclasses.replace(GEOMETRY, source_axis=1e5)
    u, v = detector_grid(far)
    cone = project_cone(phantom, 0.6, 0.7, far, u, v)
    parallel = np.stack([project_ellipses(phantom.slice_at(0.6, z), 0.7, far.detector_u()) for z in far.detector_v()])
    assert np.abs(cone - parallel).max() < 2e-3 * parallel.max()


def static_projections(theta: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Analytic cone-beam projections of the phantom frozen at t = 0, and its voxelised truth."""
    phantom = CompressionPhantom(N, ROWS, seed=1)
    u, v = detector_grid(GEOMETRY)
    projections = np.stack([project_cone(phantom, 0.0, float(a), GEOMETRY, u, v) for a in theta])
    return projections, rasterise_phantom(phantom, np.array([0.0]), GEOMETRY.slice_z())[0]


def rows_inside_the_slab(geometry: ConeGeometry) -> np.ndarray:
    """Detector rows whose rays stay within the slices of the volume."""
    reach = (geometry.rows / 2) * geometry.source_axis / (geometry.source_axis + geometry.radius)
    return np.abs(geometry.detector_v()) + 0.5 <= reach


def test_our_cone_rays_match_rtk_joseph_projector() -> None:
    """A voxelised phantom projected by RTK's Joseph projector and by our ray model
    through the same volume (trilinear), on the rows whose rays stay in the volume."""
    from dinr.baselines.fdk import cone_forward_project

    theta = np.linspace(0, 2 * np.pi, 24, endpoint=False)
    _, truth = static_projections(theta[:1])
    joseph = cone_forward_project(truth, theta, GEOMETRY)
    volume = torch.as_tensor(truth, dtype=torch.float64)[None, None]

    def trilinear(coords: torch.Tensor) -> torch.Tensor:  # the voxels as a field (normalised coordinates)
        z, y, x = (coords[..., k] * GEOMETRY.half_width for k in (1, 2, 3))
        grid = torch.stack([x / (N / 2), -y / (N / 2), -z / (ROWS / 2)], dim=-1).reshape(1, 1, 1, -1, 3)
        return torch.nn.functional.grid_sample(volume, grid, align_corners=False).reshape(coords.shape[:-1])

    t, v, u = np.meshgrid(theta, GEOMETRY.detector_v(), GEOMETRY.detector_u(), indexing="ij")
    rays = RayBatch(*(torch.as_tensor(a.ravel()) for a in (t, u, v, np.zeros(t.size), np.zeros(t.size))))
    ours = integrate_rays(trilinear, rays, GEOMETRY, 256,  # type: ignore[arg-type]
                          torch.full((t.size, 256), 0.5, dtype=torch.float64)).numpy().reshape(t.shape)
    keep = np.ix_(np.arange(len(theta)), np.flatnonzero(rows_inside_the_slab(GEOMETRY)),
                  np.flatnonzero(GEOMETRY.column_mask()))
    relative = np.linalg.norm(ours[keep] - joseph[keep]) / np.linalg.norm(joseph[keep])
    print(f"relative L2, our cone rays vs RTK Joseph: {relative:.4f}")
    assert relative < 0.01


def test_fdk_reconstructs_a_static_phantom() -> None:
    """Static FDK (all views) and short-scan FDK (Parker) of analytic projections of a
    static phantom, inside the region every view sees."""
    from dinr.baselines.fdk import fdk_sliding, fdk_static

    theta = np.linspace(0, 2 * np.pi, 180, endpoint=False)
    projections, truth = static_projections(theta)
    mask = GEOMETRY.region_mask()
    full = volume_metrics(truth[None], fdk_static(projections, theta, GEOMETRY)[None], mask)
    short = volume_metrics(truth[None], fdk_sliding(projections, theta, np.linspace(0, 1, len(theta)),
                                                    np.array([0.5]), GEOMETRY), mask)
    print(f"FDK of a static phantom: all views {full['psnr_mean']:.2f} dB, short scan {short['psnr_mean']:.2f} dB")
    assert full["psnr_mean"] > 28.0 and short["psnr_mean"] > 26.0


def test_cone_keys_missing_or_inconsistent_name_the_key(tmp_path: Path) -> None:
    cone = geometry_settings(beam="cone")
    with pytest.raises(InputError, match="geometry.source_axis_mm"):
        beam_attributes(cone, {}, ROWS, N, tmp_path / "raw.h5")
    with pytest.raises(InputError, match="geometry.source_detector_mm"):
        beam_attributes(dataclasses.replace(cone, source_axis_mm=200.0, source_detector_mm=150.0,
                                            pixel_size_mm=0.1), {}, ROWS, N, tmp_path / "raw.h5")
    with pytest.raises(InputError, match="geometry.detector_offset_rows"):
        beam_attributes(dataclasses.replace(cone, source_axis_mm=100.0, source_detector_mm=200.0,
                                            pixel_size_mm=0.1, detector_offset_rows=9.0), {}, ROWS, N,
                        tmp_path / "raw.h5")
    with pytest.raises(InputError, match="a fan of 90 degrees or more"):
        beam_attributes(dataclasses.replace(cone, source_axis_mm=0.5, source_detector_mm=1.0, pixel_size_mm=0.1),
                        {}, ROWS, N, tmp_path / "raw.h5")
    from_file = beam_attributes(cone, {"source_axis_mm": 100.0, "source_detector_mm": 200.0, "pixel_size_mm": 0.1},
                                ROWS, N, tmp_path / "raw.h5")
    assert from_file["source_detector_mm"] == 200.0 and from_file["row_center"] == ROWS / 2


@pytest.fixture(scope="module")
def tiny_cone(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A tiny simulated cone-beam scan, prepared (distances from the raw file): truth and
    sinogram paths."""
    root = tmp_path_factory.mktemp("cone")
    simulate = dataclasses.replace(TINY_SIMULATE, rows=4, views=90, frames=2)
    stages.simulate(simulate, geometry_settings(beam="cone"), root / "raw.h5", root / "truth.h5")
    stages.prepare(prepare_settings(), geometry_settings(beam="cone"), root / "raw.h5", root / "sino.h5")
    return {"truth": root / "truth.h5", "sinogram": root / "sino.h5"}


@pytest.fixture(scope="module")
def tiny_cone_scan(tiny_cone: dict[str, Path]) -> Path:
    return tiny_cone["sinogram"]


def test_a_simulated_cone_scan_records_its_geometry(tiny_cone_scan: Path) -> None:
    sino = read_sinogram(tiny_cone_scan)
    assert sino.beam == "cone" and sino.source_detector_mm / sino.source_axis_mm == pytest.approx(2.0)  # type: ignore[operator]
    half_angle = math.degrees(math.atan(sino.shape[2] / 2 * sino.pixel_size_mm / sino.source_detector_mm))  # type: ignore[operator]
    assert half_angle == pytest.approx(10.0)


def test_two_ranks_match_one_rank_holding_both_shards_in_cone_beam(tiny_cone_scan: Path, tmp_path: Path) -> None:
    two_ranks = train_two_ranks(TINY_TRAIN, tiny_cone_scan, tmp_path)[0]
    one_rank = train(dataclasses.replace(TINY_TRAIN, ray_shards=2), tiny_cone_scan, tmp_path / "one.pt",
                     Communicator(use_mpi=False))
    assert one_rank.geometry["source_axis"] > 0
    for key, value in one_rank.field().state_dict().items():  # the two sum the gradient in other orders
        np.testing.assert_allclose(value.numpy(), two_ranks[key], rtol=1e-3, atol=1e-5, err_msg=key)


@pytest.mark.slow  # mbirjax compiles its cone projectors for every window
def test_cone_mbir_beats_static_fdk_and_parallel_methods_are_refused(tiny_cone: dict[str, Path],
                                                                     tmp_path: Path) -> None:
    pytest.importorskip("mbirjax")
    settings = BaselineSettings(**{**section_defaults("baselines"), "mbir_iterations": 4})
    truth, _ = read_volume(tiny_cone["truth"], name="truth")
    mask = geometry_of(read_sinogram(tiny_cone["sinogram"])).region_mask()
    psnr = {}
    for method in ("mbir_sliding", "fdk_static"):
        stages.baseline(settings, method, tiny_cone["sinogram"], tiny_cone["truth"], 2, tmp_path / f"{method}.h5")
        recon, _ = read_volume(tmp_path / f"{method}.h5")
        assert recon.shape == truth.shape and np.all(np.isfinite(recon))
        psnr[method] = volume_metrics(truth, recon, mask)["psnr_mean"]
    assert psnr["mbir_sliding"] > psnr["fdk_static"] + 1.0, psnr
    with pytest.raises(InputError, match="'fbp_static' does not reconstruct cone-beam scans"):
        stages.baseline(settings, "fbp_static", tiny_cone["sinogram"], None, 4, tmp_path / "fbp.h5")


@pytest.mark.parametrize("direction", [1.0, -1.0])
def test_fan_beam_conjugates_of_a_still_object_repeat_its_rays(direction: float) -> None:
    """Each central-row ray at ``theta`` seen again, reversed, at ``theta + pi - 2 gamma``
    in the mirrored column (:func:`dinr.prep.stillness.conjugate_views`), whichever way
    the object turns: on a still phantom the conjugates match the views they pair with
    to the views' interpolation; with the fan angle's sign turned they do not."""
    phantom = CompressionPhantom(N, ROWS, seed=1)
    theta = direction * np.arange(900) * (2 * np.pi / 600)  # 1.5 turns
    u = GEOMETRY.detector_u()
    projections = np.stack([project_cone(phantom, 0.0, float(a), GEOMETRY, u, np.zeros_like(u)) for a in theta])
    projections = projections[:, None, :]  # one row in the source's plane
    earlier, conjugates, position = conjugate_views(projections, theta, GEOMETRY.center, GEOMETRY.source_axis)
    fan = 2 * math.atan((N / 2 - 0.5) / GEOMETRY.source_axis)  # the conjugates' spread in angle, column centres
    assert earlier[0] == 0 and len(earlier) == 600 - math.ceil(fan / (2 * np.pi / 600))  # whole fans only
    np.testing.assert_allclose(position[:500], earlier[:500] + 300, atol=1e-6)  # a symmetric fan: half a turn on
    inside = np.isfinite(conjugates)
    assert inside.mean() > 0.9
    error = np.abs(conjugates - projections[earlier])[inside].max()
    assert error < 0.02 * projections.max(), error
    _, wrong, _ = conjugate_views(projections, theta, GEOMETRY.center, -GEOMETRY.source_axis)  # gamma -> -gamma
    assert np.nanmax(np.abs(wrong - projections[earlier[:len(wrong)]])) > 10 * error


def test_conjugate_rows_are_those_within_a_pixel_of_the_source_plane() -> None:
    assert conjugate_rows(10, 5.0) == slice(4, 6)
    assert conjugate_rows(10, 5.3) == slice(4, 6)
    assert conjugate_rows(10, 0.2) == slice(0, 1)
    assert conjugate_rows(10, -3.0) is None  # the source's plane misses the detector
