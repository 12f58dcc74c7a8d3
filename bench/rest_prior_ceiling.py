"""How far can pooling by the temporal prior take a short rest? The two-cell prior raised
where the truth says the object rests: a ceiling, never a default.

    mpiexec -n 2 python bench/rest_prior_ceiling.py --inputs .sweep/in/gen_oscillate \\
        --workdir .sweep/ceiling/gen_oscillate --gain 30 --centres 0.34375 0.65625 --half-width 0.01

One training and rendering of a scan's inputs (the layout ``bench/defaults_sweep.py``
reads: ``sinogram.h5``, ``truth.h5``, ``train.json``, ``render.json``) as
``bench/defaults_sweep.py``'s ``job`` runs it, every key at its default, except that the
temporal prior's table of the two-cell candidate
(:func:`dinr.train.time_cells.time_prior_profile`) gets ``--gain`` added wherever its
normalised time lies within ``--half-width`` of one of ``--centres``. The table is read
at the midpoint of each pair of instants one time cell apart
(:func:`dinr.train.objective.time_variation`), so a centre at the midpoint of the two time
nodes that bracket a turning point ties those two nodes: the centres are chosen from the
truth (its turning points), which no default may read. Score the ``recon.h5`` it writes
with ``bench/defaults_sweep.py score`` or the evaluate stage's metrics.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import numpy as np

import dinr.train.time_cells as time_cells
from defaults_sweep import job  # bench/, the script's own folder, is on sys.path


def raised_profile(gain: float, centres: list[float], half_width: float) -> Any:
    """:func:`~dinr.train.time_cells.time_prior_profile` with ``gain`` added to the two-cell
    candidate's table within ``half_width`` of each of ``centres`` (normalised time)."""
    original = time_cells.time_prior_profile

    def profile(settings: Any, run_settings: Any, stillness: np.ndarray | None,
                half_turn_stillness: np.ndarray | None = None) -> np.ndarray | None:
        table = original(settings, run_settings, stillness, half_turn_stillness)
        if run_settings.time_cells_per_half_turn != 2 or stillness is None:
            return table
        times = np.linspace(0.0, 1.0, len(stillness))
        window = np.zeros(len(stillness))
        for centre in centres:
            window[np.abs(times - centre) < half_width] = 1.0
        return (table if table is not None else np.ones(len(stillness))) + gain * window

    return profile


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--inputs", type=Path, required=True, help="one scan's inputs folder")
    parser.add_argument("--workdir", type=Path, required=True)
    parser.add_argument("--gain", type=float, required=True)
    parser.add_argument("--centres", type=float, nargs="+", required=True, help="normalised times")
    parser.add_argument("--half-width", type=float, required=True, help="normalised time")
    args = parser.parse_args()
    time_cells.time_prior_profile = raised_profile(args.gain, args.centres, args.half_width)
    args.workdir.mkdir(parents=True, exist_ok=True)
    (args.workdir / "ceiling.json").write_text(json.dumps(vars(args), default=str) + "\n")
    job(args.inputs, {"name": "rest_prior_ceiling", "train": {}}, args.workdir, None)


if __name__ == "__main__":
    main()
