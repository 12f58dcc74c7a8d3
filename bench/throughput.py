"""Where a training step's time goes, and how close each part runs to its limit.

    python bench/throughput.py --out bench/results/throughput.json

For each field (``demo``: the demo's 64 px x 8 rows x 4 turns; ``wide``: 128 columns x
8 rows x 4 turns; ``beamline``: 2048 columns x 32 rows x 4 turns; each at the schema's
default training settings) the parent launches one MPI job (``mpiexec -n --ranks``, one
thread per rank) on synthetic ray shards and each rank measures:

- the full training step (:func:`dinr.train.step.train_step`, exactly what ``dinr
  train`` runs), as samples (ray points) per second over all ranks;
- the same step taken apart: sampling (rays, jitter and the points along them),
  encoding forward and backward, MLP forward and backward, loss, gradient allreduce and
  the optimizer step (median ms of each);
- two limits on the same machine in the same job: the dense matmul FLOP rate of an
  MLP-only step at a large batch (the MLP's limit) and the rate of the table gather
  alone (``index_select`` of as many random rows as the encoding blends; the
  encoding's limit), and each part's fraction of its limit.

Writes the JSON and a Markdown table beside it. Timings on a shared machine are noisy:
compare numbers from one run, and quote absolute times only from a dedicated machine.
"""

from __future__ import annotations

import argparse
import inspect
import json
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve()
sys.path.insert(0, str(HERE.parent))
from distributed import launcher, machine  # noqa: E402

#: (columns = grid pixels, rows, views per shard) of each field; both span 4 turns.
FIELDS = {"demo": (64, 8, 360), "wide": (128, 8, 684), "beamline": (2048, 32, 48)}
TURNS = 4


def synthetic_shards(cols: int, rows: int, views: int, shards: list[int], total_shards: int) -> dict[int, object]:
    """Ray shards of a scan over ``TURNS`` turns: smooth line integrals of a disc, so the
    output scale and the loss are those of a real object."""
    from dinr.io.canonical import Sinogram

    n_views = views * total_shards
    theta = np.linspace(0.0, 2 * np.pi * TURNS, n_views, endpoint=False)
    u = np.arange(cols) + 0.5 - cols / 2
    chord = 2 * np.sqrt(np.clip((0.4 * cols) ** 2 - u**2, 0, None)) * 0.01
    projections = np.broadcast_to(chord.astype(np.float32), (views, rows, cols))
    return {s: Sinogram(projections=np.ascontiguousarray(projections), theta=theta[s::total_shards],
                        time=np.linspace(0.0, 1.0, n_views)[s::total_shards], center=cols / 2,
                        scan_time=(0.0, 1.0), pixel_size_mm=0.001) for s in shards}


def median_ms(samples: list[float]) -> float:
    return float(np.median(samples)) * 1e3


class Clock:
    """Wall time of the phases of a step, with device synchronisation."""

    def __init__(self, sync: Callable[[], None]) -> None:
        self.sync, self.parts = sync, {}  # type: ignore[var-annotated]
        self.last = 0.0

    def start(self) -> None:
        self.sync()
        self.last = time.perf_counter()

    def mark(self, name: str) -> None:
        self.sync()
        now = time.perf_counter()
        self.parts.setdefault(name, []).append(now - self.last)
        self.last = now


def step_in_parts(run: object, step: int, clock: Clock) -> None:
    """One training step taken apart (the same work as ``train_step``), each phase timed."""
    from dinr.inr.rays import ray_points
    from dinr.train.objective import rank_loss

    settings, field = run.settings, run.field  # type: ignore[attr-defined]
    clock.start()
    rays, jitter = run.sampler.sample(step, settings.batch_rays, run.samples)  # type: ignore[attr-defined]
    coords, stratum = ray_points(rays, run.geometry, run.samples, jitter)  # type: ignore[attr-defined]
    run.reducer.zero_()  # type: ignore[attr-defined]
    clock.mark("sampling")
    features = field.encoding(coords)
    clock.mark("encoding forward")
    leaf = features.detach().requires_grad_()
    values = field.scale * field.mlp(leaf).squeeze(-1).float()
    clock.mark("MLP forward")
    # dinr before the samples-invariant prior took no diameter (kept: the bench compares versions)
    diameter = (2.0 * run.geometry.radius,) if "diameter" in inspect.signature(rank_loss).parameters else ()  # type: ignore[attr-defined]
    loss = rank_loss(values, stratum, rays.measured, settings.loss_weights == "transmission",
                     run.prior["tv_weight"], run.comm.size, run.global_rays, *diameter)  # type: ignore[attr-defined]
    clock.mark("loss")
    loss.backward()
    clock.mark("MLP backward")
    features.backward(leaf.grad)
    clock.mark("encoding backward")
    run.reducer.average_()  # type: ignore[attr-defined]
    clock.mark("allreduce")
    run.optimizer.step()  # type: ignore[attr-defined]
    clock.mark("optimizer")


