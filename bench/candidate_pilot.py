"""One more candidate for ``time_cells_per_half_turn: auto``'s pilots, measured beside the two it trains.

    python bench/candidate_pilot.py --label cells1_tvtime --train '{time_cells_per_half_turn: 1, tv_time_weight: auto}' \\
        --datasets gen_rest gen_jerk gen_foam_lowdose   # -> bench/results/candidate_cells1_tvtime.{json,md}
    python bench/candidate_pilot.py ... --full gen_jerk   # that scan's candidate trained on and scored
    python bench/candidate_pilot.py --label slow8 --train '{hash_slow_levels: 8}' --as-chosen \\
        --datasets gen_jerk --full gen_jerk   # a key added to each scan's own choice of cells and priors

Each named scan of ``config/paper.yaml`` must have been trained through the workflow already
(``bench/pilot_ranking.py``: its model records the pilots). The scan's training settings, with the
``--train`` keys and ``max_epochs`` at the length of its recorded pilots, train the candidate's pilot under
``results/<scan>/dinr/candidate_<label>/`` on ``--ranks`` MPI ranks; its best held-out residual is
set against each recorded pilot's (:func:`dinr.train.time_cells.best_heldout`, the rule's score when
this script was written; the rule now scores a pilot's last evaluations, :func:`dinr.train.time_cells.pilot_score`).

``--full`` continues the named scans' candidate pilots to the default epoch cap (exactly: the cap is
not part of an adaptive run's identity), renders them at the truth's frame times and scores them with
``dinr evaluate`` against the peers already on disk (``results/<scan>/<peer>/recon.h5``): mean, worst,
first and last frames, and DINR's margin over the best peer in its worst frame.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from datetime import date
from pathlib import Path

import yaml

from dinr.settings import section_defaults
from dinr.train.checkpoint import load_checkpoint
from dinr.train.time_cells import best_heldout
from distributed import launcher  # bench/, the script's own folder, is on sys.path
from generalisation import CONFIG, REPO, train_keys
from pilot_ranking import pilot_records


def candidate_dir(scan: str, label: str) -> Path:
    """Where the candidate's pilot (and its continuation) of scan ``scan`` is trained."""
    return REPO / "results" / scan / "dinr" / f"candidate_{label}"


def write_settings(scan: str, workdir: Path, keys: dict[str, object], max_epochs: float) -> Path:
    """The scan's workflow training settings with ``keys`` and ``max_epochs``, as a settings file
    (keys added to the schema after the scan's settings were written take their defaults)."""
    settings = {**section_defaults("train"),
                **json.loads((REPO / "results" / scan / "settings" / "train.json").read_text())}
    unknown = sorted(set(keys) - set(settings))
    if unknown:
        raise SystemExit(f"--train: {', '.join(unknown)} are not training keys")
    path = workdir / f"train.epochs{max_epochs:g}.json"
    path.write_text(json.dumps({**settings, **keys, "max_epochs": max_epochs}, indent=1))
    return path


def run(command: list[str], log: Path) -> None:
    """``command`` in the repository, its standard error to ``log``."""
    with open(log, "w") as stream:
        subprocess.run(command, cwd=REPO, stderr=stream, check=True)


def train(scan: str, workdir: Path, settings: Path, model: Path, ranks: int) -> None:
    """Train (or resume) the candidate of ``scan`` from ``settings`` into ``model``."""
    run([launcher(), "-n", str(ranks), sys.executable, "-m", "dinr.cli", "train", "--settings", str(settings),
         "--sinogram", f"results/{scan}/prepared/sinogram.h5", "--checkpoint", str(workdir / "checkpoint.pt"),
         "--model", str(model)], workdir / f"{model.stem}.log")


def as_chosen(scan: str, keys: dict[str, object]) -> dict[str, object]:
    """``keys`` over the cells and priors of the pilot the workflow's run of ``scan`` chose."""
    recorded = pilot_records(scan)
    chosen = next(c for c in recorded["candidates"] if c["time_cells_per_half_turn"] == recorded["chosen"])
    return {**{key: chosen[key] for key in ("time_cells_per_half_turn", "tv_weight", "tv_time_weight")}, **keys}


def pilot_row(scan: str, label: str, keys: dict[str, object], ranks: int) -> dict[str, object]:
    """The candidate's pilot of ``scan``, trained if not yet for as long as the scan's
    recorded pilots (their epochs, or their rays on a wide scan), against them."""
    workdir = candidate_dir(scan, label)
    workdir.mkdir(parents=True, exist_ok=True)
    model = workdir / "pilot.pt"
    recorded = pilot_records(scan)
    if not model.exists():
        train(scan, workdir, write_settings(scan, workdir, keys, recorded["pilot_epochs"]), model, ranks)
    pilot = load_checkpoint(model)
    best = best_heldout(pilot)
    return {"scan": scan, "candidate": {"label": label, "keys": keys, "tv_weight": pilot.prior["tv_weight"],
                                        "tv_time_weight": pilot.prior["tv_time_weight"], "steps": pilot.step,
                                        "best_heldout": best,
                                        "heldout_curve": [[int(s), float(r)] for s, r, _ in pilot.validation]},
            "recorded": recorded,
            "over_recorded": {str(c["time_cells_per_half_turn"]): best / c["best_heldout"]
                              for c in recorded["candidates"]}}


