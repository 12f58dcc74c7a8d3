"""DINR's quality against training time at three scan widths, beside the MBIR peer's.

    python bench/size.py --out bench/results/size.json                      # every scan, defaults
    python bench/size.py --datasets size_128 --variants table_x4 batch_x4   # one key at a time
    python bench/size.py --config config/paper.yaml --datasets wide_parallel --methods mbir_sliding fbp_sliding

The scans are those of ``config/size.yaml`` (or of ``--config``, e.g. the paper's
128-pixel scans): one object and motion at 64, 128 and 256 pixels across, views in
proportion to the width. The workflow (``snakemake``) simulates
and prepares each scan and runs its peers (sliding-window MBIR and FBP, Snakemake's
benchmark giving their wall time); this script then trains DINR on the prepared views
itself (``mpiexec -n --ranks dinr train``, every key at its default unless a variant
changes one), keeping snapshots of the field, and scores each snapshot and every peer
against the truth (mean, worst frame). Training is capped at ``--cap-factor`` times the
MBIR peer's wall time and ``--max-cap-s`` (``train.max_wall_s``); ``steps: auto`` may
stop it sooner. ``--base`` keys apply to every variant: by default one time cell per
half-turn, the first candidate of ``time_cells_per_half_turn: auto`` and what the runs
before that rule trained with; ``auto``'s two pilots of 2 epochs each would take the cap
(``--base '{}'`` keeps it).

For each (scan, variant) it records the PSNR / SSIM curve against training seconds,
when DINR first reaches the peer's mean PSNR (and that time over the peer's), the rays
of an epoch, the steps and epochs trained, why training stopped and the model's size.
Results accumulate in the JSON (a run replaces only its own (scan, variant) entries, each
with its provenance: training settings, versions, git commit);
the Markdown table beside it and ``dinr paper``'s size figure are made from it. Times
are those of this machine, with the peer and DINR on the same cores: compare ratios.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import yaml

HERE = Path(__file__).resolve()
REPO = HERE.parents[1]
CONFIG = REPO / "config" / "size.yaml"
sys.path.insert(0, str(HERE.parent))
from distributed import launcher, machine  # noqa: E402
from generalisation import train_keys  # noqa: E402

#: Half the quadrature points per ray of the default (one per pixel of the diameter).
HALF_SAMPLES: dict[str, object] = {"samples_per_ray": lambda columns: columns // 2}
#: instant-NGP's Adam (PyTorch's, the defaults: 0.999, 1e-8).
INSTANT_NGP_ADAM: dict[str, object] = {"adam_beta2": 0.99, "adam_eps": 1e-15}

#: Training keys changed one at a time against the defaults (``default``: none); a value
#: may be a function of the scan's width in pixels.
VARIANTS: dict[str, dict[str, object]] = {
    "default": {},
    "initial_none": {"initial": "none"},
    "initial_fbp": {"initial": "fbp"},
    "epoch_spaced": {"validate_every_rays": 10**12},  # held-out evaluations every 0.2 epoch, however many steps
    "table_x4": {"hash_log2_table": 22},  # 4x the fixed 2^20 of the runs before hash_log2_table auto
    "table_2e20": {"hash_log2_table": 20},  # the fixed table before auto
    "batch_x4": {"batch_rays": 2048, "lr": 0.02},
    "samples_half": HALF_SAMPLES,
    "coarse_start": {"coarse_samples": "auto"},
    "width_x2": {"width": 128},
    "adam_ngp": INSTANT_NGP_ADAM,
    "adam_ngp_samples_half": {**INSTANT_NGP_ADAM, **HALF_SAMPLES},
    "lr_x2": {"lr": 0.02},  # twice the learning rate of the runs before 2026-12-03 (the default since)
    "lr_001": {"lr": 0.01},  # the learning rate of the runs before 2026-12-03
}
#: Training keys of every variant unless ``--base`` says otherwise.
BASE = "{time_cells_per_half_turn: 1}"
#: The peer DINR is timed against, and the other methods scored beside it.
PEER = "mbir_sliding"
#: Snapshots per run within the cap (fewer when ``steps: auto`` stops sooner), and at
#: least one per this share of the peer's wall time, so the time DINR passes the peer is
#: measured to within that share of it.
SNAPSHOTS, PEER_SNAPSHOT_SHARE = 16, 0.25
#: Samples per second a 2-rank training reaches on a 2-core machine, held-out evaluations
#: included (the 64-pixel scan's log), for spacing the snapshots only.
SAMPLES_PER_S = 4e5


def workflow(datasets: list[str], cores: int, config: Path, methods: list[str]) -> None:
    """Each scan's prepared views, truth, peers (``methods``) and settings, through the
    workflow with ``config`` (its rules' ``dinr`` taken from this Python's environment)."""
    targets = [f"results/{name}/{target}" for name in datasets
               for target in ("settings/train.json", "settings/render.json", *(f"{m}/recon.h5" for m in methods))]
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    subprocess.run([sys.executable, "-m", "snakemake", "--cores", str(cores), *targets, "--configfile", str(config)],
                   cwd=REPO, check=True, env=env)  # the rules' `dinr` is this environment's


def wall_seconds(dataset: str, method: str) -> float:
    from dinr.io.benchmarks import read_wall_seconds

    return read_wall_seconds({method: REPO / "results" / dataset / "benchmarks" / f"{method}.tsv"})[method]


def train(dataset: str, variant: str, changes: dict[str, object], columns: int, cap_s: float, ranks: int,
          workdir: Path, snapshot_s: float) -> tuple[Path, dict[str, object]]:
    """Train DINR on the scan's prepared views (``columns`` wide) with ``changes`` to its
    training settings and ``max_wall_s = cap_s``, snapshots about every ``snapshot_s``
    seconds in ``workdir/snapshots``; returns the model and the settings it was trained with."""
    settings = json.loads((REPO / "results" / dataset / "settings" / "train.json").read_text())
    unknown = sorted(set(changes) - set(settings))
    if unknown:
        raise SystemExit(f"variant {variant}: not training keys: {', '.join(unknown)}")
    sinogram = REPO / "results" / dataset / "prepared" / "sinogram.h5"
    settings.update({key: value(columns) if callable(value) else value for key, value in changes.items()},
                    max_wall_s=cap_s)
    if workdir.exists():
        shutil.rmtree(workdir)
    workdir.mkdir(parents=True)
    (workdir / "train.json").write_text(json.dumps(settings, indent=2))
    samples = columns if settings["samples_per_ray"] == "auto" else int(settings["samples_per_ray"])
    step_s = settings["batch_rays"] * ranks * samples / SAMPLES_PER_S
    every = max(10, int(snapshot_s / step_s))
    command = [launcher(), "-n", str(ranks), sys.executable, "-m", "dinr.cli", "train",
               "--settings", str(workdir / "train.json"), "--sinogram", str(sinogram),
               "--checkpoint", str(workdir / "checkpoint.pt"), "--model", str(workdir / "model.pt"),
               "--snapshots", str(workdir / "snapshots"), "--snapshot-every", str(every)]
    with open(workdir / "train.log", "w") as log:
        subprocess.run(command, cwd=REPO, stderr=log, check=True)
    return workdir / "model.pt", settings


def epochs_trained(log: Path) -> float:
    """The epochs of the run, from its last line ``training stopped at step N (E epochs, ...``."""
    found = re.findall(r"training stopped at step \d+ \(([\d.]+) epochs", log.read_text())
    if not found:
        raise SystemExit(f"{log}: no 'training stopped' line (did the run end?)")
    return float(found[-1])


def score(dataset: str, variant: str, changes: dict[str, object], cap_factor: float, max_cap_s: float | None,
          ranks: int, config: Path, methods: list[str]) -> dict[str, object]:
    """Train one variant on one scan of ``config``, for at most ``cap_factor`` times the
    peer's wall time and ``max_cap_s`` seconds, and score it and the peers (``methods``)
    against the truth."""
    from dinr.evaluate.metrics import volume_metrics
    from dinr.evaluate.time_to_quality import overtaking, snapshot_curve
    from dinr.frames import frame_times
    from dinr.io.canonical import read_scan_time, read_sinogram
    from dinr.io.volume import read_volume
    from dinr.provenance import provenance
    from dinr.train.checkpoint import load_checkpoint
    from dinr.train.snapshots import load_snapshots

    results = REPO / "results" / dataset
    peer_wall = wall_seconds(dataset, PEER)
    cap_s = min(cap_factor * peer_wall, max_cap_s or np.inf)
    workdir = results / "size_bench" / variant
    sinogram = results / "prepared" / "sinogram.h5"
    views, _, columns = read_sinogram(sinogram, split="train", rows=slice(0, 1)).projections.shape
    started = time.perf_counter()
    model, settings = train(dataset, variant, changes, columns, cap_s, ranks, workdir,
                            min(cap_s / SNAPSHOTS, PEER_SNAPSHOT_SHARE * peer_wall))
    state = load_checkpoint(model)
    truth, truth_times = read_volume(results / "raw" / "truth.h5", name="truth")
    mask = state.beam_geometry().region_mask()
    peers = {}
    for method in methods:
        volume, _ = read_volume(results / method / "recon.h5")
        metrics = volume_metrics(truth, volume, mask)
        peers[method] = {k: metrics[k] for k in ("psnr_mean", "ssim_mean", "psnr_worst", "psnr_first", "psnr_last")}
        peers[method]["wall_s"] = wall_seconds(dataset, method)
    _, normalised = frame_times(read_scan_time(sinogram), truth_times, len(truth))
    render_chunk = json.loads((results / "settings" / "render.json").read_text())["chunk"]
    pilots = (state.pilots or {}).get("candidates", [])  # time_cells_per_half_turn auto
    pilot_s = sum(float(c["train_seconds"]) for c in pilots)
    losers_s = sum(float(c["train_seconds"]) for c in pilots if c["time_cells_per_half_turn"] != state.pilots["chosen"])
    snapshots = load_snapshots(workdir / "snapshots")
    for snapshot in snapshots:  # their clock starts after the pilots
        snapshot["elapsed_s"] += pilot_s
    if snapshots[-1]["step"] != state.step:  # the final field, when no snapshot fell on the last step
        # its training seconds hold the winner's pilot already, not the losers'
        snapshots.append({"step": state.step, "elapsed_s": state.train_seconds + losers_s, "model": state.model})
    curve = snapshot_curve(state, snapshots, truth, normalised, render_chunk)
    shutil.rmtree(workdir / "snapshots")  # tens of MB each; the curve is what is kept
    rows = int(truth.shape[1])
    reach = overtaking(curve, {PEER: {"psnr": peers[PEER]["psnr_mean"]}})[PEER]
    return {
        "dataset": dataset, "variant": variant, "config": str(config.relative_to(REPO)), "machine": machine(),
        "changes": {key: settings[key] for key in changes},
        "scan": {"columns": int(columns), "rows": rows, "training_views": int(views),
                 "beam": state.beam_geometry().beam},
        "rays_per_epoch": int(views * rows * columns),
        "cap_s": cap_s,
        "dinr": {"final": curve[-1], "curve": curve, "steps": state.step,
                 "epochs": epochs_trained(workdir / "train.log"), "train_s": state.train_seconds,
                 "stop_reason": state.stop_reason, "pilot_s": pilot_s,
                 "time_cells_per_half_turn": state.settings["time_cells_per_half_turn"],
                 "model_mb": sum(t.numel() * t.element_size() for t in state.model.values()) / 2**20,
                 "reaches_peer_s": reach, "reaches_peer_over_peer_wall": None if reach is None else reach / peer_wall,
                 "bench_wall_s": time.perf_counter() - started},
        "peers": peers,
        "provenance": provenance("bench/size.py", settings, {"sinogram": str(sinogram), "config": str(config)}),
    }


def beam(entry: dict[str, object]) -> str:
    """The beam of an entry's scan: recorded, or for entries from before it was, from the
    scan's workflow config (``config/size.yaml`` for entries from before ``config`` was)."""
    if "beam" in entry["scan"]:  # type: ignore[operator]
        return str(entry["scan"]["beam"])  # type: ignore[index]
    config = yaml.safe_load((REPO / str(entry.get("config", CONFIG.relative_to(REPO)))).read_text())
    return config["datasets"][entry["dataset"]].get("geometry", {}).get("beam", "parallel")


def write(entries: dict[tuple[str, str], dict[str, object]], out: Path) -> None:
    """The entries (each with its scan's beam) as JSON, defaults first per scan, and the table beside it."""
    ordered = [entries[k] for k in sorted(entries, key=lambda k: (k[0], k[1] != "default", k[1]))]
    for entry in ordered:
        entry["scan"]["beam"] = beam(entry)  # type: ignore[index]
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"machine": machine(), "entries": ordered}, indent=2) + "\n")
    text = table(ordered)
    out.with_suffix(".md").write_text(text)
    print(text, flush=True)


