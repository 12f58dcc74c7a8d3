"""The config schema: defaults are filled, and errors name the offending key."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from snakemake.exceptions import WorkflowError
from snakemake.utils import validate

from conftest import REPO, TINY_TRAIN

SCHEMA = str(REPO / "workflow" / "schemas" / "config.schema.yaml")


def test_default_config_is_valid_and_defaults_cover_every_setting() -> None:
    config = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    validate(config, SCHEMA)
    assert set(config["train"]) == set(TINY_TRAIN.__dataclass_fields__)
    assert config["train"]["encoding"] == "hashgrid"


def test_schema_error_names_the_key() -> None:
    config = {"datasets": {"demo": {"simulated": True}}, "train": {"batch_rays": 0}}
    with pytest.raises(WorkflowError, match="batch_rays"):
        validate(config, SCHEMA)


def test_photons_beyond_the_16_bit_counts_are_refused_naming_the_key() -> None:
    config = {"datasets": {"demo": {"simulated": True}}, "simulate": {"photons": 100000}}
    with pytest.raises(WorkflowError, match="photons"):
        validate(config, SCHEMA)


def test_dataset_override_error_names_dataset_section_and_key(tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump({"datasets": {"scan": {"raw": "x.h5", "train": {"lr": -1}}}}))
    result = subprocess.run(
        [sys.executable, "-m", "snakemake", "-n", "--cores", "1", "-s", str(REPO / "workflow" / "Snakefile"),
         "--directory", str(tmp_path), "--configfile", str(config)],
        capture_output=True, text=True, timeout=120,
    )
    assert result.returncode != 0
    assert "datasets.scan.train.lr" in result.stdout + result.stderr


def _dry_run(workdir: Path, config: dict, *args: str) -> subprocess.CompletedProcess[str]:
    (workdir / "config.yaml").write_text(yaml.safe_dump(config, allow_unicode=True))
    return subprocess.run(
        [sys.executable, "-m", "snakemake", "-n", "-s", str(REPO / "workflow" / "Snakefile"),
         "--directory", str(workdir), *args, "--configfile", str(workdir / "config.yaml")],
        capture_output=True, text=True, timeout=120,
    )


@pytest.mark.parametrize("name", ["run 1.v2", "scan/1", ".hidden", "Messung_ä"])
def test_a_dataset_name_outside_the_pattern_stops_naming_the_key(tmp_path: Path, name: str) -> None:
    result = _dry_run(tmp_path, {"datasets": {name: {"raw": "x.h5"}}}, "--cores", "1")
    assert result.returncode != 0
    assert f"config key datasets.{name!r}" in result.stdout + result.stderr
    assert "letters, digits, '.', '_' and '-'" in result.stdout + result.stderr


def test_slurm_profile_sizes_every_job_from_the_config(tmp_path: Path) -> None:
    """A dry run with the Slurm profile: the cores, ranks, nodes and GPUs printed for
    each job are those of the config's resources section (the profile sets none)."""
    config = yaml.safe_load((REPO / ".test" / "config.yaml").read_text())
    config["resources"].update(train_tasks=4, train_cpus_per_task=3, train_nodes=1, gpus_per_task=1,
                               baseline_threads=8)
    # A dry run caps threads at --cores (1 when not given); a real run under the profile does not.
    result = _dry_run(tmp_path, config, "--profile", str(REPO / "profiles" / "slurm"), "--cores", "64")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    jobs = {}
    for block in result.stdout.split("\nrule ")[1:]:
        jobs.setdefault(block.split(":", 1)[0], []).append(block)
    for block in jobs["train"] + jobs["render"]:
        assert "tasks=4, cpus_per_task=3, nodes=1, gpu=4, tasks_per_gpu=1" in block, block
        assert "threads: 12" in block and "srun --mpi=pmi2 -n 4 dinr" in block, block
    fbp = [block for block in jobs["baseline"] if "--method fbp_" in block]
    assert len(fbp) == 2 and all("threads: 8" in block and "--threads 8" in block for block in fbp), fbp
    for rule in ("simulate", "convert", "prepare", "baseline", "train", "render", "evaluate", "figures"):
        assert all("runtime=" in block for block in jobs[rule]), rule


def test_the_workflows_schema_is_the_packages() -> None:
    """The workflow validates with its schema, the package's stages fill defaults from
    theirs: the package's is a link to the workflow's (an editor that replaces the link
    by a copy lets the two drift apart)."""
    packaged = REPO / "src" / "dinr" / "schemas" / "config.schema.yaml"
    assert packaged.is_symlink(), f"{packaged} must stay a link to {SCHEMA}"
    assert Path(SCHEMA).read_bytes() == packaged.read_bytes(), f"{SCHEMA} and {packaged} differ"


def test_sliding_mbir_makes_frames_in_as_many_processes_as_its_memory_holds(tmp_path: Path) -> None:
    scan = {"simulated": True, "baselines": {"methods": ["mbir_sliding"]}}

    def threads(mbir_mem_gb: float) -> list[str]:
        result = _dry_run(tmp_path, {"datasets": {"scan": scan}, "resources": {"mbir_mem_gb": mbir_mem_gb}},
                          "--cores", "2", "results/scan/mbir_sliding/recon.h5")
        assert result.returncode == 0, (result.stdout + result.stderr)[-3000:]
        job = re.search(r"output: results/scan/mbir_sliding/recon.h5\n(.*?)resources:", result.stdout + result.stderr,
                        re.DOTALL)
        assert job is not None, result.stdout + result.stderr
        return re.findall(r"threads: (\d+)", job.group(1)) or ["1"]  # snakemake leaves one thread out

    # the 64-pixel scan: about 1.0 GiB in one process, 3.0 GiB with two beside the job's own
    assert threads(64) == ["2"] and threads(2) == ["1"]


def test_an_mbir_peer_too_large_for_its_memory_is_left_out_naming_the_key(tmp_path: Path) -> None:
    big = {"simulated": True, "simulate": {"size": 2048, "rows": 256, "views": 1800},
           "baselines": {"methods": ["mbir_sliding", "mace4d", "fbp_sliding"]}}
    small = {"simulated": True, "baselines": {"methods": ["mbir_sliding"]}}
    result = _dry_run(tmp_path, {"datasets": {"big": big, "small": small}}, "--cores", "1",
                      "results/big/metrics.json", "results/small/metrics.json")
    out = result.stdout + result.stderr
    assert result.returncode == 0, out[-3000:]
    assert "datasets.big: baselines.methods mbir_sliding left out" in out and "resources.mbir_mem_gb (64 GiB)" in out
    assert "datasets.big: baselines.methods mace4d left out" in out
    jobs = re.findall(r"wildcards: dataset=(\w+), baseline=(\w+)", out)
    assert ("big", "fbp_sliding") in jobs and ("small", "mbir_sliding") in jobs
    assert ("big", "mbir_sliding") not in jobs and ("big", "mace4d") not in jobs
    roomy = _dry_run(tmp_path, {"datasets": {"big": big}, "resources": {"mbir_mem_gb": 512}}, "--cores", "1",
                     "results/big/metrics.json")
    assert ("big", "mace4d") in re.findall(r"wildcards: dataset=(\w+), baseline=(\w+)", roomy.stdout)
