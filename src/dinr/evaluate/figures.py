"""Paper-ready figures: slices over time, a movie of one slice, metrics over time, the
training curve, quality against wall time."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402

from dinr.errors import InputError  # noqa: E402
from dinr.io.atomic import atomic_path  # noqa: E402
from dinr.io.volume import finite_block, open_volume  # noqa: E402

LABELS = {"truth": "truth", "fbp_static": "static FBP", "fbp_sliding": "sliding FBP", "dinr": "DINR",
          "mbir_sliding": "sliding MBIR", "mace4d": "MACE4D"}


def _save(fig: plt.Figure, path: Path) -> None:
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format=path.suffix.lstrip("."), dpi=150, bbox_inches="tight")
    plt.close(fig)


def _middle_slice_panels(volumes: dict[str, np.ndarray], truth: np.ndarray | None
                         ) -> tuple[dict[str, np.ndarray], int, float, float]:
    """The volumes to show (truth first, when given), their middle slice index z, and
    the shared grey scale (0.5 and 99.5 percentiles of the truth's, else the first
    volume's, middle slice over all frames)."""
    panels = ({"truth": truth} if truth is not None else {}) | volumes
    reference = next(iter(panels.values()))
    z = reference.shape[1] // 2
    vmin, vmax = np.percentile(reference[:, z], [0.5, 99.5])
    return panels, z, float(vmin), float(vmax)


def slices_over_time(volumes: dict[str, np.ndarray], times_s: np.ndarray, path: Path,
                     truth: np.ndarray | None = None, columns: int = 4) -> None:
    """One row per method (and truth, and |DINR - truth|), one column per chosen frame,
    showing the middle slice (z) of (t, z, y, x) volumes on a shared grey scale."""
    frames = np.unique(np.linspace(0, len(times_s) - 1, columns).round().astype(int))
    rows, z, vmin, vmax = _middle_slice_panels(volumes, truth)
    show_error = truth is not None and "dinr" in volumes
    n_rows = len(rows) + int(show_error)
    fig, axes = plt.subplots(n_rows, len(frames), figsize=(2.2 * len(frames), 2.2 * n_rows), squeeze=False)
    for i, (name, volume) in enumerate(rows.items()):
        for j, f in enumerate(frames):
            axes[i, j].imshow(volume[f, z], cmap="gray", vmin=vmin, vmax=vmax)
    if show_error:
        for j, f in enumerate(frames):
            error = np.abs(np.asarray(volumes["dinr"][f, z]) - np.asarray(truth[f, z]))  # type: ignore[index]
            axes[-1, j].imshow(error, cmap="magma", vmin=0, vmax=0.5 * (vmax - vmin))
    names = [LABELS.get(n, n) for n in rows] + (["|DINR - truth|"] if show_error else [])
    for i, name in enumerate(names):
        axes[i, 0].set_ylabel(name)
    for j, f in enumerate(frames):
        axes[0, j].set_title(f"t = {times_s[f]:.3g} s")
    for ax in axes.ravel():
        ax.set_xticks([])
        ax.set_yticks([])
    _save(fig, path)


def slice_movie(volumes: dict[str, np.ndarray], times_s: np.ndarray, path: Path,
                truth: np.ndarray | None = None, seconds_per_frame: float = 0.25) -> None:
    """An animated GIF of the middle slice (z) of (t, z, y, x) volumes over time: one
    panel per method (truth first, when given) on a shared grey scale, the frame's time
    (s) in the title, looping."""
    panels, z, vmin, vmax = _middle_slice_panels(volumes, truth)
    fig, axes = plt.subplots(1, len(panels), figsize=(2.4 * len(panels), 2.7), squeeze=False)
    images = []
    for ax, (name, volume) in zip(axes[0], panels.items()):
        images.append(ax.imshow(volume[0, z], cmap="gray", vmin=vmin, vmax=vmax))
        ax.set_xlabel(LABELS.get(name, name))
        ax.set_xticks([])
        ax.set_yticks([])
    frames = []
    for f in range(len(times_s)):
        for image, volume in zip(images, panels.values()):
            image.set_data(volume[f, z])
        fig.suptitle(f"slice z = {z}, t = {times_s[f]:.3g} s")
        fig.canvas.draw()
        frames.append(Image.fromarray(np.asarray(fig.canvas.buffer_rgba())).convert("P", palette=Image.ADAPTIVE))
    plt.close(fig)
    with atomic_path(path) as tmp:
        frames[0].save(tmp, format="GIF", save_all=True, append_images=frames[1:],
                       duration=int(1000 * seconds_per_frame), loop=0)


def plane_movie(volume_path: Path, path: Path, title: str, seconds_per_frame: float = 0.1, width_in: float = 4.0) -> None:
    """An animated GIF of a rendering of one plane ((t, z, y, x) with z or y of length
    one: an axial slice or a vertical cut) over time, drawn to its voxels' aspect with
    its extent in µm or mm, on the grey scale of its 0.5 and 99.5 percentiles, the
    time (s) in the title; read a frame at a time, looping."""
    with open_volume(volume_path) as (volume, times):
        if 1 not in volume.shape[1:3]:
            raise InputError(f"{volume_path}: /recon {volume.shape} is not one plane (z or y of length 1)")
        axis = 1 if volume.shape[1] == 1 else 2
        unit, factor = ("µm", 1000.0) if float(np.min(volume.attrs["voxel_size_mm"])) < 0.1 else ("mm", 1.0)
        dz, dy, dx = np.asarray(volume.attrs["voxel_size_mm"], dtype=float) * factor
        sample = np.stack([finite_block(volume, (t,)).squeeze(axis - 1) for t in
                           np.unique(np.linspace(0, len(times) - 1, 8).round().astype(int))])
        vmin, vmax = (float(v) for v in np.percentile(sample, [0.5, 99.5]))
        first = sample[0]
        height = first.shape[0] * (dy if axis == 1 else dz)
        extent = (0.0, first.shape[1] * dx, 0.0, height)
        aspect_height = width_in * first.shape[0] * (dy if axis == 1 else dz) / (first.shape[1] * dx)
        fig, ax = plt.subplots(figsize=(width_in, max(1.2, aspect_height) + 0.6))
        image = ax.imshow(first, cmap="gray", vmin=vmin, vmax=vmax, extent=extent)
        ax.set_xlabel(f"x ({unit})")
        ax.set_ylabel(f"y ({unit})" if axis == 1 else f"z ({unit})")
        frames = []
        for t in range(len(times)):
            image.set_data(finite_block(volume, (t,)).squeeze(axis - 1))
            ax.set_title(f"{title}, t = {times[t]:.3f} s", fontsize=9)
            fig.canvas.draw()
            frames.append(Image.fromarray(np.asarray(fig.canvas.buffer_rgba())).convert("P", palette=Image.ADAPTIVE))
    plt.close(fig)
    with atomic_path(path) as tmp:
        frames[0].save(tmp, format="GIF", save_all=True, append_images=frames[1:],
                       duration=int(1000 * seconds_per_frame), loop=0)


def metrics_over_time(metrics: dict[str, dict[str, object]], times_s: np.ndarray, path: Path) -> None:
    """PSNR and SSIM per frame for each method, or a bar chart of projection residuals
    when the metrics have no per-frame values (no ground truth)."""
    if all("per_frame" in m for m in metrics.values()):
        fig, axes = plt.subplots(1, 2, figsize=(9, 3.2))
        for name, m in metrics.items():
            per_frame = m["per_frame"]  # type: ignore[index]
            for ax, key in zip(axes, ("psnr", "ssim")):
                ax.plot(times_s, [p[key] for p in per_frame], marker="o", ms=3, label=LABELS.get(name, name))
        axes[0].set_ylabel("PSNR (dB)")
        axes[1].set_ylabel("SSIM")
        for ax in axes:
            ax.set_xlabel("time (s)")
            ax.grid(alpha=0.3)
        axes[0].legend()
    else:
        fig, ax = plt.subplots(figsize=(4.5, 3.2))
        names = list(metrics)
        key = next(iter(metrics[names[0]]))
        ax.bar([LABELS.get(n, n) for n in names], [float(metrics[n][key]) for n in names])  # type: ignore[arg-type]
        ax.set_ylabel(key.replace("_", " "))
    _save(fig, path)


def training_curve(history: list[list[float]], path: Path, validation: list[list[float]] | None = None,
                   stop_reason: str = "") -> None:
    """Loss (log scale) and rays/s against the step, from a checkpoint's history; with
    ``validation`` rows (step, held-out relative residual, learning rate), a second panel
    of the held-out residual and the learning rate, titled with why training stopped."""
    steps, loss, rate = (np.asarray(c) for c in zip(*history)) if history else (np.zeros(0),) * 3
    panels = 2 if validation else 1
    fig, axes = plt.subplots(panels, 1, figsize=(5, 3.2 * panels), sharex=True, squeeze=False)
    ax = axes[0, 0]
    ax.semilogy(steps, loss, color="C0")
    ax.set_ylabel("loss (mean squared error)", color="C0")
    twin = ax.twinx()
    twin.plot(steps, rate, color="C1", alpha=0.6)
    twin.set_ylabel("rays / s (all ranks)", color="C1")
    ax.grid(alpha=0.3)
    if validation:
        at, residual, lr = (np.asarray(c) for c in zip(*validation))
        ax = axes[1, 0]
        ax.semilogy(at, residual, color="C2", marker="o", ms=2)
        ax.set_ylabel("held-out relative residual", color="C2")
        twin = ax.twinx()
        twin.semilogy(at, lr, color="C3", alpha=0.6, drawstyle="steps-post")
        twin.set_ylabel("learning rate", color="C3")
        ax.grid(alpha=0.3)
    axes[-1, 0].set_xlabel("step")
    if stop_reason:
        fig.suptitle(f"stopped: {stop_reason.split(':')[0]}", fontsize=9)
    _save(fig, path)


def time_to_quality(curve: list[dict[str, float]], peers: dict[str, dict[str, float]], path: Path) -> None:
    """DINR's mean PSNR against training wall time (one point per snapshot) and each
    peer's (wall time, PSNR) as a marker with a dashed level line."""
    fig, ax = plt.subplots(figsize=(5.5, 3.5))
    ax.plot([p["elapsed_s"] for p in curve], [p["psnr"] for p in curve], marker="o", ms=3, color="C0", label="DINR")
    for k, (name, peer) in enumerate(peers.items(), start=1):
        ax.axhline(peer["psnr"], color=f"C{k}", ls="--", lw=0.8)
        ax.plot([peer["wall_s"]], [peer["psnr"]], marker="s", color=f"C{k}", ls="none", label=LABELS.get(name, name))
    ax.set_xlabel("wall time (s)")
    ax.set_ylabel("mean PSNR (dB)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    _save(fig, path)


def scaling(distributed: dict[str, object], path: Path) -> None:
    """Throughput (samples/s) and step time against ranks, our MPI allreduce against
    torch DDP, from ``bench/distributed.py``'s JSON (its ``runs``: mode, ranks, threads,
    step_s, samples_per_s)."""
    runs = [r for r in distributed["runs"] if r["threads"] == 1]  # type: ignore[index, union-attr]
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.2), layout="constrained")
    for k, mode in enumerate(sorted({r["mode"] for r in runs})):
        chosen = sorted((r for r in runs if r["mode"] == mode), key=lambda r: r["ranks"])
        label = "MPI allreduce (ours)" if mode == "mpi" else f"torch {mode.upper()}"
        for ax, key in zip(axes, ("samples_per_s", "step_s")):
            ax.plot([r["ranks"] for r in chosen], [r[key] for r in chosen], marker="o", color=f"C{k}", label=label)
    axes[0].set_ylabel("samples / s (all ranks)")
    axes[1].set_ylabel("step time (s)")
    for ax in axes:
        ax.set_xlabel("MPI ranks (1 thread each)")
        ax.set_xticks(sorted({r["ranks"] for r in runs}))
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8)
    machine = distributed.get("machine", {})
    fig.suptitle(f"{machine.get('cpu', '')}, {machine.get('cores', '?')} cores", fontsize=9)  # type: ignore[union-attr]
    _save(fig, path)


