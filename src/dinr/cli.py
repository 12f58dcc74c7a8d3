"""``dinr``: one subcommand per pipeline stage.

Each subcommand parses its arguments, loads its settings section (a JSON file written
by the workflow) and calls one function of :mod:`dinr.stages`. Bad input ends with a
one-line ``dinr <stage>: error: ...`` on stderr and exit code 2, a failed training run
(non-finite values it cannot step past, ranks that drifted apart) with exit code 1; in
an MPI job the failing rank aborts all ranks, so none is left waiting. Training stopped
by SIGTERM, SIGUSR1 or SIGINT writes its checkpoint and exits with code 75 on every
rank; rerunning resumes it.
"""

from __future__ import annotations

import argparse
import logging
import resource
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from dinr import __version__
from dinr.baselines import METHODS as BASELINE_METHODS
from dinr.errors import InputError, TrainingError
from dinr.io.blocks import DEFAULT_CHUNK_MB
from dinr.settings import (
    BaselineSettings,
    ConvertSettings,
    GeometrySettings,
    PrepareSettings,
    RenderingSettings,
    RenderSettings,
    SimulateSettings,
    TrainSettings,
    load_section,
    load_section_and_records,
    section_defaults,
)
from dinr.train.signals import Interrupted

FRAME_TIMES_HELP = "a volume file (e.g. the ground truth) whose /time gives the frame times"
EXIT_INPUT = 2
#: Training stopped by a signal after writing its checkpoint (BSD's EX_TEMPFAIL: try again).
EXIT_INTERRUPTED = 75


def _key_value_paths(items: Sequence[str], option: str) -> dict[str, Path]:
    pairs: dict[str, Path] = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not name or not value:
            raise InputError(f"{option} {item!r}: expected NAME=PATH")
        pairs[name] = Path(value)
    return pairs


def _simulate(args: argparse.Namespace) -> None:
    from dinr import stages

    from dinr.sim.version import VERSION_KEY, simulator_version

    settings, recorded = load_section_and_records(SimulateSettings, args.settings, (VERSION_KEY,))
    written_for = recorded.get(VERSION_KEY, simulator_version())
    if written_for != simulator_version():
        raise InputError(f"{args.settings}: {VERSION_KEY} {written_for} was written for other simulator code than "
                         f"this dinr's ({simulator_version()}, {Path(stages.__file__).parent / 'sim'}): the rule "
                         "runs another installation of dinr than the workflow's; reinstall it (pip install -e .)")
    stages.simulate(settings, _geometry_settings(args.geometry), args.raw, args.truth)


def _convert(args: argparse.Namespace) -> None:
    from dinr import stages

    stages.convert(load_section(ConvertSettings, args.settings), args.raw, args.out, args.chunk_mb)


def _geometry_settings(path: Path | None) -> GeometrySettings:
    """The ``geometry`` section from ``--geometry``, or its defaults (parallel beam)."""
    return load_section(GeometrySettings, path) if path is not None else GeometrySettings(**section_defaults("geometry"))


def _prepare(args: argparse.Namespace) -> None:
    from dinr import stages

    stages.prepare(load_section(PrepareSettings, args.settings), _geometry_settings(args.geometry), args.raw, args.out,
                   args.chunk_mb)


def _train(args: argparse.Namespace) -> None:
    from dinr import stages
    from dinr.train.allocator import keep_freed_memory
    from dinr.train.comm import Communicator

    settings = load_section(TrainSettings, args.settings)
    keep_freed_memory()  # a step's freed blocks serve the next step (dinr.train.allocator)
    if args.snapshots is not None and args.snapshot_every < 1:
        raise InputError(f"--snapshot-every must be at least 1 with --snapshots (got {args.snapshot_every})")
    other_settings = "reuse" if args.reuse_checkpoint else "restart" if args.restart_on_other_settings else "refuse"
    stages.train(settings, args.sinogram, args.checkpoint, args.model, Communicator(), other_settings,
                 args.snapshots, args.snapshot_every)


def _render(args: argparse.Namespace) -> None:
    from dinr import stages
    from dinr.train.comm import Communicator

    settings = load_section(RenderSettings, args.settings)
    stages.render(settings, args.model, args.sinogram, args.frame_times, args.out, Communicator(), args.chunk_mb)


def _render_request(args: argparse.Namespace) -> None:
    from dinr import stages
    from dinr.train.comm import Communicator

    settings = load_section(RenderingSettings, args.settings)
    stages.render_request(settings, f"renderings.{args.name}", args.model, args.sinogram, args.out, Communicator(),
                          args.chunk, args.chunk_mb)


