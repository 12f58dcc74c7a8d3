"""Rendering the trained field: ranks split the (frame, slice) images, the file is the same."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import h5py
import numpy as np

from conftest import TINY_TRAIN, dinr_command, train, write_settings
from dinr import stages
from dinr.settings import RenderSettings
from dinr.train.comm import Communicator


def test_three_ranks_render_the_volume_one_rank_renders(tiny_scan: dict[str, Path], tmp_path: Path) -> None:
    model = tmp_path / "model.pt"
    train(dataclasses.replace(TINY_TRAIN, steps=10), tiny_scan["sinogram"], model, Communicator(use_mpi=False))
    settings = RenderSettings(frames=16, chunk=100, supersample=1)
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
