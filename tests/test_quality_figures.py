"""No-reference image-quality figures and the slice movie."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from skimage.filters import gaussian

from dinr.evaluate.figures import scan_size, slice_movie, training_curve
from dinr.evaluate.quality import image_quality, inscribed_square


def _disks(frames: int = 3, rows: int = 2, n: int = 64) -> np.ndarray:
    """(t, z, y, x) piecewise-constant disks that move over time."""
    y, x = np.mgrid[:n, :n] - n / 2 + 0.5
    volume = np.zeros((frames, rows, n, n))
    for t in range(frames):
        for cx, cy, r, mu in ((-8 + 4 * t, 0, 9, 0.02), (10, -6 - 2 * t, 5, 0.035)):
            volume[t, :, (x - cx) ** 2 + (y - cy) ** 2 < r**2] = mu
    return volume


def test_inscribed_square_stays_inside_the_cylinder() -> None:
    n = 64
    square = inscribed_square(n)
    corner = square.start + 0.5 - n / 2
    assert 2 * corner**2 < (n / 2) ** 2 and square.stop - square.start >= 44


def test_noise_sigma_follows_added_noise() -> None:
    clean = _disks()
    rng = np.random.default_rng(0)
    for sigma in (0.001, 0.004):
        noisy = clean + rng.normal(0.0, sigma, clean.shape)
        assert image_quality(noisy)["noise_sigma"] == pytest.approx(sigma, rel=0.15)


def test_blur_grows_with_smoothing() -> None:
    sharp = _disks()
    blurred = np.stack([[gaussian(s, sigma=2.0) for s in frame] for frame in sharp])
    assert image_quality(blurred)["blur"] > image_quality(sharp)["blur"] + 0.1


def test_quality_rejects_a_volume_without_square_slices() -> None:
    with pytest.raises(ValueError, match="square slices"):
        image_quality(np.zeros((2, 2, 16, 24)))


def test_slice_movie_has_one_gif_frame_per_time(tmp_path: Path) -> None:
    truth = _disks(frames=5)
    path = tmp_path / "movie.gif"
    slice_movie({"dinr": truth + 0.001}, np.linspace(0.0, 4.0, 5), path, truth=truth)
    with Image.open(path) as movie:
        assert movie.format == "GIF" and movie.n_frames == 5
    assert not list(tmp_path.glob(".*.tmp"))


def test_training_figure_shows_the_held_out_curve(tmp_path: Path) -> None:
    history = [[100, 1e-3, 5000.0], [200, 5e-4, 5100.0]]
    training_curve(history, tmp_path / "plain.png")
    training_curve(history, tmp_path / "held.png", [[68, 0.03, 1e-2], [136, 0.02, 5e-3]], "converged: ...")
    plain, held = (Image.open(tmp_path / name).size for name in ("plain.png", "held.png"))
    assert held[1] > 1.6 * plain[1]  # a second panel below the first


def test_scan_size_figure_marks_a_width_dinr_did_not_reach_the_peer_at(tmp_path: Path) -> None:
    def entry(columns: int, reaches: float | None) -> dict[str, object]:
        curve = [{"elapsed_s": 10.0 * columns, "psnr": 30.0}, {"elapsed_s": 40.0 * columns, "psnr": 34.0}]
        return {"variant": "default", "scan": {"columns": columns, "rows": 2}, "cap_s": 40.0 * columns,
                "dinr": {"curve": curve, "reaches_peer_s": reaches, "train_s": 40.0 * columns, "epochs": 8.0},
                "peers": {"mbir_sliding": {"wall_s": 8.0 * columns, "psnr_mean": 33.0}}}

    measured = {"machine": {"cpu": "test", "cores": 2}, "entries": [entry(128, None), entry(64, 1200.0),
                                                                    {**entry(64, 1.0), "variant": "table_x4"}]}
    scan_size(measured, tmp_path / "size.png")
    with Image.open(tmp_path / "size.png") as figure:
        assert figure.size[0] > 1.5 * figure.size[1]  # two panels side by side
