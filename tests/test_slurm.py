"""The demo DAG through ``snakemake --profile profiles/slurm`` on a one-node Slurm
cluster started on this machine, up to the metrics (every stage that computes: simulate,
prepare, baselines, training, rendering, evaluation; the figures, movies and exports,
one process each, run in the local DAG test): training must run as one 2-task ``srun``
step."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from conftest import REPO
from dinr.train.checkpoint import load_checkpoint
from slurm_cluster import LocalSlurm


@pytest.fixture
def slurm(tmp_path: Path) -> Iterator[LocalSlurm]:
    if not LocalSlurm.available():
        if os.geteuid() == 0 and shutil.which("apt-get"):
            pytest.fail("Slurm is missing although it can be installed: run `make test`, which installs it")
        pytest.skip("Slurm is not installed and cannot be without root and apt-get")
    if os.geteuid() != 0:
        pytest.skip("the local Slurm cluster runs its daemons as root")
    if LocalSlurm.site_configured():
        pytest.skip("this machine has its own Slurm configuration; run the workflow on it with the profile instead")
    cluster = LocalSlurm(tmp_path / "slurm")
    cluster.start()
    try:
        yield cluster
    finally:
        cluster.stop()


def profile_for_this_node(target: Path) -> Path:
    """``profiles/slurm`` as a site would adapt it to a 2-core node without GPUs: only
    sizes change (no GPUs, 1 CPU per task, less memory); executor, launcher and tasks stay."""
    profile = yaml.safe_load((REPO / "profiles" / "slurm" / "config.yaml").read_text())
    profile["default-resources"].update(mem_mb=1000, runtime=10)
    for resources in profile["set-resources"].values():
        resources.update(gpu=0, cpus_per_task=1, mem_mb_per_cpu=1000)
    profile.update({"slurm-status-command": "squeue", "slurm-no-account": True,
                    "slurm-init-seconds-before-status-checks": 1, "seconds-between-status-checks": 2, "jobs": 2})
    target.mkdir(parents=True)
    (target / "config.yaml").write_text(yaml.safe_dump(profile))
    return target


@pytest.mark.slow
def test_demo_dag_runs_under_slurm_with_two_task_training(slurm: LocalSlurm, tmp_path: Path) -> None:
    workdir = tmp_path / "work"
    workdir.mkdir()
    shutil.copy(REPO / ".test" / "config.yaml", workdir / "config.yaml")
    config = yaml.safe_load((workdir / "config.yaml").read_text())
    dataset = next(iter(config["datasets"]))
    env = {**slurm.env, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    result = subprocess.run(
        [sys.executable, "-m", "snakemake", f"results/{dataset}/metrics.json", "-s", str(REPO / "workflow" / "Snakefile"),
         "--directory", str(workdir), "--profile", str(profile_for_this_node(tmp_path / "profile")),
         "--configfile", str(workdir / "config.yaml")],
        capture_output=True, text=True, timeout=900, env=env,
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    launch = load_checkpoint(workdir / f"results/{dataset}/dinr/model.pt").launch
    assert launch["ranks"] == "2" and launch["slurm_step_num_tasks"] == "2", launch
    assert "slurm_job_id" in launch
    metrics = json.loads((workdir / f"results/{dataset}/metrics.json").read_text())
    assert metrics["methods"]["dinr"]["psnr_mean"] > 15
