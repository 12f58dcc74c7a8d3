"""One function per pipeline stage: read inputs, compute with the library, write outputs.

These are what the ``dinr`` subcommands (and so the workflow rules) call. File formats
are handled by :mod:`dinr.io`, numerics by the other subpackages.
"""

from __future__ import annotations

import dataclasses
import importlib.metadata
import json
import logging
from contextlib import nullcontext
from pathlib import Path

import numpy as np
from tqdm import tqdm

from dinr.baselines import FDK_METHODS, METHODS_BY_BEAM
from dinr.baselines import METHODS as BASELINE_METHODS
from dinr.baselines.fdk import fdk_sliding, fdk_static
from dinr.baselines.fbp import available_backend, fbp, sliding_window_fbp
from dinr.baselines.mbir import MBIR_METHODS, mace4d, sliding_window_mbir
from dinr.errors import InputError
from dinr.evaluate.center_scan import center_report
from dinr.evaluate.figures import metrics_over_time, slice_movie, slices_over_time, training_curve
from dinr.evaluate.figures import memory as plot_memory
from dinr.evaluate.figures import scaling as plot_scaling
from dinr.evaluate.figures import time_to_quality as plot_time_to_quality
from dinr.evaluate.metrics import volume_metrics
from dinr.evaluate.paper import latex_table, markdown_table
from dinr.evaluate.quality import image_quality
from dinr.evaluate.report import metrics_table
from dinr.evaluate.residuals import field_residual, volume_residual
from dinr.evaluate.time_to_quality import overtaking, snapshot_curve
from dinr.frames import frame_times
from dinr.geometry.resolve import beam_attributes, geometry_of
from dinr.inr.rays import samples_per_ray
from dinr.inr.render import SliceRenderer
from dinr.io.atomic import write_json, write_text
from dinr.io.benchmarks import read_wall_seconds
from dinr.io.canonical import (
    Sinogram,
    has_heldout_views,
    read_noise_variance,
    read_scan_time,
    read_sinogram,
    training_views,
    write_sinogram,
)
from dinr.io.dxchange import read_raw, write_raw
from dinr.io.tiff import read_tiff_scan
from dinr.io.volume import read_times, read_volume, volume_attribute, volume_writer, write_volume
from dinr.prep.artifacts import remove_stripes, remove_zingers
from dinr.prep.center import find_center
from dinr.prep.heldout import heldout_views
from dinr.prep.normalize import minus_log, normalize, normalize_nf
from dinr.provenance import provenance
from dinr.settings import (
    BaselineSettings,
    ConvertSettings,
    GeometrySettings,
    PrepareSettings,
    RenderSettings,
    SimulateSettings,
    TrainSettings,
)
from dinr.sim.phantoms import build_phantom
from dinr.sim.scan import simulate_scan, simulated_geometry
from dinr.train import loop
from dinr.train.checkpoint import TrainingState, load_checkpoint, save_checkpoint
from dinr.train.comm import Communicator
from dinr.train.device import choose_device
from dinr.train.shards import ray_shard_count, shard_views
from dinr.train.snapshots import load_snapshots

log = logging.getLogger(__name__)


def simulate(settings: SimulateSettings, geometry_settings: GeometrySettings, raw_path: Path, truth_path: Path) -> None:
    """Scan a built-in deforming phantom: raw Data Exchange counts (with the instrument's
    geometry in ``/measurement``) plus ground truth, in the beam ``geometry_settings`` give."""
    geometry, instrument = simulated_geometry(settings, geometry_settings, raw_path)
    phantom = build_phantom(settings)
    scan = simulate_scan(
        phantom, geometry, n_views=settings.views, turns=settings.turns, photons=settings.photons,
        n_frames=settings.frames, view_time_s=settings.view_time_s, seed=settings.seed,
    )
    attrs = provenance("simulate", {**dataclasses.asdict(settings), "geometry": dataclasses.asdict(geometry_settings)})
    write_raw(raw_path, scan.data, scan.flat, scan.dark, scan.theta_deg, scan.time_s, attrs, instrument=instrument)
    write_volume(truth_path, scan.truth, scan.truth_time_s, attrs, name="truth")
    log.info("simulated %d %s-beam views of %s, truth %s", settings.views, geometry.beam, scan.data.shape[1:],
             scan.truth.shape)


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
    write_raw(out_path, scan.data, scan.flat, scan.dark, np.rad2deg(scan.theta), scan.time, attrs, scan.flat_view,
              scan.instrument)
    log.info("converted %s (%s): %d views x %d rows x %d cols", source, source_format, *scan.data.shape)


