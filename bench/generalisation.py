"""DINR against FBP on scans the defaults were never tuned on.

    python bench/generalisation.py --out bench/results/generalisation.json

Runs the workflow (``snakemake --cores N``, training on ``resources.train_tasks`` MPI
ranks) on every dataset of ``bench/generalisation.yaml`` — other phantoms, doses, view
counts and seeds than the demo's, every training setting at its default — and writes
the mean PSNR, SSIM and noise/blur figures of each method per dataset as JSON and a
markdown table beside it (``.md``), with DINR's PSNR margin over sliding-window FBP.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
CONFIG = REPO / "bench" / "generalisation.yaml"
METHODS = ("dinr", "fbp_sliding", "fbp_static")


def run_workflow(datasets: list[str], cores: int) -> None:
    """Every dataset's metrics through the workflow (outputs under results/<dataset>/)."""
    targets = [f"results/{name}/metrics.json" for name in datasets]
    command = [sys.executable, "-m", "snakemake", "--cores", str(cores), *targets, "--configfile", str(CONFIG)]
    subprocess.run(command, cwd=REPO, check=True)


def table(rows: list[dict[str, object]]) -> str:
    """Markdown: one line per dataset, PSNR / SSIM per method and DINR's margin."""
    head = "| dataset | scan | " + " | ".join(f"{m} PSNR / SSIM" for m in METHODS) + " | DINR - sliding (dB) |"
    lines = [head, "|---" * (len(METHODS) + 3) + "|"]
    for row in rows:
        methods: dict[str, dict[str, float]] = row["methods"]  # type: ignore[assignment]
        cells = [f"{methods[m]['psnr_mean']:.2f} / {methods[m]['ssim_mean']:.3f}" for m in METHODS]
        margin = methods["dinr"]["psnr_mean"] - methods["fbp_sliding"]["psnr_mean"]
        lines.append(f"| {row['dataset']} | {row['scan']} | " + " | ".join(cells) + f" | {margin:+.2f} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "generalisation.json")
    parser.add_argument("--cores", type=int, default=2)
    args = parser.parse_args()
    datasets = yaml.safe_load(CONFIG.read_text())["datasets"]
    run_workflow(list(datasets), args.cores)
    rows = []
    for name, entry in datasets.items():
        report = json.loads((REPO / "results" / name / "metrics.json").read_text())
        methods = {m: {k: v for k, v in report["methods"][m].items() if k != "per_frame"} for m in METHODS}
        scan = ", ".join(f"{k} {v}" for k, v in entry["simulate"].items() if k != "seed")
        rows.append({"dataset": name, "scan": scan, "methods": methods, "wall_s": report["wall_s"]})
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"datasets": rows}, indent=2) + "\n")
    text = table(rows)
    args.out.with_suffix(".md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
