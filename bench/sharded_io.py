"""Peak memory per rank when training ranks read their shards of the projections.

    python bench/sharded_io.py --out bench/results/sharded_io.json

Writes a prepared scan much larger than the demo (``--views`` x ``--rows`` x ``--cols``
float32), then for each rank count in ``--ranks`` starts ``mpiexec -n R`` workers that
read their ray shards exactly as ``dinr train`` does (:func:`dinr.train.shards.shard_views`,
HDF5 selections of their own views) and report the growth of their peak resident memory
(``VmHWM`` minus ``VmRSS`` before reading). The projection bytes held per rank should
fall as 1/R; no rank ever holds the whole array.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve()
sys.path.insert(0, str(HERE.parent))
from distributed import launcher  # noqa: E402


def memory_kib(field: str) -> int:
    """A ``/proc/self/status`` memory field (VmRSS, VmHWM) in KiB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise KeyError(field)


def worker(sinogram: Path, result: Path) -> None:
    from dinr.io.canonical import read_sinogram, training_views
    from dinr.train.comm import Communicator
    from dinr.train.shards import ray_shard_count, shard_views

    comm = Communicator()
    before = memory_kib("VmRSS")
    views = shard_views(training_views(sinogram), ray_shard_count("auto", comm.size), comm.rank, comm.size,
                        str(sinogram))
    shards = {shard: read_sinogram(sinogram, views=indices) for shard, indices in views.items()}
    held = sum(s.projections.nbytes for s in shards.values())
    report = {"rank": comm.rank, "peak_growth_mib": (memory_kib("VmHWM") - before) / 1024,
              "projections_mib": held / 2**20, "views": sum(len(s.theta) for s in shards.values())}
    gathered = comm.gather(report)
    if comm.rank == 0:
        result.write_text(json.dumps(gathered))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path("bench/results/sharded_io.json"))
    parser.add_argument("--ranks", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--views", type=int, default=2880)
    parser.add_argument("--rows", type=int, default=32)
    parser.add_argument("--cols", type=int, default=256)
    parser.add_argument("--worker", nargs=2, type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(*args.worker)
        return

    from dinr.io.canonical import Sinogram, write_sinogram

    with tempfile.TemporaryDirectory() as tmp:
        sinogram = Path(tmp) / "scan.h5"
        rng = np.random.default_rng(0)
        projections = rng.random((args.views, args.rows, args.cols), dtype=np.float32)
        theta = np.linspace(0, 8 * np.pi, args.views, endpoint=False)
        write_sinogram(sinogram, Sinogram(projections, theta, np.arange(args.views, dtype=float),
                                          np.arange(args.views), args.cols / 2, (0.0, args.views - 1.0), 1e-3), {})
        total_mib = projections.nbytes / 2**20
        del projections
        runs = {}
        for ranks in args.ranks:
            result = Path(tmp) / f"r{ranks}.json"
            subprocess.run([launcher(), "-n", str(ranks), sys.executable, str(HERE), "--worker", str(sinogram),
                            str(result)], check=True)
            per_rank = json.loads(result.read_text())
            runs[str(ranks)] = {"peak_growth_mib_max": max(r["peak_growth_mib"] for r in per_rank),
                                "projections_mib_max": max(r["projections_mib"] for r in per_rank),
                                "per_rank": per_rank}
            print(f"{ranks} rank(s): peak growth {runs[str(ranks)]['peak_growth_mib_max']:.1f} MiB per rank "
                  f"(projections held {runs[str(ranks)]['projections_mib_max']:.1f} MiB of {total_mib:.1f})",
                  flush=True)
    report = {"scan": {"views": args.views, "rows": args.rows, "cols": args.cols, "projections_mib": total_mib},
              "ranks": runs}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    lines = ["| ranks | peak RSS growth per rank (MiB) | projections held per rank (MiB) | share of the scan |",
             "|---|---|---|---|"]
    for ranks, run in runs.items():
        lines.append(f"| {ranks} | {run['peak_growth_mib_max']:.1f} | {run['projections_mib_max']:.1f} | "
                     f"{run['projections_mib_max'] / total_mib:.2f} |")
    text = f"# Sharded reads of a {args.views} x {args.rows} x {args.cols} scan ({total_mib:.0f} MiB)\n\n" \
        + "\n".join(lines) + "\n"
    args.out.with_suffix(".md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
