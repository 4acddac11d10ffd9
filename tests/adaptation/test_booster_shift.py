"""Day-of-year shift of an all-months LightGBM run (issue 28): its day-of-year feature is shifted by the
offset estimated on the booster's own probabilities, and prediction applies it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import rasterio

from tiny import QUICK_CONFIG, relabel_dates
from tropicrop.adaptation import AdaptOptions, adapt_run
from tropicrop.config import load_config
from tropicrop.inference import predict_run
from tropicrop.training import TrainConfig, train


@pytest.fixture(scope="module")
def booster_run(tiny_pair: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    run = tmp_path_factory.mktemp("booster") / "run"
    sets = [f"data.scene={tiny_pair / 'lem1718'}", "model.name=lightgbm", "mode=all-months", "trainer.progress=false",
            "model.options={looks: 3, n_estimators: 20, threads: 1}"]
    train(load_config(TrainConfig, QUICK_CONFIG, sets), run)
    return run


def _maps(out: Path) -> list[np.ndarray]:
    arrays = []
    for path in sorted((out / "maps").glob("*.tif")):
        with rasterio.open(path) as ds:
            arrays.append(ds.read(1))
    return arrays


def test_an_all_months_booster_recovers_a_calendar_shift_and_predicts_as_on_the_training_calendar(
        tiny_pair: Path, booster_run: Path, tmp_path: Path) -> None:
    moved = relabel_dates(tiny_pair / "lem1718", tmp_path / "moved", days=-30)  # the same year, 30 days early
    options = AdaptOptions(methods=["doy_shift"], shift_min=-30, shift_max=30, shift_step=15, shift_patches=4,
                           shift_patch_size=24)
    record = adapt_run(booster_run, moved, tmp_path / "adapted", options, progress=False)
    shift = record["nets"]["all-months"]["shift"]
    assert record["methods"] == ["doy_shift"] and record["skipped"] == []
    assert record["doy_offset"] == 30, shift
    assert shift["offsets"] == [-30, -15, 0, 15, 30] and min(shift["score"]) == shift["score"][-1]
    # the shifted day-of-year feature makes the moved year's maps those of the training calendar
    predict_run(booster_run, tiny_pair / "lem1718", tmp_path / "source", tile=32, overlap=8, progress=False)
    predict_run(tmp_path / "adapted", moved, tmp_path / "shifted", tile=32, overlap=8, progress=False)
    predict_run(booster_run, moved, tmp_path / "unshifted", tile=32, overlap=8, progress=False)
    source, shifted, unshifted = _maps(tmp_path / "source"), _maps(tmp_path / "shifted"), _maps(tmp_path / "unshifted")
    assert len(source) == len(shifted) > 0
    for a, b in zip(source, shifted, strict=True):
        np.testing.assert_array_equal(a, b)
    assert any((a != b).any() for a, b in zip(source, unshifted, strict=True))  # the feature matters


def test_a_per_month_booster_records_the_shift_as_skipped(tiny_pair: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    sets = [f"data.scene={tiny_pair / 'lem1718'}", "model.name=lightgbm", "mode=per-month", "trainer.progress=false",
            "data.targets=[2018-01-14]", "model.options={looks: 1, n_estimators: 5, threads: 1}"]
    train(load_config(TrainConfig, QUICK_CONFIG, sets), run)
    record = adapt_run(run, tiny_pair / "lem1920", tmp_path / "adapted", AdaptOptions(methods=["doy_shift"]),
                       progress=False)
    assert record["doy_offset"] == 0 and record["nets"]["2018-01-14"]["shift"].startswith("skipped")
