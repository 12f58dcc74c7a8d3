"""The paper target: its DAG, its tables, and DINR's quality against wall time from
training snapshots."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import REPO, TINY_TRAIN
from dinr.evaluate.paper import latex_table, markdown_table
from dinr.evaluate.time_to_quality import overtaking, snapshot_curve
from dinr.io.benchmarks import with_seconds_trained
from dinr.io.canonical import read_sinogram, read_noise_variance
from dinr.io.volume import read_volume
from dinr.train import loop
from dinr.train.comm import Communicator
from dinr.train.snapshots import load_snapshots


def test_a_resumed_training_reports_the_seconds_of_every_attempt() -> None:
    """The training's benchmark times its last job only; the model's summed seconds win
    where they are larger (a run resumed after a kill), the benchmark where the run went
    straight through (it also holds the process's start); other stages are untouched."""
    resumed = with_seconds_trained({"train": 44.0, "render": 3.0, "mbir_sliding": 400.0}, 1626.0)
    assert resumed == {"train": 1626.0, "render": 3.0, "mbir_sliding": 400.0}
    assert with_seconds_trained({"train": 656.0, "render": 3.0}, 650.0)["train"] == 656.0
    assert with_seconds_trained({"mbir_sliding": 5.0}, 9.0) == {"mbir_sliding": 5.0}


def test_paper_dag_builds() -> None:
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    result = subprocess.run(
        [sys.executable, "-m", "snakemake", "-n", "--cores", "2", "paper", "--configfile", "config/paper.yaml"],
        capture_output=True, text=True, timeout=300, env=env, cwd=REPO,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    for rule in ("paper_tables", "paper_showcase", "paper_slices"):
        assert rule in result.stdout or "Nothing to be done" in result.stdout


def _report(dataset: str, psnr: dict[str, float]) -> dict[str, object]:
    return {"dataset": dataset,
            "methods": {m: {"psnr_mean": p, "ssim_mean": p / 40} for m, p in psnr.items()},
            "wall_s": {"train": 100.0, "render": 5.0, **{m: 50.0 for m in psnr if m != "dinr"}}}


def test_tables_bold_the_best_method_per_scan() -> None:
    reports = [_report("demo", {"dinr": 33.0, "mbir_sliding": 31.5, "fbp_static": 24.0}),
               _report("other_scan", {"dinr": 30.0, "mbir_sliding": 30.5, "fbp_static": 22.0})]
    md = markdown_table(reports).splitlines()
    assert "**33.00 / 0.825 (105 s)**" in md[2] and "**30.50 / 0.762 (50 s)**" in md[3]
    tex = latex_table(reports)
    assert r"\textbf{33.00}" in tex and r"\textbf{30.50}" in tex and r"other\_scan" in tex
    assert tex.count(r"\\") == 4  # two header lines, two scans


def test_snapshots_score_a_field_that_improves_with_training(tiny_scan: dict[str, Path], tmp_path: Path) -> None:
    settings = dataclasses.replace(TINY_TRAIN, steps=60, checkpoint_every=1000)
    shards = {0: read_sinogram(tiny_scan["sinogram"])}
    noise = read_noise_variance(tiny_scan["sinogram"], True)
    state = loop.train(settings, shards, 1, noise, tmp_path / "ck.pt", Communicator(use_mpi=False),
                       snapshot_dir=tmp_path / "snapshots", snapshot_every=20)
    snapshots = load_snapshots(tmp_path / "snapshots")
    assert [s["step"] for s in snapshots] == [20, 40, 60]
    assert np.all(np.diff([s["elapsed_s"] for s in snapshots]) > 0)
    for name, tensor in state.model.items():  # the last snapshot is the final field
        assert torch.equal(tensor, snapshots[-1]["model"][name])
    truth, times = read_volume(tiny_scan["truth"], name="truth")
    curve = snapshot_curve(state, snapshots, truth, shards[0].normalised_time(times), chunk=4096)
    assert curve[-1]["psnr"] > curve[0]["psnr"] + 1.0, curve
    assert all(point["psnr_worst"] <= point["psnr"] for point in curve), curve
    peers = {"weak": {"psnr": curve[0]["psnr"] - 1.0, "wall_s": 1.0},
             "strong": {"psnr": curve[-1]["psnr"] + 1.0, "wall_s": 1.0}}
    assert overtaking(curve, peers) == {"weak": curve[0]["elapsed_s"], "strong": None}


def test_the_snapshots_clock_counts_the_seconds_before_a_resume_and_the_losing_pilots(
        tiny_scan: dict[str, Path], tmp_path: Path) -> None:
    """A run resumed with snapshots (here: a finished one, whose last field is snapshot
    again) starts its clock at the seconds it had trained, not at 0; the quality curve adds
    the seconds of the time-cell pilots that lost, which ran before the run went on."""
    settings = dataclasses.replace(TINY_TRAIN, steps=40, checkpoint_every=1000)
    shards = {0: read_sinogram(tiny_scan["sinogram"])}
    noise = read_noise_variance(tiny_scan["sinogram"], True)
    comm = Communicator(use_mpi=False)
    first = loop.train(settings, shards, 1, noise, tmp_path / "ck.pt", comm)
    again = loop.train(settings, shards, 1, noise, tmp_path / "ck.pt", comm, snapshot_dir=tmp_path / "snapshots",
                       snapshot_every=20)
    snapshots = load_snapshots(tmp_path / "snapshots")
    assert [s["step"] for s in snapshots] == [40]
    assert snapshots[0]["elapsed_s"] == pytest.approx(again.train_seconds)
    assert again.train_seconds >= first.train_seconds > 0
    pilots = {"chosen": 1, "candidates": [{"time_cells_per_half_turn": 1, "train_seconds": 1.0},
                                          {"time_cells_per_half_turn": 2, "train_seconds": 50.0}]}
    truth, times = read_volume(tiny_scan["truth"], name="truth")
    curve = snapshot_curve(dataclasses.replace(again, pilots=pilots), snapshots, truth,
                           shards[0].normalised_time(times), chunk=4096)
    assert curve[0]["elapsed_s"] == pytest.approx(snapshots[0]["elapsed_s"] + 50.0)
