"""How fast a trained field changes over the scan, against how fast the truth does.

For each checkpoint given (a model or a time-cell pilot's checkpoint, ``dinr train``),
the field is sampled on the scan's voxel grid inside the reconstruction cylinder at
``--instants`` evenly spaced normalised times ``t`` and at ``t -+ delta``, ``delta`` one
cell of the field's finest time level. Its first difference (the RMS over voxels of
``(mu(t + delta) - mu(t - delta)) / 2``, 1/pixel) is printed beside the same of the
simulated truth (``dinr.sim``) where the scan's ``simulate`` settings are found, and
beside its second difference (``mu(t + delta) - 2 mu(t) + mu(t - delta)``). Where the
field only carries noise of deviation ``s`` from node to node, the first is about
``0.71 s`` and the second ``2.45 s``; where it moves steadily the first grows with the
speed and the second does not; at a turning point the first falls to about 0. So a
field whose changes follow the truth's would tell, from the training itself, where the
object rests or turns: this measures whether the pilots' fields do.

    python bench/field_motion.py --checkpoints results/gen_jerk/dinr/checkpoint.cells2.pt ... \
        --out bench/results/field_motion

Each checkpoint's scan is ``results/<dataset>/`` two folders up (its ``settings/simulate.json``
for the truth). Writes ``--out`` .json (every table) and .md: per scan, the differences'
range and their correlation with the truth's, and, leaving out the first and last
``EDGE`` instants (where ``t -+ delta`` is held at 0 or 1), the field's first difference
as a share of its largest where the truth rests or turns (under ``REST_SHARE`` of the
truth's largest) and where it moves (above ``MOVING_SHARE``), and the instants where that
share is under ``--rest-below``.
"""

from __future__ import annotations

import argparse
import functools
import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from dinr.inr.render import SliceRenderer, VoxelGrid
from dinr.settings import SimulateSettings, load_section_and_records
from dinr.sim.ellipses import rasterise_phantom
from dinr.sim.phantoms import build_phantom
from dinr.sim.version import VERSION_KEY
from dinr.train.checkpoint import TrainingState, load_checkpoint


#: Instants left out at each end of the summary: their ``t -+ delta`` is held at 0 or 1.
EDGE = 2
#: The truth rests or turns where its first difference is under this share of its largest.
REST_SHARE = 0.15
#: The truth moves where its first difference is above this share of its largest.
MOVING_SHARE = 0.5


def differences(volume: Callable[[float], np.ndarray], instants: np.ndarray,
                delta: float) -> tuple[np.ndarray, np.ndarray]:
    """``(first (t,), second (t,))``: the RMS of ``(v(t + delta) - v(t - delta)) / 2``
    and of ``v(t + delta) - 2 v(t) + v(t - delta)`` over the values ``volume`` gives
    at each instant ``t`` (``t +- delta`` held within 0..1). Each instant's volume is
    sampled once: with ``delta`` a multiple of the instants' spacing, one instant's
    ``t + delta`` is a later one's ``t`` and ``t - delta``."""
    sampled = functools.lru_cache(maxsize=8)(volume)
    first, second = [], []
    for t in instants:
        # rounded, so that the same instant reached from two sides is one cache key
        before, now, after = (sampled(round(float(np.clip(t + shift, 0.0, 1.0)), 12))
                              for shift in (-delta, 0.0, delta))
        first.append(np.sqrt(np.mean(((after - before) / 2) ** 2)))
        second.append(np.sqrt(np.mean((after - 2 * now + before) ** 2)))
    return np.asarray(first), np.asarray(second)