def memory(measured: dict[str, object], path: Path) -> None:
    """Peak memory per process added by reconstruction against scan size (log-log):
    DINR per rank, MACE4D where measured, and one float32 copy of the 4D volume."""
    sizes = measured["sizes"]  # type: ignore[index]
    fig, ax = plt.subplots(figsize=(5.5, 3.5))
    for key, label, style in (("dinr_rank_added_mb", "DINR, per rank (measured)", "o-"),
                              ("mace4d_added_mb", "MACE4D (measured)", "s-"),
                              ("volume_4d_mb", "one copy of the 4D volume", "k--")):
        points = [(s["n"], s[key]) for s in sizes if key in s]  # type: ignore[index, union-attr]
        if points:
            ax.loglog(*zip(*points), style, label=label, base=2)
    ax.set_xlabel("detector n x n pixels (n**3 voxels per frame)")
    ax.set_ylabel("memory (MB)")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8)
    _save(fig, path)


def _beam(entry: dict[str, Any]) -> str:
    return str(entry["scan"].get("beam", "parallel"))


def _rows(entry: dict[str, Any]) -> str:
    """An entry's row count, with its beam when it is not parallel (the size figure's groups)."""
    beam = _beam(entry)
    return f"{entry['scan']['rows']} rows" + ("" if beam == "parallel" else f", {beam} beam")


