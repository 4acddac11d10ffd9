"""A per-pixel LightGBM run through the one prediction path: the maps of a plain whole-scene reference, and
every option the networks have (probabilities, parcels, AOI, Dask)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import rasterio

from tiny import QUICK_CONFIG
from tropicrop.classical import predict_classical
from tropicrop.config import load_config
from tropicrop.inference import predict_run
from tropicrop.scene import load_scene
from tropicrop.training import TrainConfig, train

MODES = ("per-month", "all-months")


@pytest.fixture(scope="module")
def pixel_runs(tiny_pair: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A per-month and an all-months LightGBM run on the tiny pair's 2019/20 scene (3 x 3 multilook)."""
    root = tmp_path_factory.mktemp("pixel-runs")
    scene = tiny_pair / "lem1920"
    for mode in MODES:
        sets = [f"data.scene={scene}", "model.name=lightgbm", f"mode={mode}", "trainer.progress=false",
                "model.options={looks: 3, n_estimators: 15, threads: 1}"]
        train(load_config(TrainConfig, QUICK_CONFIG, sets), root / mode)
    return {"scene": scene, "other_year": tiny_pair / "lem1718", **{m: root / m for m in MODES}}


def read(path: Path) -> np.ndarray:
    with rasterio.open(path) as ds:
        out: np.ndarray = ds.read()
    return out


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("year", ["scene", "other_year"])
@pytest.mark.parametrize(("tile", "overlap"), [(24, 8), (256, 0)])
def test_lightgbm_maps_equal_the_old_classical_predictor_pixel_for_pixel(pixel_runs: dict[str, Path], tmp_path: Path,
                                                                         mode: str, year: str, tile: int,
                                                                         overlap: int) -> None:
    scene = load_scene(pixel_runs[year])
    old = predict_classical(pixel_runs[mode], scene, tmp_path / "old", progress=False)
    new = predict_run(pixel_runs[mode], scene, tmp_path / "new", tile=tile, overlap=overlap, progress=False)
    assert [p.name for p in new] == [p.name for p in old] and len(new) == len(scene.labelled_dates)
    for a, b in zip(old, new, strict=True):
        np.testing.assert_array_equal(read(a), read(b), err_msg=b.name)
