"""``tropicrop stack``: per-acquisition files or STAC JSON -> one composite per month on a target grid."""

from __future__ import annotations

import datetime as dt
import warnings
from pathlib import Path

import geopandas as gpd
import numpy as np
import pytest
import rasterio
import yaml
from rasterio.features import rasterize
from shapely.geometry import box

from s1_files import (
    TARGET_CRS,
    Spec,
    reprojected_power,
    target_transform,
    write_acquisition,
    write_item_collection,
    write_like,
)
from tropicrop.cli import main
from tropicrop.errors import StackError
from tropicrop.io.acquisitions import find_acquisitions, to_linear_power
from tropicrop.io.stack import nanmedian_first_axis, stack
from tropicrop.scene import load_scene
from tropicrop.windows.dates import target_window

SIZE = 48
CRSS = ("EPSG:32722", "EPSG:32723", "EPSG:4326")


def at(month: int, day: int) -> dt.datetime:
    return dt.datetime(2019, month, day, 8, 30, 12)


# Jan: 3 acquisitions, Feb: none, Mar: 2, Apr: 4; every CRS and both layouts appear within a month.
SPECS = [
    Spec(at(1, 5), "EPSG:32722", "dual"), Spec(at(1, 17), "EPSG:32723", "pair"), Spec(at(1, 29), "EPSG:4326", "pair"),
    Spec(at(3, 12), "EPSG:4326", "dual"), Spec(at(3, 24), "EPSG:32722", "pair"),
    Spec(at(4, 5), "EPSG:32723", "dual"), Spec(at(4, 11), "EPSG:32722", "pair"), Spec(at(4, 17), "EPSG:4326", "pair"),
    Spec(at(4, 29), "EPSG:32722", "dual"),
]
MONTH_OF = {1: 0, 3: 2, 4: 3}  # scene date index of each month with acquisitions


@pytest.fixture(scope="module")
def acquisitions(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[list[Path]], Path]:
    root = tmp_path_factory.mktemp("s1")
    files = [write_acquisition(root / "downloads", s, SIZE, seed=i) for i, s in enumerate(SPECS)]
    return root / "downloads", files, write_like(root / "like.tif", SIZE)


def interior(valid: np.ndarray, margin: int = 2) -> np.ndarray:
    """Pixels at least ``margin`` pixels away from the grid border and from any pixel without data."""
    inner = np.zeros_like(valid)
    inner[margin:-margin, margin:-margin] = True
    ok = valid.copy()
    for dr in range(-margin, margin + 1):
        for dc in range(-margin, margin + 1):
            ok &= np.roll(valid, (dr, dc), axis=(0, 1))
    return ok & inner


def direct_composite(files: list[list[Path]], method: str) -> np.ndarray:
    power = np.stack([reprojected_power(f, SIZE) for f in files])  # (k, 2, H, W), time order
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        if method == "median":
            linear = np.nanmedian(power, axis=0)
        elif method == "mean":
            linear = np.nanmean(power, axis=0)
        else:
            first = np.argmax(np.isfinite(power), axis=0)
            linear = np.take_along_axis(power, first[None], axis=0)[0]
    return (10 * np.log10(linear)).astype(np.float32)


@pytest.mark.parametrize("method", ["median", "mean", "first"])
def test_composites_equal_a_direct_computation_on_the_reprojected_inputs(
        acquisitions: tuple[Path, list[list[Path]], Path], tmp_path: Path, method: str) -> None:
    folder, files, like = acquisitions
    out = stack([folder], tmp_path / "scene", like=like, start="2019-01", end="2019-04", composite=method,
                progress=False, block=32)  # blocks smaller than the grid: the stitching is checked too
    scene = load_scene(out)
    assert scene.dates == [dt.date(2019, m, 15) for m in (1, 2, 3, 4)]
    assert scene.missing.tolist() == [False, True, False, False]
    images = scene.read_images()
    for month, index in MONTH_OF.items():
        mine = [f for f, s in zip(files, SPECS, strict=True) if s.time.month == month]
        expected = direct_composite(mine, method)
        ok = interior(np.isfinite(expected).all(axis=0))
        assert ok.mean() > 0.7
        np.testing.assert_allclose(images[index][:, ok], expected[:, ok], atol=0.01)
    assert np.isnan(images[1]).all()


