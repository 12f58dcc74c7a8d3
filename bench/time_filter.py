"""Can a filter in time, after training, mend a trained field's frames?

    python bench/time_filter.py --model results/gen_oscillate/dinr/model.pt \\
        --inputs results/gen_oscillate --mean 0.0078125 0.015625 0.03125 --unsharp 0.1 0.2 \\
        --out bench/results/time_filter_oscillate.json

The field of ``--model`` is rendered at the truth's frame instants ``t`` (normalised
time) of the dataset at ``--inputs`` (``prepared/sinogram.h5`` and ``raw/truth.h5`` as
the workflow lays them out, or a sweep's input folder holding both), then filtered in
time and scored frame by frame against the truth (the evaluate stage's metrics, region
mask and value range):

- ``mean h``: each frame the mean of the field at :data:`MEAN_SAMPLES` instants evenly
  over ``t - h .. t + h`` (clipped to the scan): noise that differs between nearby
  instants averages out, motion blurs;
- ``unsharp k``: ``(1 + 2k) f(t) - k (f(t - c) + f(t + c))`` with ``c`` one time cell of
  the field's finest level: a blur in time of about a cell is partly undone, noise grows.

Row 0 of the table (``none``) is the field as the render stage samples it. Writes the
JSON and a Markdown table (``.md``) beside it.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Callable

import h5py
import numpy as np

from dinr.evaluate.metrics import data_range, frame_metrics
from dinr.frames import frame_times
from dinr.inr.build import spec_time_span
from dinr.inr.render import SliceRenderer
from dinr.io.canonical import read_scan_time
from dinr.io.volume import read_times
from dinr.train.checkpoint import load_checkpoint

#: Instants averaged by ``mean h``.
MEAN_SAMPLES = 9


def locate(inputs: Path, name: str, workflow_path: str) -> Path:
    """``inputs/<name>`` (a sweep's input folder) or ``inputs/<workflow_path>`` (``results/<dataset>``)."""
    flat = inputs / name
    return flat if flat.exists() else inputs / workflow_path


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", type=Path, required=True)
    p.add_argument("--inputs", type=Path, required=True, help="results/<dataset> or a sweep's input folder")
    p.add_argument("--mean", type=float, nargs="*", default=[], help="half-widths h, normalised time")
    p.add_argument("--unsharp", type=float, nargs="*", default=[], help="strengths k")
    p.add_argument("--out", type=Path, required=True)
    args = p.parse_args()

    sinogram = locate(args.inputs, "sinogram.h5", "prepared/sinogram.h5")
    truth_path = locate(args.inputs, "truth.h5", "raw/truth.h5")
    state = load_checkpoint(args.model)
    geometry = state.beam_geometry()
    render = SliceRenderer(state.field(), geometry)
    _, instants = frame_times(read_scan_time(sinogram), read_times(truth_path), 0)
    start, end = spec_time_span(state.field_spec)
    cell = (end - start) / max(int(state.field_spec["time_resolution"]), 1)
    with h5py.File(truth_path, "r") as f:
        truth = f["truth"][...]
    mask, value_range = geometry.region_mask(), data_range(truth)

    def volume(sample: Callable[[float, int], np.ndarray]) -> np.ndarray:
        return np.stack([np.stack([sample(float(t), z) for z in range(geometry.rows)]) for t in instants])

    def at(offset: float) -> np.ndarray:
        return volume(lambda t, z: render(float(np.clip(t + offset, 0.0, 1.0)), z))

    plain = at(0.0)
    filtered: dict[str, np.ndarray] = {"none": plain}
    for h in args.mean:
        filtered[f"mean {h:g}"] = np.mean([at(o) for o in np.linspace(-h, h, MEAN_SAMPLES)], axis=0)
    if args.unsharp:
        earlier, later = at(-cell), at(cell)
        for k in args.unsharp:
            filtered[f"unsharp {k:g}"] = (1 + 2 * k) * plain - k * (earlier + later)
    report = {"model": str(args.model), "time_cell": cell, "instants": [float(t) for t in instants], "filters": {}}
    for name, frames in filtered.items():
        psnr = [frame_metrics(truth, frames, i, mask, value_range)["psnr"] for i in range(len(instants))]
        report["filters"][name] = {"psnr_mean": float(np.mean(psnr)), "per_frame_psnr": psnr}
    lines = ["| filter | mean PSNR | per frame |", "|---|---|---|"]
    lines += [f"| {name} | {r['psnr_mean']:.2f} | " + " ".join(f"{v:.2f}" for v in r["per_frame_psnr"]) + " |"
              for name, r in report["filters"].items()]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=1))
    args.out.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