def prepare(settings: PrepareSettings, geometry: GeometrySettings, raw_path: Path, out_path: Path) -> None:
    """Flat/dark correction (TomoPy's ``normalize``, or ``normalize_nf`` for several flat
    sets), optional zinger and stripe removal, ``-log``, the rotation axis and the beam
    geometry, into the canonical sinogram file. Every step taken is recorded in the
    file's attributes."""
    raw = read_raw(raw_path)
    beam = beam_attributes(geometry, raw.instrument, raw.data.shape[1], raw.data.shape[2], raw_path)
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
        projections=projections, theta=raw.theta, time=raw.time, center=center,
        scan_time=(float(raw.time[0]), float(raw.time[-1])),
        heldout=heldout_views(len(raw.theta), settings.heldout_every), **beam,
    )
    attrs = provenance("prepare", {**dataclasses.asdict(settings), "geometry": dataclasses.asdict(geometry)},
                       {"raw": str(raw_path)})
    attrs["center_method"] = center_method
    attrs["flat_correction"] = "normalize_nf" if len(raw.flat_view) > 1 else "normalize"
    write_sinogram(out_path, sino, attrs)
    log.info("prepared %s: %d views x %d rows x %d cols, centre %.2f (%s), %s beam", out_path, *projections.shape,
             center, center_method, beam["beam"])


def _frame_times(scan_time: tuple[float, float], times_path: Path | None,
                 frames: int) -> tuple[np.ndarray, np.ndarray]:
    """Every method's frame times: the ``/time`` of ``times_path`` (a volume file, e.g. the
    ground truth) when given, else ``frames`` evenly spaced (:func:`dinr.frames.frame_times`)."""
    return frame_times(scan_time, read_times(times_path) if times_path else None, frames)


def baseline(settings: BaselineSettings, method: str, sinogram_path: Path, truth_times_path: Path | None,
             frames: int, out_path: Path) -> None:
    """A baseline reconstruction at the frame times: ``fbp_static`` (FBP of all
    training views), ``fbp_sliding`` / ``mbir_sliding`` (FBP / MBIR of each frame's
    half-turn window) or ``mace4d`` (mbirjax's joint 4D MBIR) for parallel beam;
    ``fdk_static`` / ``fdk_sliding`` (RTK's FDK of all training views / of each frame's
    short scan) for cone beam. The frame times are those
    of ``truth_times_path`` (a volume file) when given, else ``frames`` evenly spaced; the
    reconstruction library is recorded in the file's ``backend`` attribute."""
    if method not in BASELINE_METHODS:
        raise InputError(f"baseline method {method!r}: use one of {', '.join(BASELINE_METHODS)}")
    sino = read_sinogram(sinogram_path, split="all" if method in MBIR_METHODS else "train")
    if method not in METHODS_BY_BEAM[sino.beam]:
        raise InputError(f"baselines.methods: {method!r} does not reconstruct {sino.beam}-beam scans "
                         f"({sinogram_path}); use {', '.join(METHODS_BY_BEAM[sino.beam])}")
    seconds, normalised = _frame_times(sino.scan_time, truth_times_path, frames)
    time_norm = sino.normalised_time(sino.time)
    geometry = geometry_of(sino)
    if method in FDK_METHODS:
        if method == "fdk_static":
            volume = fdk_static(sino.projections, sino.theta, geometry)  # type: ignore[arg-type]
            recon = np.broadcast_to(volume, (len(seconds), *volume.shape))
        else:
            recon = fdk_sliding(sino.projections, sino.theta, time_norm, normalised, geometry)  # type: ignore[arg-type]
        backend = f"itk-rtk {importlib.metadata.version('itk-rtk')}"
    elif method in MBIR_METHODS:
        if method == "mbir_sliding":
            recon = sliding_window_mbir(sino.projections, sino.theta, sino.heldout, time_norm, normalised,
                                        geometry, settings.mbir_sharpness, settings.mbir_iterations)
        else:
            recon = mace4d(sino.projections, sino.theta, sino.heldout, time_norm, normalised, geometry,
                           settings.mbir_sharpness, settings.mace4d_iterations, settings.mace4d_prior_weight)
        backend = f"mbirjax {importlib.metadata.version('mbirjax')}"
    else:
        backend = available_backend(settings.backend)
        if method == "fbp_static":
            volume = fbp(sino.projections, sino.theta, sino.center, settings.filter, backend)
            recon = np.broadcast_to(volume, (len(seconds), *volume.shape))
        else:
            recon = sliding_window_fbp(sino.projections, sino.theta, time_norm, normalised, sino.center,
                                       settings.filter, backend)
    attrs = provenance(method, {**dataclasses.asdict(settings), "frames": frames},
                       {"sinogram": str(sinogram_path), "truth": str(truth_times_path or "")})
    attrs["backend"] = backend
    write_volume(out_path, np.ascontiguousarray(recon), seconds, attrs)
    log.info("%s (%s): %d frames", method, backend, len(seconds))