def field_differences(state: TrainingState, instants: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """:func:`differences` of the checkpointed field over its voxels inside the cylinder,
    ``delta`` the temporal prior's step (one cell of the finest time level)."""
    geometry = state.beam_geometry()
    render = SliceRenderer(state.field(), geometry, grid=VoxelGrid.full(geometry))
    mask = geometry.cylinder_mask()

    def volume(t: float) -> np.ndarray:
        return np.stack([render(t, row) for row in range(geometry.rows)])[:, mask]

    return differences(volume, instants, float(state.prior["time_step"]))


def truth_differences(simulate: Path, state: TrainingState, instants: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The simulated truth's :func:`differences` on the same voxels and ``delta`` as
    :func:`field_differences` of ``state``."""
    settings = load_section_and_records(SimulateSettings, simulate, (VERSION_KEY,))[0]
    phantom = build_phantom(settings)
    geometry = state.beam_geometry()
    z, mask = geometry.slice_z(), geometry.cylinder_mask()
    return differences(lambda t: rasterise_phantom(phantom, np.array([t]), z)[0][:, mask], instants,
                       float(state.prior["time_step"]))


def separation(instants: np.ndarray, field: np.ndarray, truth: np.ndarray,
               rest_below: float) -> dict[str, object]:
    """The field's first difference as a share of its largest, where the truth rests or
    turns and where it moves, and the instants where the share is under ``rest_below``
    (the first and last :data:`EDGE` instants left out)."""
    inner = slice(EDGE, len(instants) - EDGE)
    share, truth_share = field[inner] / field[inner].max(), truth[inner] / truth[inner].max()
    rests, moves = truth_share < REST_SHARE, truth_share > MOVING_SHARE

    def span(mask: np.ndarray) -> list[float] | None:
        return [float(share[mask].min()), float(share[mask].max())] if mask.any() else None

    return {"rest_instants": int(rests.sum()), "rest_share": span(rests), "moving_instants": int(moves.sum()),
            "moving_share": span(moves), "below": instants[inner][share < rest_below].tolist()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoints", type=Path, nargs="+", required=True)
    parser.add_argument("--instants", type=int, default=32)
    parser.add_argument("--rest-below", type=float, default=0.285,
                        help="share of the field's largest first difference under which an instant is listed")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    torch.set_grad_enabled(False)
    report = {}
    lines = ["| checkpoint | delta | field first: min / median / max | field second: median | truth first: min / "
             "median / max | corr. first, field / truth |", "|---|---|---|---|---|---|"]
    stats = "{:.1e} / {:.1e} / {:.1e}"
    for path in args.checkpoints:
        instants = (np.arange(args.instants) + 0.5) / args.instants
        state = load_checkpoint(path)
        delta = float(state.prior["time_step"])
        first, second = field_differences(state, instants)
        simulate = path.parent.parent / "settings" / "simulate.json"
        truth = truth_differences(simulate, state, instants) if simulate.exists() else None
        name = f"{path.parent.parent.name}/{path.name}"
        report[name] = {"delta": delta, "instants": instants.tolist(), "field_first": first.tolist(),
                        "field_second": second.tolist(),
                        "truth_first": None if truth is None else truth[0].tolist(),
                        "truth_second": None if truth is None else truth[1].tolist()}
        lines.append(f"| {name} | {delta:.4f} | {stats.format(*np.percentile(first, [0, 50, 100]))} | "
                     f"{np.median(second):.1e} | "
                     + (f"{stats.format(*np.percentile(truth[0], [0, 50, 100]))} | "
                        f"{np.corrcoef(first, truth[0])[0, 1]:.3f}" if truth is not None else "- | -") + " |")
        if truth is not None:
            report[name]["separation"] = separation(instants, first, truth[0], args.rest_below)
        print(lines[-1], flush=True)
    lines += ["", f"Leaving out {EDGE} instants at each end: the field's first difference as a share of its largest, "
              f"where the truth's is under {REST_SHARE:g} of its largest (rests, turning points) and where it is "
              f"above {MOVING_SHARE:g}; the instants whose share is under {args.rest_below:g}.", "",
              "| checkpoint | rest instants | share there | moving instants | share there | instants under "
              f"{args.rest_below:g} |", "|---|---|---|---|---|---|"]
    for name, entry in report.items():
        if "separation" not in entry:
            continue
        sep = entry["separation"]
        rest, moving = (f"{v[0]:.2f}-{v[1]:.2f}" if v else "-" for v in (sep["rest_share"], sep["moving_share"]))
        lines.append(f"| {name} | {sep['rest_instants']} | {rest} | {sep['moving_instants']} | {moving} | "
                     f"{', '.join(f'{t:.3f}' for t in sep['below']) or '-'} |")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.with_suffix(".json").write_text(json.dumps(report, indent=1) + "\n")
    args.out.with_suffix(".md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
