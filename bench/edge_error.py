"""Where DINR's frames lose to the best peer: at the truth's edges or in its flat parts.

    python bench/edge_error.py --datasets gen_late gen_oscillate --out bench/results/edge_error.json

For each dataset built by the workflow (``results/<dataset>/``: the truth, DINR's and the
peers' reconstructions, ``metrics.json``) and each frame, the RMS error (1/pixel) of DINR
and of that frame's best peer inside the region every view sees, split into edge pixels
(where the truth's 3 x 3 in-plane morphological gradient exceeds ``EDGE_FRACTION`` of its
maximum) and the rest. Writes the JSON and a Markdown table (``.md``) of DINR's worst
frame and its best frame per dataset. Each method's whole 4D volume is read at once: meant
for the paper's simulated scans (16 MiB a method at 128 pixels), not for beamline volumes.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import h5py
import numpy as np
from scipy import ndimage

REPO = Path(__file__).resolve().parents[1]
#: An edge pixel: the truth's in-plane 3 x 3 gradient above this fraction of the truth's maximum.
EDGE_FRACTION = 0.1


def split_rms(error: np.ndarray, inside: np.ndarray, edges: np.ndarray) -> tuple[float, float]:
    """RMS of ``error`` over edge and over flat pixels of ``inside``."""
    return (float(np.sqrt(np.mean(error[inside & edges] ** 2))),
            float(np.sqrt(np.mean(error[inside & ~edges] ** 2))))


def dataset_frames(root: Path) -> list[dict[str, Any]]:
    """Per frame: DINR's margin, its best peer, and both methods' edge and flat RMS error."""
    from dinr.train.checkpoint import load_checkpoint

    metrics = json.loads((root / "metrics.json").read_text())
    margins = metrics["dinr_margin"]["per_frame"]
    psnr = {m: [f["psnr"] for f in v["per_frame"]] for m, v in metrics["methods"].items()}
    mask = load_checkpoint(root / "dinr" / "model.pt").beam_geometry().region_mask()
    with h5py.File(root / "raw" / "truth.h5") as f:
        truth = f["truth"][...]
    volumes = {}
    for method in psnr:
        with h5py.File(root / method / "recon.h5") as f:
            volumes[method] = f["recon"][...]
    inside = np.broadcast_to(mask, truth.shape[1:])
    rows = []
    for frame, margin in enumerate(margins):
        best = max((m for m in psnr if m != "dinr"), key=lambda m: psnr[m][frame])
        edges = ndimage.morphological_gradient(truth[frame], size=(1, 3, 3)) > EDGE_FRACTION * truth[frame].max()
        row: dict[str, Any] = {"frame": frame, "margin_db": margin, "best_peer": best}
        for method in ("dinr", best):
            row[method if method == "dinr" else "peer"] = dict(zip(
                ("edge_rms", "flat_rms"), split_rms(volumes[method][frame] - truth[frame], inside, edges)))
        rows.append(row)
    return rows


def table(report: dict[str, list[dict[str, Any]]]) -> str:
    """Markdown: DINR's worst and best frame per dataset, edge and flat RMS of DINR and the
    frame's best peer."""
    lines = ["| scan | frame | DINR - best peer (dB) | best peer | edge RMS: DINR / peer | flat RMS: DINR / peer |",
             "|---" * 6 + "|"]
    for name, rows in report.items():
        for label, row in (("worst", min(rows, key=lambda r: r["margin_db"])),
                           ("best", max(rows, key=lambda r: r["margin_db"]))):
            lines.append(f"| {name} | {row['frame']} ({label}) | {row['margin_db']:+.2f} | {row['best_peer']} | "
                         f"{row['dinr']['edge_rms']:.2e} / {row['peer']['edge_rms']:.2e} | "
                         f"{row['dinr']['flat_rms']:.2e} / {row['peer']['flat_rms']:.2e} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", nargs="+", required=True, help="datasets with workflow outputs under results/")
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "edge_error.json")
    args = parser.parse_args()
    missing = [name for name in args.datasets if not (REPO / "results" / name / "metrics.json").exists()]
    if missing:
        parser.error(f"no results/<dataset>/metrics.json for: {', '.join(missing)} (build them with the workflow)")
    report = {name: dataset_frames(REPO / "results" / name) for name in args.datasets}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"edge_fraction": EDGE_FRACTION, "datasets": report}, indent=2) + "\n")
    text = table(report)
    args.out.with_suffix(".md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
