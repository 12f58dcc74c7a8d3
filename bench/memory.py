"""Memory per rank against scan size: DINR's ray shards against voxel-grid 4D reconstruction.

    python bench/memory.py --out bench/results/memory.json

For scans of n x n detector pixels (n columns, n rows: a cubic reconstruction of n**3
voxels per frame; n = 64 ... 512), ``--views`` views over 4 turns and 16 frames, it writes a prepared scan of smooth random line integrals (memory
does not depend on the values) and measures the peak resident memory (``ru_maxrss``) of
each rank of ``dinr train`` (2 ranks, a few steps, every other training key at its
default), and of one Python process that imports the same libraries and does nothing,
so the difference is what training adds. For the voxel-grid side it measures mbirjax's
MACE4D (which holds every frame's volume, its agents' copies and the sinogram) on the
sizes it finishes in reasonable time on a CPU, and gives the size of one float32 copy of
the 4D volume (frames x rows x n x n) at every size: the least any method that stores the
4D volume must hold. JSON and a markdown table; the figure comes from ``make paper``.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from distributed import launcher  # noqa: E402
from dinr.io.canonical import Sinogram, write_sinogram  # noqa: E402
from dinr.settings import section_defaults  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
FRAMES = 16
PEAK = "import resource; print('PEAK_KB', resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, flush=True)"
IDLE = "import torch, numpy, h5py, mpi4py.MPI, dinr.stages; " + PEAK
TRAIN = "import sys; from dinr.cli import main; code = main(sys.argv[1:]); " + PEAK + "; sys.exit(code)"
MACE = """
import sys, json
from dinr import stages
from dinr.settings import BaselineSettings
stages.baseline(BaselineSettings(**json.loads(sys.argv[1])), 'mace4d', sys.argv[2], None, 16, sys.argv[3])
""" + PEAK


def synthetic_scan(path: Path, n: int, rows: int, views: int) -> None:
    """A prepared scan of smooth random line integrals, (views, rows, n), 4 turns."""
    rng = np.random.default_rng(0)
    u = np.linspace(0, np.pi, n)
    proj = (0.5 + 0.3 * np.sin(u[None, None, :] * rng.uniform(1, 4, (views, rows, 1)))).astype(np.float32)
    time = np.arange(views) * 0.01
    write_sinogram(path, Sinogram(proj, np.arange(views) * (8 * np.pi / views), time, n / 2.0,
                                  (0.0, float(time[-1])), 0.001), {})


def peaks_mb(output: str) -> list[float]:
    """Every ``PEAK_KB`` line of ``output``, in MB."""
    return [int(line.split()[1]) / 1024 for line in output.splitlines() if line.startswith("PEAK_KB")]


def run(command: list[str]) -> str:
    result = subprocess.run(command, capture_output=True, text=True, cwd=REPO)
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(command[:4])} ...: exit {result.returncode}\n{result.stderr[-2000:]}")
    return result.stdout


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "memory.json")
    parser.add_argument("--sizes", type=int, nargs="+", default=[64, 128, 256, 512])
    parser.add_argument("--mace-sizes", type=int, nargs="*", default=[32])
    parser.add_argument("--views", type=int, default=720)
    parser.add_argument("--steps", type=int, default=5)
    args = parser.parse_args()
    mpiexec = launcher()
    idle = peaks_mb(run([sys.executable, "-c", IDLE]))[0]
    rows = []
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        train = {**section_defaults("train"), "steps": args.steps, "checkpoint_every": 10**6}
        (tmp / "train.json").write_text(json.dumps(train))
        baselines = {**section_defaults("baselines"), "mace4d_iterations": 1}
        for n in sorted(set(args.sizes) | set(args.mace_sizes)):
            scan = tmp / f"scan_{n}.h5"
            synthetic_scan(scan, n, n, args.views)
            row: dict[str, object] = {
                "n": n, "rows": n, "views": args.views, "frames": FRAMES,
                "scan_mb": args.views * n * n * 4 / 2**20,
                "volume_4d_mb": FRAMES * n**3 * 4 / 2**20,
            }
            if n in args.sizes:
                out = run([mpiexec, "-n", "2", sys.executable, "-c", TRAIN, "train", "--settings", str(tmp / "train.json"),
                           "--sinogram", str(scan), "--checkpoint", str(tmp / f"ck_{n}.pt"),
                           "--model", str(tmp / f"model_{n}.pt")])
                row["dinr_rank_peak_mb"] = max(peaks_mb(out))
                row["dinr_rank_added_mb"] = max(peaks_mb(out)) - idle
            if n in args.mace_sizes:
                out = run([sys.executable, "-c", MACE, json.dumps(baselines), str(scan), str(tmp / f"mace_{n}.h5")])
                row["mace4d_peak_mb"] = peaks_mb(out)[0]
                row["mace4d_added_mb"] = peaks_mb(out)[0] - idle
            rows.append(row)
            print(json.dumps(row), flush=True)
    result = {"idle_process_mb": idle, "train_steps": args.steps, "ranks": 2, "sizes": rows,
              "note": "peak resident memory (ru_maxrss) per process; 'added' = peak minus an idle process "
                      "that imports the same libraries"}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    lines = ["| n (cols = rows) | scan (MB) | 4D volume, one float32 copy (MB) | DINR per rank, added (MB) | MACE4D, added (MB) |",
             "|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['n']} | {r['scan_mb']:.1f} | {r['volume_4d_mb']:.1f} | "
                     f"{r.get('dinr_rank_added_mb', float('nan')):.0f} | {r.get('mace4d_added_mb', float('nan')):.0f} |")
    text = "\n".join(lines) + f"\n\nIdle process (same imports): {idle:.0f} MB.\n"
    args.out.with_suffix(".md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
