"""The prepared GPU check: correctness, repeatability, precision and speed of training on
one GPU, in one JSON, in at most 8 minutes.

    python bench/gpu_check.py --out bench/results/gpu_check.json      # on a GPU machine
    python bench/gpu_check.py --cpu --out /tmp/gpu_check_cpu.json    # its CPU half (CI)

On a simulated demo-size scan (64 px, 8 rows, 4 turns) it runs ``dinr train`` as the
workflow does (``mpiexec -n R``) and records:

- ``correctness``: final loss of 1 and 2 ranks on the device (2 ranks share it) against
  the same run on the CPU, and that no rank drifted (the CRC guard would have failed);
- ``repeatability``: the largest parameter difference between two identical runs, with
  and without ``train.deterministic`` (under ``--cpu`` the first pair is the CPU
  reference run and the 1-rank run);
- ``precision``: bf16 autocast against fp32, final loss and step time;
- ``throughput``: samples/s of the field's training step at 16K to 8M points per step,
  eager and under ``torch.compile``;
- ``allreduce``: its share of a 2-rank step through host staging (``bench/throughput.py``);
- ``render``: slices/s of the trained field on the device and on the CPU;
- ``levels``: forward and backward milliseconds of each level of each grid of the demo
  and beamline fields' encodings at 1 M points (the Triton kernels; the Numba ones on the
  CPU), with the level's table rows, whether it is dense, and its rows per point;
- ``encoding``: samples/s of the full training step (forward, backward, Adam) of the
  demo field and of a beamline field (2048 columns, 256 rows, 4 turns) at 1 M and 8 M
  points, with the hash encoding's Triton kernels against its PyTorch path (on the CPU:
  the Numba kernels); the encoding's share of the step, its corner reads per second as
  a fraction of the device's random-gather rate, and the deterministic variant's
  slowdown;
- ``fbp``: seconds per 2048-column slice of static FBP (1800 views) on the GPU (ASTRA's
  CUDA FBP) and on one CPU core, and their relative difference;
- ``demo_dag``: the demo's whole DAG (simulate to figures, ``mbir_sliding`` included)
  with ``train.device``, ``baselines.device`` ``auto``: every stage's wall time, where
  each ran, and DINR's PSNR against the CPU run's (``bench/results/generalisation.json``).

``--cpu`` runs every part but the DAG on the CPU at small sizes, so CI proves the script
runs. ``--parts`` runs some parts only.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve()
#: The parts of the check, in the order they run (the fastest first: a run stopped at its
#: time limit keeps what it finished). ``training``: correctness to throughput below.
PARTS = ("levels", "encoding", "fbp", "demo_dag", "training")
sys.path.insert(0, str(HERE.parent))
from distributed import launcher, machine  # noqa: E402
from throughput import corner_reads, grids  # noqa: E402


def simulate_scan(root: Path, size: int, rows: int, views: int) -> Path:
    """A prepared scan of the built-in phantom (4 turns)."""
    from dinr import stages
    from dinr.settings import GeometrySettings, PrepareSettings, SimulateSettings, section_defaults

    simulate = SimulateSettings(**{**section_defaults("simulate"), "size": size, "rows": rows, "views": views,
                                   "turns": 4, "frames": 4})
    stages.simulate(simulate, GeometrySettings(**section_defaults("geometry")), root / "raw.h5", root / "truth.h5")
    stages.prepare(PrepareSettings(**section_defaults("prepare")), GeometrySettings(**section_defaults("geometry")),
                   root / "raw.h5", root / "sino.h5")
    return root / "sino.h5"


def train(root: Path, name: str, sinogram: Path, ranks: int, **overrides: Any) -> dict[str, Any]:
    """``mpiexec -n ranks dinr train`` with the schema defaults and ``overrides``; the
    final loss, rays/s, wall time and parameters."""
    import torch

    from dinr.settings import TrainSettings, section_defaults
    from dinr.train.checkpoint import load_checkpoint

    settings = TrainSettings(**{**section_defaults("train"), **overrides})
    (root / f"{name}.json").write_text(json.dumps(dataclasses.asdict(settings)))
    model = root / f"{name}-model.pt"
    start = time.perf_counter()
    result = subprocess.run([launcher(), "-n", str(ranks), sys.executable, "-m",
                             "dinr.cli", "train", "--settings", str(root / f"{name}.json"), "--sinogram",
                             str(sinogram), "--checkpoint", str(root / f"{name}.pt"), "--model", str(model)],
                            capture_output=True, text=True)
    wall = time.perf_counter() - start
    if result.returncode != 0:
        return {"error": result.stderr.strip().splitlines()[-1] if result.stderr.strip() else "failed"}
    state = load_checkpoint(model)
    return {"final_loss": state.history[-1][1], "rays_per_s": state.history[-1][2], "wall_s": wall,
            "device": state.launch["device"], "ranks": ranks,
            "params": {k: v.to(torch.float64) for k, v in state.model.items()}}


def max_difference(a: dict[str, Any], b: dict[str, Any]) -> float:
    return max(float((a["params"][k] - b["params"][k]).abs().max()) for k in a["params"])


def public(run: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in run.items() if k != "params"}


def step_throughput(device: str, points: list[int], compiled: bool) -> dict[str, Any]:
    """Samples/s of the demo field's forward, backward and Adam step at each point count."""
    import torch

    from dinr.geometry.parallel import ParallelGeometry
    from dinr.inr.build import build_field, field_spec
    from dinr.settings import default_field_settings

    settings = default_field_settings()
    field = build_field(settings, field_spec(settings, ParallelGeometry(8, 64, 32.0, 64), 8 * np.pi, 0.01)).to(device)
    optimizer = torch.optim.Adam(field.parameters(), lr=1e-3)
    model = torch.compile(field) if compiled else field
    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
    rates: dict[str, Any] = {}
    for n in points:
        coords = torch.rand(n, 4, device=device) * 2 - 1
        try:
            times = []
            for repeat in range(4):
                sync()
                start = time.perf_counter()
                optimizer.zero_grad()
                model(coords).square().mean().backward()
                optimizer.step()
                sync()
                times.append(time.perf_counter() - start)
            rates[str(n)] = n / float(np.median(times[1:]))
        except Exception as exc:  # noqa: BLE001 - recorded: compilation or memory can fail on a device
            rates[str(n)] = f"{type(exc).__name__}: {exc}".splitlines()[0][:200]
    return rates


