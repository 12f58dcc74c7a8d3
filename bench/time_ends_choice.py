"""What ``train.time_ends: heldout`` does to models trained with ``fitted`` ends, scored against the truth.

    python bench/time_ends_choice.py --datasets gen_few_views gen_late gen_oscillate \\
        --model gen_swelling=path/to/fitted/model.pt   # -> bench/results/time_ends_choice.{json,md}

``heldout`` trains exactly as ``fitted`` does and only chooses each end's weight when the run stops
(:mod:`dinr.train.end_weights`), so applying that choice to a ``fitted`` model gives the ``heldout``
model exactly, with the same validation rays (the run's seed, shards and ``validation_rays``); a
``heldout`` model is taken back to its fitted weights (its ``time_ends`` record) first. For
each scan (``results/<scan>/dinr/model.pt``, or ``--model scan=path``; its prepared scan and truth
under ``results/<scan>/``): each end's fitted and chosen weight, the held-out residual of every
candidate, and the PSNR of the first and last frames (the only frames outside the grid's time nodes)
at every candidate (the truth's own choice beside the rule's), against the best peer of that frame
in ``results/<scan>/metrics.json``.
"""

from __future__ import annotations

import argparse
import json
from datetime import date
from pathlib import Path

import numpy as np
import torch

from dinr.evaluate.metrics import data_range, frame_metrics
from dinr.inr.field import AttenuationField
from dinr.inr.rays import samples_per_ray
from dinr.inr.render import SliceRenderer
from dinr.io.canonical import read_sinogram, training_views
from dinr.io.volume import open_volume
from dinr.train.checkpoint import TrainingState, load_checkpoint
from dinr.train.comm import Communicator
from dinr.train.end_weights import CANDIDATES, choose_end_weights, restore_fitted, time_ends_of
from dinr.train.shards import heldout_shard_views
from dinr.train.step import MAX_POINTS_PER_PASS
from dinr.train.validation import HeldoutRays

REPO = Path(__file__).resolve().parents[1]


def validation_rays(state: TrainingState, sinogram: Path) -> HeldoutRays:
    """The run's validation rays, all its shards in this process (dealt as :func:`dinr.stages.train` deals them)."""
    settings, shards = state.train_settings(), state.ray_shards
    held = heldout_shard_views(training_views(sinogram, heldout=True), shards, range(shards))
    views = {shard: read_sinogram(sinogram, views=indices) for shard, indices in held.items()}
    return HeldoutRays(views, state.beam_geometry(), settings.validation_rays // shards, settings.seed,
                       torch.device("cpu"), settings.loss_weights == "transmission", Communicator(use_mpi=False))


def truth_psnr_by_weight(field: AttenuationField, state: TrainingState, scan: Path, frames: list[int],
                         fitted: list[float]) -> list[list[float]]:
    """Per end (first, last), the PSNR (dB) of its frame of ``frames`` against ``scan``'s
    truth, as ``dinr evaluate`` scores it, at the end weights ``fitted[end]`` and
    :data:`CANDIDATES` (the other end at its fitted weight); the weights are left fitted."""
    ends = time_ends_of(field)
    assert ends is not None
    geometry = state.beam_geometry()
    render, mask = SliceRenderer(field, geometry), geometry.region_mask()
    header = read_sinogram(scan / "prepared" / "sinogram.h5", rows=slice(0, 0))
    scores: list[list[float]] = []
    with open_volume(scan / "raw" / "truth.h5", name="truth") as (truth, seconds):
        times, value_range = header.normalised_time(seconds), data_range(truth)
        recon = np.zeros(truth.shape, dtype=np.float32)  # only the frame scored is read
        for end, frame in enumerate(frames):
            scores.append([])
            for weight in [fitted[end], *CANDIDATES]:
                ends.set_end_weights([weight if i == end else fitted[i] for i in range(2)])
                recon[frame] = np.stack([render(float(times[frame]), z) for z in range(truth.shape[1])])
                scores[end].append(frame_metrics(truth, recon, frame, mask, value_range)["psnr"])
    ends.set_end_weights(fitted)
    return scores


