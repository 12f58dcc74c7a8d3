"""The prepared GPU check: correctness, repeatability, precision and speed of training on
one GPU, in one JSON, in at most 8 minutes.

    python bench/gpu_check.py --out bench/results/gpu_check.json      # on a GPU machine
    python bench/gpu_check.py --cpu --out /tmp/gpu_check_cpu.json    # its CPU half (CI)

On a simulated demo-size scan (64 px, 8 rows, 4 turns) it runs ``dinr train`` as the
workflow does (``mpiexec -n R``) and records:

- ``correctness``: final loss of 1 and 2 ranks on the device (2 ranks share it) against
  the same run on the CPU, and that no rank drifted (the CRC guard would have failed);
- ``repeatability``: the largest parameter difference between two identical runs, with
  and without ``train.deterministic``;
- ``precision``: bf16 autocast against fp32, final loss and step time;
- ``throughput``: samples/s of the field's training step at 16K to 8M points per step,
  eager and under ``torch.compile``;
- ``allreduce``: its share of a 2-rank step through host staging (``bench/throughput.py``);
- ``render``: slices/s of the trained field on the device and on the CPU.

``--cpu`` runs every part on the CPU at small sizes, so CI proves the script runs.
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
sys.path.insert(0, str(HERE.parent))
from distributed import launcher, machine  # noqa: E402


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
    from dinr.settings import TrainSettings, section_defaults

    settings = TrainSettings(**section_defaults("train"))
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
        again = train(root, "again", sinogram, 1, **common)
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
