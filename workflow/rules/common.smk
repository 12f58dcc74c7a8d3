# Config validation, per-dataset settings and input functions shared by all rules.

import json
from pathlib import Path

import jsonschema
import yaml
from snakemake.utils import validate

SCHEMA = Path(workflow.basedir) / "schemas" / "config.schema.yaml"
# The config sections are the schema's $defs (dinr.settings reads the same list).
SECTION_SCHEMAS = yaml.safe_load(SCHEMA.read_text())["$defs"]
SECTIONS = tuple(SECTION_SCHEMAS)
BASELINES = tuple(SECTION_SCHEMAS["baselines"]["properties"]["methods"]["items"]["enum"])
MBIR_BASELINES = ("mbir_sliding", "mace4d")  # dinr.baselines.mbir.MBIR_METHODS


validate(config, str(SCHEMA))


def _section_schema(section):
    return SECTION_SCHEMAS[section]


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
    baseline="|".join(BASELINES),


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


def frame_times_input(wildcards):
    """Every method is reconstructed at the frame times of the ground truth when there is
    one (its /time), else at render.frames evenly spaced times."""
    return {"frame_times": truth_input(wildcards)}


def frame_times_option(wildcards, input):
    return f"--frame-times {input.frame_times}" if input.frame_times else ""


def frame_count(wildcards):
    """Frames of every method's 4D result without ground truth (the render section's)."""
    return dataset_settings(wildcards.dataset, "render")["frames"]


def truth_option(wildcards, input):
    return f"--truth {input.truth}" if input.truth else ""


def settings_file(section):
    return f"results/{{dataset}}/settings/{section}.json"


def stage_benchmarks(wildcards):
    stages = ["convert", "prepare", "train", "render", *dataset_settings(wildcards.dataset, "baselines")["methods"]]
    if is_simulated(wildcards.dataset):
        stages.insert(0, "simulate")
    return [f"results/{wildcards.dataset}/benchmarks/{s}.tsv" for s in stages]


def dataset_methods(dataset):
    """DINR and the dataset's baselines.methods, in the order of tables and figures."""
    return ("dinr", *dataset_settings(dataset, "baselines")["methods"])


def recon_inputs(wildcards):
    """The dataset's ground truth (if any) and every method's reconstruction."""
    recons = {m: f"results/{wildcards.dataset}/{m}/recon.h5" for m in dataset_methods(wildcards.dataset)}
    return {"truth": truth_input(wildcards), **recons}


def recon_option(wildcards, input):
    return " ".join(f"{m}={input[m]}" for m in dataset_methods(wildcards.dataset))


# --- memory each job asks for (mem_mb), from its input's size -----------------------------
# A Python process with numpy, h5py, torch and the reconstruction libraries loaded.
PROCESS_MB = 1024


def chunk_mb():
    return config["resources"]["chunk_mb"]


def chunk_option(wildcards):
    return f"--chunk-mb {chunk_mb()}"


def streaming_mem_mb(wildcards, input):
    """convert, prepare, FBP, evaluate and figures stream through the scan in blocks of
    resources.chunk_mb: one process plus twice a block (the block's working copies),
    or twice the input when that is smaller."""
    return int(PROCESS_MB + 2 * min(input.size_mb, chunk_mb()))


def baseline_threads(wildcards):
    """Cores a baseline job holds: resources.baseline_threads for FBP and FDK, which
    reconstruct that many slices at once; one for the MBIR peers, whose JAX then runs on
    one CPU device (several gain little here: two devices kept 1.1 cores busy)."""
    if wildcards.baseline in MBIR_BASELINES:
        return 1
    return config["resources"]["baseline_threads"]


def baseline_mem_mb(wildcards, input):
    """FBP streams (streaming_mem_mb); the MBIR and FDK peers take the scan whole and
    hold several 4D volumes of about its size."""
    if wildcards.baseline.startswith("fbp_"):
        return streaming_mem_mb(wildcards, input)
    return int(PROCESS_MB + 8 * input.size_mb)


def model_mb(dataset):
    """The field's parameters with their gradients and Adam's two moments (float32): the
    hash grid's tables at most (levels x 2**log2_table x features entries)."""
    train = dataset_settings(dataset, "train")
    entries = train["hash_levels"] * 2 ** train["hash_log2_table"] * train["hash_features"]
    return 4 * 4 * entries / 2**20


def train_mem_mb(wildcards, input):
    """Each of the train_tasks ranks holds its ray shards (the sinogram's size over the
    ranks, 1.5 times for a step's working set), the model and the process itself."""
    tasks = config["resources"]["train_tasks"]
    return int(tasks * (PROCESS_MB + model_mb(wildcards.dataset) + 1.5 * input.size_mb / tasks))


def render_mem_mb(wildcards, input):
    """Each rank holds the model (its file's size, twice: loaded and on the device) and
    a round of slices."""
    tasks = config["resources"]["train_tasks"]
    return int(tasks * (PROCESS_MB + 2 * Path(input.model).stat().st_size / 2**20))


def simulate_mem_mb(wildcards):
    """The simulator holds the scan's counts, its truth and their float64 working copies."""
    sim = dataset_settings(wildcards.dataset, "simulate")
    scan_mb = sim["views"] * sim["rows"] * sim["size"] * 4 / 2**20
    truth_mb = sim["frames"] * sim["rows"] * sim["size"] ** 2 * 4 / 2**20
    return int(PROCESS_MB + 3 * (scan_mb + truth_mb))


def paper_showcase():
    """The dataset whose time to quality and movie the paper shows: the config's first."""
    return next(iter(config["datasets"]))


def all_outputs():
    return expand(
        [
            "results/{dataset}/metrics.json",
            "results/{dataset}/figures/slices.png",
        ],
        dataset=config["datasets"],
    )
