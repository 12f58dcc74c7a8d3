"""Can a short training tell which time grid a scan needs? Held-out residuals of pilots.

    python bench/pilot_ranking.py --datasets gen_jerk gen_late --epochs 2 --out bench/results/pilot_ranking.json
    python bench/pilot_ranking.py --tabulate-only ...   # the pilots already trained, tabulated again

For each named scan of ``config/paper.yaml``, two pilot trainings through the workflow
(``snakemake --cores N``), each capped at ``--epochs`` epochs (``train.max_epochs``; under
``steps: auto`` with held-out views a cap does not change the steps taken, so a pilot is
the start of an uncapped run):

- ``pilot1_<scan>``: every training key at its default (one time cell per half-turn, no
  temporal prior);
- ``pilot2_<scan>``: two time cells per half-turn, the spatial TV weight of ``pilot1`` and
  a temporal TV weight of twice that (the 2-cell priors measured best in
  ``bench/results/time_cells.md``).

Writes, per scan, each pilot's held-out residual curve, its best residual, and which
pilot predicts the held-out views better (JSON, and a markdown table beside it). The
held-out residual is what a data-driven choice of the time grid would be made on; the
pilots' PSNR against truth is not computed (render and score a pilot through the
workflow for that).
"""

from __future__ import annotations

import argparse
import json
from datetime import date
from pathlib import Path

import yaml

from dinr.train.checkpoint import load_checkpoint
from generalisation import CONFIG, REPO, run_snakemake  # bench/, the script's own folder, is on sys.path


def pilot_config(scans: dict[str, dict[str, object]], names: list[str], epochs: float,
                 spatial: dict[str, float] | None) -> dict[str, object]:
    """The workflow config of the pilots of ``names`` (entries of ``scans``): ``pilot1_``
    datasets, or with ``spatial`` (scan -> pilot1's spatial TV weight) ``pilot2_`` ones."""
    datasets = {}
    for name in names:
        entry = dict(scans[name])
        train = {**dict(entry.get("train") or {}), "max_epochs": epochs}  # type: ignore[call-overload]
        if spatial is None:
            datasets[f"pilot1_{name}"] = {**entry, "train": train}
        else:
            train.update(time_cells_per_half_turn=2, tv_weight=spatial[name], tv_time_weight=2 * spatial[name])
            datasets[f"pilot2_{name}"] = {**entry, "train": train}
    return {"datasets": datasets}


def train_pilots(config: dict[str, object], cores: int) -> None:
    """Train the datasets of ``config`` (their models only) after the paper's config."""
    run_snakemake([f"results/{name}/dinr/model.pt" for name in config["datasets"]], cores,  # type: ignore[attr-defined]
                  config)


def pilot_record(name: str) -> dict[str, object]:
    """A pilot's settings that differ between the two, prior weights, steps and held-out
    residual curve (step, residual), read from its final model."""
    state = load_checkpoint(REPO / "results" / name / "dinr" / "model.pt")
    curve = [[int(step), float(residual)] for step, residual, _ in state.validation]
    return {"time_cells_per_half_turn": state.settings["time_cells_per_half_turn"],
            "tv_weight": state.prior["tv_weight"], "tv_time_weight": state.prior["tv_time_weight"],
            "steps": state.step, "stop_reason": state.stop_reason, "heldout_curve": curve,
            "best_heldout": min(residual for _, residual in curve)}


def table(rows: list[dict[str, object]]) -> str:
    """Markdown: per scan, each pilot's prior weights and best held-out residual, and the
    2-cell pilot's residual relative to the 1-cell one's."""
    lines = ["| scan | steps | 1 cell: TV space / time | best held-out | 2 cells: TV space / time | best held-out "
             "| 2 cells / 1 cell |", "|---|---|---|---|---|---|---|"]
    for row in rows:
        one, two = row["pilot1"], row["pilot2"]  # type: ignore[index]
        lines.append(f"| {row['scan']} | {one['steps']} | {one['tv_weight']:.4g} / {one['tv_time_weight']:.4g} "
                     f"| {one['best_heldout']:.5f} | {two['tv_weight']:.4g} / {two['tv_time_weight']:.4g} "
                     f"| {two['best_heldout']:.5f} | {two['best_heldout'] / one['best_heldout']:.3f} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--datasets", nargs="+", required=True, help="scans of config/paper.yaml")
    parser.add_argument("--epochs", type=float, default=2.0, help="each pilot's cap (train.max_epochs)")
    parser.add_argument("--cores", type=int, default=2)
    parser.add_argument("--tabulate-only", action="store_true", help="read the pilots' models, train nothing")
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "pilot_ranking.json")
    args = parser.parse_args()
    scans = yaml.safe_load(CONFIG.read_text())["datasets"]
    unknown = [name for name in args.datasets if name not in scans]
    if unknown:
        raise SystemExit(f"--datasets: {', '.join(unknown)} not in {CONFIG}")
    if not args.tabulate_only:
        train_pilots(pilot_config(scans, args.datasets, args.epochs, None), args.cores)
    first = {name: pilot_record(f"pilot1_{name}") for name in args.datasets}
    if not args.tabulate_only:
        spatial = {name: float(record["tv_weight"]) for name, record in first.items()}  # type: ignore[arg-type]
        train_pilots(pilot_config(scans, args.datasets, args.epochs, spatial), args.cores)
    rows = [{"scan": name, "pilot1": first[name], "pilot2": pilot_record(f"pilot2_{name}")} for name in args.datasets]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"epochs": args.epochs, "datasets": rows}, indent=1))
    header = (f"Held-out residual after pilots of {args.epochs:g} epochs (`train.max_epochs`, `steps: auto`), one "
              "time cell per half-turn (defaults) against two with the temporal TV prior; written by "
              f"`python bench/pilot_ranking.py --datasets {' '.join(args.datasets)} --epochs {args.epochs:g}` "
              f"on {date.today().isoformat()}. Lower is better; the last column below 1 means two cells predict "
              "the held-out views better.\n\n")
    args.out.with_suffix(".md").write_text(header + table(rows))
    print(table(rows))


if __name__ == "__main__":
    main()
