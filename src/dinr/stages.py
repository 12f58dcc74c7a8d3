"""One function per pipeline stage: read inputs, compute with the library, write outputs.

These are what the ``dinr`` subcommands (and so the workflow rules) call. File formats
are handled by :mod:`dinr.io`, numerics by the other subpackages.
"""

from __future__ import annotations

import dataclasses
import importlib.metadata
import json
import logging
from collections.abc import Iterator
from contextlib import ExitStack, nullcontext
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from dinr.baselines import FBP_METHODS, FDK_METHODS, METHODS_BY_BEAM
from dinr.baselines import METHODS as BASELINE_METHODS
from dinr.baselines.device import resolve_device
from dinr.baselines.fdk import fdk_sliding, fdk_static
from dinr.baselines.fbp import available_backend, fbp, sliding_window_fbp_frames
from dinr.baselines.mbir import MBIR_METHODS, mace4d, sliding_window_mbir
from dinr.errors import InputError
from dinr.evaluate.center_scan import center_report
from dinr.evaluate.figures import metrics_over_time, slice_movie, slices_over_time, training_curve
from dinr.evaluate.figures import memory as plot_memory
from dinr.evaluate.figures import scaling as plot_scaling
from dinr.evaluate.figures import scan_size as plot_scan_size
from dinr.evaluate.figures import time_to_quality as plot_time_to_quality
from dinr.evaluate.frames import margins
from dinr.evaluate.metrics import volume_metrics
from dinr.evaluate.paper import frames_table, latex_table, markdown_table
from dinr.evaluate.quality import image_quality
from dinr.evaluate.report import metrics_table
from dinr.evaluate.residuals import ResidualSum, field_prediction, volume_prediction
from dinr.evaluate.time_to_quality import overtaking, snapshot_curve
from dinr.frames import frame_times
from dinr.geometry import Geometry
from dinr.geometry.resolve import beam_attributes, geometry_of, voxel_size_mm
from dinr.inr.rays import samples_per_ray
from dinr.inr.refine import FrameRefiner
from dinr.inr.render import SliceRenderer, VoxelGrid
from dinr.io.atomic import write_json, write_text
from dinr.io.benchmarks import read_wall_seconds, with_seconds_trained
from dinr.io.canonical import (
    Sinogram,
    has_heldout_views,
    read_noise_variance,
    read_scan_shape,
    read_scan_time,
    read_sinogram,
    sinogram_id,
    sinogram_writer,
    training_views,
    write_scan_description,
)
from dinr.io.blocks import DEFAULT_CHUNK_MB, blocks
from dinr.io.dxchange import RawScanFile, check_counts, check_dead_pixels, dead_pixels, raw_writer, write_raw
from dinr.io.tiff import TiffStack
from dinr.io.volume import (
    finite_block,
    open_volume,
    read_times,
    read_volume,
    static_volume_writer,
    volume_attribute,
    volume_writer,
    write_volume,
)
from dinr.prep.artifacts import remove_stripes, remove_zingers
from dinr.prep.center import find_center
from dinr.prep.exposure import exposure_middles
from dinr.prep.heldout import heldout_views
from dinr.prep.normalize import minus_log, normalize, normalize_nf
from dinr.prep.stillness import read_stillness
from dinr.provenance import provenance
from dinr.rendering import request_grid, request_times, voxel_size_zyx
from dinr.settings import (
    BaselineSettings,
    ConvertSettings,
    GeometrySettings,
    PrepareSettings,
    RenderingSettings,
    RenderSettings,
    SimulateSettings,
    TrainSettings,
)
from dinr.sim.phantoms import build_phantom
from dinr.sim.scan import simulate_scan, simulated_geometry
from dinr.sim.version import VERSION_KEY, simulator_version
from dinr.train import loop, time_cells
from dinr.train.checkpoint import TrainingState, load_checkpoint, save_checkpoint
from dinr.train.comm import Communicator
from dinr.train.device import choose_device
from dinr.train.schedule import budget
from dinr.train.setup import epoch_rays, line_integral_peak, starting_point
from dinr.train.shards import heldout_shard_views, ray_shard_count, shard_views
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
    attrs = provenance("simulate", {**dataclasses.asdict(settings), "geometry": dataclasses.asdict(geometry_settings),
                                    VERSION_KEY: simulator_version()})
    write_raw(raw_path, scan.data, scan.flat, scan.dark, scan.theta_deg, scan.time_s, attrs, instrument=instrument)
    write_volume(truth_path, scan.truth, scan.truth_time_s, attrs, name="truth")
    log.info("simulated %d %s-beam views of %s, truth %s", settings.views, geometry.beam, scan.data.shape[1:],
             scan.truth.shape)


