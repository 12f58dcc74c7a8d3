"""One function per pipeline stage: read inputs, compute with the library, write outputs.

These are what the ``dinr`` subcommands (and so the workflow rules) call. File formats
are handled by :mod:`dinr.io`, numerics by the other subpackages.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from contextlib import nullcontext
from pathlib import Path

import numpy as np
from tqdm import tqdm

from dinr.baselines.fbp import available_backend, fbp, sliding_window_fbp
from dinr.errors import InputError
from dinr.evaluate.figures import metrics_over_time, slice_movie, slices_over_time, training_curve
from dinr.evaluate.center_scan import scan_centers
from dinr.evaluate.metrics import volume_metrics
from dinr.evaluate.quality import image_quality
from dinr.evaluate.residuals import field_residual, volume_residual
from dinr.frames import frame_times
from dinr.geometry.parallel import ParallelGeometry
from dinr.inr.render import SliceRenderer
from dinr.io.canonical import Sinogram, has_heldout_views, read_sinogram, write_sinogram
from dinr.io.atomic import write_json, write_text
from dinr.io.dxchange import read_raw, write_raw
from dinr.io.tiff import read_tiff_scan
from dinr.io.volume import read_volume, volume_attribute, volume_writer, write_volume
from dinr.prep.artifacts import remove_stripes, remove_zingers
from dinr.prep.center import find_center
from dinr.prep.normalize import minus_log, normalize, normalize_nf
from dinr.provenance import provenance
from dinr.settings import (
    BaselineSettings,
    ConvertSettings,
    PrepareSettings,
    RenderSettings,
    SimulateSettings,
    TrainSettings,
)
from dinr.sim.phantoms import build_phantom
from dinr.sim.scan import simulate_scan
from dinr.train.checkpoint import load_checkpoint, save_checkpoint
from dinr.train.comm import Communicator
from dinr.train.loop import field_from_checkpoint, samples_per_ray, settings_from_checkpoint
from dinr.train.loop import train as train_loop

log = logging.getLogger(__name__)


def simulate(settings: SimulateSettings, raw_path: Path, truth_path: Path) -> None:
    """Scan a built-in deforming phantom: raw Data Exchange counts plus ground truth."""
    geometry = ParallelGeometry(rows=settings.rows, cols=settings.size, center=settings.size / 2, n=settings.size)
    phantom = build_phantom(settings)
    scan = simulate_scan(
        phantom, geometry, n_views=settings.views, turns=settings.turns, photons=settings.photons,
        n_frames=settings.frames, view_time_s=settings.view_time_s, seed=settings.seed,
    )
    attrs = provenance("simulate", dataclasses.asdict(settings))
    write_raw(raw_path, scan.data, scan.flat, scan.dark, scan.theta_deg, scan.time_s, attrs)
    write_volume(truth_path, scan.truth, scan.truth_time_s, attrs, name="truth")
    log.info("simulated %d views of %s, truth %s", settings.views, scan.data.shape[1:], scan.truth.shape)


def heldout_views(views: int, every: int) -> np.ndarray:
    """(views,) bool: every ``every``-th view (the 10th, 20th, ... for 10), none for 0."""
    mask = np.zeros(views, dtype=bool)
    if every > 0:
        mask[every - 1::every] = True
    return mask


def convert(settings: ConvertSettings, source: Path, out_path: Path) -> None:
    """A user's raw scan (Data Exchange HDF5 file or TIFF-stack folder), cut to the
    region of interest, into the canonical Data Exchange file that ``prepare`` reads."""
    source = Path(source)
    rows = tuple(settings.rows) if settings.rows else None
    views = tuple(settings.views) if settings.views else None
    if source.is_dir():
        scan, source_format = read_tiff_scan(source, rows, views), "tiff"  # type: ignore[arg-type]
    else:
        scan, source_format = read_raw(source, rows, views), "dxchange"  # type: ignore[arg-type]
    if settings.flat_view is not None:
        if len(scan.flat) % len(settings.flat_view):
            raise InputError(f"convert.flat_view: {len(settings.flat_view)} groups do not split "
                             f"the {len(scan.flat)} flats of {source} evenly")
        scan.flat_view = np.asarray(settings.flat_view, dtype=np.int64)
    attrs = provenance("convert", dataclasses.asdict(settings), {"raw": str(source)})
    attrs["source_format"] = source_format
    write_raw(out_path, scan.data, scan.flat, scan.dark, np.rad2deg(scan.theta), scan.time, attrs, scan.flat_view)
    log.info("converted %s (%s): %d views x %d rows x %d cols", source, source_format, *scan.data.shape)


def prepare(settings: PrepareSettings, raw_path: Path, out_path: Path) -> None:
    """Flat/dark correction (TomoPy's ``normalize``, or ``normalize_nf`` for several flat
    sets), optional zinger and stripe removal, ``-log``, and the rotation axis, into the
    canonical sinogram file. Every step taken is recorded in the file's attributes."""
    raw = read_raw(raw_path)
    if len(raw.flat_view) > 1:
        transmission = normalize_nf(raw.data, raw.flat, raw.dark, raw.flat_view)
    else:
        transmission = normalize(raw.data, raw.flat, raw.dark)
    if settings.zinger_threshold is not None:
        transmission = remove_zingers(transmission, settings.zinger_threshold, settings.zinger_size)
    if settings.stripe == "vo":
        transmission = remove_stripes(transmission, settings.stripe_snr, settings.stripe_large_size,
                                      settings.stripe_small_size)
    projections = minus_log(transmission, settings.transmission_floor)
    cols = projections.shape[2]
    if settings.center is not None:
        center, center_method = float(settings.center), "config"
    elif settings.find_center != "none":
        center, center_method = find_center(projections, raw.theta, settings.find_center, str(raw_path))
    else:
        center, center_method = cols / 2.0, "middle"
    sino = Sinogram(
        projections=projections, theta=raw.theta, time=raw.time, view_index=np.arange(len(raw.theta)),
        center=center, scan_time=(float(raw.time[0]), float(raw.time[-1])), pixel_size_mm=settings.pixel_size_mm,
        heldout=heldout_views(len(raw.theta), settings.heldout_every),
    )
    attrs = provenance("prepare", dataclasses.asdict(settings), {"raw": str(raw_path)})
    attrs["center_method"] = center_method
    attrs["flat_correction"] = "normalize_nf" if len(raw.flat_view) > 1 else "normalize"
    write_sinogram(out_path, sino, attrs)
    log.info("prepared %s: %d views x %d rows x %d cols, centre %.2f (%s)", out_path, *projections.shape,
             center, center_method)


