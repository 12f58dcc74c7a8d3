"""Exports for viewers: OME-Zarr read back with ome-zarr's reader, the ImageJ TIFF with
tifffile, both equal to the HDF5 volume with its units, scale and frame interval; a
static method's volume is stored once."""

from __future__ import annotations

import json
from pathlib import Path

import h5py
import numpy as np
import pytest
import tifffile
from ome_zarr.io import parse_url
from ome_zarr.reader import Reader

from dinr.errors import InputError
from dinr.io.export import export_imagej_tiff, export_ome_zarr, pyramid_factors
from dinr.io.volume import read_volume, static_volume_writer, volume_writer


def _volume(path: Path, voxel_mm: float, shape: tuple[int, int, int, int] = (3, 4, 130, 150)) -> np.ndarray:
    values = np.random.default_rng(0).normal(size=shape).astype(np.float32)
    with volume_writer(path, shape, 2.0 + 0.25 * np.arange(shape[0]), {"dinr_git_commit": "abc"},
                       voxel_size_mm=(voxel_mm, voxel_mm, voxel_mm)) as dset:
        for t in range(shape[0]):
            dset[t] = values[t]
    return values


@pytest.mark.parametrize(("voxel_mm", "unit", "factor"), [(0.00065, "micrometer", 1000.0), (0.2, "millimeter", 1.0)])
def test_ome_zarr_has_the_axes_units_scale_and_values_of_the_volume(tmp_path: Path, voxel_mm: float, unit: str,
                                                                     factor: float) -> None:
    values = _volume(tmp_path / "recon.h5", voxel_mm)
    export_ome_zarr(tmp_path / "recon.h5", tmp_path / "recon.ome.zarr")
    image = next(iter(Reader(parse_url(str(tmp_path / "recon.ome.zarr")))()))
    axes = image.metadata["axes"]
    assert [a["name"] for a in axes] == ["t", "z", "y", "x"]
    assert [a.get("unit") for a in axes] == ["second", unit, unit, unit]
    transforms = image.metadata["coordinateTransformations"]
    scale = next(t["scale"] for t in transforms[0] if t["type"] == "scale")
    np.testing.assert_allclose(scale, [0.25, voxel_mm * factor, voxel_mm * factor, voxel_mm * factor])
    assert len(image.data) == 1 + len(pyramid_factors(130, 150)) == 2  # 130 -> 65: one halving above 64
    np.testing.assert_array_equal(np.asarray(image.data[0]), values)
    assert np.asarray(image.data[1]).shape == (3, 4, 65, 75)
    import zarr
    group = zarr.open_group(str(tmp_path / "recon.ome.zarr"), mode="r")
    assert group.attrs["dinr_git_commit"] == "abc" and "dinr_export" in group.attrs
    assert group["s0"].chunks == (1, 1, 130, 150)  # whole slices


def test_imagej_tiff_has_the_calibration_and_frame_interval_of_the_volume(tmp_path: Path) -> None:
    values = _volume(tmp_path / "recon.h5", 0.00065)
    export_imagej_tiff(tmp_path / "recon.h5", tmp_path / "recon.tif")
    with tifffile.TiffFile(tmp_path / "recon.tif") as tif:
        assert tif.is_imagej and tif.series[0].axes == "TZYX"
        meta = tif.imagej_metadata
        assert (meta["frames"], meta["slices"], meta["unit"]) == (3, 4, "micron")
        assert meta["spacing"] == pytest.approx(0.65) and meta["finterval"] == pytest.approx(0.25)
        x_resolution = tif.pages[0].tags["XResolution"].value
        assert x_resolution[0] / x_resolution[1] == pytest.approx(1 / 0.65, rel=1e-6)  # pixels per micron
        assert json.loads(json.loads(meta["Info"])["dinr_export"])["format"] == "tiff"
        np.testing.assert_array_equal(tif.asarray(), values)


def test_a_volume_without_its_physical_size_is_refused_naming_the_file(tmp_path: Path) -> None:
    with h5py.File(tmp_path / "old.h5", "w") as f:
        f["recon"] = np.zeros((1, 1, 4, 4), np.float32)
        f["time"] = np.zeros(1)
    with pytest.raises(InputError, match=r"old\.h5: /recon does not record voxel_size_mm, frame_interval_s"):
        export_imagej_tiff(tmp_path / "old.h5", tmp_path / "old.tif")


def test_a_static_volume_is_stored_once_and_read_at_every_frame(tmp_path: Path) -> None:
    volume = np.random.default_rng(1).normal(size=(4, 64, 64)).astype(np.float32)
    with static_volume_writer(tmp_path / "static.h5", (16, 4, 64, 64), np.arange(16.0), {},
                              (0.001, 0.001, 0.001)) as static:
        static[...] = volume
    recon, times = read_volume(tmp_path / "static.h5")
    assert recon.shape == (16, 4, 64, 64) and len(times) == 16
    np.testing.assert_array_equal(recon, np.broadcast_to(volume, recon.shape))
    with h5py.File(tmp_path / "static.h5") as f:
        assert f["recon"].is_virtual and f["recon"].attrs["frame_interval_s"] == 1.0
    assert (tmp_path / "static.h5").stat().st_size < volume.nbytes * 2  # one copy, not 16