def full_row(scan: str, label: str, keys: dict[str, object], ranks: int) -> dict[str, object]:
    """The candidate of ``scan`` trained on to the default cap, rendered and scored against the peers on disk."""
    workdir = candidate_dir(scan, label)
    model = workdir / "model.pt"
    if not model.exists():
        train(scan, workdir, write_settings(scan, workdir, keys, section_defaults("train")["max_epochs"]), model,
              ranks)
    data = f"results/{scan}"
    recon = workdir / "recon.h5"
    if not recon.exists():
        run([launcher(), "-n", str(ranks), sys.executable, "-m", "dinr.cli", "render", "--settings",
             f"{data}/settings/render.json", "--model", str(model), "--sinogram", f"{data}/prepared/sinogram.h5",
             "--frame-times", f"{data}/raw/truth.h5", "--out", str(recon)], workdir / "render.log")
    peers = [method for method in json.loads((REPO / data / "settings" / "baselines.json").read_text())["methods"]
             if (REPO / data / method / "recon.h5").exists()]
    metrics = workdir / "metrics.json"
    if not metrics.exists():
        run([sys.executable, "-m", "dinr.cli", "evaluate", "--dataset", scan,
             "--sinogram", f"{data}/prepared/sinogram.h5", "--truth", f"{data}/raw/truth.h5", "--model", str(model),
             "--recon", f"dinr={recon}", *(f"{method}={data}/{method}/recon.h5" for method in peers),
             "--baselines", f"{data}/settings/baselines.json", "--out", str(metrics),
             "--table", str(workdir / "metrics.md")], workdir / "evaluate.log")
    state = load_checkpoint(model)
    return {"scan": scan, "label": label, "keys": keys, "steps": state.step, "stop_reason": state.stop_reason,
            "metrics": json.loads(metrics.read_text())}


def table(rows: list[dict[str, object]]) -> str:
    """Markdown: per scan, the candidate's best held-out residual over each recorded pilot's, and the choice."""
    lines = ["| scan | candidate: TV space / time | best held-out | over 1 cell | over 2 cells | recorded choice |",
             "|---|---|---|---|---|---|"]
    for row in rows:
        candidate, ratios = row["candidate"], row["over_recorded"]  # type: ignore[index]
        lines.append(f"| {row['scan']} | {candidate['tv_weight']:.4g} / {candidate['tv_time_weight']:.4g} "
                     f"| {candidate['best_heldout']:.5f} | {ratios.get('1', float('nan')):.3f} "
                     f"| {ratios.get('2', float('nan')):.3f} | {row['recorded']['chosen']} |")
    return "\n".join(lines) + "\n"


def full_table(rows: list[dict[str, object]]) -> str:
    """Markdown: per scan trained on, DINR's mean, worst, first and last frames against the best peer's,
    and DINR's margin over the best peer of each frame."""
    lines = ["| scan | steps | DINR PSNR / SSIM | best peer PSNR / SSIM | DINR first / last | mean margin (dB) "
             "| worst-frame margin (dB) | margin per frame (dB) |", "|---|---|---|---|---|---|---|---|"]
    for row in rows:
        metrics = row["metrics"]  # type: ignore[index]
        dinr, margin = metrics["methods"]["dinr"], metrics["dinr_margin"]
        peer = metrics["methods"][margin["best_mean_peer"]]
        lines.append(f"| {row['scan']} | {row['steps']} | {dinr['psnr_mean']:.2f} / {dinr['ssim_mean']:.3f} "
                     f"| {margin['best_mean_peer']} {peer['psnr_mean']:.2f} / {peer['ssim_mean']:.3f} "
                     f"| {dinr['psnr_first']:.2f} / {dinr['psnr_last']:.2f} | {margin['mean']:+.2f} "
                     f"| {margin['worst_frame']:+.2f} (frame {margin['worst_frame_index']}) "
                     f"| {' '.join(f'{m:+.1f}' for m in margin['per_frame'])} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--label", required=True, help="the candidate's name (its folder: candidate_<label>)")
    parser.add_argument("--train", required=True, help="the candidate's training keys, as YAML")
    parser.add_argument("--datasets", nargs="+", required=True, help="scans of config/paper.yaml")
    parser.add_argument("--full", nargs="*", default=[], help="of those, scans whose candidate is trained on and scored")
    parser.add_argument("--as-chosen", action="store_true",
                        help="start each scan's keys from the cells and priors its workflow run chose")
    parser.add_argument("--ranks", type=int, default=2)
    parser.add_argument("--out", type=Path, help="JSON written, a markdown table beside it "
                        "(default: bench/results/candidate_<label>.json)")
    args = parser.parse_args()
    scans = yaml.safe_load(CONFIG.read_text())["datasets"]
    unknown = [name for name in args.datasets + args.full if name not in scans]
    if unknown:
        raise SystemExit(f"--datasets/--full: {', '.join(unknown)} not in {CONFIG}")
    keys = train_keys(args.train)
    out = args.out or REPO / "bench" / "results" / f"candidate_{args.label}.json"
    scan_keys = {name: as_chosen(name, keys) if args.as_chosen else keys for name in args.datasets + args.full}
    rows = [pilot_row(name, args.label, scan_keys[name], args.ranks) for name in args.datasets]
    full = [full_row(name, args.label, scan_keys[name], args.ranks) for name in args.full]
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"label": args.label, "keys": keys, "pilots": rows,
                                    "full": full}, indent=1))
    header = (f"Candidate `{args.label}` ({args.train}) piloted as long as each scan's own pilots of "
              f"`time_cells_per_half_turn: auto`; written by `python bench/candidate_pilot.py` on "
              f"{date.today().isoformat()}. Lower is better: a ratio below 1 means the candidate predicted the "
              "held-out views better than that pilot.\n\n")
    text = table(rows) + (f"\nTrained on to the default cap (`--full`):\n\n{full_table(full)}" if full else "")
    out.with_suffix(".md").write_text(header + text)
    print(text)


if __name__ == "__main__":
    main()
