"""The classical per-pixel baseline: features, training in the run layout, text models, prediction as any run."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from tiny import DATES, QUICK_CONFIG
from tropicrop.classical import PixelOptions, window_features
from tropicrop.config import load_config
from tropicrop.errors import ConfigError
from tropicrop.evaluation import evaluate_predictions
from tropicrop.inference import load_run, predict_run
from tropicrop.training import TrainConfig, train

MakeScene = Callable[..., Path]


def separable_scene(make_scene: MakeScene, h: int = 48, w: int = 48) -> Path:
    """Labels of three classes in vertical stripes; a class shows in its VH level on the last date only."""
    rng = np.random.default_rng(1)
    stripes = (np.arange(w)[None, :] // 4 % 3 + 1).repeat(h, axis=0).astype(np.uint8)
    images = rng.normal(-15.0, 1.0, (len(DATES), 2, h, w)).astype(np.float32)
    images[-1, 1] += 4.0 * (stripes - 2)
    images[-2, 1] += 4.0 * (stripes - 2)
    split = np.ones((h, w), np.uint8)
    split[h // 2:] = 2
    return make_scene(images=images, labels={d: stripes for d in DATES[2:]}, split=split)


def lgb_config(scene: Path, mode: str, **sets: object) -> TrainConfig:
    overrides = [f"data.scene={scene}", "model.name=lightgbm", "model.options={looks: 1, n_estimators: 40, threads: 1}",
                 f"mode={mode}", "data.patch_size=8", "data.stride=4", "trainer.progress=false"]
    overrides += [f"{k}={v}" for k, v in sets.items()]
    return load_config(TrainConfig, QUICK_CONFIG, overrides)


def test_window_features_mark_padding_missing_and_add_the_target_day_of_year() -> None:
    images = np.arange(4 * 2 * 2 * 3, dtype=np.float32).reshape(4, 2, 2, 3)
    x = window_features(images, DATES, DATES[1], length=3, with_doy=True)
    assert x.shape == (6, 3 * 2 + 2)
    assert np.isnan(x[:, :2]).all()                                  # the step before the first date
    np.testing.assert_array_equal(x[0, 2:6], [images[0, 0, 0, 0], images[0, 1, 0, 0], images[1, 0, 0, 0],
                                              images[1, 1, 0, 0]])
    angle = 2 * np.pi * DATES[1].timetuple().tm_yday / 365.25
    np.testing.assert_allclose(x[:, -2:], np.tile([np.sin(angle), np.cos(angle)], (6, 1)), rtol=1e-6)
    assert window_features(images, DATES, DATES[3], 3, with_doy=False).shape == (6, 6)


@pytest.mark.parametrize("mode", ["per-month", "all-months"])
def test_lightgbm_run_learns_saves_text_models_and_predicts_through_predict_run(
        make_scene: MakeScene, tmp_path: Path, mode: str) -> None:
    scene = separable_scene(make_scene)
    summary = train(lgb_config(scene, mode), tmp_path / "run")
    nets = ["all-months"] if mode == "all-months" else [d.isoformat() for d in DATES[2:]]
    assert sorted(summary.nets) == nets and summary.train_patches > 0
    for name in nets:
        model = (tmp_path / "run" / "nets" / name / "model.txt").read_text()
        net = summary.nets[name]
        assert model.startswith("tree") and net.details["train_pixels"] > 0 and net.unit == "rounds" and net.length > 0
    loaded = load_run(tmp_path / "run")
    assert loaded.per_month == (mode == "per-month") and {n.predictor.kind for n in loaded.nets} == {"pixel"}
    maps = predict_run(tmp_path / "run", scene, tmp_path / "pred", progress=False)
    assert [p.name for p in maps] == [f"{d:%Y%m%d}.tif" for d in DATES[2:]]
    result = evaluate_predictions(tmp_path / "pred", scene, split="test")
    assert min(d.macro_f1 for d in result.dates) > 0.9                # the class is in the VH level


def test_unknown_lightgbm_option_is_refused_when_the_config_is_read(make_scene: MakeScene) -> None:
    with pytest.raises(ConfigError, match="unknown key 'trees' in model.options .*did you mean 'threads'"):
        PixelOptions.from_options({"trees": 3})
    with pytest.raises(ConfigError, match=r"'model.options.trees' is not an option of lightgbm .*--set model.options"):
        lgb_config(separable_scene(make_scene), "per-month", **{"model.options": "{trees: 3}"})
