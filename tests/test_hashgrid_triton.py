"""The Triton kernels of the hash encoding (its CUDA path), run here on CPU tensors by
Triton's interpreter (``TRITON_INTERPRET=1``, set by conftest without a GPU): forward
values and table gradients equal to the Numba and PyTorch paths, and the deterministic
backward bitwise repeatable."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from dinr.inr.hashgrid import HashGridEncoding

pytest.importorskip("triton", reason="Triton is installed by the test extra (pip install -e '.[test]')")


def _grid(case: str, features: int) -> HashGridEncoding:
    """Small grids covering every case of the kernels: dense and hashed levels of a 4D
    grid over part of the scan (linear end cells), and a static grid."""
    space = np.array([4.0, 8.0, 16.0, 32.0])
    if case == "static":
        return HashGridEncoding(space, np.zeros(4), (0.25, 1.0, 1.0), features, 10, seed=1)
    time = np.array([0.0, 2.0, 4.0, 8.0]) if case == "coarse_static_level" else np.array([2.0, 3.0, 5.0, 7.0])
    return HashGridEncoding(space, time, (0.25, 1.0, 1.0), features, 10, seed=1, time_span=(0.2, 0.8))


def _points(count: int = 700) -> torch.Tensor:
    """(t, z, y, x) points: most inside, some before and after the time span and the
    scan, some outside the box."""
    generator = torch.Generator().manual_seed(0)
    t = torch.rand(count, generator=generator) * 1.4 - 0.2
    space = (torch.rand(count, 3, generator=generator) * 2.4 - 1.2) * torch.tensor([0.25, 1.0, 1.0])
    return torch.cat([t[:, None], space], dim=1)


def _encode(grid: HashGridEncoding, path: str, unit: torch.Tensor, weights: torch.Tensor
            ) -> tuple[torch.Tensor, list[torch.Tensor]]:
    for table in grid.tables:
        table.grad = None
    features = {"triton": grid.encode_triton, "numba": grid.encode_cpu, "torch": grid.encode_torch}[path](unit)
    (features * weights).sum().backward()
    return features.detach(), [table.grad.clone() for table in grid.tables]  # type: ignore[union-attr]


@pytest.mark.parametrize("case", ["dynamic", "coarse_static_level", "static"])
@pytest.mark.parametrize("features", [2, 3])
def test_triton_kernels_match_the_numba_and_pytorch_paths(case: str, features: int) -> None:
    grid = _grid(case, features)
    assert 0 < grid.dense_levels < grid.levels  # dense and hashed levels both run
    unit = grid.unit_coordinates(_points())
    weights = torch.randn(unit.shape[0], grid.out_features, generator=torch.Generator().manual_seed(2))
    triton_features, triton_grads = _encode(grid, "triton", unit, weights)
    for reference in ("numba", "torch"):
        features_ref, grads_ref = _encode(grid, reference, unit, weights)
        torch.testing.assert_close(triton_features, features_ref, rtol=1e-5, atol=1e-5)
        for got, expected in zip(triton_grads, grads_ref):
            torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5)


def test_deterministic_backward_is_bitwise_repeatable_and_matches_the_atomic_one() -> None:
    grid = _grid("dynamic", 2)
    unit = grid.unit_coordinates(_points(900))
    weights = torch.randn(unit.shape[0], grid.out_features, generator=torch.Generator().manual_seed(3))
    _, atomic = _encode(grid, "triton", unit, weights)
    torch.use_deterministic_algorithms(True)
    try:
        _, first = _encode(grid, "triton", unit, weights)
        _, second = _encode(grid, "triton", unit, weights)
    finally:
        torch.use_deterministic_algorithms(False)
    for a, b, c in zip(first, second, atomic):
        assert torch.equal(a, b)
        torch.testing.assert_close(a, c, rtol=1e-5, atol=1e-5)
