# Config validation, per-dataset settings and input functions shared by all rules.

import functools
import importlib.util
import math
import re
import shlex
import sys
from pathlib import Path

import jsonschema
import yaml
from snakemake.utils import validate

SCHEMA = Path(workflow.basedir) / "schemas" / "config.schema.yaml"
SCHEMA_DOCUMENT = yaml.safe_load(SCHEMA.read_text())
# The config sections are the schema's $defs (dinr.settings reads the same list).
SECTION_SCHEMAS = SCHEMA_DOCUMENT["$defs"]
SECTIONS = tuple(name for name in SECTION_SCHEMAS if name in SCHEMA_DOCUMENT["properties"])
BASELINES = tuple(SECTION_SCHEMAS["baselines"]["properties"]["methods"]["items"]["enum"])
MBIR_BASELINES = ("mbir_sliding", "mace4d")  # dinr.baselines.mbir.MBIR_METHODS
DATASET_NAME = SCHEMA_DOCUMENT["properties"]["datasets"]["propertyNames"]["pattern"]


def check_dataset_names(datasets, key="datasets"):
    """Dataset (and rendering) names become folder names, wildcards and command-line
    words: letters, digits, '.', '_' and '-', starting with a letter or digit
    (config/README.md); ``key`` is where the names are in the config."""
    for name in datasets or {}:
        if not isinstance(name, str) or not re.fullmatch(DATASET_NAME, name):
            raise ValueError(
                f"config key {key}.{name!r}: a name may hold only letters, digits, '.', '_' and '-', "
                f"and must start with a letter or digit (pattern {DATASET_NAME}); rename it, e.g. "
                f"{re.sub('[^A-Za-z0-9._-]', '_', str(name)).lstrip('._-') or 'scan'!r}"
            )


check_dataset_names(config.get("datasets"))
check_dataset_names(config.get("renderings"), "renderings")
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


def is_simulated(dataset):
    return config["datasets"][dataset].get("simulated", False)


# Renderings every dataset gets for its movies: the middle slice and the vertical cut
# through the axis, at four times the frame rate of the metric frames.
MOVIE_PLANES = ("axial", "vertical")


def metric_frames(dataset):
    """Frames of the metric volumes: the simulated truth's, a given truth's (its /time,
    read when the workflow's Python has h5py), else render.frames."""
    if is_simulated(dataset):
        return dataset_settings(dataset, "simulate")["frames"]
    truth = config["datasets"][dataset].get("truth")
    if truth and Path(truth).is_file():
        try:
            import h5py
        except ImportError:
            pass
        else:
            with h5py.File(truth, "r") as f:
                if "time" in f:
                    return len(f["time"])
    return dataset_settings(dataset, "render")["frames"]


def dataset_renderings(dataset):
    """Name -> request of every rendering of a dataset: the movies' planes, then the
    global renderings section, then the dataset's own (each over the schema defaults)."""
    movies = {f"movie_{plane}": {"plane": plane, "times": {"count": 4 * metric_frames(dataset)}}
              for plane in MOVIE_PLANES}
    requests = {**movies, **config.get("renderings", {}), **config["datasets"][dataset].get("renderings", {})}
    defaults = {key: spec["default"] for key, spec in SECTION_SCHEMAS["rendering"]["properties"].items()}
    resolved = {}
    for name, request in requests.items():
        merged = {**defaults, **request}
        try:
            jsonschema.validate(merged, _section_schema("rendering"))
        except jsonschema.ValidationError as err:
            where = ".".join(["datasets", dataset, "renderings", name, *map(str, err.absolute_path)])
            raise ValueError(f"config key {where}: {err.message}") from None
        resolved[name] = merged
    return resolved


def user_renderings(dataset):
    """The renderings the config asks for (not the movies' own)."""
    movies = {f"movie_{plane}" for plane in MOVIE_PLANES}
    return [name for name in dataset_renderings(dataset) if name not in movies]


