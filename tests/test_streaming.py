"""Streaming stages: the block size changes memory, never results.

Prepare and FBP act on each detector row alone, so blocks of one row and one block of
the whole scan give bitwise-equal files; metrics and residuals add their sums up block
by block, so they agree to float rounding. Prepare's peak memory on a scan many times
its block stays far below the scan's size.
"""

from __future__ import annotations

import dataclasses
import gc
import tracemalloc
from pathlib import Path

import h5py
import numpy as np
import pytest
from conftest import TINY_TRAIN, geometry_settings, prepare_settings, train

from dinr import stages
from dinr.baselines.fbp import fbp
from dinr.evaluate.metrics import volume_metrics
from dinr.io.blocks import blocks
from dinr.io.canonical import read_sinogram
from dinr.io.dxchange import write_raw
from dinr.io.volume import open_volume, read_volume, write_volume
from dinr.settings import BaselineSettings, ConvertSettings, section_defaults
from dinr.train.comm import Communicator

WHOLE = 1e6  # MiB: one block for everything
ONE_ROW = 1e-6  # MiB: one index per block


def datasets(path: Path) -> dict[str, np.ndarray]:
    """Every dataset of an HDF5 file by its path."""
    found: dict[str, np.ndarray] = {}
    with h5py.File(path, "r") as f:
        f.visititems(lambda name, obj: found.__setitem__(name, obj[()]) if isinstance(obj, h5py.Dataset) else None)
    return found


def assert_same_file(a: Path, b: Path, attributes: tuple[str, ...] = ()) -> None:
    left, right = datasets(a), datasets(b)
    assert left.keys() == right.keys()
    for name in left:
        np.testing.assert_array_equal(left[name], right[name], err_msg=name)
    with h5py.File(a, "r") as fa, h5py.File(b, "r") as fb:
        for key in attributes:
            assert fa.attrs[key] == fb.attrs[key], key


def test_blocks_cover_the_range_in_order() -> None:
    cut = blocks(10, 100, 250 / 2**20)
    assert [(s.start, s.stop) for s in cut] == [(0, 2), (2, 4), (4, 6), (6, 8), (8, 10)]
    assert blocks(3, 10**9, 1.0) == [slice(0, 1), slice(1, 2), slice(2, 3)]
    with pytest.raises(ValueError, match="resources.chunk_mb"):
        blocks(3, 10, 0.0)


def test_convert_and_prepare_do_not_depend_on_the_block(tiny_scan: dict[str, Path], tmp_path: Path) -> None:
    convert = ConvertSettings(**section_defaults("convert"))
    prepare = prepare_settings(find_center="vo", zinger_threshold=0.08, stripe="vo", heldout_every=5)
    for name, chunk in (("whole", WHOLE), ("rows", ONE_ROW)):
        stages.convert(convert, tiny_scan["raw"], tmp_path / f"{name}_raw.h5", chunk)
        stages.prepare(prepare, geometry_settings(), tmp_path / f"{name}_raw.h5", tmp_path / f"{name}_sino.h5", chunk)
    assert_same_file(tmp_path / "whole_raw.h5", tmp_path / "rows_raw.h5")
    assert_same_file(tmp_path / "whole_sino.h5", tmp_path / "rows_sino.h5",
                     ("center", "center_method", "noise_variance", "noise_variance_weighted"))
    with h5py.File(tmp_path / "rows_sino.h5", "r") as f:
        assert f.attrs["center_method"] == "vo"


def test_fbp_does_not_depend_on_the_block_or_the_threads(tiny_scan: dict[str, Path], tmp_path: Path) -> None:
    settings = BaselineSettings(**{**section_defaults("baselines"), "backend": "astra"})
    for method in ("fbp_static", "fbp_sliding"):
        for name, chunk, threads in (("whole", WHOLE, 3), ("rows", ONE_ROW, 1)):
            stages.baseline(settings, method, tiny_scan["sinogram"], tiny_scan["truth"], 4,
                            tmp_path / f"{method}_{name}.h5", chunk, threads)
        assert_same_file(tmp_path / f"{method}_whole.h5", tmp_path / f"{method}_rows.h5")
    sino = read_sinogram(tiny_scan["sinogram"])
    direct = fbp(sino.projections, sino.theta, sino.center, settings.filter, "astra")
    np.testing.assert_array_equal(read_volume(tmp_path / "fbp_static_rows.h5")[0][0], direct)


