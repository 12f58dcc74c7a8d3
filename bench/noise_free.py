"""Is a frame's error noise or model? A simulated scan again without photon noise, and where
its frames lose.

    python bench/noise_free.py inputs --dataset gen_oscillate --out .sweep/in_clean
    python bench/defaults_sweep.py run --inputs .sweep/in_clean ...   # DINR on it
    dinr baseline --method mbir_sliding --sinogram .sweep/in_clean/gen_oscillate/sinogram.h5 ...
    python bench/noise_free.py regions --dataset gen_oscillate --inputs .sweep/in_clean \\
        --frames 4 5 6 10 --moving-between 4 6 \\
        --volume dinr=<recon.h5> --volume mbir_sliding=<recon.h5> --model dinr=<model.pt> \\
        --out bench/results/noise_free_oscillate.json

``inputs`` simulates the workflow's scan ``results/<dataset>/`` again (its ``simulate``,
``convert`` and ``prepare`` settings) with every photon count at its expectation (no
Poisson noise: the same phantom, views, flats and truth), prepares it as the workflow does,
and writes ``sinogram.h5``, ``truth.h5`` and the workflow's ``train.json`` / ``render.json``
into ``<out>/<dataset>/``, the layout ``bench/defaults_sweep.py`` reads. The noise-free
sinogram's ``noise_variance`` attributes are set to the noisy scan's, so every prior that
follows the noise (``tv_weight: auto``, the stillness) resolves as on the noisy scan.

``regions`` scores reconstructions of it (``--volume name=path``, each a 4D ``/recon``)
frame by frame: PSNR (the evaluate stage's metrics), the RMS error where the object moves
(the truth changes by over :data:`MOVING_FRACTION` of its maximum between the two frames
of ``--moving-between``) and elsewhere in the region every view sees,
and those RMS errors against the truth blurred in space by a Gaussian of each
:data:`BLUR_SIGMAS` (pixels): a part whose error is least against a blurred truth is that
blurred. With ``--model name=path`` the field is also rendered at ``--instants`` instants
between ``--span`` and scored against the phantom rasterised there (PSNR by instant).
Writes the JSON and a Markdown table beside it.
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
from pathlib import Path
from types import SimpleNamespace
from typing import Any
from unittest import mock

import h5py
import numpy as np
from scipy import ndimage

from dinr.cli import main as dinr_main
from dinr.evaluate.metrics import frame_metrics
from dinr.geometry.resolve import geometry_of
from dinr.inr.render import SliceRenderer
from dinr.io.canonical import read_sinogram
from dinr.sim.ellipses import rasterise_phantom
from dinr.train.checkpoint import load_checkpoint
from turning_points import REPO, simulated_phantom  # bench/, the script's own folder, is on sys.path

#: Where the object moves: the truth's change between two frames above this share of its maximum.
MOVING_FRACTION = 0.05

#: Gaussian blurs in space (pixels) each part's error is measured against.
BLUR_SIGMAS = (0.0, 0.3, 0.5, 0.7, 0.9)


class ExpectedCounts:
    """Stands in for ``numpy.random.default_rng`` in the simulator: ``poisson`` returns its
    mean, rounded to counts for the projections (drawn without a size); the flats and darks
    (drawn with one) are returned as means, which the simulator's 16-bit conversion truncates:
    under one count of some 10^4, a bias below 10^-4 in the line integrals."""

    def __init__(self, seed: object = None) -> None:
        del seed

    def poisson(self, lam: Any, size: Any = None) -> np.ndarray:
        lam = np.asarray(lam, dtype=float)
        return np.rint(lam) if size is None else np.broadcast_to(lam, size).copy()


class NumpyOfExpectedCounts:
    """numpy as the simulator's module sees it, but for ``random.default_rng``:
    :class:`ExpectedCounts` (the phantoms draw their own shapes from numpy as before)."""

    random = SimpleNamespace(default_rng=ExpectedCounts)

    def __getattr__(self, name: str) -> Any:
        return getattr(np, name)


def make_inputs(dataset: str, out: Path) -> None:
    """The noise-free inputs of ``dataset`` (module note) in ``out/<dataset>/``."""
    root, target = REPO / "results" / dataset, out / dataset
    settings = root / "settings"
    target.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp, mock.patch("dinr.sim.scan.np", NumpyOfExpectedCounts()):
        work = Path(tmp)
        steps = [["simulate", "--settings", settings / "simulate.json", "--geometry", settings / "geometry.json",
                  "--raw", work / "scan.h5", "--truth", target / "truth.h5"],
                 ["convert", "--settings", settings / "convert.json", "--raw", work / "scan.h5",
                  "--out", work / "canonical.h5"],
                 ["prepare", "--settings", settings / "prepare.json", "--geometry", settings / "geometry.json",
                  "--raw", work / "canonical.h5", "--out", target / "sinogram.h5"]]
        for step in steps:
            if dinr_main([str(arg) for arg in step]):
                raise SystemExit(f"dinr {step[0]} failed for {dataset}")
    with h5py.File(root / "prepared" / "sinogram.h5", "r") as noisy, h5py.File(target / "sinogram.h5", "r+") as clean:
        difference = noisy["projections"][...] - clean["projections"][...]
        print(f"{dataset}: noisy minus noise-free line integrals: mean {difference.mean():.3g}, "
              f"sd {difference.std():.3g} (noise variance {noisy.attrs['noise_variance']:.3g})")
        for key in ("noise_variance", "noise_variance_weighted"):
            clean.attrs[key] = noisy.attrs[key]
        clean.attrs["bench_noise_free"] = (f"bench/noise_free.py: counts at their expectation; noise_variance "
                                           f"attributes copied from {root / 'prepared' / 'sinogram.h5'}")
    with h5py.File(root / "raw" / "truth.h5", "r") as noisy, h5py.File(target / "truth.h5", "r") as clean:
        if not np.array_equal(noisy["truth"][...], clean["truth"][...]):
            raise SystemExit(f"{dataset}: the noise-free scan's truth differs from the workflow's")
    for name in ("train.json", "render.json"):
        shutil.copyfile(settings / name, target / name)


def region_errors(truth: np.ndarray, frame: np.ndarray, parts: dict[str, np.ndarray]) -> dict[str, dict[str, float]]:
    """Per part (a (y, x) mask) and blur: the RMS error (1/pixel) of the (z, y, x) ``frame``
    against the ``truth`` blurred in-plane by each of :data:`BLUR_SIGMAS`."""
    errors: dict[str, dict[str, float]] = {name: {} for name in parts}
    for sigma in BLUR_SIGMAS:
        blurred = np.stack([ndimage.gaussian_filter(s, sigma) if sigma else s for s in truth])
        for name, part in parts.items():
            errors[name][f"{sigma:g}"] = round(float(np.sqrt(np.mean((frame - blurred)[:, part] ** 2))), 5)
    return errors


def field_by_instant(root: Path, model: Path, mask: np.ndarray, value_range: float, span: tuple[float, float],
                     instants: int) -> list[dict[str, float]]:
    """A trained field's PSNR against the phantom rasterised at ``instants`` instants over ``span``."""
    _, phantom, z = simulated_phantom(root)
    state = load_checkpoint(model)
    render = SliceRenderer(state.field(), state.beam_geometry())
    times = np.linspace(span[0], span[1], instants)
    truth = rasterise_phantom(phantom, times, z)
    rows = []
    for t, true in zip(times, truth):
        volume = np.stack([render(float(t), row) for row in range(len(z))])
        rows.append({"t": round(float(t), 5),
                     "psnr": round(frame_metrics(true[None], volume[None], 0, mask, value_range)["psnr"], 2)})
    return rows


