"""Flat/dark correction against TomoPy's own test vectors."""

import numpy as np

from conftest import peer_vector
from dinr.prep.normalize import minus_log, normalize


def test_normalize_matches_tomopy_vector() -> None:
    out = normalize(peer_vector("tomo.npy"), peer_vector("flat.npy"), peer_vector("dark.npy"))
    np.testing.assert_allclose(out, peer_vector("normalize.npy"), rtol=1e-5)


def test_normalize_floors_dead_flat_pixels_and_clips() -> None:
    tomo = np.full((2, 1, 3), 5.0)
    flat = np.array([[[10.0, 1.0, 10.0]]])
    dark = np.array([[[0.0, 1.0, 0.0]]])
    out = normalize(tomo, flat, dark, cutoff=0.4)
    assert out[0, 0, 0] == np.float32(0.4)  # 0.5 clipped to the cutoff
    assert np.isfinite(out).all() and out[0, 0, 1] == np.float32(0.4)  # 4 / 1e-6, clipped


def test_minus_log_is_finite_below_floor() -> None:
    out = minus_log(np.array([1.0, 0.5, 0.0, -0.1], dtype=np.float32))
    assert np.all(np.isfinite(out))
    np.testing.assert_allclose(out[:2], [0.0, np.log(2.0)], rtol=1e-6)
