"""The built-in phantoms: what each promises about its motion and its values."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from conftest import TINY_SIMULATE
from dinr.errors import InputError
from dinr.geometry.parallel import ParallelGeometry
from dinr.sim.ellipses import project_ellipses, rasterise_phantom
from dinr.sim.foam import FoamPhantom
from dinr.sim.phantoms import PHANTOMS, build_phantom
from dinr.sim.scan import simulate_scan


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


def test_flat_counts_beyond_16_bits_stop_naming_the_key() -> None:
    """1e5 photons would clip every flat at 65535 (the -log comes out biased): refused."""
    settings = dataclasses.replace(TINY_SIMULATE, photons=1e5)
    geometry = ParallelGeometry(rows=settings.rows, cols=settings.size, center=settings.size / 2, n=settings.size)
    with pytest.raises(InputError, match="simulate.photons: 100000 flat counts"):
        simulate_scan(build_phantom(settings), geometry, settings.views, settings.turns, settings.photons,
                      settings.frames, settings.view_time_s)


def test_a_views_recorded_angle_and_time_are_the_middle_of_its_exposure() -> None:
    """Each simulated view averages the rays over its exposure; the angle and time it
    records must be that exposure's middle, or every reconstruction comes out rotated by
    half a view step (here 2.5 degrees) against the truth."""
    settings = dataclasses.replace(TINY_SIMULATE, views=72, turns=1, photons=6e4)
    geometry = ParallelGeometry(rows=settings.rows, cols=settings.size, center=settings.size / 2, n=settings.size)
    phantom = build_phantom(settings)
    scan = simulate_scan(phantom, geometry, settings.views, settings.turns, settings.photons, settings.frames,
                         settings.view_time_s, seed=settings.seed)
    flat, dark = scan.flat.mean(axis=0), scan.dark.mean(axis=0)
    measured = -np.log((scan.data - dark) / (flat - dark))
    step_deg = 360.0 / settings.views
    scan_s = settings.views * settings.view_time_s
    assert np.allclose(np.diff(scan.time_s), settings.view_time_s) and np.isclose(scan.time_s[0], settings.view_time_s / 2)
    assert np.isclose(scan.truth_time_s[0], scan_s / (2 * settings.frames))

    across_pixel = geometry.detector_u()[:, None] + np.linspace(-0.375, 0.375, 4)  # the simulator's sub-rays

    def misfit(shift_deg: float) -> float:
        """RMS difference between the measured line integrals and the phantom's exact
        ones (averaged across the pixel) at the recorded time, at the recorded angle
        plus ``shift_deg``."""
        exact = np.stack([[project_ellipses(phantom.slice_at(t / scan_s, z), np.deg2rad(a + shift_deg),
                                            across_pixel).mean(axis=1) for z in geometry.slice_z()]
                          for a, t in zip(scan.theta_deg, scan.time_s)])
        return float(np.sqrt(np.mean((measured - exact) ** 2)))

    at_record = misfit(0.0)
    assert at_record < 0.5 * misfit(-step_deg / 2) and at_record < 0.5 * misfit(step_deg / 2)


def _change(phantom: object, a: float, b: float) -> float:
    """Mean absolute change of the compression phantom's slices between instants a and b."""
    volume = rasterise_phantom(phantom, np.array([a, b]), np.array([-1.5, 1.5]), supersample=1)  # type: ignore[arg-type]
    return float(np.abs(volume[1] - volume[0]).mean())


def test_motions_unfold_the_deformation_as_they_say() -> None:
    base = dataclasses.replace(TINY_SIMULATE, size=48, rows=4, twist_deg=90.0)
    motion = {name: build_phantom(dataclasses.replace(base, motion=name))
              for name in ("steady", "rest", "late", "oscillate", "accelerate", "jerk")}
    assert _change(motion["rest"], 0.75, 1.0) == 0.0 < _change(motion["rest"], 0.0, 0.25)
    assert _change(motion["late"], 0.0, 0.3) == 0.0 < _change(motion["late"], 0.7, 1.0)
    assert _change(motion["jerk"], 0.0, 0.4) == _change(motion["jerk"], 0.6, 1.0) == 0.0
    assert _change(motion["jerk"], 0.45, 0.55) > 2 * _change(motion["steady"], 0.45, 0.55)
    assert _change(motion["oscillate"], 0.0, 2 / 3) < 1e-6 < _change(motion["oscillate"], 0.0, 1 / 3)  # back where it began
    assert _change(motion["accelerate"], 0.0, 0.25) < 0.2 * _change(motion["accelerate"], 0.75, 1.0)
    steady, moved = (rasterise_phantom(motion[m], np.array([0.0, 1.0]), np.array([0.5])) for m in ("steady", "rest"))
    np.testing.assert_array_equal(steady, moved)  # the same object at the start and end states


def test_unknown_motion_names_the_key() -> None:
    with pytest.raises(InputError, match=r"simulate\.motion: unknown motion 'wobble'"):
        build_phantom(dataclasses.replace(TINY_SIMULATE, motion="wobble"))