def _export(args: argparse.Namespace) -> None:
    from dinr.io.export import export_imagej_tiff, export_ome_zarr

    if args.zarr is None and args.tiff is None:
        raise InputError("dinr export: give --zarr, --tiff or both")
    for out in (args.zarr, args.tiff):
        if out is not None:
            out.parent.mkdir(parents=True, exist_ok=True)
    if args.zarr is not None:
        export_ome_zarr(args.volume, args.zarr, workers=args.threads)
    if args.tiff is not None:
        export_imagej_tiff(args.volume, args.tiff)


def _movie(args: argparse.Namespace) -> None:
    from dinr.evaluate.figures import plane_movie

    plane_movie(args.volume, args.out, args.title, args.seconds_per_frame)


def _baseline(args: argparse.Namespace) -> None:
    from dinr import stages

    settings = load_section(BaselineSettings, args.settings)
    stages.baseline(settings, args.method, args.sinogram, args.frame_times, args.frames, args.out, args.chunk_mb,
                    args.threads)


def _evaluate(args: argparse.Namespace) -> None:
    from dinr import stages

    stages.evaluate(
        args.dataset, args.sinogram, args.truth, _key_value_paths(args.recon, "--recon"), args.model,
        {path.stem: path for path in args.benchmark}, load_section(BaselineSettings, args.baselines),
        args.out, args.table, args.chunk_mb,
    )


def _figures(args: argparse.Namespace) -> None:
    from dinr import stages

    stages.figures(args.metrics, _key_value_paths(args.recon, "--recon"), args.truth, args.model, args.outdir)


def _time_to_quality(args: argparse.Namespace) -> None:
    from dinr import stages

    stages.time_to_quality(load_section(RenderSettings, args.settings), args.model, args.snapshots, args.sinogram,
                           args.truth, args.metrics, args.out, args.figure)


def _paper(args: argparse.Namespace) -> None:
    from dinr import stages

    stages.paper(args.metrics, args.distributed, args.memory, args.size, args.table, args.latex, args.scaling,
                 args.memory_figure, args.size_figure)


def _chunk_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--chunk-mb", type=_positive_float, default=DEFAULT_CHUNK_MB,
                        help="MiB of data the stage reads and holds at once (config: resources.chunk_mb)")