def baseline(settings: BaselineSettings, sinogram_path: Path, truth_path: Path | None, frames: int,
             mode: str, out_path: Path) -> None:
    """Static or sliding-window FBP at the frame times (the backend is recorded in the file)."""
    sino = read_sinogram(sinogram_path)
    backend = available_backend(settings.backend)
    seconds, normalised = frame_times(sino, truth_path, frames)
    if mode == "static":
        volume = fbp(sino.projections, sino.theta, sino.center, settings.filter, backend)
        recon = np.broadcast_to(volume, (len(seconds), *volume.shape))
    elif mode == "sliding":
        recon = sliding_window_fbp(
            sino.projections, sino.theta, sino.normalised_time(sino.time), normalised,
            sino.center, settings.filter, backend,
        )
    else:
        raise InputError(f"FBP mode {mode!r}: use 'static' or 'sliding'")
    attrs = provenance(f"fbp_{mode}", {**dataclasses.asdict(settings), "frames": frames},
                       {"sinogram": str(sinogram_path), "truth": str(truth_path or "")})
    attrs["fbp_backend"] = backend
    write_volume(out_path, np.ascontiguousarray(recon), seconds, attrs)
    log.info("fbp %s (%s): %d frames", mode, backend, len(seconds))


def train(settings: TrainSettings, sinogram_path: Path, checkpoint_path: Path, model_path: Path,
          comm: Communicator, reuse_checkpoint: bool = False) -> None:
    """Distributed training; rank 0 writes the final model (a complete checkpoint)."""
    state = train_loop(settings, sinogram_path, checkpoint_path, comm, reuse_checkpoint)
    if comm.rank == 0:
        state["provenance"] = provenance("train", dataclasses.asdict(settings), {"sinogram": str(sinogram_path)})
        save_checkpoint(model_path, state)


