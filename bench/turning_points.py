"""What a simulated scan's frames ask of the time grid, and what its views say about rest.

    python bench/turning_points.py --datasets gen_oscillate gen_jerk --out bench/results/turning_points.json

For each dataset built by the workflow (``results/<dataset>/``: its simulate and geometry
settings, its prepared sinogram), two things, neither using a reconstruction:

1. **Blending neighbours.** For each frame at normalised instant ``t``, the PSNR (the
   evaluate stage's metrics, mask and range) of ``(truth(t - h) + truth(t + h)) / 2``
   against ``truth(t)``, the phantom rasterised at those instants, for each ``h`` of
   ``--offsets`` (a 64-pixel scan of 4 turns with two time cells per half-turn has its
   nodes ``1/32`` either side of each frame). Where it is high, linear interpolation between
   the nodes either side costs nothing; where it is low, the frame needs its own node.
2. **Rest, seen by view pairs.** The motion ratio ``r`` of :mod:`dinr.prep.stillness`
   (1 for a still object, more with motion) of the pairs of views one full turn apart
   (the stillness measure's pairs), and, for parallel beam, of the pairs half a turn apart
   with the later view mirrored about the rotation axis (a parallel view and its opposite
   see the same rays), at the pairs whose midpoints lie nearest each instant of
   ``--instants``. A pair spans its separation in time, so half-turn pairs see rests half as
   long.

3. **The stillness table either way.** :func:`dinr.prep.stillness.read_stillness`'s table
   from full-turn pairs (what training uses) and the same table from mirrored half-turn
   pairs (parallel beam): its mean, and the share of the scan where it is above 0, so the
   scans a change of pairs would touch are known before any training.

Writes the JSON and a Markdown table (``.md``) beside it.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path
from typing import Any

import numpy as np

from dinr.evaluate.metrics import frame_metrics
from dinr.geometry.resolve import geometry_of
from dinr.io.canonical import Sinogram, read_noise_variance, read_sinogram
from dinr.prep.stillness import mirrored, motion_ratios, read_stillness, turn_pairs
from dinr.settings import GeometrySettings, SimulateSettings
from dinr.sim.ellipses import Phantom, rasterise_phantom
from dinr.sim.phantoms import build_phantom
from dinr.sim.scan import simulated_geometry

REPO = Path(__file__).resolve().parents[1]


def settings_of(cls: type, path: Path) -> Any:
    """``cls`` (a settings dataclass) from the workflow's JSON of it, unknown keys dropped."""
    values = json.loads(path.read_text())
    return cls(**{f.name: values[f.name] for f in dataclasses.fields(cls) if f.name in values})


def simulated_phantom(root: Path) -> tuple[SimulateSettings, Phantom, np.ndarray]:
    """The simulate settings, the phantom and the slice heights ``z`` (rows,) of a simulated
    dataset the workflow built at ``root`` (``results/<dataset>/``), for rasterising its
    truth at any instant."""
    simulate = settings_of(SimulateSettings, root / "settings" / "simulate.json")
    geometry, _ = simulated_geometry(simulate, settings_of(GeometrySettings, root / "settings" / "geometry.json"),
                                     root / "raw" / "scan.h5")
    return simulate, build_phantom(simulate), geometry.slice_z()


def blended_frames(root: Path, offsets: list[float]) -> dict[str, list[float]]:
    """Per offset ``h``: each frame's PSNR of the mean of the truth at ``t - h`` and ``t + h``."""
    simulate, phantom, z = simulated_phantom(root)
    instants = (np.arange(simulate.frames) + 0.5) / simulate.frames
    truth = rasterise_phantom(phantom, instants, z)
    mask = geometry_of(read_sinogram(root / "prepared" / "sinogram.h5")).region_mask()
    value_range = float(truth.max() - truth.min())
    out = {}
    for h in offsets:
        blend = 0.5 * (rasterise_phantom(phantom, instants - h, z) + rasterise_phantom(phantom, instants + h, z))
        out[f"{h:g}"] = [round(frame_metrics(truth, blend, i, mask, value_range)["psnr"], 2)
                         for i in range(len(instants))]
    return out