def _positive_float(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be positive (got {text})")
    return value


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1 (got {text})")
    return value


StageAdder = Callable[[str, Callable[[argparse.Namespace], None], str], argparse.ArgumentParser]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="dinr", description="DINR: 4D X-ray tomography by distributed implicit neural representations.")
    parser.add_argument("--version", action="version", version=f"dinr {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="stage", required=True, metavar="STAGE")

    def stage(name: str, func: Callable[[argparse.Namespace], None], text: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=text, description=text)
        p.set_defaults(func=func)
        return p

    _add_pipeline_stages(stage)
    _add_paper_stages(stage)
    return parser


def _add_pipeline_stages(stage: StageAdder) -> None:
    """The subcommands of the pipeline's stages, raw scan to figures."""
    p = stage("simulate", _simulate, "Scan a built-in deforming phantom: raw Data Exchange file + ground truth.")
    p.add_argument("--settings", type=Path, required=True, help="JSON of the 'simulate' config section")
    p.add_argument("--geometry", type=Path, help="JSON of the 'geometry' config section (default: parallel beam)")
    p.add_argument("--raw", type=Path, required=True, help="output raw scan (Data Exchange HDF5)")
    p.add_argument("--truth", type=Path, required=True, help="output ground truth (HDF5 /truth, /time)")

    p = stage("convert", _convert, "A raw scan (Data Exchange HDF5 or TIFF folder) into canonical Data Exchange.")
    p.add_argument("--settings", type=Path, required=True, help="JSON of the 'convert' config section")
    p.add_argument("--raw", type=Path, required=True, help="input: Data Exchange HDF5 file or TIFF-stack folder")
    p.add_argument("--out", type=Path, required=True, help="output canonical raw scan (Data Exchange HDF5)")
    _chunk_option(p)

    p = stage("prepare", _prepare, "Flat/dark correction, artefact removal, -log and centre: the sinogram file.")
    p.add_argument("--settings", type=Path, required=True, help="JSON of the 'prepare' config section")
    p.add_argument("--geometry", type=Path, help="JSON of the 'geometry' config section (default: parallel beam)")
    p.add_argument("--raw", type=Path, required=True, help="input raw scan (canonical Data Exchange HDF5)")
    p.add_argument("--out", type=Path, required=True, help="output canonical sinogram (HDF5)")
    _chunk_option(p)

    p = stage("train", _train, "Train the DINR field; run under mpiexec/srun for several ranks.")
    p.add_argument("--settings", type=Path, required=True, help="JSON of the 'train' config section")
    p.add_argument("--sinogram", type=Path, required=True, help="prepared scan (HDF5)")
    p.add_argument("--checkpoint", type=Path, required=True, help="checkpoint to resume from and update")
    p.add_argument("--model", type=Path, required=True, help="output: the final trained model")
    resume_policy = p.add_mutually_exclusive_group()
    resume_policy.add_argument("--reuse-checkpoint", action="store_true",
                               help="resume from a checkpoint made with other settings")
    resume_policy.add_argument("--restart-on-other-settings", action="store_true",
                               help="a checkpoint made with other settings is renamed to CHECKPOINT_STEM.<settings "
                                    "hash>.pt and training starts afresh (default: refuse it)")
    p.add_argument("--snapshots", type=Path, help="folder for snapshots of the field during training")
    p.add_argument("--snapshot-every", type=int, default=250, help="steps between snapshots (with --snapshots)")

    p = stage("render", _render, "Sample the trained field at the frame times into a 4D volume.")
    p.add_argument("--settings", type=Path, required=True, help="JSON of the 'render' config section")
    p.add_argument("--model", type=Path, required=True, help="trained model (from 'dinr train')")
    p.add_argument("--sinogram", type=Path, required=True, help="prepared scan (for its time axis)")
    p.add_argument("--frame-times", type=Path, help=FRAME_TIMES_HELP)
    p.add_argument("--out", type=Path, required=True, help="output 4D volume (HDF5 /recon, /time)")
    _chunk_option(p)

    p = stage("render-request", _render_request,
              "Sample the trained field at a rendering request's instants, region, voxel size or plane.")
    p.add_argument("--settings", type=Path, required=True, help="JSON of one 'renderings.<name>' entry")
    p.add_argument("--name", required=True, help="the rendering's name (for messages)")
    p.add_argument("--model", type=Path, required=True, help="trained model (from 'dinr train')")
    p.add_argument("--sinogram", type=Path, required=True, help="prepared scan (its clock and pixel size)")
    p.add_argument("--chunk", type=_positive_int, default=65536, help="points evaluated at once (render.chunk)")
    p.add_argument("--out", type=Path, required=True, help="output 4D volume (HDF5 /recon, /time)")
    _chunk_option(p)

    p = stage("export", _export, "A 4D volume file as OME-Zarr (NGFF) and/or an ImageJ hyperstack TIFF.")
    p.add_argument("--volume", type=Path, required=True, help="volume file (HDF5 /recon (t, z, y, x), /time)")
    p.add_argument("--zarr", type=Path, help="output OME-Zarr folder (.ome.zarr)")
    p.add_argument("--tiff", type=Path, help="output ImageJ TIFF (.tif)")
    p.add_argument("--threads", type=_positive_int, default=1, help="threads computing the OME-Zarr pyramid")

    p = stage("movie", _movie, "An animated GIF of a rendered plane (axial slice or vertical cut) over time.")
    p.add_argument("--volume", type=Path, required=True, help="rendering of one plane (HDF5 /recon, /time)")
    p.add_argument("--title", default="", help="title before the time of each frame")
    p.add_argument("--seconds-per-frame", type=_positive_float, default=0.1, help="display time of a frame")
    p.add_argument("--out", type=Path, required=True, help="output GIF")

    p = stage("baseline", _baseline, "A baseline reconstruction (FBP, MBIR or MACE4D) at the frame times.")
    p.add_argument("--settings", type=Path, required=True, help="JSON of the 'baselines' config section")
    p.add_argument("--method", choices=BASELINE_METHODS, required=True, help="the baseline method")
    p.add_argument("--sinogram", type=Path, required=True, help="prepared scan (HDF5)")
    p.add_argument("--frame-times", type=Path, help=FRAME_TIMES_HELP)
    p.add_argument("--frames", type=int, default=16, help="number of frames without --frame-times")
    p.add_argument("--out", type=Path, required=True, help="output 4D volume (HDF5 /recon, /time)")
    p.add_argument("--threads", type=_positive_int, default=1,
                   help="slices FBP reconstructs at once (config: resources.baseline_threads)")
    _chunk_option(p)

    p = stage("evaluate", _evaluate, "Metrics of every method (truth or held-out residuals) as JSON + table.")
    p.add_argument("--dataset", required=True, help="dataset name recorded in the report")
    p.add_argument("--sinogram", type=Path, required=True, help="prepared scan (HDF5)")
    p.add_argument("--truth", type=Path, help="ground truth (HDF5 /truth, /time)")
    p.add_argument("--model", type=Path, required=True, help="trained model")
    p.add_argument("--recon", nargs="+", default=[], metavar="NAME=PATH", help="reconstructions by method")
    p.add_argument("--baselines", type=Path, required=True,
                   help="JSON of the 'baselines' config section (FBP of the centre scan)")
    p.add_argument("--benchmark", nargs="*", default=[], type=Path, metavar="TSV",
                   help="Snakemake benchmark files, named <stage>.tsv")
    p.add_argument("--out", type=Path, required=True, help="output metrics.json")
    p.add_argument("--table", type=Path, required=True, help="output markdown table")
    _chunk_option(p)

    p = stage("figures", _figures,
              "Slices over time, metrics over time, the training curve (PNG) and a movie of one slice (GIF).")
    p.add_argument("--metrics", type=Path, required=True, help="metrics.json from 'dinr evaluate'")
    p.add_argument("--recon", nargs="+", default=[], metavar="NAME=PATH", help="reconstructions by method")
    p.add_argument("--truth", type=Path, help="ground truth (HDF5 /truth, /time)")
    p.add_argument("--model", type=Path, required=True, help="trained model (for the training curve)")
    p.add_argument("--outdir", type=Path, required=True, help="folder for the figures")


def _add_paper_stages(stage: StageAdder) -> None:
    """The subcommands of the paper's figures and tables."""
    p = stage("time-to-quality", _time_to_quality,
              "DINR's PSNR against training wall time from snapshots, beside each baseline's (JSON + PNG).")
    p.add_argument("--settings", type=Path, required=True, help="JSON of the 'render' config section")
    p.add_argument("--model", type=Path, required=True, help="final model of the run the snapshots come from")
    p.add_argument("--snapshots", type=Path, required=True, help="folder of snapshots ('dinr train --snapshots')")
    p.add_argument("--sinogram", type=Path, required=True, help="prepared scan (for its time axis)")
    p.add_argument("--truth", type=Path, required=True, help="ground truth (HDF5 /truth, /time)")
    p.add_argument("--metrics", type=Path, required=True, help="the dataset's metrics.json (the baselines' points)")
    p.add_argument("--out", type=Path, required=True, help="output JSON")
    p.add_argument("--figure", type=Path, required=True, help="output figure (PNG)")

    p = stage("paper", _paper, "The paper's table (Markdown, LaTeX) and its scaling, memory and scan-size figures.")
    p.add_argument("--metrics", nargs="+", type=Path, required=True, help="metrics.json of every scan")
    p.add_argument("--distributed", type=Path, required=True, help="bench/results/distributed.json")
    p.add_argument("--memory", type=Path, required=True, help="bench/results/memory.json")
    p.add_argument("--size", type=Path, required=True, help="bench/results/size.json")
    p.add_argument("--table", type=Path, required=True, help="output Markdown table")
    p.add_argument("--latex", type=Path, required=True, help="output LaTeX table")
    p.add_argument("--scaling", type=Path, required=True, help="output scaling figure (PNG)")
    p.add_argument("--memory-figure", type=Path, required=True, help="output memory figure (PNG)")
    p.add_argument("--size-figure", type=Path, required=True, help="output scan-size figure (PNG)")


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr,
    )
    try:
        args.func(args)
    except (InputError, FileNotFoundError) as exc:
        print(f"dinr {args.stage}: error: {exc}", file=sys.stderr, flush=True)
        _abort_other_ranks(EXIT_INPUT)
        return EXIT_INPUT
    except Interrupted as exc:  # raised on every rank at the same step: no abort needed
        print(f"dinr {args.stage}: {exc}", file=sys.stderr, flush=True)
        return EXIT_INTERRUPTED
    except TrainingError as exc:
        print(f"dinr {args.stage}: error: {exc}", file=sys.stderr, flush=True)
        _abort_other_ranks(1)
        return 1
    except BaseException:
        _abort_other_ranks(1)
        raise
    _log_peak_memory(args.stage)
    return 0


def _log_peak_memory(stage: str) -> None:
    """One line with the process's peak resident memory (per rank in an MPI job), which
    is what a cluster job's memory request must cover (``bench/large_scan.py`` reads it)."""
    mpi = sys.modules.get("mpi4py.MPI")
    rank = mpi.COMM_WORLD.Get_rank() if mpi is not None and mpi.Is_initialized() else 0
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB
    logging.getLogger("dinr.cli").info("%s: peak resident memory %.0f MiB (rank %d)", stage, peak_mib, rank)


def _abort_other_ranks(code: int) -> None:
    """In an MPI job of several ranks, end them all: the others would wait forever."""
    mpi = sys.modules.get("mpi4py.MPI")
    if mpi is not None and mpi.Is_initialized() and not mpi.Is_finalized() and mpi.COMM_WORLD.Get_size() > 1:
        mpi.COMM_WORLD.Abort(code)


if __name__ == "__main__":
    sys.exit(main())