def regions(dataset: str, inputs: Path, frames: list[int], between: list[int], volumes: dict[str, Path],
            models: dict[str, Path], span: tuple[float, float], instants: int) -> dict[str, Any]:
    """The ``regions`` report of the module note."""
    with h5py.File(inputs / dataset / "truth.h5", "r") as f:
        truth = f["truth"][...]
    mask = geometry_of(read_sinogram(inputs / dataset / "sinogram.h5", views=[0])).region_mask()
    value_range = float(truth.max() - truth.min())
    moving = (np.abs(truth[between[0]] - truth[between[1]]).max(axis=0) > MOVING_FRACTION * truth.max()) & mask[0]
    parts = {"moving": moving, "rest": mask[0] & ~moving}
    report: dict[str, Any] = {"dataset": dataset, "frames": frames, "moving_between": between,
                              "moving_share": round(float(moving.mean()), 4), "volumes": {}, "by_instant": {}}
    for name, path in volumes.items():
        with h5py.File(path, "r") as f:
            recon = f["recon"][...]
        report["volumes"][name] = {"path": str(path), "frames": {
            str(k): {"psnr": round(frame_metrics(truth, recon, k, mask, value_range)["psnr"], 2),
                     "rms_by_blur": region_errors(truth[k], recon[k], parts)} for k in frames}}
    for name, path in models.items():
        report["by_instant"][name] = field_by_instant(REPO / "results" / dataset, path, mask, value_range, span,
                                                      instants)
    return report