def pair_series(scan: Sinogram, noise: float, half_turn: bool) -> tuple[np.ndarray, np.ndarray]:
    """Normalised midpoints and motion ratios ``r`` of ``scan``'s view pairs (views in
    acquisition order): a full turn apart, or half a turn apart with the later view
    :func:`mirrored` (parallel beam)."""
    earlier, later = turn_pairs(scan.theta, 0.5 if half_turn else 1.0)
    later_views = mirrored(scan.projections[later], scan.center) if half_turn else scan.projections[later]
    ratios = motion_ratios(scan.projections[earlier], later_views, noise, True)
    times = scan.normalised_time(scan.time)
    return 0.5 * (times[earlier] + times[later]), ratios


def pair_kinds(scan: Sinogram) -> dict[str, bool]:
    """The pairings measured on ``scan`` (name: half-turn or not): half-turn pairs on parallel beam only."""
    return {"full turn": False, **({"half turn, mirrored": True} if scan.beam == "parallel" else {})}


def pair_ratios(sinogram: Path, instants: list[float]) -> dict[str, list[float]]:
    """``r`` of full-turn pairs and (parallel beam) mirrored half-turn pairs of all views
    at the pairs whose normalised midpoints lie nearest ``instants``."""
    scan, noise = read_sinogram(sinogram), read_noise_variance(sinogram, True)
    out = {}
    for name, half_turn in pair_kinds(scan).items():
        midpoints, ratios = pair_series(scan, noise, half_turn)
        out[name] = [round(float(ratios[np.argmin(np.abs(midpoints - t))]), 2) for t in instants]
    return out


def stillness_tables(sinogram: Path) -> dict[str, dict[str, float]]:
    """Mean stillness and share of the scan above 0 from full-turn pairs (the one-cell
    candidate's table) and, on parallel beam, from mirrored half-turn pairs (the finer
    candidates'), as training measures them (:func:`dinr.prep.stillness.read_stillness`)."""
    noise = read_noise_variance(sinogram, True)
    turn, half_turn = read_stillness(sinogram, noise, True)
    tables = {"full turn": turn}
    if read_sinogram(sinogram, views=[0]).beam == "parallel":
        tables["half turn, mirrored"] = half_turn
    return {kind: {"mean": round(float(np.mean(t)), 3), "share_above_0": round(float(np.mean(t > 0)), 3)}
            if t is not None else {"mean": 0.0, "share_above_0": 0.0} for kind, t in tables.items()}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--datasets", nargs="+", required=True)
    p.add_argument("--results", type=Path, default=REPO / "results")
    p.add_argument("--offsets", type=float, nargs="+", default=[1 / 32, 1 / 16], help="normalised h")
    p.add_argument("--instants", type=float, nargs="+", default=[0.25, 0.3125, 1 / 3, 0.34375, 0.375, 0.5])
    p.add_argument("--out", type=Path, required=True)
    args = p.parse_args()
    report = {"offsets": args.offsets, "instants": args.instants, "datasets": {}}
    lines = []
    for name in args.datasets:
        root = args.results / name
        blends = blended_frames(root, args.offsets)
        ratios = pair_ratios(root / "prepared" / "sinogram.h5", args.instants)
        tables = stillness_tables(root / "prepared" / "sinogram.h5")
        report["datasets"][name] = {"blended_psnr": blends, "pair_ratios": ratios, "stillness": tables}
        lines += [f"{name}: PSNR of the mean of the truth at t - h and t + h, by frame"]
        lines += [f"  h = {h}: " + " ".join(f"{v:.1f}" for v in values) for h, values in blends.items()]
        lines += [f"{name}: motion ratio r of view pairs at instants " + ", ".join(f"{t:.4g}" for t in args.instants)]
        lines += [f"  {kind}: " + ", ".join(f"{v:g}" for v in values) for kind, values in ratios.items()]
        lines += [f"{name}: stillness table from {kind} pairs: mean {v['mean']:g}, above 0 over "
                  f"{100 * v['share_above_0']:.0f} % of the scan" for kind, v in tables.items()]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=1))
    args.out.with_suffix(".md").write_text("```\n" + "\n".join(lines) + "\n```\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
