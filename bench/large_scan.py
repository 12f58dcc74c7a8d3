"""A beamline-size scan through the workflow: each stage's wall time and peak memory.

    python bench/large_scan.py --out bench/results/large_scan.json    # 2048 x 256 x 1800
    python bench/large_scan.py --cols 512 --rows 64 --out bench/results/large_scan_512.json

1. Synthesises a raw Data Exchange scan of ``--views`` x ``--rows`` x ``--cols`` uint16
   counts (2048 x 256 x 1800 is 1.9 GB on disk, 3.8 GB as float32), view block by view
   block: cylinders whose radii change along the axis drift and swell during the scan
   (four turns, Poisson noise on 20,000 flat counts), plus flats, darks and the ground
   truth at ``--frames`` times (parallel beam, the geometry of
   :mod:`dinr.geometry.parallel`).
2. Runs the workflow (``snakemake --cores 2``) on it one stage at a time up to
   ``--until``: convert, prepare, train (``--steps``, 2 ranks), render, export (OME-Zarr
   and ImageJ TIFF of DINR's volume), FBP static and sliding, evaluate.
3. Records each stage's wall time (Snakemake's benchmark file) and peak resident memory
   per process (the ``peak resident memory`` line every ``dinr`` stage logs; one per
   rank for MPI stages), and checks them against the limits: every stage but training
   below ``--limit-mb`` (1.5 GB), each training rank below 1.5 x (its ray shards + the
   model file). A stage that runs longer than ``--stage-limit-s`` is stopped; its
   record holds the peak memory so far of each ``dinr`` process (``VmHWM``, sampled
   from /proc every second) and its last progress line, and no later stage runs.

Writes the JSON and a Markdown table beside it. A benchmark, not a test: the test suite
runs the same streaming code on small scans (``tests/test_streaming.py``).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import h5py
import numpy as np
import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "bench"))
from distributed import machine  # noqa: E402

#: Workflow targets, in stage order (paths under results/large/); the baselines come
#: between render and evaluate.
STAGES = {
    "convert": "raw/canonical.h5",
    "prepare": "prepared/sinogram.h5",
    "train": "dinr/model.pt",
    "render": "dinr/recon.h5",
    "export": "dinr/export",
    "evaluate": "metrics.json",
}
BASELINES = ("fbp_sliding", "fbp_static")
#: Log and benchmark names of stages whose rule names them otherwise (the rest: the stage's).
RECORD_NAMES = {"export": "export_dinr"}
FLAT_COUNTS = 20_000
DARK_COUNTS = 100
PEAK = re.compile(r"peak resident memory (\d+) MiB \(rank (\d+)\)")


class Cylinders:
    """Vertical cylinders of attenuation ``mu`` (1/pixel) whose radius changes with
    height and that drift and swell with normalised time ``t`` in [0, 1]; pixels, in the
    coordinates of :mod:`dinr.geometry.parallel` (slice width ``n``, ``rows`` slices)."""

    def __init__(self, n: int, rows: int, seed: int = 0, count: int = 7) -> None:
        rng = np.random.default_rng(seed)
        self.n, self.rows = n, rows
        angle, rho = rng.uniform(0, 2 * np.pi, count), rng.uniform(0.0, 0.28, count) * n  # inside the cylinder
        self.centre = np.stack([rho * np.cos(angle), rho * np.sin(angle)], axis=1)
        self.drift = rng.uniform(-0.03, 0.03, (count, 2)) * n
        self.radius = rng.uniform(0.04, 0.1, count) * n
        self.taper = rng.uniform(-0.3, 0.3, count)
        self.swell = rng.uniform(0.0, 0.2, count)
        self.mu = 1.2 / (2 * self.radius.max()) * rng.uniform(0.4, 1.0, count)
        self.z = rows / 2.0 - (np.arange(rows) + 0.5)

    def _radius(self, k: int, t: float) -> np.ndarray:
        """(rows,) radius of cylinder ``k`` at each slice."""
        return self.radius[k] * (1 + self.swell[k] * t) * (1 + self.taper[k] * self.z / max(self.rows, 1))

    def project(self, theta: float, t: float, u: np.ndarray) -> np.ndarray:
        """(rows, cols) line integrals of the view at ``theta`` (radians), time ``t``,
        detector coordinates ``u`` (cols,)."""
        out = np.zeros((self.rows, len(u)), dtype=np.float64)
        for k in range(len(self.mu)):
            cx, cy = self.centre[k] + self.drift[k] * t
            d = u[None, :] - (cx * np.cos(theta) + cy * np.sin(theta))
            r = self._radius(k, t)[:, None]
            out += 2 * self.mu[k] * np.sqrt(np.clip(r * r - d * d, 0.0, None))
        return out

    def slice_image(self, t: float, row: int) -> np.ndarray:
        """(n, n) attenuation of slice ``row`` at time ``t``."""
        c = np.arange(self.n) + 0.5 - self.n / 2
        x, y = c[None, :], -c[:, None]
        image = np.zeros((self.n, self.n), dtype=np.float32)
        for k in range(len(self.mu)):
            cx, cy = self.centre[k] + self.drift[k] * t
            image[(x - cx) ** 2 + (y - cy) ** 2 < self._radius(k, t)[row] ** 2] += self.mu[k]
        return image


def synthesise(root: Path, views: int, rows: int, cols: int, frames: int, block_views: int = 16) -> None:
    """``raw.h5`` (Data Exchange, uint16 counts) and ``truth.h5`` of :class:`Cylinders`."""
    from dinr.io.dxchange import raw_writer
    from dinr.io.volume import volume_writer

    phantom = Cylinders(cols, rows)
    rng = np.random.default_rng(1)
    theta = np.linspace(0, 4 * 2 * np.pi, views, endpoint=False)
    time_s = np.arange(views) * 0.01
    t_norm = time_s / time_s[-1]
    u = np.arange(cols) + 0.5 - cols / 2
    flat = (rng.poisson(FLAT_COUNTS, (10, rows, cols)) + rng.poisson(DARK_COUNTS, (10, rows, cols))).astype(np.uint16)
    dark = rng.poisson(DARK_COUNTS, (4, rows, cols)).astype(np.uint16)
    with raw_writer(root / "raw.h5", (views, rows, cols), flat, dark, np.rad2deg(theta), time_s, {},
                    dtype=np.uint16) as data:
        for start in range(0, views, block_views):
            stop = min(views, start + block_views)
            clean = np.stack([FLAT_COUNTS * np.exp(-phantom.project(theta[v], t_norm[v], u)) for v in range(start, stop)])
            data[start:stop] = np.minimum(rng.poisson(clean) + rng.poisson(DARK_COUNTS, clean.shape), 65535)
    truth_t = (np.arange(frames) + 0.5) / frames
    with volume_writer(root / "truth.h5", (frames, rows, cols, cols), truth_t * time_s[-1], {}, name="truth") as truth:
        for f, t in enumerate(truth_t):
            for row in range(rows):
                truth[f, row] = phantom.slice_image(float(t), row)


def workflow_config(root: Path, args: argparse.Namespace) -> Path:
    config = {
        "datasets": {"large": {"raw": str(root / "raw.h5"), "truth": str(root / "truth.h5")}},
        "prepare": {"heldout_every": 10},
        "train": {"steps": args.steps, "log_every": max(1, args.steps // 10), "checkpoint_every": args.steps},
        "baselines": {"methods": list(args.baselines), "backend": "astra"},
        "resources": {"train_tasks": 2, "chunk_mb": args.chunk_mb},
    }
    path = root / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def run_stage(workdir: Path, config: Path, stage: str, limit_s: float | None) -> tuple[float, dict[int, int] | None]:
    """Run one stage's target; ``(wall s, None)``, or, when it runs past ``limit_s``,
    ``(limit_s, peak MiB so far per dinr process)`` after stopping it. Snakemake reruns
    a stage only when a file changed (``--rerun-triggers mtime``), so an invocation with
    another list of baselines reuses the stages already done."""
    target = f"results/large/{STAGES.get(stage, f'{stage}/recon.h5')}"
    start = time.perf_counter()
    job = subprocess.Popen([sys.executable, "-m", "snakemake", "--cores", "2", "-s",
                            str(REPO / "workflow" / "Snakefile"), "--directory", str(workdir), target,
                            "--configfile", str(config), "--rerun-triggers", "mtime"])
    peaks: dict[int, int] = {}
    while job.poll() is None:
        running = dinr_peaks(job.pid)
        peaks.update({pid: max(mib, peaks.get(pid, 0)) for pid, mib in running.items()})
        if limit_s is not None and time.perf_counter() - start > limit_s:
            for pid in running:  # the job itself: Snakemake would wait for it to end
                with contextlib.suppress(ProcessLookupError):  # it may have ended meanwhile
                    os.kill(pid, signal.SIGTERM)
            job.wait()  # Snakemake then removes the partial output
            return limit_s, peaks
        time.sleep(1.0)
    if job.returncode:
        raise subprocess.CalledProcessError(job.returncode, job.args)
    return time.perf_counter() - start, None


def dinr_peaks(root: int) -> dict[int, int]:
    """Peak resident memory so far (``VmHWM``, MiB) of every ``dinr`` process under
    process ``root``."""
    parent: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        try:
            parent[int(entry.name)] = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (ValueError, OSError):
            continue
    peaks = {}
    for pid in parent:
        ancestor = parent.get(pid)
        while ancestor not in (None, 0, root):
            ancestor = parent.get(ancestor)
        if ancestor != root:
            continue
        try:
            status = Path(f"/proc/{pid}/status").read_text()
            command = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if any(part.endswith(b"/dinr") or part == b"dinr" for part in command[:2]):  # the program, not a launcher
            peaks[pid] = int(re.search(r"VmHWM:\s+(\d+) kB", status).group(1)) // 1024  # type: ignore[union-attr]
    return peaks


def stage_record(workdir: Path, stage: str, wall_s: float, stopped_peaks: dict[int, int] | None) -> dict[str, object]:
    """Wall time (Snakemake's benchmark file) and the peak memory each rank logged; for a
    stage stopped at the time limit, the peaks sampled from /proc and how far it got
    (the last progress line of its log)."""
    name = RECORD_NAMES.get(stage, stage)
    log = (workdir / "logs" / "large" / f"{name}.log").read_text()
    if stopped_peaks is not None:
        progress = [line.strip() for line in re.split(r"[\r\n]", log) if "it/s" in line or "block" in line]
        return {"wall_s": wall_s, "stopped_at_limit": True, "peak_mib_per_rank": sorted(stopped_peaks.values()),
                "progress": progress[-1] if progress else ""}
    peaks = {int(rank): int(mib) for mib, rank in PEAK.findall(log)}
    benchmark = workdir / "results" / "large" / "benchmarks" / f"{name}.tsv"
    seconds = float(benchmark.read_text().splitlines()[1].split("\t")[0]) if benchmark.exists() else wall_s
    return {"wall_s": seconds, "peak_mib_per_rank": [peaks[r] for r in sorted(peaks)]}


def training_limit_mib(workdir: Path) -> tuple[float, float, float]:
    """(shard MiB per rank, model MiB, 1.5 x their sum) of the 2-rank training job."""
    with h5py.File(workdir / "results" / "large" / "prepared" / "sinogram.h5", "r") as f:
        views, rows, cols = f["projections"].shape
        train_views = int(np.count_nonzero(~f["heldout"][()]))
    shard = train_views / 2 * rows * cols * 4 / 2**20
    model = (workdir / "results" / "large" / "dinr" / "model.pt").stat().st_size / 2**20
    return shard, model, 1.5 * (shard + model)


def table(report: dict[str, object]) -> str:
    s = report["scan"]  # type: ignore[index]
    lines = [f"# Large scan: {s['cols']} columns x {s['rows']} rows x {s['views']} views "  # type: ignore[index]
             f"({s['raw_gb']:.2f} GB uint16, {s['float32_gb']:.2f} GB float32), chunk_mb {s['chunk_mb']}\n",  # type: ignore[index]
             "| stage | wall s | peak MiB per process | limit MiB | within |", "|---|---|---|---|---|"]
    for name, rec in report["stages"].items():  # type: ignore[attr-defined]
        peaks = ", ".join(str(p) for p in rec["peak_mib_per_rank"])
        wall = f"stopped at {rec['wall_s']:.0f} ({rec['progress']})" if rec.get("stopped_at_limit") else f"{rec['wall_s']:.1f}"
        lines.append(f"| {name} | {wall} | {peaks} | {rec['limit_mib']:.0f} | {'yes' if rec['within_limit'] else 'NO'} |")
    m = report["machine"]  # type: ignore[index]
    return "\n".join(lines) + f"\n\n{m['cpu']} ({m['cores']} cores). Training limit: 1.5 x (shard + model).\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "large_scan.json")
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/dinr_large_scan"))
    parser.add_argument("--cols", type=int, default=2048)
    parser.add_argument("--rows", type=int, default=256)
    parser.add_argument("--views", type=int, default=1800)
    parser.add_argument("--frames", type=int, default=2)
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--chunk-mb", type=float, default=256.0)
    parser.add_argument("--limit-mb", type=float, default=1500.0)
    parser.add_argument("--baselines", nargs="*", choices=BASELINES, default=list(BASELINES),
                        help="FBP baselines run and scored (none: DINR alone)")
    parser.add_argument("--until", choices=(*STAGES, *BASELINES), default="evaluate")
    parser.add_argument("--stage-limit-s", type=float, help="stop a stage that runs longer (its peak memory so "
                        "far is sampled from /proc) and run no later stage")
    args = parser.parse_args()
    args.workdir.mkdir(parents=True, exist_ok=True)
    scan = {"cols": args.cols, "rows": args.rows, "views": args.views, "frames": args.frames, "steps": args.steps,
            "baselines": list(args.baselines),
            "chunk_mb": args.chunk_mb, "raw_gb": args.views * args.rows * args.cols * 2 / 1e9,
            "float32_gb": args.views * args.rows * args.cols * 4 / 1e9}
    report: dict[str, object] = {"machine": machine(), "scan": scan, "stages": {}}
    if not (args.workdir / "truth.h5").exists():
        start = time.perf_counter()
        synthesise(args.workdir, args.views, args.rows, args.cols, args.frames)
        scan["synthesise_s"] = time.perf_counter() - start
    config = workflow_config(args.workdir, args)
    order = ["convert", "prepare", "train", "render", "export", *args.baselines, "evaluate"]
    stages = order[:order.index(args.until) + 1]
    for stage in stages:
        record = stage_record(args.workdir, stage, *run_stage(args.workdir, config, stage, args.stage_limit_s))
        if stage == "train":
            shard, model, limit = training_limit_mib(args.workdir)
            record.update(shard_mib=shard, model_mib=model, limit_mib=limit)
        else:
            record["limit_mib"] = args.limit_mb * 1e6 / 2**20
        record["within_limit"] = max(record["peak_mib_per_rank"]) < record["limit_mib"]  # type: ignore[type-var]
        report["stages"][stage] = record  # type: ignore[index]
        print(f"{stage}: {record}", flush=True)
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(report, indent=2) + "\n")
        args.out.with_suffix(".md").write_text(table(report))
        if record.get("stopped_at_limit"):
            break
    metrics = args.workdir / "results" / "large" / "metrics.json"
    if "evaluate" in report["stages"] and not report["stages"]["evaluate"].get("stopped_at_limit"):  # type: ignore
        methods = json.loads(metrics.read_text())["methods"]
        report["psnr"] = {name: scores["psnr_mean"] for name, scores in methods.items()}
        args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(table(report))


if __name__ == "__main__":
    main()