for _name in config["datasets"]:
    check_dataset_names(config["datasets"][_name].get("renderings"), f"datasets.{_name}.renderings")
    for _section in SECTIONS:
        dataset_settings(_name, _section)
    dataset_renderings(_name)


def any_of(names):
    """A regular expression matching exactly one of ``names`` (each escaped: a '.' in a
    dataset name matches only a '.')."""
    return "|".join(re.escape(name) for name in names)


RENDERINGS = sorted({name for dataset in config["datasets"] for name in dataset_renderings(dataset)})


wildcard_constraints:
    dataset=any_of(config["datasets"]),
    section=any_of(SECTIONS),
    baseline=any_of(BASELINES),
    rendering=any_of(RENDERINGS),
    volume=any_of(["dinr", *BASELINES, *(f"renderings/{name}" for name in RENDERINGS)]),
    plane=any_of(MOVIE_PLANES),


def quoted(path):
    """``path`` as one shell word, whatever characters it holds."""
    return shlex.quote(str(path))


def _load_simulator_version():
    """dinr.sim.version, loaded by its path (standard library only), so that the
    workflow computes the simulator's version without importing the package."""
    source = Path(workflow.basedir).parent / "src" / "dinr" / "sim" / "version.py"
    spec = importlib.util.spec_from_file_location("dinr_simulator_version", source)
    version_module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(version_module)
    return version_module


SIMULATOR_VERSION = _load_simulator_version()


def settings_record(dataset, section):
    """What the settings file of a section holds: the dataset's settings, and for
    ``simulate`` the simulator's code version too, so a scan made by other simulator
    code is made again; ``rendering_<name>`` is one rendering's request."""
    if section.startswith("rendering_"):
        return dataset_renderings(dataset)[section.removeprefix("rendering_")]
    settings = dataset_settings(dataset, section)
    if section == "simulate":
        return {**settings, SIMULATOR_VERSION.VERSION_KEY: SIMULATOR_VERSION.simulator_version()}
    return settings


def method_settings(dataset, method):
    """The baselines section as one method's job reads it: ``methods`` is that method,
    and keys only other methods read (the schema's x-methods) stay at their defaults,
    so the job reruns only when its own keys change."""
    section = dataset_settings(dataset, "baselines")
    properties = SECTION_SCHEMAS["baselines"]["properties"]
    record = {}
    for key, value in section.items():
        readers = properties[key].get("x-methods")
        record[key] = value if readers is None or method in readers else properties[key]["default"]
    return {**record, "methods": [method]}


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
    return f"--frame-times {quoted(input.frame_times)}" if input.frame_times else ""


def frame_count(wildcards):
    """Frames of every method's 4D result without ground truth (the render section's)."""
    return dataset_settings(wildcards.dataset, "render")["frames"]


def truth_option(wildcards, input):
    return f"--truth {quoted(input.truth)}" if input.truth else ""


def settings_file(section):
    return f"results/{{dataset}}/settings/{section}.json"


def stage_benchmarks(wildcards):
    stages = ["convert", "prepare", "train", "render", *dataset_methods(wildcards.dataset)[1:]]
    if is_simulated(wildcards.dataset):
        stages.insert(0, "simulate")
    return [f"results/{wildcards.dataset}/benchmarks/{s}.tsv" for s in stages]


@functools.lru_cache(maxsize=None)
def scan_dimensions(dataset):
    """(views, rows, cols) of a dataset's scan before any job runs: a simulated scan's
    settings, a raw file's /exchange/data (its convert.rows and views kept) when the
    workflow's Python has h5py; None when neither tells. Read once per dataset (the
    input functions that ask run many times while the DAG is built)."""
    if is_simulated(dataset):
        sim = dataset_settings(dataset, "simulate")
        return sim["views"], sim["rows"], sim["size"]
    raw = Path(config["datasets"][dataset].get("raw", ""))
    if importlib.util.find_spec("h5py") is None or not raw.is_file():
        return None
    import h5py

    with h5py.File(raw, "r") as f:
        if "exchange/data" not in f:
            return None
        views, rows, cols = f["exchange/data"].shape
    convert = dataset_settings(dataset, "convert")
    if convert["views"]:
        views = min(views, convert["views"][1]) - convert["views"][0]
    if convert["rows"]:
        rows = min(rows, convert["rows"][1]) - convert["rows"][0]
    return views, rows, cols


