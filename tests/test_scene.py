"""Loading, reading and validating scenes in the on-disk format (scene.yaml + GeoTIFFs + vectors)."""

from __future__ import annotations

import datetime as dt
import shutil
from collections.abc import Callable
from pathlib import Path

import geopandas as gpd
import numpy as np
import pytest
import rasterio
import yaml
from affine import Affine
from rasterio.windows import Window
from shapely.geometry import box

from tiny import CLASSES, DATES, TRANSFORM, drop_image, tiny_arrays
from tropicrop.errors import SceneError
from tropicrop.io import write_geotiff
from tropicrop.io.manifest import read_manifest, write_manifest
from tropicrop.io.rasters import RasterSource
from tropicrop.scene import SceneWarning, load_scene, to_db

MakeScene = Callable[..., Path]


def edit_manifest(scene_dir: Path, **changes: object) -> None:
    path = scene_dir / "scene.yaml"
    data = yaml.safe_load(path.read_text())
    for key, value in changes.items():
        if value is None:
            data.pop(key, None)
        else:
            data[key] = value
    path.write_text(yaml.safe_dump(data, sort_keys=False))


def assert_names(exc: pytest.ExceptionInfo[SceneError], path: Path, *words: str) -> None:
    message = str(exc.value)
    assert str(path) in message, message
    for word in words:
        assert word.lower() in message.lower(), message


# ------------------------------------------------------------------------------------------ good scenes
def test_written_scene_loads_with_grid_dates_and_labels(make_scene: MakeScene) -> None:
    arrays = tiny_arrays()
    scene = load_scene(make_scene())
    assert scene.grid.shape == (16, 20)
    assert scene.grid.crs is not None and scene.grid.crs.to_epsg() == 32723
    assert scene.grid.res == (10.0, 10.0)
    assert scene.dates == DATES
    assert scene.labelled_dates == DATES[2:]
    np.testing.assert_allclose(scene.read_images(), arrays["images"])
    np.testing.assert_array_equal(scene.read_labels(), np.stack([arrays["labels"][d] for d in DATES[2:]]))
    np.testing.assert_array_equal(scene.read_split(), arrays["split"])


def test_read_window_returns_the_sub_array(make_scene: MakeScene) -> None:
    arrays = tiny_arrays()
    scene = load_scene(make_scene())
    window = Window(col_off=3, row_off=5, width=7, height=4)
    images = scene.read_images(window, dates=[DATES[1]])
    np.testing.assert_allclose(images[0], arrays["images"][1, :, 5:9, 3:10])
    np.testing.assert_array_equal(scene.read_split(window), arrays["split"][5:9, 3:10])
    with pytest.raises(ValueError, match="outside"):
        scene.read_images(Window(15, 0, 10, 4))


def test_scene_written_by_hand_following_readme_loads(tmp_path: Path) -> None:
    """Build a scene the way README 'Scene format' tells a user to: GeoTIFFs + a hand-written scene.yaml."""
    (tmp_path / "images").mkdir()
    (tmp_path / "labels").mkdir()
    profile = dict(driver="GTiff", width=12, height=10, crs="EPSG:32723", transform=TRANSFORM)
    for stamp in ("20191012", "20191117"):
        with rasterio.open(tmp_path / "images" / f"{stamp}.tif", "w", count=2, dtype="float32", **profile) as ds:
            ds.write(np.full((2, 10, 12), -11.5, dtype=np.float32))
    with rasterio.open(tmp_path / "labels" / "20191117.tif", "w", count=1, dtype="uint8", **profile) as ds:
        ds.write(np.ones((1, 10, 12), dtype=np.uint8))
    with rasterio.open(tmp_path / "split.tif", "w", count=1, dtype="uint8", **profile) as ds:
        ds.write(np.array([[1] * 6 + [2] * 6] * 10, dtype=np.uint8)[None])
    (tmp_path / "scene.yaml").write_text(
        "name: my-farm\n"
        "bands: [VV, VH]\n"
        "units: dB\n"
        "classes: {1: Soybean, 2: Maize}\n"
        "dates:\n"
        "  - {date: 2019-10-12, image: images/20191012.tif}\n"
        "  - {date: 2019-11-17, image: images/20191117.tif, label: labels/20191117.tif}\n"
        "split: split.tif\n"
    )
    scene = load_scene(tmp_path, check_pixels=True)
    assert scene.name == "my-farm"
    assert scene.labelled_dates == [dt.date(2019, 11, 17)]
    report = scene.validate_pixels()
    assert report.class_counts[dt.date(2019, 11, 17)] == {1: 120}
    assert report.split_counts == {0: 0, 1: 60, 2: 60}


