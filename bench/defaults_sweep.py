"""Training variants on many scans at once, on one machine (a GPU), scored frame by frame.

    python bench/defaults_sweep.py inputs --datasets demo gen_late --out .sweep/in    # here
    python bench/defaults_sweep.py run --inputs .sweep/in --variants variants.json \
        --workers 12 --deadline-s 500 --out $OUT                                      # on the device
    python bench/defaults_sweep.py score --runs $OUT --inputs .sweep/in \
        --peers results/*/metrics.json --out bench/results/defaults_sweep.json        # here

The workflow trains one scan per job on its MPI ranks; a training default has to be
judged on every scan, and the CPUs here take 10 to 25 minutes a scan. ``run`` trains
(``dinr train``, one rank holding as many ray shards as the workflow's ranks, so the
global batch and the views' split are the workflow's; or, with ``--launcher 'mpiexec -n 2'``
on CPUs, on the workflow's ranks) and renders (``dinr render`` at the truth's frame times)
every scan under every variant as separate jobs, ``workers`` at a time, in the order
variants x scans (so that a run stopped at ``deadline_s`` has whole variants first); each
finished run's volume is kept as float16 in one ``.npz`` per variant (at most 8 files come
back from the device; float16 moves PSNR by under 0.01 dB here), with a ``runs.json`` of
wall times, the training log's choices (time cells, ends, TV weights) and the highest
held-out residual over the best before it (:func:`highest_over_best`, what
``dinr.train.schedule.SPIKE_FACTOR`` acts on), both rewritten as each run finishes, so a
runner stopped early leaves every finished run to ``score``.

A variant is a name, ``train`` keys over the scan's ``train.json`` and optionally
``constants``: module constants of :mod:`dinr` set before training (for example
``{"dinr.train.objective.TV_EDGE_SCALE": 0.04}``), to try a value before it becomes a
default. ``score`` computes each run's per-frame PSNR / SSIM against the truth with the
evaluate stage's own metrics and region mask, and DINR's margins over the best peer of
each frame from the peers' ``metrics.json`` (the last file naming a scan wins) or, for a
scan without one, from the peers' volumes under ``results/<dataset>/``.
"""

from __future__ import annotations

import argparse
import importlib
import json
import math
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import h5py
import numpy as np

REPO = Path(__file__).resolve().parents[1]
INPUT_FILES = {"sinogram.h5": "prepared/sinogram.h5", "truth.h5": "raw/truth.h5",
               "train.json": "settings/train.json", "render.json": "settings/render.json"}
#: Lines of the training log kept in ``runs.json`` (the choices training made).
CHOICE_MARKERS = ("go on", "time ends chosen", "TV prior weights", "converged", "stopping")


def copy_inputs(datasets: list[str], results: Path, out: Path) -> None:
    """The files a run needs, per dataset, from the workflow's ``results/<dataset>/``."""
    for name in datasets:
        (out / name).mkdir(parents=True, exist_ok=True)
        for target, source in INPUT_FILES.items():
            shutil.copyfile(results / name / source, out / name / target)


def job(inputs: Path, variant: dict[str, Any], workdir: Path, ranks: int | None) -> None:
    """Train and render one scan (``inputs``) under ``variant`` in ``workdir``, its ray
    shards ``ranks`` (``None``: one per MPI rank, as the workflow has them)."""
    for dotted, value in variant.get("constants", {}).items():
        module, name = dotted.rsplit(".", 1)
        setattr(importlib.import_module(module), name, value)
    from dinr.cli import main as dinr

    settings = json.loads((inputs / "train.json").read_text())
    settings.update({**({"ray_shards": ranks} if ranks else {}), **variant.get("train", {})})
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "train.json").write_text(json.dumps(settings))  # each rank writes the same text
    sinogram = str(inputs / "sinogram.h5")
    if dinr(["train", "--settings", str(workdir / "train.json"), "--sinogram", sinogram, "--checkpoint",
             str(workdir / "checkpoint.pt"), "--model", str(workdir / "model.pt")]) != 0:
        raise SystemExit(f"{workdir}: training failed")
    if dinr(["render", "--settings", str(inputs / "render.json"), "--model", str(workdir / "model.pt"), "--sinogram",
             sinogram, "--frame-times", str(inputs / "truth.h5"), "--out", str(workdir / "recon.h5")]) != 0:
        raise SystemExit(f"{workdir}: rendering failed")


def choices(log: Path) -> list[str]:
    """The training log's lines that record a choice (:data:`CHOICE_MARKERS`)."""
    lines = log.read_text(errors="replace").splitlines() if log.exists() else []
    return [line.split(": ", 1)[-1][:400] for line in lines if any(m in line for m in CHOICE_MARKERS)]


def highest_over_best(validation: list[list[float]]) -> dict[str, float] | None:
    """Of a run's held-out evaluations (rows ``[step, residual, ...]``, its pilot's
    included), the one highest over the best residual before it: ``{"ratio", "step"}``;
    None with fewer than two evaluations."""
    best, highest = math.inf, None
    for step, residual, *_ in validation:
        if best < math.inf and (highest is None or residual / best > highest["ratio"]):
            highest = {"ratio": round(residual / best, 4), "step": int(step)}
        best = min(best, residual)
    return highest


