"""DINR against its peers (MBIR, MACE4D) and FBP on every built-in scan.

    python bench/generalisation.py --out bench/results/generalisation.json
    python bench/generalisation.py --retrain-only   # new training defaults, the peers' results reused
    python bench/generalisation.py --datasets gen_rest gen_jerk --train '{time_ends: fitted}' \
        --retrain-only --out bench/results/time_ends_fitted.json   # one training key changed, on some scans

Runs the workflow (``snakemake --cores N``, training on ``resources.train_tasks`` MPI
ranks) on every dataset of ``config/paper.yaml`` (the paper's scans) — the demo, and other phantoms,
deformations, doses, view counts and seeds, every training setting at its default — and
writes the mean PSNR, SSIM, worst / first / last frame PSNR, noise/blur figures and wall
time of each method per dataset as JSON and a markdown table beside it (``.md``), with
DINR's PSNR margin over the best baseline on the mean and in its worst frame.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import yaml

from dinr.evaluate.paper import method_wall

REPO = Path(__file__).resolve().parents[1]
CONFIG = REPO / "config" / "paper.yaml"


def run_snakemake(targets: list[str], cores: int, overlay: dict[str, object] | None = None,
                  options: list[str] | None = None) -> None:
    """Build ``targets`` with the workflow from the paper's config, then ``overlay`` (a
    config written to a second config file: Snakemake's ``--config`` would read a nested
    number as a string), with further Snakemake ``options``."""
    with tempfile.TemporaryDirectory() as scratch:
        configs = [str(CONFIG)]
        if overlay:
            path = Path(scratch) / "overlay.yaml"
            path.write_text(yaml.safe_dump(overlay))
            configs.append(str(path))
        command = [sys.executable, "-m", "snakemake", "--cores", str(cores), *targets, "--configfile", *configs]
        subprocess.run(command + (options or []), cwd=REPO, check=True)


def run_workflow(datasets: list[str], cores: int, retrain_only: bool = False,
                 train: dict[str, object] | None = None) -> None:
    """Every dataset's metrics through the workflow (outputs under results/<dataset>/).
    ``retrain_only``: rewrite each dataset's training settings and rerun what follows from
    them alone (training, render, evaluate), keeping the prepared scans and the baselines
    on disk (Snakemake reruns by file times only) — for comparing training settings.
    ``train``: training keys set for every dataset (:func:`run_snakemake`'s overlay)."""
    options = ["--rerun-triggers", "mtime", "--forcerun",
               *(f"results/{name}/settings/train.json" for name in datasets)] if retrain_only else []
    run_snakemake([f"results/{name}/metrics.json" for name in datasets], cores, {"train": train} if train else None,
                  options)


def train_keys(text: str, option: str = "--train") -> dict[str, object]:
    """``option``'s YAML mapping of training keys, or a clear error naming it."""
    keys = yaml.safe_load(text)
    if not isinstance(keys, dict):
        raise SystemExit(f"{option}: expected a YAML mapping of training keys, e.g. '{{time_ends: fitted}}', got {text!r}")
    return keys


def table(rows: list[dict[str, object]]) -> str:
    """Markdown: one line per dataset, PSNR / SSIM (wall s) per method, DINR's PSNR
    margin over the best baseline on the mean (with whether its SSIM is higher too) and
    in its worst frame (over the best baseline of that frame), and the first / last
    frame of DINR and of the best baseline; a row trained with `--train` keys names them
    beside the scan."""
    methods = list(dict.fromkeys(m for row in rows for m in row["methods"]))  # type: ignore[attr-defined]
    head = ("| dataset | scan | " + " | ".join(f"{m} PSNR / SSIM (s)" for m in methods)
            + " | DINR - best: mean (dB) | worst frame (dB) | first / last: DINR | best |")
    lines = [head, "|---" * (len(methods) + 6) + "|"]
    for row in rows:
        scores: dict[str, dict[str, float]] = row["methods"]  # type: ignore[assignment]
        wall: dict[str, float] = row["wall_s"]  # type: ignore[assignment]
        margin: dict[str, object] = row["dinr_margin"]  # type: ignore[assignment]
        cells = [f"{scores[m]['psnr_mean']:.2f} / {scores[m]['ssim_mean']:.3f} ({method_wall(wall, m):.0f})"
                 if m in scores else "–" for m in methods]
        best = str(margin["best_mean_peer"])
        ssim = "higher" if scores["dinr"]["ssim_mean"] > max(v["ssim_mean"] for m, v in scores.items() if m != "dinr") \
            else "NOT higher"
        ends = [f"{scores[m]['psnr_first']:.2f} / {scores[m]['psnr_last']:.2f}" for m in ("dinr", best)]
        changed = "".join(f"; **{key} {value}**" for key, value in row.get("train", {}).items())
        lines.append(f"| {row['dataset']} | {row['scan']}{changed} | " + " | ".join(cells)
                     + f" | {margin['mean']:+.2f} over {best}, SSIM {ssim} | {margin['worst_frame']:+.2f} "
                     f"(frame {margin['worst_frame_index']}) | {ends[0]} | {ends[1]} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "generalisation.json")
    parser.add_argument("--cores", type=int, default=2)
    parser.add_argument("--retrain-only", action="store_true",
                        help="retrain DINR with the current training settings, reusing the baselines on disk")
    parser.add_argument("--datasets", nargs="+", help="these datasets of config/paper.yaml only (default: all)")
    parser.add_argument("--train", help="training keys for every dataset, as YAML, e.g. '{time_ends: fitted}'")
    args = parser.parse_args()
    datasets = yaml.safe_load(CONFIG.read_text())["datasets"]
    if args.datasets:
        unknown = sorted(set(args.datasets) - set(datasets))
        if unknown:
            parser.error(f"not datasets of {CONFIG}: {', '.join(unknown)}")
        datasets = {name: datasets[name] for name in args.datasets}
    train = train_keys(args.train) if args.train else {}
    run_workflow(list(datasets), args.cores, args.retrain_only, train)
    rows = []
    for name, entry in datasets.items():
        report = json.loads((REPO / "results" / name / "metrics.json").read_text())
        methods = {m: {k: v for k, v in scores.items() if k != "per_frame"} for m, scores in report["methods"].items()}
        scan = ", ".join(f"{k} {v}" for k, v in entry.get("simulate", {}).items() if k != "seed") or "the demo"
        rows.append({"dataset": name, "scan": scan, "train": train, "methods": methods,
                     "dinr_margin": report["dinr_margin"], "wall_s": report["wall_s"]})
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"datasets": rows}, indent=2) + "\n")
    text = table(rows)
    args.out.with_suffix(".md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
