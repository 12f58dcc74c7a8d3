"""The config schema: defaults are filled, and errors name the offending key."""

from __future__ import annotations

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
