"""Distributed training step: our flat-buffer MPI allreduce against PyTorch DDP, and
throughput against the number of ranks.

    python bench/distributed.py --out bench/results/distributed.json

The parent process launches each measurement as its own MPI job (``mpiexec -n R``, the
launcher beside this Python) and collects the ranks' timings:

- ``mpi`` and ``ddp`` at 2 ranks: the same field (the demo's default hash-grid DINR),
  the same rays per rank, the same Adam step; ``mpi`` averages gradients with
  ``dinr.train.comm`` (one in-place ``MPI_Allreduce`` of the flat gradient buffer),
  ``ddp`` with ``torch.nn.parallel.DistributedDataParallel`` (gloo on CPU, NCCL on GPU);
- throughput (samples = ray-sample evaluations per second, all ranks) of ``mpi`` for
  each rank count in ``--ranks``, one CPU thread per rank (and one GPU per rank on GPU
  machines), plus 1 rank with all of the machine's threads for reference.

Writes the JSON (``mpi_step_s``, ``ddp_step_s``, ``samples_per_s`` keyed by rank count,
the machine), a Markdown table beside it and ``scaling.png``. Timings on a shared
machine are noisy: compare numbers from one run.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import torch

HERE = Path(__file__).resolve()


def launcher() -> str:
    """``$MPIEXEC`` if set, else the ``mpiexec`` beside this Python (the project's virtual
    environment), else the first on ``PATH`` (an MPI installed under another prefix, as on a
    bare GPU machine). It must come from the MPI that mpi4py loads, or every rank sees size 1."""
    beside = Path(sys.executable).parent / "mpiexec"
    found = os.environ.get("MPIEXEC") or (str(beside) if beside.exists() else shutil.which("mpiexec"))
    if found is None:
        raise SystemExit(f"no mpiexec beside {sys.executable} or on PATH: install the project (make install)")
    return found


def machine() -> dict[str, object]:
    import torch

    cpu = platform.processor() or platform.machine()
    try:
        cpu = next(line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                   if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return {"host": socket.gethostname(), "cpu": cpu, "cores": len(os.sched_getaffinity(0)),
            "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
            "torch": torch.__version__, "python": platform.python_version()}


# --- worker (one MPI rank) -----------------------------------------------------------------

def build_field(device: torch.device) -> torch.nn.Module:
    """The demo's default field (schema defaults) on its 64 px x 8 row x 4 turn scan."""
    from dinr.geometry.parallel import ParallelGeometry
    from dinr.inr.build import build_field as build
    from dinr.inr.build import field_spec
    from dinr.settings import default_field_settings

    settings = default_field_settings()
    return build(settings, field_spec(settings, ParallelGeometry(8, 64, 32.0, 64), 8 * np.pi, 0.01)).to(device)


def worker(args: argparse.Namespace) -> None:
    import torch

    from dinr.geometry.parallel import ParallelGeometry
    from dinr.inr.rays import RayBatch, integrate_rays
    from dinr.train.comm import Communicator
    from dinr.train.reducer import GradientReducer

    comm = Communicator()
    torch.set_num_threads(args.threads or comm.cpu_threads())
    device = torch.device("cuda", comm.local_rank % torch.cuda.device_count()) if args.device == "cuda" \
        else torch.device("cpu")
    field = build_field(device)
    geometry = ParallelGeometry(rows=8, cols=64, center=32.0, n=64)  # the cylinder of radius 32 the rays cross
    comm.broadcast_module(field)
    generator = torch.Generator().manual_seed(comm.rank)
    rays = RayBatch(theta=torch.rand(args.rays, generator=generator) * 25, u=torch.rand(args.rays, generator=generator) * 60 - 30,
                    z=torch.rand(args.rays, generator=generator) * 8 - 4, t=torch.rand(args.rays, generator=generator),
                    measured=torch.rand(args.rays, generator=generator))
    rays = RayBatch(*(getattr(rays, k).to(device) for k in ("theta", "u", "z", "t", "measured")))
    jitter = torch.rand(args.rays, args.samples, generator=generator).to(device)

    model: torch.nn.Module = field
    if args.mode == "ddp":
        import torch.distributed as dist

        dist.init_process_group("nccl" if device.type == "cuda" else "gloo", rank=comm.rank, world_size=comm.size,
                                init_method=f"tcp://127.0.0.1:{args.port}")
        model = torch.nn.parallel.DistributedDataParallel(field, device_ids=[device.index] if device.type == "cuda" else None)
    else:
        reducer = GradientReducer(field, comm, buckets=args.buckets, cuda_aware=args.cuda_aware)
    optimizer = torch.optim.Adam(field.parameters(), lr=1e-3)

    def sync() -> None:
        if device.type == "cuda":
            torch.cuda.synchronize()

    step_times, comm_times = [], []
    for step in range(args.warmup + args.steps):
        comm.barrier()
        sync()
        start = time.perf_counter()
        if args.mode == "ddp":
            optimizer.zero_grad(set_to_none=False)
        else:
            reducer.zero_()
        loss = torch.mean((integrate_rays(model, rays, geometry, args.samples, jitter) - rays.measured) ** 2)
        loss.backward()
        sync()
        before_comm = time.perf_counter()
        if args.mode == "mpi":
            reducer.average_()
        sync()
        after_comm = time.perf_counter()
        optimizer.step()
        sync()
        if step >= args.warmup:
            step_times.append(time.perf_counter() - start)
            comm_times.append(after_comm - before_comm)
    gathered = comm.gather({"step_s": float(np.median(step_times)), "comm_s": float(np.median(comm_times))})
    if comm.rank == 0:
        assert gathered is not None
        step_s = max(g["step_s"] for g in gathered)
        Path(args.result).write_text(json.dumps({
            "ranks": comm.size, "threads": torch.get_num_threads(), "step_s": step_s,
            "comm_share": max(g["comm_s"] for g in gathered) / step_s if args.mode == "mpi" else None,
            "samples_per_s": comm.size * args.rays * args.samples / step_s,
        }))
    if args.mode == "ddp":
        torch.distributed.destroy_process_group()