@pytest.mark.parametrize("method", ["median", "first"])  # first: the items must stay in time order
def test_stac_item_collection_gives_the_folder_result(acquisitions: tuple[Path, list[list[Path]], Path],
                                                       tmp_path: Path, method: str) -> None:
    _, files, like = acquisitions
    # STAC assets are single-band files: the acquisitions written as _VV/_VH pairs, in a folder and as items
    pairs = []
    for spec, f in zip(SPECS, files, strict=True):
        if len(f) == 2:
            pairs.append((spec.time, f))
    pair_folder = tmp_path / "pairs"
    pair_folder.mkdir()
    for _, f in pairs:
        for p in f:
            (pair_folder / p.name).symlink_to(p)
    linked = [(time, [pair_folder / p.name for p in f]) for time, f in pairs]
    collection = write_item_collection(tmp_path / "items.json", linked[::-1])  # items listed newest first
    from_files = load_scene(stack([pair_folder], tmp_path / "a", like=like, composite=method, progress=False)).read_images()
    from_stac = load_scene(stack([collection], tmp_path / "b", like=like, composite=method, progress=False)).read_images()
    assert from_files.shape == from_stac.shape
    assert np.isnan(from_files[1]).all() and np.isnan(from_stac[1]).all()  # February: no acquisition
    from_files, from_stac = from_files[[0, 2, 3]], from_stac[[0, 2, 3]]
    ok = interior(np.isfinite(from_files).all(axis=(0, 1)))
    assert ok.mean() > 0.7
    np.testing.assert_allclose(from_stac[:, :, ok], from_files[:, :, ok], atol=0.01)


@pytest.mark.parametrize("k", [1, 2, 3, 4, 5])
def test_fast_median_equals_numpy_nanmedian(k: int) -> None:
    rng = np.random.default_rng(k)
    power = rng.lognormal(size=(k, 2, 30, 30)).astype(np.float32)
    power[rng.random(power.shape) < 0.3] = np.nan  # some pixels without any valid value
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        expected = np.nanmedian(power, axis=0)
    np.testing.assert_array_equal(nanmedian_first_axis(power), expected)


def test_block_size_does_not_change_the_composite(acquisitions: tuple[Path, list[list[Path]], Path],
                                                   tmp_path: Path) -> None:
    folder, _, like = acquisitions
    small = load_scene(stack([folder], tmp_path / "a", like=like, block=16, progress=False)).read_images()
    whole = load_scene(stack([folder], tmp_path / "b", like=like, block=512, progress=False)).read_images()
    np.testing.assert_array_equal(small, whole)


def test_missing_month_is_padding_in_the_windows(acquisitions: tuple[Path, list[list[Path]], Path], tmp_path: Path) -> None:
    folder, _, like = acquisitions
    scene = load_scene(stack([folder], tmp_path / "s", like=like, progress=False))
    entry = yaml.safe_load((scene.root / "scene.yaml").read_text())["dates"][1]
    assert entry == {"date": "2019-02-15", "image": None}
    assert not (scene.root / "images" / "20190215.tif").exists()
    win = target_window(scene.dates, scene.dates[-1], 12, scene.missing)
    assert win.valid[-4:].tolist() == [True, False, True, True]


def test_grid_from_crs_resolution_and_bounds_in_another_utm_zone(acquisitions: tuple[Path, list[list[Path]], Path],
                                                                  tmp_path: Path) -> None:
    folder, _, _ = acquisitions
    with rasterio.open(next(folder.glob("*.tif"))) as ds:
        from rasterio.warp import transform_bounds
        left, bottom, right, top = transform_bounds(ds.crs, "EPSG:32723", *ds.bounds)
    cx, cy = round((left + right) / 2, -1), round((bottom + top) / 2, -1)
    bounds = (cx - 300, cy - 200, cx + 300, cy + 200)
    scene = load_scene(stack([folder], tmp_path / "s", crs="EPSG:32723", resolution=30, bounds=bounds, progress=False))
    assert scene.grid.crs == rasterio.crs.CRS.from_epsg(32723)
    assert (scene.grid.width, scene.grid.height) == (20, 14) and scene.grid.res == (30.0, 30.0)
    assert np.isfinite(scene.read_images(dates=[scene.dates[0]])).all()