def scan_row(name: str, model: Path) -> dict[str, object]:
    """The choice on scan ``name``'s model (module note)."""
    scan = REPO / "results" / name
    state = load_checkpoint(model)
    if state.train_settings().time_ends not in ("fitted", "heldout"):
        raise SystemExit(f"{model}: trained with time_ends {state.train_settings().time_ends}, not fitted")
    field = state.field()
    restore_fitted(field, state.time_ends)  # a heldout model: back to the weights it was trained to
    ends = time_ends_of(field)
    assert ends is not None
    geometry = state.beam_geometry()
    samples = samples_per_ray(state.train_settings().samples_per_ray, geometry.n)
    sinogram = scan / "prepared" / "sinogram.h5"
    fitted = ends.end_weights().detach().tolist()
    metrics = json.loads((scan / "metrics.json").read_text())
    frames = [0, len(metrics["methods"]["dinr"]["per_frame"]) - 1]
    truth_psnr = truth_psnr_by_weight(field, state, scan, frames, fitted)
    record = choose_end_weights(field, validation_rays(state, sinogram), samples, Communicator(use_mpi=False),
                                MAX_POINTS_PER_PASS)
    peers = {method: values["per_frame"] for method, values in metrics["methods"].items()
             if method not in ("dinr", "fbp_static")}
    best_peer = [max(peers, key=lambda m: peers[m][frame]["psnr"]) for frame in frames]
    chosen_psnr = [truth_psnr[end][[record["fitted"][end], *CANDIDATES].index(record["chosen"][end])]
                   for end in (0, 1)]
    return {"scan": name, "model": str(model), "frames": frames, "record": record, "truth_psnr": truth_psnr,
            "fitted_psnr": [scores[0] for scores in truth_psnr], "chosen_psnr": chosen_psnr,
            "best_peer": [{"method": m, "psnr": peers[m][f]["psnr"]} for m, f in zip(best_peer, frames)]}


def table(rows: list[dict[str, object]]) -> str:
    """Markdown: per scan and end, weights, PSNR fitted -> chosen, the truth's best candidate, the best peer."""
    lines = ["| scan | end | weight fitted -> chosen | frame PSNR fitted -> chosen | truth's best weight (PSNR) "
             "| best peer of that frame |", "|---|---|---|---|---|---|"]
    for row in rows:
        record = row["record"]
        for end, label in enumerate(("first", "last")):
            weights = [record["fitted"][end], *CANDIDATES]
            scores = row["truth_psnr"][end]
            best = int(np.argmax(scores))
            peer = row["best_peer"][end]
            lines.append(f"| {row['scan']} | {label} | {record['fitted'][end]:.2f} -> {record['chosen'][end]:.2f} "
                         f"| {row['fitted_psnr'][end]:.2f} -> {row['chosen_psnr'][end]:.2f} "
                         f"| {weights[best]:.2f} ({scores[best]:.2f}) | {peer['method']} {peer['psnr']:.2f} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--datasets", nargs="*", default=[], help="scans whose workflow model was trained fitted")
    parser.add_argument("--model", nargs="*", default=[], help="scan=path: a fitted model of that scan")
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "time_ends_choice.json")
    args = parser.parse_args()
    models = {name: REPO / "results" / name / "dinr" / "model.pt" for name in args.datasets}
    models.update({name: Path(path) for name, path in (item.split("=", 1) for item in args.model)})
    rows = [scan_row(name, path) for name, path in models.items()]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"date": date.today().isoformat(), "rows": rows}, indent=1))
    header = ("`time_ends: heldout` applied to models trained with `fitted` ends (the same training), written by "
              f"`python bench/time_ends_choice.py` on {date.today().isoformat()}: each end's weight, the PSNR of "
              "the scan's first and last frames (the only ones outside the time nodes) fitted and chosen, the "
              "weight of the candidates (fitted, 0, 1/4, 1/2, 3/4, 1) the truth prefers, and the best peer of "
              "that frame.\n\n")
    text = table(rows)
    args.out.with_suffix(".md").write_text(header + text)
    print(text)


if __name__ == "__main__":
    main()