def render(settings: RenderSettings, model_path: Path, sinogram_path: Path, truth_path: Path | None,
           out_path: Path, comm: Communicator) -> None:
    """Sample the trained field at the frame times. The (frame, slice) images are dealt
    to the ranks in rounds; each round rank 0 gathers one image from every rank and
    writes them into the output file, so no rank holds more than a round of slices."""
    state = load_checkpoint(model_path)
    geometry = ParallelGeometry(**state["geometry"])
    render_slice = SliceRenderer(field_from_checkpoint(state), geometry, settings.chunk, settings.supersample)
    sino = read_sinogram(sinogram_path, views=np.arange(1))  # only its scan-time attributes are used
    seconds, normalised = frame_times(sino, truth_path, settings.frames)
    shape = (len(normalised), geometry.rows, geometry.n, geometry.n)
    items = [(f, r) for f in range(shape[0]) for r in range(shape[1])]
    attrs = provenance("render", dataclasses.asdict(settings),
                       {"model": str(model_path), "sinogram": str(sinogram_path)})
    attrs["dinr_train_settings"] = json.dumps(state["settings"], sort_keys=True)
    writer = volume_writer(out_path, shape, seconds, attrs) if comm.rank == 0 else nullcontext()
    with writer as dset:
        rounds = range(0, len(items), comm.size)
        for start in tqdm(rounds, desc="render", unit="round", mininterval=10, disable=comm.rank != 0):
            mine = items[start + comm.rank] if start + comm.rank < len(items) else None
            parts = comm.gather(None if mine is None else (mine, render_slice(float(normalised[mine[0]]), mine[1])))
            for part in parts or []:
                if part is not None:
                    dset[part[0]] = part[1]
    if comm.rank == 0:
        log.info("rendered %d frames of %d x %d x %d voxels", *shape)


def _read_wall_seconds(benchmarks: dict[str, Path]) -> dict[str, float]:
    """Wall seconds per stage from Snakemake ``benchmark:`` files (TSV, column ``s``)."""
    wall: dict[str, float] = {}
    for stage, path in benchmarks.items():
        lines = Path(path).read_text().splitlines()
        header, values = lines[0].split("\t"), lines[1].split("\t")
        wall[stage] = float(values[header.index("s")])
    return wall


