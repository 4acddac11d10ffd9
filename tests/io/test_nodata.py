"""No data as products deliver it (declared -99/-9999, 0 in linear power, NaN) and bright targets (> +20 dB)
that must not stretch the normaliser."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pytest

from cubes import backscatter_db, cube_dataset, write_geotiffs
from tropicrop.io import stack_cube
from tropicrop.io.stack import stack
from tropicrop.scene import load_scene
from tropicrop.synthetic import write_pair
from tropicrop.windows.normalize import BRIGHT_DB, Normalizer

SIZE = 24
TIMES = [dt.datetime(2021, 5, 2), dt.datetime(2021, 5, 14)]


def composite(scene: Path) -> np.ndarray:
    return load_scene(scene).read_images()[0]


@pytest.mark.parametrize("nodata", [-99.0, -9999.0])
def test_declared_nodata_of_geotiffs_is_no_data(tmp_path: Path, nodata: float) -> None:
    db = backscatter_db(TIMES, SIZE)
    db[:, :, :4, :] = nodata      # both acquisitions: no data at all
    db[0, :, 10:14, :] = nodata   # the first only: the composite is the second's value
    db[1, :, 16:18, :] = np.nan   # NaN in a float file without a declared value
    write_geotiffs(tmp_path / "tifs", db, TIMES, nodata=nodata)
    got = composite(stack([tmp_path / "tifs"], tmp_path / "scene", progress=False))
    assert np.isnan(got[:, :4]).all()
    np.testing.assert_allclose(got[:, 10:14], db[1, :, 10:14], atol=1e-4)
    np.testing.assert_allclose(got[:, 16:18], db[0, :, 16:18], atol=1e-4)
    assert np.nanmin(got) > -40


def test_declared_fill_of_a_cube_in_memory_and_on_disk_is_no_data(tmp_path: Path) -> None:
    db = backscatter_db(TIMES, SIZE)
    db[0, :, 8:10, :] = -99.0      # a valid power (1e-10) were it not declared no data
    dataset = cube_dataset(db, TIMES)
    for name in ("S1-SIGMA0-VV", "S1-SIGMA0-VH"):
        dataset[name].attrs["_FillValue"] = -99.0  # declared in memory: not decoded, rioxarray's nodata
    got = composite(stack_cube(dataset, tmp_path / "scene", progress=False))
    np.testing.assert_allclose(got[:, 8:10], db[1, :, 8:10], atol=1e-4)
    dataset.to_netcdf(tmp_path / "cube.nc")  # on disk, xarray's CF decoding masks the _FillValue
    from_file = composite(stack([tmp_path / "cube.nc"], tmp_path / "from_file", progress=False))
    np.testing.assert_allclose(from_file, got, atol=1e-5)


def test_zero_linear_power_of_a_cube_is_no_data(tmp_path: Path) -> None:
    linear = np.power(10.0, backscatter_db(TIMES, SIZE) / 10.0).astype(np.float32)
    linear[:, :, :3, :] = 0.0      # border fill of linear products
    got = composite(stack_cube(cube_dataset(linear, TIMES), tmp_path / "scene", progress=False))
    assert np.isnan(got[:, :3]).all() and np.isfinite(got[:, 3:]).all()


def _unclipped(images: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    values = np.moveaxis(images[:, :, mask], 1, 0).reshape(images.shape[1], -1)
    return np.nanmean(values, axis=1), np.nanstd(values, axis=1)


def test_normaliser_statistics_of_a_synthetic_scene_are_unchanged(tmp_path: Path) -> None:
    scene = load_scene(write_pair(tmp_path, preset="lem", size=48, seed=0)[1])
    images = scene.read_images()
    assert np.nanmax(images) < BRIGHT_DB  # synthetic scenes have no bright targets: nothing is clipped
    mask = scene.read_split() == 1
    fitted = Normalizer.fit(images, mask)
    mean, std = _unclipped(images, mask)
    assert fitted.mean == tuple(float(v) for v in mean) and fitted.std == tuple(float(v) for v in std)


def test_bright_targets_do_not_stretch_the_normaliser() -> None:
    rng = np.random.default_rng(0)
    images = rng.normal(-12.0, 2.0, size=(6, 2, 40, 40)).astype(np.float32)
    mask = np.ones((40, 40), dtype=bool)
    clean = Normalizer.fit(images, mask)
    bright = images.copy()
    bright[:, :, :2, :2] = 45.0  # a building: 0.25 % of the pixels at +45 dB
    fitted = Normalizer.fit(bright, mask)
    mean, std = _unclipped(bright, mask)
    assert abs(fitted.std[0] - clean.std[0]) < 0.5 * abs(float(std[0]) - clean.std[0])
    assert abs(fitted.mean[0] - clean.mean[0]) < 0.6 * abs(float(mean[0]) - clean.mean[0])
