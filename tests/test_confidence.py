"""Temperatures fitted after training, applied at prediction, and the confidence layer written beside each map."""

from __future__ import annotations

import json
import logging
import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import rasterio

from test_classical import lgb_config, separable_scene
from tiny import DATES, quick_config
from tropicrop.inference import predict_run
from tropicrop.inference.mapfiles import LAYER_NODATA, NODATA
from tropicrop.inference.stream import confidence_layer
from tropicrop.layout import PredictionLayout
from tropicrop.training import train
from tropicrop.valprofile import CALIBRATION_FILE, read_profile

MakeScene = Callable[..., Path]


def read(path: Path) -> np.ndarray:
    with rasterio.open(path) as ds:
        return ds.read()


@pytest.fixture(scope="module")
def net_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A briefly trained all-months network on a separable scene, and the scene."""
    root = tmp_path_factory.mktemp("conf")
    from tiny import CLASSES, TRANSFORM
    from tropicrop.io import write_scene

    rng = np.random.default_rng(1)
    h = w = 32
    stripes = (np.arange(w)[None, :] // 4 % 3 + 1).repeat(h, axis=0).astype(np.uint8)
    images = rng.normal(-15.0, 1.0, (len(DATES), 2, h, w)).astype(np.float32)
    images[:, 1] += 3.0 * (stripes - 2)
    split = np.ones((h, w), np.uint8)
    split[h // 2:] = 2
    scene = write_scene(root / "scene", name="s", bands=("VV", "VH"), units="dB", classes=CLASSES, dates=DATES,
                        crs="EPSG:32723", transform=TRANSFORM, images=images,
                        labels={d: stripes for d in DATES[2:]}, split=split)
    cfg = quick_config(scene, **{"trainer.max_epochs": 1, "trainer.steps_per_epoch": 6, "optim.lr": 0.01,
                                 "data.patch_size": 8, "data.stride": 4, "data.val_fraction": 0.3})
    train(cfg, root / "run")
    return root / "run", scene


def test_training_writes_a_temperature_and_a_validation_profile(net_run: tuple[Path, Path]) -> None:
    profile = read_profile(net_run[0] / "nets" / "all-months")
    assert profile is not None and profile.temperature > 0 and profile.pixels > 0
    assert profile.confusion.sum() == profile.pixels
    assert set(profile.months) <= {d.month for d in DATES[2:]}


def set_temperature(run: Path, temperature: float) -> None:
    path = run / "nets" / "all-months" / CALIBRATION_FILE
    data = json.loads(path.read_text())
    data["temperature"] = temperature
    path.write_text(json.dumps(data))


def test_confidence_layer_is_the_calibrated_max_probability_and_the_class_does_not_move(
        net_run: tuple[Path, Path], tmp_path: Path) -> None:
    run = tmp_path / "run"
    shutil.copytree(net_run[0], run)
    set_temperature(run, 4.0)  # far from 1, so calibrated and raw confidences differ clearly
    outs = {}
    for calibration in ("temperature", "none"):
        outs[calibration] = PredictionLayout(tmp_path / calibration)
        predict_run(run, net_run[1], outs[calibration].root, probabilities=True, progress=False,
                    calibration=calibration)
    date = DATES[-1]
    cal, raw = outs["temperature"], outs["none"]
    np.testing.assert_array_equal(read(cal.map(date)), read(raw.map(date)))
    codes = read(cal.map(date))[0]
    conf = read(cal.confidence(date))[0]
    probs = read(cal.probabilities(date)) / 255.0
    has = codes != NODATA
    assert has.any() and (conf[~has] == LAYER_NODATA).all()
    np.testing.assert_allclose(conf[has], 100 * probs.max(axis=0)[has], atol=0.7)  # uint8 rounding of both files
    assert (conf[has] < read(raw.confidence(date))[0][has]).mean() > 0.9  # T = 4 softens nearly every pixel


def test_a_run_without_calibration_predicts_with_t_1_and_says_so(
        net_run: tuple[Path, Path], tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    run = tmp_path / "run"
    shutil.copytree(net_run[0], run)
    (run / "nets" / "all-months" / CALIBRATION_FILE).unlink()
    with caplog.at_level(logging.WARNING):
        predict_run(run, net_run[1], tmp_path / "old", dates=[DATES[-1]], progress=False)
    assert "T = 1" in caplog.text
    predict_run(net_run[0], net_run[1], tmp_path / "none", dates=[DATES[-1]], progress=False, calibration="none")
    old, none = PredictionLayout(tmp_path / "old"), PredictionLayout(tmp_path / "none")
    np.testing.assert_array_equal(read(old.confidence(DATES[-1])), read(none.confidence(DATES[-1])))


def test_uncertainty_layer_is_written_on_request(net_run: tuple[Path, Path], tmp_path: Path) -> None:
    predict_run(net_run[0], net_run[1], tmp_path / "out", dates=[DATES[-1]], progress=False, uncertainty="margin")
    layer = read(PredictionLayout(tmp_path / "out").uncertainty(DATES[-1]))
    assert layer.dtype == np.uint8 and (layer <= 100).all()


def test_entropy_and_margin_of_known_probabilities() -> None:
    probs = np.zeros((4, 1, 2), np.float32)  # class 0 (no reference) first
    probs[1:, 0, 0] = [1.0, 0.0, 0.0]
    probs[1:, 0, 1] = [1 / 3, 1 / 3, 1 / 3]
    valid = np.ones((1, 2), bool)
    assert confidence_layer(probs, valid).tolist() == [[100, 33]]
    assert confidence_layer(probs, valid, "entropy").tolist() == [[0, 100]]
    assert confidence_layer(probs, valid, "margin").tolist() == [[100, 0]]
    with pytest.raises(ValueError, match="uncertainty"):
        confidence_layer(probs, valid, "variance")


def test_lightgbm_run_writes_a_calibrated_confidence_layer(make_scene: MakeScene, tmp_path: Path) -> None:
    scene = separable_scene(make_scene, 32, 32)
    train(lgb_config(scene, "all-months", **{"data.val_fraction": 0.3}), tmp_path / "run")
    assert read_profile(tmp_path / "run" / "nets" / "all-months") is not None
    predict_run(tmp_path / "run", scene, tmp_path / "pred", dates=[DATES[-1]], progress=False)
    out = PredictionLayout(tmp_path / "pred")
    codes, conf = read(out.map(DATES[-1]))[0], read(out.confidence(DATES[-1]))[0]
    assert conf.shape == codes.shape and ((conf <= 100) | (codes == NODATA)).all()
    assert ((conf == LAYER_NODATA) == (codes == NODATA)).all()


def test_evaluate_writes_calibration_from_the_confidence_layer(net_run: tuple[Path, Path], tmp_path: Path) -> None:
    from tropicrop.evaluation import evaluate_predictions, format_evaluation

    out = tmp_path / "out"
    predict_run(net_run[0], net_run[1], out, progress=False)
    result = evaluate_predictions(out, net_run[1], split="test")
    cal = result.calibration()
    assert 0 <= cal["ece"] <= 1 and 0 <= cal["brier"] <= 1
    assert cal["acc_at_100"] == pytest.approx(result.mean_oa, abs=1e-6)  # every scored pixel, as OA counts them
    rows = (out / "metrics" / "calibration.csv").read_text().splitlines()
    assert rows[0].startswith("date,ece,brier") and len(rows) == len(result.dates) + 2
    assert (out / "metrics" / "reliability.png").stat().st_size > 1000
    assert "ECE" in format_evaluation(result)
