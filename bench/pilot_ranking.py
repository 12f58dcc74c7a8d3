"""Which time cells does each scan's own data choose? ``time_cells_per_half_turn: auto``'s pilots.

    python bench/pilot_ranking.py --datasets demo gen_jerk --out bench/results/time_cells_auto.json
    python bench/pilot_ranking.py --tabulate-only ...   # the models already trained, tabulated again

Trains each named scan of ``config/paper.yaml`` through the workflow (``snakemake --cores N``,
its model only) with every training key at its default but ``max_epochs`` capped at the
pilots' length (``train.time_cells_pilot_epochs``), so each run stops right after
:mod:`dinr.train.time_cells` has chosen: the winner's pilot is the run. (On a scan whose
pilots end at ``time_cells_pilot_rays`` first, wider than the paper's 64-pixel scans, the
winner trains on to that cap.) A later run at the
defaults continues it (under ``steps: auto`` with held-out views a cap is not part of the
run's identity). A scan already trained further keeps its model; its pilots are the same.

Writes, per scan, each pilot's priors, steps, held-out residual curve and best residual,
their ratio and the cells chosen (JSON, and a markdown table beside it). The pilots' PSNR
against truth is not computed (score the full run through the workflow for that).
"""

from __future__ import annotations

import argparse
import json
from datetime import date
from pathlib import Path

import yaml

from dinr.settings import section_defaults
from dinr.train.checkpoint import load_checkpoint
from dinr.train.time_cells import pilot_path
from generalisation import CONFIG, REPO, run_snakemake  # bench/, the script's own folder, is on sys.path


def pilot_records(name: str) -> dict[str, object]:
    """The choice made for scan ``name``, read from its model (``pilots``), with each
    pilot's held-out residual curve (step, residual) from its checkpoint."""
    model = REPO / "results" / name / "dinr" / "model.pt"
    pilots = load_checkpoint(model).pilots
    if not pilots:
        raise SystemExit(f"{model}: no pilots recorded (trained with time_cells_per_half_turn fixed?)")
    candidates = []
    for candidate in pilots["candidates"]:
        pilot = load_checkpoint(pilot_path(model.with_name("checkpoint.pt"), candidate["time_cells_per_half_turn"]))
        candidates.append({**candidate, "heldout_curve": [[int(step), float(residual)]
                                                          for step, residual, _ in pilot.validation]})
    return {"scan": name, "pilot_epochs": pilots["pilot_epochs"], "chosen": pilots["chosen"],
            "candidates": candidates}


def best_until(candidate: dict[str, object], step: int) -> float:
    """A pilot's best held-out residual up to ``step`` (from its recorded curve)."""
    return min(residual for at, residual in candidate["heldout_curve"] if at <= step)  # type: ignore[union-attr]


def table(rows: list[dict[str, object]]) -> str:
    """Markdown: per scan, each pilot's prior weights and best held-out residual, the
    2-cell pilot's over the 1-cell one's (also had the pilots stopped at a quarter and at
    half of their steps), and the cells chosen."""
    lines = ["| scan | pilot steps | 1 cell: TV space / time | best held-out | 2 cells: TV space / time "
             "| best held-out | 2 cells / 1 cell | at 1/4, 1/2 of the steps | chosen |",
             "|---|---|---|---|---|---|---|---|---|"]
    for row in rows:
        one, *finer = row["candidates"]  # type: ignore[misc]
        steps = min(c["steps"] for c in row["candidates"])  # type: ignore[union-attr]
        shorter = ", ".join(f"{best_until(finer[0], steps // k) / best_until(one, steps // k):.3f}"
                            for k in (4, 2)) if finer else "–"
        two = (f"{finer[0]['tv_weight']:.4g} / {finer[0]['tv_time_weight']:.4g} | {finer[0]['best_heldout']:.5f} "
               f"| {finer[0]['best_heldout'] / one['best_heldout']:.3f} | {shorter}") if finer \
            else "– | – | – (static) | –"
        lines.append(f"| {row['scan']} | {one['steps']} | {one['tv_weight']:.4g} / {one['tv_time_weight']:.4g} "
                     f"| {one['best_heldout']:.5f} | {two} | {row['chosen']} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--datasets", nargs="+", required=True, help="scans of config/paper.yaml")
    parser.add_argument("--cores", type=int, default=2)
    parser.add_argument("--tabulate-only", action="store_true", help="read the models, train nothing")
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "time_cells_auto.json")
    args = parser.parse_args()
    scans = yaml.safe_load(CONFIG.read_text())["datasets"]
    unknown = [name for name in args.datasets if name not in scans]
    if unknown:
        raise SystemExit(f"--datasets: {', '.join(unknown)} not in {CONFIG}")
    epochs = section_defaults("train")["time_cells_pilot_epochs"]
    if not args.tabulate_only:
        run_snakemake([f"results/{name}/dinr/model.pt" for name in args.datasets], args.cores,
                      {"train": {"max_epochs": epochs}})
    rows = [pilot_records(name) for name in args.datasets]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"pilot_epochs": epochs, "datasets": rows}, indent=1))
    header = (f"`time_cells_per_half_turn: auto` on each scan: pilots of {epochs:g} epochs, one time cell per "
              "half-turn (the configured priors) against two (the 1-cell spatial TV weight, twice it in time); "
              f"written by `python bench/pilot_ranking.py --datasets {' '.join(args.datasets)}` on "
              f"{date.today().isoformat()}. Lower is better. The cells chosen are the model's own, by "
              "`dinr.train.time_cells.chosen_cells` (each pilot scored by its last evaluations, where the scan "
              "moves when that is measured; two cells must win by `FINER_WIN_RATIO`), not by the best residuals "
              "shown.\n\n")
    args.out.with_suffix(".md").write_text(header + table(rows))
    print(table(rows))


if __name__ == "__main__":
    main()