def _field(size: int, rows: int, device: str) -> Any:
    """The default field of a scan of ``rows`` x ``size`` pixels over 4 turns."""
    from dinr.geometry.parallel import ParallelGeometry
    from dinr.inr.build import build_field, field_spec
    from dinr.settings import default_field_settings

    settings = default_field_settings()
    geometry = ParallelGeometry(rows, size, size / 2.0, size)
    return build_field(settings, field_spec(settings, geometry, 8 * np.pi, 0.01)).to(device)


def _median_seconds(work: Any, sync: Any, repeats: int = 4) -> float:
    times = []
    for _ in range(repeats):
        sync()
        start = time.perf_counter()
        work()
        sync()
        times.append(time.perf_counter() - start)
    return float(np.median(times[1:]))


def gather_rate(device: str, entries: int = 2**20, reads: int = 2**24) -> float:
    """Random rows of 2 float32 features read per second from a table of ``entries``
    rows: the device's gather rate, what the encoding's corner reads are measured against."""
    import torch

    table = torch.rand(entries, 2, device=device)
    index = torch.randint(0, entries, (reads,), device=device)
    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
    return reads / _median_seconds(lambda: table[index].sum(), sync)


def encoding_paths(device: str, points: list[int], fields: dict[str, tuple[int, int]]) -> dict[str, Any]:
    """Per field and point count: samples/s of the full step with each implementation of
    the hash encoding (Triton and PyTorch on CUDA; Numba and PyTorch on the CPU), the
    encoding's share of the step, its corner reads per second as a fraction of the
    gather rate, and the deterministic variant's slowdown (CUDA)."""
    import torch

    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
    kernels = "triton" if device == "cuda" else "cpu"
    gathers = gather_rate(device, reads=2**24 if device == "cuda" else 2**20)
    report: dict[str, Any] = {"gather_rows_per_s": gathers, "kernels": kernels}
    for name, (size, rows) in fields.items():
        field = _field(size, rows, device)
        field_grids, corners = grids(field), corner_reads(field)
        optimizer = torch.optim.Adam(field.parameters(), lr=1e-3)
        for n in points:
            coords = torch.rand(n, 4, device=device) * 2 - 1
            entry: dict[str, Any] = {}
            try:
                for path in (kernels, "torch"):
                    for grid in field_grids:
                        grid.path = path

                    def step() -> None:
                        optimizer.zero_grad()
                        field(coords).square().mean().backward()
                        optimizer.step()

                    def encode() -> None:
                        field.encoding(coords).square().mean().backward()

                    step_s, encode_s = _median_seconds(step, sync), _median_seconds(encode, sync)
                    entry[path] = {"samples_per_s": n / step_s, "encoding_share": encode_s / step_s,
                                   "gather_fraction": n * corners / encode_s / gathers}
                if device == "cuda":
                    for grid in field_grids:
                        grid.path = kernels
                    torch.use_deterministic_algorithms(True)
                    try:
                        deterministic_s = _median_seconds(step, sync)
                    finally:
                        torch.use_deterministic_algorithms(False)
                    entry["deterministic_slowdown"] = deterministic_s / (n / entry[kernels]["samples_per_s"])
                entry["speedup"] = entry[kernels]["samples_per_s"] / entry["torch"]["samples_per_s"]
            except Exception as exc:  # noqa: BLE001 - recorded: memory can run out on a device
                entry["error"] = f"{type(exc).__name__}: {exc}".splitlines()[0][:200]
            report[f"{name}_{n}"] = entry
        del field, optimizer
        if device == "cuda":
            torch.cuda.empty_cache()
    return report