#: What an MBIR peer holds, in frame volumes (rows x cols x cols float32), given the
#: frames and the processes reconstructing them: mbir_sliding the output frames and about
#: six volumes of mbirjax's working set in each process; mace4d its frames six times (the
#: joint estimate and its prior agents' states).
MBIR_FRAME_VOLUMES = {"mbir_sliding": lambda frames, workers: frames + 6 * workers,
                      "mace4d": lambda frames, workers: 6 * frames}


def mbir_mem_mb(dataset, method, workers=1):
    """MiB an MBIR peer holds on the dataset (the process, the scan, its volumes), its
    frames made by ``workers`` processes (beside the job's own when more than one, each
    with a copy of a window of the scan); None when the scan's size is not known before
    it is read."""
    dims = scan_dimensions(dataset)
    if dims is None:
        return None
    views, rows, cols = dims
    volumes = MBIR_FRAME_VOLUMES[method](metric_frames(dataset), workers) * rows * cols * cols
    processes = 1 if workers == 1 else 1 + workers
    return PROCESS_MB * processes + 4 * (volumes + 2 * workers * views * rows * cols) / 2**20


def mbir_sliding_workers(dataset):
    """Processes making sliding MBIR's frames: resources.baseline_threads, fewer when
    that many would hold more than resources.mbir_mem_gb (one JAX CPU device keeps about
    one core busy, so a frame per core)."""
    limit = 1024 * config["resources"]["mbir_mem_gb"]
    for workers in range(config["resources"]["baseline_threads"], 1, -1):
        need = mbir_mem_mb(dataset, "mbir_sliding", workers)
        if need is None or need <= limit:
            return workers
    return 1


_WARNED = set()


def dataset_methods(dataset):
    """DINR and the dataset's baselines.methods, in the order of tables and figures; an
    MBIR peer that would need more than resources.mbir_mem_gb is left out, with a
    warning that names the key."""
    methods = ["dinr"]
    for method in dataset_settings(dataset, "baselines")["methods"]:
        need = mbir_mem_mb(dataset, method) if method in MBIR_FRAME_VOLUMES else None
        limit = 1024 * config["resources"]["mbir_mem_gb"]
        if need is not None and need > limit:
            if (dataset, method) not in _WARNED:
                _WARNED.add((dataset, method))
                print(f"WARNING: datasets.{dataset}: baselines.methods {method} left out: mbirjax would hold about "
                      f"{need / 1024:.0f} GiB of this scan's volumes, more than resources.mbir_mem_gb "
                      f"({config['resources']['mbir_mem_gb']:g} GiB); raise that key on a node with more memory, "
                      "or compare with the FBP peers", file=sys.stderr)
            continue
        methods.append(method)
    return tuple(methods)


def recon_inputs(wildcards):
    """The dataset's ground truth (if any) and every method's reconstruction."""
    recons = {m: f"results/{wildcards.dataset}/{m}/recon.h5" for m in dataset_methods(wildcards.dataset)}
    return {"truth": truth_input(wildcards), **recons}