def table(entries: list[dict[str, object]]) -> str:
    """Markdown: one line per (scan, variant)."""
    head = ("| scan (columns x rows x training views) | variant | DINR PSNR / SSIM, worst frame | steps (epochs), "
            f"train s, stop | {PEER} PSNR / SSIM, worst frame (s) | DINR - peer (dB) | DINR reaches the peer at "
            "| sliding FBP (FDK in cone beam) PSNR (s) |")
    lines = [head, "|---" * 8 + "|"]
    for e in entries:
        d, scan, peers = e["dinr"], e["scan"], e["peers"]
        final, peer, fbp = d["final"], peers[PEER], peers.get("fbp_sliding") or peers.get("fdk_sliding")
        fbp_cell = f"{fbp['psnr_mean']:.2f} ({fbp['wall_s']:.0f})" if fbp else "–"
        reach = (f"{d['reaches_peer_s']:.0f} s ({d['reaches_peer_over_peer_wall']:.1f}x its time)"
                 if d["reaches_peer_s"] is not None else f"not within {e['cap_s']:.0f} s")
        lines.append(
            f"| {scan['columns']} x {scan['rows']} x {scan['training_views']}, {beam(e)} | {e['variant']} "
            f"| {final['psnr']:.2f} / {final['ssim']:.3f}, {final['psnr_worst']:.2f} "
            f"| {d['steps']} ({d['epochs']:.1f}), {d['train_s']:.0f}, {d['stop_reason'].split(':')[0]} "
            f"| {peer['psnr_mean']:.2f} / {peer['ssim_mean']:.3f}, {peer['psnr_worst']:.2f} ({peer['wall_s']:.0f}) "
            f"| {final['psnr'] - peer['psnr_mean']:+.2f} | {reach} "
            f"| {fbp_cell} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "size.json")
    parser.add_argument("--config", type=Path, default=CONFIG, help="the scans' workflow config (default %(default)s)")
    parser.add_argument("--datasets", nargs="+", help="scans of --config (default: all)")
    parser.add_argument("--methods", nargs="+", help=f"peers run and scored ({PEER} among them; default: the "
                        "config's baselines.methods)")
    parser.add_argument("--variants", nargs="+", default=["default"], choices=sorted(VARIANTS))
    parser.add_argument("--base", default=BASE, help=f"training keys of every variant, as YAML (default {BASE})")
    parser.add_argument("--cap-factor", type=float, default=4.0,
                        help="training capped at this many times the MBIR peer's wall time")
    parser.add_argument("--max-cap-s", type=float, help="and at most this many seconds")
    parser.add_argument("--ranks", type=int, default=2, help="MPI ranks of the training (one thread each)")
    parser.add_argument("--cores", type=int, default=2, help="cores of the workflow's jobs")
    parser.add_argument("--tabulate-only", action="store_true", help="rewrite the JSON and table, run nothing")
    args = parser.parse_args()
    config = args.config.resolve()
    scans = yaml.safe_load(config.read_text())
    datasets = list(scans["datasets"])
    if args.datasets:
        unknown = sorted(set(args.datasets) - set(datasets))
        if unknown:
            parser.error(f"not scans of {config}: {', '.join(unknown)}")
        datasets = args.datasets
    methods = args.methods or scans["baselines"]["methods"]
    if PEER not in methods:
        parser.error(f"--methods: {PEER}, the peer DINR is timed against, is missing")
    base = train_keys(args.base, "--base")
    stored = json.loads(args.out.read_text()) if args.out.exists() else {"entries": []}
    entries = {(e["dataset"], e["variant"]): e for e in stored["entries"]}
    if args.tabulate_only:
        write(entries, args.out)
        return
    workflow(datasets, args.cores, config, methods)
    for dataset in datasets:
        for variant in args.variants:
            changes = {**base, **VARIANTS[variant]}
            entries[(dataset, variant)] = score(dataset, variant, changes, args.cap_factor, args.max_cap_s,
                                                args.ranks, config, methods)
            write(entries, args.out)


if __name__ == "__main__":
    main()