def level_times(device: str, points: int, fields: dict[str, tuple[int, int]]) -> list[dict[str, Any]]:
    """Per level of each grid of each field: forward and backward milliseconds of the
    level's own kernels (Triton on CUDA, Numba on the CPU) at ``points`` points, its table
    rows, whether it is dense, and table rows per point (how crowded the backward's adds
    into one row are)."""
    import torch

    from dinr.inr.hashgrid import CpuHashGridLevel, TritonHashGridLevel

    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
    rows = []
    for name, (size, detector_rows) in fields.items():
        field = _field(size, detector_rows, device)
        coords = torch.rand(points, 4, device=device) * 2 - 1
        for index, grid in enumerate(grids(field)):
            unit = grid.unit_coordinates(coords).contiguous()
            for level, table in enumerate(grid.tables):
                leaf = table.detach().clone().requires_grad_(True)
                spec = grid.level_spec(level)

                def forward() -> torch.Tensor:
                    if device == "cuda":
                        return TritonHashGridLevel.apply(leaf, unit, spec)
                    return CpuHashGridLevel.apply(leaf, unit, grid, level)

                grad = torch.ones_like(forward())
                forward_s = _median_seconds(forward, sync)
                backward_s = _median_seconds(lambda: torch.autograd.grad(forward(), leaf, grad), sync) - forward_s
                rows.append({"field": name, "grid": index, "level": level, "rows": int(table.shape[0]),
                             "dense": level < int(grid.dense_levels), "rows_per_point": table.shape[0] / points,
                             "forward_ms": 1e3 * forward_s, "backward_ms": 1e3 * backward_s})
        del field
    return rows


