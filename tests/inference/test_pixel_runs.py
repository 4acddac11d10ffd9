"""A per-pixel LightGBM run through the one prediction path: the maps of a plain whole-scene reference, and
every option the networks have (probabilities, parcels, AOI, Dask)."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pytest
import rasterio
from shapely.geometry import box

from tiny import QUICK_CONFIG
from tropicrop.config import load_config
from tropicrop.inference import predict_run
from tropicrop.parcels import LAYER
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


def reference_maps(run: Path, scene_dir: Path) -> dict[dt.date, np.ndarray]:
    """The plain reference: each labelled date's booster (read from its text file, the one of the date's
    month) applied to the whole scene's features in one call; features as the module documents them."""
    import lightgbm as lgb
    from scipy.ndimage import uniform_filter

    scene = load_scene(scene_dir)
    norm = json.loads((run / "normalization.json").read_text())
    mean, std = (np.array(norm[k], np.float32)[:, None, None] for k in ("mean", "std"))
    x = (scene.read_images() - mean) / std
    nan = np.isnan(x)
    x = uniform_filter(np.where(nan, 0.0, x), size=(1, 1, 3, 3), mode="nearest").astype(np.float32)
    x[nan] = np.nan
    c, h, w = x.shape[1:]
    boosters = {p.parent.name: lgb.Booster(model_file=str(p)) for p in (run / "nets").glob("*/model.txt")}
    maps = {}
    for d in scene.labelled_dates:
        end = scene.dates.index(d)
        steps = [x[i] if i >= 0 else np.full((c, h, w), np.nan, np.float32) for i in range(end - 11, end + 1)]
        feats = np.concatenate(steps).reshape(12 * c, -1).T
        name = next((n for n in boosters if n != "all-months" and dt.date.fromisoformat(n).month == d.month),
                    "all-months")
        if name == "all-months":
            angle = 2 * np.pi * d.timetuple().tm_yday / 365.25
            feats = np.hstack([feats, np.tile(np.array([np.sin(angle), np.cos(angle)], np.float32), (h * w, 1))])
        codes = (boosters[name].predict(feats).argmax(axis=1) + 1).astype(np.uint8)
        codes[~np.isfinite(feats[:, : 12 * c]).any(axis=1)] = 0
        maps[d] = codes.reshape(h, w)
    return maps


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("year", ["scene", "other_year"])
@pytest.mark.parametrize(("tile", "overlap"), [(24, 8), (256, 0)])
def test_lightgbm_maps_equal_the_booster_on_the_whole_scene_pixel_for_pixel(pixel_runs: dict[str, Path],
                                                                            tmp_path: Path, mode: str, year: str,
                                                                            tile: int, overlap: int) -> None:
    """Through tiles with a context margin (the 3 x 3 multilook's radius) and blending, as in one call."""
    expected = reference_maps(pixel_runs[mode], pixel_runs[year])
    maps = predict_run(pixel_runs[mode], pixel_runs[year], tmp_path / "new", tile=tile, overlap=overlap, progress=False)
    assert [p.name for p in maps] == [f"{d:%Y%m%d}.tif" for d in expected]
    for path, codes in zip(maps, expected.values(), strict=True):
        assert len(np.unique(codes)) >= 3  # a map of several classes, so equality means something
        np.testing.assert_array_equal(read(path)[0], codes, err_msg=path.name)


def pixel_polygon(scene_dir: Path, rows: tuple[float, float], cols: tuple[float, float]) -> Any:
    """A box over scene pixels rows x cols (fractional: not on pixel edges), in the scene's CRS."""
    t = load_scene(scene_dir).grid.transform
    (x0, y0), (x1, y1) = t * (cols[0], rows[0]), t * (cols[1], rows[1])
    return box(min(x0, x1), min(y0, y1), max(x0, x1), max(y0, y1))


