"""The MBIR peers (mbirjax) as baseline methods: shape, quality against static FBP, a clear
error without mbirjax, and MACE4D's frame layout."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest

from conftest import TINY_SIMULATE
from dinr import stages
from dinr.baselines.mbir import mace4d_frames, sliding_window_mbir
from dinr.errors import InputError
from dinr.evaluate.metrics import volume_metrics
from dinr.geometry.parallel import ParallelGeometry
from dinr.geometry.resolve import geometry_of
from dinr.io.canonical import read_sinogram
from dinr.io.volume import read_volume
from dinr.settings import BaselineSettings, load_section, section_defaults

pytest.importorskip("mbirjax")

FAST = BaselineSettings(**{**section_defaults("baselines"), "mbir_iterations": 4, "mace4d_iterations": 2})


def _psnr(truth_path: Path, recon_path: Path) -> float:
    truth, _ = read_volume(truth_path, name="truth")
    recon, _ = read_volume(recon_path)
    assert recon.shape == truth.shape and np.all(np.isfinite(recon))
    mask = ParallelGeometry(truth.shape[1], truth.shape[3], truth.shape[3] / 2, truth.shape[3]).cylinder_mask()
    return float(volume_metrics(truth, recon, mask)["psnr_mean"])


@pytest.mark.slow  # mbirjax compiles its projectors for every window: about a minute each on 2 cores
@pytest.mark.parametrize("method", ["mbir_sliding", "mace4d"])
def test_peer_beats_static_fbp_on_a_tiny_scan(tiny_scan: dict[str, Path], tmp_path: Path, method: str) -> None:
    frames = TINY_SIMULATE.frames
    paths = {}
    for name in (method, "fbp_static"):
        paths[name] = tmp_path / f"{name}.h5"
        stages.baseline(FAST, name, tiny_scan["sinogram"], tiny_scan["truth"], frames, paths[name])
    peer, static = _psnr(tiny_scan["truth"], paths[method]), _psnr(tiny_scan["truth"], paths["fbp_static"])
    assert peer > static + 1.0, (peer, static)
    with h5py.File(paths[method]) as f:
        assert f.attrs["backend"].startswith("mbirjax ") and f.attrs["dinr_stage"] == method


@pytest.mark.slow  # mbirjax compiles its projectors for each window in each process
def test_sliding_mbir_frames_made_in_two_processes_equal_those_made_in_one(tiny_scan: dict[str, Path]) -> None:
    sino = read_sinogram(tiny_scan["sinogram"], split="all")
    time_norm = sino.normalised_time(sino.time)
    geometry = geometry_of(sino)
    frame_times = np.array([0.3, 0.7])
    frames = {workers: sliding_window_mbir(sino.projections, sino.theta, sino.heldout, time_norm, frame_times,
                                           geometry, FAST.mbir_sharpness, FAST.mbir_iterations, workers=workers)
              for workers in (1, 2)}
    _, rows, cols = sino.projections.shape
    assert frames[1].shape == (2, rows, cols, cols)
    assert np.array_equal(frames[1], frames[2])
    assert not np.array_equal(frames[1][0], frames[1][1])  # each frame from its own window


def test_missing_mbirjax_names_the_method(tiny_scan: dict[str, Path], tmp_path: Path,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "mbirjax", None)  # `import mbirjax` now raises ImportError
    with pytest.raises(InputError, match="baseline method 'mace4d' needs mbirjax"):
        stages.baseline(FAST, "mace4d", tiny_scan["sinogram"], tiny_scan["truth"], 4, tmp_path / "out.h5")
    assert not (tmp_path / "out.h5").exists()


def test_mbirjax_on_a_python_without_tk_names_tk_not_easygui() -> None:
    """mbirjax imports easygui, which needs Tk: on a Python without it (Debian's python3
    without python3-tk) the error must say so, not easygui's 'global_state'."""
    code = ("import sys; sys.modules['tkinter'] = None  # as on a Python built without Tk\n"
            "from dinr.baselines.mbir import import_mbirjax\nfrom dinr.errors import InputError\n"
            "try:\n    import_mbirjax('mace4d', 1)\nexcept InputError as err:\n    print(err)\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert "baseline method 'mace4d' needs mbirjax, which is installed but needs Tk (tkinter)" in result.stdout, \
        result.stdout + result.stderr[-2000:]
    assert "apt-get install python3-tk" in result.stdout


def test_mace4d_frames_are_centred_on_the_frame_times() -> None:
    views = 720
    theta = np.arange(views) * (4 * 2 * np.pi / views)  # 4 turns, 180 views a turn
    time_norm = np.arange(views) / (views - 1)
    frame_times = (np.arange(16) + 0.5) / 16
    first, stride, span = mace4d_frames(theta, time_norm, frame_times)
    assert (stride, span) == (45, 90)
    centres = first + stride * np.arange(14) + (span - 1) / 2
    requested = frame_times * (views - 1)
    assert np.all(np.abs(requested[1:15] - centres) <= 1.0)


def test_settings_reject_a_prior_weight_outside_0_1(tmp_path: Path) -> None:
    path = tmp_path / "baselines.json"
    path.write_text(json.dumps({**dataclasses.asdict(FAST), "mace4d_prior_weight": 1.5}))
    with pytest.raises(InputError, match="baselines.mace4d_prior_weight"):
        load_section(BaselineSettings, path)