def test_loading_reads_no_more_than_a_small_sample_of_pixels(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A 10 000 x 10 000 scene is described from headers only (plus a small sample for the units check)."""
    profile = dict(driver="GTiff", width=10_000, height=10_000, count=2, dtype="float32", crs="EPSG:32723",
                   transform=TRANSFORM, tiled=True, blockxsize=512, blockysize=512, sparse_ok=True, compress="deflate")
    (tmp_path / "images").mkdir()
    dates = []
    for i in range(3):
        path = tmp_path / "images" / f"d{i}.tif"
        with rasterio.open(path, "w", **profile):
            pass  # sparse: no block is written
        dates.append({"date": f"2020-0{i + 1}-01", "image": f"images/d{i}.tif"})
    (tmp_path / "scene.yaml").write_text(yaml.safe_dump(
        {"bands": ["VV", "VH"], "units": "linear", "classes": {1: "A"}, "dates": dates}))
    reads: list[Window] = []
    original = RasterSource.read

    def spy(self: RasterSource, window: Window | None = None, bands: list[int] | None = None) -> np.ndarray:
        reads.append(window)
        return original(self, window, bands)

    monkeypatch.setattr(RasterSource, "read", spy)
    scene = load_scene(tmp_path)
    assert scene.grid.shape == (10_000, 10_000)
    assert len(reads) == 1 and reads[0].width * reads[0].height <= 256 * 256


def test_vector_labels_and_vector_split_are_rasterised_onto_the_grid(make_scene: MakeScene) -> None:
    scene_dir = make_scene(labels=None, split=None)
    x0, y0 = TRANSFORM.c, TRANSFORM.f
    parcels = gpd.GeoDataFrame(
        {
            "crop_1117": ["Soybean", "maize"],  # names, matched case-insensitively
            "crop_1223": [3, 0],  # or codes, 0 = no reference
            "part": ["train", "test"],
        },
        geometry=[box(x0, y0 - 100, x0 + 100, y0), box(x0 + 100, y0 - 160, x0 + 200, y0)],
        crs="EPSG:32723",
    )
    parcels.to_file(scene_dir / "parcels.gpkg")
    edit_manifest(
        scene_dir,
        labels={"path": "parcels.gpkg", "columns": {"2019-11-17": "crop_1117", "2019-12-23": "crop_1223"}},
        split={"path": "parcels.gpkg", "column": "part"},
    )
    scene = load_scene(scene_dir, check_pixels=True)
    labels = scene.read_labels()
    assert scene.labelled_dates == DATES[2:]
    assert (labels[0, :10, :10] == 1).all() and (labels[0, :16, 10:20] == 2).all()
    assert (labels[0, 10:, :10] == 0).all()
    assert (labels[1, :10, :10] == 3).all() and (labels[1, :, 10:] == 0).all()
    split = scene.read_split()
    assert (split[:10, :10] == 1).all() and (split[:, 10:] == 2).all() and (split[10:, :10] == 0).all()


def test_vector_labels_in_another_crs_are_reprojected(make_scene: MakeScene) -> None:
    scene_dir = make_scene(labels=None)
    x0, y0 = TRANSFORM.c, TRANSFORM.f
    parcels = gpd.GeoDataFrame({"c": ["Maize"]}, geometry=[box(x0, y0 - 160, x0 + 200, y0)], crs="EPSG:32723")
    parcels.to_crs("EPSG:4326").to_file(scene_dir / "parcels.gpkg")
    edit_manifest(scene_dir, labels={"path": "parcels.gpkg", "columns": {"2019-12-23": "c"}})
    labels = load_scene(scene_dir).read_labels()
    assert (labels[0][1:-1, 1:-1] == 2).all()


def test_linear_units_are_converted_to_db_and_nodata_becomes_nan(make_scene: MakeScene) -> None:
    images = np.full((4, 2, 16, 20), 0.1, dtype=np.float32)
    images[0, :, 0, 0] = -1.0
    scene_dir = make_scene(images=images, units="linear")
    edit_manifest(scene_dir, nodata=-1)
    out = load_scene(scene_dir).read_images()
    assert np.isnan(out[0, :, 0, 0]).all()
    np.testing.assert_allclose(out[1], -10.0, atol=1e-5)
    assert np.isnan(to_db(np.array([0.0, -2.0]))).all()


# ------------------------------------------------------------------------------------------ bad input
def test_missing_manifest_names_the_file(tmp_path: Path) -> None:
    with pytest.raises(SceneError) as exc:
        load_scene(tmp_path)
    assert_names(exc, tmp_path / "scene.yaml", "not found")


def test_manifest_that_is_not_yaml_names_the_file_and_line(make_scene: MakeScene) -> None:
    scene_dir = make_scene()
    (scene_dir / "scene.yaml").write_text("name: x\nbands: [VV, VH\nunits: dB\n")
    with pytest.raises(SceneError) as exc:
        load_scene(scene_dir)
    assert_names(exc, scene_dir / "scene.yaml", "not valid yaml", "line")


def test_missing_key_is_named(make_scene: MakeScene) -> None:
    scene_dir = make_scene()
    edit_manifest(scene_dir, bands=None)
    with pytest.raises(SceneError) as exc:
        load_scene(scene_dir)
    assert_names(exc, scene_dir / "scene.yaml", "missing key 'bands'")


def test_unknown_key_suggests_the_close_match(make_scene: MakeScene) -> None:
    scene_dir = make_scene()
    edit_manifest(scene_dir, clases={1: "A"})
    with pytest.raises(SceneError) as exc:
        load_scene(scene_dir)
    assert_names(exc, scene_dir / "scene.yaml", "unknown key 'clases'", "did you mean 'classes'")


def test_missing_image_file_is_named(make_scene: MakeScene) -> None:
    scene_dir = make_scene()
    (scene_dir / "images" / "20191012.tif").unlink()
    with pytest.raises(SceneError) as exc:
        load_scene(scene_dir)
    assert_names(exc, scene_dir / "images" / "20191012.tif", "not found")


@pytest.mark.parametrize("damage", ["truncate", "text"])
def test_truncated_or_non_raster_image_is_named(make_scene: MakeScene, damage: str) -> None:
    scene_dir = make_scene()
    path = scene_dir / "images" / "20191117.tif"
    if damage == "truncate":
        path.write_bytes(path.read_bytes()[:200])
    else:
        path.write_text("this is not a raster\n")
    with pytest.raises(SceneError) as exc:
        load_scene(scene_dir, check_pixels=True)
    assert_names(exc, path)


def test_band_count_differing_from_bands_is_named(make_scene: MakeScene) -> None:
    scene_dir = make_scene()
    edit_manifest(scene_dir, bands=["VV", "VH", "HH"])
    with pytest.raises(SceneError) as exc:
        load_scene(scene_dir)
    assert_names(exc, scene_dir / "images" / "20190918.tif", "2 band(s)", "3")


@pytest.mark.parametrize("what", ["size", "transform", "crs"])
@pytest.mark.parametrize("target", ["images/20191117.tif", "labels/20191223.tif", "split.tif"])
def test_grid_mismatch_between_files_is_named(make_scene: MakeScene, what: str, target: str) -> None:
    scene_dir = make_scene()
    path = scene_dir / target
    with rasterio.open(path) as ds:
        data, crs, transform = ds.read(), ds.crs, ds.transform
    if what == "size":
        data = data[:, :-1]
    elif what == "transform":
        transform = TRANSFORM @ Affine.translation(1, 0)
    else:
        crs = "EPSG:32724"
    write_geotiff(path, data, crs, transform)
    with pytest.raises(SceneError) as exc:
        load_scene(scene_dir)
    assert_names(exc, path, what)


@pytest.mark.parametrize("order", ["unsorted", "duplicated"])
def test_dates_out_of_order_or_duplicated_are_refused(make_scene: MakeScene, order: str) -> None:
    scene_dir = make_scene()
    data = yaml.safe_load((scene_dir / "scene.yaml").read_text())
    if order == "unsorted":
        data["dates"][1], data["dates"][2] = data["dates"][2], data["dates"][1]
    else:
        data["dates"][2]["date"] = data["dates"][1]["date"]
    (scene_dir / "scene.yaml").write_text(yaml.safe_dump(data))
    with pytest.raises(SceneError) as exc:
        load_scene(scene_dir)
    assert_names(exc, scene_dir / "scene.yaml", "twice" if order == "duplicated" else "not in order")


def test_label_code_not_in_classes_is_named(make_scene: MakeScene) -> None:
    labels = {d: np.full((16, 20), 3, dtype=np.uint8) for d in DATES[2:]}
    labels[DATES[3]][4, 4] = 9
    scene_dir = make_scene(labels=labels)
    with pytest.raises(SceneError) as exc:
        load_scene(scene_dir, check_pixels=True)
    assert_names(exc, scene_dir / "labels" / "20191223.tif", "[9]", "not in 'classes'")


def test_nan_and_infinite_pixels_name_the_date_and_count(make_scene: MakeScene) -> None:
    images = tiny_arrays()["images"]
    images[1, 0, 0, :3] = np.nan
    images[1, 1, 5, 5] = np.inf
    scene_dir = make_scene(images=images)
    scene = load_scene(scene_dir)
    with pytest.raises(SceneError) as exc:
        scene.validate_pixels()
    assert_names(exc, scene_dir / "images" / "20191012.tif", "2019-10-12", "4 NaN or infinite")
    with pytest.raises(SceneError):
        scene.read_images(Window(0, 0, 4, 4))  # every read checks too: no silent NaN


@pytest.mark.parametrize("missing", [1, 2])
def test_split_without_train_or_test_pixels_is_refused(make_scene: MakeScene, missing: int) -> None:
    split = np.full((16, 20), 3 - missing, dtype=np.uint8)
    scene_dir = make_scene(split=split)
    with pytest.raises(SceneError) as exc:
        load_scene(scene_dir, check_pixels=True)
    assert_names(exc, scene_dir / "split.tif", f"no {'train' if missing == 1 else 'test'} pixels")


def test_db_units_with_linear_values_are_refused(make_scene: MakeScene) -> None:
    images = np.random.default_rng(0).uniform(0.001, 0.3, size=(4, 2, 16, 20)).astype(np.float32)
    scene_dir = make_scene(images=images)
    with pytest.raises(SceneError) as exc:
        load_scene(scene_dir)
    assert_names(exc, scene_dir / "images" / "20190918.tif", "look linear", "units: linear")


def test_linear_units_with_db_values_are_refused(make_scene: MakeScene) -> None:
    scene_dir = make_scene(units="linear")
    with pytest.raises(SceneError) as exc:
        load_scene(scene_dir)
    assert_names(exc, scene_dir / "images" / "20190918.tif", "looks like dB")


def test_label_date_that_is_not_an_image_date_is_refused(make_scene: MakeScene) -> None:
    scene_dir = make_scene(labels=None)
    gpd.GeoDataFrame({"c": ["Maize"]}, geometry=[box(400000, 8659900, 400100, 8660000)], crs="EPSG:32723").to_file(
        scene_dir / "parcels.gpkg"
    )
    edit_manifest(scene_dir, labels={"path": "parcels.gpkg", "columns": {"2019-12-24": "c"}})
    with pytest.raises(SceneError) as exc:
        load_scene(scene_dir)
    assert_names(exc, scene_dir / "scene.yaml", "2019-12-24", "not an image date")


def test_unknown_class_name_in_parcels_is_named(make_scene: MakeScene) -> None:
    scene_dir = make_scene(labels=None)
    gpd.GeoDataFrame({"c": ["Rice"]}, geometry=[box(400000, 8659900, 400100, 8660000)], crs="EPSG:32723").to_file(
        scene_dir / "parcels.gpkg"
    )
    edit_manifest(scene_dir, labels={"path": "parcels.gpkg", "columns": {"2019-12-23": "c"}})
    with pytest.raises(SceneError) as exc:
        load_scene(scene_dir).read_labels()
    assert_names(exc, scene_dir / "parcels.gpkg", "'Rice'", "not in 'classes'")


def test_copied_scene_folder_still_loads(make_scene: MakeScene, tmp_path: Path) -> None:
    """Paths in scene.yaml are relative, so a scene folder can be moved."""
    moved = tmp_path / "elsewhere" / "scene"
    shutil.copytree(make_scene(), moved)
    assert load_scene(moved).grid.shape == (16, 20)


def test_classes_in_manifest_keep_codes(make_scene: MakeScene) -> None:
    assert load_scene(make_scene()).classes == CLASSES


def test_scene_without_crs_warns_and_uses_pixel_grid(tmp_path: Path) -> None:
    np.save(tmp_path / "a.npy", np.full((8, 9, 2), 0.05, dtype=np.float16))
    (tmp_path / "scene.yaml").write_text(
        yaml.safe_dump({"bands": ["VV", "VH"], "units": "linear", "classes": {1: "A"},
                        "dates": [{"date": "2020-01-01", "image": "a.npy"}]})
    )
    with pytest.warns(SceneWarning, match="no CRS"):
        scene = load_scene(tmp_path)
    assert scene.grid.crs is None and scene.grid.shape == (8, 9)


# ------------------------------------------------------------------ months without acquisition (image: null)
def test_scene_with_a_null_image_loads_reads_nan_and_round_trips(make_scene: MakeScene) -> None:
    path = make_scene()
    drop_image(path, 1)
    scene = load_scene(path, check_pixels=True)
    assert scene.missing.tolist() == [False, True, False, False]
    images = scene.read_images()
    assert np.isnan(images[1]).all() and np.isfinite(images[[0, 2, 3]]).all()
    summary = scene.summary()
    assert [d["missing"] for d in summary["dates"]] == [False, True, False, False]
    manifest = read_manifest(path)
    write_manifest(manifest)
    assert yaml.safe_load((path / "scene.yaml").read_text())["dates"][1]["image"] is None


def test_label_on_a_month_without_image_is_refused(make_scene: MakeScene) -> None:
    path = make_scene()
    data = yaml.safe_load((path / "scene.yaml").read_text())
    data["dates"][2]["image"] = None  # date 2 keeps its label raster
    (path / "scene.yaml").write_text(yaml.safe_dump(data, sort_keys=False))
    with pytest.raises(SceneError, match="has a label but no image"):
        load_scene(path)


def test_scene_where_every_image_is_null_is_refused(make_scene: MakeScene) -> None:
    path = make_scene()
    data = yaml.safe_load((path / "scene.yaml").read_text())
    for item in data["dates"]:
        item["image"] = None
        item.pop("label", None)
    (path / "scene.yaml").write_text(yaml.safe_dump(data, sort_keys=False))
    with pytest.raises(SceneError, match="every date has 'image: null'"):
        load_scene(path)