def table(report: dict[str, Any]) -> list[str]:
    lines = [f"# {report['dataset']}: frames by region (moving: {report['moving_share']:.1%} of the slice)", "",
             "| volume | frame | PSNR | RMS moving, truth blurred by σ = " + ", ".join(f"{s:g}" for s in BLUR_SIGMAS)
             + " | RMS rest, same |", "|---|---|---|---|---|"]
    for name, entry in report["volumes"].items():
        for frame, row in entry["frames"].items():
            rms = row["rms_by_blur"]
            moving, rest = (" ".join(f"{v:.4f}" for v in rms[part].values()) for part in ("moving", "rest"))
            lines.append(f"| {name} | {frame} | {row['psnr']:.2f} | {moving} | {rest} |")
    for name, rows in report["by_instant"].items():
        lines += ["", f"{name}, PSNR by instant: " + ", ".join(f"{r['t']:.4f} {r['psnr']:.2f}" for r in rows)]
    return lines


def named_paths(values: list[str]) -> dict[str, Path]:
    pairs = [value.split("=", 1) for value in values]
    if any(len(pair) != 2 for pair in pairs):
        raise SystemExit(f"expected name=path, got {values}")
    return {name: Path(path) for name, path in pairs}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    make = commands.add_parser("inputs", help="the noise-free scan's inputs for bench/defaults_sweep.py")
    make.add_argument("--dataset", required=True)
    make.add_argument("--out", type=Path, required=True)
    score = commands.add_parser("regions", help="frames by region and blur, and a field by instant")
    score.add_argument("--dataset", required=True)
    score.add_argument("--inputs", type=Path, required=True, help="the folder `inputs` wrote")
    score.add_argument("--frames", type=int, nargs="+", required=True)
    score.add_argument("--moving-between", type=int, nargs=2, required=True,
                       help="two frames: where the truth changes between them, the object moves")
    score.add_argument("--volume", action="append", default=[], help="name=recon.h5 (4D /recon)")
    score.add_argument("--model", action="append", default=[], help="name=model.pt, rendered by instant")
    score.add_argument("--span", type=float, nargs=2, default=(0.25, 0.4375))
    score.add_argument("--instants", type=int, default=25)
    score.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    if args.command == "inputs":
        make_inputs(args.dataset, args.out)
        return
    report = regions(args.dataset, args.inputs, args.frames, args.moving_between, named_paths(args.volume),
                     named_paths(args.model), tuple(args.span), args.instants)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=1) + "\n")
    text = "\n".join(table(report))
    args.out.with_suffix(".md").write_text(text + "\n")
    print(text)


if __name__ == "__main__":
    main()
