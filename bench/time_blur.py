"""Does a frame lack views or time? Each method's frame against the truth blurred in time.

    python bench/time_blur.py --datasets gen_oscillate --frames 5 10 11 \\
        --out bench/results/time_blur_oscillate.json

For each simulated dataset built by the workflow (``results/<dataset>/``: its settings,
prepared sinogram and each method's ``recon.h5``) and each frame of ``--frames`` (index
into the truth's frames, at normalised instant ``t``), the PSNR (the evaluate stage's
metrics, region mask and the truth's value range) of every method's frame against:

1. the truth at ``t`` (what ``metrics.json`` scores);
2. the truth at the instant in ``t - lag .. t + lag`` it matches best, and that offset:
   a method whose frame lags or leads the motion matches best away from 0;
3. the truth averaged over ``t - h .. t + h`` (:data:`BOX_SAMPLES` instants) for each ``h``
   of ``--windows``, and that average against the truth at ``t`` (what the blur alone costs);

and, for each ``h``, its error split along that blur: the least-squares multiple ``c`` of
``d = (truth averaged over t +- h) - (truth at t)`` in the error (inside the region mask;
1 is as blurred as that average, 0 not at all), the share of the error's energy along
``d``, and the PSNR of the error left beside it.

A method's frame that matches a wide average best has paid for its views with time (a
sliding window of a half-turn averages over ``h = 1/16`` of a 4-turn scan); two methods that
match the same average best, one with more error, differ by their noise, not by blur. Two
methods whose errors left beside the blur are alike differ by how blurred they are in time.

Writes the JSON and a Markdown table (``.md``) beside it.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from dinr.evaluate.metrics import frame_metrics
from dinr.geometry.resolve import geometry_of
from dinr.io.canonical import read_sinogram
from dinr.sim.ellipses import rasterise_phantom
from turning_points import REPO, simulated_phantom  # bench/, the script's own folder, is on sys.path

#: Instants averaged for the truth blurred over ``t - h .. t + h``.
BOX_SAMPLES = 9

#: Offsets tried for the best-matching instant, evenly over ``t - lag .. t + lag``.
LAG_SAMPLES = 25


def psnr(truth: np.ndarray, frame: np.ndarray, mask: np.ndarray, value_range: float) -> float:
    """PSNR (dB) of a (z, y, x) ``frame`` against ``truth`` as the evaluate stage scores it."""
    return round(frame_metrics(truth[None], frame[None], 0, mask, value_range)["psnr"], 2)


#: A blur whose RMS is below this share of the truth's value range is none (a still
#: object): its multiple in the error is not defined.
NO_BLUR = 1e-6


def along_blur(truth: np.ndarray, blurred: np.ndarray, frame: np.ndarray, mask: np.ndarray,
               value_range: float) -> dict[str, float | None]:
    """``frame``'s error against ``truth`` split along the blur ``blurred - truth``
    (module note): its multiple ``c`` (None where the truth does not blur,
    :data:`NO_BLUR`), the share of the error's energy along it and the PSNR of the error left."""
    region = np.broadcast_to(mask, truth.shape)
    error, blur = (frame - truth)[region].astype(np.float64), (blurred - truth)[region].astype(np.float64)
    still = np.sqrt(np.mean(blur**2)) < NO_BLUR * value_range
    c = 0.0 if still else float(error @ blur / (blur @ blur))
    left = error - c * blur
    return {"c": None if still else round(c, 3), "share": round(1.0 - float(left @ left) / float(error @ error), 3),
            "left_psnr": round(float(10 * np.log10(value_range**2 / np.mean(left**2))), 2)}