def _progress(items: list[slice], stage: str) -> Iterator[slice]:
    """The blocks of a streaming stage, with a progress line (rate, ETA) every 10 s."""
    return iter(tqdm(items, desc=stage, unit="block", mininterval=10, disable=len(items) < 2))


def convert(settings: ConvertSettings, source: Path, out_path: Path, chunk_mb: float = DEFAULT_CHUNK_MB) -> None:
    """A user's raw scan (Data Exchange HDF5 file or TIFF-stack folder), cut to the
    region of interest, into the canonical Data Exchange file that ``prepare`` reads,
    copied in blocks of views of at most ``chunk_mb`` MiB (both sources store a view
    contiguously), so memory stays bounded whatever the scan's size."""
    source = Path(source)
    rows = tuple(settings.rows) if settings.rows else None
    views = tuple(settings.views) if settings.views else None
    scan: TiffStack | RawScanFile
    if source.is_dir():
        scan, source_format = TiffStack(source, rows, views), "tiff"  # type: ignore[arg-type]
    else:
        scan, source_format = RawScanFile(source, rows, views), "dxchange"  # type: ignore[arg-type]
    data_name, flat_name, dark_name, _ = scan.names
    with scan:
        flat, dark = scan.flats(), scan.darks()
        check_counts(scan.path, flat_name, flat)
        check_counts(scan.path, dark_name, dark)
        check_dead_pixels(scan.path, dead_pixels(flat, dark), flat[0].size, flat_name, dark_name)
        flat_view = scan.flat_view
        if settings.flat_view is not None:
            if len(flat) % len(settings.flat_view):
                raise InputError(f"convert.flat_view: {len(settings.flat_view)} groups do not split "
                                 f"the {len(flat)} flats of {source} evenly")
            flat_view = np.asarray(settings.flat_view, dtype=np.int64)
        attrs = provenance("convert", dataclasses.asdict(settings), {"raw": str(source)})
        attrs["source_format"] = source_format
        n_views, n_rows, cols = scan.shape
        with raw_writer(out_path, scan.shape, flat, dark, np.rad2deg(scan.theta), scan.time, attrs, flat_view,
                        scan.instrument) as data:
            for block in _progress(blocks(n_views, n_rows * cols * 4, chunk_mb), "convert"):
                counts = scan.counts(views=block)
                check_counts(scan.path, data_name, counts)
                data[block] = counts
    log.info("converted %s (%s): %d views x %d rows x %d cols", source, source_format, *scan.shape)


#: float32 arrays of one row block that prepare holds at once (counts, transmission, the
#: artefact filters' output and -log), which its blocks are sized by.
_PREPARE_COPIES = 4


def prepare(settings: PrepareSettings, geometry: GeometrySettings, raw_path: Path, out_path: Path,
            chunk_mb: float = DEFAULT_CHUNK_MB) -> None:
    """Flat/dark correction (TomoPy's ``normalize``, or ``normalize_nf`` for several flat
    sets), optional zinger and stripe removal, ``-log``, the rotation axis and the beam
    geometry, into the canonical sinogram file. Every step acts on each detector row's
    sinogram alone, so the scan goes through in blocks of rows whose working arrays
    take at most ``chunk_mb`` MiB, and the output is the same whatever the block size;
    the axis is found on the written projections (one row, or two views). Every step
    taken is recorded in the file's attributes."""
    with RawScanFile(raw_path) as raw:
        views, rows, cols = raw.shape
        beam = beam_attributes(geometry, raw.instrument, rows, cols, raw_path)
        several_flats = len(raw.flat_view) > 1
        attrs = provenance("prepare", {**dataclasses.asdict(settings), "geometry": dataclasses.asdict(geometry)},
                           {"raw": str(raw_path)})
        attrs["flat_correction"] = "normalize_nf" if several_flats else "normalize"
        dead = 0
        with sinogram_writer(out_path, raw.shape, attrs) as out:
            for block in _progress(blocks(rows, _PREPARE_COPIES * views * cols * 4, chunk_mb), "prepare"):
                counts, flat, dark = raw.counts(rows=block), raw.flats(block), raw.darks(block)
                for name, values in zip(raw.names[:3], (counts, flat, dark)):
                    check_counts(raw.path, name, values)
                dead += dead_pixels(flat, dark)
                if several_flats:
                    transmission = normalize_nf(counts, flat, dark, raw.flat_view)
                else:
                    transmission = normalize(counts, flat, dark)
                del counts
                if settings.zinger_threshold is not None:
                    transmission = remove_zingers(transmission, settings.zinger_threshold, settings.zinger_size)
                if settings.stripe == "vo":
                    transmission = remove_stripes(transmission, settings.stripe_snr, settings.stripe_large_size,
                                                  settings.stripe_small_size)
                out["projections"][:, block] = minus_log(transmission, settings.transmission_floor)
            check_dead_pixels(raw.path, dead, rows * cols, raw.names[1], raw.names[2])
            theta, time = exposure_middles(raw.theta, raw.time, settings.angles_at)
            out.attrs["angles_at"] = settings.angles_at
            if settings.center is not None:
                center, center_method = float(settings.center), "config"
            elif settings.find_center != "none":
                center, center_method = find_center(out["projections"], theta, settings.find_center,
                                                    str(raw_path))
            else:
                center, center_method = cols / 2.0, "middle"
            out.attrs["center_method"] = center_method
            write_scan_description(out, Sinogram(
                projections=out["projections"], theta=theta, time=time, center=center,
                scan_time=(float(time[0]), float(time[-1])),
                heldout=heldout_views(views, settings.heldout_every), **beam,
            ))
    log.info("prepared %s: %d views x %d rows x %d cols, centre %.2f (%s), %s beam", out_path, views, rows, cols,
             center, center_method, beam["beam"])


