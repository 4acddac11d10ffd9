"""The ensemble approach: the mean of a network's and the booster's calibrated probabilities (issue 32)."""

from __future__ import annotations

import csv
import datetime as dt
import json
from pathlib import Path

import numpy as np
import pytest
import rasterio

from tiny import SMALL_NET
from tropicrop.calibration import fit_temperature
from tropicrop.classes import ClassTable
from tropicrop.config import ExperimentConfig, from_dict
from tropicrop.config.experiment import ENSEMBLE_MODEL
from tropicrop.ensemble import UNCALIBRATED, mean_probabilities, predict_ensemble
from tropicrop.ensemblecal import FLOOR, same_pixels, scale, shared_validation, validation_log_probabilities
from tropicrop.errors import ConfigError
from tropicrop.experiments import run_experiment
from tropicrop.inference.mapfiles import PROB_SCALE
from tropicrop.layout import ExperimentLayout, PredictionLayout, slug
from tropicrop.scene import TRAIN, load_scene

ENSEMBLE = "Ensemble (Baseline 1 + LightGBM)"


def ensemble_experiment(pair: Path, members: list[str] | None = None) -> dict:
    return {
        "name": "tiny ensemble",
        "scenes": {"a": str(pair / "lem1718"), "b": str(pair / "lem1920")},
        "approaches": [
            {"name": "Baseline 1", "mode": "per-month", "model": "unet_convlstm", "train_on": "b", "use": "train"},
            {"name": "LightGBM", "mode": "per-month", "model": "lightgbm", "train_on": "b", "use": "train",
             "options": {"looks": 3, "n_estimators": 10, "max_pixels": 500, "threads": 1}},
            {"name": "LightGBM, year A", "mode": "per-month", "model": "lightgbm", "train_on": "a", "use": "all",
             "options": {"n_estimators": 5, "max_pixels": 300, "threads": 1}},
            {"name": ENSEMBLE, "ensemble": {"members": members or ["Baseline 1", "LightGBM"]}},
        ],
        "train": {
            "model": {"options": SMALL_NET},
            "data": {"patch_size": 16, "stride": 8, "val_block": 16, "val_limit": 16},
            "trainer": {"max_epochs": 1, "steps_per_epoch": 2, "progress": False},
        },
        "predict": {"tile": 64, "overlap": 16, "probabilities": True},
    }


def test_members_average_where_both_mapped_and_nothing_elsewhere() -> None:
    codes_a = np.array([[1, 0]], np.uint8)
    codes_b = np.array([[2, 2]], np.uint8)
    probs_a = np.array([[[255, 255]], [[0, 0]]], np.uint8)      # class 1 sure
    probs_b = np.array([[[51, 51]], [[204, 204]]], np.uint8)    # class 2 at 0.8
    probs, valid = mean_probabilities([(codes_a, probs_a), (codes_b, probs_b)])
    assert valid.tolist() == [[True, False]]
    assert probs[:, 0, 0] == pytest.approx([0.0, 0.6, 0.4])
    assert probs[:, 0, 1].tolist() == [0.0, 0.0, 0.0]


def test_the_temperature_moves_probabilities_but_never_the_most_probable_class() -> None:
    rng = np.random.default_rng(0)
    real = rng.dirichlet(np.ones(3), size=(4, 5)).transpose(2, 0, 1)
    probs = np.concatenate([np.zeros((1, 4, 5)), real])
    valid = np.ones((4, 5), bool)
    valid[0, 0] = False
    for t in (0.5, 2.0):
        scaled = scale(probs, valid, t)
        assert np.allclose(scaled[1:, valid].sum(axis=0), 1.0) and not scaled[:, 0, 0].any()
        assert np.array_equal(scaled[1:, valid].argmax(axis=0), probs[1:, valid].argmax(axis=0))
        expected = np.maximum(real, FLOOR) ** (1 / t)
        assert np.allclose(scaled[1:, valid], (expected / expected.sum(axis=0))[:, valid])
    sharper = scale(probs, valid, 0.5)[1:, valid].max(axis=0)
    assert (sharper >= probs[1:, valid].max(axis=0) - 1e-12).all()
    assert scale(probs, valid, 1.0) is probs  # T = 1: the uncalibrated mean as it is


def test_members_share_validation_pixels_only_where_both_label_the_same_scene_pixel() -> None:
    from rasterio.windows import Window

    mine = np.array([[1, 2, 0], [3, 1, 1]], np.uint8)
    theirs = np.array([[2, 0], [1, 1]], np.uint8)              # starts one column to the right
    same = same_pixels(Window(0, 0, 3, 2), mine, Window(1, 0, 2, 2), theirs)
    assert same.tolist() == [[False, True, False], [False, True, True]]


@pytest.mark.parametrize(("members", "message"), [
    (["Baseline 1", "Baseline 1 again"], "not an earlier approach"),
    (["LightGBM", "LightGBM, year A"], "one network with one per-pixel model"),
    (["Baseline 1", "LightGBM, year A"], "of the same year"),
])
def test_an_ensemble_of_the_wrong_members_is_refused(members: list[str], message: str, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=message):
        from_dict(ExperimentConfig, ensemble_experiment(tmp_path, members))


