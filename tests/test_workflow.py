"""The whole Snakemake DAG on tiny data: a simulated dataset and a user scan without truth."""

from __future__ import annotations

import dataclasses
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import h5py
import pytest
import yaml

from conftest import REPO, TINY_SIMULATE, geometry_settings
from dinr import stages
from dinr.sim.version import simulator_version
from dinr.train.checkpoint import load_checkpoint


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
    """The .test DAG plus a user's scan as beamline folders name them (a space and a
    non-ASCII character, in the working directory's path too) under a dataset name with
    a dot; then a changed training key retrains afresh (the old checkpoint kept), and a
    baseline method added reruns no other baseline."""
    workdir = tmp_path / "beam time 2026.12 ü"
    beamtime = workdir / "My Beamtime é"
    beamtime.mkdir(parents=True)
    config = yaml.safe_load((REPO / ".test" / "config.yaml").read_text())
    shutil.copy(tiny_scan["raw"], beamtime / "scan 1.h5")
    user = "run_1.v2"
    config["datasets"][user] = {"raw": str(beamtime / "scan 1.h5"), "prepare": {"heldout_every": 10},
                                "baselines": {"methods": ["fbp_static"]},  # a dataset's own baselines
                                "renderings": {"zoom": {"times": [0.3, 0.35], "region": {"x": [8, 24]},
                                                        "upsample": 2}}}
    config_file = workdir / "config.yaml"
    config_file.write_text(yaml.safe_dump(config, allow_unicode=True))
    result = _snakemake(workdir, "--cores", "2", "--configfile", str(config_file))
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]

    tiny = json.loads((workdir / "results/tiny/metrics.json").read_text())
    assert set(tiny["methods"]) == {"dinr", "fbp_sliding", "fbp_static"}
    for metrics in tiny["methods"].values():
        assert len(metrics["per_frame"]) == 4 and metrics["psnr_mean"] > 15
    assert tiny["wall_s"]["train"] > 0 and tiny["backend"]["fbp_static"] in ("astra", "tomopy")
    assert len(tiny["dinr_margin"]["per_frame"]) == 4 and tiny["dinr_margin"]["best_mean_peer"] == "fbp_sliding"

    scan = json.loads((workdir / f"results/{user}/metrics.json").read_text())
    assert set(scan["methods"]) == {"dinr", "fbp_static"} and not (workdir / f"results/{user}/fbp_sliding").exists()
    for metrics in scan["methods"].values():
        assert 0 < metrics["heldout_rel_residual"] < 1
    for metrics in (*tiny["methods"].values(), *scan["methods"].values()):
        assert metrics["noise_sigma"] > 0 and 0 < metrics["blur"] < 1
    for name in ("slices.png", "metrics.png", "training.png", "movie.gif"):
        assert (workdir / f"results/tiny/figures/{name}").stat().st_size > 10_000
    with h5py.File(workdir / "results/tiny/dinr/recon.h5") as f:
        assert f["recon"].shape == (4, 4, 32, 32)
        assert "dinr_git_commit" in f.attrs and "dinr_versions" in f.attrs
    for dataset in ("tiny", user):
        for plane in ("axial", "vertical"):
            assert (workdir / f"results/{dataset}/figures/movie_{plane}.gif").stat().st_size > 10_000
        for name in ("recon.ome.zarr", "recon.tif"):
            assert (workdir / f"results/{dataset}/dinr/export/{name}").exists()
    with h5py.File(workdir / f"results/{user}/renderings/zoom/recon.h5") as f:
        assert f["recon"].shape == (2, 4, 64, 32) and f["recon"].attrs["frame_interval_s"] == pytest.approx(0.05)
    assert (workdir / f"results/{user}/renderings/zoom/export/recon.tif").exists()
    with h5py.File(workdir / "results/tiny/fbp_static/recon.h5") as f:
        assert f["recon"].is_virtual  # a static method's volume is stored once
    simulate_settings = json.loads((workdir / "results/tiny/settings/simulate.json").read_text())
    assert simulate_settings["simulator_version"] == simulator_version()

    # A changed training key: the old checkpoint is kept aside and the run starts afresh.
    old = load_checkpoint(workdir / f"results/{user}/dinr/checkpoint.pt")
    config["datasets"][user]["train"] = {"lr": 0.005}
    config_file.write_text(yaml.safe_dump(config, allow_unicode=True))
    result = _snakemake(workdir, "--cores", "2", "--configfile", str(config_file))
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    kept = workdir / f"results/{user}/dinr/checkpoint.{old.settings_hash[:12]}.pt"
    assert load_checkpoint(kept).settings_hash == old.settings_hash
    new = load_checkpoint(workdir / f"results/{user}/dinr/model.pt")
    assert new.step == config["train"]["steps"] and new.settings["lr"] == 0.005
    assert "differing: lr" in (workdir / f"logs/{user}/train.log").read_text()

    # One more baseline method: only its own job (and what reads every method) runs.
    config["datasets"][user]["baselines"] = {"methods": ["fbp_static", "fbp_sliding"]}
    config_file.write_text(yaml.safe_dump(config, allow_unicode=True))
    dry = _snakemake(workdir, "-n", "--cores", "2", "--configfile", str(config_file))
    assert dry.returncode == 0, dry.stdout[-3000:] + dry.stderr[-3000:]
    jobs = dict(line.split()[:2] for line in _job_table(dry.stdout))
    assert "baseline" in jobs and "evaluate" in jobs, dry.stdout
    planned = re.findall(r"output: (\S+/recon\.h5)", dry.stdout)
    assert planned == [f"results/{user}/fbp_sliding/recon.h5"], dry.stdout


def _job_table(dry_run: str) -> list[str]:
    """The rows of a dry run's job-count table ("count rule")."""
    lines = dry_run.splitlines()
    start = next(i for i, line in enumerate(lines) if line.split()[:2] == ["job", "count"])
    rows = []
    for line in lines[start + 2:]:
        if not line.strip() or line.split()[0] == "total":
            break
        rows.append(line)
    return rows


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