def _frame_times(scan_time: tuple[float, float], times_path: Path | None,
                 frames: int) -> tuple[np.ndarray, np.ndarray]:
    """Every method's frame times: the ``/time`` of ``times_path`` (a volume file, e.g. the
    ground truth) when given, else ``frames`` evenly spaced (:func:`dinr.frames.frame_times`)."""
    return frame_times(scan_time, read_times(times_path) if times_path else None, frames)


def baseline(settings: BaselineSettings, method: str, sinogram_path: Path, truth_times_path: Path | None,
             frames: int, out_path: Path, chunk_mb: float = DEFAULT_CHUNK_MB, threads: int = 1) -> None:
    """A baseline reconstruction at the frame times: ``fbp_static`` (FBP of all
    training views), ``fbp_sliding`` / ``mbir_sliding`` (FBP / MBIR of each frame's
    half-turn window) or ``mace4d`` (mbirjax's joint 4D MBIR) for parallel beam;
    ``fdk_static`` / ``fdk_sliding`` (RTK's FDK of all training views / of each frame's
    short scan) for cone beam. The frame times are those
    of ``truth_times_path`` (a volume file) when given, else ``frames`` evenly spaced; the
    reconstruction library is recorded in the file's ``backend`` attribute. FBP
    reconstructs each slice alone, so it goes through the scan in blocks of detector
    rows of at most ``chunk_mb`` MiB (sinogram and slices) and writes each block as it
    goes, ``threads`` slices at once; the MBIR and FDK peers take the scan in one piece
    (sliding MBIR's frames in ``threads`` processes on a CPU, MACE4D on ``threads`` JAX
    CPU devices)."""
    if method not in BASELINE_METHODS:
        raise InputError(f"baseline method {method!r}: use one of {', '.join(BASELINE_METHODS)}")
    split = "all" if method in MBIR_METHODS else "train"
    header = read_sinogram(sinogram_path, split=split, rows=slice(0, 0))
    if method not in METHODS_BY_BEAM[header.beam]:
        raise InputError(f"baselines.methods: {method!r} does not reconstruct {header.beam}-beam scans "
                         f"({sinogram_path}); use {', '.join(METHODS_BY_BEAM[header.beam])}")
    seconds, normalised = _frame_times(header.scan_time, truth_times_path, frames)
    attrs = provenance(method, {**dataclasses.asdict(settings), "frames": frames},
                       {"sinogram": str(sinogram_path), "truth": str(truth_times_path or "")})
    voxel = (voxel_size_mm(header),) * 3
    backend = available_backend(settings.backend) if method in FBP_METHODS else ""
    device = resolve_device(settings.device, method, backend)
    attrs["device"] = device
    if method in FBP_METHODS:
        attrs["backend"] = backend
        _fbp_in_blocks(settings, method, sinogram_path, normalised, seconds, attrs, out_path, chunk_mb, threads,
                       voxel, device)
        log.info("%s (%s on %s): %d frames", method, backend, device, len(seconds))
        return
    sino = read_sinogram(sinogram_path, split=split)
    time_norm = sino.normalised_time(sino.time)
    geometry = geometry_of(sino)
    if method in FDK_METHODS:
        if method == "fdk_static":
            volume = fdk_static(sino.projections, sino.theta, geometry, device)  # type: ignore[arg-type]
            attrs["backend"] = f"itk-rtk {importlib.metadata.version('itk-rtk')}"
            with static_volume_writer(out_path, (len(seconds), *volume.shape), seconds, attrs, voxel) as static:
                static[...] = volume
            log.info("%s (%s): one volume for %d frames", method, attrs["backend"], len(seconds))
            return
        recon = fdk_sliding(sino.projections, sino.theta, time_norm, normalised, geometry,  # type: ignore[arg-type]
                            device)
        attrs["backend"] = f"itk-rtk {importlib.metadata.version('itk-rtk')}"
    elif method == "mbir_sliding":
        recon = sliding_window_mbir(sino.projections, sino.theta, sino.heldout, time_norm, normalised,
                                    geometry, settings.mbir_sharpness, settings.mbir_iterations, workers=threads,
                                    device=device)
        attrs["backend"] = f"mbirjax {importlib.metadata.version('mbirjax')}"
    else:
        recon = mace4d(sino.projections, sino.theta, sino.heldout, time_norm, normalised, geometry,
                       settings.mbir_sharpness, settings.mace4d_iterations, settings.mace4d_prior_weight,
                       cpu_devices=threads, device=device)
        attrs["backend"] = f"mbirjax {importlib.metadata.version('mbirjax')}"
    write_volume(out_path, np.ascontiguousarray(recon), seconds, attrs, voxel_size_mm=voxel)
    log.info("%s (%s on %s): %d frames", method, attrs["backend"], device, len(seconds))


