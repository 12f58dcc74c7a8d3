"""Where in spatial frequency a reconstruction's error lies, frame by frame.

    python bench/error_bands.py --truth results/gen_oscillate/raw/truth.h5 \
        --recon dinr=results/gen_oscillate/dinr/recon.h5 mbir_sliding=results/gen_oscillate/mbir_sliding/recon.h5 \
        --frames 4 5 6 10 11 --out bench/results/error_bands_oscillate.json

For each frame and reconstruction, the error ``recon - truth`` of every slice (z) is
Fourier transformed over (y, x), and its mean squared value is split over the radial
frequency bands of ``BANDS`` (cycles per pixel; Parseval, so the bands add up to the
frame's mean squared error). Each band is reported as the PSNR its share alone would give
(dB over the truth's range, every pixel): a band at 40 dB holds a tenth of the error
energy of a band at 30 dB. The lowest band is shape and contrast (bias, blur of large
features), the middle bands edges and moving detail, the highest mostly noise. Writes the
JSON and a Markdown table (``.md``) beside it.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import h5py
import numpy as np

#: Radial spatial-frequency bands (cycles per pixel, lower edge included); 0.71 is the corner.
BANDS = ((0.0, 0.08), (0.08, 0.2), (0.2, 0.35), (0.35, 0.71))


def band_psnr(error: np.ndarray, span: float) -> list[float]:
    """PSNR (dB over ``span``) of each band's share of the mean squared ``error``
    (z, y, x), split over the radial frequency of (y, x)."""
    ny, nx = error.shape[-2:]
    radius = np.hypot(np.fft.fftfreq(ny)[:, None], np.fft.fftfreq(nx)[None, :])
    power = np.abs(np.fft.fft2(error, axes=(-2, -1))) ** 2 / (ny * nx)  # sums to the squared error per slice
    shares = [power[:, (radius >= low) & (radius < high)].sum() / error.size for low, high in BANDS]
    return [float(10.0 * np.log10(span**2 / share)) for share in shares]


def frames(truth: Path, recon: Path, selected: list[int] | None) -> list[dict[str, Any]]:
    """Per frame of ``recon`` (frames, z, y, x) against ``truth``: its PSNR (dB, every
    pixel, the truth's range) and each band's."""
    with h5py.File(truth, "r") as f:
        truth_volume, frame_time = f["truth"][...].astype(np.float64), f["time"][...]
    with h5py.File(recon, "r") as f:
        recon_volume = f["recon"][...].astype(np.float64)
    span = float(truth_volume.max() - truth_volume.min())
    rows = []
    for index in selected if selected is not None else range(len(frame_time)):
        error = recon_volume[index] - truth_volume[index]
        rows.append({"frame": index, "time": float(frame_time[index]),
                     "psnr": float(10.0 * np.log10(span**2 / np.mean(error**2))), "bands": band_psnr(error, span)})
    return rows


def table(results: dict[str, list[dict[str, Any]]]) -> str:
    """Markdown: per frame, each reconstruction's PSNR and its bands' (dB)."""
    heads = " / ".join(f"{low:g}-{high:g}" for low, high in BANDS)
    lines = [f"| frame | reconstruction | PSNR (dB) | by band, cycles/px: {heads} |", "|---|---|---|---|"]
    count = len(next(iter(results.values())))
    for position in range(count):
        for name, rows in results.items():
            r = rows[position]
            bands = " / ".join(f"{value:.1f}" for value in r["bands"])
            lines.append(f"| {r['frame']} | {name} | {r['psnr']:.2f} | {bands} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--truth", type=Path, required=True, help="the simulated truth (truth, time)")
    p.add_argument("--recon", nargs="+", required=True, help="NAME=PATH of reconstructions at the truth's frames")
    p.add_argument("--frames", type=int, nargs="+", help="frame indices (default: all)")
    p.add_argument("--out", type=Path, required=True, help="JSON to write (the table beside it, .md)")
    args = p.parse_args()
    results = {}
    for item in args.recon:
        name, _, path = item.partition("=")
        results[name] = frames(args.truth, Path(path), args.frames)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"truth": str(args.truth), "recon": args.recon, "bands": BANDS,
                                    "results": results}, indent=1))
    args.out.with_suffix(".md").write_text(table(results))
    print(table(results))


if __name__ == "__main__":
    main()