def recon_option(wildcards, input):
    return " ".join(quoted(f"{m}={input[m]}") for m in dataset_methods(wildcards.dataset))


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
    reconstruct that many slices at once, and for sliding MBIR, which makes that many
    frames at once (mbir_sliding_workers); one for MACE4D, whose JAX then runs on one CPU
    device (several gain little here: two devices kept 1.1 cores busy)."""
    if wildcards.baseline == "mbir_sliding":
        return mbir_sliding_workers(wildcards.dataset)
    if wildcards.baseline in MBIR_BASELINES:
        return 1
    return config["resources"]["baseline_threads"]


def baseline_mem_mb(wildcards, input):
    """FBP streams (streaming_mem_mb); the MBIR and FDK peers take the scan whole and
    hold several 4D volumes of about its size."""
    if wildcards.baseline.startswith("fbp_"):
        return streaming_mem_mb(wildcards, input)
    if wildcards.baseline in MBIR_FRAME_VOLUMES:
        need = mbir_mem_mb(wildcards.dataset, wildcards.baseline, baseline_threads(wildcards))
        if need is not None:
            return int(need)
    return int(PROCESS_MB + 8 * input.size_mb)


AUTO_TABLE_LOG2 = (20, 24)  # dinr.inr.build.AUTO_TABLE_LOG2


def auto_table_log2(sinogram):
    """train.hash_log2_table auto, from the prepared scan's shape (views, rows, columns)
    and rotation: the nodes of a level of one cell per pixel and up to two time cells per
    half-turn, within AUTO_TABLE_LOG2 (its upper bound while the scan is not prepared
    yet or h5py is missing)."""
    try:
        import h5py

        with h5py.File(sinogram, "r") as f:
            _, rows, cols = f["projections"].shape
            theta = f["theta"][()]
    except (ImportError, OSError, KeyError):
        return AUTO_TABLE_LOG2[1]
    half_turns = max(1, math.ceil((float(theta.max()) - float(theta.min())) / math.pi - 1e-6))
    nodes = (2 * half_turns + 3) * (cols + 3) ** 2 * (rows + 3)
    return min(AUTO_TABLE_LOG2[1], max(AUTO_TABLE_LOG2[0], math.ceil(math.log2(nodes))))


def model_mb(dataset, sinogram):
    """The field's parameters with their gradients and Adam's two moments (float32), and
    the parameters and moments of the best held-out evaluation kept beside them (host
    memory; a diverged run goes back to them): the tables of the 4D hash grid and of the
    static and slow ones beside it at most (levels x 2**log2_table x features entries
    each; hash_log2_table auto from the prepared scan ``sinogram``)."""
    train = dataset_settings(dataset, "train")
    levels = train["hash_levels"] + train["hash_static_levels"] + train["hash_slow_levels"]
    log2 = train["hash_log2_table"]
    log2 = auto_table_log2(sinogram) if log2 == "auto" else log2
    entries = levels * 2**log2 * train["hash_features"]
    return 7 * 4 * entries / 2**20


#: The warm start's window reconstructions on each rank (dinr.train.warm_start.MAX_VOXELS
#: float32 voxels, three arrays): counted unless train.initial is none.
WARM_START_MB = 3 * 2**26 * 4 / 2**20


def mpi_ranks_per_node():
    """MPI ranks of a training or render job on each of its resources.train_nodes nodes."""
    return math.ceil(config["resources"]["train_tasks"] / config["resources"]["train_nodes"])


def train_mem_mb(wildcards, input):
    """Each rank holds its ray shards (the sinogram's size over the ranks, 1.5 times for
    a step's working set), the model, the warm start's reconstructions (WARM_START_MB,
    before the first step) and the process itself; mem_mb is per node."""
    tasks = config["resources"]["train_tasks"]
    warm = 0 if dataset_settings(wildcards.dataset, "train")["initial"] == "none" else WARM_START_MB
    return int(mpi_ranks_per_node() * (PROCESS_MB + model_mb(wildcards.dataset, input.sinogram) + warm
                                       + 1.5 * input.size_mb / tasks))


def render_mem_mb(wildcards, input):
    """Each rank holds the model (its file's size, twice: loaded and on the device) and
    a round of slices; mem_mb is per node."""
    return int(mpi_ranks_per_node() * (PROCESS_MB + 2 * Path(input.model).stat().st_size / 2**20))


def mpi_threads():
    """Cores a training or render job holds: resources.train_cpus_per_task per rank."""
    return config["resources"]["train_tasks"] * config["resources"]["train_cpus_per_task"]


def mpi_gpus():
    """GPUs a training or render job asks for: resources.gpus_per_task per rank."""
    return config["resources"]["train_tasks"] * config["resources"]["gpus_per_task"]


def mpi_tasks_per_gpu():
    """Slurm's --ntasks-per-gpu: one rank per GPU (0, none asked for, without GPUs)."""
    return 1 if config["resources"]["gpus_per_task"] else 0


def simulate_mem_mb(wildcards):
    """The simulator holds the scan's counts, its truth and their float64 working copies."""
    sim = dataset_settings(wildcards.dataset, "simulate")
    scan_mb = sim["views"] * sim["rows"] * sim["size"] * 4 / 2**20
    truth_mb = sim["frames"] * sim["rows"] * sim["size"] ** 2 * 4 / 2**20
    return int(PROCESS_MB + 3 * (scan_mb + truth_mb))


# --- wall time each job asks for (runtime, minutes), from its input's size -----------------
# RUNTIME_MARGIN times what the work took on one core of the 2-core machine of README
# "Memory" (the 2048-column, 3.8 GB scan; the MBIR peers on the 64-pixel demo, whose
# cost grows faster than their input), and at least RUNTIME_FLOOR_MIN.
RUNTIME_FLOOR_MIN = 10
RUNTIME_MARGIN = 3
CORE_MIN_PER_GIB = {"convert": 0.15, "prepare": 0.7, "evaluate": 0.5, "figures": 0.5, "export": 1,
                    "fbp_sliding": 14, "fbp_static": 55, "fdk_sliding": 14, "fdk_static": 14,
                    "mbir_sliding": 1400, "mace4d": 2900}
SIMULATE_CORE_MIN_PER_GIB = 60  # of the scan's counts and truth (demo: 22 s for 1.5 + 2 MiB)
TRAIN_SAMPLES_PER_CORE_S = 2.6e5  # field evaluations with backward (demo: 2.3e8 in 432 s on 2 cores)
RENDER_VOXELS_PER_CORE_S = 1.2e6  # rendered voxels (large scan: 2.1e9 in 899 s on 2 cores)


def _minutes(core_minutes, cores):
    return int(RUNTIME_FLOOR_MIN + math.ceil(RUNTIME_MARGIN * core_minutes / cores))


def runtime_min(stage):
    """runtime for a streaming stage, growing with its input's size like mem_mb."""
    def runtime(wildcards, input, threads):
        return _minutes(CORE_MIN_PER_GIB[stage] * input.size_mb / 1024, threads)
    return runtime


def baseline_runtime_min(wildcards, input, threads):
    return _minutes(CORE_MIN_PER_GIB[wildcards.baseline] * input.size_mb / 1024, threads)


def simulate_runtime_min(wildcards):
    """The simulator's work grows with the scan's counts and its truth (simulate_mem_mb)."""
    sim = dataset_settings(wildcards.dataset, "simulate")
    values = sim["views"] * sim["rows"] * sim["size"] + sim["frames"] * sim["rows"] * sim["size"] ** 2
    return _minutes(SIMULATE_CORE_MIN_PER_GIB * values * 4 / 2**30, 1)


def scan_shape(sinogram, size_mb):
    """(views, rows, cols) of a prepared scan, read with h5py when the workflow's Python
    has it, else taken as a cube of the file's float32 values."""
    try:
        import h5py
    except ImportError:
        side = round((size_mb * 2**20 / 4) ** (1 / 3))
        return side, side, side
    with h5py.File(sinogram, "r") as f:
        return f["projections"].shape


def train_runtime_min(wildcards, input, threads):
    """Rays trained on x samples a ray, on the job's cores (samples: one per detector
    column under samples_per_ray auto; rays: steps x rays a step, or under steps auto
    the cap of max_epochs passes over every ray of the scan, and under
    time_cells_per_half_turn auto the pilot that loses)."""
    train = dataset_settings(wildcards.dataset, "train")
    views, rows, cols = scan_shape(input.sinogram, input.size_mb)
    samples = cols if train["samples_per_ray"] == "auto" else train["samples_per_ray"]
    shards = config["resources"]["train_tasks"] if train["ray_shards"] == "auto" else train["ray_shards"]
    if train["steps"] == "auto":
        epoch = views * rows * cols
        pilot = (min(train["time_cells_pilot_epochs"] * epoch, train["time_cells_pilot_rays"])
                 if train["time_cells_per_half_turn"] == "auto" else 0)
        rays = train["max_epochs"] * epoch + pilot
    else:
        rays = train["steps"] * train["batch_rays"] * shards
    evaluations = rays * samples
    return _minutes(evaluations / TRAIN_SAMPLES_PER_CORE_S / 60, threads)


def render_runtime_min(wildcards, input, threads):
    """Frames x slices x pixels x supersampling, on the job's cores."""
    render = dataset_settings(wildcards.dataset, "render")
    _, rows, cols = scan_shape(input.sinogram, input.size_mb)
    voxels = metric_frames(wildcards.dataset) * rows * cols**2 * render["supersample"] ** 2
    return _minutes(voxels / RENDER_VOXELS_PER_CORE_S / 60, threads)


def request_runtime_min(wildcards, input, threads):
    """A rendering request's instants x voxels x supersampling, on the job's cores."""
    request = dataset_renderings(wildcards.dataset)[wildcards.rendering]
    _, rows, cols = scan_shape(input.sinogram, input.size_mb)
    times = request["times"]
    if isinstance(times, list):
        instants = len(times)
    elif "count" in times:
        instants = times["count"]
    else:  # a rate over at most the scan: bounded by the instants the rule allows
        instants = 100_000
    box = (request["region"] or {})
    extent = [abs(box[axis][1] - box[axis][0]) if axis in box and box.get("units", "voxels") == "voxels" else full
              for axis, full in (("z", rows), ("y", cols), ("x", cols))]
    if request["plane"] != "volume":
        extent[0 if request["plane"] == "axial" else 1] = 1 / request["upsample"]
    voxels = math.prod(extent) * request["upsample"] ** 3 * request["supersample"] ** 2
    return _minutes(instants * voxels / RENDER_VOXELS_PER_CORE_S / 60, threads)


def export_options(wildcards, output):
    """``dinr export``'s outputs in the export folder, as render.exports asks."""
    formats = dataset_settings(wildcards.dataset, "render")["exports"]
    names = {"ome_zarr": f"--zarr {quoted(Path(output[0]) / 'recon.ome.zarr')}",
             "tiff": f"--tiff {quoted(Path(output[0]) / 'recon.tif')}"}
    return " ".join(names[f] for f in formats)


def paper_showcase():
    """The dataset whose time to quality and movie the paper shows: the config's first."""
    return next(iter(config["datasets"]))


def export_folders(dataset):
    """The export folders of DINR's volume and of the config's renderings (none when
    render.exports is empty)."""
    if not dataset_settings(dataset, "render")["exports"]:
        return []
    volumes = ["dinr", *(f"renderings/{name}" for name in user_renderings(dataset))]
    return [f"results/{dataset}/{volume}/export" for volume in volumes]


def dataset_outputs(dataset):
    """Every output of one dataset: metrics, figures, movies, renderings and exports."""
    return [f"results/{dataset}/metrics.json", f"results/{dataset}/figures/slices.png",
            *(f"results/{dataset}/figures/movie_{plane}.gif" for plane in MOVIE_PLANES),
            *(f"results/{dataset}/renderings/{name}/recon.h5" for name in user_renderings(dataset)),
            *export_folders(dataset)]


def all_outputs():
    return [f"results/{dataset}/outputs.txt" for dataset in config["datasets"]]