def _fbp_in_blocks(settings: BaselineSettings, method: str, sinogram_path: Path, normalised: np.ndarray,
                   seconds: np.ndarray, attrs: dict[str, object], out_path: Path, chunk_mb: float,
                   threads: int, voxel: tuple[float, float, float], device: str) -> None:
    """``fbp_static`` or ``fbp_sliding`` of the training views, block of detector rows by
    block, each block's slices written for every frame before the next is read
    (``fbp_static``'s one volume once, shown at every frame time)."""
    views, rows, cols = read_scan_shape(sinogram_path)
    backend = str(attrs["backend"])
    shape = (len(seconds), rows, cols, cols)
    writer = static_volume_writer if method == "fbp_static" else volume_writer
    with writer(out_path, shape, seconds, attrs, voxel_size_mm=voxel) as recon:
        for block in _progress(blocks(rows, 4 * (views * cols + cols * cols), chunk_mb), method):
            sino = read_sinogram(sinogram_path, split="train", rows=block)
            if method == "fbp_static":
                recon[block] = fbp(sino.projections, sino.theta, sino.center, settings.filter, backend, threads,
                                   device)
            else:
                for frame, volume in enumerate(sliding_window_fbp_frames(
                        sino.projections, sino.theta, sino.normalised_time(sino.time), normalised, sino.center,
                        settings.filter, backend, threads, device)):
                    recon[frame, block] = volume


