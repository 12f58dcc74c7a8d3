"""The whole Snakemake DAG on tiny data: a simulated dataset and a user scan without truth."""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import h5py
import pytest
import yaml

from conftest import REPO, TINY_SIMULATE, geometry_settings
from dinr import stages


def _snakemake(workdir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """Snakemake with this Python's environment first on PATH (the rules call ``dinr``)."""
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    return subprocess.run(
        [sys.executable, "-m", "snakemake", "-s", str(REPO / "workflow" / "Snakefile"), "--directory", str(workdir),
         *args],
        capture_output=True, text=True, timeout=900, env=env,
    )


def test_lint_is_clean() -> None:
    result = _snakemake(REPO, "--lint")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Lints for" not in result.stdout + result.stderr


@pytest.mark.slow
def test_demo_dag_runs_end_to_end_with_and_without_truth(tiny_scan: dict[str, Path], tmp_path: Path) -> None:
    config = yaml.safe_load((REPO / ".test" / "config.yaml").read_text())
    shutil.copy(tiny_scan["raw"], tmp_path / "user_scan.h5")
    config["datasets"]["user"] = {"raw": "user_scan.h5", "prepare": {"heldout_every": 10},
                                  "baselines": {"methods": ["fbp_static"]}}  # a dataset's own baselines
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config))
    result = _snakemake(tmp_path, "--cores", "2", "--configfile", str(tmp_path / "config.yaml"))
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]

    tiny = json.loads((tmp_path / "results/tiny/metrics.json").read_text())
    assert set(tiny["methods"]) == {"dinr", "fbp_sliding", "fbp_static"}
    for metrics in tiny["methods"].values():
        assert len(metrics["per_frame"]) == 4 and metrics["psnr_mean"] > 15
    assert tiny["wall_s"]["train"] > 0 and tiny["backend"]["fbp_static"] in ("astra", "tomopy")

    user = json.loads((tmp_path / "results/user/metrics.json").read_text())
    assert set(user["methods"]) == {"dinr", "fbp_static"} and not (tmp_path / "results/user/fbp_sliding").exists()
    for metrics in user["methods"].values():
        assert 0 < metrics["heldout_rel_residual"] < 1
    for metrics in (*tiny["methods"].values(), *user["methods"].values()):
        assert metrics["noise_sigma"] > 0 and 0 < metrics["blur"] < 1
    for name in ("slices.png", "metrics.png", "training.png", "movie.gif"):
        assert (tmp_path / f"results/tiny/figures/{name}").stat().st_size > 10_000
    with h5py.File(tmp_path / "results/tiny/dinr/recon.h5") as f:
        assert f["recon"].shape == (4, 4, 32, 32)
        assert "dinr_git_commit" in f.attrs and "dinr_versions" in f.attrs


@pytest.mark.slow
def test_a_cone_beam_dataset_runs_through_the_same_dag(tmp_path: Path) -> None:
    """A user's cone-beam scan (raw + truth, distances in the raw file) added to the
    config runs through the same rules, with RTK's FDK as its baselines."""
    stages.simulate(dataclasses.replace(TINY_SIMULATE, rows=4, views=120), geometry_settings(beam="cone"), tmp_path / "cone_scan.h5", tmp_path / "cone_truth.h5")
    config = yaml.safe_load((REPO / ".test" / "config.yaml").read_text())
    config["datasets"] = {"lab": {"raw": "cone_scan.h5", "truth": "cone_truth.h5", "geometry": {"beam": "cone"},
                                  "baselines": {"methods": ["fdk_sliding", "fdk_static"]}}}
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config))
    result = _snakemake(tmp_path, "--cores", "2", "--configfile", str(tmp_path / "config.yaml"))
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    lab = json.loads((tmp_path / "results/lab/metrics.json").read_text())
    assert set(lab["methods"]) == {"dinr", "fdk_sliding", "fdk_static"}
    assert lab["backend"]["fdk_static"].startswith("itk-rtk")
    for metrics in lab["methods"].values():
        assert len(metrics["per_frame"]) == 4 and metrics["psnr_mean"] > 15
    assert (tmp_path / "results/lab/figures/slices.png").stat().st_size > 10_000