def grids(field: object) -> list[object]:
    """The hash grids of the field's encoding (4D, static, slow), however they are nested."""
    from dinr.inr.hashgrid import HashGridEncoding

    return [module for module in field.encoding.modules() if isinstance(module, HashGridEncoding)]  # type: ignore[attr-defined]


def corner_reads(field: object) -> int:
    """Table rows one point of the field reads: each level of each grid blends the 2^4
    corners of its cell (2^3 where the grid has no time cells)."""
    return sum(int(grid.levels) * 2 ** (4 - int(grid.axes)) for grid in grids(field))  # type: ignore[attr-defined]


def tables(field: object) -> list[object]:
    """The hash tables of every grid of the field's encoding, one per level."""
    return [table for grid in grids(field) for table in grid.tables]  # type: ignore[attr-defined]


def mlp_flops(field: object, points: int) -> float:
    """FLOPs of the MLP's forward and backward for ``points`` points (2 per multiply-add
    forward, twice that backward)."""
    import torch

    macs = sum(m.in_features * m.out_features for m in field.mlp.modules() if isinstance(m, torch.nn.Linear))  # type: ignore[attr-defined]
    return 6.0 * macs * points


def limits(run: object, points: int, clock: Clock, repeats: int) -> dict[str, float]:
    """The machine's dense matmul FLOP rate (a 1024^3 ``mm``), the FLOP rate of an
    MLP-only step (forward and backward of the field's MLP on random features, as many
    points as the step) and the gather rate of the table alone (rows/s, random rows, as
    many as the encoding's forward blends per step)."""
    import torch

    field, device = run.field, run.device  # type: ignore[attr-defined]
    a, b = torch.rand(1024, 1024, device=device), torch.rand(1024, 1024, device=device)
    feats = torch.rand(points, field.mlp[0].in_features, device=device)
    for _ in range(repeats + 1):
        clock.start()
        torch.mm(a, b)
        clock.mark("limit: matmul")
        field.mlp(feats).sum().backward()
        clock.mark("limit: MLP-only step")
    out = {"matmul_flops_per_s": 2.0 * 1024**3 / (median_ms(clock.parts["limit: matmul"][1:]) / 1e3),
           "mlp_only_flops_per_s": mlp_flops(field, points) / (median_ms(clock.parts["limit: MLP-only step"][1:]) / 1e3)}
    levels = tables(field)
    if levels:
        # a table as large as all levels' together, of random rows: what a perfect gather would read
        table = torch.rand(sum(len(t) for t in levels), levels[0].shape[1], device=device)
        lookups = points * corner_reads(field)
        index = torch.randint(table.shape[0], (min(lookups, 1 << 25),), device=device)
        for _ in range(repeats + 1):
            clock.start()
            table.index_select(0, index)
            clock.mark("limit: table gather")
        out["gather_rows_per_s"] = len(index) / (median_ms(clock.parts["limit: table gather"][1:]) / 1e3)
        out["lookups_per_step"] = lookups
    return out


def worker(args: argparse.Namespace) -> None:
    import dataclasses

    import torch

    from dinr.settings import default_field_settings
    from dinr.train.allocator import keep_freed_memory
    from dinr.train.comm import Communicator
    from dinr.train.setup import set_up
    from dinr.train.shards import owned_shards
    from dinr.train.step import train_step

    keep_freed_memory()  # as dinr train's process does

    comm = Communicator()
    # ranks may share one GPU here: the check measures the step, not the GPU count
    settings = dataclasses.replace(default_field_settings(), device=args.device, share_gpus=True)
    if args.batch_rays:
        settings = dataclasses.replace(settings, batch_rays=args.batch_rays)
    cols, rows, views = FIELDS[args.field]
    shards = synthetic_shards(cols, rows, views, owned_shards(comm.size, comm.rank, comm.size), comm.size)
    run = set_up(settings, shards, comm.size, 1e-4, comm)
    if run.device.type == "cpu":
        torch.set_num_threads(1)
    sync = (lambda: torch.cuda.synchronize()) if run.device.type == "cuda" else (lambda: None)
    clock = Clock(sync)
    points = settings.batch_rays * run.samples
    for step in range(args.warmup + args.steps):
        comm.barrier()
        clock.start()
        train_step(run, step, 1e-3, False, run.samples)
        clock.mark("full step")
    for step in range(args.warmup + args.steps):
        comm.barrier()
        step_in_parts(run, step, clock)
    limit = limits(run, points, clock, args.steps)
    parts = {name: median_ms(times[args.warmup:]) for name, times in clock.parts.items() if not name.startswith("limit")}
    gathered = comm.gather(parts)
    if comm.rank != 0:
        return
    step_ms = max(p["full step"] for p in gathered)  # type: ignore[union-attr]
    enc_ms = parts["encoding forward"] + parts["encoding backward"]
    mlp_ms = parts["MLP forward"] + parts["MLP backward"]
    report = {
        "field": args.field, "ranks": comm.size, "threads_per_rank": torch.get_num_threads(), "device": str(run.device),
        "points_per_rank_step": points, "table_entries": sum(int(t.shape[0]) for t in tables(run.field)),
        "step_ms": step_ms, "samples_per_s": comm.size * points / (step_ms / 1e3), "parts_ms": parts, **limit,
        "mlp_flops_per_s": mlp_flops(run.field, points) / (mlp_ms / 1e3),
    }
    report["mlp_fraction_of_matmul_limit"] = report["mlp_flops_per_s"] / limit["matmul_flops_per_s"]
    report["mlp_fraction_of_mlp_only_step"] = report["mlp_flops_per_s"] / limit["mlp_only_flops_per_s"]
    report["encoding_share_of_step"] = enc_ms / parts["full step"]
    if "gather_rows_per_s" in limit:
        report["encoding_fraction_of_gather_limit"] = (
            limit["lookups_per_step"] / (parts["encoding forward"] / 1e3) / limit["gather_rows_per_s"])
    Path(args.result).write_text(json.dumps(report))


