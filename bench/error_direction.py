"""Which directions a reconstruction's error hides from: along the views measured at each
frame's instant, or across them.

    python bench/error_direction.py --sinogram results/gen_accelerate/prepared/sinogram.h5 \
        --truth results/gen_accelerate/raw/truth.h5 --recon dinr=results/gen_accelerate/dinr/recon.h5 \
        --out bench/results/error_direction.json

A time-resolved field checked by held-out views is checked, at each instant, only along
the direction the scan was looking then. An error that projects to little along those
directions and to much across them is one the held-out residual cannot see (the field
fits each instant's few directions and leaves the rest to its priors). For each frame
``f`` (its instant ``t_f`` from the truth's ``time``) and each reconstruction, the
error ``recon - truth`` in the detector's middle row, inside the inscribed circle, is
projected (parallel beam, ``skimage.transform.radon``, whose angle equals the sinogram's
``theta`` modulo 180 degrees on the paper's parallel scans) at every 2 degrees; the
script reports its mean squared projection within ``NEAR_DEG`` of the direction measured at
``t_f`` (``theta`` interpolated at ``t_f``), beyond ``FAR_DEG`` of it, and their ratio
(far / near: about 1 for an error with no preferred direction). Writes the JSON and a
Markdown table (``.md``) beside it. Cone-beam scans are read as if parallel: a diagnostic,
not a measurement of the cone geometry.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import h5py
import numpy as np
from skimage.transform import radon

#: Directions (degrees) within this of the one measured at a frame's instant count as near.
NEAR_DEG = 11.25
#: Directions (degrees) beyond this from the one measured at a frame's instant count as far.
FAR_DEG = 45.0
#: Projection angles (degrees, over a half-turn).
ANGLES = np.arange(0.0, 180.0, 2.0)


def direction_energy(error: np.ndarray, measured_deg: float) -> tuple[float, float]:
    """Mean squared parallel projection of the 2D ``error`` (rows, cols; zero outside the
    inscribed circle) near and far from the direction ``measured_deg`` (degrees)."""
    energy = (radon(error, ANGLES, circle=True) ** 2).sum(axis=0)
    gap = np.abs((ANGLES - measured_deg + 90.0) % 180.0 - 90.0)
    return float(energy[gap < NEAR_DEG].mean()), float(energy[gap > FAR_DEG].mean())


def frames(sinogram: Path, truth: Path, recon: Path) -> list[dict[str, Any]]:
    """Per frame of ``recon`` against ``truth``: its instant, the direction measured then,
    the near and far error energies, their ratio and the frame's PSNR over the truth's range."""
    with h5py.File(sinogram, "r") as f:
        view_time, theta = f["time"][...], f["theta"][...]
    with h5py.File(truth, "r") as f:
        truth_volume, frame_time = f["truth"][...], f["time"][...]
    with h5py.File(recon, "r") as f:
        recon_volume = f["recon"][...]
    n = truth_volume.shape[-1]
    yy, xx = np.mgrid[:n, :n]
    inside = (yy - (n - 1) / 2) ** 2 + (xx - (n - 1) / 2) ** 2 < (n / 2 - 1) ** 2
    row = truth_volume.shape[1] // 2
    span = float(truth_volume.max() - truth_volume.min())
    rows = []
    for index, instant in enumerate(frame_time):
        measured = float(np.degrees(np.interp(instant, view_time, theta)) % 180.0)
        error = (recon_volume[index, row] - truth_volume[index, row]) * inside
        near, far = direction_energy(error, measured)
        mse = float(np.mean((recon_volume[index] - truth_volume[index]) ** 2))
        rows.append({"frame": index, "time": float(instant), "measured_deg": measured, "near": near, "far": far,
                     "far_over_near": far / near, "psnr": 10.0 * np.log10(span**2 / mse)})
    return rows


def table(results: dict[str, list[dict[str, Any]]]) -> str:
    """Markdown: per reconstruction, each frame's far / near ratio and PSNR."""
    lines = ["| reconstruction | frame | PSNR (dB; every pixel, the truth's range) | far / near |", "|---|---|---|---|"]
    for name, rows in results.items():
        lines += [f"| {name} | {r['frame']} | {r['psnr']:.2f} | {r['far_over_near']:.1f} |" for r in rows]
    return "\n".join(lines) + "\n"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--sinogram", type=Path, required=True, help="the prepared sinogram (time, theta)")
    p.add_argument("--truth", type=Path, required=True, help="the simulated truth (truth, time)")
    p.add_argument("--recon", nargs="+", required=True, help="NAME=PATH of reconstructions at the truth's frames")
    p.add_argument("--out", type=Path, required=True, help="JSON to write (the table beside it, .md)")
    args = p.parse_args()
    results = {}
    for item in args.recon:
        name, _, path = item.partition("=")
        results[name] = frames(args.sinogram, args.truth, Path(path))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"sinogram": str(args.sinogram), "truth": str(args.truth),
                                    "near_deg": NEAR_DEG, "far_deg": FAR_DEG, "results": results}, indent=1))
    args.out.with_suffix(".md").write_text(table(results))
    print(table(results))


if __name__ == "__main__":
    main()