def frame_report(root: Path, frames: list[int], windows: list[float], lag: float) -> dict[str, Any]:
    """The comparisons of the module note for ``frames`` of the dataset at ``root``."""
    simulate, phantom, z = simulated_phantom(root)
    mask = geometry_of(read_sinogram(root / "prepared" / "sinogram.h5", views=[0])).region_mask()
    with h5py.File(root / "raw" / "truth.h5", "r") as f:
        truth = f["truth"][:]
    value_range = float(truth.max() - truth.min())
    instants = (np.arange(simulate.frames) + 0.5) / simulate.frames
    methods = sorted(p.parent.name for p in root.glob("*/recon.h5"))
    volumes = {}
    for method in methods:
        with h5py.File(root / method / "recon.h5", "r") as f:
            volumes[method] = np.stack([f["recon"][frame] for frame in frames])  # in the order asked
    report: dict[str, Any] = {"methods": methods, "frames": {}}
    for i, frame in enumerate(frames):
        t = float(instants[frame])
        offsets = np.linspace(-lag, lag, LAG_SAMPLES)
        shifted = rasterise_phantom(phantom, t + offsets, z)
        blurred = {f"{h:g}": rasterise_phantom(phantom, t + np.linspace(-h, h, BOX_SAMPLES), z).mean(axis=0)
                   for h in windows}
        entry: dict[str, Any] = {"t": round(t, 5), "blur_alone": {h: psnr(truth[frame], b, mask, value_range)
                                                                for h, b in blurred.items()}}
        for method in methods:
            mine = volumes[method][i]
            scores = [psnr(s, mine, mask, value_range) for s in shifted]
            best = int(np.argmax(scores))
            entry[method] = {"at_t": psnr(truth[frame], mine, mask, value_range), "best_instant": scores[best],
                             "best_offset": round(float(offsets[best]), 5),
                             "blurred": {h: psnr(b, mine, mask, value_range) for h, b in blurred.items()},
                             "along_blur": {h: along_blur(truth[frame], b, mine, mask, value_range)
                                            for h, b in blurred.items()}}
        report["frames"][str(frame)] = entry
    return report


def split_text(split: dict[str, Any]) -> str:
    """An :func:`along_blur` split as a table cell: ``c, share, left``, or ``still`` where there is no blur."""
    if split["c"] is None:
        return "still"
    return f"c {split['c']:.2f}, {split['share']:.0%}, left {split['left_psnr']:.2f}"


def table(name: str, report: dict[str, Any]) -> list[str]:
    """Markdown rows of one dataset's report."""
    windows = list(next(iter(report["frames"].values()))["blur_alone"])
    lines = [f"**{name}**", "", "| frame (t) | method | at t | best instant (offset) | "
             + " | ".join(f"blurred ±{h}: PSNR; error along it (c, share, left)" for h in windows) + " |",
             "|---|---|---|---|" + "---|" * len(windows)]
    for frame, entry in report["frames"].items():
        lines.append(f"| {frame} ({entry['t']:.4f}) | truth blurred, against truth at t | | | "
                     + " | ".join(f"{entry['blur_alone'][h]:.2f}" for h in windows) + " |")
        for method in report["methods"]:
            m = entry[method]
            lines.append(f"| {frame} | {method} | {m['at_t']:.2f} | {m['best_instant']:.2f} ({m['best_offset']:+.4f}) | "
                         + " | ".join(f"{m['blurred'][h]:.2f}; " + split_text(m["along_blur"][h]) for h in windows)
                         + " |")
    return lines + [""]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--datasets", nargs="+", required=True)
    p.add_argument("--frames", type=int, nargs="+", required=True, help="frame indices, the same for every dataset")
    p.add_argument("--results", type=Path, default=REPO / "results")
    p.add_argument("--windows", type=float, nargs="+", default=[1 / 32, 1 / 16, 3 / 32], help="normalised h")
    p.add_argument("--lag", type=float, default=3 / 32, help="largest offset tried, normalised time")
    p.add_argument("--out", type=Path, required=True)
    args = p.parse_args()
    report = {name: frame_report(args.results / name, args.frames, args.windows, args.lag) for name in args.datasets}
    lines = [row for name, r in report.items() for row in table(name, r)]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=1))
    args.out.with_suffix(".md").write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