# --- parent --------------------------------------------------------------------------------

def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def measure(args: argparse.Namespace, mode: str, ranks: int, threads: int) -> dict[str, object]:
    with tempfile.TemporaryDirectory() as tmp:
        result = Path(tmp) / "result.json"
        command = [launcher(), "-n", str(ranks), sys.executable, str(HERE), "--worker", "--mode", mode,
                   "--result", str(result), "--rays", str(args.rays), "--samples", str(args.samples),
                   "--steps", str(args.steps), "--warmup", str(args.warmup), "--threads", str(threads),
                   "--device", args.device, "--port", str(free_port()), "--buckets", str(args.buckets)]
        if args.cuda_aware:
            command.append("--cuda-aware")
        subprocess.run(command, check=True)
        measured = json.loads(result.read_text())
    print(f"{mode} {ranks} rank(s) x {measured['threads']} thread(s): step {measured['step_s'] * 1e3:.1f} ms, "
          f"{measured['samples_per_s']:,.0f} samples/s", flush=True)
    return measured


def table(report: dict[str, object]) -> str:
    rows = ["| run | ranks | threads/rank | step ms | samples/s | comm share |", "|---|---|---|---|---|---|"]
    for run in report["runs"]:  # type: ignore[attr-defined]
        share = "" if run["comm_share"] is None else f"{100 * run['comm_share']:.1f} %"
        rows.append(f"| {run['mode']} | {run['ranks']} | {run['threads']} | {run['step_s'] * 1e3:.1f} | "
                    f"{run['samples_per_s']:,.0f} | {share} |")
    m = report["machine"]
    return (f"# Distributed step, {m['cpu']} ({m['cores']} cores), GPU: {m['gpu']}\n\n" + "\n".join(rows)
            + f"\n\nMPI / DDP step time at 2 ranks: {report['mpi_over_ddp']:.3f}; "
            f"throughput 2 ranks / 1 rank: {report['speedup_2_over_1']:.2f}\n")


def scaling_figure(report: dict[str, object], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ranks = sorted(int(r) for r in report["samples_per_s"])  # type: ignore[union-attr]
    rates = [report["samples_per_s"][str(r)] for r in ranks]  # type: ignore[index]
    fig, ax = plt.subplots(figsize=(4, 3))
    ax.plot(ranks, rates, "o-", label="measured")
    ax.plot(ranks, [rates[0] * r / ranks[0] for r in ranks], "k--", lw=0.8, label="linear")
    ax.set_xlabel("MPI ranks")
    ax.set_ylabel("samples / s")
    ax.set_xticks(ranks)
    ax.legend()
    ax.set_title("DINR training throughput", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=150)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path("bench/results/distributed.json"))
    parser.add_argument("--ranks", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--rays", type=int, default=256, help="rays per rank per step")
    parser.add_argument("--samples", type=int, default=64, help="samples per ray")
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    parser.add_argument("--buckets", type=int, default=1, help="allreduce buckets (train.allreduce_buckets)")
    parser.add_argument("--cuda-aware", action="store_true", help="MPI reads GPU memory (train.cuda_aware_mpi)")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--mode", choices=("mpi", "ddp"), help=argparse.SUPPRESS)
    parser.add_argument("--result", help=argparse.SUPPRESS)
    parser.add_argument("--threads", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args)
        return

    runs = []
    for mode in ("mpi", "ddp"):
        runs.append({"mode": mode, **measure(args, mode, 2, 1)})
    by_ranks = {2: runs[0]}
    for ranks in args.ranks:
        if ranks not in by_ranks:
            by_ranks[ranks] = {"mode": "mpi", **measure(args, "mpi", ranks, 1)}
            runs.append(by_ranks[ranks])
    runs.append({"mode": "mpi (all threads)", **measure(args, "mpi", 1, 0)})
    report = {
        "machine": machine(),
        "config": {"rays_per_rank": args.rays, "samples_per_ray": args.samples, "steps": args.steps,
                   "device": args.device, "buckets": args.buckets, "cuda_aware_mpi": args.cuda_aware, "field": "demo default (schema defaults, 64 px, 8 rows, 8 half-turns)"},
        "mpi_step_s": runs[0]["step_s"], "ddp_step_s": runs[1]["step_s"],
        "mpi_over_ddp": runs[0]["step_s"] / runs[1]["step_s"],
        "comm_share_2_ranks": runs[0]["comm_share"],
        "samples_per_s": {str(r): by_ranks[r]["samples_per_s"] for r in sorted(by_ranks)},
        "speedup_2_over_1": by_ranks[2]["samples_per_s"] / by_ranks[1]["samples_per_s"] if 1 in by_ranks else None,
        "runs": runs,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    args.out.with_suffix(".md").write_text(table(report))
    scaling_figure(report, args.out.with_name("scaling.png"))
    print(table(report))


if __name__ == "__main__":
    main()