def scan_size(measured: dict[str, object], path: Path, peer: str = "mbir_sliding") -> None:
    """DINR against the MBIR peer at each scan size, from ``bench/size.py``'s JSON (its
    ``entries`` of the ``default`` variant). Left: DINR's mean PSNR against training wall
    time (one line per scan) and the peer's (wall time, PSNR) as a marker of the same
    colour. Right (log-log), for the scans of each row count and beam: against the width in
    pixels, the peer's wall time, DINR's time to reach the peer's PSNR (an open marker at
    the cap where it did not) and DINR's seconds per epoch."""
    entries = sorted((e for e in measured["entries"] if e["variant"] == "default"),  # type: ignore[index, union-attr]
                     key=lambda e: (_beam(e) != "parallel", e["scan"]["rows"], e["scan"]["columns"]))
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8), layout="constrained")
    for k, e in enumerate(entries):
        curve, mark = e["dinr"]["curve"], e["peers"][peer]
        label = f"{e['scan']['columns']} px, {_rows(e)}"
        axes[0].plot([p["elapsed_s"] for p in curve], [p["psnr"] for p in curve], color=f"C{k}", marker="o", ms=2,
                     label=f"DINR, {label}")
        axes[0].plot([mark["wall_s"]], [mark["psnr_mean"]], color=f"C{k}", marker="s", ls="none",
                     label=f"{LABELS.get(peer, peer)}, {label}")
        axes[0].axhline(mark["psnr_mean"], color=f"C{k}", ls="--", lw=0.6)
    axes[0].set_xscale("log")
    axes[0].set_xlabel("wall time (s)")
    axes[0].set_ylabel("mean PSNR (dB)")
    axes[0].legend(fontsize=6, ncol=2)
    for key in sorted({(_beam(e), e["scan"]["rows"]) for e in entries}, key=lambda k: (k[0] != "parallel", k[1])):
        group = [e for e in entries if (_beam(e), e["scan"]["rows"]) == key]
        rows = _rows(group[0])
        width = [e["scan"]["columns"] for e in group]
        axes[1].loglog(width, [e["peers"][peer]["wall_s"] for e in group], "s-", color="C3", base=2,
                       label=f"{LABELS.get(peer, peer)}: wall time, {rows}")
        reached = [(w, e["dinr"]["reaches_peer_s"]) for w, e in zip(width, group) if e["dinr"]["reaches_peer_s"]]
        capped = [(w, e["cap_s"]) for w, e in zip(width, group) if not e["dinr"]["reaches_peer_s"]]
        if reached:
            axes[1].loglog(*zip(*reached), "o-", color="C0", base=2, label=f"DINR: time to the peer's PSNR, {rows}")
        if capped:
            axes[1].loglog(*zip(*capped), "o", mfc="none", color="C0", base=2,
                           label=f"DINR: not reached within (cap), {rows}")
        axes[1].loglog(width, [e["dinr"]["train_s"] / e["dinr"]["epochs"] for e in group], "^--", color="C2", base=2,
                       label=f"DINR: seconds per epoch, {rows}")
    axes[1].set_xlabel("scan width (pixels; views in proportion)")
    axes[1].set_ylabel("wall time (s)")
    axes[1].legend(fontsize=6)
    for ax in axes:
        ax.grid(alpha=0.3, which="both")
    machines = {f"{e['machine']['cpu']}, {e['machine']['cores']} cores" if "machine" in e else "machine not recorded"
                for e in entries}
    fig.suptitle("; ".join(sorted(machines)), fontsize=9)
    _save(fig, path)
