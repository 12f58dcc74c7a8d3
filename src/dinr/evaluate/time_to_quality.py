"""DINR's quality against wall time, from snapshots taken during training, beside the
(quality, wall time) of each baseline: where does DINR overtake each one?"""

from __future__ import annotations

import numpy as np

from dinr.evaluate.metrics import volume_metrics
from dinr.inr.render import SliceRenderer
from dinr.train.checkpoint import TrainingState


def snapshot_curve(state: TrainingState, snapshots: list[dict[str, object]], truth: np.ndarray,
                   frame_times: np.ndarray, chunk: int) -> list[dict[str, float]]:
    """``{step, elapsed_s, psnr, ssim, psnr_worst}`` of each snapshot (means over the
    frames, and the worst frame's PSNR): the field of ``state``'s settings with the
    snapshot's parameters, rendered (pixel centres) at the normalised ``frame_times`` and
    scored against ``truth`` (t, z, y, x) inside the cylinder. ``elapsed_s``: the run's
    training seconds at the snapshot plus those of the time-cell pilots that lost the
    choice (:meth:`~dinr.train.checkpoint.TrainingState.losing_pilots_seconds`)."""
    losing_pilots_s = state.losing_pilots_seconds()
    geometry = state.beam_geometry()
    field = state.field()
    render = SliceRenderer(field, geometry, chunk)  # renders whatever parameters the field holds
    curve = []
    for snap in snapshots:
        field.load_state_dict(snap["model"])  # type: ignore[arg-type]
        volume = np.stack([np.stack([render(float(t), r) for r in range(geometry.rows)]) for t in frame_times])
        scores = volume_metrics(truth, volume, geometry.region_mask())
        elapsed = float(snap["elapsed_s"]) + losing_pilots_s  # type: ignore[arg-type]
        curve.append({"step": int(snap["step"]), "elapsed_s": elapsed,  # type: ignore[arg-type]
                      "psnr": scores["psnr_mean"], "ssim": scores["ssim_mean"],
                      "psnr_worst": scores["psnr_worst"]})  # type: ignore[dict-item]
    return curve


def overtaking(curve: list[dict[str, float]], peers: dict[str, dict[str, float]]) -> dict[str, float | None]:
    """For each peer (``{psnr, wall_s}``), the training wall time of the first snapshot
    whose PSNR is above the peer's (None when none is)."""
    return {
        name: next((point["elapsed_s"] for point in curve if point["psnr"] > peer["psnr"]), None)
        for name, peer in peers.items()
    }