def fbp_slice(cols: int, views: int) -> dict[str, Any]:
    """Seconds per slice of static FBP of a ``cols``-column sinogram of ``views`` views
    on the GPU (ASTRA's CUDA FBP, when there is one) and on one CPU core."""
    from dinr.baselines.device import library_gpu
    from dinr.baselines.fbp import fbp

    rng = np.random.default_rng(0)
    sinogram = rng.random((views, 1, cols), dtype=np.float32)
    theta = np.linspace(0, np.pi, views, endpoint=False)
    report: dict[str, Any] = {"cols": cols, "views": views}
    volumes = {}
    for device in ("cuda", "cpu"):
        if device == "cuda" and not library_gpu("fbp_static", "astra")[1]:
            report["cuda_s"] = "no GPU build of ASTRA or no GPU"
            continue
        if device == "cuda":
            fbp(sinogram, theta, cols / 2.0, "shepp", "astra", 1, device)  # warm-up: CUDA's context and plans
        start = time.perf_counter()
        volumes[device] = fbp(sinogram, theta, cols / 2.0, "shepp", "astra", 1, device)
        report[f"{device}_s"] = time.perf_counter() - start
    if len(volumes) == 2:
        report["relative_difference"] = float(np.linalg.norm(volumes["cuda"] - volumes["cpu"])
                                              / np.linalg.norm(volumes["cpu"]))
        report["speedup"] = report["cpu_s"] / report["cuda_s"]
    return report


def demo_dag(root: Path) -> dict[str, Any]:
    """The demo's DAG (``config/config.yaml``) on this machine with every device key at
    ``auto``: stage wall times, where each stage ran, DINR's PSNR against the CPU run's."""
    import h5py

    from dinr.train.checkpoint import load_checkpoint

    work = root / "demo_dag"
    work.mkdir()
    start = time.perf_counter()
    result = subprocess.run([sys.executable, "-m", "snakemake", "--cores", "all", "-s",
                             str(HERE.parents[1] / "workflow" / "Snakefile"), "--directory", str(work),
                             "--configfile", str(HERE.parents[1] / "config" / "config.yaml")],
                            capture_output=True, text=True)
    report: dict[str, Any] = {"wall_s": time.perf_counter() - start}
    if result.returncode != 0:
        report["error"] = (result.stdout + result.stderr).strip().splitlines()[-20:]
        return report
    metrics = json.loads((work / "results/demo/metrics.json").read_text())
    report["stage_wall_s"] = metrics["wall_s"]
    ran = {"train": load_checkpoint(work / "results/demo/dinr/model.pt").launch.get("device", "?")}
    for method in metrics["methods"]:
        if method != "dinr":
            with h5py.File(work / f"results/demo/{method}/recon.h5") as f:
                ran[method] = str(f.attrs.get("device", "cpu"))
    report["device"] = ran
    report["psnr"] = {name: scores["psnr_mean"] for name, scores in metrics["methods"].items()}
    reference = json.loads((HERE.parent / "results" / "generalisation.json").read_text())
    cpu = _demo_reference_psnr(reference)
    report["dinr_psnr_cpu_run"] = cpu
    report["dinr_psnr_difference_db"] = report["psnr"]["dinr"] - cpu if cpu is not None else None
    return report


def _demo_reference_psnr(reference: dict[str, Any]) -> float | None:
    """DINR's mean PSNR on the demo in the committed CPU table."""
    for row in reference["datasets"]:
        if row["dataset"] == "demo":
            return float(row["methods"]["dinr"]["psnr_mean"])
    return None


def render_rate(model_path: Path, device: str, slices: int) -> float:
    """Slices/s of the trained field rendered on ``device``."""
    import torch

    from dinr.inr.render import SliceRenderer
    from dinr.train.checkpoint import load_checkpoint

    state = load_checkpoint(model_path)
    renderer = SliceRenderer(state.field().to(device), state.beam_geometry(), device=device)
    renderer(0.5, 0)
    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
    sync()
    start = time.perf_counter()
    for i in range(slices):
        renderer((i + 0.5) / slices, i % state.beam_geometry().rows)
    sync()
    return slices / (time.perf_counter() - start)