def train(settings: TrainSettings, sinogram_path: Path, checkpoint_path: Path, model_path: Path,
          comm: Communicator, reuse_checkpoint: bool = False, snapshot_dir: Path | None = None,
          snapshot_every: int = 0) -> TrainingState:
    """Distributed training on this rank's ray shards of the scan's training views;
    rank 0 writes the final model (a complete checkpoint with provenance), and with
    ``snapshot_dir`` the field every ``snapshot_every`` steps. Returns the final state."""
    n_shards = ray_shard_count(settings.ray_shards, comm.size)
    views = shard_views(training_views(sinogram_path), n_shards, comm.rank, comm.size, str(sinogram_path))
    shards = {shard: read_sinogram(sinogram_path, views=indices) for shard, indices in views.items()}
    noise = read_noise_variance(sinogram_path, settings.loss_weights == "transmission")
    state = loop.train(settings, shards, n_shards, noise, checkpoint_path, comm, reuse_checkpoint,
                       snapshot_dir, snapshot_every)
    if comm.rank == 0:
        state.provenance = provenance("train", dataclasses.asdict(settings), {"sinogram": str(sinogram_path)})
        save_checkpoint(model_path, state)
    return state


def render(settings: RenderSettings, model_path: Path, sinogram_path: Path, truth_times_path: Path | None,
           out_path: Path, comm: Communicator) -> None:
    """Sample the trained field at the frame times (as :func:`baseline` chooses them).
    The (frame, slice) images are dealt to the ranks in rounds and rank 0 writes each
    round into the output file, so no rank holds more than a round of slices."""
    state = load_checkpoint(model_path)
    geometry = state.beam_geometry()
    trained = state.train_settings()
    device = choose_device(trained.device, comm, trained.share_gpus)
    render_slice = SliceRenderer(state.field().to(device), geometry, settings.chunk, settings.supersample, device)
    seconds, normalised = _frame_times(read_scan_time(sinogram_path), truth_times_path, settings.frames)
    shape = (len(normalised), geometry.rows, geometry.n, geometry.n)
    items = [(f, r) for f in range(shape[0]) for r in range(shape[1])]
    attrs = provenance("render", dataclasses.asdict(settings),
                       {"model": str(model_path), "sinogram": str(sinogram_path)})
    attrs["dinr_train_settings"] = json.dumps(state.settings, sort_keys=True)
    writer = volume_writer(out_path, shape, seconds, attrs) if comm.rank == 0 else nullcontext()
    with writer as dset:
        images = comm.map_rounds(items, lambda item: render_slice(float(normalised[item[0]]), item[1]))
        for item, image in tqdm(images, total=len(items), desc="render", unit="slice", mininterval=10,
                                disable=comm.rank != 0):
            dset[item] = image
    if comm.rank == 0:
        log.info("rendered %d frames of %d x %d x %d voxels", *shape)