def train(settings: TrainSettings, sinogram_path: Path, checkpoint_path: Path, model_path: Path,
          comm: Communicator, other_settings: str = "refuse", snapshot_dir: Path | None = None,
          snapshot_every: int = 0) -> TrainingState:
    """Distributed training on this rank's ray shards of the scan's training views,
    steered by the residual of its shards' held-out views (:mod:`dinr.train.schedule`),
    after pilot runs that choose the time cells under ``time_cells_per_half_turn: auto``
    (:mod:`dinr.train.time_cells`; their checkpoints lie beside ``checkpoint_path``);
    rank 0 writes the final model (a complete checkpoint with provenance), and with
    ``snapshot_dir`` the field every ``snapshot_every`` steps; a checkpoint made with
    other settings is treated by ``other_settings`` (:func:`dinr.train.loop.resume`).
    Returns the final state."""
    n_shards = ray_shard_count(settings.ray_shards, comm.size)
    train_views = training_views(sinogram_path)
    views = shard_views(train_views, n_shards, comm.rank, comm.size, str(sinogram_path))
    shards, peaks = {}, []
    for shard, indices in views.items():  # the peak is taken in place on a first read: no second copy
        peaks.append(line_integral_peak(read_sinogram(sinogram_path, views=indices).projections, overwrite=True))
        shards[shard] = read_sinogram(sinogram_path, views=indices)
    held_out = training_views(sinogram_path, heldout=True)
    heldout = {shard: read_sinogram(sinogram_path, views=indices)
               for shard, indices in heldout_shard_views(held_out, n_shards, views).items()}
    noise = read_noise_variance(sinogram_path, settings.loss_weights == "transmission")
    weighted = settings.loss_weights == "transmission"
    stillness, half_turn_stillness = (read_stillness(sinogram_path, noise, weighted)
                                      if settings.tv_time_weight == "auto" else (None, None))  # only auto uses them
    scan_id = sinogram_id(sinogram_path)

    def run(run_settings: TrainSettings, path: Path, is_final: bool) -> TrainingState:
        return loop.train(run_settings, shards, n_shards, noise, path, comm, other_settings,
                          snapshot_dir if is_final else None, snapshot_every, max(peaks), heldout, scan_id,
                          choose_ends=is_final, stillness=stillness,
                          time_profile=time_cells.time_prior_profile(settings, run_settings, stillness,
                                                                    half_turn_stillness))

    rays_per_epoch = epoch_rays(geometry_of(next(iter(shards.values()))), len(train_views))
    epoch_steps = budget(settings, rays_per_epoch, settings.batch_rays * n_shards, len(held_out) > 0).epoch_steps
    from_fbp = starting_point(settings.initial, epoch_steps) == "fbp"  # as set_up resolves it for each run
    state = time_cells.train(settings, checkpoint_path, comm, run, len(held_out) > 0, rays_per_epoch,
                             other_settings, from_fbp)
    if comm.rank == 0:
        state.provenance = provenance("train", dataclasses.asdict(settings), {"sinogram": str(sinogram_path)})
        save_checkpoint(model_path, dataclasses.replace(state, best={}))  # the best field only serves training
    return state


def render(settings: RenderSettings, model_path: Path, sinogram_path: Path, truth_times_path: Path | None,
           out_path: Path, comm: Communicator, chunk_mb: float = DEFAULT_CHUNK_MB) -> None:
    """Sample the trained field on the scan's grid at the frame times (as
    :func:`baseline` chooses them), as :func:`render_grid` does, and refine each frame
    against the views around it where ``render.refine`` says so (:func:`render_refined`)."""
    state = load_checkpoint(model_path)
    seconds, normalised = _frame_times(read_scan_time(sinogram_path), truth_times_path, settings.frames)
    grid = VoxelGrid.full(state.beam_geometry())
    voxel = voxel_size_mm(read_sinogram(sinogram_path, rows=slice(0, 0)))
    attrs = provenance("render", dataclasses.asdict(settings),
                       {"model": str(model_path), "sinogram": str(sinogram_path)})
    if refines(settings, state.beam_geometry(), bool(state.field_spec["time_resolution"])):
        render_refined(state, sinogram_path, seconds, normalised, out_path, attrs, comm, settings, chunk_mb, voxel)
        return
    render_grid(state, grid, seconds, normalised, out_path, attrs, comm, settings.chunk, settings.supersample,
                chunk_mb, voxel)


def refines(settings: RenderSettings, geometry: Geometry, dynamic: bool) -> bool:
    """Whether ``render.refine`` refines the frames (:mod:`dinr.inr.refine`): ``auto``
    on parallel beam, where each slice's rays stay in it, for a ``dynamic`` field (a
    static field already pools every view); never on cone beam."""
    return settings.refine == "auto" and geometry.beam == "parallel" and dynamic


