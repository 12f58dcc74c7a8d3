# Config validation, per-dataset settings and input functions shared by all rules.

import json
from pathlib import Path

import jsonschema
import yaml
from snakemake.utils import validate

SCHEMA = Path(workflow.basedir) / "schemas" / "config.schema.yaml"
SECTIONS = ("simulate", "convert", "prepare", "train", "render", "baselines")
METHODS = ("dinr", "fbp_sliding", "fbp_static")


validate(config, str(SCHEMA))


def _section_schema(section):
    return yaml.safe_load(SCHEMA.read_text())["$defs"][section]


def dataset_settings(dataset, section):
    """The section's settings for a dataset: global section, then the dataset's overrides,
    checked against the section schema (errors name datasets.<name>.<section>.<key>)."""
    merged = {**config[section], **config["datasets"][dataset].get(section, {})}
    try:
        jsonschema.validate(merged, _section_schema(section))
    except jsonschema.ValidationError as err:
        where = ".".join(["datasets", dataset, section, *map(str, err.absolute_path)])
        raise ValueError(f"config key {where}: {err.message}") from None
    return merged


for _name in config["datasets"]:
    for _section in SECTIONS:
        dataset_settings(_name, _section)


wildcard_constraints:
    dataset="|".join(config["datasets"]),
    section="|".join(SECTIONS),
    mode="static|sliding",


def is_simulated(dataset):
    return config["datasets"][dataset].get("simulated", False)


def raw_scan(wildcards):
    if is_simulated(wildcards.dataset):
        return f"results/{wildcards.dataset}/raw/scan.h5"
    return config["datasets"][wildcards.dataset]["raw"]


def truth_file(dataset):
    """The dataset's ground truth, or None."""
    if is_simulated(dataset):
        return f"results/{dataset}/raw/truth.h5"
    return config["datasets"][dataset].get("truth")


def truth_input(wildcards):
    truth = truth_file(wildcards.dataset)
    return [truth] if truth else []


def truth_option(wildcards, input):
    return f"--truth {input.truth}" if input.truth else ""


def settings_file(section):
    return f"results/{{dataset}}/settings/{section}.json"


def stage_benchmarks(wildcards):
    stages = ["convert", "prepare", "train", "render", "fbp_static", "fbp_sliding"]
    if is_simulated(wildcards.dataset):
        stages.insert(0, "simulate")
    return [f"results/{wildcards.dataset}/benchmarks/{s}.tsv" for s in stages]


RECONS = {m: f"results/{{dataset}}/{m}/recon.h5" for m in METHODS}


def recon_option(wildcards, input):
    return " ".join(f"{m}={input[m]}" for m in METHODS)


def all_outputs():
    return expand(
        [
            "results/{dataset}/metrics.json",
            "results/{dataset}/figures/slices.png",
        ],
        dataset=config["datasets"],
    )
