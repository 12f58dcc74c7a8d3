"""How steady is the pilots' score over seeds? ``time_cells_per_half_turn: auto`` under other scores.

    python bench/pilot_score.py --pilots gen_jerk:0:/tmp/sweep/default/gen_jerk gen_jerk:1:... \
        --held-out gen_late gen_oscillate --out bench/results/pilot_score_tail

Each ``scan:seed:folder`` names a folder holding a scan's two pilots (``checkpoint.cells1.pt``
and ``checkpoint.cells2.pt``, as ``dinr train`` leaves them; e.g. a
``bench/defaults_sweep.py run`` with ``max_epochs: 2`` at ``train.seed`` ``seed``). From the
held-out evaluations each pilot recorded (where the scan moves when both measured it, as
:func:`dinr.train.time_cells.chosen_cells` compares them), up to the steps both reached, the
ratio of the two-cell pilot's score to the one-cell pilot's is computed under several scores: the best
single evaluation (the rule before 2026-12-06), the last one, and the geometric mean of the last
3 and 5 (:func:`dinr.train.time_cells.pilot_score` with ``PILOT_TAIL_EVALUATIONS`` 3 or 5). Per
score: the standard deviation of ln(ratio) over the seeds of each scan, pooled over the scans
run at every seed and not named in ``--held-out``. Writes JSON and a markdown table beside it.
No field is trained here.
"""

from __future__ import annotations

import argparse
import json
import math
from datetime import date
from pathlib import Path

import numpy as np

from dinr.train.checkpoint import TrainingState, load_checkpoint
from dinr.train.time_cells import best_heldout, compared_steps, compared_where_moving, pilot_score

#: The scores compared: name -> (how many of the last evaluations are averaged, or 0 for
#: the best single one).
SCORES = {"best": 0, "last": 1, "tail 3": 3, "tail 5": 5}


def ratios_of(folder: Path) -> tuple[dict[str, float], bool]:
    """The two-cell pilot's score over the one-cell pilot's under each of :data:`SCORES`,
    compared as :func:`dinr.train.time_cells.chosen_cells` compares them (up to the steps
    both reached, where the scan moves when both measured it), and whether they were."""
    pilots = {cells: load_checkpoint(folder / f"checkpoint.cells{cells}.pt") for cells in (1, 2)}
    until, moving = compared_steps(pilots), compared_where_moving(pilots)

    def score(pilot: TrainingState, tail: int) -> float:
        return best_heldout(pilot, until, moving) if tail == 0 else pilot_score(pilot, until, moving, tail)

    return {name: score(pilots[2], tail) / score(pilots[1], tail) for name, tail in SCORES.items()}, moving


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--pilots", nargs="+", required=True, help="scan:seed:folder of the two pilots")
    parser.add_argument("--held-out", nargs="*", default=[], help="scans left out of the pooled scatter")
    parser.add_argument("--out", type=Path, required=True, help="output stem (.json and .md are written)")
    args = parser.parse_args()

    ratios: dict[str, dict[int, dict[str, float]]] = {}
    where: dict[str, bool] = {}
    for item in args.pilots:
        scan, seed, folder = item.split(":", 2)
        ratios.setdefault(scan, {})[int(seed)], where[scan] = ratios_of(Path(folder))
    seeds = sorted({seed for by_seed in ratios.values() for seed in by_seed})
    pooled_scans = [scan for scan, by_seed in ratios.items()
                    if sorted(by_seed) == seeds and scan not in args.held_out and len(seeds) > 1]
    pooled = {}
    for name in SCORES:
        deviations = [math.log(ratios[scan][seed][name]) - np.mean([math.log(ratios[scan][s][name]) for s in seeds])
                      for scan in pooled_scans for seed in seeds]
        dof = len(pooled_scans) * (len(seeds) - 1)
        pooled[name] = math.sqrt(sum(d * d for d in deviations) / dof) if dof else float("nan")
    report = {"date": date.today().isoformat(), "pilots": args.pilots, "held_out": args.held_out,
              "where_it_moves": where, "ratio_two_over_one": ratios, "pooled_scans": pooled_scans,
              "pooled_sd_log_ratio": pooled}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.with_suffix(".json").write_text(json.dumps(report, indent=1) + "\n")

    lines = [f"Ratio of the two-cell pilot's score to the one-cell pilot's, at seeds {', '.join(map(str, seeds))} "
             f"({report['date']}; `python bench/pilot_score.py`).", "",
             "| scan | " + " | ".join(SCORES) + " |", "|---|" + "---|" * len(SCORES)]
    for scan, by_seed in ratios.items():
        cells = [", ".join(f"{by_seed[seed][name]:.3f}" if seed in by_seed else "-" for seed in seeds)
                 for name in SCORES]
        label = f"{scan} (held out)" if scan in args.held_out else scan
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    lines.append("| pooled sd of ln(ratio) | " + " | ".join(f"{pooled[name]:.4f}" for name in SCORES) + " |")
    lines += ["", f"Pooled over {', '.join(pooled_scans)}."]
    args.out.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