def render_refined(state: TrainingState, sinogram_path: Path, seconds: np.ndarray, normalised: np.ndarray,
                   out_path: Path, attrs: dict[str, object], comm: Communicator, settings: RenderSettings,
                   chunk_mb: float, pixel_mm: float) -> None:
    """The frames at ``normalised`` times, each sampled from the field and refined against
    the views around it (:class:`~dinr.inr.refine.FrameRefiner`), into the volume file
    :func:`render_grid` writes. The slices are cut into bands whose training views take
    at most about ``chunk_mb`` MiB six times over (measured, weights, targets, projections
    at the views' instants and at a frame's), whatever the number of ranks, so the volume
    does not depend on it; the (band, frame) items are dealt to the ranks in rounds, and
    rank 0 writes each round."""
    geometry = state.beam_geometry()
    trained = state.train_settings()
    device = choose_device(trained.device, comm, trained.share_gpus)
    field = state.field().to(device)
    render_slice = SliceRenderer(field, geometry, settings.chunk, settings.supersample, device)
    views = len(training_views(sinogram_path))
    band = max(1, min(geometry.rows, int(chunk_mb * 2**20 // (6 * 4 * views * geometry.cols))))
    items = [(frame, slice(z, min(z + band, geometry.rows))) for z in range(0, geometry.rows, band)
             for frame in range(len(normalised))]
    noise_variance = read_noise_variance(sinogram_path, True)
    refiners: dict[int, FrameRefiner] = {}

    def refine(item: tuple[int, slice]) -> np.ndarray:
        frame, rows = item
        if rows.start not in refiners:  # a rank's items of one band follow each other
            refiners.clear()
            sino = read_sinogram(sinogram_path, rows=rows)
            refiners[rows.start] = FrameRefiner(
                field, lambda t: np.stack([render_slice(t, z) for z in range(rows.start, rows.stop)]), geometry,
                sino, sino.normalised_time(sino.time), rows, noise_variance,
                float(state.field_spec["scale"]), settings.refine_iterations, device)
        return refiners[rows.start](float(normalised[frame]))[1]

    shape = (len(normalised), geometry.rows, geometry.n, geometry.n)
    attrs["dinr_train_settings"] = json.dumps(state.settings, sort_keys=True)
    grid = VoxelGrid.full(geometry)
    writer = volume_writer(out_path, shape, seconds, attrs, voxel_size_mm=voxel_size_zyx(grid, pixel_mm)) \
        if comm.rank == 0 else nullcontext()
    with writer as dset:
        if comm.rank == 0:
            for axis in ("z", "y", "x"):
                dset.file.create_dataset(f"{axis}_mm", data=getattr(grid, axis) * pixel_mm).attrs["units"] = "mm"
        for (frame, rows), slices in tqdm(comm.map_rounds(items, refine), total=len(items), desc="render and refine",
                                          unit="frame band", mininterval=10, disable=comm.rank != 0):
            dset[frame, rows] = slices
    if comm.rank == 0:
        log.info("rendered and refined %d frames of %d x %d x %d voxels", *shape)


def render_request(settings: RenderingSettings, where: str, model_path: Path, sinogram_path: Path, out_path: Path,
                   comm: Communicator, chunk: int = 65536, chunk_mb: float = DEFAULT_CHUNK_MB) -> None:
    """A rendering request (``where``: its config key, for errors): the field sampled at
    the request's instants on its grid (:mod:`dinr.rendering`), as :func:`render_grid`
    does."""
    state = load_checkpoint(model_path)
    header = read_sinogram(sinogram_path, rows=slice(0, 0))
    voxel = voxel_size_mm(header)
    seconds, normalised = request_times(settings, header.scan_time, where)
    grid = request_grid(settings, state.beam_geometry(), voxel, where)
    attrs = provenance("render", {**dataclasses.asdict(settings), "request": where},
                       {"model": str(model_path), "sinogram": str(sinogram_path)})
    render_grid(state, grid, seconds, normalised, out_path, attrs, comm, chunk, settings.supersample, chunk_mb,
                voxel)


def render_grid(state: TrainingState, grid: VoxelGrid, seconds: np.ndarray, normalised: np.ndarray, out_path: Path,
                attrs: dict[str, object], comm: Communicator, chunk: int, supersample: int, chunk_mb: float,
                pixel_mm: float) -> None:
    """Sample the field of ``state`` on ``grid`` at ``normalised`` times (``seconds``
    recorded) into a (t, z, y, x) volume file with its voxel size in mm (the scan's
    voxel being ``pixel_mm``) and the grid's place in the scan (``/z_mm``, ``/y_mm``,
    ``/x_mm``: voxel centres from the axis at mid-height, y and z up). The (frame,
    slice, band of rows) images, each band at most about ``chunk_mb`` MiB, are dealt to the ranks in rounds and rank 0 writes each round into the output
    file, so no rank holds more than a round of bands; progress shows rate and ETA."""
    geometry = state.beam_geometry()
    trained = state.train_settings()
    device = choose_device(trained.device, comm, trained.share_gpus)
    render_slice = SliceRenderer(state.field().to(device), geometry, chunk, supersample, device, grid)
    band = render_slice.band_rows(chunk_mb)
    nz, ny, nx = grid.shape
    shape = (len(normalised), nz, ny, nx)
    items = [(f, z, slice(y, min(y + band, ny))) for f in range(shape[0]) for z in range(nz)
             for y in range(0, ny, band)]
    attrs["dinr_train_settings"] = json.dumps(state.settings, sort_keys=True)
    voxel_size = voxel_size_zyx(grid, pixel_mm)
    writer = volume_writer(out_path, shape, seconds, attrs, voxel_size_mm=voxel_size, chunk_rows=band) \
        if comm.rank == 0 else nullcontext()
    with writer as dset:
        if comm.rank == 0:
            for axis in ("z", "y", "x"):
                dset.file.create_dataset(f"{axis}_mm", data=getattr(grid, axis) * pixel_mm).attrs["units"] = "mm"
        images = comm.map_rounds(items, lambda item: render_slice(float(normalised[item[0]]), item[1], item[2]))
        for (frame, z, rows), image in tqdm(images, total=len(items), desc="render", unit="band", mininterval=10,
                                            disable=comm.rank != 0):
            dset[frame, z, rows] = image
    if comm.rank == 0:
        log.info("rendered %d frames of %d x %d x %d voxels", *shape)


def evaluate(dataset: str, sinogram_path: Path, truth_path: Path | None, recons: dict[str, Path],
             model_path: Path, benchmarks: dict[str, Path], baselines: BaselineSettings, out_json: Path,
             out_table: Path, chunk_mb: float = DEFAULT_CHUNK_MB) -> dict[str, object]:
    """Metrics of every method: against the truth when there is one, else held-out
    residuals, with a scan of the rotation centre by held-out residual of static FBP
    (``baselines`` gives its filter and backend); and, either way, each method's
    no-reference noise and blur figures (:mod:`dinr.evaluate.quality`); and each stage's
    wall seconds from its benchmark, the training's at least the seconds the model
    records over every attempt (:func:`dinr.io.benchmarks.with_seconds_trained`). Volumes and
    views are read in pieces of about ``chunk_mb`` MiB (frame tiles for the metrics,
    blocks of detector rows for the residuals)."""
    center: dict[str, object] = {}
    state = load_checkpoint(model_path)
    geometry = state.beam_geometry()
    with ExitStack() as opened:
        volumes = {name: opened.enter_context(open_volume(path)) for name, path in recons.items()}
        if truth_path:
            truth, _ = opened.enter_context(open_volume(truth_path, name="truth"))
            methods = {name: volume_metrics(truth, volume, geometry.region_mask(), chunk_mb)
                       for name, (volume, _) in volumes.items()}
        else:
            heldout = has_heldout_views(sinogram_path)
            split = "heldout" if heldout else "all"
            key = "heldout_rel_residual" if heldout else "train_rel_residual"
            methods = {name: {key: value} for name, value in
                       residual_metrics(volumes, sinogram_path, split, state, chunk_mb).items()}
            if heldout and geometry.beam == "parallel":  # the centre scan reconstructs by parallel-beam FBP
                rows = _center_scan_rows(geometry.rows)
                center = center_report(read_sinogram(sinogram_path, split="train", rows=rows),
                                       read_sinogram(sinogram_path, split="heldout", rows=rows), baselines.filter,
                                       available_backend(baselines.backend))
        for name, (volume, _) in volumes.items():
            methods[name].update(image_quality(volume))
    margin = margins(methods)
    report = {
        "dataset": dataset,
        **({"center": center} if center else {}),
        "methods": methods,
        **({"dinr_margin": margin} if margin else {}),
        "wall_s": with_seconds_trained(read_wall_seconds(benchmarks), state.seconds_trained()),
        "backend": {name: volume_attribute(path, "backend", "torch") for name, path in recons.items()},
        "provenance": provenance("evaluate", None, {k: str(v) for k, v in recons.items()}),
    }
    write_json(out_json, report)
    write_text(out_table, metrics_table(report))
    return report


#: Detector rows (the middle ones) the centre scan reconstructs: the axis is one line for
#: every row, and a few rows tell it as well as thousands.
CENTER_SCAN_ROWS = 8


def _center_scan_rows(rows: int) -> slice:
    first = max(0, (rows - CENTER_SCAN_ROWS) // 2)
    return slice(first, min(rows, first + CENTER_SCAN_ROWS))


#: The most views and (parallel beam) detector rows the residuals without truth are
#: taken on: evenly spread over the split's views and the detector's rows, so that
#: scoring a 2048-column scan costs minutes, not hours (every view and row of smaller scans).
RESIDUAL_VIEWS, RESIDUAL_ROWS = 32, 8


def _spread(count: int, most: int) -> np.ndarray:
    """At most ``most`` indices of ``range(count)``, evenly spread (all of them when they fit)."""
    return np.unique(np.linspace(0, count - 1, min(count, most)).round().astype(np.int64))


def residual_metrics(volumes: dict[str, tuple[Any, np.ndarray]], sinogram_path: Path, split: str,
                     state: TrainingState, chunk_mb: float = DEFAULT_CHUNK_MB) -> dict[str, float]:
    """``{method: relative residual}`` on the ``split`` views of the scan (at most
    :data:`RESIDUAL_VIEWS` of them and, in parallel beam, :data:`RESIDUAL_ROWS` detector
    rows, evenly spread): DINR's field at each view's own time (midpoint quadrature at
    twice its training samples), the other methods' (t, z, y, x) volumes by the frame
    nearest in time. In parallel beam the views are read and predicted a block of detector
    rows at a time (at most about ``chunk_mb`` MiB of views, predictions and slices); cone
    beam takes them whole."""
    geometry = state.beam_geometry()
    trained = state.train_settings()
    samples = 2 * samples_per_ray(trained.samples_per_ray, geometry.n)
    device = choose_device(trained.device, Communicator(use_mpi=False), trained.share_gpus)
    field = state.field().to(device)
    if split == "all":
        every = np.arange(len(read_sinogram(sinogram_path, split="all", rows=slice(0, 0)).theta))
    else:
        every = training_views(sinogram_path, heldout=split == "heldout")
    views = every[_spread(len(every), RESIDUAL_VIEWS)]
    frames = max(len(seconds) for _, seconds in volumes.values())
    row_bytes = 4 * (2 * len(views) * geometry.cols + frames * geometry.n * geometry.n)
    if geometry.beam != "parallel":
        row_blocks = [slice(None)]
    elif geometry.rows > RESIDUAL_ROWS:
        row_blocks = [slice(int(r), int(r) + 1) for r in _spread(geometry.rows, RESIDUAL_ROWS)]
    else:
        row_blocks = blocks(geometry.rows, row_bytes, chunk_mb)
    columns = geometry.column_mask()
    sums = {name: ResidualSum() for name in volumes}
    for block in _progress(row_blocks, "residuals"):
        sino = read_sinogram(sinogram_path, views=views, rows=block)
        for name, (volume, seconds) in volumes.items():
            if name == "dinr":
                predicted = field_prediction(field, sino, geometry, samples, block)
            else:
                predicted = volume_prediction(finite_block(volume, (slice(None), block)),
                                              sino.normalised_time(seconds), sino, geometry)
            sums[name].add(predicted[..., columns], sino.projections[..., columns])
    return {name: total.relative for name, total in sums.items()}


def figures(metrics_path: Path, recons: dict[str, Path], truth_path: Path | None, model_path: Path,
            outdir: Path) -> None:
    """Write ``slices.png``, ``movie.gif``, ``metrics.png`` and ``training.png`` into
    ``outdir``. The volumes stay on disk: the figures read their middle slice alone."""
    report = json.loads(Path(metrics_path).read_text())
    with ExitStack() as opened:
        volumes = {name: opened.enter_context(open_volume(path))[0] for name, path in recons.items()}
        times = read_times(next(iter(recons.values())))
        truth = opened.enter_context(open_volume(truth_path, name="truth"))[0] if truth_path else None
        slices_over_time(volumes, times, outdir / "slices.png", truth)
        slice_movie(volumes, times, outdir / "movie.gif", truth)
    metrics_over_time(report["methods"], times, outdir / "metrics.png")
    trained = load_checkpoint(model_path)
    training_curve(trained.history, outdir / "training.png", trained.validation, trained.stop_reason)


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


def paper(metrics_paths: list[Path], distributed_path: Path, memory_path: Path, size_path: Path, out_md: Path,
          out_tex: Path, out_scaling: Path, out_memory: Path, out_size: Path) -> None:
    """The paper's comparison table (Markdown and LaTeX) from every scan's metrics, and
    its scaling, memory and scan-size figures from the benchmarks' JSON."""
    reports = [json.loads(Path(path).read_text()) for path in metrics_paths]
    write_text(out_md, markdown_table(reports) + "\n" + frames_table(reports))
    write_text(out_tex, latex_table(reports))
    plot_scaling(json.loads(Path(distributed_path).read_text()), out_scaling)
    plot_memory(json.loads(Path(memory_path).read_text()), out_memory)
    plot_scan_size(json.loads(Path(size_path).read_text()), out_size)