def test_metrics_in_tiles_match_the_whole_frame(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    truth = rng.random((2, 9, 40, 40), dtype=np.float32)
    recon = (truth + 0.1 * rng.standard_normal(truth.shape)).astype(np.float32)
    mask = np.ones((40, 40), dtype=bool)
    mask[:4] = False
    whole = volume_metrics(truth, recon, mask, WHOLE)
    write_volume(tmp_path / "truth.h5", truth, np.arange(2.0), {}, name="truth")
    write_volume(tmp_path / "recon.h5", recon, np.arange(2.0), {})
    with open_volume(tmp_path / "truth.h5", "truth") as (t, _), open_volume(tmp_path / "recon.h5") as (r, _):
        for chunk in (2.0, 0.3, 0.01):  # slabs of 4 whole slices; tiles 2 deep x 2 rows; 1 x 1
            tiled = volume_metrics(t, r, mask, chunk)
            for key in ("psnr", "ssim", "mae"):
                np.testing.assert_allclose([m[key] for m in tiled["per_frame"]],
                                           [m[key] for m in whole["per_frame"]], rtol=1e-6, err_msg=key)


def test_residuals_in_row_blocks_match_one_block(tiny_scan: dict[str, Path], tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    held = tmp_path / "held.h5"
    stages.prepare(prepare_settings(heldout_every=4), geometry_settings(), tiny_scan["raw"], held)
    settings = dataclasses.replace(TINY_TRAIN, steps=10)
    state = train(settings, held, tmp_path / "ck.pt", Communicator(use_mpi=False))
    baseline = BaselineSettings(**{**section_defaults("baselines"), "backend": "astra"})
    stages.baseline(baseline, "fbp_sliding", held, None, 4, tmp_path / "fbp.h5")
    results = []
    for chunk in (WHOLE, ONE_ROW):
        with open_volume(tmp_path / "fbp.h5") as fbp_volume:
            volumes = {"dinr": fbp_volume, "fbp_sliding": fbp_volume}
            results.append(stages.residual_metrics(volumes, held, "heldout", state, chunk))
    for name in results[0]:
        assert 0 < results[0][name] < 1
        np.testing.assert_allclose(results[1][name], results[0][name], rtol=1e-6, err_msg=name)

    # A wide scan is scored on evenly spread views and rows: 3 views of 1 row here.
    read = []
    monkeypatch.setattr(stages, "RESIDUAL_VIEWS", 3)
    monkeypatch.setattr(stages, "RESIDUAL_ROWS", 1)
    monkeypatch.setattr(stages, "read_sinogram", lambda *a, **k: read.append(k) or read_sinogram(*a, **k))
    with open_volume(tmp_path / "fbp.h5") as fbp_volume:
        subset = stages.residual_metrics({"dinr": fbp_volume, "fbp_sliding": fbp_volume}, held, "heldout", state)
    assert [len(k["views"]) for k in read] == [3] and read[0]["rows"] == slice(0, 1)
    for name, value in subset.items():
        assert 0.5 * results[0][name] < value < 2 * results[0][name], (name, value, results[0][name])


def test_prepare_memory_stays_bounded_on_a_scan_many_blocks_large(tmp_path: Path) -> None:
    """A 90 MiB float32 scan prepared in 2 MiB blocks: Python-side allocations peak far
    below the scan (reading it whole would take three times its size)."""
    views, rows, cols = 1440, 64, 256
    rng = np.random.default_rng(1)
    counts = rng.poisson(5000.0, size=(views, rows, cols)).astype(np.float32)
    scan_mb = counts.nbytes / 2**20
    write_raw(tmp_path / "raw.h5", counts, np.full((4, rows, cols), 1e4, np.float32),
              np.zeros((2, rows, cols), np.float32), np.linspace(0, 360, views, endpoint=False),
              np.arange(views, dtype=float), {})
    del counts
    gc.collect()
    tracemalloc.start()
    try:
        stages.prepare(prepare_settings(), geometry_settings(), tmp_path / "raw.h5", tmp_path / "sino.h5", 2.0)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert read_sinogram(tmp_path / "sino.h5", split="all", rows=slice(0, 1)).shape == (views, 1, cols)
    assert scan_mb >= 90
    assert peak / 2**20 < 48, f"prepare peaked at {peak / 2**20:.1f} MiB on a {scan_mb:.0f} MiB scan"
