"""Frame-by-frame scoring: each method's worst, first and last frame, and DINR's margin
over the best peer of each frame, in metrics.json, its table and the paper's."""

from __future__ import annotations

import numpy as np
import pytest

from dinr.evaluate.frames import frame_summary, margins
from dinr.evaluate.metrics import volume_metrics
from dinr.evaluate.paper import frames_table
from dinr.evaluate.report import metrics_table


def _method(psnr: list[float]) -> dict[str, object]:
    return {"psnr_mean": float(np.mean(psnr)), "ssim_mean": 0.9, "per_frame": [{"psnr": p} for p in psnr],
            **frame_summary([{"psnr": p} for p in psnr])}


def test_margin_is_taken_against_each_frames_best_peer() -> None:
    # DINR wins the mean against either peer, yet loses frame 0 to one and frame 3 to the other.
    methods = {"dinr": _method([30.0, 34.0, 34.0, 31.0]), "mbir": _method([31.0, 30.0, 30.0, 30.0]),
               "mace": _method([29.0, 30.0, 30.0, 31.5])}
    margin = margins(methods)
    assert margin is not None
    assert margin["best_mean_peer"] == "mbir"  # mean 30.25 against mace's 30.125
    assert margin["mean"] == pytest.approx(32.25 - 30.25)
    assert margin["per_frame"] == pytest.approx([-1.0, 4.0, 4.0, -0.5])
    assert margin["worst_frame"] == pytest.approx(-1.0) and margin["worst_frame_index"] == 0


def test_summary_names_the_worst_frame_and_the_ends() -> None:
    summary = frame_summary([{"psnr": p} for p in (25.0, 31.0, 22.5, 30.0)])
    assert summary == {"psnr_worst": 22.5, "worst_frame": 2, "psnr_first": 25.0, "psnr_last": 30.0}


def test_no_margin_without_truth_or_peers() -> None:
    assert margins({"dinr": {"heldout_rel_residual": 0.1}, "mbir": {"heldout_rel_residual": 0.2}}) is None
    assert margins({"dinr": _method([30.0, 31.0])}) is None


def test_volume_metrics_report_the_worst_frame() -> None:
    rng = np.random.default_rng(0)
    truth = rng.random((3, 4, 16, 16)).astype(np.float32)
    noise = rng.normal(size=truth.shape).astype(np.float32) * np.array([0.01, 0.1, 0.02])[:, None, None, None]
    scores = volume_metrics(truth, truth + noise, np.ones((16, 16), dtype=bool))
    psnr = [frame["psnr"] for frame in scores["per_frame"]]
    assert scores["worst_frame"] == 1 and scores["psnr_worst"] == psnr[1] == min(psnr)
    assert scores["psnr_first"] == psnr[0] and scores["psnr_last"] == psnr[2]


def test_tables_show_the_worst_frame_margin() -> None:
    methods = {"dinr": _method([30.0, 34.0, 31.0]), "mbir_sliding": _method([31.0, 30.0, 30.0])}
    report = {"dataset": "scan_a", "methods": methods, "dinr_margin": margins(methods),
              "wall_s": {"train": 10.0, "render": 1.0, "mbir_sliding": 5.0}}
    text = metrics_table(report)
    assert "-1.00 dB in its worst frame (frame 0" in text and "+1.33 dB on the mean (over mbir_sliding)" in text
    assert "psnr_worst" in text and "per_frame" not in text
    line = frames_table([report]).splitlines()[2]
    assert line.startswith("| scan_a | 30.00 / 30.00 / 31.00 | 30.00 / 31.00 / 30.00 | +1.33 | -1.00 (frame 0) |")
    assert frames_table([{"dataset": "real", "methods": {"dinr": {"heldout_rel_residual": 0.1}}}]) == ""
