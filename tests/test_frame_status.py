"""bench/frame_status.py: each scan's row comes from the last source holding it at its
defaults, and the bar (mean + 1 dB, SSIM higher, worst frame >= 0 dB) is applied as written."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from conftest import REPO

sys.path.insert(0, str(REPO / "bench"))
import frame_status  # noqa: E402


def _row(dataset: str, mean: float, ssim: float, worst: float, train: dict[str, object] | None = None) -> dict:
    scores = {"psnr_mean": 30.0 + mean, "ssim_mean": ssim, "psnr_first": 31.0, "psnr_last": 32.0}
    peer = {"psnr_mean": 30.0, "ssim_mean": 0.95, "psnr_first": 30.5, "psnr_last": 30.5}
    return {"dataset": dataset, "train": train or {}, "methods": {"dinr": scores, "mbir_sliding": peer},
            "dinr_margin": {"mean": mean, "best_mean_peer": "mbir_sliding", "worst_frame": worst,
                            "worst_frame_index": 3}}


def test_the_last_source_at_defaults_wins_and_the_bar_is_applied(tmp_path: Path) -> None:
    older, newer = tmp_path / "older.json", tmp_path / "newer.json"
    older.write_text(json.dumps({"datasets": [_row("demo", 2.0, 0.99, 0.5), _row("gen_foam", 1.5, 0.99, 0.2)]}))
    newer.write_text(json.dumps({"datasets": [
        _row("demo", 1.2, 0.99, -0.1),                           # later: wins, and misses the worst-frame bar
        _row("gen_foam", 3.0, 0.99, 1.0, train={"lr": 0.01}),   # changed keys: not at its defaults, skipped
        _row("gen_spin", 1.1, 0.90, 0.4)]}))                     # SSIM below the peer's 0.95
    rows = {row["dataset"]: row for row in frame_status.status([older, newer])}
    assert rows["demo"]["source"] == str(newer) and rows["demo"]["meets"] is False
    assert rows["gen_foam"]["source"] == str(older) and rows["gen_foam"]["meets"] is True
    assert rows["gen_spin"]["ssim_higher"] is False and rows["gen_spin"]["meets"] is False
    assert rows["gen_late"]["source"] is None  # in config/paper.yaml, in no source
    assert "not measured at its defaults" in frame_status.table(list(rows.values()))
