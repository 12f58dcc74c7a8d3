"""Training with glibc's malloc as it comes against the process set to keep freed memory
(:mod:`dinr.train.allocator`), alternating, on the same scan and settings.

    python bench/allocator.py                  # the demo's prepared scan (make demo first)
    python bench/allocator.py --sinogram results/wide_parallel/prepared/sinogram.h5 --repeats 3

Each run is a fresh ``dinr train`` of ``--epochs`` epochs with one cell per half-turn
(no pilots) on ``--ranks`` MPI ranks, every other key as ``results/<scan>/settings/train.json``
has it. Per run: wall seconds, user and system CPU seconds of the ranks (the launcher's
children), rays per second and loss of the last logged step, and each rank's peak resident
memory. Both settings must reach the same loss to the digit: the allocator changes where
memory comes from, not what is computed. Writes ``--out``.json and .md.
"""

from __future__ import annotations

import argparse
import json
import re
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from dinr.train import allocator
from distributed import launcher, machine  # bench/, the script's own folder, is on sys.path
from generalisation import REPO

#: The training CLI with the allocator left as glibc sets it up.
DEFAULT_ALLOCATOR = ("import sys, dinr.train.allocator as a; a.keep_freed_memory = lambda: 0; "
                     "from dinr.cli import main; sys.exit(main())")
#: The training CLI as the workflow runs it.
KEEP_FREED = "import sys; from dinr.cli import main; sys.exit(main())"

LAST_STEP = re.compile(r"step (\d+)/\d+ loss (\S+) lr \S+ ([\d,]+) rays/s")
PEAK = re.compile(r"peak resident memory (\d+) MiB")


def train_once(code: str, settings: Path, sinogram: Path, ranks: int, workdir: Path) -> dict[str, object]:
    """One training run of ``code`` (the CLI's entry) and what it measured."""
    for old in workdir.glob("*.pt"):
        old.unlink()
    command = [launcher(), "-n", str(ranks), sys.executable, "-c", code, "train", "--settings", str(settings),
               "--sinogram", str(sinogram), "--checkpoint", str(workdir / "checkpoint.pt"),
               "--model", str(workdir / "model.pt")]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    result = subprocess.run(command, capture_output=True, text=True, check=True)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    steps = LAST_STEP.findall(result.stderr)
    if not steps:
        raise SystemExit(f"no step line in the training's log:\n{result.stderr[-2000:]}")
    step, loss, rate = steps[-1]
    return {"wall_s": round(wall, 2), "user_s": round(after.ru_utime - before.ru_utime, 2),
            "system_s": round(after.ru_stime - before.ru_stime, 2), "steps": int(step), "loss": loss,
            "rays_per_s": int(rate.replace(",", "")), "peak_mib": [int(m) for m in PEAK.findall(result.stderr)]}


def table(runs: list[dict[str, object]]) -> str:
    lines = ["| run | allocator | wall s | user s | system s | rays/s | loss | peak MiB per rank |",
             "|---|---|---|---|---|---|---|---|"]
    for index, run in enumerate(runs):
        lines.append(f"| {index // 2 + 1} | {run['allocator']} | {run['wall_s']} | {run['user_s']} | "
                     f"{run['system_s']} | {run['rays_per_s']:,} | {run['loss']} | "
                     f"{', '.join(map(str, run['peak_mib']))} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sinogram", type=Path, default=REPO / "results/demo/prepared/sinogram.h5")
    parser.add_argument("--epochs", type=float, default=1.0)
    parser.add_argument("--ranks", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--out", type=Path, default=REPO / "bench/results/allocator")
    args = parser.parse_args()
    scan_settings = args.sinogram.parent.parent / "settings" / "train.json"
    if not scan_settings.exists():
        raise SystemExit(f"{scan_settings}: no training settings beside the scan (run the workflow for it first)")
    settings = {**json.loads(scan_settings.read_text()), "time_cells_per_half_turn": 1, "max_epochs": args.epochs}
    # What the training processes will set: this process runs on the same C library.
    mmap_threshold = allocator.keep_freed_memory()
    if not mmap_threshold:
        raise SystemExit("this C library is not glibc, or refused the settings: keep freed memory changes nothing here")
    runs = []
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        (workdir / "train.json").write_text(json.dumps(settings))
        for repeat in range(args.repeats):
            for label, code in (("glibc default", DEFAULT_ALLOCATOR), ("keep freed", KEEP_FREED)):
                run = {"allocator": label, **train_once(code, workdir / "train.json", args.sinogram, args.ranks,
                                                         workdir)}
                print(json.dumps(run), flush=True)
                runs.append(run)
    losses = {run["loss"] for run in runs}
    if len(losses) != 1:
        raise SystemExit(f"the runs ended at different losses {sorted(losses)}: the allocator changed the result")
    rate = {label: sum(r["rays_per_s"] for r in runs if r["allocator"] == label) / args.repeats
            for label in ("glibc default", "keep freed")}
    report = {"sinogram": str(args.sinogram), "epochs": args.epochs, "ranks": args.ranks, "machine": machine(),
              "mmap_threshold_bytes": mmap_threshold,
              "trim_threshold_bytes": allocator.TRIM_THRESHOLD_BYTES,
              "runs": runs, "rays_per_s_ratio": round(rate["keep freed"] / rate["glibc default"], 3)}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.with_suffix(".json").write_text(json.dumps(report, indent=1) + "\n")
    text = (f"Training throughput by allocator setting ({args.sinogram.parent.parent.name}, {args.epochs:g} "
            f"epoch(s), {args.ranks} ranks, one cell per half-turn; runs alternate; keep freed: mmap threshold "
            f"{mmap_threshold // 2**20} MiB, trim threshold {allocator.TRIM_THRESHOLD_BYTES // 2**20} "
            f"MiB)\n\n{table(runs)}\n"
            f"Mean rays/s, keep freed against glibc default: {report['rays_per_s_ratio']:.3f}\n")
    args.out.with_suffix(".md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