def test_units_convert_to_linear_power_and_fill_becomes_nan() -> None:
    np.testing.assert_allclose(to_linear_power(np.array([-10.0, 0.0, np.nan]), "dB"), [0.1, 1.0, np.nan])
    np.testing.assert_allclose(to_linear_power(np.array([0.5, 0.0, 2.0]), "amplitude"), [0.25, np.nan, 4.0])
    np.testing.assert_allclose(to_linear_power(np.array([0.05, 0.0, -1.0]), "linear"), [0.05, np.nan, np.nan])


def test_date_from_tiff_tag_and_forced_units(tmp_path: Path) -> None:
    [path] = write_acquisition(tmp_path / "raw", Spec(at(6, 2), "EPSG:32722", "dual"), SIZE, seed=3)
    renamed = path.with_name("scene_a.tif")
    path.rename(renamed)
    with rasterio.open(renamed, "r+") as ds:
        ds.update_tags(TIFFTAG_DATETIME="2019:06:02 08:30:12")
    [acq] = find_acquisitions([tmp_path / "raw"])
    assert acq.time == at(6, 2) and acq.units == "dB"
    assert find_acquisitions([renamed], units="linear")[0].units == "linear"


def test_other_product_names_and_another_utm_zone_are_read(tmp_path: Path) -> None:
    # SNAP-style export names (not the ESA product name) that keep the _YYYYMMDDTHHMMSS_ pattern, in UTM 23S
    specs = [Spec(at(7, 3), "EPSG:32723", "dual"), Spec(at(7, 15), "EPSG:32723", "dual")]
    for i, spec in enumerate(specs):
        write_acquisition(tmp_path / "snap", spec, SIZE, seed=10 + i, name_style="other")
    found = find_acquisitions([tmp_path / "snap"])
    assert [a.time for a in found] == [s.time for s in specs]
    assert all(a.units == "dB" and a.vv.band == 1 and a.vh.band == 2 for a in found)
    scene = load_scene(stack([tmp_path / "snap"], tmp_path / "s", progress=False))  # grid: the first file's
    assert scene.grid.crs == rasterio.crs.CRS.from_epsg(32723) and scene.dates == [dt.date(2019, 7, 15)]


def test_parcels_become_labels_and_split_of_the_scene(acquisitions: tuple[Path, list[list[Path]], Path],
                                                      tmp_path: Path) -> None:
    folder, _, like = acquisitions
    t = target_transform(SIZE)
    x0, y0 = t.c, t.f
    fields = [box(x0 + 40, y0 - 400, x0 + 400, y0 - 40), box(x0 + 500, y0 - 900, x0 + 900, y0 - 500)]
    parcels = gpd.GeoDataFrame({"crop_jan": ["Soybean", "Maize"], "crop_apr": ["Maize", None],
                                "split": ["train", "test"]}, geometry=fields, crs=TARGET_CRS).to_crs("EPSG:4326")
    parcels.to_file(tmp_path / "parcels.gpkg")
    out = stack([folder], tmp_path / "s", like=like, parcels=tmp_path / "parcels.gpkg",
                label_columns={"2019-01": "crop_jan", "2019-04": "crop_apr"}, split_column="split", progress=False)
    scene = load_scene(out, check_pixels=True)
    assert scene.classes == {1: "Maize", 2: "Soybean"}
    assert scene.labelled_dates == [dt.date(2019, 1, 15), dt.date(2019, 4, 15)]
    labels = scene.read_labels()
    expected = rasterize([(g, c) for g, c in zip(fields, (2, 1), strict=True)], out_shape=(SIZE, SIZE), transform=t)
    # the parcels went through EPSG:4326 and back: compare away from their outlines
    assert np.mean(labels[0] == expected) > 0.97
    assert set(np.unique(labels[1])) == {0, 1}
    assert set(np.unique(scene.read_split())) == {0, 1, 2}


