"""Acquisition dates from file names as the tools write them: ESA/HyP3 product names, openEO, Earth Engine."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pytest
import rasterio

from s1_files import Spec, write_acquisition
from tropicrop.cli import main
from tropicrop.errors import StackError
from tropicrop.io.acquisitions import find_acquisitions, time_from_name
from tropicrop.io.stack import stack
from tropicrop.scene import load_scene

SIZE = 24


@pytest.mark.parametrize(("name", "expected"), [
    ("S1A_IW_GRDH_1SDV_20190115T083012_20190116T000037_025_02C_AB.tif", dt.datetime(2019, 1, 15, 8, 30, 12)),
    ("S1A_IW_20190115T083012_DVP_RTC20_G_gpuned_4A2F_VV.tif", dt.datetime(2019, 1, 15, 8, 30, 12)),
    ("openEO_2023-04-03Z.tif", dt.datetime(2023, 4, 3)),
    ("openEO_2023-04-03T10:15:00Z.tif", dt.datetime(2023, 4, 3, 10, 15)),
    ("S1_20230403.tif", dt.datetime(2023, 4, 3)),
    ("s1_grd_2023_04_03_VV.tif", dt.datetime(2023, 4, 3)),
    ("COPERNICUS_S1_GRD_2023-04-03.tif", dt.datetime(2023, 4, 3)),
    ("S1_20230403_20230403.tif", dt.datetime(2023, 4, 3)),  # the same date twice is one date
    ("tile_031_orbit_12345678.tif", None),  # digits that are no date
    ("my_scene.tif", None),
])
def test_one_date_in_the_usual_forms_is_read_from_the_name(name: str, expected: dt.datetime | None) -> None:
    assert time_from_name(name) == expected


def test_two_dates_are_refused_naming_both_and_the_option() -> None:
    with pytest.raises(StackError, match=r"2023-04-01 and 2023-04-30.*--date-pattern"):
        time_from_name("S1_20230401_20230430.tif")
    assert time_from_name("S1_20230401_20230430.tif", r"_\d{8}_(\d{8})") == dt.datetime(2023, 4, 30)


def test_date_pattern_reads_any_other_naming() -> None:
    assert time_from_name("run7_acq-20230403-x.tif", r"acq-(\d{8})") == dt.datetime(2023, 4, 3)
    with pytest.raises(StackError, match="does not match"):
        time_from_name("S1_nothing.tif", r"acq-(\d{8})")


@pytest.mark.parametrize(("style", "stem"), [("openEO", "openEO_{:%Y-%m-%d}Z"), ("Earth Engine", "S1_{:%Y%m%d}")])
def test_openeo_and_earth_engine_named_files_stack(tmp_path: Path, style: str, stem: str) -> None:
    times = [dt.datetime(2023, 4, 3), dt.datetime(2023, 4, 15), dt.datetime(2023, 5, 9)]
    for seed, time in enumerate(times):
        [path] = write_acquisition(tmp_path / "raw", Spec(time, "EPSG:32722", "dual"), SIZE, seed)
        path.rename(tmp_path / "raw" / f"{stem.format(time)}.tif")
    assert [a.time for a in find_acquisitions([tmp_path / "raw"])] == times
    scene = load_scene(stack([tmp_path / "raw"], tmp_path / "scene", progress=False))
    assert scene.dates == [dt.date(2023, 4, 15), dt.date(2023, 5, 15)], style


def test_interval_composite_names_need_the_date_pattern(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    [path] = write_acquisition(tmp_path / "raw", Spec(dt.datetime(2023, 4, 1), "EPSG:32722", "dual"), SIZE, 0)
    path = path.rename(tmp_path / "raw" / "S1_20230401_20230430.tif")
    assert main(["stack", str(tmp_path / "raw"), "--out", str(tmp_path / "s")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and path.name in err and "2023-04-30" in err and "--date-pattern" in err
    assert main(["stack", str(tmp_path / "raw"), "--out", str(tmp_path / "s"), "--date-pattern", r"S1_(\d{8})_"]) == 0
    assert load_scene(tmp_path / "s").dates == [dt.date(2023, 4, 15)]


@pytest.mark.parametrize("pattern", [r"\d{8}", r"(\d{4})(\d{4})", "(unclosed"])
def test_date_pattern_without_exactly_one_group_is_refused(tmp_path: Path, pattern: str) -> None:
    with pytest.raises(StackError, match="--date-pattern"):
        find_acquisitions([tmp_path], date_pattern=pattern)


def test_packed_integer_geotiff_names_gfmap_units_and_reads_with_them(tmp_path: Path,
                                                                       capsys: pytest.CaptureFixture[str]) -> None:
    [path] = write_acquisition(tmp_path / "raw", Spec(dt.datetime(2023, 4, 3), "EPSG:32722", "dual"), SIZE, 0)
    with rasterio.open(path) as ds:
        db, profile = ds.read(), ds.profile
    dn = np.round(np.power(10.0, (db + 83.0) / 20.0)).astype(np.uint16)  # the GFMap packing
    packed = tmp_path / "gfmap" / "S1_20230403.tif"
    packed.parent.mkdir()
    with rasterio.open(packed, "w", **{**profile, "dtype": "uint16", "nodata": 0}) as ds:
        ds.write(dn)
        ds.descriptions = ("VV", "VH")
    assert main(["stack", str(packed.parent), "--out", str(tmp_path / "s")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and packed.name in err and "--units gfmap-uint16" in err
    assert main(["stack", str(packed.parent), "--out", str(tmp_path / "s"), "--units", "gfmap-uint16"]) == 0
    images = load_scene(tmp_path / "s").read_images()
    assert -12 < np.nanmedian(images[:, 0]) < -6 and -19 < np.nanmedian(images[:, 1]) < -13


def test_geotiff_without_crs_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "raw" / "openEO_2023-04-03Z.tif"
    path.parent.mkdir()
    with rasterio.open(path, "w", driver="GTiff", width=8, height=8, count=2, dtype="float32") as ds:
        ds.write(np.full((2, 8, 8), -10.0, dtype=np.float32))
    assert main(["stack", str(path.parent), "--out", str(tmp_path / "s")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and path.name in err and "has no CRS" in err
