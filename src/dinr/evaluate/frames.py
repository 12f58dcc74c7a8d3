"""Frame-by-frame comparison: where in the scan each method is worst, and DINR's margin
over the best peer frame by frame.

A mean over frames hides the frames a method loses (typically the first and last, seen
from one side in time only). Every method's per-frame PSNR (dB) gives its worst, first
and last frame; DINR's per-frame margin is its PSNR minus the best other method's PSNR
*in that frame* (the best peer may change from frame to frame), and its worst-frame
margin is the smallest of those.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

#: The method whose margins are reported.
OURS = "dinr"


def frame_summary(per_frame: Sequence[Mapping[str, float]]) -> dict[str, float]:
    """The worst frame's PSNR (dB), its index, and the first and last frames' PSNR, of
    one method's per-frame metrics (in frame order)."""
    psnr = np.array([frame["psnr"] for frame in per_frame], dtype=np.float64)
    worst = int(np.argmin(psnr))
    return {"psnr_worst": float(psnr[worst]), "worst_frame": worst, "psnr_first": float(psnr[0]),
            "psnr_last": float(psnr[-1])}


def margins(methods: Mapping[str, Mapping[str, Any]], ours: str = OURS) -> dict[str, Any] | None:
    """``ours``' PSNR margin over the other methods with per-frame metrics, or ``None``
    when it or no peer has them: ``mean`` (its mean PSNR minus the best peer mean),
    ``best_mean_peer``, ``worst_frame`` (min over frames of its PSNR minus the best
    peer's in that frame), ``worst_frame_index`` and ``per_frame`` (every frame's margin,
    dB)."""
    if ours not in methods or "per_frame" not in methods[ours]:
        return None
    peers = {name: m for name, m in methods.items() if name != ours and "per_frame" in m}
    if not peers:
        return None
    own = np.array([frame["psnr"] for frame in methods[ours]["per_frame"]], dtype=np.float64)
    best_per_frame = np.max([[frame["psnr"] for frame in m["per_frame"]] for m in peers.values()], axis=0)
    per_frame = own - best_per_frame
    best_mean = max(peers, key=lambda name: float(peers[name]["psnr_mean"]))
    worst = int(np.argmin(per_frame))
    return {"mean": float(methods[ours]["psnr_mean"]) - float(peers[best_mean]["psnr_mean"]),
            "best_mean_peer": best_mean, "worst_frame": float(per_frame[worst]), "worst_frame_index": worst,
            "per_frame": per_frame.tolist()}