def test_label_column_of_a_month_without_acquisition_is_refused(acquisitions: tuple[Path, list[list[Path]], Path],
                                                                 tmp_path: Path) -> None:
    folder, _, like = acquisitions
    gpd.GeoDataFrame({"crop": ["Soybean"]}, geometry=[box(0, 0, 1, 1)], crs=TARGET_CRS).to_file(tmp_path / "p.gpkg")
    with pytest.raises(StackError, match="2019-02, which has no acquisition"):
        stack([folder], tmp_path / "s", like=like, parcels=tmp_path / "p.gpkg", label_columns={"2019-02": "crop"},
              progress=False)
    assert not (tmp_path / "s").exists()


# ------------------------------------------------------------------------------------------ bad input, via the CLI
def _run(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    code = main(args)
    err = capsys.readouterr().err.strip()
    return code, err


def _bad_folder(tmp_path: Path, problem: str) -> tuple[list[str], str]:
    folder = tmp_path / "bad"
    good = write_acquisition(folder, Spec(at(1, 5), "EPSG:32722", "pair"), SIZE, seed=1)
    if problem == "no date":
        [path] = write_acquisition(tmp_path / "x", Spec(at(1, 9), "EPSG:32722", "dual"), SIZE, seed=2)
        culprit = folder / "my_scene_vv_vh.tif"
        path.rename(culprit)
        return [str(folder)], culprit.name
    if problem == "mixed polarisations":
        culprit = good[1].with_name(good[1].name.replace("_VH", "_HH"))
        good[1].rename(culprit)
        return [str(folder)], culprit.name
    if problem == "no VH partner":
        good[1].unlink()
        return [str(folder)], good[0].name
    if problem == "no overlap":
        far = write_acquisition(tmp_path / "far", Spec(at(1, 9), "EPSG:32722", "dual"), SIZE, seed=5)[0]
        with rasterio.open(far, "r+") as ds:
            ds.transform = ds.transform * rasterio.Affine.translation(100000, 0)
        return [str(folder), str(far)], far.name
    if problem == "STAC item without VH":
        path = write_item_collection(tmp_path / "items.json", [(at(1, 5), good)], drop_vh=True)
        return [str(path)], "no VH asset"
    raise AssertionError(problem)


@pytest.mark.parametrize("problem", ["no date", "mixed polarisations", "no VH partner", "no overlap", "STAC item without VH"])
def test_bad_input_is_one_line_naming_the_file(tmp_path: Path, capsys: pytest.CaptureFixture[str], problem: str) -> None:
    sources, culprit = _bad_folder(tmp_path, problem)
    like = write_like(tmp_path / "like.tif", SIZE)
    code, err = _run(["stack", *sources, "--out", str(tmp_path / "scene"), "--like", str(like)], capsys)
    assert code == 2
    assert len(err.splitlines()) == 1 and err.startswith("tropicrop: error: "), err
    assert culprit in err
    keyword = {"no date": "no acquisition date", "mixed polarisations": "mixed polarisations",
               "no VH partner": "no VH partner", "no overlap": "does not overlap", "STAC item without VH": "items.json"}
    assert keyword[problem] in err
    assert not (tmp_path / "scene").exists() and not list(tmp_path.glob(".scene.*"))


def test_values_that_are_neither_db_nor_power_ask_for_units(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    [path] = write_acquisition(tmp_path / "dn", Spec(at(1, 5), "EPSG:32722", "dual"), SIZE, seed=1)
    with rasterio.open(path, "r+") as ds:
        ds.write((ds.read() + 300).astype(np.float32))  # digital numbers, not calibrated backscatter
    code, err = _run(["stack", str(path), "--out", str(tmp_path / "s")], capsys)
    assert code == 2 and path.name in err and "--units" in err


def test_cli_writes_a_scene_and_reports_the_missing_month(acquisitions: tuple[Path, list[list[Path]], Path], tmp_path: Path,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    folder, _, like = acquisitions
    code = main(["stack", str(folder), "--out", str(tmp_path / "s"), "--like", str(like), "--start", "2019-01",
                 "--end", "2019-05", "--composite", "mean"])
    out = capsys.readouterr().out
    assert code == 0 and "no acquisition (padding): 2019-02-15, 2019-05-15" in out
    assert load_scene(tmp_path / "s").missing.tolist() == [False, True, False, False, True]
    assert main(["inspect", str(tmp_path / "s")]) == 0  # a scene without classes prints too
    assert "2019-02-15     no acquisition (padding)" in capsys.readouterr().out
