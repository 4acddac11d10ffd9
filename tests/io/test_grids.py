"""The target grid for inputs in degrees: the UTM zone of their centre, pixels in metres; inspect's bounds."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pytest
from rasterio.crs import CRS

from cubes import backscatter_db, cube_dataset
from s1_files import Spec, write_acquisition
from tropicrop.cli import main
from tropicrop.io import stack_cube
from tropicrop.io.grids import utm_crs
from tropicrop.io.stack import stack
from tropicrop.scene import load_scene

SIZE = 32
TIMES = [dt.datetime(2019, 1, 5), dt.datetime(2019, 1, 17)]


@pytest.fixture(scope="module")
def geographic(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("geo") / "raw"
    for seed, time in enumerate(TIMES):  # 1.5e-4 degree pixels around 48.0 W, 15.1 S (UTM 22S)
        write_acquisition(folder, Spec(time, "EPSG:4326", "dual"), SIZE, seed)
    return folder


@pytest.mark.parametrize(("lon", "lat", "epsg"), [(-48.02, -15.1, 32722), (5.3, 50.6, 32631), (-179.9, 10.0, 32601),
                                                  (179.9, -10.0, 32760), (0.0, 0.0, 32631)])
def test_utm_zone_of_a_point(lon: float, lat: float, epsg: int) -> None:
    assert utm_crs(lon, lat) == CRS.from_epsg(epsg)


def test_files_in_degrees_default_to_their_centres_utm_zone_in_metres(geographic: Path, tmp_path: Path) -> None:
    scene = load_scene(stack([geographic], tmp_path / "scene", progress=False))
    assert scene.grid.crs == CRS.from_epsg(32722)
    # 1.5e-4 degree of longitude at 15.1 S: 111.3 km x cos(15.1) x 1.5e-4 = 16.1 m
    assert scene.grid.transform.a == pytest.approx(16.1, abs=0.05) and scene.grid.transform.e == -scene.grid.transform.a
    assert np.isfinite(scene.read_images()).mean() > 0.9


def test_crs_and_resolution_still_win(geographic: Path, tmp_path: Path) -> None:
    scene = load_scene(stack([geographic], tmp_path / "a", crs="EPSG:32723", progress=False))
    assert scene.grid.crs == CRS.from_epsg(32723) and scene.grid.transform.a == pytest.approx(16.1, abs=0.05)
    scene = load_scene(stack([geographic], tmp_path / "b", resolution=20.0, progress=False))
    assert scene.grid.crs == CRS.from_epsg(32722) and scene.grid.transform.a == 20.0
    scene = load_scene(stack([geographic], tmp_path / "c", crs="EPSG:4326", progress=False))
    assert scene.grid.crs == CRS.from_epsg(4326) and scene.grid.transform.a == pytest.approx(1.5e-4)


def test_geographic_cube_defaults_to_utm(tmp_path: Path) -> None:
    db = backscatter_db(TIMES, SIZE)
    dataset = cube_dataset(db, TIMES, names=("VV", "VH")).drop_vars("crs").rename({"x": "lon", "y": "lat"})
    dataset = dataset.assign_coords(lon=5.30 + 1e-4 * (np.arange(SIZE) + 0.5), lat=50.60 - 1e-4 * (np.arange(SIZE) + 0.5))
    for name in ("VV", "VH"):
        dataset[name].attrs.pop("grid_mapping")
    scene = load_scene(stack_cube(dataset.rio.write_crs("EPSG:4326"), tmp_path / "scene", progress=False))
    assert scene.grid.crs == CRS.from_epsg(32631)
    assert scene.grid.transform.a == pytest.approx(1e-4 * 111320 * np.cos(np.radians(50.6)), abs=0.1)  # 7.1 m
    assert np.isfinite(scene.read_images()).mean() > 0.8


def test_inspect_prints_bounds_with_the_precision_of_the_crs(geographic: Path, tmp_path: Path,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    stack([geographic], tmp_path / "deg", crs="EPSG:4326", progress=False)
    stack([geographic], tmp_path / "utm", progress=False)
    assert main(["inspect", str(tmp_path / "deg")]) == 0
    line = next(x for x in capsys.readouterr().out.splitlines() if x.startswith("bounds"))
    left, bottom, right, top = (float(v) for v in line.split(maxsplit=1)[1].split(","))
    assert left < right and bottom < top and len(line.split(",")[0].split(".")[1]) == 6  # -48.0xxxxx
    assert main(["inspect", str(tmp_path / "utm")]) == 0
    line = next(x for x in capsys.readouterr().out.splitlines() if x.startswith("bounds"))
    assert len(line.split(",")[0].split(".")[1]) == 1