def run_all(inputs: Path, datasets: list[str], variants: list[dict[str, Any]], workers: int, deadline_s: float,
            ranks: int, scratch: Path, out: Path, launcher: list[str]) -> None:
    """Every (variant, dataset) job in that order, ``workers`` at a time, until all finish
    or ``deadline_s`` passes (running jobs are then stopped); writes ``<variant>.npz`` and
    ``runs.json`` under ``out``. With a ``launcher`` (``mpiexec -n 2``) each job runs on
    its ranks, one shard each; without, in one process holding ``ranks`` shards."""
    queue = [(v, d) for v in variants for d in datasets]
    running: dict[tuple[str, str], tuple[subprocess.Popen[bytes], float]] = {}
    records: list[dict[str, Any]] = []
    volumes: dict[str, dict[str, np.ndarray]] = {v["name"]: {} for v in variants}
    start = time.monotonic()
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    while queue or running:
        while queue and len(running) < workers and time.monotonic() - start < deadline_s:
            variant, dataset = queue.pop(0)
            workdir = scratch / variant["name"] / dataset
            workdir.mkdir(parents=True, exist_ok=True)
            command = [*launcher, sys.executable, __file__, "job", "--inputs", str(inputs / dataset), "--variant",
                       json.dumps(variant), "--workdir", str(workdir), *([] if launcher else ["--ranks", str(ranks)])]
            with open(workdir / "log.txt", "wb") as log:
                running[(variant["name"], dataset)] = (subprocess.Popen(command, stdout=log, stderr=log, env=env),
                                                       time.monotonic())
        if time.monotonic() - start >= deadline_s:
            queue.clear()
        for key, (process, began) in list(running.items()):
            overdue = time.monotonic() - start >= deadline_s
            if process.poll() is None and not overdue:
                continue
            if process.poll() is None:
                process.kill()
                process.wait()
            del running[key]
            workdir = scratch / key[0] / key[1]
            record = {"variant": key[0], "dataset": key[1], "rc": process.returncode,
                      "wall_s": round(time.monotonic() - began, 1), "choices": choices(workdir / "log.txt")}
            if process.returncode == 0:
                from dinr.train.checkpoint import load_checkpoint

                record["highest_over_best"] = highest_over_best(load_checkpoint(workdir / "checkpoint.pt").validation)
                with h5py.File(workdir / "recon.h5", "r") as f:
                    volumes[key[0]][key[1]] = f["recon"][...].astype(np.float16)
            else:
                record["log_tail"] = (workdir / "log.txt").read_text(errors="replace")[-1500:]
            records.append(record)
            save_runs(out, {"variants": variants, "workers": workers, "ranks": ranks,
                            "wall_s": round(time.monotonic() - start, 1), "runs": records}, volumes)
            print(f"[{time.monotonic() - start:6.0f} s] {key[0]} {key[1]} rc {process.returncode} "
                  f"{record['wall_s']} s", flush=True)
        time.sleep(1.0)


def save_runs(out: Path, record: dict[str, Any], volumes: dict[str, dict[str, np.ndarray]]) -> None:
    """``runs.json`` (``record``) and one ``<variant>.npz`` of float16 volumes per variant
    with a finished run under ``out``, each written to a temporary file and renamed."""
    from dinr.io.atomic import atomic_path, write_json

    for name, by_dataset in volumes.items():
        if by_dataset:
            with atomic_path(out / f"{name}.npz") as tmp, open(tmp, "wb") as f:
                np.savez_compressed(f, **by_dataset)
    write_json(out / "runs.json", record)


def peer_methods(paths: list[Path]) -> dict[str, dict[str, Any]]:
    """Dataset -> the peers' metrics (every method but DINR) from ``metrics.json`` files or
    ``bench/generalisation.py`` reports, later files winning."""
    peers: dict[str, dict[str, Any]] = {}
    for path in paths:
        report = json.loads(path.read_text())
        entries = report["datasets"] if "datasets" in report else [report]
        for entry in entries:
            peers[entry["dataset"]] = {k: v for k, v in entry["methods"].items() if k != "dinr"}
    return peers


def peer_volume_methods(results: Path, dataset: str, truth: np.ndarray, mask: np.ndarray) -> dict[str, Any]:
    """The peers' metrics of ``dataset`` from their volumes (``results/<dataset>/<method>/recon.h5``,
    every method but DINR), for a scan whose ``metrics.json`` is not at hand."""
    from dinr.evaluate.metrics import volume_metrics

    methods = {}
    for path in sorted((results / dataset).glob("*/recon.h5")):
        if path.parent.name != "dinr":
            with h5py.File(path, "r") as f:
                methods[path.parent.name] = volume_metrics(truth, f["recon"][...], mask)
    return methods


