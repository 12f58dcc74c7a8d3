"""The prepared GPU check's CPU half: the script runs end to end and reports every part."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import REPO


@pytest.mark.slow
def test_gpu_check_cpu_half_reports_every_part(tmp_path: Path) -> None:
    out = tmp_path / "gpu_check.json"
    result = subprocess.run([sys.executable, str(REPO / "bench" / "gpu_check.py"), "--cpu", "--out", str(out)],
                            capture_output=True, text=True, timeout=900, cwd=REPO)
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(out.read_text())
    correctness = report["correctness"]
    assert correctness["no_drift"] and "error" not in correctness["two_ranks"]
    # the same device and settings: 1 rank is the CPU reference run, 2 ranks draw twice the rays
    assert correctness["loss_ratio_one_rank_to_cpu"] == pytest.approx(1.0, rel=1e-6)
    assert 0.5 < correctness["loss_ratio_two_ranks_to_cpu"] < 2.0
    assert report["repeatability"]["max_param_difference_default"] == 0.0  # CPU runs repeat bitwise
    assert report["repeatability"]["max_param_difference_deterministic"] == 0.0
    assert 0.5 < report["precision"]["loss_ratio_bf16_to_fp32"] < 2.0
    for rates in (report["throughput"]["eager_samples_per_s"], report["throughput"]["compiled_samples_per_s"]):
        assert all(isinstance(r, float) and r > 0 for r in rates.values()), rates
    assert 0 <= report["allreduce"].get("share", -1) < 1, report["allreduce"]  # shows the error when it failed
    assert report["render"]["device_slices_per_s"] > 0 and math.isfinite(report["render"]["cpu_slices_per_s"])
    for field in ("demo_16384", "beamline_16384"):  # the Numba kernels against the PyTorch path
        entry = report["encoding"][field]
        assert entry["cpu"]["samples_per_s"] > 0 and entry["torch"]["samples_per_s"] > 0
        assert 0 < entry["cpu"]["encoding_share"] < 1.5 and entry["speedup"] > 0
    assert report["fbp"]["cpu_s"] > 0 and "demo_dag" not in report
    levels = report["levels"]  # one row per level of each grid of both fields, each timed
    assert {row["field"] for row in levels} == {"demo", "beamline"} and len(levels) >= 4
    assert all(row["forward_ms"] > 0 and row["rows"] > 0 for row in levels)