def allreduce_share(device: str, steps: int) -> dict[str, Any]:
    """``bench/throughput.py`` on the demo field, 2 ranks on the device."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "throughput.json"
        result = subprocess.run([sys.executable, str(HERE.parent / "throughput.py"), "--fields", "demo", "--device",
                                 device, "--steps", str(steps), "--out", str(out)], capture_output=True, text=True)
        if result.returncode != 0:
            return {"error": result.stderr.strip().splitlines()[-1] if result.stderr.strip() else "failed"}
        run = json.loads(out.read_text())["runs"][0]
    parts = run["parts_ms"]
    return {"allreduce_ms": parts["allreduce"], "step_ms": run["step_ms"],
            "share": parts["allreduce"] / run["step_ms"], "samples_per_s": run["samples_per_s"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path("bench/results/gpu_check.json"))
    parser.add_argument("--cpu", action="store_true", help="the CPU half only, at small sizes (CI)")
    parser.add_argument("--parts", nargs="*", choices=PARTS, default=list(PARTS), help="the parts to run")
    args = parser.parse_args()
    device = "cpu" if args.cpu else "cuda"
    steps = 60 if args.cpu else 600
    points = [16_384, 131_072] if args.cpu else [16_384, 131_072, 1_048_576, 8_388_608]
    report: dict[str, Any] = {"machine": machine(), "device": device, "steps": steps}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    began = time.perf_counter()

    def record(part: str, value: Any) -> None:
        """Adds one part and rewrites the JSON, so a run stopped at its time limit keeps
        the parts it finished."""
        report[part] = value
        report["elapsed_s"] = time.perf_counter() - began
        args.out.write_text(json.dumps(report, indent=2, default=float) + "\n")
        print(f"[{report['elapsed_s']:6.1f} s] {part}: {json.dumps(value, default=float)[:600]}", flush=True)

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        fields = {"demo": (64, 8), "beamline": (256, 32) if args.cpu else (2048, 256)}
        if "levels" in args.parts:
            record("levels", level_times(device, 16_384 if args.cpu else 1_048_576, fields))
        if "encoding" in args.parts:
            record("encoding", encoding_paths(device, [16_384] if args.cpu else [1_048_576, 8_388_608], fields))
        if "fbp" in args.parts:
            record("fbp", fbp_slice(256, 360) if args.cpu else fbp_slice(2048, 1800))
        if "demo_dag" in args.parts and not args.cpu:
            record("demo_dag", demo_dag(root))
        if "training" not in args.parts:
            return
        sinogram = simulate_scan(root, 32 if args.cpu else 64, 4 if args.cpu else 8, 240 if args.cpu else 720)
        common = {"steps": steps, "log_every": 20, "checkpoint_every": steps, "device": device, "share_gpus": True}
        cpu = train(root, "cpu", sinogram, 1, **{**common, "device": "cpu"})
        one = train(root, "one", sinogram, 1, **common)
        two = train(root, "two", sinogram, 2, **common)
        record("correctness", {
            "cpu": public(cpu), "one_rank": public(one), "two_ranks": public(two),
            "loss_ratio_one_rank_to_cpu": one.get("final_loss", np.nan) / cpu["final_loss"],
            "loss_ratio_two_ranks_to_cpu": two.get("final_loss", np.nan) / cpu["final_loss"],
            "no_drift": "error" not in two})
        # on the CPU the reference run is already a second run of ``one``'s settings
        again = cpu if device == "cpu" else train(root, "again", sinogram, 1, **common)
        det = [train(root, f"det{i}", sinogram, 1, **common, deterministic=True) for i in (0, 1)]
        record("repeatability", {
            "max_param_difference_default": max_difference(one, again) if "params" in again else None,
            "max_param_difference_deterministic": max_difference(*det) if all("params" in d for d in det) else None,
            "deterministic_runs": [public(d) for d in det]})
        bf16 = train(root, "bf16", sinogram, 1, **common, precision="bf16")
        record("precision", {"fp32": public(one), "bf16": public(bf16),
                             "loss_ratio_bf16_to_fp32": bf16.get("final_loss", np.nan) / one["final_loss"],
                             "speed_ratio_bf16_to_fp32": bf16.get("rays_per_s", np.nan) / one["rays_per_s"]})
        record("render", {"device_slices_per_s": render_rate(root / "one-model.pt", device, 16 if args.cpu else 256),
                          "cpu_slices_per_s": render_rate(root / "one-model.pt", "cpu", 16)})
        record("allreduce", allreduce_share(device, 5 if args.cpu else 20))
        record("throughput", {"points": points, "eager_samples_per_s": step_throughput(device, points, False),
                              "compiled_samples_per_s": step_throughput(device, points[:1] if args.cpu else points,
                                                                        True)})


if __name__ == "__main__":
    main()