def score(runs: Path, inputs: Path, peer_paths: list[Path], results: Path) -> dict[str, Any]:
    """Per variant and dataset: DINR's metrics against the truth and its margins over the
    best peer of each frame (:func:`dinr.evaluate.frames.margins`), the peers' metrics
    from ``peer_paths`` or else from their volumes under ``results``."""
    from dinr.evaluate.frames import margins
    from dinr.evaluate.metrics import volume_metrics
    from dinr.geometry.resolve import geometry_of
    from dinr.io.canonical import read_sinogram

    peers = peer_methods(peer_paths)
    record = json.loads((runs / "runs.json").read_text())
    report: dict[str, Any] = {"runs": record, "scores": {}}
    scans: dict[str, tuple[np.ndarray, np.ndarray]] = {}  # dataset -> truth, region mask
    for variant in record["variants"]:
        path = runs / f"{variant['name']}.npz"
        if not path.exists():
            continue
        scores = report["scores"][variant["name"]] = {}
        with np.load(path) as volumes:
            for dataset in sorted(volumes.files):
                if dataset not in scans:  # read once, whichever variants ran the scan
                    with h5py.File(inputs / dataset / "truth.h5", "r") as f:
                        scans[dataset] = (f["truth"][...],
                                          geometry_of(read_sinogram(inputs / dataset / "sinogram.h5")).region_mask())
                truth, mask = scans[dataset]
                ours = volume_metrics(truth, volumes[dataset].astype(np.float32), mask)
                if dataset not in peers:
                    peers[dataset] = peer_volume_methods(results, dataset, truth, mask)
                margin = margins({"dinr": ours, **peers.get(dataset, {})})
                scores[dataset] = {"psnr_mean": ours["psnr_mean"], "ssim_mean": ours["ssim_mean"],
                                   "per_frame_psnr": [m["psnr"] for m in ours["per_frame"]], "margin": margin}
    return report


def table(report: dict[str, Any]) -> str:
    """Markdown: per dataset, each variant's mean PSNR, mean margin and worst-frame margin."""
    variants = list(report["scores"])
    datasets = sorted({d for scores in report["scores"].values() for d in scores})
    lines = ["| scan | " + " | ".join(variants) + " |", "|---|" + "---|" * len(variants)]
    for dataset in datasets:
        cells = []
        for variant in variants:
            entry = report["scores"][variant].get(dataset)
            margin = entry and entry["margin"]
            cells.append("" if not entry else f"{entry['psnr_mean']:.2f} ({margin['mean']:+.2f}, "
                         f"{margin['worst_frame']:+.2f} f{margin['worst_frame_index']})" if margin
                         else f"{entry['psnr_mean']:.2f}")
        lines.append(f"| {dataset} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("inputs", help="copy each dataset's prepared scan, truth and settings")
    p.add_argument("--datasets", nargs="+", required=True)
    p.add_argument("--results", type=Path, default=REPO / "results")
    p.add_argument("--out", type=Path, required=True)
    p = sub.add_parser("run", help="train and render every dataset under every variant")
    p.add_argument("--inputs", type=Path, required=True)
    p.add_argument("--datasets", nargs="+", help="in the order they start (default: every one under --inputs)")
    p.add_argument("--variants", type=Path, required=True, help="JSON list of {name, train, constants}")
    p.add_argument("--workers", type=int, default=8)
    p.add_argument("--deadline-s", type=float, default=500.0)
    p.add_argument("--ranks", type=int, default=2, help="the workflow's ranks (ray shards of one process)")
    p.add_argument("--launcher", default="", help="MPI launcher of each job, e.g. 'mpiexec -n 2' (CPU)")
    p.add_argument("--scratch", type=Path, default=Path("/tmp/defaults_sweep"))
    p.add_argument("--out", type=Path, required=True)
    p = sub.add_parser("job", help="(internal) one dataset under one variant")
    p.add_argument("--inputs", type=Path, required=True)
    p.add_argument("--variant", required=True)
    p.add_argument("--workdir", type=Path, required=True)
    p.add_argument("--ranks", type=int)
    p = sub.add_parser("score", help="per-frame metrics and margins of a run's volumes")
    p.add_argument("--runs", type=Path, required=True)
    p.add_argument("--inputs", type=Path, required=True)
    p.add_argument("--peers", type=Path, nargs="*", default=[], help="metrics.json files or generalisation reports")
    p.add_argument("--results", type=Path, default=REPO / "results",
                   help="peers' volumes where no --peers file has them")
    p.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    if args.command == "inputs":
        copy_inputs(args.datasets, args.results, args.out)
    elif args.command == "run":
        datasets = args.datasets or sorted(p.name for p in args.inputs.iterdir() if (p / "sinogram.h5").exists())
        run_all(args.inputs, datasets, json.loads(args.variants.read_text()), args.workers, args.deadline_s,
                args.ranks, args.scratch, args.out, args.launcher.split())
    elif args.command == "job":
        job(args.inputs, json.loads(args.variant), args.workdir, args.ranks)
    else:
        report = score(args.runs, args.inputs, args.peers, args.results)
        args.out.write_text(json.dumps(report, indent=1))
        args.out.with_suffix(".md").write_text(table(report))
        print(table(report))


if __name__ == "__main__":
    main()
