"""What can the field's layout represent? The field fitted to the truth itself, no projections.

    python bench/representation.py --dataset gen_oscillate --model <a trained run's model.pt> \\
        --coarsest-time-share 0 1 --out bench/results/representation_oscillate.json

For a simulated dataset built by the workflow (``results/<dataset>/``: its simulate and
geometry settings), the field of a trained run's settings and field spec (``--model``:
its levels, time cells, features and MLP, built afresh from its seed) is fitted by Adam
to the phantom itself, rasterised at :data:`INSTANTS` instants over the scan: a squared error on
:data:`POINTS` random (instant, voxel) pairs a step inside the region every view sees, the
learning rate decaying from ``lr`` to :data:`FINAL_LR_SHARE` of it over ``--steps``. Each
frame of the truth is then scored as the evaluate stage scores it (its metrics, the truth's
value range, that region). A reconstruction's frame far below this ceiling
is limited by what its views and priors determine, not by what its grid can hold. Each
value of ``--coarsest-time-share`` sets ``dinr.inr.build.COARSEST_TIME_SHARE`` (the coarsest
level's time cells as a share of the finest's) for one fit.
Writes the JSON and a Markdown table (``.md``) beside it.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

import dinr.inr.build as build
from dinr.evaluate.metrics import frame_metrics
from dinr.inr.render import VoxelGrid
from dinr.sim.ellipses import rasterise_phantom
from dinr.train.checkpoint import load_checkpoint
from turning_points import REPO, simulated_phantom  # bench/, the script's own folder, is on sys.path

#: Instants (evenly over the scan) the truth is rasterised at for the fit.
INSTANTS = 256

#: (instant, voxel) pairs a step.
POINTS = 8192

#: The learning rate at the last step, as a share of the first.
FINAL_LR_SHARE = 0.01


def fit_truth(dataset: str, model: Path, share: float, steps: int, lr: float) -> dict[str, Any]:
    """One fit (module note) at ``COARSEST_TIME_SHARE`` ``share``: the per-frame PSNR, its mean and the levels."""
    root = REPO / "results" / dataset
    simulate, phantom, heights = simulated_phantom(root)
    state = load_checkpoint(model)
    beam = state.beam_geometry()
    build.COARSEST_TIME_SHARE = share
    settings = state.train_settings()
    levels = {name: [space.tolist(), cells.tolist()] for name, (space, cells) in
              build.grid_levels(settings, state.field_spec).items()}
    field = build.build_field(settings, state.field_spec)
    grid = VoxelGrid.full(beam)
    z, y, x = np.meshgrid(grid.z, grid.y, grid.x, indexing="ij")
    mask = beam.region_mask()  # (z, y, x): the region the evaluate stage scores
    inside = torch.as_tensor(np.argwhere(mask))
    space = torch.as_tensor(np.stack([z, y, x], axis=-1) / beam.half_width, dtype=torch.float32)
    space = space[inside[:, 0], inside[:, 1], inside[:, 2]]  # (voxels, 3) inside the region
    times = torch.as_tensor((np.arange(INSTANTS) + 0.5) / INSTANTS, dtype=torch.float32)
    truth = torch.as_tensor(rasterise_phantom(phantom, times.numpy(), heights), dtype=torch.float32)
    truth = truth[:, inside[:, 0], inside[:, 1], inside[:, 2]]  # (instants, voxels)
    scale = float(state.field_spec["scale"])
    optimizer = torch.optim.Adam(field.parameters(), lr=lr, betas=(0.9, 0.99), eps=1e-15)
    generator = torch.Generator().manual_seed(settings.seed)
    started = time.perf_counter()
    for step in range(steps):
        for group in optimizer.param_groups:
            group["lr"] = lr * FINAL_LR_SHARE ** (step / steps)
        instant = torch.randint(0, INSTANTS, (POINTS,), generator=generator)
        voxel = torch.randint(0, len(space), (POINTS,), generator=generator)
        loss = ((field(torch.cat([times[instant, None], space[voxel]], dim=1)) - truth[instant, voxel]) ** 2).mean()
        optimizer.zero_grad()
        (loss / scale**2).backward()
        optimizer.step()
        if step % 1000 == 0 or step == steps - 1:
            print(f"share {share:g}: step {step + 1}/{steps}, loss {loss.item() / scale**2:.4g}, "
                  f"{time.perf_counter() - started:.0f} s", flush=True)
    frame_times = (np.arange(simulate.frames) + 0.5) / simulate.frames
    frames = rasterise_phantom(phantom, frame_times, heights)
    value_range = float(frames.max() - frames.min())
    psnr = []
    volume = np.zeros(mask.shape, dtype=np.float32)
    with torch.no_grad():
        for t, frame in zip(frame_times, frames):
            volume[mask] = field(torch.cat([torch.full((len(space), 1), float(t)), space], dim=1)).numpy()
            psnr.append(round(frame_metrics(frame[None], volume[None], 0, mask, value_range)["psnr"], 2))
    return {"coarsest_time_share": share, "levels": levels, "steps": steps, "lr": lr,
            "seconds": round(time.perf_counter() - started, 1), "psnr_mean": round(float(np.mean(psnr)), 2),
            "per_frame_psnr": psnr}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", required=True)
    parser.add_argument("--model", type=Path, required=True, help="a trained run's model.pt or checkpoint")
    parser.add_argument("--coarsest-time-share", type=float, nargs="+", default=[build.COARSEST_TIME_SHARE])
    parser.add_argument("--steps", type=int, default=6000)
    parser.add_argument("--lr", type=float, default=0.02)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    fits = [fit_truth(args.dataset, args.model, share, args.steps, args.lr) for share in args.coarsest_time_share]
    report = {"dataset": args.dataset, "model": str(args.model), "instants": INSTANTS, "points": POINTS, "fits": fits}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=1) + "\n")
    lines = [f"# {args.dataset}: the field fitted to the truth ({args.steps} steps of {POINTS} points)", "",
             "| coarsest time share | dynamic levels' time cells | mean PSNR | per frame |", "|---|---|---|---|"]
    lines += [f"| {fit['coarsest_time_share']:g} | {', '.join(f'{c:g}' for c in fit['levels']['dynamic'][1])} | "
              f"{fit['psnr_mean']:.2f} | {' '.join(f'{p:.2f}' for p in fit['per_frame_psnr'])} |" for fit in fits]
    args.out.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
