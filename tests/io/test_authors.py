"""The paper authors' public layout (.npy images, label tifs without CRS, TrainTestMask.tif) loads as it is."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pytest
import rasterio

from tropicrop.errors import SceneError
from tropicrop.io.authors import LEM_CLASSES, import_authors
from tropicrop.scene import SceneWarning, load_scene

REAL_MASK = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "lem_TrainTestMask.tif"
STAMPS = ["20191012", "20191117", "20191223"]


def write_plain_tif(path: Path, array: np.ndarray) -> None:
    """A uint8 GeoTIFF with no CRS and no geotransform, as the authors' label and mask files are."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with rasterio.open(path, "w", driver="GTiff", width=array.shape[1], height=array.shape[0], count=1, dtype="uint8") as ds:
        ds.write(array[None])


def make_authors_folder(root: Path, h: int = 12, w: int = 10, numbered: bool = False) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(1)
    for stamp in STAMPS:
        db = rng.uniform(-20, -5, size=(h, w, 2))
        linear = (10 ** (db / 10)).astype(np.float16)
        linear[0, 0] = -1  # the authors' NaN
        np.save(root / f"{stamp}_S1.npy", linear)
    for k, stamp in enumerate(STAMPS[1:], start=1):
        name = f"{k}.tif" if numbered else f"{stamp}_S1.tif"
        write_plain_tif(root / "labels" / name, np.full((h, w), 13, dtype=np.uint8))
    mask = np.ones((h, w), dtype=np.uint8)
    mask[:, w // 2 :] = 2
    write_plain_tif(root / "TrainTestMask.tif", mask)
    return root


@pytest.mark.parametrize("numbered", [False, True])
def test_authors_layout_loads_through_import(tmp_path: Path, numbered: bool) -> None:
    data = make_authors_folder(tmp_path, numbered=numbered)
    with pytest.warns(SceneWarning):
        manifest = import_authors(data, data)
        scene = load_scene(manifest, check_pixels=True)
    assert scene.dates == [dt.date(2019, 10, 12), dt.date(2019, 11, 17), dt.date(2019, 12, 23)]
    assert scene.labelled_dates == scene.dates[1:]
    assert scene.classes == LEM_CLASSES and scene.units == "linear"
    images = scene.read_images()
    assert images.shape == (3, 2, 12, 10)
    assert np.isnan(images[:, :, 0, 0]).all(), "-1 is no-data, not a value"
    finite = images[np.isfinite(images)]
    assert finite.min() > -21 and finite.max() < -4, "linear intensity is read as dB"
    assert (scene.read_labels() == 13).all()
    assert scene.validate_pixels().split_counts == {0: 0, 1: 60, 2: 60}


def test_authors_manifest_can_live_in_another_folder(tmp_path: Path) -> None:
    data = make_authors_folder(tmp_path / "data")
    with pytest.warns(SceneWarning):
        scene = load_scene(import_authors(data, tmp_path / "scenes" / "lem1920"))
    assert scene.read_images().shape == (3, 2, 12, 10)


def test_authors_folder_without_images_is_refused(tmp_path: Path) -> None:
    with pytest.raises(SceneError, match=r"no YYYYMMDD_S1\.npy"):
        import_authors(tmp_path, tmp_path)


@pytest.mark.skipif(not REAL_MASK.is_file(), reason="shared/data not present")
def test_real_lem_mask_is_rejected_when_its_size_differs_from_the_images(tmp_path: Path) -> None:
    make_authors_folder(tmp_path)
    (tmp_path / "TrainTestMask.tif").unlink()
    (tmp_path / "TrainTestMask.tif").symlink_to(REAL_MASK)
    with pytest.warns(SceneWarning), pytest.raises(SceneError) as exc:
        load_scene(import_authors(tmp_path, tmp_path))
    assert "TrainTestMask.tif" in str(exc.value) and "8658x8484" in str(exc.value)


@pytest.mark.skipif(not REAL_MASK.is_file(), reason="shared/data not present")
def test_real_lem_mask_loads_with_images_of_its_size(tmp_path: Path) -> None:
    """The real 8484 x 8658 mask (no CRS) is read as it is; images are sparse .npy files of the same size."""
    for stamp in STAMPS:
        arr = np.lib.format.open_memmap(tmp_path / f"{stamp}_S1.npy", mode="w+", dtype=np.float16, shape=(8484, 8658, 2))
        arr[4000:4300, 4000:4300] = 0.05  # the units check samples the centre
        del arr
    (tmp_path / "TrainTestMask.tif").symlink_to(REAL_MASK)
    with pytest.warns(SceneWarning, match="no CRS"):
        scene = load_scene(import_authors(tmp_path, tmp_path))
    assert scene.grid.shape == (8484, 8658)
    split = scene.read_split(rasterio.windows.Window(0, 0, 8658, 8484))
    assert set(np.unique(split)) <= {0, 1, 2} and (split == 1).any() and (split == 2).any()