def evaluate(dataset: str, sinogram_path: Path, truth_path: Path | None, recons: dict[str, Path],
             model_path: Path, benchmarks: dict[str, Path], baselines: BaselineSettings, out_json: Path,
             out_table: Path) -> dict[str, object]:
    """Metrics of every method: against the truth when there is one, else held-out
    residuals, with a scan of the rotation centre by held-out residual of static FBP
    (``baselines`` gives its filter and backend); and, either way, each method's
    no-reference noise and blur figures (:mod:`dinr.evaluate.quality`)."""
    methods: dict[str, dict[str, object]] = {}
    center: dict[str, object] = {}
    volumes = {name: read_volume(path) for name, path in recons.items()}
    backends = {name: volume_attribute(path, "fbp_backend", "torch") for name, path in recons.items()}
    state = load_checkpoint(model_path)
    geometry = ParallelGeometry(**state["geometry"])
    if truth_path:
        truth, _ = read_volume(truth_path, name="truth")
        for name, (volume, _) in volumes.items():
            methods[name] = volume_metrics(truth, volume, geometry.cylinder_mask())
    else:
        heldout = has_heldout_views(sinogram_path)
        sino = read_sinogram(sinogram_path, split="heldout" if heldout else "all")
        key = "heldout_rel_residual" if heldout else "train_rel_residual"
        field = field_from_checkpoint(state)
        samples = 2 * samples_per_ray(settings_from_checkpoint(state), geometry)
        for name, (volume, seconds) in volumes.items():
            value = field_residual(field, sino, geometry, samples) if name == "dinr" else \
                volume_residual(volume, sino.normalised_time(seconds), sino, geometry)
            methods[name] = {key: value}
        if heldout:
            center = center_report(sinogram_path, baselines)
    for name, (volume, _) in volumes.items():
        methods[name].update(image_quality(volume))
    report = {
        "dataset": dataset,
        **({"center": center} if center else {}),
        "methods": methods,
        "wall_s": _read_wall_seconds(benchmarks),
        "backend": backends,
        "provenance": provenance("evaluate", None, {k: str(v) for k, v in recons.items()}),
    }
    write_json(out_json, report)
    write_text(out_table, metrics_table(report))
    return report


def center_report(sinogram_path: Path, baselines: BaselineSettings, half_width: float = 5.0,
                  step: float = 0.25) -> dict[str, object]:
    """The prepared centre (``found``) next to the one that minimises static FBP's
    held-out residual over ``found +- half_width`` columns in ``step``s."""
    found = float(read_sinogram(sinogram_path, views=np.arange(1)).center)
    candidates = found + np.arange(-half_width, half_width + step / 2, step)
    residuals = scan_centers(sinogram_path, candidates, baselines.filter, available_backend(baselines.backend))
    best = float(candidates[int(np.argmin(residuals))])
    log.info("centre: found %.2f, best by held-out residual %.2f", found, best)
    return {"found": found, "best_by_residual": best, "candidates": candidates.tolist(),
            "heldout_rel_residual": residuals.tolist()}


def metrics_table(report: dict[str, object]) -> str:
    """A markdown table of the mean metrics of each method."""
    methods: dict[str, dict[str, object]] = report["methods"]  # type: ignore[assignment]
    keys = [k for k in next(iter(methods.values())) if k != "per_frame"]
    lines = [f"# {report['dataset']}", "", "| method | " + " | ".join(keys) + " |",
             "|---|" + "---|" * len(keys)]
    for name, values in methods.items():
        lines.append(f"| {name} | " + " | ".join(f"{float(values[k]):.4g}" for k in keys) + " |")
    wall: dict[str, float] = report["wall_s"]  # type: ignore[assignment]
    lines += ["", "| stage | wall s |", "|---|---|"] + [f"| {k} | {v:.1f} |" for k, v in wall.items()]
    return "\n".join(lines) + "\n"


def figures(metrics_path: Path, recons: dict[str, Path], truth_path: Path | None, model_path: Path,
            outdir: Path) -> None:
    """Write ``slices.png``, ``movie.gif``, ``metrics.png`` and ``training.png`` into ``outdir``."""
    report = json.loads(Path(metrics_path).read_text())
    volumes = {name: read_volume(path) for name, path in recons.items()}
    times = next(iter(volumes.values()))[1]
    truth = read_volume(truth_path, name="truth")[0] if truth_path else None
    slices_over_time({n: v for n, (v, _) in volumes.items()}, times, outdir / "slices.png", truth)
    slice_movie({n: v for n, (v, _) in volumes.items()}, times, outdir / "movie.gif", truth)
    metrics_over_time(report["methods"], times, outdir / "metrics.png")
    training_curve(load_checkpoint(model_path)["history"], outdir / "training.png")