def measure(args: argparse.Namespace, field: str) -> dict[str, object]:
    with tempfile.TemporaryDirectory() as tmp:
        result = Path(tmp) / "result.json"
        steps = args.steps if field == "demo" else max(2, args.steps // 5)
        subprocess.run([launcher(), "-n", str(args.ranks), sys.executable, str(HERE), "--worker",
                        "--field", field, "--result", str(result), "--steps", str(steps),
                        "--warmup", str(args.warmup), "--device", args.device,
                        "--batch-rays", str(args.batch_rays)], check=True)
        measured = json.loads(result.read_text())
    print(f"{field}: step {measured['step_ms']:.1f} ms, {measured['samples_per_s']:,.0f} samples/s", flush=True)
    return measured


def table(report: dict[str, object]) -> str:
    m = report["machine"]
    lines = [f"# Training step throughput ({report['label']}), {m['cpu']} ({m['cores']} cores), GPU: {m['gpu']}", ""]
    for run in report["runs"]:  # type: ignore[attr-defined]
        lines += [f"## {run['field']}: {run['ranks']} ranks x {run['threads_per_rank']} thread, "
                  f"{run['points_per_rank_step']:,} points per rank per step, {run['table_entries']:,} table rows", "",
                  f"Full step {run['step_ms']:.1f} ms: **{run['samples_per_s']:,.0f} samples/s** (all ranks).", "",
                  "| part | ms | share of the parts |", "|---|---|---|"]
        parts = {k: v for k, v in run["parts_ms"].items() if k != "full step"}
        total = sum(parts.values())
        lines += [f"| {name} | {ms:.2f} | {100 * ms / total:.1f} % |" for name, ms in parts.items()]
        lines += ["", f"Limits: dense matmul {run['matmul_flops_per_s'] / 1e9:.1f} GFLOP/s, MLP-only step "
                  f"{run['mlp_only_flops_per_s'] / 1e9:.1f} GFLOP/s; the MLP in the step runs at "
                  f"{run['mlp_flops_per_s'] / 1e9:.1f} GFLOP/s ({100 * run['mlp_fraction_of_matmul_limit']:.0f} % of "
                  f"the matmul rate, {100 * run['mlp_fraction_of_mlp_only_step']:.0f} % of the MLP-only step). "
                  f"The encoding takes {100 * run['encoding_share_of_step']:.0f} % of the step."]
        if "gather_rows_per_s" in run:
            lines.append(f"Table gather alone {run['gather_rows_per_s'] / 1e6:.1f} M rows/s; the encoding's forward "
                         f"blends {run['lookups_per_step']:,} rows per step at "
                         f"{100 * run['encoding_fraction_of_gather_limit']:.0f} % of that rate.")
        lines.append("")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path("bench/results/throughput.json"))
    parser.add_argument("--label", default="current code", help="what this run measures (e.g. before/after)")
    parser.add_argument("--fields", nargs="+", choices=tuple(FIELDS), default=list(FIELDS))
    parser.add_argument("--ranks", type=int, default=2)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    parser.add_argument("--batch-rays", type=int, default=0, help="rays per shard per step (0: the default)")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--field", choices=tuple(FIELDS), help=argparse.SUPPRESS)
    parser.add_argument("--result", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args)
        return
    report = {"label": args.label, "machine": machine(), "runs": [measure(args, field) for field in args.fields]}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    args.out.with_suffix(".md").write_text(table(report))
    print(table(report))


if __name__ == "__main__":
    main()
