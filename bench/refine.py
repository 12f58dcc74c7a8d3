"""Frames refined against the views around them (``render.refine: auto``) against the field's
own frames, frame by frame, beside the best peer of each frame.

    python bench/refine.py --run gen_oscillate=<run folder> --run gen_jerk=<run folder> \\
        --out bench/results/refine.json

Each ``--run dataset=folder`` names a trained run (``folder/model.pt``) of a scan the
workflow built in ``results/<dataset>/`` under ``--results`` (its prepared sinogram, truth and
peers' volumes).
The render stage renders the run's frames twice into ``folder/refine/``: with
``render.refine: none`` (the field's samples) and ``auto`` (:mod:`dinr.inr.refine`), every
other render key at its default; a volume already there is read back. Every frame of both
and of each peer found (``results/<dataset>/<method>/recon.h5`` of the MBIR peers and
sliding FBP) is scored as the evaluate stage scores it; without peers, the margins are left
out. Reports per scan the mean PSNR and SSIM of both, DINR's margin over the best peer in
each frame, its worst frame, and the render stage's wall time; writes the JSON and a
Markdown table (``.md``) beside it.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from dinr import stages
from dinr.evaluate.metrics import frame_metrics
from dinr.geometry.resolve import geometry_of
from dinr.io.canonical import read_sinogram
from dinr.settings import RenderSettings, section_defaults
from dinr.train.comm import Communicator
from turning_points import REPO  # bench/, the script's own folder, is on sys.path

#: The peers a frame's margin is taken over, where the workflow made them.
PEERS = ("mbir_sliding", "mace4d", "fbp_sliding")


def rendered(settings: RenderSettings, model: Path, root: Path, out: Path) -> tuple[np.ndarray, float | None]:
    """The run's frames rendered with ``settings`` into ``out`` (read back if there) and
    the seconds the render stage took (None when read back)."""
    seconds = None
    if not out.exists():
        start = time.perf_counter()
        stages.render(settings, model, root / "prepared" / "sinogram.h5", root / "raw" / "truth.h5", out,
                      Communicator(use_mpi=False))
        seconds = round(time.perf_counter() - start, 1)
    with h5py.File(out, "r") as f:
        return f["recon"][...], seconds


def score_run(dataset: str, folder: Path, results: Path) -> dict[str, Any]:
    """The module note's report of one run, the workflow's scans in ``results``."""
    root = results / dataset
    with h5py.File(root / "raw" / "truth.h5", "r") as f:
        truth = f["truth"][...]
    mask = geometry_of(read_sinogram(root / "prepared" / "sinogram.h5", views=[0])).region_mask()
    value_range = float(truth.max() - truth.min())
    defaults = RenderSettings(**section_defaults("render"))  # type: ignore[arg-type]
    report: dict[str, Any] = {"dataset": dataset, "run": str(folder), "methods": {}, "render_s": {}}
    volumes = {}
    for refine in ("none", "auto"):
        settings = dataclasses.replace(defaults, refine=refine, exports=[])
        (folder / "refine").mkdir(exist_ok=True)
        volumes[f"dinr_{refine}"], report["render_s"][refine] = rendered(settings, folder / "model.pt", root,
                                                                          folder / "refine" / f"{refine}.h5")
    for method in PEERS:
        if (root / method / "recon.h5").exists():
            with h5py.File(root / method / "recon.h5", "r") as f:
                volumes[method] = f["recon"][...]
    for name, volume in volumes.items():
        frames = [frame_metrics(truth, volume, k, mask, value_range) for k in range(len(truth))]
        report["methods"][name] = {"psnr": [round(m["psnr"], 3) for m in frames],
                                   "ssim": [round(m["ssim"], 4) for m in frames]}
    peers = [name for name in PEERS if name in volumes]
    for name in ("dinr_none", "dinr_auto"):
        psnr = np.array(report["methods"][name]["psnr"])
        report["methods"][name].update(psnr_mean=round(float(psnr.mean()), 3),
                                       ssim_mean=round(float(np.mean(report["methods"][name]["ssim"])), 4))
        if peers:
            margin = psnr - np.max([report["methods"][peer]["psnr"] for peer in peers], axis=0)
            report["methods"][name].update(margin_per_frame=[round(float(v), 3) for v in margin],
                                           worst_margin=round(float(margin.min()), 3), worst_frame=int(margin.argmin()))
    report["peers"] = peers
    if peers:
        report["best_peer_mean"] = round(float(max(np.mean(report["methods"][p]["psnr"]) for p in peers)), 3)
    return report


def _worst(scores: dict[str, Any]) -> str:
    """The worst-frame margin and its frame, or a dash where no peer was found."""
    return f"{scores['worst_margin']:+.2f} ({scores['worst_frame']})" if "worst_margin" in scores else "–"


def table(reports: list[dict[str, Any]]) -> list[str]:
    lines = ["| scan | field: mean / SSIM / worst-frame margin (frame) "
             "| refined: mean / SSIM / worst-frame margin (frame) "
             "| refined − field per frame, min / max | render s (none / auto) |", "|---|---|---|---|---|"]
    for r in reports:
        a, b = r["methods"]["dinr_none"], r["methods"]["dinr_auto"]
        delta = np.array(b["psnr"]) - np.array(a["psnr"])
        lines.append(f"| {r['dataset']} | {a['psnr_mean']:.2f} / {a['ssim_mean']:.3f} / {_worst(a)} "
                     f"| {b['psnr_mean']:.2f} / {b['ssim_mean']:.3f} / {_worst(b)} "
                     f"| {delta.min():+.2f} / {delta.max():+.2f} "
                     f"| {r['render_s']['none']} / {r['render_s']['auto']} |")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", action="append", required=True, help="dataset=run folder (holding model.pt)")
    parser.add_argument("--results", type=Path, default=REPO / "results", help="the workflow's results folder")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    reports = []
    previous = json.loads(args.out.read_text())["runs"] if args.out.exists() else []
    for item in args.run:
        dataset, folder = item.split("=", 1)
        reports = [r for r in reports if r["dataset"] != dataset] + [score_run(dataset, Path(folder), args.results)]
        print("\n".join(table(reports[-1:])), flush=True)
    kept = [r for r in previous if r["dataset"] not in {r["dataset"] for r in reports}]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"runs": kept + reports}, indent=1) + "\n")
    text = "\n".join(table(kept + reports))
    args.out.with_suffix(".md").write_text(text + "\n")
    print(text)


if __name__ == "__main__":
    main()
