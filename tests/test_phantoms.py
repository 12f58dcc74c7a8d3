"""The built-in phantoms: what each promises about its motion and its values."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from conftest import TINY_SIMULATE
from dinr.errors import InputError
from dinr.sim.ellipses import rasterise_phantom
from dinr.sim.foam import FoamPhantom
from dinr.sim.phantoms import PHANTOMS, build_phantom


@pytest.mark.parametrize("name", sorted(PHANTOMS))
def test_phantom_deforms_and_stays_physical(name: str) -> None:
    phantom = build_phantom(dataclasses.replace(TINY_SIMULATE, phantom=name, size=48, rows=4))
    volume = rasterise_phantom(phantom, np.array([0.05, 0.95]), np.array([-1.5, 1.5]), supersample=2)
    assert volume.min() >= -1e-6, "negative attenuation: voids overlap"
    change = np.abs(volume[1] - volume[0]).mean() / volume[0].mean()
    assert change > 0.05, f"{name} barely moves ({change:.3f} relative change)"


def test_foam_coarsens_drifts_and_never_overlaps() -> None:
    foam = FoamPhantom(64, 8, seed=2)
    placed = ~np.isnan(foam.centres[:, 0])
    start, end = foam.bubble_radii(0.0), foam.bubble_radii(1.0)
    assert np.any(end > start) and np.any(end == 0.0), "some bubbles must grow and some vanish"
    assert foam.offset(1.0)[0] == pytest.approx(0.05 * 64)
    largest = np.maximum(start, end)
    radii = np.concatenate([[foam.grain_radius], largest])[placed]
    centres = foam.centres[placed]
    gaps = np.hypot(*(centres[:, None] - centres[None]).transpose(2, 0, 1)) - radii[:, None] - radii[None]
    assert np.all(gaps[~np.eye(len(radii), dtype=bool)] > 1.0)
    assert np.all(np.hypot(*centres.T) + radii < foam.inner)


def test_unknown_phantom_names_the_key() -> None:
    with pytest.raises(InputError, match="simulate.phantom: unknown phantom 'jelly'"):
        build_phantom(dataclasses.replace(TINY_SIMULATE, phantom="jelly"))
