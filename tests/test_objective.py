"""The training objective's prior: noise estimate, MAP weight, along-ray variation."""

import dataclasses

import numpy as np
import pytest
import torch

from conftest import TINY_TRAIN
from dinr.geometry.parallel import ParallelGeometry
from dinr.prep.noise import noise_variance
from dinr.train.objective import along_ray_variation, tv_weight


def smooth_sinogram(views: int = 360, rows: int = 6, cols: int = 96) -> np.ndarray:
    """(views, rows, cols) line integrals between about 0.2 and 2, smooth on every axis,
    with two sharp steps across the detector (the edges of a dense part)."""
    v, r, c = np.meshgrid(np.linspace(0, 2 * np.pi, views), np.arange(rows), np.arange(cols), indexing="ij")
    y = 1.0 + 0.5 * np.sin(v + c / 30.0) + 0.1 * np.cos(r / 3.0)
    y = y + 0.3 * ((c > 40) & (c < 56))
    return y


@pytest.mark.parametrize("sigma", [0.003, 0.02])
def test_noise_variance_recovers_gaussian_noise_despite_edges(sigma: float) -> None:
    rng = np.random.default_rng(1)
    y = smooth_sinogram()
    estimate = noise_variance(y + rng.normal(0.0, sigma, y.shape), transmission_weighted=False)
    assert estimate == pytest.approx(sigma**2, rel=0.1)


def test_weighted_noise_variance_is_one_over_flat_counts_for_poisson_data() -> None:
    rng = np.random.default_rng(2)
    flat_counts = 5e3
    y = smooth_sinogram()
    counts = rng.poisson(flat_counts * np.exp(-y))
    measured = -np.log(np.maximum(counts, 1) / flat_counts)
    estimate = noise_variance(measured, transmission_weighted=True)
    assert estimate == pytest.approx(1.0 / flat_counts, rel=0.15)
    assert noise_variance(y, transmission_weighted=True) < 1e-3 / flat_counts  # no noise: (almost) nothing


def test_noise_variance_ignores_non_finite_values() -> None:
    rng = np.random.default_rng(3)
    y = smooth_sinogram() + rng.normal(0.0, 0.01, (360, 6, 96))
    y[::7, 2, 5] = np.nan
    assert noise_variance(y, transmission_weighted=False) == pytest.approx(1e-4, rel=0.1)


def test_auto_tv_weight_scales_with_the_noise_std_and_unknowns_per_ray() -> None:
    geometry = ParallelGeometry(rows=4, cols=64, center=32.0, n=64)
    base = tv_weight(TINY_TRAIN, 1e-4, geometry, training_views=200, time_cells=4, scale=0.02)
    assert base > 0
    assert tv_weight(TINY_TRAIN, 4e-4, geometry, 200, 4, 0.02) == pytest.approx(2 * base)  # the noise's std
    assert tv_weight(TINY_TRAIN, 1e-4, geometry, 400, 4, 0.02) == pytest.approx(base / 2)
    assert tv_weight(TINY_TRAIN, 1e-4, geometry, 200, 8, 0.02) == pytest.approx(2 * base)
    assert tv_weight(TINY_TRAIN, 1e-4, geometry, 200, 4, 0.04) == pytest.approx(base / 2)
    assert tv_weight(TINY_TRAIN, 0.0, geometry, 200, 4, 0.02) == 0.0
    fixed = dataclasses.replace(TINY_TRAIN, tv_weight=0.5)
    assert tv_weight(fixed, 1e-4, geometry, 200, 4, 0.02) == 0.5


def test_along_ray_variation_sums_absolute_steps() -> None:
    values = torch.tensor([[0.0, 1.0, 1.0, 0.0], [2.0, 2.0, 2.0, 2.0]])
    assert float(along_ray_variation(values)) == 2.0