def test_an_ensemble_takes_no_role_of_the_protocol(tmp_path: Path) -> None:
    cfg = ensemble_experiment(tmp_path)
    cfg["approaches"][-1]["role"] = "same-year baseline"
    with pytest.raises(ConfigError, match="role.*on an ensemble"):
        from_dict(ExperimentConfig, cfg)


@pytest.mark.slow
def test_the_ensemble_is_the_mean_of_its_members_calibrated_probabilities(tiny_pair: Path, tmp_path: Path) -> None:
    out = tmp_path / "exp"
    cfg = from_dict(ExperimentConfig, ensemble_experiment(tiny_pair))
    run_experiment(None, out, cfg=cfg, progress=False)
    layout = ExperimentLayout(out)
    record = json.loads(layout.record(slug(ENSEMBLE)).read_text())
    assert (record["model"], record["train_on"]) == (ENSEMBLE_MODEL, "b")
    assert 0.0 <= record["ece"] <= 1.0 and 0.0 < record["f1"] <= 1.0
    with open(layout.table4, newline="") as fh:
        table4 = {r["approach"]: r for r in csv.DictReader(fh)}
    assert table4[ENSEMBLE]["model"] == ENSEMBLE_MODEL and table4[ENSEMBLE]["ece"]
    ens = PredictionLayout(layout.predictions(slug(ENSEMBLE)).root)
    assert not (ens.root / "members").exists()        # the members' own predictions kept their probabilities
    members = [PredictionLayout(layout.predictions(slug(m)).root) for m in ("Baseline 1", "LightGBM")]
    uncal = PredictionLayout(ens.root / UNCALIBRATED)
    # the ensemble's temperature: fit_temperature on the log of the mean at the validation pixels both share
    stored = json.loads((ens.root / "calibration.json").read_text())
    temperature = stored["temperature"]
    assert record["calibration"]["temperature"] == temperature and temperature != 1.0
    shared = shared_validation([layout.run(slug(m)).root for m in ("Baseline 1", "LightGBM")])
    z, y = validation_log_probabilities([m.root for m in members], shared)
    assert len(y) == stored["val_pixels"] > 0
    assert temperature == pytest.approx(fit_temperature(z, y), rel=1e-6)
    split = load_scene(tiny_pair / "lem1920").read_split()
    for window, labels in shared.values():                # validation pixels are train-split pixels, never test
        rows, cols = np.nonzero(labels)
        assert (split[rows + window.row_off, cols + window.col_off] == TRAIN).all()
    assert record["calibration"]["ece_uncalibrated"] != pytest.approx(record["ece"])
    assert {d["date"] for d in record["per_date"]} == {d["date"] for d in table4_dates(layout, "Baseline 1")}
    for day in record["per_date"]:
        date = dt.date.fromisoformat(day["date"])
        with rasterio.open(ens.probabilities(date)) as ds:
            mean = ds.read().astype(float)
        with rasterio.open(ens.map(date)) as ds:
            codes = ds.read(1)
        with rasterio.open(ens.confidence(date)) as ds:
            confidence = ds.read(1).astype(float)
        expected = np.mean([read(m.probabilities(date)).astype(float) for m in members], axis=0)
        mapped = codes > 0
        # the uncalibrated twin's mean (renormalised, at 1/255) is the members' mean within rounding ...
        assert np.abs(read(uncal.probabilities(date)) - expected)[:, mapped].max() <= 2.0
        top2 = np.sort(expected, axis=0)[-2:]
        clear = mapped & (top2[1] - top2[0] > 2.0)       # ties within the members' 1/255 rounding aside
        assert clear.any() and (codes[clear] == expected.argmax(axis=0)[clear] + 1).all()   # the argmax
        # ... its map is the calibrated ensemble's, and the written probabilities carry the stored temperature
        assert np.array_equal(read(uncal.map(date))[0], codes)
        powered = np.maximum(expected / PROB_SCALE, FLOOR) ** (1 / temperature)
        calibrated = powered / powered.sum(axis=0)
        assert np.abs(mean - calibrated * PROB_SCALE)[:, mapped].max() <= 2.0
        assert np.abs(confidence - calibrated.max(axis=0) * 100)[mapped].max() <= 1.5
    # members whose predictions kept no probabilities predict again, into the ensemble's members/ folder
    runs = [(m, layout.run(slug(m)).root, tmp_path / "no-predictions") for m in ("Baseline 1", "LightGBM")]
    again = predict_ensemble(runs, load_scene(tiny_pair / "lem1920"), tmp_path / "again",
                             ClassTable.from_names(json.loads(layout.classes.read_text())["names"][1:]),
                             tile=64, overlap=16, progress=False)
    assert (tmp_path / "again" / "members" / slug("LightGBM") / "probabilities").is_dir()
    for path in again:
        assert np.array_equal(read(path), read(ens.maps / path.name))


def read(path: Path) -> np.ndarray:
    with rasterio.open(path) as ds:
        return ds.read()


def table4_dates(layout: ExperimentLayout, name: str) -> list[dict]:
    return json.loads(layout.record(slug(name)).read_text())["per_date"]
