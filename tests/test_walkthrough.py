"""The README walk-through, end to end through the CLI: downloaded acquisitions + parcels -> stack -> train ->
predict --parcels -> evaluate --by parcel."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import geopandas as gpd
import numpy as np
import pytest
from shapely.geometry import box

from s1_files import TARGET_CRS, Spec, target_transform, write_acquisition, write_like
from tropicrop.cli import main
from tropicrop.parcels import LAYER
from tropicrop.scene import load_scene

SIZE = 48


@pytest.mark.slow
def test_from_acquisition_files_to_per_parcel_answers(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    downloads = tmp_path / "downloads"
    crss = ("EPSG:32722", "EPSG:32723", "EPSG:4326")
    seed = 0
    for month in range(1, 14):
        if month == 6:
            continue  # no pass in June
        for k in range(1 + month % 2):
            y, m = 2019 + (month - 1) // 12, (month - 1) % 12 + 1
            spec = Spec(dt.datetime(y, m, 4 + 12 * k, 8, 30, 12), crss[seed % 3], ("dual", "pair")[seed % 2])
            write_acquisition(downloads, spec, SIZE, seed)
            seed += 1
    like = write_like(tmp_path / "grid.tif", SIZE)
    t = target_transform(SIZE)
    step = SIZE * 20 / 4
    fields, crops, splits = [], [], []
    for i in range(4):
        for j in range(4):
            fields.append(box(t.c + j * step + 20, t.f - (i + 1) * step + 20, t.c + (j + 1) * step - 20, t.f - i * step - 20))
            crops.append(("Soybean", "Maize", "Pasture")[(i + j) % 3])
            splits.append("test" if j >= 2 else "train")
    parcels = tmp_path / "parcels.gpkg"
    gpd.GeoDataFrame({"crop_dec": crops, "crop_jan": crops, "split": splits}, geometry=fields,
                     crs=TARGET_CRS).to_crs("EPSG:4326").to_file(parcels)
    scene = tmp_path / "scene"
    assert main(["stack", str(downloads), "--out", str(scene), "--like", str(like), "--start", "2019-01", "--end", "2020-01",
                 "--parcels", str(parcels), "--label-columns", "2019-12=crop_dec,2020-01=crop_jan",
                 "--split-column", "split"]) == 0
    assert "no acquisition (padding): 2019-06-15" in capsys.readouterr().out
    assert load_scene(scene, check_pixels=True).labelled_dates == [dt.date(2019, 12, 15), dt.date(2020, 1, 15)]
    run = tmp_path / "run"
    assert main(["train", "-c", str(Path(__file__).parents[1] / "configs" / "quick.yaml"), "--run-dir", str(run),
                 "--set", f"data.scene={scene}", "--set", "trainer.max_epochs=1", "--set", "trainer.steps_per_epoch=2",
                 "--set", "trainer.progress=false", "--set", "data.val_limit=16"]) == 0
    out = tmp_path / "maps"
    assert main(["predict", str(run), str(scene), "--out", str(out), "--parcels", str(parcels)]) == 0
    answers = gpd.read_file(out / "parcels.gpkg", layer=LAYER)
    assert len(answers) == 16 * 2 and set(answers["date"]) == {"2019-12-15", "2020-01-15"}
    assert answers["share"].between(0, 1).all() and answers["probability"].between(0, 1).all()
    assert np.isfinite(answers["pixels"]).all() and (answers["pixels"] > 0).all()
    capsys.readouterr()
    assert main(["evaluate", str(out), str(scene), "--by", "parcel"]) == 0
    printed = capsys.readouterr().out
    assert "parcel level" in printed and (out / "metrics" / "parcel" / "per_date.csv").is_file()


REAL_CUBE = Path(__file__).parent / "data" / "real" / "worldcereal_preprocessed_inputs.nc"


@pytest.mark.slow
def test_real_openeo_cube_to_per_parcel_answers_every_month(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The real WorldCereal/openEO cube (tests/data/real/README.md) through the same commands. It has no crop
    labels: the parcels below are drawn by hand on its grid to run the path, not to measure accuracy."""
    scene = tmp_path / "hesbaye"
    assert main(["stack", str(REAL_CUBE), "--out", str(scene), "--units", "gfmap-uint16"]) == 0
    capsys.readouterr()
    images = load_scene(scene, check_pixels=True).read_images()
    assert images.shape == (12, 2, 100, 100) and np.isfinite(images).all()
    assert -25 < np.median(images[:, 0]) < 0 and np.median(images[:, 1]) < np.median(images[:, 0])  # VV, VH in dB
    fields, crops, splits = [], [], []
    for i in range(4):  # a 4 x 4 block of 250 m parcels on EPSG:32631 x 664000-665000, y 5611120-5612120
        for j in range(4):
            left, top = 664000 + 250 * j, 5612120 - 250 * i
            fields.append(box(left + 20, top - 230, left + 230, top - 20))
            crops.append(("Wheat", "Maize", "Grassland")[(i + 2 * j) % 3])
            splits.append("test" if j == 3 else "train")
    parcels = tmp_path / "parcels.gpkg"
    gpd.GeoDataFrame({"crop": crops, "split": splits}, geometry=fields, crs="EPSG:32631").to_file(parcels)
    assert main(["stack", str(REAL_CUBE), "--out", str(scene), "--units", "gfmap-uint16", "--overwrite",
                 "--parcels", str(parcels), "--label-columns", "2021-06=crop,2021-08=crop", "--split-column", "split"]) == 0
    run = tmp_path / "run"
    assert main(["train", "-c", str(Path(__file__).parents[1] / "configs" / "quick.yaml"), "--run-dir", str(run),
                 "--set", f"data.scene={scene}", "--set", "trainer.max_epochs=1", "--set", "trainer.steps_per_epoch=2",
                 "--set", "trainer.progress=false", "--set", "data.val_limit=16"]) == 0
    out = tmp_path / "maps"
    assert main(["predict", str(run), str(scene), "--out", str(out), "--dates", "all", "--parcels", str(parcels)]) == 0
    answers = gpd.read_file(out / "parcels.gpkg", layer=LAYER)
    months = {f"{d:%Y-%m-15}" for d in (dt.date(2020 + (10 + m) // 12, (10 + m) % 12 + 1, 1) for m in range(12))}
    assert set(answers["date"]) == months and len(answers) == 16 * 12  # every month, the early ones padded
    assert answers["share"].between(0, 1).all() and answers["probability"].between(0, 1).all()
    assert (answers["pixels"] > 0).all() and set(answers["class"]) <= {"Wheat", "Maize", "Grassland"}