def test_a_lightgbm_run_predicts_probabilities_parcels_and_an_aoi(pixel_runs: dict[str, Path], tmp_path: Path) -> None:
    from tropicrop.cli import main

    scene = load_scene(pixel_runs["scene"])
    crs = scene.grid.crs
    aoi, parcels = tmp_path / "aoi.gpkg", tmp_path / "parcels.gpkg"
    gpd.GeoDataFrame(geometry=[pixel_polygon(pixel_runs["scene"], (0, 64), (0, 30))], crs=crs).to_file(aoi)
    gpd.GeoDataFrame({"field": [1, 2]}, geometry=[pixel_polygon(pixel_runs["scene"], (2.5, 20.5), (3.2, 17.7)),
                                                   pixel_polygon(pixel_runs["scene"], (30, 50), (5, 25))],
                     crs=crs).to_file(parcels)
    out = tmp_path / "out"
    assert main(["predict", str(pixel_runs["per-month"]), str(pixel_runs["scene"]), "--out", str(out), "--aoi", str(aoi),
                 "--parcels", str(parcels), "--tile", "24", "--overlap", "8"]) == 0
    expected = reference_maps(pixel_runs["per-month"], pixel_runs["scene"])
    for d, codes in expected.items():
        got = read(out / "maps" / f"{d:%Y%m%d}.tif")[0]
        np.testing.assert_array_equal(got[:, :30], codes[:, :30])   # inside the AOI: the reference
        assert (got[:, 30:] == 0).all()                               # outside: no data
        probs = read(out / "probabilities" / f"{d:%Y%m%d}.tif")      # (K - 1, H, W) uint8, x 255
        inside = got > 0
        assert probs.shape[0] == len(json.loads((out / "classes.json").read_text())["names"]) - 1
        assert (np.abs(probs[:, inside].astype(int).sum(axis=0) - 255) <= probs.shape[0]).all()
        top = probs[:, inside].max(axis=0)
        assert (probs[got[inside] - 1, inside] == top).all()      # the class drawn is a most probable one
        assert (probs[:, ~inside] == 0).all()
    answers = gpd.read_file(out / "parcels.gpkg", layer=LAYER)
    assert set(answers["field"]) == {1, 2} and len(answers) == 2 * len(expected)
    assert answers["probability"].between(0, 1).all() and (answers["pixels"] > 0).all()
    log = json.loads((out / "predict.json").read_text())[-1]
    assert log["kind"] == ["pixel"] and log["margin"] == 1 and log["precision"] == "32"


@pytest.mark.slow
def test_a_lightgbm_run_on_two_dask_workers_gives_the_single_process_maps(pixel_runs: dict[str, Path],
                                                                          tmp_path: Path) -> None:
    from tropicrop.inference.distributed import predict_distributed

    tiling = {"tile": 24, "overlap": 8, "probabilities": True, "progress": False}
    single = predict_run(pixel_runs["all-months"], pixel_runs["scene"], tmp_path / "one", **tiling)
    result = predict_distributed(pixel_runs["all-months"], [pixel_runs["scene"]], tmp_path / "two", workers=2,
                                 block=2, torch_threads=1, **tiling)
    assert [p.name for p in result["lem1920"].maps] == [p.name for p in single]
    assert result["lem1920"].blocks_computed == 4
    for path in single:
        for kind in ("maps", "probabilities"):
            np.testing.assert_array_equal(read(tmp_path / "one" / kind / path.name),
                                          read(tmp_path / "two" / kind / path.name), err_msg=f"{kind}/{path.name}")


def test_a_lightgbm_run_adapts_with_year_statistics_and_skips_the_network_methods(pixel_runs: dict[str, Path],
                                                                                  tmp_path: Path) -> None:
    from tropicrop.adaptation import AdaptOptions, adapt_run
    from tropicrop.adaptation.data import fit_year_statistics
    from tropicrop.errors import ConfigError

    source, other = pixel_runs["per-month"], pixel_runs["other_year"]
    record = adapt_run(source, other, tmp_path / "adapted", progress=False)  # every method chosen (the default)
    assert record["methods"] == ["year_stats", "doy_shift"] and record["skipped"] == ["adabn", "self_training"]
    assert record["doy_offset"] == 0  # per-month boosters take no day of year: the shift is skipped per model
    assert all(str(net["shift"]).startswith("skipped") for net in record["nets"].values())
    stats = fit_year_statistics(load_scene(other)).to_dict()
    assert json.loads((tmp_path / "adapted" / "normalization.json").read_text()) == stats
    assert stats != json.loads((source / "normalization.json").read_text())
    for model in source.glob("nets/*/model.txt"):
        assert (tmp_path / "adapted" / "nets" / model.parent.name / "model.txt").read_bytes() == model.read_bytes()
    maps = predict_run(tmp_path / "adapted", other, tmp_path / "pred", tile=24, overlap=8, progress=False)
    expected = reference_maps(tmp_path / "adapted", other)  # the boosters on the new year's statistics
    unadapted = reference_maps(source, other)
    assert any((expected[d] != unadapted[d]).any() for d in expected)  # the statistics changed the maps
    for path, codes in zip(maps, expected.values(), strict=True):
        np.testing.assert_array_equal(read(path)[0], codes, err_msg=path.name)
    with pytest.raises(ConfigError, match="no chosen adaptation method .*adabn.* applies to a pixel run"):
        adapt_run(source, other, tmp_path / "x", AdaptOptions(methods=["adabn"]), progress=False)


def test_booster_probabilities_keep_their_most_probable_class_in_float32() -> None:
    from tropicrop.inference.kinds import _float32_keeping_argmax

    # the near-tie found on a 512 px scene: classes 1 and 4 within 2e-8, equal once in float32
    scores = np.array([[0.302212917, 0.0813514740, 0.0453259263, 0.302212936, 0.106162840, 0.0749241482,
                        1.15782111e-15, 0.0878097585]])
    assert scores.astype(np.float32).argmax() == 0 and scores.argmax() == 3
    out = _float32_keeping_argmax(scores)
    assert out.dtype == np.float32 and out.argmax() == 3
    np.testing.assert_allclose(out, scores, rtol=1e-6)
