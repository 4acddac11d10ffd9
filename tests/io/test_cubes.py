"""``tropicrop stack CUBE``: netCDF, Zarr and in-memory datacubes -> the scene files give."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

from cubes import CUBE_CRS, backscatter_db, cube_dataset, gfmap_dn, pack_int16, write_geotiffs
from tropicrop.cli import main
from tropicrop.errors import StackError
from tropicrop.io import stack_cube
from tropicrop.scene import load_scene

SIZE = 40
TIMES = [dt.datetime(2021, 1, 3, 17, 40), dt.datetime(2021, 1, 15, 17, 40), dt.datetime(2021, 1, 27, 5, 50),
         dt.datetime(2021, 2, 8, 17, 40), dt.datetime(2021, 4, 4, 17, 40), dt.datetime(2021, 4, 16, 5, 50)]
MONTHS = {(2021, 1): [0, 1, 2], (2021, 2): [3], (2021, 4): [4, 5]}  # March has no acquisition


def expected_composites(db: np.ndarray) -> dict[tuple[int, int], np.ndarray]:
    """Per month: median of linear power in dB (2, H, W), computed directly."""
    power = np.power(10.0, db.astype(np.float64) / 10.0)
    return {m: 10 * np.log10(np.nanmedian(power[idx], axis=0)) for m, idx in MONTHS.items()}


def scene_images(path: Path) -> dict[tuple[int, int], np.ndarray]:
    scene = load_scene(path)
    images = scene.read_images()
    return {(d.year, d.month): images[t] for t, d in enumerate(scene.dates) if not scene.missing[t]}


def assert_composites(path: Path, db: np.ndarray, atol: float = 0.01) -> None:
    scene = load_scene(path)
    assert [(d.year, d.month) for d in scene.dates] == [(2021, 1), (2021, 2), (2021, 3), (2021, 4)]
    assert scene.missing.tolist() == [False, False, True, False]
    got = scene_images(path)
    for month, want in expected_composites(db).items():
        np.testing.assert_allclose(got[month], want, atol=atol, err_msg=str(month))


@pytest.fixture(scope="module")
def db() -> np.ndarray:
    return backscatter_db(TIMES, SIZE, seed=1)


def test_packed_netcdf_cube_with_a_crs_variable_gives_monthly_median_composites(db: np.ndarray, tmp_path: Path) -> None:
    dataset = cube_dataset(db, TIMES)
    path = tmp_path / "openEO.nc"
    dataset.to_netcdf(path, encoding=pack_int16(dataset, ("S1-SIGMA0-VV", "S1-SIGMA0-VH")))
    assert main(["stack", str(path), "--out", str(tmp_path / "scene")]) == 0
    assert_composites(tmp_path / "scene", db)
    assert load_scene(tmp_path / "scene").grid.crs == CUBE_CRS


def test_cube_with_a_bands_dimension_in_linear_power(db: np.ndarray, tmp_path: Path) -> None:
    dataset = cube_dataset(np.power(10.0, db / 10.0).astype(np.float32), TIMES, names=("vv", "vh"), bands_dim=True)
    dataset.to_netcdf(tmp_path / "cube.nc")
    assert main(["stack", str(tmp_path / "cube.nc"), "--out", str(tmp_path / "scene")]) == 0
    assert_composites(tmp_path / "scene", db)


def test_zarr_store(db: np.ndarray, tmp_path: Path) -> None:
    cube_dataset(db, TIMES).chunk({"t": 1, "y": 16, "x": 16}).to_zarr(tmp_path / "cube.zarr")
    assert main(["stack", str(tmp_path / "cube.zarr"), "--out", str(tmp_path / "scene"), "--block", "16"]) == 0
    assert_composites(tmp_path / "scene", db)


def test_in_memory_dataset_writes_the_same_scene(db: np.ndarray, tmp_path: Path) -> None:
    # what odc-stac / stackstac give a notebook: dims time, y, x, a spatial_ref coordinate, lower-case names
    dataset = cube_dataset(db, TIMES, names=("sigma0_vv", "sigma0_vh")).drop_vars("crs").rename({"t": "time"})
    for name in ("sigma0_vv", "sigma0_vh"):
        dataset[name].attrs.pop("grid_mapping")
    dataset = dataset.rio.write_crs(CUBE_CRS)
    out = stack_cube(dataset, tmp_path / "scene", progress=False)
    assert_composites(out, db)


def test_composites_from_a_cube_equal_those_from_the_same_acquisitions_as_geotiffs(db: np.ndarray, tmp_path: Path) -> None:
    cube_dataset(db, TIMES).to_netcdf(tmp_path / "cube.nc")
    write_geotiffs(tmp_path / "tifs", db, TIMES)
    # the cube's own grid, and another zone's at the same pixel size (downsampled, GDAL's bilinear kernel differs
    # between a WarpedVRT's windowed reads and rasterio.warp.reproject by up to ~0.2 dB at 20 -> 25 m)
    for grid in ([], ["--crs", "EPSG:32632", "--resolution", "20"]):
        assert main(["stack", str(tmp_path / "cube.nc"), "--out", str(tmp_path / "from_cube"), "--overwrite", *grid]) == 0
        assert main(["stack", str(tmp_path / "tifs"), "--out", str(tmp_path / "from_tifs"), "--overwrite", *grid]) == 0
        cube, tifs = scene_images(tmp_path / "from_cube"), scene_images(tmp_path / "from_tifs")
        assert cube.keys() == tifs.keys()
        for month in cube:
            both = np.isfinite(cube[month]) & np.isfinite(tifs[month])
            assert both.mean() > 0.8 and np.array_equal(np.isfinite(cube[month]), np.isfinite(tifs[month]))
            assert np.abs(cube[month][both] - tifs[month][both]).max() < 0.01, (grid, month)


def test_gfmap_uint16_packing_is_decoded_and_its_nodata_codes_are_nan(db: np.ndarray, tmp_path: Path,
                                                                        capsys: pytest.CaptureFixture[str]) -> None:
    dn = gfmap_dn(db)
    dn[:, :, :5, :5] = 0  # no data (GFMap writes 0 and 65535)
    dn[:, :, -5:, -5:] = 65535
    dataset = cube_dataset(dn, TIMES)
    path = tmp_path / "gfmap.nc"
    dataset.to_netcdf(path)  # uint16 (the real sample stores int16 with _Unsigned: its walk reads that form)
    assert main(["stack", str(path), "--out", str(tmp_path / "scene")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and str(path) in err and "--units gfmap-uint16" in err
    assert main(["stack", str(path), "--out", str(tmp_path / "scene"), "--units", "gfmap-uint16"]) == 0
    decoded = 20 * np.log10(dn.astype(np.float64)) - 83
    decoded[(dn == 0) | (dn == 65535)] = np.nan
    got = scene_images(tmp_path / "scene")
    for month, want in expected_composites(decoded).items():
        assert np.isnan(got[month][:, :5, :5]).all() and np.isnan(got[month][:, -5:, -5:]).all()
        np.testing.assert_allclose(got[month], want, atol=0.01)
    np.testing.assert_allclose(got[(2021, 1)][:, 10:20, 10:20], expected_composites(db)[(2021, 1)][:, 10:20, 10:20],
                               atol=0.3)  # DN rounding: 20 log10(1 +- 0.5/DN) at DN ~ 4000-20000


def _bad_cube(db: np.ndarray, problem: str) -> xr.Dataset:
    dataset = cube_dataset(db, TIMES)
    if problem == "no CRS":
        dataset = dataset.drop_vars("crs")
        for name in dataset.data_vars:
            dataset[name].attrs.pop("grid_mapping")
    elif problem == "no VV/VH variable":
        dataset = dataset.rename({"S1-SIGMA0-VV": "B04", "S1-SIGMA0-VH": "B08"})
    elif problem == "VV only":
        dataset = dataset.drop_vars("S1-SIGMA0-VH")
    return dataset


@pytest.mark.parametrize(("problem", "says"), [("no CRS", "has no CRS"), ("no VV/VH variable", "has no VV variable"),
                                               ("VV only", "--bands VV")])
def test_bad_cube_is_one_line_naming_the_file(db: np.ndarray, tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                              problem: str, says: str) -> None:
    path = tmp_path / "bad.nc"
    _bad_cube(db, problem).to_netcdf(path)
    assert main(["stack", str(path), "--out", str(tmp_path / "scene")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith(f"tropicrop: error: {path}"), err
    assert says in err
    assert not (tmp_path / "scene").exists()


def test_unreadable_cube_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "truncated.nc"
    path.write_bytes(b"CDF\x01 not really")
    assert main(["stack", str(path), "--out", str(tmp_path / "scene")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "not a readable netCDF/Zarr cube" in err


def test_describe_refuses_two_variables_for_one_polarisation(db: np.ndarray, tmp_path: Path) -> None:
    dataset = cube_dataset(db, TIMES)
    dataset["VV_count"] = dataset["S1-SIGMA0-VV"]
    with pytest.raises(StackError, match="several VV variables"):
        stack_cube(dataset, tmp_path / "scene", progress=False)


def test_one_polarisation_of_a_cube_with_bands(db: np.ndarray, tmp_path: Path) -> None:
    dataset = cube_dataset(db, TIMES).drop_vars("S1-SIGMA0-VV")
    with pytest.raises(StackError, match="--bands VH"):
        stack_cube(dataset, tmp_path / "scene", progress=False)
    scene = load_scene(stack_cube(dataset, tmp_path / "scene", bands=["VH"], progress=False))
    assert list(scene.bands) == ["VH"]
    np.testing.assert_allclose(scene_images(tmp_path / "scene")[(2021, 1)][0], expected_composites(db)[(2021, 1)][1],
                               atol=0.01)