def evaluate(dataset: str, sinogram_path: Path, truth_path: Path | None, recons: dict[str, Path],
             model_path: Path, benchmarks: dict[str, Path], baselines: BaselineSettings, out_json: Path,
             out_table: Path) -> dict[str, object]:
    """Metrics of every method: against the truth when there is one, else held-out
    residuals, with a scan of the rotation centre by held-out residual of static FBP
    (``baselines`` gives its filter and backend); and, either way, each method's
    no-reference noise and blur figures (:mod:`dinr.evaluate.quality`)."""
    center: dict[str, object] = {}
    volumes = {name: read_volume(path) for name, path in recons.items()}
    state = load_checkpoint(model_path)
    geometry = state.beam_geometry()
    if truth_path:
        truth, _ = read_volume(truth_path, name="truth")
        methods = {name: volume_metrics(truth, volume, geometry.region_mask()) for name, (volume, _) in volumes.items()}
    else:
        heldout = has_heldout_views(sinogram_path)
        sino = read_sinogram(sinogram_path, split="heldout" if heldout else "all")
        methods = residual_metrics(volumes, sino, state, "heldout_rel_residual" if heldout else "train_rel_residual")
        if heldout and geometry.beam == "parallel":  # the centre scan reconstructs by parallel-beam FBP
            center = center_report(read_sinogram(sinogram_path, split="train"), sino, baselines.filter,
                                   available_backend(baselines.backend))
    for name, (volume, _) in volumes.items():
        methods[name].update(image_quality(volume))
    report = {
        "dataset": dataset,
        **({"center": center} if center else {}),
        "methods": methods,
        "wall_s": read_wall_seconds(benchmarks),
        "backend": {name: volume_attribute(path, "backend", "torch") for name, path in recons.items()},
        "provenance": provenance("evaluate", None, {k: str(v) for k, v in recons.items()}),
    }
    write_json(out_json, report)
    write_text(out_table, metrics_table(report))
    return report


def residual_metrics(volumes: dict[str, tuple[np.ndarray, np.ndarray]], sino: Sinogram, state: TrainingState,
                     key: str) -> dict[str, dict[str, object]]:
    """``{method: {key: relative residual}}`` on the views of ``sino``: DINR's field at
    each view's own time (midpoint quadrature at twice its training samples), the other
    methods' volumes by the frame nearest in time."""
    geometry = state.beam_geometry()
    trained = state.train_settings()
    samples = 2 * samples_per_ray(trained.samples_per_ray, geometry.n)
    device = choose_device(trained.device, Communicator(use_mpi=False), trained.share_gpus)
    return {
        name: {key: field_residual(state.field().to(device), sino, geometry, samples) if name == "dinr" else
               volume_residual(volume, sino.normalised_time(seconds), sino, geometry)}
        for name, (volume, seconds) in volumes.items()
    }


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
    training_curve(load_checkpoint(model_path).history, outdir / "training.png")


def time_to_quality(render_settings: RenderSettings, model_path: Path, snapshot_dir: Path, sinogram_path: Path,
                    truth_path: Path, metrics_path: Path, out_json: Path, out_png: Path) -> dict[str, object]:
    """DINR's PSNR and SSIM at each training snapshot (of a run of the same settings as
    ``model_path``) against its wall time, the baselines' (PSNR, wall time) from the
    dataset's ``metrics_path``, and when DINR overtakes each; JSON and a figure."""
    state = load_checkpoint(model_path)
    truth, _ = read_volume(truth_path, name="truth")
    _, normalised = _frame_times(read_scan_time(sinogram_path), truth_path, len(truth))
    curve = snapshot_curve(state, load_snapshots(snapshot_dir), truth, normalised, render_settings.chunk)
    report = json.loads(Path(metrics_path).read_text())
    peers = {name: {"psnr": scores["psnr_mean"], "wall_s": report["wall_s"][name]}
             for name, scores in report["methods"].items() if name != "dinr"}
    result = {"dinr": curve, "peers": peers, "overtakes_at_s": overtaking(curve, peers),
              "provenance": provenance("time_to_quality", dataclasses.asdict(render_settings),
                                       {"model": str(model_path), "snapshots": str(snapshot_dir),
                                        "metrics": str(metrics_path)})}
    write_json(out_json, result)
    plot_time_to_quality(curve, peers, out_png)
    return result


def paper(metrics_paths: list[Path], distributed_path: Path, memory_path: Path, out_md: Path, out_tex: Path,
          out_scaling: Path, out_memory: Path) -> None:
    """The paper's comparison table (Markdown and LaTeX) from every scan's metrics, and
    its scaling and memory figures from the benchmarks' JSON."""
    reports = [json.loads(Path(path).read_text()) for path in metrics_paths]
    write_text(out_md, markdown_table(reports))
    write_text(out_tex, latex_table(reports))
    plot_scaling(json.loads(Path(distributed_path).read_text()), out_scaling)
    plot_memory(json.loads(Path(memory_path).read_text()), out_memory)
